#pragma once
// The HTML report: one self-contained page (script, style and data inline; nothing is fetched)
// showing an evaluation: per-layer x per-rank load heatmaps, per-step imbalance over time, per-
// layer imbalance, replica counts per expert, and the summary figures. Its size is bounded
// whatever the trace length: the replay keeps bucketed series and a fixed number of sampled steps.

#include <string>

#include "eplb/eval.hpp"

namespace eplb {

/// Returns the replay options the report is sized for (series buckets and sampled steps).
replay_options report_replay_options();

/// Returns the page for `result`; `context` adds the train range and the step-time model.
std::string render_report(const eval_result& result, const eval_context& context,
                          const std::string& title);

}  // namespace eplb
