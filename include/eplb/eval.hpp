#pragma once
// Held-out evaluation: replays recorded steps through one or more placements and reports how
// balanced each step would have been. Each logical expert's load in a step is split evenly over
// its replicas (as vLLM dispatches at run time); per layer the step's imbalance is max / mean rank
// load, over the model sum_l max / sum_l mean (vLLM's metric, applied to one step).

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "eplb/error.hpp"
#include "eplb/stats.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// A placement to judge and the name the report gives it.
struct eval_candidate {
  std::string name;
  // The layout; nullopt judges every step under the p2l_map the record was written with.
  std::optional<placement> layout;
  bool identity = false;  // the baseline of the predicted time saved (vLLM's startup layout)
  bool baseline = false;  // the mapping deployed now, which the regression gate compares against
};

/// How much per-step detail the replay keeps for reports (memory stays bounded).
struct replay_options {
  bool bounds = true;  // compute the per-step lower bound (and each mapping's gap to it)
  // The bound costs ~20-50 us per layer and step, more than reading the step: it is computed on
  // at most this many evenly spaced judged steps (their loads are kept, as floats, exact below
  // 2^24), in parallel at the end; 0 computes it on every step as it is read.
  int bound_steps = 512;
  int series_buckets = 400;  // per-step series are kept in at most this many buckets of steps
  int sampled_steps = 32;    // at most this many evenly spaced steps keep their rank loads
  int threads = 0;           // for the bound; 0: hardware concurrency; results never depend on it
};

/// Mean, nearest-rank percentiles and worst of a per-step quantity.
struct step_distribution {
  double mean = 0, p50 = 0, p90 = 0, p99 = 0, worst = 0;
  std::int64_t worst_step = 0;  // step number of the (first) worst value
};

/// Returns the distribution of `values` (p-th percentile = the ceil(p/100 * n)-th smallest
/// value); `steps` gives the step number of each value. All zeros when `values` is empty.
step_distribution summarize_steps(const std::vector<double>& values,
                                  const std::vector<std::int64_t>& steps);

/// Steps grouped into consecutive buckets of equal width (the last may be shorter).
struct step_buckets {
  int width = 1;  // steps per bucket
  int count = 0;  // buckets in use
};

/// What the replay measured for one placement.
struct candidate_report {
  std::string name;
  bool recorded = false;  // judged under each record's own p2l_map
  bool identity = false;  // the baseline of the predicted time saved
  bool baseline = false;  // the deployed mapping of the regression gate
  int num_slots = 0;
  int num_ranks = 0;
  std::vector<double> step_imbalance;  // per judged step: sum_l max / sum_l mean
  std::vector<double> step_gap;        // per bound step: sum_l max / sum_l bound - 1
  step_distribution imbalance;
  std::optional<step_distribution> gap;
  std::vector<double> layer_mean_imbalance;  // [L] mean over steps with load of max / mean
  // [L][R] rank loads summed over the judged steps, divided by the summed mean rank load of the
  // layer (1.0 = an average rank).
  weight_matrix relative_rank_load;
  std::vector<double> rank_share;           // [R] summed load of each rank / mean rank's
  std::vector<std::int64_t> busiest_count;  // [R] (step, layer) pairs where the rank was busiest
  std::vector<std::int32_t> replicas;       // [L][E] replica counts; empty when recorded
  // Downsampled series for reports: per bucket the mean and max of the model imbalance, and per
  // layer ([bucket][L]) the mean and max of the layer imbalance.
  std::vector<double> bucket_mean, bucket_max;
  std::vector<float> bucket_layer_mean, bucket_layer_max;
  // Per sampled step ([sample][L][R]): rank load / the layer's mean rank load.
  std::vector<float> sampled_relative_load;
};

/// The outcome of a replay.
struct eval_result {
  topology topo;                    // EP, layers and experts the mappings are judged under
  std::vector<std::int64_t> steps;  // the judged step numbers, in stream order
  load_matrix expert_load;          // [L][E] logical loads summed over the judged steps
  std::vector<candidate_report> candidates;
  // Per bound step (bound_steps: the judged steps the bound was computed on, see replay_options):
  // sum_l LB_l / sum_l mean_l, the least imbalance any placement with topo's slots could have had
  // in that step (empty without bounds); candidates with topo's slots and ranks get their gap.
  std::vector<std::int64_t> bound_steps;
  std::vector<double> step_bound;
  std::optional<step_distribution> bound;
  step_buckets buckets;
  std::vector<std::int64_t> bucket_first_step;  // step number that opens each bucket
  std::vector<std::int64_t> sampled_steps;      // step numbers of the sampled steps
};

/// A stats sink that replays every record it receives through the candidates.
class replayer final : public stats_sink {
 public:
  /// Checks every layout against `topo` (with the layout's own slot count) and prepares the
  /// replay; returns the errors of validate_placement naming the candidate.
  static result<replayer> create(const topology& topo, std::vector<eval_candidate> candidates,
                                 const replay_options& options);
  /// Moves the replay state (a replayer is not copyable).
  replayer(replayer&&) noexcept;
  /// Moves the replay state.
  replayer& operator=(replayer&&) noexcept;
  /// Frees the replay state.
  ~replayer() override;

