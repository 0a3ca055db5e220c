#pragma once
// The HTML report: one self-contained page (script, style and data inline; nothing is fetched)
// showing an evaluation: per-layer x per-rank load heatmaps, per-step imbalance over time, per-
// layer imbalance, replica counts per expert, and the summary figures. Its size is bounded
// whatever the trace length: the replay keeps bucketed series and a fixed number of sampled steps.
// A sweep (`eplb-gen sweep --json`) adds its section, or has a page of its own.

#include <string>

#include "eplb/eval.hpp"
#include "eplb/sweep.hpp"

namespace eplb {

/// Returns the replay options the report is sized for (series buckets and sampled steps).
replay_options report_replay_options();

/// Returns the page for `result`; `context` adds the train range and the step-time model; with
/// `sweep`, the page also shows the sweep (see render_sweep_report).
std::string render_report(const eval_result& result, const eval_context& context,
                          const std::string& title, const sweep_result* sweep = nullptr);

/// Returns a page that shows a sweep alone: its table, the recommendation per EP, and held-out
/// imbalance and memory per GPU against R, one line per EP.
std::string render_sweep_report(const sweep_result& sweep, const std::string& title);

}  // namespace eplb
