// Policy benchmark: `deepseek` (vLLM's DefaultEplbPolicy) and `balanced` side by side on the real
// Qwen counts in ../shared/data/qwen and on a DeepSeek-V3-sized synthetic model, for EP
// 8/16/32/64 and 0/16/32/64/128 redundant slots where valid. Places and scores on the same
// counts. Prints a Markdown table: time per full model, imbalance, gap to the lower bound,
// layers where balanced is worse than deepseek, ranks holding duplicate replicas, and the
// migration figures for --previous.
//
// Usage: eplb-bench-policy [--shared DIR] [--repeat N] [--quick] [--model NAME] [--ep N] [--nodes
// N] (nodes default: EP / 8, one node per 8 ranks)

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "eplb/bounds.hpp"
#include "eplb/metrics.hpp"
#include "eplb/policy.hpp"
#include "eplb/synth.hpp"

using namespace eplb;

namespace {

struct model_input {
  std::string name;
  weight_matrix w;
  int groups = 1;
};

// A fixed-seed lognormal-ish DeepSeek-V3-sized load (58 layers x 256 experts, 8 groups).
weight_matrix synthetic_dsv3() {
  weight_matrix w(58, 256);
  std::uint64_t s = 0x9e3779b97f4a7c15ULL;
  auto uni = [&]() {
    s ^= s << 13;
    s ^= s >> 7;
    s ^= s << 17;
    return static_cast<double>(s >> 11) * 0x1.0p-53;
  };
  for (int l = 0; l < 58; ++l) {
    for (int e = 0; e < 256; ++e) {
      const double n = std::sqrt(-2 * std::log(1 - uni())) * std::cos(6.283185307179586 * uni());
      w(l, e) = std::floor(10000 * std::exp(1.0 * n));
    }
  }
  return w;
}

int duplicate_ranks(const placement& p, const topology& t) {
  int dups = 0;
  const int k = t.slots_per_rank();
  for (int l = 0; l < p.num_layers; ++l) {
    for (int r = 0; r < t.num_ranks; ++r) {
      std::vector<int> e(p.row(l) + r * k, p.row(l) + (r + 1) * k);
      std::sort(e.begin(), e.end());
      if (std::adjacent_find(e.begin(), e.end()) != e.end()) ++dups;
    }
  }
  return dups;
}

double mean_ratio(const imbalance_report& r) { return r.mean_layer_ratio; }

template <class F>
double median_ms(int repeat, F&& f) {
  std::vector<double> t;
  for (int i = 0; i < repeat; ++i) {
    const auto a = std::chrono::steady_clock::now();
    f();
    const auto b = std::chrono::steady_clock::now();
    t.push_back(std::chrono::duration<double, std::milli>(b - a).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

// Mean over layers of LB_l / mean_l: the best achievable "mean layer imbalance".
double mean_bound_ratio(const gap_report& g, const imbalance_report& r) {
  double s = 0;
  int n = 0;
  for (std::size_t l = 0; l < g.layer_bound.size(); ++l) {
    if (r.layer_mean[l] > 0) {
      s += g.layer_bound[l] / r.layer_mean[l];
      ++n;
    }
  }
  return n ? s / n : 0;
}

int moves(const placement& a, const placement& b) {
  int n = 0;
  for (std::size_t i = 0; i < a.physical_to_logical.size(); ++i) {
    n += a.physical_to_logical[i] != b.physical_to_logical[i];
  }
  return n;
}

}  // namespace

int main(int argc, char** argv) {
  std::string shared = EPLB_SHARED_DIR;
  int repeat = 5;
  bool quick = false;
  std::string only_model;
  int only_ep = 0;
  int fixed_nodes = 0;
  for (int i = 1; i < argc; ++i) {
    if (!std::strcmp(argv[i], "--shared") && i + 1 < argc)
      shared = argv[++i];
    else if (!std::strcmp(argv[i], "--repeat") && i + 1 < argc)
      repeat = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--quick"))
      quick = true;
    else if (!std::strcmp(argv[i], "--model") && i + 1 < argc)
      only_model = argv[++i];
    else if (!std::strcmp(argv[i], "--ep") && i + 1 < argc)
      only_ep = std::atoi(argv[++i]);
    else if (!std::strcmp(argv[i], "--nodes") && i + 1 < argc)
      fixed_nodes = std::atoi(argv[++i]);
  }
  std::vector<model_input> models;
  const char* files[][2] = {{"qwen3-235b", "qwen3_235b_a22b_counts.json"},
                            {"qwen3-30b", "qwen3_30b_a3b_counts.json"},
                            {"qwen2-57b", "qwen2_57b_a14b_counts.json"}};
  for (auto& f : files) {
    auto w = read_counts_json(shared + "/data/qwen/" + f[1]);
    if (!w) {
      fmt::print(stderr, "note: {} (the Qwen counts live in ../shared; skipped)\n", w.message());
      continue;
    }
    models.push_back({f[0], std::move(*w), 1});
  }
  models.push_back({"dsv3-synth", synthetic_dsv3(), 8});

  fmt::print(
      "| model | EP | R | k | nodes | deepseek ms | balanced ms | balanced/deepseek time | "
      "deepseek imb | "
      "balanced imb | bound | deepseek gap | balanced gap | layers worse | dup ranks ds/bal |\n");
  fmt::print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& m : models) {
    if (!only_model.empty() && m.name != only_model) continue;
    const int L = static_cast<int>(m.w.rows()), E = static_cast<int>(m.w.cols());
    for (int ep : {8, 16, 32, 64}) {
      if (only_ep > 0 && ep != only_ep) continue;
      for (int r : {0, 16, 32, 64, 128}) {
        if ((E + r) % ep != 0) continue;
        if (quick && !(ep == 64 || ep == 8)) continue;
        const int nodes = fixed_nodes > 0 ? fixed_nodes : std::max(1, ep / 8);
        topology t{L, E, E + r, ep, nodes, m.groups};
        if (!validate_topology(t).ok()) continue;
        policy_options ds_opt, bal_opt;
        ds_opt.kind = policy_kind::deepseek;
        bal_opt.kind = policy_kind::balanced;
        result<placement> ds = error{}, bal = error{};
        const double ds_ms = median_ms(repeat, [&] { ds = rebalance(m.w, t, ds_opt); });
        const double bal_ms = median_ms(repeat, [&] { bal = rebalance(m.w, t, bal_opt); });
        if (!ds || !bal) {
          fmt::print("| {} | {} | {} | {} | {} | {} |\n", m.name, ep, r, t.slots_per_rank(), nodes,
                     ds ? bal.message() : ds.message());
          continue;
        }
        const auto ids = measure_imbalance(m.w, *ds, t);
        const auto ibal = measure_imbalance(m.w, *bal, t);
        auto gds = measure_gap(m.w, *ds, t, bound_options{});
        auto gbal = measure_gap(m.w, *bal, t, bound_options{});
        if (!gds || !gbal) continue;
        int worse = 0;
        for (int l = 0; l < L; ++l) worse += ibal.layer_max[l] > ids.layer_max[l] * (1 + 1e-12);
        fmt::print(
            "| {} | {} | {} | {} | {} | {:.2f} | {:.2f} | {:.2f}x | {:.4f} | {:.4f} | {:.4f} | "
            "{:.2f}% | {:.2f}% | {} | {}/{} |\n",
            m.name, ep, r, t.slots_per_rank(), nodes, ds_ms, bal_ms, bal_ms / ds_ms,
            mean_ratio(ids), mean_ratio(ibal), mean_bound_ratio(*gbal, ibal), 100 * gds->mean_gap,
            100 * gbal->mean_gap, worse, duplicate_ranks(*ds, t), duplicate_ranks(*bal, t));
      }
    }
  }

  // Migration: plan, drift the loads, re-plan from scratch vs from the previous mapping.
  fmt::print(
      "\n| model | EP | R | same-stats moves | drifted: scratch moves | scratch imb | "
      "--previous moves | --previous imb | imb diff |\n|---|---|---|---|---|---|---|---|---|\n");
  for (const auto& m : models) {
    const int L = static_cast<int>(m.w.rows()), E = static_cast<int>(m.w.cols());
    for (int ep : {8, 32}) {
      const int r = 32;
      if ((E + r) % ep != 0) continue;
      topology t{L, E, E + r, ep, 1, m.groups};
      policy_options o;
      o.kind = policy_kind::balanced;
      auto base = rebalance(m.w, t, o);
      if (!base) continue;
      policy_options again = o;
      again.previous = &*base;
      auto same = rebalance(m.w, t, again);
      weight_matrix drifted = m.w;
      std::uint64_t s = 12345;
      for (Eigen::Index i = 0; i < drifted.size(); ++i) {
        s = s * 6364136223846793005ULL + 1442695040888963407ULL;
        const double u = static_cast<double>(s >> 11) * 0x1.0p-53;
        drifted.data()[i] *= std::exp(0.4 * (u - 0.5));
      }
      auto scratch = rebalance(drifted, t, o);
      auto prev = rebalance(drifted, t, again);
      if (!same || !scratch || !prev) continue;
      const double is = measure_imbalance(drifted, *scratch, t).overall;
      const double ip = measure_imbalance(drifted, *prev, t).overall;
      fmt::print("| {} | {} | {} | {} | {} | {:.4f} | {} | {:.4f} | {:+.2f}% |\n", m.name, ep, r,
                 moves(*same, *base), moves(*scratch, *base), is, moves(*prev, *base), ip,
                 100 * (ip / is - 1));
    }
  }
  return 0;
}
