#include "eplb/bounds.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <queue>
#include <string>
#include <utility>
#include <vector>

namespace eplb {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Rounds x up, but treats an x within 1e-12 (relative) above an integer as that integer: w / T
// computed at T = fl(w / n) may land an ulp above n, and a count one too large would make B3
// declare a feasible T infeasible, overstating the bound. Rounding down near integers can only
// weaken the bound, which keeps it valid.
std::int64_t safe_ceil(double x) { return static_cast<std::int64_t>(std::ceil(x - x * 1e-12)); }

// B2: D'Hondt with a per-expert cap (section 4, skipping capped experts) gives counts that minimise
// max_e w_e / c_e; returns that maximum. The caller checks cap * E >= P, so the greedy never runs
// out of experts that may take another replica.
double replication_bound(const double* w, int num_experts, int num_slots, int cap) {
  using entry = std::pair<double, int>;  // (w_e / c_e, -e): ties go to the lower index
  std::vector<entry> heap_storage;
  heap_storage.reserve(static_cast<std::size_t>(num_experts));
  std::vector<int> cnt(static_cast<std::size_t>(num_experts), 1);
  double capped_max = 0;
  for (int e = 0; e < num_experts; ++e) {
    if (cap > 1) {
      heap_storage.emplace_back(w[e], -e);
    } else {
      capped_max = std::max(capped_max, w[e]);
    }
  }
  std::priority_queue<entry> heap(std::less<entry>(), std::move(heap_storage));
  for (int extra = num_slots - num_experts; extra > 0 && !heap.empty(); --extra) {
    const int e = -heap.top().second;
    heap.pop();
    const int c = ++cnt[static_cast<std::size_t>(e)];
    const double v = w[e] / c;
    if (c >= cap) {
      capped_max = std::max(capped_max, v);
    } else {
      heap.emplace(v, -e);
    }
  }
  return heap.empty() ? capped_max : std::max(capped_max, heap.top().first);
}

// One expert that may be "big" (a slots, counting against the budget) or "small" (a + saving
// slots).
struct knap_item {
  std::int64_t weight;  // a_e
  std::int64_t saving;  // b_e - a_e > 0
};

// Reused buffers of the B3 test, so one layer allocates once.
struct b3_scratch {
  std::vector<knap_item> items;
  std::vector<std::int64_t> dp;
  std::vector<double> candidates;
};

// B3 test for one j at one T (section 10): returns false only when no placement with max load <= T
// exists. In such a placement at most j*M replicas exceed T / (j+1), so every expert is either
// big (c_e >= a_e = max(1, ceil(w_e/T)), all c_e replicas count against the budget j*M, hence
// sum_big a_e <= j*M) or small (c_e >= b_e = max(1, ceil((j+1) w_e / T))), and
// sum_big a_e + sum_small b_e <= sum c_e = P. Infeasible when some a_e > cap, when the experts
// forced big (b_e > cap) overrun the budget, or when the least number of slots over all big/small
// choices (a 0/1 knapsack: maximise the saving b_e - a_e under the budget) exceeds P. The
// fractional relaxation is checked first; it saves at least as much as any 0/1 choice, so
// "infeasible" from it is also valid; the exact knapsack then rules out more T.
bool b3_feasible(const double* w, int num_experts, int num_slots, std::int64_t cap,
                 std::int64_t budget, int jp1, double t, bool exact, b3_scratch& s) {
  s.items.clear();
  std::int64_t total = 0;  // slots when every optional expert is small
  for (int e = 0; e < num_experts; ++e) {
    if (w[e] <= 0) {
      total += 1;
      continue;
    }
    const double x = w[e] / t;
    const std::int64_t a = std::max<std::int64_t>(1, safe_ceil(x));
    if (a > cap) return false;
    const std::int64_t b = std::max<std::int64_t>(1, safe_ceil(jp1 * x));
    if (b > cap) {  // cannot be small: forced big
      budget -= a;
      total += a;
      if (budget < 0) return false;
    } else {
      total += b;
      if (b > a) s.items.push_back({a, b - a});
    }
  }
  const std::int64_t need = total - num_slots;  // saving required to fit in P slots
  if (need <= 0) return true;
  // Fractional knapsack: take items by saving per budget unit, the last one partly.
  std::sort(s.items.begin(), s.items.end(), [](const knap_item& x, const knap_item& y) {
    const std::int64_t lhs = x.saving * y.weight;
    const std::int64_t rhs = y.saving * x.weight;
    if (lhs != rhs) return lhs > rhs;
    return x.weight < y.weight;
  });
  std::int64_t rem = budget;
  std::int64_t saved = 0;
  bool lp_ok = false;
  for (const knap_item& it : s.items) {
    if (it.weight <= rem) {
      rem -= it.weight;
      saved += it.saving;
      if (saved >= need) {
        lp_ok = true;
        break;
      }
    } else {
      // Partial item saves saving * rem / weight; compare in integers.
      lp_ok = (need - saved) * it.weight <= it.saving * rem;
      break;
    }
  }
  if (!lp_ok) return false;
  if (!exact) return true;
  // Integer greedy (skip what does not fit): a 0/1 solution, so success proves feasibility.
  rem = budget;
  saved = 0;
  for (const knap_item& it : s.items) {
    if (it.weight <= rem) {
      rem -= it.weight;
      saved += it.saving;
      if (saved >= need) return true;
    }
  }
  // Exact 0/1 knapsack over the budget.
  const std::size_t cap_budget = static_cast<std::size_t>(budget);
  s.dp.assign(cap_budget + 1, 0);
  for (const knap_item& it : s.items) {
    const std::size_t wt = static_cast<std::size_t>(it.weight);
    if (wt > cap_budget) continue;
    for (std::size_t c = cap_budget; c >= wt; --c) {
      s.dp[c] = std::max(s.dp[c], s.dp[c - wt] + it.saving);
      if (c == wt) break;
    }
    if (s.dp[cap_budget] >= need) return true;
  }
  return s.dp[cap_budget] >= need;
}

// LB_j: the least T at which b3_feasible holds, given that it fails at lo > 0. The test only
// changes where w_e / T or (j+1) w_e / T crosses an integer, i.e. at T = w_e / n or (j+1) w_e / n,
// and is constant on [t_i, t_{i+1}) between such points; so the least feasible T is one of them in
// (lo, hi] with hi = (j+1) w_max (where every b_e = 1, always feasible). With lo >= W / M there are
// at most (j+2) M + 4 E of them. Every T below the result fails the test, so OPT >= result.
double cardinality_bound_j(const double* w, int num_experts, int num_slots, std::int64_t cap,
                           std::int64_t budget, int jp1, double lo, double w_max, bool exact,
                           b3_scratch& s) {
  const double hi = jp1 * w_max;
  s.candidates.clear();
  auto add_points = [&](double v) {  // v / n in (lo, hi]
    const double n_first = std::max(1.0, std::floor(v / hi));
    const double n_last = std::ceil(v / lo);
    for (double n = n_first; n <= n_last; n += 1.0) {
      const double t = v / n;
      if (t > lo && t <= hi) s.candidates.push_back(t);
    }
  };
  for (int e = 0; e < num_experts; ++e) {
    if (w[e] <= 0) continue;
    add_points(w[e]);
    add_points(jp1 * w[e]);
  }
  std::sort(s.candidates.begin(), s.candidates.end());
  s.candidates.erase(std::unique(s.candidates.begin(), s.candidates.end()), s.candidates.end());
  // Binary search for the first feasible candidate; the last one (hi) is feasible.
  std::size_t first = 0;
  std::size_t last = s.candidates.size();  // answer in [first, last)
  if (last == 0) return hi;
  last -= 1;  // candidates[last] == hi, feasible
  while (first < last) {
    const std::size_t mid = first + (last - first) / 2;
    if (b3_feasible(w, num_experts, num_slots, cap, budget, jp1, s.candidates[mid], exact, s)) {
      last = mid;
    } else {
      first = mid + 1;
    }
  }
  return s.candidates[first];
}

// B4 for forced counts (R == 0): replica sizes are the weights themselves.
double packing_bound(const double* w, int num_experts, int num_ranks) {
  std::vector<double> p(w, w + num_experts);
  std::sort(p.begin(), p.end(), std::greater<double>());
  const int n = num_experts;
  const int k = n / num_ranks;
  // The rank of the largest replica holds k-1 others, at least the k-1 smallest.
  double bound = p[0];
  for (int i = n - (k - 1); i < n; ++i) bound += p[static_cast<std::size_t>(i)];
  if (k >= 2) {
    // Two of the M+1 largest share a rank.
    const auto m = static_cast<std::size_t>(num_ranks);
    bound = std::max(bound, p[m - 1] + p[m]);
  }
  if (k == 2) {
    // Pairing largest with smallest is optimal for two per rank.
    for (int i = 0; i < num_ranks; ++i) {
      bound = std::max(bound, p[static_cast<std::size_t>(i)] +
                                  p[static_cast<std::size_t>(2 * num_ranks - 1 - i)]);
    }
  }
  return bound;
}

// Max rank load of one layer with each expert's load split evenly over its replicas. Computed here
// (not with metrics.hpp) so the bounds stand alone; sums run in slot order for determinism.
double layer_max_load(const double* w, const std::int32_t* row, const topology& t,
                      std::vector<int>& cnt, std::vector<double>& load) {
  std::fill(cnt.begin(), cnt.end(), 0);
  std::fill(load.begin(), load.end(), 0.0);
  for (int s = 0; s < t.num_slots; ++s) ++cnt[static_cast<std::size_t>(row[s])];
  const int k = t.slots_per_rank();
  for (int s = 0; s < t.num_slots; ++s) {
    const int e = row[s];
    load[static_cast<std::size_t>(s / k)] += w[e] / cnt[static_cast<std::size_t>(e)];
  }
  return *std::max_element(load.begin(), load.end());
}

}  // namespace

