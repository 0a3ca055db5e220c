#pragma once
// The plan pipeline: stats files -> aggregation -> topology -> policy -> placement, with the
// before/after figures. The CLI's main job is one call of `plan`.

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "eplb/bounds.hpp"
#include "eplb/error.hpp"
#include "eplb/import.hpp"
#include "eplb/limits.hpp"
#include "eplb/metrics.hpp"
#include "eplb/policy.hpp"
#include "eplb/stats.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// What the user asked for; unset topology fields default to the stats' meta record.
struct plan_request {
  std::vector<std::string> stats;  // files or globs
  /// "auto" (by content), "vllm", "sglang", "trtllm", "matrix" or a name parse_stats_format knows.
  std::string stats_format = "auto";
  step_range steps;     // vLLM: step values; other formats: import_options::steps
  int skip_layers = 0;  // SGLang and matrix stats: leading dense rows to drop
  std::string device = "cpu";
  std::optional<int> ep, redundant, groups, nodes;
  policy_options policy;  // policy.threads also sets the stats reader's parser threads
  std::function<void(const stats_read_progress&)> progress;  // reader progress; may be empty
  std::string previous;  // vLLM mapping currently deployed (--previous); empty: plan from scratch
  std::optional<int> max_moves;  // with previous: most changed slots per layer (--max-moves)
  // Unset: the policy's default (per-step for balanced with per-step records, else sum).
  std::optional<objective_kind> objective;
  std::size_t max_line_bytes = limits::default_max_line_bytes;  // longest stats line accepted
  bool allow_partial_tail = false;  // vLLM stats: see stats_read_options::allow_partial_tail
};

/// Where each topology field came from ("--ep", "meta", "default"), for the summary.
struct topology_sources {
  std::string ep, redundant, groups, nodes;
};

/// Everything a plan produced.
struct plan_outcome {
  topology topo;
  topology_sources sources;
  stats_read_summary read;  // vLLM stats; other formats fill files, shape and step counts
  /// Stats of another engine: what the importer read, with the decoder-layer id of every row.
  std::optional<import_info> imported;
  std::string aggregator;  // "cpu" or "cuda"; "import" for other formats
  std::string aggregator_info;  // the aggregator's note (a CUDA fallback, auto's choice), or empty
  load_matrix loads;
  placement result;
  plan_info info;           // the policy's decisions, with the held-out estimate
  imbalance_report before;  // identity layout arange(P) % E, vLLM's startup layout
  imbalance_report after;
  gap_report gap;
  bool has_previous = false;
  imbalance_report previous_imbalance;  // the deployed mapping on the same loads
  placement previous;  // the placement's distance to the lower bound on the optimal max rank load
};

/// Checks every option of the request against its range (flags.hpp: --ep, --redundant, --groups,
/// --nodes, --max-moves, --threads, --skip-layers, --max-line-bytes) and --max-moves against
/// --previous; invalid_argument naming the flag otherwise. plan() starts with it.
status validate_plan_request(const plan_request& request);

/// Returns limit_exceeded naming the limit when planning `topo` would need more memory or time
/// than docs/limits.md allows (limits::max_rank_expert_pairs, limits::max_plan_work); plan()
/// checks it before any policy runs.
status check_plan_size(const topology& topo);

/// Reads the request's stats (every file of one format, detected or given) into out->loads, with
/// out->read or out->imported; vLLM records also go through `sampler` when it is not null (other
/// formats hold sums only and leave it empty). Returns the first input error, or shape_mismatch
/// when files of a non-vLLM format disagree in shape.
status read_stats(const plan_request& request, plan_outcome* out,
                  step_sampler* sampler = nullptr);

/// Runs the whole pipeline; returns the first error (input, topology or policy) on failure.
result<plan_outcome> plan(const plan_request& request);

/// Resolves the topology from the request and the stats; returns invalid_topology with the
/// change to make when it is not valid.
result<topology> resolve_topology(const plan_request& request, const stats_read_summary& read,
                                  topology_sources* sources);

/// Returns the run summary as deterministic JSON (topology, policy, records, steps, imbalance).
std::string summary_json(const plan_outcome& outcome);

}  // namespace eplb
