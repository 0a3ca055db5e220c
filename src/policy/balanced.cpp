// eplb-gen's own placement policy: replica counts and packing chosen together, no duplicate
// replicas on a rank, never worse than deepseek per layer, optional node grouping and
// migration-aware re-planning (see rebalance_balanced in include/eplb/policy.hpp).

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <exception>
#include <limits>
#include <numeric>
#include <string>
#include <thread>
#include <vector>

#include "eplb/policy.hpp"
#include "policy/balanced_detail.hpp"
#include "policy/parallel.hpp"

namespace eplb {
namespace detail {

namespace {

// Units (groups or single experts) by descending load onto the least loaded node that has room
// for at most `count_cap` experts and still lets the remaining experts give every node at least
// k (each rank needs k distinct experts). Returns false when a unit fits nowhere.
bool greedy_nodes(const layer_view& v, int nodes, int unit, int count_cap,
                  std::vector<int>& expert_node) {
  const int E = v.experts, k = v.per_rank, units = E / unit;
  std::vector<double> unit_load(static_cast<std::size_t>(units), 0.0);
  for (int e = 0; e < E; ++e) unit_load[static_cast<std::size_t>(e / unit)] += v.w[e];
  std::vector<int> order(static_cast<std::size_t>(units));
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    const double la = unit_load[static_cast<std::size_t>(a)];
    const double lb = unit_load[static_cast<std::size_t>(b)];
    return la > lb || (la == lb && a < b);
  });
  std::vector<double> node_load(static_cast<std::size_t>(nodes), 0.0);
  std::vector<int> node_count(static_cast<std::size_t>(nodes), 0);
  expert_node.assign(static_cast<std::size_t>(E), -1);
  int remaining = E;
  for (int u : order) {
    remaining -= unit;
    int best = -1;
    for (int n = 0; n < nodes; ++n) {
      const auto un = static_cast<std::size_t>(n);
      if (node_count[un] + unit > count_cap) continue;
      int deficit = 0;
      for (int m = 0; m < nodes; ++m) {
        const int c = node_count[static_cast<std::size_t>(m)] + (m == n ? unit : 0);
        deficit += std::max(0, k - c);
      }
      if (deficit > remaining) continue;
      if (best < 0 || node_load[un] < node_load[static_cast<std::size_t>(best)]) best = n;
    }
    if (best < 0) return false;
    node_load[static_cast<std::size_t>(best)] += unit_load[static_cast<std::size_t>(u)];
    node_count[static_cast<std::size_t>(best)] += unit;
    for (int i = 0; i < unit; ++i) expert_node[static_cast<std::size_t>(u * unit + i)] = best;
  }
  // Refinement: swap a unit of the most loaded node with a lighter one elsewhere while that
  // lowers the pair's max (counts stay, so the limits above still hold).
  for (int round = 0; round < 4 * nodes; ++round) {
    int a = 0;
    for (int n = 1; n < nodes; ++n) {
      if (node_load[static_cast<std::size_t>(n)] > node_load[static_cast<std::size_t>(a)]) a = n;
    }
    const double la = node_load[static_cast<std::size_t>(a)];
    int best_u = -1, best_v = -1;
    double best_max = la * (1 - 1e-12);
    for (int u = 0; u < units; ++u) {
      if (expert_node[static_cast<std::size_t>(u * unit)] != a) continue;
      for (int w = 0; w < units; ++w) {
        const int b = expert_node[static_cast<std::size_t>(w * unit)];
        if (b == a) continue;
        const double d =
            unit_load[static_cast<std::size_t>(u)] - unit_load[static_cast<std::size_t>(w)];
        if (d <= 0) continue;
        const double m = std::max(la - d, node_load[static_cast<std::size_t>(b)] + d);
        if (m < best_max) {
          best_max = m;
          best_u = u;
          best_v = w;
        }
      }
    }
    if (best_u < 0) break;
    const int b = expert_node[static_cast<std::size_t>(best_v * unit)];
    const double d =
        unit_load[static_cast<std::size_t>(best_u)] - unit_load[static_cast<std::size_t>(best_v)];
    node_load[static_cast<std::size_t>(a)] -= d;
    node_load[static_cast<std::size_t>(b)] += d;
    for (int i = 0; i < unit; ++i) {
      expert_node[static_cast<std::size_t>(best_u * unit + i)] = b;
      expert_node[static_cast<std::size_t>(best_v * unit + i)] = a;
    }
  }
  return true;
}

// The highest per-node lower bound (mean and replication) of a node assignment.
double node_bound(const layer_view& v, int nodes, const std::vector<int>& expert_node) {
  std::vector<double> w;
  double worst = 0;
  for (int n = 0; n < nodes; ++n) {
    w.clear();
    for (int e = 0; e < v.experts; ++e) {
      if (expert_node[static_cast<std::size_t>(e)] == n) w.push_back(v.w[e]);
    }
    const layer_view sub{w.data(), static_cast<int>(w.size()), v.ranks / nodes, v.per_rank};
    worst = std::max(worst, simple_lower_bound(sub));
  }
  return worst;
}

}  // namespace