  /// Replays one step; shape_mismatch when its layers or experts differ from the topology.
  status on_record(const stats_record& record) override;
  /// Returns the figures over all replayed steps; no_records when none was replayed.
  result<eval_result> finish();

 private:
  struct impl;
  explicit replayer(std::unique_ptr<impl> p);
  std::unique_ptr<impl> impl_;
};

/// A held-out split of the selected steps: the first part builds a mapping, the rest judges it.
struct step_split {
  step_range train, held_out;  // inclusive ranges of step numbers, disjoint
  std::uint64_t train_records = 0, held_out_records = 0;
};

/// Splits step numbers: the smallest floor(fraction * n) go to train (at least one record on each
/// side); records sharing the boundary step all go to held_out. invalid_argument when the
/// fraction is outside (0, 1) or fewer than two distinct steps are given.
result<step_split> split_step_list(std::vector<std::int64_t> steps, double fraction);

/// Reads the step numbers of the records of `files` inside `steps` (one full read, with
/// stats_read_options::allow_partial_tail as given) and splits them as split_step_list does;
/// returns the reader's errors.
result<step_split> split_steps(const std::vector<std::string>& files, const step_range& steps,
                               double fraction, bool allow_partial_tail = false);

/// What `evaluate` needs: stats, the judged steps, the mappings and the topology flags.
struct eval_request {
  std::vector<std::string> stats;     // files or globs
  step_range steps;                   // judged steps
  std::vector<std::string> mappings;  // vLLM mapping files (eplb_initial_mapping v1)
  bool identity = true;               // also judge vLLM's startup layout arange(P) % E
  bool recorded = false;              // also judge each record's own p2l_map
  std::string baseline;  // the vLLM mapping deployed now, judged last for the gate; empty: none
  // EP and redundant slots; unset fields come from the stats' meta record (EP) or the first
  // mapping (slots of the identity layout), as in plan.
  std::optional<int> ep, redundant;
  replay_options replay;
  bool allow_partial_tail = false;  // see stats_read_options::allow_partial_tail
};

/// Loads the mappings, reads the stats once and replays every selected step; returns the first
/// error (a mapping that does not fit names its file). `read` (may be null) gets the read summary.
result<eval_result> evaluate(const eval_request& request, stats_read_summary* read);

/// The step-time model used to predict a speedup: a step spends the fraction f of its time in
/// expert compute under the identity layout, and that part scales with the imbalance, so a
/// mapping's step time relative to the identity's is (1 - f) + f * imbalance / identity_imbalance.
/// Returns the predicted fraction of step time saved, f * (1 - imbalance / identity_imbalance)
/// (0.2, 1.6 -> 1.07 gives 0.066); 0 when identity_imbalance is not positive.
double predicted_time_saved(double expert_fraction, double imbalance, double identity_imbalance);

/// Optional context the JSON and the reports print beside the figures.
struct eval_context {
  std::optional<step_range> train_steps;  // steps that built the mappings, if the user said
  std::optional<double> expert_fraction;  // parameter of the step-time model
  std::uint64_t train_overlap = 0;        // judged steps inside train_steps
  std::vector<std::string> files;         // stats files read
  std::optional<double> max_regression;   // the regression gate's threshold, when it is on
};

/// One judged mapping against the baseline in the regression gate.
struct regression_check {
  std::string name;
  double mean = 0;        // its mean per-step imbalance
  double regression = 0;  // mean / the baseline's mean - 1: how much worse (negative: better)
  bool pass = true;       // regression <= max_regression
};

/// The regression gate: every judged mapping file against the mapping deployed now.
struct regression_gate {
  std::string baseline;      // the baseline candidate's name
  double baseline_mean = 0;  // its mean per-step imbalance
  double max_regression = 0;
  std::vector<regression_check> checks;  // the mapping files, not identity, recorded or baseline
  bool pass = true;                      // every check passed
};

/// Compares the mean per-step imbalance of every mapping file of `result` with the baseline
/// candidate's; a mapping fails when it is worse by more than `max_regression` (relative: 0.005
/// allows 0.5%). Returns nullopt when `result` has no baseline candidate.
std::optional<regression_gate> judge_regression(const eval_result& result, double max_regression);

/// Returns the identity candidate (the baseline of the predicted time saved), or null.
const candidate_report* find_identity(const eval_result& result);

/// Returns how many of the judged steps lie inside `train`.
std::uint64_t count_overlap(const eval_result& result, const step_range& train);

/// Returns the figures as deterministic JSON for CI (no per-step arrays), with the regression
/// gate when context.max_regression is set and a baseline was judged.
std::string eval_json(const eval_result& result, const eval_context& context);

}  // namespace eplb
