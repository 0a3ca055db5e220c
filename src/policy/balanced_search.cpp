// The balanced policy's per-layer machinery: exact load evaluation, the simple lower bound, the
// local search and the from-scratch layer planner (see balanced_detail.hpp).

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
#include <numeric>
#include <queue>
#include <utility>
#include <vector>

#include "policy/balanced_detail.hpp"

namespace eplb::detail {
namespace {

constexpr double inf = std::numeric_limits<double>::infinity();

// A move must lower the max rank load by more than this fraction of it: float noise never
// counts as progress, so the search cannot cycle on rounding.
constexpr double min_gain = 1e-9;

std::size_t idx(int i) { return static_cast<std::size_t>(i); }

}  // namespace

double max_rank_load(const layer_view& v, const std::int32_t* slots, std::vector<int>& cnt,
                     std::vector<double>& load) {
  const int P = v.slots();
  cnt.assign(idx(v.experts), 0);
  load.assign(idx(v.ranks), 0.0);
  for (int p = 0; p < P; ++p) ++cnt[idx(slots[p])];
  for (int p = 0; p < P; ++p) {
    const int e = slots[p];
    load[idx(p / v.per_rank)] += v.w[e] / cnt[idx(e)];
  }
  return v.ranks > 0 ? *std::max_element(load.begin(), load.end()) : 0.0;
}

bool repair_duplicates(const layer_view& v, std::int32_t* slots, int block_ranks, double limit) {
  const int P = v.slots(), k = v.per_rank;
  std::vector<std::int32_t> original(slots, slots + P);
  std::vector<int> cnt;
  std::vector<double> load;
  max_rank_load(v, slots, cnt, load);
  auto on_rank = [&](int rank, int expert) {
    for (int i = rank * k; i < (rank + 1) * k; ++i) {
      if (slots[i] == expert) return true;
    }
    return false;
  };
  auto share = [&](int expert) { return v.w[expert] / cnt[idx(expert)]; };
  // Each swap removes one duplicate and adds none, so P swaps are always enough.
  for (int round = 0; round <= P; ++round) {
    int dup_slot = -1;
    for (int p = 0; p < P && dup_slot < 0; ++p) {
      for (int i = (p / k) * k; i < p; ++i) {
        if (slots[i] == slots[p]) {
          dup_slot = p;
          break;
        }
      }
    }
    if (dup_slot < 0) {
      // Swaps change the order of the per-rank sums: check the exact figure.
      if (max_rank_load(v, slots, cnt, load) <= limit) return true;
      break;
    }
    const int r = dup_slot / k, e = slots[dup_slot];
    const int lo = (r / block_ranks) * block_ranks, hi = lo + block_ranks;
    int best = -1;
    double best_max = 0;
    for (int q = lo * k; q < hi * k; ++q) {
      const int r2 = q / k, f = slots[q];
      if (r2 == r || f == e || on_rank(r, f) || on_rank(r2, e)) continue;
      const double new_r = load[idx(r)] - share(e) + share(f);
      const double new_r2 = load[idx(r2)] - share(f) + share(e);
      const double m = std::max(new_r, new_r2);
      if (m <= limit && (best < 0 || m < best_max)) {
        best = q;
        best_max = m;
      }
    }
    if (best < 0) break;
    const int r2 = best / k, f = slots[best];
    load[idx(r)] += share(f) - share(e);
    load[idx(r2)] += share(e) - share(f);
    std::swap(slots[dup_slot], slots[best]);
  }
  std::copy(original.begin(), original.end(), slots);
  return false;
}

int count_duplicates(const layer_view& v, const std::int32_t* slots) {
  int dups = 0;
  std::vector<std::int32_t> rank(idx(v.per_rank));
  for (int r = 0; r < v.ranks; ++r) {
    std::copy(slots + idx(r) * idx(v.per_rank), slots + idx(r + 1) * idx(v.per_rank), rank.begin());
    std::sort(rank.begin(), rank.end());
    for (int i = 1; i < v.per_rank; ++i) dups += rank[idx(i)] == rank[idx(i - 1)] ? 1 : 0;
  }
  return dups;
}

double simple_lower_bound(const layer_view& v) {
  const int E = v.experts, M = v.ranks, P = v.slots();
  double total = 0, wmax = 0;
  for (int e = 0; e < E; ++e) {
    total += v.w[e];
    wmax = std::max(wmax, v.w[e]);
  }
  if (M <= 0 || P < E) return 0.0;
  double bound = total / M;
  // D'Hondt with counts capped at M: the smallest achievable max replica load (B2).
  std::priority_queue<std::pair<double, int>> heap;
  std::vector<int> cnt(idx(E), 1);
  for (int e = 0; e < E; ++e) heap.emplace(v.w[e], -e);
  int extra = P - E;
  while (extra > 0 && !heap.empty()) {
    auto [piece, neg] = heap.top();
    heap.pop();
    const int e = -neg;
    if (cnt[idx(e)] >= M) continue;  // at the cap: this expert's pieces stay as they are
    ++cnt[idx(e)];
    --extra;
    heap.emplace(v.w[e] / cnt[idx(e)], neg);
  }
  double rep = 0;
  for (int e = 0; e < E; ++e) rep = std::max(rep, v.w[e] / cnt[idx(e)]);
  return std::max({bound, rep, wmax / M});
}

// ---------------------------------------------------------------------------------------------
// local_search

void local_search::reset(const layer_view& v, const std::int32_t* slots,
                         const std::int32_t* previous, const int* expert_node, int ranks_per_node) {
  w_ = v.w;
  experts_ = v.experts;
  ranks_ = v.ranks;
  per_rank_ = v.per_rank;
  slots_ = v.slots();
  expert_node_ = expert_node;
  ranks_per_node_ = ranks_per_node > 0 ? ranks_per_node : ranks_;
  old_slot_.swap(slot_);
  slot_.assign(slots, slots + slots_);
  if (previous != nullptr) {
    prev_.assign(previous, previous + slots_);
  } else {
    prev_.clear();
  }
  cnt_.assign(idx(experts_), 0);
  // Clearing only the entries the last assignment set is much cheaper than a full M x E fill.
  if (has_experts_ == experts_ && has_ranks_ == ranks_ && has_per_rank_ == per_rank_) {
    for (int p = 0; p < slots_; ++p) {
      has_[idx(p / per_rank_) * idx(experts_) + idx(old_slot_[idx(p)])] = 0;
    }
  } else {
    has_.assign(idx(ranks_) * idx(experts_), 0);
    has_experts_ = experts_;
    has_ranks_ = ranks_;
    has_per_rank_ = per_rank_;
  }
  if (slots_of_.size() < idx(experts_)) slots_of_.resize(idx(experts_));
  for (int e = 0; e < experts_; ++e) slots_of_[idx(e)].clear();
  list_pos_.assign(idx(slots_), 0);
  rank_of_.resize(idx(slots_));
  for (int p = 0; p < slots_; ++p) rank_of_[idx(p)] = p / per_rank_;
  for (int p = 0; p < slots_; ++p) {
    const int e = slot_[idx(p)];
    ++cnt_[idx(e)];
    ++has_[idx(rank_of_[idx(p)]) * idx(experts_) + idx(e)];
    list_pos_[idx(p)] = static_cast<int>(slots_of_[idx(e)].size());
    slots_of_[idx(e)].push_back(p);
  }
  piece_.assign(idx(experts_), 0.0);
  for (int e = 0; e < experts_; ++e) {
    if (cnt_[idx(e)] > 0) piece_[idx(e)] = w_[e] / cnt_[idx(e)];
  }
  load_.assign(idx(ranks_), 0.0);
  slot_piece_.resize(idx(slots_));
  for (int p = 0; p < slots_; ++p) {
    slot_piece_[idx(p)] = piece_[idx(slot_[idx(p)])];
    load_[idx(rank_of_[idx(p)])] += slot_piece_[idx(p)];
  }
  moves_ = 0;
  if (!prev_.empty()) {
    for (int p = 0; p < slots_; ++p) moves_ += slot_[idx(p)] != prev_[idx(p)] ? 1 : 0;
  }
}

double local_search::max_load() const noexcept {
  return load_.empty() ? 0.0 : *std::max_element(load_.begin(), load_.end());
}

int local_search::change_cost(int slot, int expert) const noexcept {
  if (prev_.empty()) return 0;
  const int before = slot_[idx(slot)] != prev_[idx(slot)] ? 1 : 0;
  const int after = expert != prev_[idx(slot)] ? 1 : 0;
  return after - before;
}

bool local_search::better(const candidate& a, const candidate& b, double target) const noexcept {
  if (b.kind < 0) return true;
  if (prev_.empty()) return a.new_max < b.new_max;
  // Migration: a move that brings the rank down to the target wins, the fewest changed slots
  // first; otherwise the lowest max, then the fewest changed slots.
  const bool a_hit = a.new_max <= target, b_hit = b.new_max <= target;
  if (a_hit != b_hit) return a_hit;
  if (a_hit) {
    if (a.delta_moves != b.delta_moves) return a.delta_moves < b.delta_moves;
    return a.new_max < b.new_max;
  }
  if (a.new_max != b.new_max) return a.new_max < b.new_max;
  return a.delta_moves < b.delta_moves;
}

void local_search::list_remove(int slot) {
  auto& list = slots_of_[idx(slot_[idx(slot)])];
  const int pos = list_pos_[idx(slot)];
  const int last = list.back();
  list[idx(pos)] = last;
  list_pos_[idx(last)] = pos;
  list.pop_back();
}

void local_search::list_add(int slot, int expert) {
  auto& list = slots_of_[idx(expert)];
  list_pos_[idx(slot)] = static_cast<int>(list.size());
  list.push_back(slot);
}

void local_search::apply_swap(int p, int q) {
  const int e = slot_[idx(p)], f = slot_[idx(q)];
  const int r = rank_of_[idx(p)], s = rank_of_[idx(q)];
  moves_ += change_cost(p, f) + change_cost(q, e);
  load_[idx(r)] += piece_[idx(f)] - piece_[idx(e)];
  load_[idx(s)] += piece_[idx(e)] - piece_[idx(f)];
  --has_[idx(r) * idx(experts_) + idx(e)];
  ++has_[idx(r) * idx(experts_) + idx(f)];
  --has_[idx(s) * idx(experts_) + idx(f)];
  ++has_[idx(s) * idx(experts_) + idx(e)];
  // p joins f's list where q was and q joins e's list where p was.
  const int pos_p = list_pos_[idx(p)], pos_q = list_pos_[idx(q)];
  slots_of_[idx(e)][idx(pos_p)] = q;
  slots_of_[idx(f)][idx(pos_q)] = p;
  list_pos_[idx(q)] = pos_p;
  list_pos_[idx(p)] = pos_q;
  slot_[idx(p)] = f;
  slot_[idx(q)] = e;
  std::swap(slot_piece_[idx(p)], slot_piece_[idx(q)]);
}

void local_search::apply_convert(int p, int b) {
  const int a = slot_[idx(p)];
  const int r = rank_of_[idx(p)];
  moves_ += change_cost(p, b);
  const double old_a = piece_[idx(a)], old_b = piece_[idx(b)];
  --cnt_[idx(a)];
  ++cnt_[idx(b)];
  const double new_a = w_[a] / cnt_[idx(a)], new_b = w_[b] / cnt_[idx(b)];
  list_remove(p);
  for (int q : slots_of_[idx(a)]) load_[idx(rank_of_[idx(q)])] += new_a - old_a;
  for (int q : slots_of_[idx(b)]) load_[idx(rank_of_[idx(q)])] += new_b - old_b;
  load_[idx(r)] += new_b - old_a;
  list_add(p, b);
  --has_[idx(r) * idx(experts_) + idx(a)];
  ++has_[idx(r) * idx(experts_) + idx(b)];
  piece_[idx(a)] = new_a;
  piece_[idx(b)] = new_b;
  slot_[idx(p)] = b;
  for (int q : slots_of_[idx(a)]) slot_piece_[idx(q)] = new_a;
  for (int q : slots_of_[idx(b)]) slot_piece_[idx(q)] = new_b;
}

const std::vector<unsigned>& local_search::repartition_masks(int k) {
  // The first rank's new set as a subset of the 2k items (bits 0..k-1 its own, k..2k-1 the
  // other's), keeping k - j of its own for 2 <= j <= k/2: j = 1 is a swap, and exchanging j
  // items gives the same two loads as exchanging k - j (up to relabelling the ranks).
  static const auto all = [] {
    std::vector<std::vector<unsigned>> by_k(max_repartition_k + 1);
    for (int kk = 1; kk <= max_repartition_k; ++kk) {
      const unsigned own = (1u << kk) - 1;
      for (unsigned m = 0; m < (1u << (2 * kk)); ++m) {
        const int moved = kk - std::popcount(m & own);
        if (std::popcount(m) == kk && moved >= 2 && 2 * moved <= kk) by_k[idx(kk)].push_back(m);
      }
    }
    return by_k;
  }();
  return all[idx(k)];
}

template <typename F>
void local_search::for_each_repartition_swap(int r, int s, unsigned mask, F&& f) const {
  // Pair r's leaving replicas with s's arriving ones in slot order; each pair is a swap, so
  // the replicas that stay keep their slots.
  const int k = per_rank_;
  int out_r[max_repartition_k], in_r[max_repartition_k];
  int n_out = 0, n_in = 0;
  for (int i = 0; i < k; ++i) {
    if (((mask >> i) & 1u) == 0) out_r[n_out++] = r * k + i;
    if (((mask >> (k + i)) & 1u) != 0) in_r[n_in++] = s * k + i;
  }
  for (int j = 0; j < n_out; ++j) f(out_r[j], in_r[j]);
}

void local_search::scan_swaps_fast(int r, double limit, candidate& best) {
  const int k = per_rank_;
  const double L = load_[idx(r)];
  const double* sp = slot_piece_.data();
  const int* rank_of = rank_of_.data();
  const double* load = load_.data();
  for (int i = 0; i < k; ++i) {
    const int p = r * k + i;
    const int e = slot_[idx(p)];
    const double pe = piece_[idx(e)];
    for (int q = 0; q < slots_; ++q) {
      const double d = pe - sp[q];
      if (!(d > 0)) continue;
      const int s = rank_of[q];
      const double nm = std::max(L - d, load[s] + d);
      if (nm >= limit || nm >= best.new_max || s == r) continue;
      const int f = slot_[idx(q)];
      if (has(s, e) != 0 || has(r, f) != 0 || !allowed(e, s) || !allowed(f, r)) continue;
      best = candidate{0, p, q, -1, nm, 0};
    }
  }
}

template <typename Budget, typename Offer>
void local_search::scan_swaps(int r, int s, double limit, Budget&& within_budget, Offer&& offer) {
  const int k = per_rank_;
  const double L = load_[idx(r)], ls = load_[idx(s)];
  if (ls >= limit) return;
  // Swaps: one of r's replicas with a lighter one of s's, both ranks ending below `limit`:
  // d = pe - pf must lie in (0, limit - ls) (and L - d < limit, which any d > 0 meets but for
  // float noise).
  const std::uint8_t* has_r = has_.data() + idx(r) * idx(experts_);
  const std::uint8_t* has_s = has_.data() + idx(s) * idx(experts_);
  const std::int32_t* slots_r = slot_.data() + idx(r) * idx(k);
  const std::int32_t* slots_s = slot_.data() + idx(s) * idx(k);
  const double room = limit - ls;
  for (int i = 0; i < k; ++i) {
    const int e = slots_r[i];
    if (has_s[e] != 0 || !allowed(e, s)) continue;
    const double pe = piece_[idx(e)];
    for (int j = 0; j < k; ++j) {
      const int f = slots_s[j];
      const double d = pe - piece_[idx(f)];
      if (d <= 0 || d >= room) continue;
      const double nm = std::max(L - d, ls + d);
      if (nm >= limit || has_r[f] != 0 || !allowed(f, r)) continue;
      const int p = r * k + i, q = s * k + j;
      candidate c{0, p, q, -1, nm, change_cost(p, f) + change_cost(q, e)};
      if (within_budget(c.delta_moves)) offer(c);
    }
  }
}

template <typename Budget, typename Offer>
void local_search::scan_repartitions(int r, int s, double limit, Budget&& within_budget,
                                     Offer&& offer) {
  const int k = per_rank_;
  if (load_[idx(s)] >= limit || k < 4 || k > max_repartition_k) return;
  // Repartitions (k = 4): 2-for-2 exchanges, which single swaps cannot reach.
  int e[2 * max_repartition_k];
  double x[2 * max_repartition_k];
  unsigned conflicts[2 * max_repartition_k] = {};
  for (int i = 0; i < k; ++i) {
    e[i] = slot_[idx(r * k + i)];
    e[k + i] = slot_[idx(s * k + i)];
  }
  for (int i = 0; i < 2 * k; ++i) {
    x[i] = piece_[idx(e[i])];
    for (int j = i + 1; j < 2 * k; ++j) {
      if (e[i] == e[j]) conflicts[i] |= 1u << j;
    }
  }
  for (int i = 0; i < k; ++i) {
    // An expert pinned to one node cannot cross to the other rank's node.
    if (!allowed(e[i], s) || !allowed(e[k + i], r)) return;
  }
  for (unsigned mask : repartition_masks(k)) {
    double nr = 0, ns = 0;
    for (int i = 0; i < 2 * k; ++i) {
      if (((mask >> i) & 1u) != 0) {
        nr += x[i];
      } else {
        ns += x[i];
      }
    }
    const double nm = std::max(nr, ns);
    if (nm >= limit) continue;
    bool dup = false;
    for (int i = 0; i < 2 * k && !dup; ++i) {
      if (conflicts[i] == 0) continue;
      const unsigned same_side = ((mask >> i) & 1u) != 0 ? mask : ~mask;
      dup = (conflicts[i] & same_side) != 0;
    }
    if (dup) continue;
    int delta = 0;
    if (!prev_.empty()) {
      for_each_repartition_swap(r, s, mask, [&](int p, int q) {
        delta += change_cost(p, slot_[idx(q)]) + change_cost(q, slot_[idx(p)]);
      });
    }
    candidate c{2, r, s, static_cast<int>(mask), nm, delta};
    if (within_budget(c.delta_moves)) offer(c);
  }
}

void local_search::apply(const candidate& c) {
  if (c.kind == 0) {
    apply_swap(c.p, c.q);
  } else if (c.kind == 1) {
    apply_convert(c.p, c.b);
  } else {
    for_each_repartition_swap(c.p, c.q, static_cast<unsigned>(c.b),
                              [&](int p, int q) { apply_swap(p, q); });
  }
}

int local_search::remove_duplicates(int budget) {
  const int k = per_rank_;
  int left = 0;
  for (int r = 0; r < ranks_; ++r) {
    for (int i = 0; i < k; ++i) {
      const int p = r * k + i;
      const int e = slot_[idx(p)];
      if (has(r, e) < 2) continue;
      candidate best;
      for (int s = 0; s < ranks_; ++s) {
        if (s == r || has(s, e) != 0 || !allowed(e, s)) continue;
        for (int j = 0; j < k; ++j) {
          const int q = s * k + j;
          const int f = slot_[idx(q)];
          if (has(r, f) != 0 || !allowed(f, r)) continue;
          const double d = piece_[idx(e)] - piece_[idx(f)];
          const double nm = std::max(load_[idx(r)] - d, load_[idx(s)] + d);
          candidate c{0, p, q, -1, nm, change_cost(p, f) + change_cost(q, e)};
          if (budget >= 0 && moves_ + c.delta_moves > budget) continue;
          if (best.kind < 0 || c.new_max < best.new_max) best = c;
        }
      }
      if (best.kind < 0) {
        ++left;
      } else {
        apply(best);
      }
    }
  }
  return left;
}

int local_search::revert_moves(double target, int max_passes) {
  if (prev_.empty()) return 0;
  for (int pass = 0; pass < max_passes; ++pass) {
    bool changed = false;
    for (int p = 0; p < slots_; ++p) {
      const int e = slot_[idx(p)], f = prev_[idx(p)];
      if (e == f) continue;
      const int r = rank_of_[idx(p)];
      if (!allowed(f, r)) continue;
      // A swap with a slot q elsewhere that holds f and is itself changed: p gets f back, q
      // gets e (best: q wanted e).
      int best_q = -1, best_delta = 0;
      if (has(r, f) == 0) {
        for (int q : slots_of_[idx(f)]) {
          const int s = rank_of_[idx(q)];
          if (s == r || has(s, e) != 0 || !allowed(e, s)) continue;
          const int delta = change_cost(p, f) + change_cost(q, e);
          if (delta >= best_delta) continue;
          const double d = piece_[idx(e)] - piece_[idx(f)];
          if (load_[idx(r)] - d > target || load_[idx(s)] + d > target) continue;
          best_q = q;
          best_delta = delta;
        }
      }
      if (best_q >= 0) {
        apply_swap(p, best_q);
        changed = true;
        continue;
      }
      // A re-split: p's replica of e becomes f again (e keeps at least one replica).
      if (has(r, f) != 0 || cnt_[idx(e)] < 2) continue;
      const double ie = w_[e] / (cnt_[idx(e)] - 1) - piece_[idx(e)];
      const double nf = w_[f] / (cnt_[idx(f)] + 1);
      const double df = piece_[idx(f)] - nf;
      bool fits = load_[idx(r)] - piece_[idx(e)] + nf + (has(r, e) - 1) * ie <= target;
      for (int q : slots_of_[idx(e)]) {
        const int t = rank_of_[idx(q)];
        if (!fits) break;
        if (t != r) fits = load_[idx(t)] + has(t, e) * ie - has(t, f) * df <= target;
      }
      if (!fits) continue;
      apply_convert(p, f);
      changed = true;
    }
    if (!changed) break;
  }
  return moves_;
}

int local_search::improve(double target, int budget, int max_steps, bool resplit) {
  const int k = per_rank_;
  expert_max_.assign(idx(experts_), 0.0);
  int steps = 0;
  for (; steps < max_steps; ++steps) {
    int r = 0;
    for (int t = 1; t < ranks_; ++t) {
      if (load_[idx(t)] > load_[idx(r)]) r = t;
    }
    const double L = load_[idx(r)];
    if (L <= target) break;
    const double limit = L - min_gain * L;
    auto within_budget = [&](int delta) { return budget < 0 || moves_ + delta <= budget; };
    candidate best;
    auto offer = [&](const candidate& c) {
      if (better(c, best, target)) best = c;
    };

    if (prev_.empty()) {
      // Without a previous placement only the lowest max counts: one flat pass over all slots
      // per replica of r, validity checked only for a new best.
      scan_swaps_fast(r, limit, best);
    } else {
      for (int s = 0; s < ranks_; ++s) {
        if (s != r) scan_swaps(r, s, limit, within_budget, offer);
      }
    }
    if (resplit && k >= 4 && k <= max_repartition_k) {
      for (int s = 0; s < ranks_; ++s) {
        if (s != r) scan_repartitions(r, s, limit, within_budget, offer);
      }
    }

    if (resplit) {
      // Per expert: the max load of its ranks (what a new replica shrinks) and, for experts with
      // >= 2 replicas, the two highest loads of its ranks other than r after losing a replica
      // (every other replica grows by ia); b's shrink on ranks holding both is ignored, which
      // only overestimates.
      multi_.clear();
      for (int e = 0; e < experts_; ++e) {
        const int c = cnt_[idx(e)];
        double m = 0;
        for (int q : slots_of_[idx(e)]) m = std::max(m, load_[idx(rank_of_[idx(q)])]);
        expert_max_[idx(e)] = m;
        if (c < 2) continue;
        const double ia = w_[e] / (c - 1) - piece_[idx(e)];
        grow_info gi{e, ia, -inf, -inf, -1};
        for (int q : slots_of_[idx(e)]) {
          const int t = rank_of_[idx(q)];
          if (t == r || t == gi.top1_rank) continue;
          const double nl = load_[idx(t)] + has(t, e) * ia;
          if (nl > gi.top1) {
            gi.top2 = gi.top1;
            gi.top1 = nl;
            gi.top1_rank = t;
          } else if (nl > gi.top2) {
            gi.top2 = nl;
          }
        }
        if (gi.top2 < limit) multi_.push_back(gi);
      }

      // Re-split "grow": one more replica for an expert b on r (all of b's replicas shrink, r
      // included), taken from an expert a with >= 2 replicas (all of a's others grow).
      for (int i = 0; i < k; ++i) {
        const int b = slot_[idx(r * k + i)];
        bool seen = false;
        for (int j = 0; j < i; ++j) seen = seen || slot_[idx(r * k + j)] == b;
        if (seen) continue;
        const double nb = w_[b] / (cnt_[idx(b)] + 1);
        const double db = piece_[idx(b)] - nb;
        if (db <= 0) continue;
        const double base = L - db;  // r is the most loaded of b's ranks
        for (const grow_info& gi : multi_) {
          const int a = gi.expert;
          if (a == b) continue;
          const double ia = gi.ia;
          // r also holds a: it grows by ia while shrinking by db.
          const double nr = base + has(r, a) * ia;
          if (nr >= limit) continue;
          for (int q : slots_of_[idx(a)]) {
            const int s = rank_of_[idx(q)];
            if (s == r || has(s, b) != 0 || !allowed(b, s)) continue;
            const double others = s == gi.top1_rank ? gi.top2 : gi.top1;
            if (others >= limit) continue;
            const double ns = load_[idx(s)] - piece_[idx(a)] + nb + (has(s, a) - 1) * ia;
            const double nm = std::max({nr, ns, others});
            if (nm >= limit) continue;
            candidate c{1, q, -1, b, nm, change_cost(q, b)};
            if (within_budget(c.delta_moves)) offer(c);
          }
        }
      }

      // Re-split "shrink": turn one of r's replicas of an expert a with >= 2 replicas into a
      // replica of an expert b absent from r.
      for (const grow_info& gi : multi_) {
        const int a = gi.expert;
        if (has(r, a) == 0 || gi.top1 >= limit) continue;
        int p = -1;
        for (int i = 0; i < k && p < 0; ++i) {
          if (slot_[idx(r * k + i)] == a) p = r * k + i;
        }
        const double ia = gi.ia;
        const double r_base = L - piece_[idx(a)] + (has(r, a) - 1) * ia;
        for (int b = 0; b < experts_; ++b) {
          if (b == a || has(r, b) != 0 || !allowed(b, r)) continue;
          const double nb = w_[b] / (cnt_[idx(b)] + 1);
          const double nr = r_base + nb;
          if (nr >= limit) continue;
          const double nm = std::max({nr, gi.top1, expert_max_[idx(b)] - (piece_[idx(b)] - nb)});
          if (nm >= limit) continue;
          candidate c{1, p, -1, b, nm, change_cost(p, b)};
          if (within_budget(c.delta_moves)) offer(c);
        }
      }
    }

    if (best.kind < 0) break;
    apply(best);
  }
  return steps;
}

// ---------------------------------------------------------------------------------------------
// layer_planner

void layer_planner::clear_has(int experts, int ranks) {
  // Clear only what was set since the last clear: a full M x E fill costs more than a
  // construction's other work.
  if (has_dims_ == std::make_pair(experts, ranks)) {
    for (std::size_t i : has_set_) has_[i] = 0;
  } else {
    has_.assign(idx(ranks) * idx(experts), 0);
    has_dims_ = {experts, ranks};
  }
  has_set_.clear();
}

double layer_planner::construct(const layer_view& v, double target, std::int32_t* out) {
  std::fill(out, out + v.slots(), -1);
  return recreate(v, target, out, order_);
}

double layer_planner::recreate(const layer_view& v, double target, std::int32_t* out,
                               const std::vector<int>& insert) {
  const int E = v.experts, M = v.ranks, k = v.per_rank, P = v.slots();
  load_.assign(idx(M), 0.0);
  free_.assign(idx(M), 0);
  cnt_.assign(idx(E), 0);
  clear_has(E, M);
  ranks_of_.resize(idx(E) * idx(M));
  for (int p = 0; p < P; ++p) {
    const int e = out[p];
    if (e < 0) {
      ++free_[idx(p / k)];
    } else {
      ++cnt_[idx(e)];
    }
  }
  int free_total = 0;
  for (int p = 0; p < P; ++p) {
    const int e = out[p], r = p / k;
    if (e < 0) {
      ++free_total;
      continue;
    }
    load_[idx(r)] += v.w[e] / cnt_[idx(e)];
    set_has(idx(r) * idx(E) + idx(e));
  }
  // ranks_of_ lists each placed expert's ranks (no rank holds an expert twice here).
  std::fill(fill_.begin(), fill_.end(), 0);
  fill_.assign(idx(E), 0);
  for (int p = 0; p < P; ++p) {
    const int e = out[p];
    if (e >= 0) ranks_of_[idx(e) * idx(M) + idx(fill_[idx(e)]++)] = p / k;
  }
  auto lighter = [&](int a, int b) {
    return load_[idx(a)] < load_[idx(b)] || (load_[idx(a)] == load_[idx(b)] && a < b);
  };
  auto rebuild_by_load = [&] {
    by_load_.clear();
    for (int t = 0; t < M; ++t) {
      if (free_[idx(t)] > 0) by_load_.push_back(t);
    }
    std::sort(by_load_.begin(), by_load_.end(), lighter);
  };
  auto place = [&](int e, int r) {
    std::int32_t* row = out + idx(r) * idx(k);
    int j = 0;
    while (row[j] >= 0) ++j;
    row[j] = e;
    --free_[idx(r)];
    ranks_of_[idx(e) * idx(M) + idx(cnt_[idx(e)])] = r;
    ++cnt_[idx(e)];
    set_has(idx(r) * idx(E) + idx(e));
  };
  rebuild_by_load();
  const int n_insert = static_cast<int>(insert.size());
  for (int i = 0; i < n_insert; ++i) {
    const int e = insert[idx(i)];
    const double we = v.w[e];
    const int remaining = n_insert - i - 1;
    const int open = static_cast<int>(by_load_.size());
    const int cmax = std::min({M, free_total - remaining, open});
    // The fewest replicas that keep every receiving rank (the c least loaded) under the
    // target; if none does, the count with the lowest resulting max.
    int chosen = 1;
    double chosen_val = inf;
    for (int c = 1; c <= cmax; ++c) {
      const double val = load_[idx(by_load_[idx(c - 1)])] + we / c;
      if (val <= target) {
        chosen = c;
        break;
      }
      if (val < chosen_val) {
        chosen_val = val;
        chosen = c;
      }
    }
    const double piece = we / chosen;
    for (int j = 0; j < chosen; ++j) {
      const int r = by_load_[idx(j)];
      load_[idx(r)] += piece;
      place(e, r);
    }
    free_total -= chosen;
    // The first `chosen` ranks grew by the same amount: re-sort them, then merge them (those
    // still open) with the rest, which stays in order.
    std::sort(by_load_.begin(), by_load_.begin() + chosen, lighter);
    const int n = static_cast<int>(by_load_.size());
    merged_.resize(idx(chosen));
    int grown = 0;
    for (int j = 0; j < chosen; ++j) {
      if (free_[idx(by_load_[idx(j)])] > 0) merged_[idx(grown++)] = by_load_[idx(j)];
    }
    // Merge forwards into [chosen - grown, n): the write position never passes the read
    // position of the rest, which starts at `chosen`.
    int out_pos = chosen - grown, a = 0, b = chosen;
    while (a < grown) {
      if (b < n && lighter(by_load_[idx(b)], merged_[idx(a)])) {
        by_load_[idx(out_pos++)] = by_load_[idx(b++)];
      } else {
        by_load_[idx(out_pos++)] = merged_[idx(a++)];
      }
    }
    by_load_.erase(by_load_.begin(), by_load_.begin() + (chosen - grown));
  }
  // Free slots left: fill each (lightest rank first) with the extra replica that leaves the
  // lowest max rank load, then the lowest max among the ranks it touches.
  // Per expert: its replica size and the size with one more replica; the experts in order of
  // that next size (then fewer replicas, then index): the cheapest extra replica first.
  if (free_total > 0) {
    cur_piece_.resize(idx(E));
    next_piece_.resize(idx(E));
    for (int e = 0; e < E; ++e) {
      cur_piece_[idx(e)] = v.w[e] / cnt_[idx(e)];
      next_piece_[idx(e)] = v.w[e] / (cnt_[idx(e)] + 1);
    }
    fill_order_.resize(idx(E));
    std::iota(fill_order_.begin(), fill_order_.end(), 0);
    std::sort(fill_order_.begin(), fill_order_.end(), [&](int a, int b) { return cheaper(a, b); });
  }
  while (free_total > 0) {
    // The lightest open rank r and the three most loaded ranks (first index on ties).
    int r = -1;
    int top[3] = {-1, -1, -1};
    double tv[3] = {-inf, -inf, -inf};
    for (int t = 0; t < M; ++t) {
      const double x = load_[idx(t)];
      if (free_[idx(t)] > 0 && (r < 0 || x < load_[idx(r)])) r = t;
      if (x <= tv[2]) continue;
      if (x > tv[1]) {
        top[2] = top[1];
        tv[2] = tv[1];
        if (x > tv[0]) {
          top[1] = top[0];
          tv[1] = tv[0];
          top[0] = t;
          tv[0] = x;
        } else {
          top[1] = t;
          tv[1] = x;
        }
      } else {
        top[2] = t;
        tv[2] = x;
      }
    }
    const int t0 = top[0];
    const double m1 = load_[idx(t0)];
    const std::uint8_t* has_r = has_.data() + idx(r) * idx(E);
    const std::uint8_t* has_t0 = has_.data() + idx(t0) * idx(E);
    int best = -1;
    double best_global = inf, best_local = inf, best_shrink = -inf;
    auto offer = [&](int e, double global, double local, double shrink) {
      if (global < best_global ||
          (global == best_global &&
           (local < best_local ||
            (local == best_local &&
             (shrink > best_shrink || (shrink == best_shrink && e < best)))))) {
        best = e;
        best_global = global;
        best_local = local;
        best_shrink = shrink;
      }
    };
    // An expert on the most loaded rank (or every expert, when r is that rank) shrinks it: the
    // new max is over r, its ranks, and the ranks it leaves alone.
    auto exact = [&](int e) {
      const double nb = next_piece_[idx(e)];
      const double shrink = cur_piece_[idx(e)] - nb;
      const double local = load_[idx(r)] + nb;
      double global = local;
      const int* er = ranks_of_.data() + idx(e) * idx(M);
      for (int j = 0; j < cnt_[idx(e)]; ++j) {
        global = std::max(global, load_[idx(er[j])] - shrink);
      }
      // The most loaded rank it leaves alone: among the top three, else a full scan.
      bool found = false;
      for (int j = 0; j < 3 && !found; ++j) {
        const int t = top[j];
        if (t < 0 || t == r || has_[idx(t) * idx(E) + idx(e)] != 0) continue;
        global = std::max(global, load_[idx(t)]);
        found = true;
      }
      for (int t = 0; t < M && !found; ++t) {
        if (t != r && has_[idx(t) * idx(E) + idx(e)] == 0) {
          global = std::max(global, load_[idx(t)]);
        }
      }
      offer(e, global, local, shrink);
    };
    if (t0 == r) {
      for (int e = 0; e < E; ++e) {
        if (has_r[e] == 0) exact(e);
      }
    } else {
      for (int j = 0; j < k; ++j) {
        const int e = out[idx(t0) * idx(k) + idx(j)];
        if (e >= 0 && has_r[e] == 0) exact(e);
      }
      // Any other expert leaves the max at m1 (or raises it to r's new load): the cheapest
      // extra replica wins among them.
      for (int e : fill_order_) {
        if (has_r[e] != 0 || has_t0[e] != 0) continue;
        const double nb = next_piece_[idx(e)];
        const double local = load_[idx(r)] + nb;
        offer(e, std::max(local, m1), local, cur_piece_[idx(e)] - nb);
        break;
      }
    }
    const int c = cnt_[idx(best)];
    const double nb = next_piece_[idx(best)];
    const double shrink = cur_piece_[idx(best)] - nb;
    const int* er = ranks_of_.data() + idx(best) * idx(M);
    for (int j = 0; j < c; ++j) load_[idx(er[j])] -= shrink;
    load_[idx(r)] += nb;
    place(best, r);
    cur_piece_[idx(best)] = nb;
    next_piece_[idx(best)] = v.w[best] / (c + 2);
    --free_total;
    // Its next replica is cheaper now: move it forward in the order.
    auto pos = std::find(fill_order_.begin(), fill_order_.end(), best);
    while (pos != fill_order_.begin() && cheaper(*pos, *(pos - 1))) {
      std::iter_swap(pos, pos - 1);
      --pos;
    }
  }
  return *std::max_element(load_.begin(), load_.end());
}

void layer_planner::repair(const layer_view& v, const std::int32_t* previous,
                           const std::int32_t* start, double target, int budget, int iterations,
                           std::int32_t* out) {
  const int E = v.experts, M = v.ranks, k = v.per_rank, P = v.slots();
  order_.resize(idx(E));
  std::iota(order_.begin(), order_.end(), 0);
  std::sort(order_.begin(), order_.end(),
            [&](int a, int b) { return v.w[a] > v.w[b] || (v.w[a] == v.w[b] && a < b); });
  std::vector<std::int32_t> cur(start, start + P), cand(idx(P));
  std::vector<int> cnt, insert;
  std::vector<double> load;
  keep_slots(v, previous, cur.data());
  double cur_max = max_rank_load(v, cur.data(), cnt, load);
  std::uint64_t rng = 0x2545F4914F6CDD1Dull;
  for (int it = 0; it < iterations && cur_max > target; ++it) {
    max_rank_load(v, cur.data(), cnt, load);
    int hi = 0, lo = 0;
    for (int r = 1; r < M; ++r) {
      if (load[idx(r)] > load[idx(hi)]) hi = r;
      if (load[idx(r)] < load[idx(lo)]) lo = r;
    }
    rng = rng * 6364136223846793005ull + 1442695040888963407ull;
    const int extra = static_cast<int>((rng >> 33) % static_cast<std::uint64_t>(M));
    cand = cur;
    for (int r : {hi, lo, extra}) {
      std::fill(cand.begin() + idx(r) * idx(k), cand.begin() + idx(r + 1) * idx(k), -1);
    }
    // Experts left without a replica must come back; the other freed slots are fills.
    std::fill(cnt.begin(), cnt.end(), 0);
    for (int p = 0; p < P; ++p) {
      if (cand[idx(p)] >= 0) ++cnt[idx(cand[idx(p)])];
    }
    insert.clear();
    for (int e : order_) {
      if (cnt[idx(e)] == 0) insert.push_back(e);
    }
    recreate(v, target, cand.data(), insert);
    search_.reset(v, cand.data(), previous);
    search_.improve(target, budget, config_.max_steps_per_slot * P + 64);
    std::copy(search_.slots().begin(), search_.slots().end(), cand.begin());
    const int moves = keep_slots(v, previous, cand.data());
    if (budget >= 0 && moves > budget) continue;
    const double m = max_rank_load(v, cand.data(), cnt, load);
    if (m < cur_max * (1 - min_gain)) {
      cur_max = m;
      cur.swap(cand);
    }
  }
  std::copy(cur.begin(), cur.end(), out);
}

void layer_planner::ruin_and_recreate(const layer_view& v, std::int32_t* best, double& best_max,
                                      int iterations_override) {
  // Large-neighbourhood search: remove every replica of the experts on the most loaded rank
  // and on a few random ranks, re-insert them with the construction's rule under a target just
  // below the best max, then local search; keep the result only when it is better.
  const int M = v.ranks, k = v.per_rank, P = v.slots(), E = v.experts;
  const int max_steps = config_.max_steps_per_slot * P + 64;
  std::uint64_t rng = 0x9E3779B97F4A7C15ull;
  auto next = [&rng]() {
    rng += 0x9E3779B97F4A7C15ull;
    std::uint64_t z = rng;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  };
  std::vector<double> rank_load;
  std::vector<int> cnt;
  std::vector<std::uint8_t> removed(idx(E));
  std::vector<int> insert;
  const int iterations = iterations_override >= 0 ? iterations_override
                         : k <= 4                 ? config_.lns_iterations_small_k
                         : k <= 8                 ? config_.lns_iterations_mid_k
                                                  : config_.lns_iterations;
  // Mid-sized ranks gain from a wider ruin (measured on the Qwen counts); small ones do not.
  const int ruin_ranks = k >= 5 && k <= 8 ? config_.lns_ranks_mid_k : config_.lns_ranks;
  for (int it = 0; it < iterations; ++it) {
    max_rank_load(v, best, cnt, rank_load);
    int top = 0;
    for (int r = 1; r < M; ++r) {
      if (rank_load[idx(r)] > rank_load[idx(top)]) top = r;
    }
    std::fill(removed.begin(), removed.end(), 0);
    auto take_rank = [&](int r) {
      for (int j = 0; j < k; ++j) removed[idx(best[idx(r) * idx(k) + idx(j)])] = 1;
    };
    take_rank(top);
    for (int j = 0; j < ruin_ranks; ++j) take_rank(static_cast<int>(next() % idx(M)));
    std::copy(best, best + P, cand_.begin());
    for (int p = 0; p < P; ++p) {
      if (removed[idx(cand_[idx(p)])] != 0) cand_[idx(p)] = -1;
    }
    insert.clear();
    for (int e : order_) {
      if (removed[idx(e)] != 0) insert.push_back(e);
    }
    const double goal = best_max * (1 - min_gain);
    recreate(v, goal, cand_.data(), insert);
    search_.reset(v, cand_.data());
    // A short descent decides; only a success gets the full local search.
    search_.improve(goal, -1, config_.lns_steps, config_.lns_quick_resplit);
    if (search_.max_load() > goal) continue;
    search_.improve(0.0, -1, max_steps);
    const double m = max_rank_load(v, search_.slots().data(), exact_cnt_, exact_load_);
    if (m < best_max) {
      best_max = m;
      std::copy(search_.slots().begin(), search_.slots().end(), best);
    }
  }
}

double layer_planner::dhondt_lpt(const layer_view& v, std::int32_t* out) {
  // D'Hondt counts capped at M, then replicas by descending size onto the least loaded rank
  // with a free slot that does not hold the expert yet.
  const int E = v.experts, M = v.ranks, k = v.per_rank, P = v.slots();
  cnt_.assign(idx(E), 1);
  heap_.clear();
  for (int e = 0; e < E; ++e) heap_.emplace_back(v.w[e], -e);
  std::make_heap(heap_.begin(), heap_.end());
  for (int extra = P - E; extra > 0 && !heap_.empty();) {
    std::pop_heap(heap_.begin(), heap_.end());
    auto top = heap_.back();
    heap_.pop_back();
    const int e = -top.second;
    if (cnt_[idx(e)] >= M) continue;
    ++cnt_[idx(e)];
    --extra;
    heap_.emplace_back(v.w[e] / cnt_[idx(e)], top.second);
    std::push_heap(heap_.begin(), heap_.end());
  }
  heap_.clear();
  for (int e = 0; e < E; ++e) {
    for (int c = 0; c < cnt_[idx(e)]; ++c) heap_.emplace_back(v.w[e] / cnt_[idx(e)], e);
  }
  std::sort(heap_.begin(), heap_.end(), [](const auto& a, const auto& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  });
  load_.assign(idx(M), 0.0);
  fill_.assign(idx(M), 0);
  clear_has(E, M);
  for (const auto& [piece, e] : heap_) {
    int best = -1;
    for (int r = 0; r < M; ++r) {
      if (fill_[idx(r)] == k || has_[idx(r) * idx(E) + idx(e)] != 0) continue;
      if (best < 0 || load_[idx(r)] < load_[idx(best)]) best = r;
    }
    if (best < 0) {
      // Every open rank holds e already (possible only late with few open ranks): take the
      // least loaded open rank; the local search removes the duplicate.
      for (int r = 0; r < M; ++r) {
        if (fill_[idx(r)] < k && (best < 0 || load_[idx(r)] < load_[idx(best)])) best = r;
      }
    }
    out[idx(best) * idx(k) + idx(fill_[idx(best)])] = e;
    ++fill_[idx(best)];
    load_[idx(best)] += piece;
    set_has(idx(best) * idx(E) + idx(e));
  }
  return *std::max_element(load_.begin(), load_.end());
}

void layer_planner::sort_experts(const layer_view& v) {
  order_.resize(idx(v.experts));
  for (int e = 0; e < v.experts; ++e) order_[idx(e)] = e;
  std::sort(order_.begin(), order_.end(),
            [&](int a, int b) { return v.w[a] > v.w[b] || (v.w[a] == v.w[b] && a < b); });
}

bool make_duplicate_free(const layer_view& v, const std::int32_t* start, local_search& search,
                         std::vector<std::int32_t>& out, int ranks_per_node) {
  const int P = v.slots(), k = v.per_rank, E = v.experts;
  // Node-grouped: every expert stays on the node of its first replica.
  std::vector<int> expert_node;
  const bool grouped = ranks_per_node > 0 && ranks_per_node < v.ranks;
  if (grouped) {
    expert_node.assign(idx(E), -1);
    for (int p = P - 1; p >= 0; --p) expert_node[idx(start[p])] = p / k / ranks_per_node;
  }
  search.reset(v, start, nullptr, grouped ? expert_node.data() : nullptr, ranks_per_node);
  const int left = search.remove_duplicates(-1);
  out.assign(search.slots().begin(), search.slots().end());
  if (left == 0) return true;
  // Some expert has more replicas than swaps can spread (more than M, or no partner left):
  // give each remaining second replica to the absent expert whose next replica is largest.
  std::vector<int> cnt(idx(E), 0);
  for (int p = 0; p < P; ++p) ++cnt[idx(out[idx(p)])];
  std::vector<std::uint8_t> on_rank(idx(E));
  for (int r = 0; r < v.ranks; ++r) {
    std::fill(on_rank.begin(), on_rank.end(), 0);
    for (int i = 0; i < k; ++i) {
      const auto p = idx(r) * idx(k) + idx(i);
      const int e = out[p];
      if (on_rank[idx(e)] == 0) {
        on_rank[idx(e)] = 1;
        continue;
      }
      int b = -1;
      for (int f = 0; f < E; ++f) {
        if (on_rank[idx(f)] != 0 || cnt[idx(f)] >= v.ranks) continue;
        if (grouped && expert_node[idx(f)] != r / ranks_per_node) continue;
        if (b < 0 || v.w[f] / (cnt[idx(f)] + 1) > v.w[b] / (cnt[idx(b)] + 1)) b = f;
      }
      if (b < 0) return false;  // no expert left to take the slot (k > E, or the node's experts)
      --cnt[idx(e)];
      ++cnt[idx(b)];
      out[p] = b;
      on_rank[idx(b)] = 1;
    }
  }
  return true;
}

double layer_planner::improve_from(const layer_view& v, const std::int32_t* start, int iterations,
                                   std::int32_t* out) {
  const int P = v.slots();
  sort_experts(v);
  if (!make_duplicate_free(v, start, search_, cand_)) return inf;
  search_.reset(v, cand_.data());
  search_.improve(0.0, -1, config_.max_steps_per_slot * P + 64);
  std::copy(search_.slots().begin(), search_.slots().end(), out);
  double best = max_rank_load(v, out, exact_cnt_, exact_load_);
  ruin_and_recreate(v, out, best, iterations);
  return best;
}

double layer_planner::plan(const layer_view& v, std::int32_t* out, bool refine) {
  const int P = v.slots();
  sort_experts(v);
  const double lb = simple_lower_bound(v);

  // Candidates: (max load, assignment); keep the best `search_starts` distinct ones.
  struct start {
    double max_load;
    std::vector<std::int32_t> slots;
  };
  std::vector<start> starts;
  auto keep = [&](double m, const std::int32_t* s) {
    starts.push_back({m, std::vector<std::int32_t>(s, s + P)});
    std::stable_sort(starts.begin(), starts.end(),
                     [](const start& a, const start& b) { return a.max_load < b.max_load; });
    if (static_cast<int>(starts.size()) > config_.search_starts) starts.pop_back();
  };
  cand_.resize(idx(P));
  double hi = construct(v, inf, cand_.data());
  keep(hi, cand_.data());
  double lo = lb;
  for (int i = 0; i < config_.probes && hi > lo * (1 + 1e-7); ++i) {
    const double t = 0.5 * (lo + hi);
    const double got = construct(v, t, cand_.data());
    if (got < starts.back().max_load || static_cast<int>(starts.size()) < config_.search_starts) {
      keep(got, cand_.data());
    }
    if (got <= t) {
      hi = got;
    } else {
      lo = t;
    }
  }
  const double lpt = dhondt_lpt(v, cand_.data());
  if (count_duplicates(v, cand_.data()) == 0) keep(lpt, cand_.data());

  double best = inf;
  const int max_steps = config_.max_steps_per_slot * P + 64;
  for (const start& s : starts) {
    search_.reset(v, s.slots.data());
    search_.improve(0.0, -1, max_steps);
    const double m = max_rank_load(v, search_.slots().data(), exact_cnt_, exact_load_);
    if (m < best) {
      best = m;
      std::copy(search_.slots().begin(), search_.slots().end(), out);
    }
  }
  // At the lower bound nothing can improve: skip the large-neighbourhood search.
  if (refine && best > lb * (1 + min_gain)) ruin_and_recreate(v, out, best);
  return best;
}

}  // namespace eplb::detail