bool assign_nodes(const layer_view& v, int nodes, int group_size, std::vector<int>& expert_node) {
  const int E = v.experts, k = v.per_rank;
  if (nodes <= 0) return false;
  const int per_node_max = v.slots() / nodes;  // every expert needs a slot of its node
  if (nodes * k > E || E > nodes * per_node_max) return false;
  // Two candidates, the one with the lower per-node bound wins: node loads balanced with free
  // expert counts, and with (nearly) equal counts, which leaves every node the same number of
  // spare slots for replicas of its hot experts.
  std::vector<int> other;
  bool have = false;
  double best = 0;
  for (int unit : {group_size > 1 && E % group_size == 0 ? group_size : 1, 1}) {
    const int units = E / unit;
    const int equal_cap = std::min(per_node_max, (units + nodes - 1) / nodes * unit);
    for (int cap : {per_node_max, equal_cap}) {
      if (!greedy_nodes(v, nodes, unit, cap, other)) continue;
      const double b = node_bound(v, nodes, other);
      if (!have || b < best) {
        have = true;
        best = b;
        expert_node = other;
      }
    }
    // Whole groups are kept whenever some assignment of them works.
    if (have) break;
  }
  return have;
}

double plan_grouped(layer_planner& planner, const layer_view& v, int nodes,
                    const std::vector<int>& expert_node, std::int32_t* out) {
  const int rpn = v.ranks / nodes, spn = v.slots() / nodes;
  std::vector<std::vector<int>> ids(static_cast<std::size_t>(nodes));
  std::vector<std::vector<double>> w(static_cast<std::size_t>(nodes));
  for (int e = 0; e < v.experts; ++e) {
    const auto n = static_cast<std::size_t>(expert_node[static_cast<std::size_t>(e)]);
    ids[n].push_back(e);
    w[n].push_back(v.w[e]);
  }
  std::vector<std::int32_t> local(static_cast<std::size_t>(spn));
  std::vector<double> node_max(static_cast<std::size_t>(nodes));
  std::vector<char> refined(static_cast<std::size_t>(nodes), 0);
  auto plan_node = [&](int n, bool refine) {
    const auto un = static_cast<std::size_t>(n);
    const layer_view sub{w[un].data(), static_cast<int>(ids[un].size()), rpn, v.per_rank};
    node_max[un] = planner.plan(sub, local.data(), refine);
    for (int j = 0; j < spn; ++j) {
      out[static_cast<std::size_t>(n) * spn + j] = ids[un][static_cast<std::size_t>(local[j])];
    }
  };
  // Only the busiest node sets the layer's max: every node gets the quick plan, then the full
  // search goes to the busiest node until the busiest one has had it (usually one or two nodes
  // instead of all).
  for (int n = 0; n < nodes; ++n) plan_node(n, false);
  for (;;) {
    const auto top = static_cast<std::size_t>(std::max_element(node_max.begin(), node_max.end()) -
                                              node_max.begin());
    if (refined[top] != 0) break;
    refined[top] = 1;
    plan_node(static_cast<int>(top), true);
  }
  std::vector<int> cnt;
  std::vector<double> load;
  return max_rank_load(v, out, cnt, load);
}

}  // namespace detail

namespace {

std::string str(long long v) { return std::to_string(v); }

std::string percent(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%+.3f%%", 100.0 * x);
  return buf;
}

std::string figure(double x) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", x);
  return buf;
}

error topology_error(const std::string& field, const std::string& what) {
  return make_error(errc::invalid_topology, position{}, field, what);
}

