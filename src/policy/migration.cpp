// Migration-aware planning: aligning a plan to the placement currently deployed (rank matching,
// then slot matching inside ranks), re-planning a layer from it with as few changed slots as the
// balance allows (see balanced_detail.hpp), and the --max-moves cap every policy and objective's
// result goes through (cap_moves).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <vector>

#include "eplb/policy.hpp"
#include "policy/balanced_detail.hpp"

namespace eplb::detail {
namespace {

std::size_t idx(int i) { return static_cast<std::size_t>(i); }

// Minimum-cost perfect matching of an n x n integer cost matrix (row-major), the Hungarian
// algorithm with potentials, O(n^3). Returns the column of every row. Deterministic: ties go to
// the lowest column index scanned first.
std::vector<int> min_cost_matching(const std::vector<int>& cost, int n) {
  constexpr long long big = std::numeric_limits<long long>::max() / 4;
  std::vector<long long> u(idx(n + 1), 0), v(idx(n + 1), 0), minv(idx(n + 1));
  std::vector<int> p(idx(n + 1), 0), way(idx(n + 1), 0);
  std::vector<char> used(idx(n + 1));
  for (int i = 1; i <= n; ++i) {
    p[0] = i;
    int j0 = 0;
    std::fill(minv.begin(), minv.end(), big);
    std::fill(used.begin(), used.end(), 0);
    do {
      used[idx(j0)] = 1;
      const int i0 = p[idx(j0)];
      long long delta = big;
      int j1 = 0;
      for (int j = 1; j <= n; ++j) {
        if (used[idx(j)] != 0) continue;
        const long long cur = cost[idx(i0 - 1) * idx(n) + idx(j - 1)] - u[idx(i0)] - v[idx(j)];
        if (cur < minv[idx(j)]) {
          minv[idx(j)] = cur;
          way[idx(j)] = j0;
        }
        if (minv[idx(j)] < delta) {
          delta = minv[idx(j)];
          j1 = j;
        }
      }
      for (int j = 0; j <= n; ++j) {
        if (used[idx(j)] != 0) {
          u[idx(p[idx(j)])] += delta;
          v[idx(j)] -= delta;
        } else {
          minv[idx(j)] -= delta;
        }
      }
      j0 = j1;
    } while (p[idx(j0)] != 0);
    do {
      const int j1 = way[idx(j0)];
      p[idx(j0)] = p[idx(j1)];
      j0 = j1;
    } while (j0 != 0);
  }
  std::vector<int> row_to_col(idx(n), -1);
  for (int j = 1; j <= n; ++j) {
    if (p[idx(j)] > 0) row_to_col[idx(p[idx(j)] - 1)] = j - 1;
  }
  return row_to_col;
}

// Greedy matching for large blocks (the Hungarian algorithm's n^3 gets slow beyond a few hundred
// ranks): rows in order take their cheapest free column.
std::vector<int> greedy_matching(const std::vector<int>& cost, int n) {
  std::vector<int> row_to_col(idx(n), -1);
  std::vector<char> taken(idx(n), 0);
  for (int i = 0; i < n; ++i) {
    int best = -1;
    for (int j = 0; j < n; ++j) {
      if (taken[idx(j)] == 0 &&
          (best < 0 || cost[idx(i) * idx(n) + idx(j)] < cost[idx(i) * idx(n) + idx(best)])) {
        best = j;
      }
    }
    row_to_col[idx(i)] = best;
    taken[idx(best)] = 1;
  }
  return row_to_col;
}

constexpr int hungarian_limit = 128;  // ranks per block up to which the matching is exact

// Tries of layer_planner::repair when the local search from the previous placement stalls.
constexpr int repair_iterations = 32;

}  // namespace

int align_to_previous(const layer_view& v, const std::int32_t* plan, const std::int32_t* previous,
                      int ranks_per_block, std::int32_t* out) {
  const int M = v.ranks, k = v.per_rank, E = v.experts;
  const int rpb = ranks_per_block > 0 && M % ranks_per_block == 0 ? ranks_per_block : M;
  std::vector<int> count(idx(E), 0);
  std::vector<int> cost(idx(rpb) * idx(rpb));
  for (int b0 = 0; b0 < M; b0 += rpb) {
    // cost[i][j]: slots of previous rank b0 + j that would change if it took plan rank b0 + i.
    for (int i = 0; i < rpb; ++i) {
      const std::int32_t* pr = plan + idx(b0 + i) * idx(k);
      for (int j = 0; j < rpb; ++j) {
        const std::int32_t* old = previous + idx(b0 + j) * idx(k);
        for (int t = 0; t < k; ++t) ++count[idx(pr[t])];
        int overlap = 0;
        for (int t = 0; t < k; ++t) {
          if (count[idx(old[t])] > 0) {
            --count[idx(old[t])];
            ++overlap;
          }
        }
        for (int t = 0; t < k; ++t) count[idx(pr[t])] = 0;
        cost[idx(i) * idx(rpb) + idx(j)] = k - overlap;
      }
    }
    const std::vector<int> match =
        rpb <= hungarian_limit ? min_cost_matching(cost, rpb) : greedy_matching(cost, rpb);
    for (int i = 0; i < rpb; ++i) {
      std::copy(plan + idx(b0 + i) * idx(k), plan + idx(b0 + i + 1) * idx(k),
                out + idx(b0 + match[idx(i)]) * idx(k));
    }
  }
  return keep_slots(v, previous, out);
}

int keep_slots(const layer_view& v, const std::int32_t* previous, std::int32_t* slots) {
  const int k = v.per_rank;
  std::vector<int> count(idx(v.experts), 0);
  std::vector<std::int32_t> rank(idx(k));
  std::vector<char> kept(idx(k));
  int moves = 0;
  for (int r = 0; r < v.ranks; ++r) {
    // Previous slots whose expert the rank still holds keep it; the other experts fill the
    // remaining slots in their current order.
    std::int32_t* dst = slots + idx(r) * idx(k);
    const std::int32_t* old = previous + idx(r) * idx(k);
    std::copy(dst, dst + k, rank.begin());
    for (int t = 0; t < k; ++t) ++count[idx(rank[idx(t)])];
    for (int t = 0; t < k; ++t) {
      kept[idx(t)] = count[idx(old[t])] > 0 ? 1 : 0;
      if (kept[idx(t)] != 0) {
        --count[idx(old[t])];
        dst[t] = old[t];
      }
    }
    int next = 0;
    for (int t = 0; t < k; ++t) {
      if (kept[idx(t)] != 0) continue;
      while (count[idx(rank[idx(next)])] == 0) ++next;
      dst[t] = rank[idx(next)];
      --count[idx(rank[idx(next)])];
      ++moves;
    }
  }
  return moves;
}

migration_outcome migrate_layer(const layer_view& v, const std::int32_t* previous,
                                const std::int32_t* scratch, double target, int max_moves,
                                const int* expert_node, int ranks_per_node, local_search& search,
                                layer_planner& planner, std::int32_t* out) {
  const int P = v.slots();
  std::vector<int> cnt;
  std::vector<double> load;
  struct option {
    std::vector<std::int32_t> slots;
    migration_outcome o;
  };
  std::vector<option> options;
  auto add = [&](const std::int32_t* s, int /*moves*/) {
    // Every candidate first keeps the previous slot of each expert that stays on its rank.
    option c;
    c.slots.assign(s, s + P);
    c.o.moves = keep_slots(v, previous, c.slots.data());
    c.o.max_load = max_rank_load(v, c.slots.data(), cnt, load);
    c.o.duplicates = count_duplicates(v, c.slots.data());
    options.push_back(std::move(c));
  };
  // Duplicates are acceptable only where the plan itself kept deepseek's placement with them.
  const bool allow_duplicates = count_duplicates(v, scratch) > 0;
  // The previous placement itself: enough when it already meets the target.
  add(previous, 0);
  if ((options[0].o.duplicates == 0 || allow_duplicates) && options[0].o.max_load <= target) {
    std::copy(previous, previous + P, out);
    return options[0].o;
  }
  // Improving moves from the previous placement.
  search.reset(v, previous, previous, expert_node, ranks_per_node);
  if (options[0].o.duplicates > 0) search.remove_duplicates(max_moves);
  search.improve(target, max_moves, 8 * P + 64);
  add(search.slots().data(), search.moves());
  std::vector<std::int32_t> repaired(static_cast<std::size_t>(P));
  if (expert_node == nullptr && options.back().o.max_load > target) {
    // The local search stalled above the target: empty and refill a few ranks at a time.
    planner.repair(v, previous, options.back().slots.data(), target, max_moves, repair_iterations,
                   repaired.data());
    add(repaired.data(), 0);
    search.reset(v, repaired.data(), previous);
    search.revert_moves(std::max(target, options.back().o.max_load), 8);
    add(search.slots().data(), search.moves());
  }
  // The from-scratch plan, aligned to the previous placement (ranks matched within nodes when
  // experts are pinned to nodes).
  std::vector<std::int32_t> aligned(static_cast<std::size_t>(P));
  const int rpb = expert_node != nullptr && ranks_per_node > 0 ? ranks_per_node : v.ranks;
  const int aligned_moves = align_to_previous(v, scratch, previous, rpb, aligned.data());
  add(aligned.data(), aligned_moves);
  // ... and with the changes the target does not need undone.
  search.reset(v, aligned.data(), previous, expert_node, ranks_per_node);
  search.revert_moves(std::max(target, options.back().o.max_load), 8);
  add(search.slots().data(), search.moves());

  const bool unlimited = max_moves < 0;
  auto better = [&](const migration_outcome& a, const migration_outcome& b) {
    if (unlimited && !allow_duplicates && (a.duplicates == 0) != (b.duplicates == 0)) {
      return a.duplicates == 0;
    }
    const bool a_hit = a.max_load <= target, b_hit = b.max_load <= target;
    if (a_hit != b_hit) return a_hit;
    if (a_hit) {
      if (a.moves != b.moves) return a.moves < b.moves;
      return a.max_load < b.max_load;
    }
    if (a.max_load != b.max_load) return a.max_load < b.max_load;
    if (a.duplicates != b.duplicates) return a.duplicates < b.duplicates;
    return a.moves < b.moves;
  };
  const option* best = nullptr;
  for (const option& c : options) {
    if (!unlimited && c.o.moves > max_moves) continue;
    if (best == nullptr || better(c.o, best->o)) best = &c;
  }
  std::copy(best->slots.begin(), best->slots.end(), out);
  return best->o;
}

}  // namespace eplb::detail

