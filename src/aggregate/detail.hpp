#pragma once
// Private: the aggregator implementations behind make_aggregator.

#include <memory>
#include <string>

#include "eplb/aggregate.hpp"

namespace eplb::detail {

/// Checks the first record an aggregator sees (it sets the shape of the sums); invalid_value when
/// it has no layers or no experts.
status check_first_record(const stats_record& record);

/// The error finish() returns when no record was aggregated (no_records).
error no_records_error();

/// The CPU aggregator; `info` is returned by its info().
std::unique_ptr<aggregator> make_cpu_aggregator(std::string info);

/// The CUDA aggregator, or nullptr with the reason in `why` when CUDA is not built or no device
/// is usable. If the device fails when the first record arrives, it aggregates on the CPU and
/// says so in info().
std::unique_ptr<aggregator> make_cuda_aggregator(const aggregator_options& options,
                                                 std::string& why);

}  // namespace eplb::detail