layer_bound lower_bound_layer(const double* w, int num_experts, int num_slots, int num_ranks,
                              const bound_options& options) {
  layer_bound out;
  if (w == nullptr || num_experts <= 0 || num_ranks <= 0 || num_slots < num_experts ||
      num_slots % num_ranks != 0) {
    return out;
  }
  double total = 0;
  double w_max = 0;
  for (int e = 0; e < num_experts; ++e) {
    if (!(w[e] >= 0)) return out;  // negative or NaN
    total += w[e];
    w_max = std::max(w_max, w[e]);
  }
  const int redundant = num_slots - num_experts;
  const int k = num_slots / num_ranks;
  const std::int64_t cap =
      options.forbid_duplicates ? std::min(num_ranks, redundant + 1) : redundant + 1;
  if (cap * num_experts < num_slots) {  // no count vector fits under the cap
    out.b2_replication = kInf;
    out.best = kInf;
    return out;
  }
  if (!(total > 0) || !std::isfinite(total)) return out;

  out.b1_mean = total / num_ranks;
  out.b2_replication = replication_bound(w, num_experts, num_slots, static_cast<int>(cap));
  if (redundant == 0) out.b4_packing = packing_bound(w, num_experts, num_ranks);
  double best = std::max({out.b1_mean, out.b2_replication, out.b4_packing});

  b3_scratch scratch;
  for (int j = 1; j < k; ++j) {
    const std::int64_t budget = static_cast<std::int64_t>(j) * num_ranks;
    // LB_j can only raise the bound when the test already fails at the current best.
    if (b3_feasible(w, num_experts, num_slots, cap, budget, j + 1, best, options.exact_knapsack,
                    scratch)) {
      continue;
    }
    const double lb = cardinality_bound_j(w, num_experts, num_slots, cap, budget, j + 1, best,
                                          w_max, options.exact_knapsack, scratch);
    out.b3_cardinality = std::max(out.b3_cardinality, lb);
    best = std::max(best, lb);
  }
  out.best = best;
  return out;
}

