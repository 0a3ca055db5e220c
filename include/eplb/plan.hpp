#pragma once
// The plan pipeline: stats files -> aggregation -> topology -> policy -> placement, with the
// before/after figures. The CLI's main job is one call of `plan`.

#include <optional>
#include <string>
#include <vector>

#include "eplb/bounds.hpp"
#include "eplb/error.hpp"
#include "eplb/limits.hpp"
#include "eplb/metrics.hpp"
#include "eplb/policy.hpp"
#include "eplb/stats.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// What the user asked for; unset topology fields default to the stats' meta record.
struct plan_request {
  std::vector<std::string> stats;  // files or globs
  step_range steps;
  std::string device = "cpu";
  std::optional<int> ep, redundant, groups, nodes;
  policy_options policy;
  std::size_t max_line_bytes = limits::default_max_line_bytes;  // longest stats line accepted
};

/// Where each topology field came from ("--ep", "meta", "default"), for the summary.
struct topology_sources {
  std::string ep, redundant, groups, nodes;
};

/// Everything a plan produced.
struct plan_outcome {
  topology topo;
  topology_sources sources;
  stats_read_summary read;
  std::string aggregator;  // "cpu" or "cuda"
  load_matrix loads;
  placement result;
  plan_info info;
  imbalance_report before;  // identity layout arange(P) % E, vLLM's startup layout
  imbalance_report after;
  gap_report gap;  // the placement's distance to the lower bound on the optimal max rank load
};

/// Runs the whole pipeline; returns the first error (input, topology or policy) on failure.
result<plan_outcome> plan(const plan_request& request);

/// Resolves the topology from the request and the stats; returns invalid_topology with the
/// change to make when it is not valid.
result<topology> resolve_topology(const plan_request& request, const stats_read_summary& read,
                                  topology_sources* sources);

/// Returns the run summary as deterministic JSON (topology, policy, records, steps, imbalance).
std::string summary_json(const plan_outcome& outcome);

}  // namespace eplb
