#pragma once
// Aggregation: folds per-slot loads to logical experts through each record's p2l_map and sums
// them over records in 64-bit integers, on the CPU or on a CUDA device (same integers). Also the
// GPU replay of per-step loads under many placements.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "eplb/error.hpp"
#include "eplb/stats.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// A stats sink that sums logical loads per layer; `finish` returns the load matrix.
class aggregator : public stats_sink {
 public:
  /// Returns the summed [layers][experts] loads, or no_records when no record was added.
  virtual result<load_matrix> finish() = 0;
  /// Returns the name of the implementation that does the work ("cpu", "cuda").
  virtual const char* name() const noexcept = 0;
  /// Returns a note for the user about the device choice (a fallback to the CPU and why, what
  /// "auto" picked), or an empty string; the library does not print it.
  virtual std::string info() const { return {}; }
};

/// Options of make_aggregator.
struct aggregator_options {
  // CUDA: bytes of each of the two pinned staging buffers records are batched into.
  std::size_t cuda_batch_bytes = std::size_t{32} << 20;
  // "auto" uses CUDA only when a device is usable and the input (the files' size on disk, as the
  // reader reports it before the first record) is at least this large; below it, start-up and
  // copies cost more than the fold they save.
  std::uint64_t auto_min_bytes = std::uint64_t{1} << 30;
};

/// Creates the aggregator for a device name: "cpu"; "cuda" (the CPU, with a note in info(), when
/// CUDA is not built or no device is usable); "auto" (see aggregator_options::auto_min_bytes);
/// invalid_argument for any other name.
result<std::unique_ptr<aggregator>> make_aggregator(const std::string& device,
                                                    const aggregator_options& options);
/// Same with default options.
result<std::unique_ptr<aggregator>> make_aggregator(const std::string& device);

/// Folds one record into `into` (which must be [layers][experts]); overflow is reported.
status fold_record(const stats_record& record, load_matrix& into);

/// An evenly spaced sample of the steps of a stats stream, in stream order: what planning for
/// per-step loads (rather than their sum) works on.
struct step_samples {
  std::vector<sample_matrix> loads;  // [L][E] logical loads of every sampled record
  std::vector<std::uint64_t> index;  // the record index (0-based, stream order) of every sample
  std::uint64_t records = 0;         // records seen in all
};

/// A stats sink that keeps a bounded, evenly spaced sample of records (their logical loads) and
/// forwards every record to `next` when it is not null (for example the plan's aggregator).
class step_sampler final : public stats_sink {
 public:
  /// Keeps at most `max_samples` records (fewer when they would take more than `max_bytes`; at
  /// least 2), every record at first, and every other one of those kept whenever the cap is
  /// passed.
  explicit step_sampler(stats_sink* next = nullptr, int max_samples = 512,
                        std::size_t max_bytes = std::size_t{256} << 20);
  /// Sets the sink every record is forwarded to (the aggregator).
  void set_next(stats_sink* next) noexcept { next_ = next; }
  /// Forwards and folds one record; the errors of `next` or of fold_record.
  status on_record(const stats_record& record) override;
  /// Returns the number of records seen.
  std::uint64_t steps() const noexcept { return kept_.records; }
  /// Returns the record index (0-based, in stream order) of every sample.
  const std::vector<std::uint64_t>& sample_index() const noexcept { return kept_.index; }
  /// Returns the logical loads ([L][E]) of every sample.
  const std::vector<sample_matrix>& samples() const noexcept { return kept_.loads; }
  /// Returns the whole sample.
  const step_samples& sample() const noexcept { return kept_; }

 private:
  stats_sink* next_;
  int max_samples_;
  std::size_t max_bytes_;
  std::uint64_t stride_ = 1;  // keep records whose index is a multiple of it
  load_matrix logical_;
  step_samples kept_;
};

/// Returns true when the library was built with CUDA and a device is usable; otherwise false,
/// with the reason in `why` (may be null).
bool cuda_available(std::string* why = nullptr);

/// Sizes of a replay for cuda_replay_max.
struct replay_shape {
  int steps = 0;     // S: per-step load vectors
  int layers = 0;    // L
  int experts = 0;   // E: logical experts per layer
  int slots = 0;     // P: physical slots per layer
  int ranks = 0;     // R: EP ranks; rank r owns slots [r*P/R, (r+1)*P/R), so R must divide P
  int mappings = 0;  // M: placements replayed
};

/// Replays per-step loads under M placements on the GPU. Layout (all row-major): `loads`
/// [S][L][E] int64; `maps` [M][L][P] int32 in [0, E); `out` [M][S][L] double. out[m][s][l] = max
/// over ranks r of sum over the slots p of r, in slot order, of loads[s][l][e] / replicas(e), e =
/// maps[m][l][p], replicas(e) = slots of e in that layer of map m: the rank load of
/// eplb::rank_loads (bit for bit) and its max. Returns invalid_argument for bad sizes or ids and
/// when CUDA is not built or no device is usable, internal for a CUDA failure.
status cuda_replay_max(const replay_shape& shape, const std::int64_t* loads,
                       const std::int32_t* maps, double* out);

}  // namespace eplb