result<std::vector<layer_bound>> lower_bounds(const weight_matrix& weights, const topology& topo,
                                              const bound_options& options) {
  if (status s = validate_topology(topo); !s.ok()) return s.err();
  const position none{};
  if (weights.rows() != topo.num_layers || weights.cols() != topo.num_experts) {
    return make_error(errc::shape_mismatch, none, "weights",
                      "shape " + std::to_string(weights.rows()) + "x" +
                          std::to_string(weights.cols()) + " does not match topology " +
                          std::to_string(topo.num_layers) + " layers x " +
                          std::to_string(topo.num_experts) + " experts");
  }
  for (int l = 0; l < topo.num_layers; ++l) {
    for (int e = 0; e < topo.num_experts; ++e) {
      const double v = weights(l, e);
      if (!(v >= 0) || !std::isfinite(v)) {
        std::string field = "weights: layer ";
        field.append(std::to_string(l)).append(" expert ").append(std::to_string(e));
        return make_error(errc::invalid_value, none, field,
                          "load " + std::to_string(v) + " must be finite and non-negative");
      }
    }
  }
  if (options.forbid_duplicates && topo.slots_per_rank() > topo.num_experts) {
    return make_error(errc::invalid_topology, none, "forbid_duplicates",
                      std::to_string(topo.slots_per_rank()) + " slots per rank exceed the " +
                          std::to_string(topo.num_experts) +
                          " experts, so every placement puts two replicas of an expert on one "
                          "rank; bound with duplicates allowed");
  }
  std::vector<layer_bound> out(static_cast<std::size_t>(topo.num_layers));
  for (int l = 0; l < topo.num_layers; ++l) {
    out[static_cast<std::size_t>(l)] = lower_bound_layer(weights.row(l).data(), topo.num_experts,
                                                         topo.num_slots, topo.num_ranks, options);
  }
  return out;
}

