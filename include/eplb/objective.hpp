#pragma once
// Planning objectives. `sum` plans on the summed loads (what vLLM's tool does). `per-step` plans
// for the steps themselves: a static mapping is judged step by step, and the mean over steps of
// the per-step imbalance (sum_l max / sum_l mean rank load in each step) is what it should
// minimise. It starts from the policy's placement for the summed loads and swaps slots between
// ranks while that mean, measured on an evenly spaced sample of train steps, drops (a sample
// average approximation of the expected per-step imbalance). Slots whose load is hot in the same
// steps end up apart, so the steps where bursty experts peak overload fewer ranks.
// Guard: the search is first run on the first 80% of the train steps and judged on a sample of
// the last 20%; if it does not lower the mean per-step imbalance there, the plan falls back to
// the sum objective, so per-step never loses to sum by more than the hold-out's noise.

#include <cstdint>
#include <string>
#include <vector>

#include "eplb/error.hpp"
#include "eplb/eval.hpp"
#include "eplb/policy.hpp"
#include "eplb/stats.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// What a plan optimises.
enum class objective_kind { sum, per_step };

/// Parses "sum" or "per-step"; invalid_argument naming --objective otherwise.
result<objective_kind> parse_objective(const std::string& name);

/// Returns the objective's name as the CLI spells it.
const char* objective_name(objective_kind kind) noexcept;

/// Knobs of the per-step objective (the defaults are what the CLI uses).
struct objective_options {
  double holdout_fraction = 0.2;  // last share of the train steps that judges the search
  int min_samples = 8;            // fewer fit or hold-out samples: no search (sum objective)
  int max_passes = 3;             // passes over all slot pairs of a layer
  int threads = 0;                // 0: hardware concurrency; the result never depends on it
};

/// A stats sink that keeps a bounded, evenly spaced sample of steps (their logical loads) and
/// forwards every record to `next` when it is not null (for example the plan's aggregator).
class step_sampler final : public stats_sink {
 public:
  explicit step_sampler(stats_sink* next = nullptr, int max_samples = 512);
  /// Sets the sink every record is forwarded to (the aggregator).
  void set_next(stats_sink* next) noexcept { next_ = next; }
  /// Forwards and folds one record; the errors of `next` or of fold_record.
  status on_record(const stats_record& record) override;
  /// Returns the number of records seen.
  std::uint64_t steps() const noexcept { return steps_; }
  /// Returns the record index (0-based, in stream order) of every sample.
  const std::vector<std::uint64_t>& sample_index() const noexcept { return index_; }
  /// Returns the logical loads ([L][E]) of every sample.
  const std::vector<sample_matrix>& samples() const noexcept { return samples_; }

 private:
  stats_sink* next_;
  int max_samples_;
  std::uint64_t steps_ = 0;
  std::uint64_t stride_ = 1;  // keep records whose index is a multiple of it
  load_matrix logical_;
  std::vector<std::uint64_t> index_;
  std::vector<sample_matrix> samples_;
};

/// What the per-step objective decided.
struct objective_info {
  std::string objective = "sum";
  bool searched = false;      // whether the final placement is the search's
  double holdout_sum = 0;     // hold-out mean per-step imbalance of the policy's placement
  double holdout_search = 0;  // ... and of the searched one
  std::uint64_t fit_samples = 0, holdout_samples = 0, samples = 0;
  std::uint64_t swaps = 0;  // swaps the final search made
  std::string note;         // why no search happened, when it did not
};

/// Swaps slots between ranks of each layer while the mean over `samples` of the per-step
/// imbalance drops (first improvement, pairs in slot order, at most `max_passes` passes); only
/// ranks in the same block of `rank_block` consecutive ranks swap (a node, to keep a hierarchical
/// placement's groups on their node; num_ranks for no limit). Layers run in parallel and the
/// result does not depend on `threads`. `p` must be valid for `topo`; `swaps` (may be null) gets
/// the number of swaps made.
placement refine_per_step(placement p, const topology& topo,
                          const std::vector<sample_matrix>& samples, int rank_block, int max_passes,
                          int threads, std::uint64_t* swaps);

/// Plans with the per-step objective: the policy on `sums` (the train steps' summed loads), then
/// the guarded search on the sampler's steps; `policy_info` (may be null) gets the policy's
/// decisions. Returns the policy's errors.
result<placement> plan_per_step(const weight_matrix& sums, const step_sampler& sampler,
                                const topology& topo, const policy_options& policy,
                                const objective_options& options, plan_info* policy_info,
                                objective_info* info);

/// Returns the mean over `samples` of the per-step imbalance (sum_l max / sum_l mean rank load)
/// of placement `p` (valid for `topo`); 0 when there is no sample.
double mean_step_imbalance(const std::vector<sample_matrix>& samples, const placement& p,
                           const topology& topo);

}  // namespace eplb
