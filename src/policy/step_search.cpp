// The step-aware local search of one layer (see step_search.hpp).

#include "policy/step_search.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>

#if defined(__SSE2__)
#include <xmmintrin.h>
#endif

namespace eplb::detail {

void step_search::reset(const step_layer& v, const std::int32_t* slots, int rank_block, bool pinned,
                        const std::int32_t* previous) {
  v_ = v;
  S_ = static_cast<std::size_t>(v.samples);
  E_ = v.experts;
  R_ = v.ranks;
  k_ = v.per_rank;
  P_ = v.slots();
  block_ = std::clamp(rank_block, 1, std::max(R_, 1));
  pinned_ = pinned;
  slot_.assign(slots, slots + P_);
  prev_.clear();
  if (previous != nullptr) prev_.assign(previous, previous + P_);
  changed_ = 0;
  for (int a = 0; a < P_; ++a) changed_ += differs(a, slot_[a]);
  cnt_.assign(static_cast<std::size_t>(E_), 0);
  has_.assign(static_cast<std::size_t>(R_) * E_, 0);
  for (int a = 0; a < P_; ++a) {
    ++cnt_[static_cast<std::size_t>(slot_[a])];
    ++has_[static_cast<std::size_t>(a / k_) * E_ + slot_[a]];
  }
  piece_.assign(static_cast<std::size_t>(P_) * S_, 0.0);
  load_.assign(static_cast<std::size_t>(R_) * S_, 0.0);
  for (int a = 0; a < P_; ++a) {
    set_piece(a);
    const double* pa = piece(a);
    double* la = load(a / k_);
    for (std::size_t s = 0; s < S_; ++s) la[s] += pa[s];
  }
  maxp_.assign(static_cast<std::size_t>(R_) * S_, 0.0);
  for (int r = 0; r < R_; ++r) update_maxp(r);
  top_v_.assign(S_ * top_n, -1.0);
  top_r_.assign(S_ * top_n, -1);
  mark_.assign(static_cast<std::size_t>(R_), 0);
  update_top_all();
}

void step_search::set_piece(int a) {
  const int e = slot_[a];
  const double inv = 1.0 / cnt_[static_cast<std::size_t>(e)];
  const double* x = xe(e);
  double* p = piece(a);
  for (std::size_t s = 0; s < S_; ++s) p[s] = x[s] * inv;
}

void step_search::update_top(std::size_t s) {
  double v[top_n];
  int r[top_n];
  for (int i = 0; i < top_n; ++i) v[i] = -1.0, r[i] = -1;
  for (int q = 0; q < R_; ++q) {
    const double y = load_[static_cast<std::size_t>(q) * S_ + s];
    if (y <= v[top_n - 1]) continue;
    int i = top_n - 1;
    while (i > 0 && y > v[i - 1]) {
      v[i] = v[i - 1];
      r[i] = r[i - 1];
      --i;
    }
    v[i] = y;
    r[i] = q;
  }
  for (int i = 0; i < top_n; ++i) {
    top_v_[s * top_n + i] = v[i];
    top_r_[s * top_n + i] = r[i];
  }
}

void step_search::update_maxp(int r) {
  double* m = maxp_.data() + static_cast<std::size_t>(r) * S_;
  std::fill(m, m + S_, 0.0);
  for (int a = r * k_; a < (r + 1) * k_; ++a) {
    const double* p = piece(a);
    for (std::size_t s = 0; s < S_; ++s) m[s] = std::max(m[s], p[s]);
  }
}

void step_search::update_top_pair(int ra, int rb) {
  // Only ranks ra and rb changed: a sample's list changes only if one of them is in it or now
  // beats its last entry.
  const double* la = load(ra);
  const double* lb = load(rb);
  for (std::size_t s = 0; s < S_; ++s) {
    const int* r = &top_r_[s * top_n];
    const double last = top_v_[s * top_n + top_n - 1];
    bool touched = la[s] > last || lb[s] > last;
    for (int i = 0; i < top_n && !touched; ++i) touched = r[i] == ra || r[i] == rb || r[i] < 0;
    if (touched) update_top(s);
  }
}

void step_search::update_top_all() {
  for (std::size_t s = 0; s < S_; ++s) update_top(s);
}

double step_search::objective() const {
  double f = 0;
  for (std::size_t s = 0; s < S_; ++s) f += v_.w[s] * top_v_[s * top_n];
  return f;
}

bool step_search::first_order(int ra, int rb) {
  // A swap of slot a (on ra) with b (on rb) moves d = piece_b - piece_a from rb to ra; in a
  // sample where ra is the busiest rank the max grows by at least d, where rb is by at least -d,
  // elsewhere by at least 0. So first[b] - first[a], with first[x] = sum over the samples where
  // ra is the max of w * piece_x minus the same over rb's, bounds the change from below: only
  // swaps where it is negative can improve. Returns false when neither rank is ever the max
  // (then no swap between them can improve).
  first_.assign(static_cast<std::size_t>(2 * k_), 0.0);
  bool any_max = false;
  for (std::size_t s = 0; s < S_; ++s) {
    const int r0 = top_r_[s * top_n];
    if (r0 != ra && r0 != rb) continue;
    any_max = true;
    const double sign = r0 == ra ? v_.w[s] : -v_.w[s];
    for (int i = 0; i < 2 * k_; ++i) {
      const int slot = i < k_ ? ra * k_ + i : rb * k_ + (i - k_);
      first_[static_cast<std::size_t>(i)] += sign * piece_[static_cast<std::size_t>(slot) * S_ + s];
    }
  }
  return any_max;
}

void step_search::gather_pair(int ra, int rb) {
  // Only samples where a swap between ra and rb can change the max matter: ra or rb is the
  // busiest rank, or could become it (its load plus the largest piece the other rank could send
  // reaches the max). In every other sample the change is exactly 0.
  const double* la = load(ra);
  const double* lb = load(rb);
  const double* mpa = maxp_.data() + static_cast<std::size_t>(ra) * S_;
  const double* mpb = maxp_.data() + static_cast<std::size_t>(rb) * S_;
  rel_.clear();
  for (std::size_t s = 0; s < S_; ++s) {
    const double v0 = top_v_[s * top_n];
    const int r0 = top_r_[s * top_n];
    const bool relevant = r0 == ra || r0 == rb || la[s] + mpb[s] >= v0 || lb[s] + mpa[s] >= v0;
    if (relevant) rel_.push_back(static_cast<std::uint32_t>(s));
  }
  const std::size_t n = rel_.size();
  g_other_.resize(n);
  g_la_.resize(n);
  g_lb_.resize(n);
  g_v0_.resize(n);
  g_w_.resize(n);
  for (std::size_t j = 0; j < n; ++j) {
    const std::size_t s = rel_[j];
    const int* r = &top_r_[s * top_n];
    const double* v = &top_v_[s * top_n];
    // The busiest rank other than ra and rb: two of the top three at most are ra and rb; with
    // fewer than three ranks v[2] is -1.
    g_other_[j] = (r[0] != ra && r[0] != rb) ? v[0] : (r[1] != ra && r[1] != rb) ? v[1] : v[2];
    g_la_[j] = la[s];
    g_lb_[j] = lb[s];
    g_v0_[j] = top_v_[s * top_n];
    g_w_[j] = v_.w[s];
  }
  // Gathered pieces of ra's slots (0..k) and rb's (k..2k).
  g_piece_.resize(static_cast<std::size_t>(2 * k_) * n);
  f_piece_.resize(static_cast<std::size_t>(2 * k_) * n);
  for (int i = 0; i < 2 * k_; ++i) {
    const int slot = i < k_ ? ra * k_ + i : rb * k_ + (i - k_);
    const double* p = piece(slot);
    double* g = g_piece_.data() + static_cast<std::size_t>(i) * n;
    float* f = f_piece_.data() + static_cast<std::size_t>(i) * n;
    for (std::size_t j = 0; j < n; ++j) {
      g[j] = p[rel_[j]];
      f[j] = static_cast<float>(g[j]);
    }
  }
  // The single-precision screen works on loads relative to the sample's max (small numbers, so
  // its rounding stays far below the tolerance that sends a candidate to the exact test).
  f_other_.resize(n);
  f_la_.resize(n);
  f_lb_.resize(n);
  f_w_.resize(n);
  double scale = 0;
  for (std::size_t j = 0; j < n; ++j) {
    f_other_[j] = static_cast<float>(g_other_[j] - g_v0_[j]);
    f_la_[j] = static_cast<float>(g_la_[j] - g_v0_[j]);
    f_lb_[j] = static_cast<float>(g_lb_[j] - g_v0_[j]);
    f_w_[j] = static_cast<float>(g_w_[j]);
    scale += g_w_[j] * g_v0_[j];
  }
  screen_tolerance_ = 1e-4 * scale;
}

double step_search::swap_screen(int i, int jb) const {
  const std::size_t n = rel_.size();
  const float* xa = f_piece_.data() + static_cast<std::size_t>(i) * n;
  const float* xb = f_piece_.data() + static_cast<std::size_t>(k_ + jb) * n;
  const float* o = f_other_.data();
  const float* la = f_la_.data();
  const float* lb = f_lb_.data();
  const float* w = f_w_.data();
  std::size_t j = 0;
  float sum = 0;
#if defined(__SSE2__)
  // Four samples per instruction; the compiler does not vectorize this reduction by itself.
  __m128 acc0 = _mm_setzero_ps(), acc1 = _mm_setzero_ps();
  for (; j + 8 <= n; j += 8) {
    const __m128 d0 = _mm_sub_ps(_mm_loadu_ps(xb + j), _mm_loadu_ps(xa + j));
    const __m128 d1 = _mm_sub_ps(_mm_loadu_ps(xb + j + 4), _mm_loadu_ps(xa + j + 4));
    const __m128 m0 = _mm_max_ps(
        _mm_loadu_ps(o + j),
        _mm_max_ps(_mm_add_ps(_mm_loadu_ps(la + j), d0), _mm_sub_ps(_mm_loadu_ps(lb + j), d0)));
    const __m128 m1 =
        _mm_max_ps(_mm_loadu_ps(o + j + 4), _mm_max_ps(_mm_add_ps(_mm_loadu_ps(la + j + 4), d1),
                                                       _mm_sub_ps(_mm_loadu_ps(lb + j + 4), d1)));
    acc0 = _mm_add_ps(acc0, _mm_mul_ps(m0, _mm_loadu_ps(w + j)));
    acc1 = _mm_add_ps(acc1, _mm_mul_ps(m1, _mm_loadu_ps(w + j + 4)));
  }
  float lanes[4];
  _mm_storeu_ps(lanes, _mm_add_ps(acc0, acc1));
  sum = (lanes[0] + lanes[1]) + (lanes[2] + lanes[3]);
#endif
  for (; j < n; ++j) {
    const float d = xb[j] - xa[j];
    sum += std::max(o[j], std::max(la[j] + d, lb[j] - d)) * w[j];
  }
  return sum;
}

double step_search::swap_delta(int i, int jb) const {
  const std::size_t n = rel_.size();
  const double* xa = g_piece_.data() + static_cast<std::size_t>(i) * n;
  const double* xb = g_piece_.data() + static_cast<std::size_t>(k_ + jb) * n;
  // Four partial sums in a fixed order: the result depends on nothing but the inputs.
  double acc[4] = {0, 0, 0, 0};
  std::size_t j = 0;
  for (; j + 4 <= n; j += 4) {
    for (std::size_t u = 0; u < 4; ++u) {
      const double d = xb[j + u] - xa[j + u];
      const double next = std::max(g_other_[j + u], std::max(g_la_[j + u] + d, g_lb_[j + u] - d));
      acc[u] += (next - g_v0_[j + u]) * g_w_[j + u];
    }
  }
  for (; j < n; ++j) {
    const double d = xb[j] - xa[j];
    const double next = std::max(g_other_[j], std::max(g_la_[j] + d, g_lb_[j] - d));
    acc[0] += (next - g_v0_[j]) * g_w_[j];
  }
  return (acc[0] + acc[1]) + (acc[2] + acc[3]);
}

void step_search::apply_swap(int a, int b) {
  const int ra = a / k_, rb = b / k_;
  const int ea = slot_[a], eb = slot_[b];
  double* pa = piece(a);
  double* pb = piece(b);
  double* la = load(ra);
  double* lb = load(rb);
  for (std::size_t s = 0; s < S_; ++s) {
    const double d = pb[s] - pa[s];
    la[s] += d;
    lb[s] -= d;
    std::swap(pa[s], pb[s]);
  }
  update_top_pair(ra, rb);
  update_maxp(ra);
  update_maxp(rb);
  --has_[static_cast<std::size_t>(ra) * E_ + ea];
  --has_[static_cast<std::size_t>(rb) * E_ + eb];
  ++has_[static_cast<std::size_t>(ra) * E_ + eb];
  ++has_[static_cast<std::size_t>(rb) * E_ + ea];
  changed_ += differs(a, eb) + differs(b, ea) - differs(a, ea) - differs(b, eb);
  std::swap(slot_[a], slot_[b]);
}

int step_search::swap_pass(double eps, int budget) {
  int moves = 0;
  // Pairs of two ranks untouched since the last pass found nothing are skipped (don't-look
  // bits): their pieces are the same, only the other ranks' loads moved.
  std::swap(touched_, touched_last_);
  std::fill(touched_.begin(), touched_.end(), 0);
  for (int ra = 0; ra < R_; ++ra) {
    for (int rb = ra + 1; rb < R_ && rb / block_ == ra / block_; ++rb) {
      if (!first_pass_ && touched_last_[static_cast<std::size_t>(ra)] == 0 &&
          touched_last_[static_cast<std::size_t>(rb)] == 0) {
        continue;
      }
      if (!first_order(ra, rb)) continue;
      gather_pair(ra, rb);
      // First improvement, slot pairs in order; after a swap the scan goes on with the pair's
      // new state.
      bool live = true;
      for (int i = 0; i < k_ && live; ++i) {
        const int a = ra * k_ + i;
        for (int jb = 0; jb < k_ && live; ++jb) {
          const int b = rb * k_ + jb;
          const double g1 =
              first_[static_cast<std::size_t>(k_ + jb)] - first_[static_cast<std::size_t>(i)];
          if (g1 >= -eps) continue;
          const int ea = slot_[a], eb = slot_[b];
          if (ea == eb || has(rb, ea) || has(ra, eb)) continue;
          const int dmoves = differs(a, eb) + differs(b, ea) - differs(a, ea) - differs(b, eb);
          if (budget >= 0 && changed_ + dmoves > budget) continue;
          // A single-precision screen first; the exact test decides.
          if (swap_screen(i, jb) >= screen_tolerance_) continue;
          if (swap_delta(i, jb) >= -eps) continue;
          apply_swap(a, b);
          touched_[static_cast<std::size_t>(ra)] = touched_[static_cast<std::size_t>(rb)] = 1;
          ++moves;
          live = first_order(ra, rb);
          if (live) gather_pair(ra, rb);
        }
      }
    }
  }
  return moves;
}

double step_search::resplit_gain(int a, int e2) {
  const int ra = a / k_;
  const int e1 = slot_[a];
  const double c1 = cnt_[static_cast<std::size_t>(e1)];
  const double c2 = cnt_[static_cast<std::size_t>(e2)];
  aff_.clear();
  alpha_.clear();
  beta_.clear();
  auto add = [&](int r, double al, double be) {
    if (mark_[static_cast<std::size_t>(r)] == 0) {
      mark_[static_cast<std::size_t>(r)] = static_cast<int>(aff_.size()) + 1;
      aff_.push_back(r);
      alpha_.push_back(al);
      beta_.push_back(be);
    } else {
      const auto i = static_cast<std::size_t>(mark_[static_cast<std::size_t>(r)] - 1);
      alpha_[i] += al;
      beta_[i] += be;
    }
  };
  add(ra, -1.0 / c1, 1.0 / (c2 + 1));
  const double grow1 = 1.0 / (c1 - 1) - 1.0 / c1;
  const double shrink2 = 1.0 / (c2 + 1) - 1.0 / c2;
  for (int b = 0; b < P_; ++b) {
    if (b == a) continue;
    if (slot_[b] == e1) add(b / k_, grow1, 0.0);
    if (slot_[b] == e2) add(b / k_, 0.0, shrink2);
  }
  const double* x1 = xe(e1);
  const double* x2 = xe(e2);
  const std::size_t n = aff_.size();
  double delta = 0;
  for (std::size_t s = 0; s < S_; ++s) {
    double m = -1.0;
    bool found = false;
    for (int i = 0; i < top_n; ++i) {
      const int r = top_r_[s * top_n + i];
      if (r < 0) {
        found = true;  // fewer ranks than the list: every other rank is affected
        break;
      }
      if (mark_[static_cast<std::size_t>(r)] == 0) {
        m = top_v_[s * top_n + i];
        found = true;
        break;
      }
    }
    if (!found) {
      for (int q = 0; q < R_; ++q) {
        if (mark_[static_cast<std::size_t>(q)] == 0) {
          m = std::max(m, load_[static_cast<std::size_t>(q) * S_ + s]);
        }
      }
    }
    for (std::size_t i = 0; i < n; ++i) {
      const double y =
          load_[static_cast<std::size_t>(aff_[i]) * S_ + s] + alpha_[i] * x1[s] + beta_[i] * x2[s];
      m = std::max(m, y);
    }
    delta += (m - top_v_[s * top_n]) * v_.w[s];
  }
  for (int r : aff_) mark_[static_cast<std::size_t>(r)] = 0;
  return delta;
}

void step_search::apply_resplit(int a, int e2) {
  const int ra = a / k_;
  const int e1 = slot_[a];
  // Take every slot of e1 and e2 out of the rank loads, change, and put them back.
  auto each_slot = [&](auto&& f) {
    for (int b = 0; b < P_; ++b) {
      if (slot_[b] == e1 || slot_[b] == e2) f(b);
    }
  };
  each_slot([&](int b) {
    const double* p = piece(b);
    double* l = load(b / k_);
    for (std::size_t s = 0; s < S_; ++s) l[s] -= p[s];
  });
  --has_[static_cast<std::size_t>(ra) * E_ + e1];
  ++has_[static_cast<std::size_t>(ra) * E_ + e2];
  --cnt_[static_cast<std::size_t>(e1)];
  ++cnt_[static_cast<std::size_t>(e2)];
  slot_[a] = e2;
  each_slot([&](int b) {
    set_piece(b);
    const double* p = piece(b);
    double* l = load(b / k_);
    for (std::size_t s = 0; s < S_; ++s) l[s] += p[s];
  });
  for (int r = 0; r < R_; ++r) update_maxp(r);
  update_top_all();
}

int step_search::resplit_pass(double eps, int targets, int budget) {
  // Target experts: those whose replicas most often sit on a busiest rank, weighted by their
  // share of it (an extra replica of them relieves those ranks).
  score_.assign(static_cast<std::size_t>(E_), 0.0);
  for (int a = 0; a < P_; ++a) {
    const int r = a / k_;
    const double* p = piece(a);
    double sc = 0;
    for (std::size_t s = 0; s < S_; ++s) {
      if (top_r_[s * top_n] == r) sc += v_.w[s] * p[s];
    }
    score_[static_cast<std::size_t>(slot_[a])] += sc;
  }
  order_.resize(static_cast<std::size_t>(E_));
  std::iota(order_.begin(), order_.end(), 0);
  const int m = std::min(E_, std::max(targets, 1));
  std::partial_sort(order_.begin(), order_.begin() + m, order_.end(), [&](int x, int y) {
    const double a = score_[static_cast<std::size_t>(x)], b = score_[static_cast<std::size_t>(y)];
    return a > b || (a == b && x < y);
  });
  int moves = 0;
  for (int i = 0; i < m; ++i) {
    const int e2 = order_[static_cast<std::size_t>(i)];
    // The block e2 must stay in when pinned.
    int e2_block = -1;
    if (pinned_) {
      for (int b = 0; b < P_; ++b) {
        if (slot_[b] == e2) {
          e2_block = (b / k_) / block_;
          break;
        }
      }
    }
    for (int a = 0; a < P_; ++a) {
      const int e1 = slot_[a];
      const int ra = a / k_;
      if (e1 == e2 || cnt_[static_cast<std::size_t>(e1)] < 2 || has(ra, e2)) continue;
      if (pinned_ && ra / block_ != e2_block) continue;
      const int dmoves = differs(a, e2) - differs(a, e1);
      if (budget >= 0 && changed_ + dmoves > budget) continue;
      if (resplit_gain(a, e2) >= -eps) continue;
      apply_resplit(a, e2);
      changed_ += dmoves;
      ++moves;
    }
  }
  return moves;
}

int step_search::improve(int max_passes, bool resplit, int resplit_targets, int budget) {
  if (S_ == 0 || R_ < 1) return 0;
  // Moves must gain more than rounding can fake, so the search cannot cycle.
  const double eps = 1e-12 * std::max(objective(), 1e-300);
  int total = 0;
  touched_.assign(static_cast<std::size_t>(R_), 0);
  touched_last_.assign(static_cast<std::size_t>(R_), 0);
  for (int pass = 0; pass < max_passes; ++pass) {
    first_pass_ = pass == 0;
    int moves = R_ > 1 ? swap_pass(eps, budget) : 0;
    if (resplit) {
      const int re = resplit_pass(eps, resplit_targets, budget);
      // A re-split changes pieces on several ranks: every pair is looked at again.
      if (re > 0) std::fill(touched_.begin(), touched_.end(), 1);
      moves += re;
    }
    total += moves;
    if (moves == 0) break;
  }
  return total;
}

}  // namespace eplb::detail
