// The balanced policy's per-layer machinery: exact load evaluation, the simple lower bound, the
// local search and the from-scratch layer planner (see balanced_detail.hpp).

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <limits>
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

int count_duplicates(const layer_view& v, const std::int32_t* slots) {
  int dups = 0;
  std::vector<std::int32_t> rank(idx(v.per_rank));
  for (int r = 0; r < v.ranks; ++r) {
    std::copy(slots + idx(r) * idx(v.per_rank), slots + idx(r + 1) * idx(v.per_rank),
              rank.begin());
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
                         const std::int32_t* previous, const int* expert_node,
                         int ranks_per_node) {
  w_ = v.w;
  experts_ = v.experts;
  ranks_ = v.ranks;
  per_rank_ = v.per_rank;
  slots_ = v.slots();
  expert_node_ = expert_node;
  ranks_per_node_ = ranks_per_node > 0 ? ranks_per_node : ranks_;
  slot_.assign(slots, slots + slots_);
  if (previous != nullptr) {
    prev_.assign(previous, previous + slots_);
  } else {
    prev_.clear();
  }
  cnt_.assign(idx(experts_), 0);
  has_.assign(idx(ranks_) * idx(experts_), 0);
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
  for (int p = 0; p < slots_; ++p) load_[idx(rank_of_[idx(p)])] += piece_[idx(slot_[idx(p)])];
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

template <typename Budget, typename Offer>
void local_search::scan_pair(int r, int s, double limit, Budget&& within_budget, Offer&& offer) {
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
  if (k < 4 || k > max_repartition_k) return;
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

int local_search::balance_pairs(int max_sweeps) {
  // Sum-of-squares descent: every pair of ranks takes its best rearrangement when that lowers
  // the pair's max. It spreads the slack of light ranks, which the max-only search cannot use.
  auto any = [](int) { return true; };
  int applied = 0;
  for (int sweep = 0; sweep < max_sweeps; ++sweep) {
    bool changed = false;
    for (int a = 0; a < ranks_; ++a) {
      for (int b = a + 1; b < ranks_; ++b) {
        const int r = load_[idx(a)] >= load_[idx(b)] ? a : b;
        const int s = r == a ? b : a;
        const double L = load_[idx(r)];
        candidate best;
        scan_pair(r, s, L - min_gain * L, any, [&](const candidate& c) {
          if (c.new_max < best.new_max) best = c;
        });
        if (best.kind < 0) continue;
        apply(best);
        ++applied;
        changed = true;
      }
    }
    if (!changed) break;
  }
  return applied;
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

    for (int s = 0; s < ranks_; ++s) {
      if (s != r) scan_pair(r, s, limit, within_budget, offer);
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
  has_.assign(idx(M) * idx(E), 0);
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
    has_[idx(r) * idx(E) + idx(e)] = 1;
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
    has_[idx(r) * idx(E) + idx(e)] = 1;
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
  // Per expert: its replica size, the size with one more replica, and the max load of its
  // ranks (all of which shrink together); kept up to date for the experts a fill touches.
  auto refresh_emax = [&](int e) {
    const int* er = ranks_of_.data() + idx(e) * idx(M);
    double m = 0;
    for (int j = 0; j < cnt_[idx(e)]; ++j) m = std::max(m, load_[idx(er[j])]);
    emax_[idx(e)] = m;
  };
  if (free_total > 0) {
    cur_piece_.resize(idx(E));
    next_piece_.resize(idx(E));
    emax_.resize(idx(E));
    for (int e = 0; e < E; ++e) {
      cur_piece_[idx(e)] = v.w[e] / cnt_[idx(e)];
      next_piece_[idx(e)] = v.w[e] / (cnt_[idx(e)] + 1);
      refresh_emax(e);
    }
  }
  while (free_total > 0) {
    int r = -1;
    int top[3] = {-1, -1, -1};  // the three most loaded ranks
    for (int t = 0; t < M; ++t) {
      if (free_[idx(t)] > 0 && (r < 0 || load_[idx(t)] < load_[idx(r)])) r = t;
      for (int j = 0; j < 3; ++j) {
        if (top[j] < 0 || load_[idx(t)] > load_[idx(top[j])]) {
          for (int m = 2; m > j; --m) top[m] = top[m - 1];
          top[j] = t;
          break;
        }
      }
    }
    int best = -1;
    double best_global = inf, best_local = inf;
    const std::uint8_t* has_r = has_.data() + idx(r) * idx(E);
    for (int e = 0; e < E; ++e) {
      if (has_r[e] != 0) continue;
      const double nb = next_piece_[idx(e)];
      const double shrink = cur_piece_[idx(e)] - nb;
      const double local = std::max(load_[idx(r)] + nb, emax_[idx(e)] - shrink);
      // The most loaded rank the move leaves alone: among the top three unless e covers them.
      double global = local;
      bool found = false;
      for (int j = 0; j < 3 && !found; ++j) {
        const int t = top[j];
        if (t < 0 || t == r || has_[idx(t) * idx(E) + idx(e)] != 0) continue;
        global = std::max(global, load_[idx(t)]);
        found = true;
      }
      if (!found) {
        for (int t = 0; t < M; ++t) {
          if (t != r && has_[idx(t) * idx(E) + idx(e)] == 0) global = std::max(global, load_[idx(t)]);
        }
      }
      if (global < best_global || (global == best_global && local < best_local)) {
        best = e;
        best_global = global;
        best_local = local;
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
    // Loads changed on r and on best's ranks: refresh the experts they hold.
    for (int j = 0; j <= c; ++j) {
      const int t = ranks_of_[idx(best) * idx(M) + idx(j)];
      for (int i = 0; i < k; ++i) {
        const int f = out[idx(t) * idx(k) + idx(i)];
        if (f >= 0) refresh_emax(f);
      }
    }
  }
  return *std::max_element(load_.begin(), load_.end());
}

void layer_planner::ruin_and_recreate(const layer_view& v, std::int32_t* best, double& best_max) {
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
  const int iterations = k <= 4 ? config_.lns_iterations_small_k : config_.lns_iterations;
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
    for (int j = 0; j < config_.lns_ranks; ++j) take_rank(static_cast<int>(next() % idx(M)));
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
  has_.assign(idx(M) * idx(E), 0);
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
    has_[idx(best) * idx(E) + idx(e)] = 1;
  }
  return *std::max_element(load_.begin(), load_.end());
}

double layer_planner::plan(const layer_view& v, std::int32_t* out) {
  const int E = v.experts, P = v.slots();
  order_.resize(idx(E));
  for (int e = 0; e < E; ++e) order_[idx(e)] = e;
  std::sort(order_.begin(), order_.end(), [&](int a, int b) {
    return v.w[a] > v.w[b] || (v.w[a] == v.w[b] && a < b);
  });
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
    for (int round = 0; round < config_.balance_rounds; ++round) {
      if (search_.balance_pairs(config_.balance_sweeps) == 0) break;
      search_.improve(0.0, -1, max_steps);
    }
    const double m = max_rank_load(v, search_.slots().data(), exact_cnt_, exact_load_);
    if (m < best) {
      best = m;
      std::copy(search_.slots().begin(), search_.slots().end(), out);
    }
  }
  ruin_and_recreate(v, out, best);
  return best;
}

}  // namespace eplb::detail