// Node grouping keeps a model within this fraction of the global plan's sum over layers of the
// max rank load when `automatic` picks it: a small price for keeping every expert's replicas on
// one node (less cross-node traffic), and large enough to absorb search noise.
constexpr double grouping_tolerance = 0.005;

// Ruin-and-recreate rounds for a layer where deepseek beat the plan: its layout, with duplicate
// replicas moved away, is searched further (rare, so it may cost more than a plan). Rounds are
// cheap at few slots per rank, where they also pay off most.
int deepseek_seed_iterations(int k) { return k <= 4 ? 400 : 48; }

// With a previous placement, a layer may end this fraction above its from-scratch max rank load
// when that saves moved slots.
constexpr double migration_tolerance = 0.001;

result<placement> plan_balanced(const weight_matrix& weights, const topology& topo,
                                const policy_options& options, plan_info* info) {
  const int E = topo.num_experts, P = topo.num_slots, M = topo.num_ranks;
  const int G = topo.num_groups, N = topo.num_nodes, L = topo.num_layers;
  if (G <= 0) return topology_error("--groups", "must be positive, got " + str(G));
  if (N <= 0) return topology_error("--nodes", "must be positive, got " + str(N));
  // The reference: deepseek as `hierarchical` asks, or its global policy when the topology does
  // not allow that branch. Its checks cover the shapes and the loads.
  plan_info ds_info;
  auto ds = rebalance_deepseek(weights, topo, options.hierarchical, &ds_info);
  bool ds_fell_back_to_global = false;
  if (!ds && ds.code() == errc::invalid_topology &&
      options.hierarchical != hierarchical_mode::off) {
    ds = rebalance_deepseek(weights, topo, hierarchical_mode::off, &ds_info);
    ds_fell_back_to_global = true;
  }
  if (!ds) return ds.err();
  const int k = P / M;
  if (options.previous != nullptr) {
    if (status s = validate_placement(*options.previous, topo); !s.ok()) {
      return make_error(errc::invalid_argument, position{}, "previous placement", s.message());
    }
  }

  std::string note;
  if (k > E) {
    // Every rank holds more slots than there are experts: duplicates cannot be avoided.
    if (info != nullptr) {
      info->policy = "balanced";
      info->hierarchical = ds_info.hierarchical;
      info->fallback_layers = L;
      info->note = "slots per rank (" + str(k) + ") exceed the experts (" + str(E) +
                   "): no placement without duplicate replicas; kept deepseek's (" + ds_info.note +
                   ")";
      info->moves_per_layer.clear();
      if (options.previous != nullptr) {
        for (int l = 0; l < L; ++l) {
          int moves = 0;
          for (int p = 0; p < P; ++p) moves += ds->at(l, p) != options.previous->at(l, p);
          info->moves_per_layer.push_back(moves);
        }
      }
    }
    return ds;
  }

  // Which variants to plan.
  const bool can_group = N > 1 && M % N == 0 && N * k <= E;
  bool want_global = true, want_grouped = false;
  switch (options.hierarchical) {
    case hierarchical_mode::on:
      if (N == 1) {
        note = "node grouping requested, but with 1 node it is the global plan";
      } else if (!can_group) {
        if (M % N != 0) {
          return topology_error("--nodes", "EP size " + str(M) + " must be divisible by --nodes " +
                                               str(N) + " for node grouping");
        }
        return topology_error("--nodes", str(N) + " nodes x " + str(k) +
                                             " slots per rank need at least " + str(N * k) +
                                             " experts for node grouping, the model has " + str(E));
      } else {
        want_global = false;
        want_grouped = true;
      }
      break;
    case hierarchical_mode::automatic:
      want_grouped = can_group;
      if (N == 1) {
        note = "1 node: global plan";
      } else if (!can_group) {
        note = "node grouping impossible (" +
               std::string(M % N != 0 ? "EP size not divisible by --nodes"
                                      : "too few experts per node") +
               "): global plan";
      }
      break;
    case hierarchical_mode::off:
      note = "global plan requested";
      break;
  }
  const int group_size = G > 1 && E % G == 0 && G >= N ? E / G : 1;

  const auto size = static_cast<std::size_t>(L) * P;
  placement global{L, P, E, {}}, grouped{L, P, E, {}};
  if (want_global) global.physical_to_logical.resize(size);
  if (want_grouped) grouped.physical_to_logical.resize(size);
  std::vector<double> ds_max(static_cast<std::size_t>(L)), global_max(ds_max), grouped_max(ds_max);
  std::vector<char> global_fallback(static_cast<std::size_t>(L), 0);
  // Per layer, where the node-grouped variant's placement came from.
  enum source : char { own = 0, global_plan = 1, deepseek = 2 };
  std::vector<char> grouped_source(static_cast<std::size_t>(L), own);
  // Forced node grouping is compared with deepseek's node-grouped placement only: a global one
  // would undo the grouping the caller asked for.
  const bool grouped_reference =
      !(options.hierarchical == hierarchical_mode::on && ds_fell_back_to_global);
  std::vector<int> grouped_nodes(want_grouped ? static_cast<std::size_t>(L) * E : 0);

  const int workers = detail::worker_count(options.threads, L);
  struct worker_state {
    detail::layer_planner planner;
    detail::local_search search;
    std::vector<int> cnt, expert_node;
    std::vector<std::int32_t> scratch;
    std::vector<double> load;
  };
  std::vector<worker_state> state(static_cast<std::size_t>(workers));

  const bool ok = detail::for_each_layer(L, workers, [&](int l, int worker) {
    worker_state& ws = state[static_cast<std::size_t>(worker)];
    const auto ul = static_cast<std::size_t>(l);
    const detail::layer_view v{weights.row(l).data(), E, M, k};
    const std::int32_t* ds_row = ds->row(l);
    ds_max[ul] = detail::max_rank_load(v, ds_row, ws.cnt, ws.load);
    // A layer keeps deepseek's placement only when it is strictly better.
    auto keep_better = [&](std::int32_t* row, double mine, double& out_max, char& fell_back) {
      if (ds_max[ul] < mine) {
        // deepseek did better here. Its placement may stack replicas of one expert on a rank:
        // take its layout as a start, move the duplicates away and search on; keep that when it
        // is no worse than deepseek, else deepseek's own (duplicates swapped apart if possible).
        ws.scratch.resize(static_cast<std::size_t>(P));
        const double m =
            ws.planner.improve_from(v, ds_row, deepseek_seed_iterations(k), ws.scratch.data());
        if (m <= ds_max[ul]) {
          std::copy(ws.scratch.begin(), ws.scratch.end(), row);
          out_max = m;
          return;
        }
        std::copy(ds_row, ds_row + P, row);
        detail::repair_duplicates(v, row, M, ds_max[ul]);
        out_max = ds_max[ul];
        fell_back = 1;
      } else {
        out_max = mine;
      }
    };
    if (want_global) {
      std::int32_t* row = global.row(l);
      const double m = ws.planner.plan(v, row);  // max_rank_load of row
      keep_better(row, m, global_max[ul], global_fallback[ul]);
    }
    if (want_grouped) {
      std::int32_t* row = grouped.row(l);
      detail::assign_nodes(v, N, group_size, ws.expert_node);
      std::copy(ws.expert_node.begin(), ws.expert_node.end(), grouped_nodes.begin() + ul * E);
      const double m = detail::plan_grouped(ws.planner, v, N, ws.expert_node, row);
      grouped_max[ul] = m;
      if (grouped_reference && ds_max[ul] < m) {
        // Worse than deepseek here: take the global plan's layer when planned (it is never
        // worse than deepseek), else deepseek's.
        if (want_global && global_max[ul] <= ds_max[ul]) {
          std::copy(global.row(l), global.row(l) + P, row);
          grouped_max[ul] = global_max[ul];
          grouped_source[ul] = global_plan;
        } else {
          std::copy(ds_row, ds_row + P, row);
          // Swaps stay inside a node when deepseek's layer is node-grouped.
          detail::repair_duplicates(v, row, ds_info.hierarchical ? M / N : M, ds_max[ul]);
          grouped_max[ul] = ds_max[ul];
          grouped_source[ul] = deepseek;
        }
      }
    }
  });
  if (!ok)
    return make_error(errc::internal, position{}, "balanced", "out of memory while planning");

  // Choose the variant.
  bool use_grouped = want_grouped && !want_global;
  if (want_global && want_grouped) {
    double sum_global = 0, sum_grouped = 0;
    for (int l = 0; l < L; ++l) {
      sum_global += global_max[static_cast<std::size_t>(l)];
      sum_grouped += grouped_max[static_cast<std::size_t>(l)];
    }
    use_grouped = sum_grouped <= sum_global * (1 + grouping_tolerance);
    const double excess = sum_global > 0 ? sum_grouped / sum_global - 1 : 0.0;
    note = "node-grouped sum of max rank loads " + figure(sum_grouped) + " vs global " +
           figure(sum_global) + " (" + percent(excess) + ", tolerance " +
           percent(grouping_tolerance) + "): " + (use_grouped ? "node-grouped" : "global") +
           " plan";
  } else if (use_grouped) {
    note = "node-grouped plan requested";
  }
  if (note.empty()) note = "global plan";
  placement& chosen = use_grouped ? grouped : global;
  const std::vector<double>& chosen_max = use_grouped ? grouped_max : global_max;
  int fallbacks = 0, global_layers = 0;
  std::vector<char> fell_back(static_cast<std::size_t>(L), 0);  // not the variant's own plan
  for (int l = 0; l < L; ++l) {
    const auto ul = static_cast<std::size_t>(l);
    if (use_grouped) {
      fallbacks += grouped_source[ul] == deepseek ? 1 : 0;
      global_layers += grouped_source[ul] == global_plan ? 1 : 0;
      fell_back[ul] = grouped_source[ul] != own ? 1 : 0;
    } else {
      fallbacks += global_fallback[ul];
      fell_back[ul] = global_fallback[ul];
    }
  }
  if (global_layers > 0) {
    note += "; " + str(global_layers) +
            " layer(s) use the global plan where node grouping would be worse than deepseek";
  }
  if (fallbacks > 0) {
    note += "; " + str(fallbacks) + " layer(s) kept deepseek's placement (" + ds_info.note + ")";
  }
  if (use_grouped && !grouped_reference) {
    note += "; deepseek has no node-grouped placement for this topology: layers not compared";
  }

  std::vector<int> moves;
  if (options.previous != nullptr) {
    // Migration: re-plan every layer from the deployed placement.
    placement migrated{L, P, E, std::vector<std::int32_t>(size)};
    moves.assign(static_cast<std::size_t>(L), 0);
    const int rpn = use_grouped ? M / N : M;
    const bool ok2 = detail::for_each_layer(L, workers, [&](int l, int worker) {
      worker_state& ws = state[static_cast<std::size_t>(worker)];
      const auto ul = static_cast<std::size_t>(l);
      const detail::layer_view v{weights.row(l).data(), E, M, k};
      const double target = std::min(chosen_max[ul] * (1 + migration_tolerance), ds_max[ul]);
      // Keep the layer's node grouping while migrating, unless it fell back to deepseek.
      const int* pinned =
          use_grouped && fell_back[ul] == 0 ? grouped_nodes.data() + ul * E : nullptr;
      const auto outcome = detail::migrate_layer(v, options.previous->row(l), chosen.row(l), target,
                                                 options.max_moves, pinned, rpn, ws.search,
                                                 ws.planner, migrated.row(l));
      moves[ul] = outcome.moves;
    });
    if (!ok2) {
      return make_error(errc::internal, position{}, "balanced", "out of memory while migrating");
    }
    chosen = std::move(migrated);
    // The moves themselves are counted by the caller on the placement it writes.
    note += "; migrated from the previous placement" +
            (options.max_moves >= 0 ? " (at most " + str(options.max_moves) + " slots per layer)"
                                    : std::string());
  } else if (options.max_moves >= 0) {
    note += "; max_moves ignored without a previous placement";
  }

  if (info != nullptr) {
    info->policy = "balanced";
    info->hierarchical = use_grouped;
    info->note = std::move(note);
    info->fallback_layers = fallbacks;
    info->moves_per_layer = std::move(moves);
  }
  return std::move(chosen);
}

}  // namespace

result<placement> rebalance_balanced(const weight_matrix& weights, const topology& topo,
                                     const policy_options& options, plan_info* info) {
  try {
    return plan_balanced(weights, topo, options, info);
  } catch (const std::exception& e) {
    // Only allocation can throw here; no exception leaves the library.
    return make_error(errc::internal, position{}, "balanced", std::string("failed: ") + e.what());
  }
}

}  // namespace eplb