namespace eplb {

namespace {
std::size_t uidx(int i) { return static_cast<std::size_t>(i); }
}  // namespace

std::vector<int> moves_per_layer(const placement& p, const placement& previous) {
  std::vector<int> moves(static_cast<std::size_t>(p.num_layers), 0);
  if (previous.num_layers != p.num_layers || previous.num_slots != p.num_slots) return moves;
  for (int l = 0; l < p.num_layers; ++l) {
    const std::int32_t* a = p.row(l);
    const std::int32_t* b = previous.row(l);
    for (int s = 0; s < p.num_slots; ++s) moves[uidx(l)] += a[s] != b[s] ? 1 : 0;
  }
  return moves;
}

result<std::vector<int>> cap_moves(placement& p, const placement& previous, int max_moves,
                                   const weight_matrix& weights, const topology& topo) {
  if (max_moves < 0) {
    return make_error(errc::invalid_argument, position{}, "--max-moves",
                      "must be non-negative, got " + std::to_string(max_moves));
  }
  if (previous.num_layers != p.num_layers || previous.num_slots != p.num_slots ||
      p.num_layers != topo.num_layers || p.num_slots != topo.num_slots ||
      weights.rows() != topo.num_layers || weights.cols() != topo.num_experts) {
    return make_error(errc::invalid_argument, position{}, "previous placement",
                      "its shape does not match the plan's");
  }
  std::vector<int> moves = moves_per_layer(p, previous);
  const int k = topo.slots_per_rank();
  detail::local_search search;
  detail::layer_planner planner;
  std::vector<std::int32_t> capped(uidx(p.num_slots));
  std::vector<int> cnt;
  std::vector<double> load;
  for (int l = 0; l < p.num_layers; ++l) {
    if (moves[uidx(l)] <= max_moves) continue;
    std::int32_t* row = p.row(l);
    const std::int32_t* old = previous.row(l);
    if (k > topo.num_experts) {
      // Every rank holds an expert twice: the search needs k <= E. The deployed layer is within
      // any cap.
      std::copy(old, old + p.num_slots, row);
      moves[uidx(l)] = 0;
      continue;
    }
    // The search keeps the candidates within the cap (the previous layer itself always is) and
    // takes the one closest to the uncapped layer's max rank load.
    const detail::layer_view v{weights.row(l).data(), topo.num_experts, topo.num_ranks, k};
    const double target = detail::max_rank_load(v, row, cnt, load);
    const detail::migration_outcome o = detail::migrate_layer(
        v, old, row, target, max_moves, nullptr, topo.num_ranks, search, planner, capped.data());
    std::copy(capped.begin(), capped.end(), row);
    moves[uidx(l)] = o.moves;
  }
  return moves;
}

}  // namespace eplb
