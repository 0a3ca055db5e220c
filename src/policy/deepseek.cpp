// DeepSeek EPLB as vLLM's DefaultEplbPolicy runs it (policy/default.py @ 02c1119c), reproduced
// bit for bit on tie-free inputs: float32 loads and group sums, float64 division and pack
// accumulators, first-index argmin/argmax, descending sort with ties by ascending index.

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "eplb/policy.hpp"
#include "policy/deepseek_detail.hpp"

namespace eplb {
namespace detail {

float numpy_pairwise_sum(const float* a, std::ptrdiff_t n) noexcept {
  // Mirrors numpy's @TYPE@_pairwise_sum for float32 (PW_BLOCKSIZE 128, 8 accumulators), which
  // np.sum uses along a contiguous axis; float accumulators throughout.
  if (n < 8) {
    float res = 0.0f;
    for (std::ptrdiff_t i = 0; i < n; ++i) res += a[i];
    return res;
  }
  if (n <= 128) {
    float r[8];
    for (int k = 0; k < 8; ++k) r[k] = a[k];
    std::ptrdiff_t i = 8;
    for (; i < n - (n % 8); i += 8) {
      for (int k = 0; k < 8; ++k) r[k] += a[i + k];
    }
    float res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
    for (; i < n; ++i) res += a[i];
    return res;
  }
  std::ptrdiff_t n2 = n / 2;
  n2 -= n2 % 8;
  return numpy_pairwise_sum(a, n2) + numpy_pairwise_sum(a + n2, n - n2);
}

void balanced_packing(const double* x, int n, int m, int* pack_index, int* rank_in_pack,
                      packing_scratch& s) {
  const int per_pack = n / m;
  if (per_pack == 1) {
    // vLLM's shortcut: item j goes to pack j whatever the loads, no sorting.
    for (int j = 0; j < n; ++j) {
      pack_index[j] = j;
      rank_in_pack[j] = 0;
    }
    return;
  }
  // (load, index) pairs sorted by descending load, ties by ascending index: a total order, so
  // std::sort is deterministic and equals a stable argsort of -x.
  s.order.resize(static_cast<std::size_t>(n));
  for (int j = 0; j < n; ++j) s.order[static_cast<std::size_t>(j)] = {x[j], j};
  std::sort(s.order.begin(), s.order.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  // Open packs in a min-heap on (load, index): its top is numpy's argmin (first index among
  // equal loads), and a full pack leaves the heap, as the +inf vLLM assigns it never wins.
  auto above = [](const std::pair<double, int>& a, const std::pair<double, int>& b) {
    return a.first > b.first || (a.first == b.first && a.second > b.second);
  };
  s.open.resize(static_cast<std::size_t>(m));
  s.count.assign(static_cast<std::size_t>(m), 0);
  for (int p = 0; p < m; ++p) s.open[static_cast<std::size_t>(p)] = {0.0, p};
  // All loads are 0.0 with ascending indices: already a valid heap under `above`.
  auto end = s.open.end();
  for (const auto& [load, item] : s.order) {
    std::pop_heap(s.open.begin(), end, above);
    auto& pack = *(end - 1);
    const int best = pack.second;
    pack_index[item] = best;
    rank_in_pack[item] = s.count[static_cast<std::size_t>(best)];
    pack.first += load;
    if (++s.count[static_cast<std::size_t>(best)] == per_pack) {
      --end;
    } else {
      std::push_heap(s.open.begin(), end, above);
    }
  }
}

void replicate_experts(const double* x, int n, int q, int* phy2log, int* cnt,
                       replicate_scratch& s) {
  for (int j = 0; j < n; ++j) {
    phy2log[j] = j;
    cnt[j] = 1;
  }
  if (q == n) return;
  // A max-heap on (x/cnt, lower index first) pops exactly numpy's argmax(x / cnt): only the
  // chosen expert's key changes per step, so O(n + (q-n) log n) instead of O((q-n) n).
  auto below = [](const std::pair<double, int>& a, const std::pair<double, int>& b) {
    return a.first < b.first || (a.first == b.first && a.second > b.second);
  };
  s.heap.resize(static_cast<std::size_t>(n));
  for (int j = 0; j < n; ++j) s.heap[static_cast<std::size_t>(j)] = {x[j], j};
  std::make_heap(s.heap.begin(), s.heap.end(), below);
  for (int j = n; j < q; ++j) {
    std::pop_heap(s.heap.begin(), s.heap.end(), below);
    auto& top = s.heap.back();
    const int e = top.second;
    phy2log[j] = e;
    ++cnt[e];
    top.first = x[e] / static_cast<double>(cnt[e]);
    std::push_heap(s.heap.begin(), s.heap.end(), below);
  }
}

packing_result balanced_packing(const std::vector<double>& x, int m) {
  packing_result r;
  r.pack_index.resize(x.size());
  r.rank_in_pack.resize(x.size());
  packing_scratch s;
  balanced_packing(x.data(), static_cast<int>(x.size()), m, r.pack_index.data(),
                   r.rank_in_pack.data(), s);
  return r;
}

replication_result replicate_experts(const std::vector<double>& x, int q) {
  replication_result r;
  r.phy2log.resize(static_cast<std::size_t>(q));
  r.cnt.resize(x.size());
  replicate_scratch s;
  replicate_experts(x.data(), static_cast<int>(x.size()), q, r.phy2log.data(), r.cnt.data(), s);
  return r;
}

}  // namespace detail

namespace {

std::string str(long long v) { return std::to_string(v); }

error topology_error(const std::string& field, const std::string& what) {
  return make_error(errc::invalid_topology, position{}, field, what);
}

// Sizes of one run of the hierarchical algorithm (the global policy is groups = nodes = 1).
struct shape {
  int experts, slots, groups, nodes, ranks;
  int group_size() const { return experts / groups; }
  int groups_per_node() const { return groups / nodes; }
  int experts_per_node() const { return experts / nodes; }
  int slots_per_node() const { return slots / nodes; }
  int ranks_per_node() const { return ranks / nodes; }
  int slots_per_rank() const { return slots / ranks; }
};

// Buffers for one layer, allocated once per call and reused for every layer.
struct workspace {
  explicit workspace(const shape& s)
      : w32(static_cast<std::size_t>(s.experts)),
        group_load(static_cast<std::size_t>(s.groups)),
        group_pack(static_cast<std::size_t>(s.groups)),
        group_rank(static_cast<std::size_t>(s.groups)),
        mlog2log(static_cast<std::size_t>(s.experts)),
        node_load(static_cast<std::size_t>(s.experts_per_node())),
        phy2mlog(static_cast<std::size_t>(s.slots_per_node())),
        mcnt(static_cast<std::size_t>(s.experts_per_node())),
        replica_load(static_cast<std::size_t>(s.slots_per_node())),
        rank_index(static_cast<std::size_t>(s.slots_per_node())),
        rank_slot(static_cast<std::size_t>(s.slots_per_node())) {
    const auto most_items = static_cast<std::size_t>(std::max(s.groups, s.slots_per_node()));
    const auto most_packs = static_cast<std::size_t>(std::max(s.nodes, s.ranks_per_node()));
    pack.order.reserve(most_items);
    pack.open.reserve(most_packs);
    pack.count.reserve(most_packs);
    rep.heap.reserve(static_cast<std::size_t>(s.experts_per_node()));
  }
  std::vector<float> w32;          // the layer's loads as float32, as vLLM converts them
  std::vector<double> group_load;  // float32 group sums, widened exactly
  std::vector<int> group_pack, group_rank, mlog2log;
  std::vector<double> node_load;  // float32 loads of one node's experts, widened exactly
  std::vector<int> phy2mlog, mcnt;
  std::vector<double> replica_load;
  std::vector<int> rank_index, rank_slot;
  detail::packing_scratch pack;
  detail::replicate_scratch rep;
};

// vLLM's rebalance_experts_hierarchical for one layer; `out` receives the layer's P slots.
void hierarchical_layer(const double* w, const shape& s, workspace& ws, std::int32_t* out) {
  const int gs = s.group_size();
  for (int e = 0; e < s.experts; ++e) ws.w32[e] = static_cast<float>(w[e]);
  // Step 1: whole groups onto nodes; relabel experts node-major ("mlog").
  for (int g = 0; g < s.groups; ++g) {
    ws.group_load[g] =
        detail::numpy_pairwise_sum(ws.w32.data() + static_cast<std::size_t>(g) * gs, gs);
  }
  detail::balanced_packing(ws.group_load.data(), s.groups, s.nodes, ws.group_pack.data(),
                           ws.group_rank.data(), ws.pack);
  const int gpn = s.groups_per_node();
  for (int g = 0; g < s.groups; ++g) {
    const int first_mlog = (ws.group_pack[g] * gpn + ws.group_rank[g]) * gs;
    for (int i = 0; i < gs; ++i) ws.mlog2log[first_mlog + i] = g * gs + i;
  }
  // Steps 2 and 3, node by node: replicate inside the node, then pack its replicas onto its ranks.
  const int epn = s.experts_per_node();
  const int spn = s.slots_per_node();
  const int spr = s.slots_per_rank();
  for (int n = 0; n < s.nodes; ++n) {
    const int* node_mlog2log = ws.mlog2log.data() + static_cast<std::size_t>(n) * epn;
    for (int j = 0; j < epn; ++j) ws.node_load[j] = ws.w32[node_mlog2log[j]];
    detail::replicate_experts(ws.node_load.data(), epn, spn, ws.phy2mlog.data(), ws.mcnt.data(),
                              ws.rep);
    for (int j = 0; j < spn; ++j) {
      const int m = ws.phy2mlog[j];
      ws.replica_load[j] = ws.node_load[m] / static_cast<double>(ws.mcnt[m]);
    }
    detail::balanced_packing(ws.replica_load.data(), spn, s.ranks_per_node(), ws.rank_index.data(),
                             ws.rank_slot.data(), ws.pack);
    std::int32_t* node_out = out + static_cast<std::size_t>(n) * spn;
    for (int j = 0; j < spn; ++j) {
      node_out[ws.rank_index[j] * spr + ws.rank_slot[j]] = node_mlog2log[ws.phy2mlog[j]];
    }
  }
}

}  // namespace

result<placement> rebalance_deepseek(const weight_matrix& weights, const topology& topo,
                                     plan_info* info) {
  return rebalance_deepseek(weights, topo, hierarchical_mode::automatic, info);
}

result<placement> rebalance_deepseek(const weight_matrix& weights, const topology& topo,
                                     hierarchical_mode mode, plan_info* info) {
  const int E = topo.num_experts, P = topo.num_slots, M = topo.num_ranks;
  const int G = topo.num_groups, N = topo.num_nodes, L = topo.num_layers;
  if (L <= 0) return topology_error("num_layers", "must be positive, got " + str(L));
  if (E <= 0) return topology_error("num_experts", "must be positive, got " + str(E));
  if (M <= 0) return topology_error("--ep", "EP size must be positive, got " + str(M));
  if (N <= 0) return topology_error("--nodes", "must be positive, got " + str(N));
  if (G <= 0) return topology_error("--groups", "must be positive, got " + str(G));
  if (weights.rows() != L || weights.cols() != E) {
    return make_error(errc::shape_mismatch, position{}, "weights",
                      "load matrix is " + str(weights.rows()) + " layers x " + str(weights.cols()) +
                          " experts but the topology has " + str(L) + " x " + str(E));
  }

  bool hierarchical = false;
  std::string note;
  switch (mode) {
    case hierarchical_mode::automatic:
      hierarchical = G % N == 0;
      if (hierarchical) {
        note = "num_groups=" + str(G) + " is divisible by num_nodes=" + str(N) +
               ": hierarchical policy (as vLLM)";
      } else {
        note = "num_groups=" + str(G) + " is not divisible by num_nodes=" + str(N) +
               ": global policy (as vLLM)";
      }
      break;
    case hierarchical_mode::on:
      hierarchical = true;
      note = "hierarchical policy requested";
      break;
    case hierarchical_mode::off:
      note = "global policy requested";
      break;
  }
  if (hierarchical && G == 1 && N == 1) {
    // One group on one node is the global policy; say so rather than claim node grouping.
    hierarchical = false;
    note += "; with 1 group and 1 node it is the global policy";
  }
  if (hierarchical && G == N && N > 1) {
    note += "; one group per node: groups land on nodes by index, not by load";
  }

  if (hierarchical) {
    if (E % G != 0) {
      return topology_error("--groups", str(E) + " experts must be divisible by --groups " +
                                            str(G) +
                                            " (each group holds E/G experts); pick a divisor of " +
                                            str(E) + " or use the global policy");
    }
    if (G % N != 0) {
      return topology_error("--groups", str(G) + " groups must be divisible by --nodes " + str(N) +
                                            " for the hierarchical policy (each node takes whole "
                                            "groups); vLLM uses the global policy here");
    }
    if (M % N != 0) {
      return topology_error("--nodes", "EP size " + str(M) + " must be divisible by --nodes " +
                                           str(N) + " (each node gets EP/nodes ranks)");
    }
  }
  if (P < E) {
    return topology_error("--redundant", "must be non-negative, got " + str(P - E) + " (" + str(P) +
                                             " slots for " + str(E) + " experts)");
  }
  if (P % M != 0) {
    int next = P - E;
    while ((E + next) % M != 0) ++next;
    return topology_error("--redundant",
                          "num_slots=" + str(P) + " (" + str(E) + " experts + " + str(P - E) +
                              " redundant) must be divisible by --ep " + str(M) +
                              "; use --redundant " + str(next) +
                              " (smallest valid: " + str(smallest_valid_redundant(E, M)) + ")");
  }
  const shape s{E, P, hierarchical ? G : 1, hierarchical ? N : 1, M};

  for (int l = 0; l < L; ++l) {
    for (int e = 0; e < E; ++e) {
      const double v = weights(l, e);
      // vLLM converts to float32; a load beyond float32 range would become inf there.
      if (!(v >= 0) || !std::isfinite(static_cast<float>(v))) {
        return make_error(errc::invalid_value, position{}, "weights",
                          "layer " + str(l) + " expert " + str(e) + ": load " + std::to_string(v) +
                              " is not a finite non-negative float32");
      }
    }
  }

  placement out;
  out.num_layers = L;
  out.num_slots = P;
  out.num_experts = E;
  out.physical_to_logical.resize(static_cast<std::size_t>(L) * P);
  workspace ws(s);
  for (int l = 0; l < L; ++l) hierarchical_layer(weights.row(l).data(), s, ws, out.row(l));

  if (info != nullptr) {
    info->policy = "deepseek";
    info->hierarchical = hierarchical;
    info->note = std::move(note);
  }
  return out;
}

}  // namespace eplb
