#pragma once
// Evaluation of a placement against loads: rank loads and the imbalance metric of vLLM's
// reference tool (each logical expert's load split evenly over its replicas).

#include <vector>

#include "eplb/error.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// Rank loads of every layer, [layers][ranks], for a placement under a topology.
weight_matrix rank_loads(const weight_matrix& weights, const placement& p, const topology& topo);

/// Per-layer and overall balance figures of one placement.
struct imbalance_report {
  std::vector<double> layer_max;    // max rank load per layer
  std::vector<double> layer_mean;   // mean rank load per layer
  std::vector<double> layer_ratio;  // max / mean per layer (0 when the layer has no load)
  double overall = 0;  // sum_l max / sum_l mean, vLLM's "Imbalance" (0 when there is no load)
  double mean_layer_ratio = 0;  // mean over layers of max / mean
};

/// Computes the imbalance of a placement exactly as vLLM's reference tool does.
imbalance_report measure_imbalance(const weight_matrix& weights, const placement& p,
                                   const topology& topo);

/// Returns the per-step imbalance (sum over layers of the busiest rank's load / sum of the mean
/// rank load) of placement `p` (valid for `topo`) in every sample; 0 for a sample without load.
std::vector<double> step_imbalances(const std::vector<sample_matrix>& samples, const placement& p,
                                    const topology& topo);

/// Returns the mean of step_imbalances; 0 when there is no sample.
double mean_step_imbalance(const std::vector<sample_matrix>& samples, const placement& p,
                           const topology& topo);

/// Converts exact counts to the doubles policies and metrics work on.
weight_matrix to_weights(const load_matrix& loads);

}  // namespace eplb
