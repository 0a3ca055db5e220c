#pragma once
// How many redundant slots? For every (EP size, redundant slots) pair the default placement is
// planned on the first part of the stats and judged step by step on the rest, with the memory the
// redundant replicas take; the smallest R whose held-out figure is within a tolerance of the best
// is recommended. The stats are read once.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "eplb/error.hpp"
#include "eplb/limits.hpp"
#include "eplb/model_config.hpp"
#include "eplb/stats.hpp"

namespace eplb {

/// What a sweep plans and judges.
struct sweep_request {
  std::vector<std::string> stats;    // vLLM stats JSONL files or globs
  step_range steps;                  // records used (train and held out)
  std::vector<int> eps;              // EP sizes; empty: the stats' meta record
  std::vector<int> redundant;        // redundant slots per layer to try (ascending, distinct)
  std::optional<int> groups, nodes;  // unset: the stats' meta record, else 1
  double split = 0.8;                // plan on the first `split` of the records, judge on the rest
  double tolerance = 0.005;  // recommend the smallest R within this of the best held-out mean
  std::optional<double> expert_fraction;  // the step-time model's f (eval's --expert-fraction)
  // The memory of one expert (--model-config or --expert-bytes); moe_layers 0 takes the stats'.
  std::optional<expert_memory> memory;
  int threads = 0;  // reading and planning; 0: all cores; the result never depends on it
  std::size_t max_line_bytes = limits::default_max_line_bytes;
  bool allow_partial_tail = false;
  std::function<void(const stats_read_progress&)> read_progress;  // may be empty
  // Called with (0, plans in all) before the first plan and after each plan with (plans done,
  // plans in all), from any thread, one call at a time.
  std::function<void(int, int)> plan_progress;
};

/// One (EP, R) pair: skipped, or planned and judged on the held-out sample.
struct sweep_point {
  int ep = 0;
  int redundant = 0;
  bool planned = false;
  std::string skipped;       // why it was not planned (E + R not divisible by EP)
  std::vector<int> nearest;  // with `skipped`: the nearest valid R below and above
  int slots_per_rank = 0;
  // Per-step imbalance of the plan on the sampled held-out steps: mean, nearest-rank p99, worst.
  double mean = 0, p99 = 0, worst = 0;
  // vLLM's startup layout on the same steps, with the fewest redundant slots the EP size allows
  // (R0 = 0 when EP divides the experts): the baseline of time_saved, the same for every R.
  double identity_mean = 0;
  std::optional<double> time_saved;           // with expert_fraction, against identity_mean
  std::optional<double> extra_bytes_per_gpu;  // with memory
  bool reference = false;  // the recency weighting was chosen on this pair's plan
  double half_life = 0;    // recency half-life used (fraction of the window); -1: the guard
};

/// The recommendation for one EP size.
struct sweep_choice {
  int ep = 0;
  int recommended = 0;  // the smallest R within the tolerance of the best mean
  int best = 0;         // the R with the lowest mean (the smallest one on ties)
  int knee = 0;         // where the imbalance curve flattens (see recommend_redundant)
  std::string why;      // the reasons, as sentences
  std::string knee_why;
};

/// Everything a sweep measured.
struct sweep_result {
  std::vector<std::string> files;
  std::string model;  // the meta record's model, if any
  int num_layers = 0, num_experts = 0;
  std::uint64_t records = 0;  // records used
  double split_asked = 0;     // --split
  // The split actually used (at a checkpoint of the one read, nearest to split_asked, see
  // run_sweep): records and step ranges of both parts, and the samples plans and judging use.
  std::uint64_t train_records = 0, heldout_records = 0;
  std::int64_t train_first = 0, train_last = 0, heldout_first = 0, heldout_last = 0;
  std::uint64_t plan_samples = 0, heldout_samples = 0;
  double tolerance = 0;
  std::optional<double> expert_fraction;
  std::optional<expert_memory> memory;
  std::vector<sweep_point> points;    // per EP (in the order given), per R (ascending)
  std::vector<sweep_choice> choices;  // per EP with a planned point
  std::vector<std::string> warnings;  // the reader's, and a thin held-out sample
};

/// Parses a comma-separated list of non-negative integers ("0,8,16"), sorted and deduplicated;
/// invalid_argument naming `flag` for anything else.
result<std::vector<int>> parse_int_list(const std::string& text, const std::string& flag);

/// Reads the stats once: the summed loads of the train part come from cumulative-sum checkpoints
/// taken during the read (at most 256, evenly spaced; the split is the checkpoint nearest to
/// `split` of the records, so it is exact up to 256 records and within half a checkpoint gap
/// beyond), and one bounded, evenly spaced sample of records serves both parts. Then, per EP,
/// the default placement (plan_placement with per-step samples: the step-aware planner) is
/// planned on the train part for the median R, choosing the recency weighting, and for the other
/// R with that weighting (their own guard and validation kept); the plans of different pairs run
/// in parallel. Each plan and the identity layout are judged on the held-out sample. Returns the
/// reader's errors; invalid_argument for a bad request (split outside (0, 1), an EP size for
/// which no R is valid, nodes that do not divide an EP size); shape_mismatch when the memory's
/// config does not have the stats' layers or experts.
result<sweep_result> run_sweep(const sweep_request& request);

/// Fills result.choices from result.points: per EP, the best mean, the smallest R whose mean is
/// within `tolerance` (relative) of it, and the knee: on the curve of mean against R, both
/// scaled to [0, 1] (R from the smallest to the largest, the mean from the smallest R's to the
/// best), the R that gains the most imbalance beyond what a straight line would.
void recommend_redundant(sweep_result& result);

/// Returns the sweep as deterministic JSON (schema 1, see the README).
std::string sweep_json(const sweep_result& result);

/// Parses what sweep_json wrote (`name` stands for the file in messages); invalid_json,
/// missing_field or wrong_type naming the field otherwise.
result<sweep_result> parse_sweep_json(const std::string& json, const std::string& name);

/// Reads and parses a sweep JSON file (at most limits::max_import_file_bytes); io_error or
/// limit_exceeded naming the file, else parse_sweep_json's errors.
result<sweep_result> read_sweep_json(const std::string& path);

}  // namespace eplb