result<gap_report> measure_gap(const weight_matrix& weights, const placement& p,
                               const topology& topo, const bound_options& options) {
  auto bounds = lower_bounds(weights, topo, options);
  if (!bounds) return bounds.err();
  if (status s = validate_placement(p, topo); !s.ok()) return s.err();

  gap_report out;
  const auto layers = static_cast<std::size_t>(topo.num_layers);
  out.layer_gap.resize(layers);
  out.layer_bound.resize(layers);
  out.layer_max.resize(layers);
  std::vector<int> cnt(static_cast<std::size_t>(topo.num_experts));
  std::vector<double> load(static_cast<std::size_t>(topo.num_ranks));
  double sum_max = 0;
  double sum_lb = 0;
  double sum_gap = 0;
  out.worst_gap = -kInf;
  for (int l = 0; l < topo.num_layers; ++l) {
    const auto li = static_cast<std::size_t>(l);
    const double mx = layer_max_load(weights.row(l).data(), p.row(l), topo, cnt, load);
    const double lb = (*bounds)[li].best;
    out.layer_max[li] = mx;
    out.layer_bound[li] = lb;
    out.layer_gap[li] = lb > 0 ? mx / lb - 1.0 : 0.0;
    sum_max += mx;
    sum_lb += lb;
    sum_gap += out.layer_gap[li];
    if (out.layer_gap[li] > out.worst_gap) {
      out.worst_gap = out.layer_gap[li];
      out.worst_layer = l;
    }
  }
  out.mean_gap = sum_gap / topo.num_layers;
  out.overall_gap = sum_lb > 0 ? sum_max / sum_lb - 1.0 : 0.0;
  return out;
}

}  // namespace eplb
