#pragma once
// Aggregation: folds per-slot loads to logical experts through each record's p2l_map and sums
// them over records in 64-bit integers. CPU now; a CUDA implementation satisfies the same
// interface.

#include <memory>
#include <string>

#include "eplb/error.hpp"
#include "eplb/stats.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// A stats sink that sums logical loads per layer; `finish` returns the load matrix.
class aggregator : public stats_sink {
 public:
  /// Returns the summed [layers][experts] loads, or no_records when no record was added.
  virtual result<load_matrix> finish() = 0;
  /// Returns the name of the implementation ("cpu", "cuda").
  virtual const char* name() const noexcept = 0;
};

/// Creates the aggregator for a device name ("cpu", "cuda", "auto"); invalid_argument otherwise.
result<std::unique_ptr<aggregator>> make_aggregator(const std::string& device);

/// Folds one record into `into` (which must be [layers][experts]); overflow is reported.
status fold_record(const stats_record& record, load_matrix& into);

}  // namespace eplb
