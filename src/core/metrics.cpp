// Rank loads and imbalance as vLLM's reference tool (tools/eplb/generate_static_mapping.py)
// measures them: each logical expert's load is split evenly over its replicas.

#include "eplb/metrics.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

#include "eval/replay_core.hpp"

namespace eplb {

weight_matrix rank_loads(const weight_matrix& weights, const placement& p, const topology& topo) {
  const int ranks = topo.num_ranks;
  const int layers = p.num_layers;
  weight_matrix out = weight_matrix::Zero(layers, ranks);
  if (ranks <= 0 || p.num_slots % ranks != 0) return out;
  const int per_rank = p.num_slots / ranks;
  const int experts = p.num_experts;
  std::vector<int> cnt(static_cast<std::size_t>(std::max(experts, 0)));
  for (int l = 0; l < layers && l < weights.rows(); ++l) {
    const std::int32_t* row = p.row(l);
    std::fill(cnt.begin(), cnt.end(), 0);
    // Ids outside [0, E) or the weight columns carry no load; validate_placement reports them.
    auto valid = [&](int e) { return e >= 0 && e < experts && e < weights.cols(); };
    for (int s = 0; s < p.num_slots; ++s) {
      if (valid(row[s])) ++cnt[static_cast<std::size_t>(row[s])];
    }
    for (int s = 0; s < p.num_slots; ++s) {
      const int e = row[s];
      if (valid(e)) out(l, s / per_rank) += weights(l, e) / cnt[static_cast<std::size_t>(e)];
    }
  }
  return out;
}

imbalance_report measure_imbalance(const weight_matrix& weights, const placement& p,
                                   const topology& topo) {
  const weight_matrix loads = rank_loads(weights, p, topo);
  imbalance_report r;
  const auto layers = static_cast<std::size_t>(loads.rows());
  r.layer_max.resize(layers);
  r.layer_mean.resize(layers);
  r.layer_ratio.resize(layers);
  double sum_max = 0, sum_mean = 0, sum_ratio = 0;
  for (std::size_t l = 0; l < layers; ++l) {
    const auto row = loads.row(static_cast<Eigen::Index>(l));
    const double mx = loads.cols() > 0 ? row.maxCoeff() : 0.0;
    const double mean = loads.cols() > 0 ? row.mean() : 0.0;
    r.layer_max[l] = mx;
    r.layer_mean[l] = mean;
    r.layer_ratio[l] = mean > 0 ? mx / mean : 0.0;
    sum_max += mx;
    sum_mean += mean;
    sum_ratio += r.layer_ratio[l];
  }
  r.overall = sum_mean > 0 ? sum_max / sum_mean : 0.0;
  r.mean_layer_ratio = layers > 0 ? sum_ratio / static_cast<double>(layers) : 0.0;
  return r;
}

weight_matrix to_weights(const load_matrix& loads) { return loads.cast<double>(); }

std::vector<double> step_imbalances(const std::vector<sample_matrix>& samples, const placement& p,
                                    const topology& topo) {
  std::vector<double> out;
  out.reserve(samples.size());
  const int R = topo.num_ranks;
  if (samples.empty() || R <= 0 || p.num_slots % R != 0) return out;
  // The replay's slot table: sums in slot order, as eplb::rank_loads does.
  detail::slot_table table;
  table.build(p, R);
  std::vector<double> loads(static_cast<std::size_t>(R));
  for (const sample_matrix& w : samples) {
    double sum_max = 0;
    double sum_mean = 0;
    for (Eigen::Index l = 0; l < w.rows() && l < p.num_layers; ++l) {
      std::fill(loads.begin(), loads.end(), 0.0);
      table.add_layer(static_cast<int>(l), w.row(l).data(), loads.data());
      sum_max += *std::max_element(loads.begin(), loads.end());
      sum_mean += static_cast<double>(w.row(l).sum()) / R;
    }
    out.push_back(sum_mean > 0 ? sum_max / sum_mean : 0.0);
  }
  return out;
}

double mean_step_imbalance(const std::vector<sample_matrix>& samples, const placement& p,
                           const topology& topo) {
  if (samples.empty()) return 0.0;
  double sum = 0;
  for (double x : step_imbalances(samples, p, topo)) sum += x;
  return sum / static_cast<double>(samples.size());
}

}  // namespace eplb
