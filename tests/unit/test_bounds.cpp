#include <algorithm>
#include <catch2/catch.hpp>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <limits>
#include <vector>

#include "eplb/bounds.hpp"

using namespace eplb;

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// Portable fixed-seed generator (std distributions differ between standard libraries).
struct lcg {
  std::uint64_t state;
  std::uint32_t next() {
    state = state * 6364136223846793005ULL + 1442695040888963407ULL;
    return static_cast<std::uint32_t>(state >> 33);
  }
  int below(int n) { return static_cast<int>(next() % static_cast<std::uint32_t>(n)); }
  double unit() { return next() / 4294967296.0; }
};

// Exact optimum by enumeration: every count vector (1 <= c_e <= cap, sum P) and every assignment of
// the replicas to ranks with exactly k per rank (no rank holding two replicas of one expert when
// forbid). Returns +inf when nothing is feasible.
class brute_force {
 public:
  brute_force(const std::vector<double>& w, int slots, int ranks, bool forbid)
      : w_(w), slots_(slots), ranks_(ranks), k_(slots / ranks), forbid_(forbid) {}

  double opt() {
    const int e = static_cast<int>(w_.size());
    const int redundant = slots_ - e;
    cap_ = forbid_ ? std::min(ranks_, redundant + 1) : redundant + 1;
    cnt_.assign(w_.size(), 1);
    best_ = kInf;
    best_rep_ = kInf;
    counts(0, redundant);
    return best_;
  }
  // min over feasible counts of max_e w_e / c_e, enumerated (B2's definition).
  double best_replication() const { return best_rep_; }

 private:
  void counts(int e, int left) {
    const int n = static_cast<int>(w_.size());
    if (e == n - 1) {
      if (1 + left > cap_) return;
      cnt_[static_cast<std::size_t>(e)] = 1 + left;
      evaluate();
      return;
    }
    for (int extra = 0; extra <= left && 1 + extra <= cap_; ++extra) {
      cnt_[static_cast<std::size_t>(e)] = 1 + extra;
      counts(e + 1, left - extra);
    }
  }

  void evaluate() {
    reps_.clear();
    double rep = 0;
    for (std::size_t e = 0; e < w_.size(); ++e) {
      rep = std::max(rep, w_[e] / cnt_[e]);
      for (int c = 0; c < cnt_[e]; ++c) reps_.push_back(static_cast<int>(e));
    }
    best_rep_ = std::min(best_rep_, rep);
    load_.assign(static_cast<std::size_t>(ranks_), 0.0);
    fill_.assign(static_cast<std::size_t>(ranks_), 0);
    held_.assign(static_cast<std::size_t>(ranks_) * w_.size(), 0);
    assign(0, 0.0);
  }

  void assign(std::size_t i, double current_max) {
    if (current_max >= best_) return;
    if (i == reps_.size()) {
      best_ = current_max;
      return;
    }
    const auto e = static_cast<std::size_t>(reps_[i]);
    const double size = w_[e] / cnt_[e];
    bool tried_empty = false;
    for (int r = 0; r < ranks_; ++r) {
      const auto ri = static_cast<std::size_t>(r);
      if (fill_[ri] == k_) continue;
      if (forbid_ && held_[ri * w_.size() + e] != 0) continue;
      if (fill_[ri] == 0) {  // empty ranks are interchangeable
        if (tried_empty) continue;
        tried_empty = true;
      }
      load_[ri] += size;
      ++fill_[ri];
      ++held_[ri * w_.size() + e];
      assign(i + 1, std::max(current_max, load_[ri]));
      load_[ri] -= size;
      --fill_[ri];
      --held_[ri * w_.size() + e];
    }
  }

  std::vector<double> w_;
  int slots_, ranks_, k_;
  bool forbid_;
  int cap_ = 0;
  std::vector<int> cnt_, reps_, fill_, held_;
  std::vector<double> load_;
  double best_ = kInf, best_rep_ = kInf;
};

bool le_opt(double bound, double opt) { return bound <= opt * (1 + 1e-12); }

}  // namespace

TEST_CASE("bounds never exceed the brute-force optimum on small instances") {
  lcg rng{20240611};
  int instances = 0;
  int b3_raises = 0;       // B3 above max(B1, B2, B4)
  int b3_tight = 0;        // ... and equal to OPT
  int exact_beats_lp = 0;  // exact knapsack strictly above the fractional one
  int b2_matches = 0;
  const auto start = std::chrono::steady_clock::now();
  for (int trial = 0; trial < 10000; ++trial) {
    const int e = 2 + rng.below(5);  // 2..6
    const int m = 1 + rng.below(4);  // 1..4
    // P: a multiple of m in [e, 8]
    std::vector<int> ps;
    for (int p = e; p <= 10; ++p) {
      if (p % m == 0) ps.push_back(p);
    }
    if (ps.empty()) continue;
    const int p = ps[static_cast<std::size_t>(rng.below(static_cast<int>(ps.size())))];
    std::vector<double> w(static_cast<std::size_t>(e));
    const bool integer = rng.below(2) == 0;
    for (double& x : w) {
      if (rng.below(6) == 0) {
        x = 0;
      } else if (integer) {
        x = 1 + rng.below(12);
      } else {
        x = rng.unit() * 10;
      }
    }
    for (const bool forbid : {true, false}) {
      brute_force bf(w, p, m, forbid);
      const double opt = bf.opt();
      bound_options o;
      o.forbid_duplicates = forbid;
      const layer_bound b = lower_bound_layer(w.data(), e, p, m, o);
      o.exact_knapsack = false;
      const layer_bound lp = lower_bound_layer(w.data(), e, p, m, o);
      INFO("trial " << trial << " E=" << e << " P=" << p << " M=" << m << " forbid=" << forbid);
      INFO("w = " << Catch::Detail::stringify(w));
      INFO("opt " << opt << " b1 " << b.b1_mean << " b2 " << b.b2_replication << " b3 "
                  << b.b3_cardinality << " b4 " << b.b4_packing << " best " << b.best);
      if (opt == kInf) {
        // Only the duplicate ban can make an instance infeasible (k > E).
        REQUIRE(forbid);
        CHECK(b.best == kInf);
        continue;
      }
      ++instances;
      CHECK(le_opt(b.b1_mean, opt));
      CHECK(le_opt(b.b2_replication, opt));
      CHECK(le_opt(b.b3_cardinality, opt));
      CHECK(le_opt(b.b4_packing, opt));
      CHECK(le_opt(b.best, opt));
      CHECK(le_opt(lp.best, opt));
      CHECK(b.best >= std::max({b.b1_mean, b.b2_replication, b.b3_cardinality, b.b4_packing}));
      CHECK(b.best >= lp.best);
      // D'Hondt with the cap attains B2's definition exactly.
      CHECK(b.b2_replication == Approx(bf.best_replication()).epsilon(1e-12).margin(1e-300));
      if (b.b2_replication == bf.best_replication()) ++b2_matches;
      // Two replicas per rank with forced counts: pairing largest with smallest is optimal.
      if (p == e && p == 2 * m) CHECK(b.b4_packing == Approx(opt).epsilon(1e-12));
      if (b.b3_cardinality > std::max({b.b1_mean, b.b2_replication, b.b4_packing})) {
        ++b3_raises;
        if (b.best >= opt * (1 - 1e-12)) ++b3_tight;
      }
      if (b.best > lp.best) ++exact_beats_lp;
    }
  }
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  WARN("brute force: " << instances << " instances, B3 raised the bound in " << b3_raises
                       << " (tight in " << b3_tight
                       << "), exact knapsack beat the fractional one in " << exact_beats_lp << ", "
                       << seconds << " s");
  CHECK(instances > 2000);
  CHECK(b3_raises > 0);       // the search exercises B3, not only B1/B2
  CHECK(exact_beats_lp > 0);  // ... and the exact knapsack path
  CHECK(b2_matches > 0);
}

TEST_CASE("B2 is the D'Hondt optimum under the cap") {
  bound_options o;
  // w = [10, 1], 3 slots on 3 ranks: counts (2, 1) -> max(10/2, 1/1) = 5; B1 = 11/3.
  const double w[] = {10, 1};
  layer_bound b = lower_bound_layer(w, 2, 3, 3, o);
  CHECK(b.b1_mean == Approx(11.0 / 3));
  CHECK(b.b2_replication == 5);
  CHECK(b.b3_cardinality == 0);  // one slot per rank: no j to try
  CHECK(b.b4_packing == 0);      // R > 0
  CHECK(b.best == 5);
  // 4 slots on 2 ranks: without duplicates cap = 2, counts (2, 2) -> 5; with them cap = 3,
  // counts (3, 1) -> 10/3.
  b = lower_bound_layer(w, 2, 4, 2, o);
  CHECK(b.b2_replication == 5);
  o.forbid_duplicates = false;
  b = lower_bound_layer(w, 2, 4, 2, o);
  CHECK(b.b2_replication == Approx(10.0 / 3));
  CHECK(b.best == Approx(5.5));  // B1 = 11/2 binds
}

TEST_CASE("zero weights give zero bounds and never count") {
  bound_options o;
  const double zeros[] = {0, 0, 0};
  layer_bound b = lower_bound_layer(zeros, 3, 4, 2, o);
  CHECK(b.best == 0);
  CHECK(b.b2_replication == 0);
  // w = [6, 0, 0], 4 slots on 2 ranks: the extra slot goes to expert 0 -> B2 = 3 = B1.
  const double one_hot[] = {6, 0, 0};
  b = lower_bound_layer(one_hot, 3, 4, 2, o);
  CHECK(b.b1_mean == 3);
  CHECK(b.b2_replication == 3);
  CHECK(b.best == 3);
}

TEST_CASE("B3 binds where replicas are too big to spread") {
  // w = [8, 4, 1], 4 slots on 2 ranks (k = 2, cap = 2). j = 1: at most 2 replicas exceed T/2.
  // For T in [4, 8): expert 0 needs a = 2 replicas to stay <= T and b = 3 > cap to stay <= T/2, so
  // it is big and spends the whole budget 2; expert 1 must then be small: ceil(8/T) = 2 slots;
  // expert 2 one slot: 5 > 4 slots. At T = 8 all fit (2 + 1 + 1). B3 = 8 = OPT (counts (2,1,1):
  // {4, 4}, {4, 1}); B1 = 6.5, B2 = 4.
  const double w[] = {8, 4, 1};
  for (const bool forbid : {true, false}) {
    bound_options o;
    o.forbid_duplicates = forbid;
    const layer_bound b = lower_bound_layer(w, 3, 4, 2, o);
    CHECK(b.b1_mean == 6.5);
    CHECK(b.b2_replication == 4);
    CHECK(b.b3_cardinality == 8);
    CHECK(b.best == 8);
  }
  // R = 0, w = [3, 3, 3, 1] on 2 ranks: B4 pairs 3+3 = 6 and B3 cannot add to it.
  const double w4[] = {3, 3, 3, 1};
  const layer_bound b = lower_bound_layer(w4, 4, 4, 2, bound_options{});
  CHECK(b.b4_packing == 6);
  CHECK(b.best == 6);
}

TEST_CASE("B4 bounds the packing of forced counts") {
  bound_options o;
  // k = 2 pairing: sorted 10, 10, 2, 2, 1.5, 1.5, 1, 0 on 4 ranks -> pairs 10+0, 10+1, 2+1.5,
  // 2+1.5: 11 (the optimum). B1 = 7, B2 = 10.
  const double pair[] = {2, 10, 1.5, 0, 10, 2, 1, 1.5};
  layer_bound b = lower_bound_layer(pair, 8, 8, 4, o);
  CHECK(b.b1_mean == 7);
  CHECK(b.b2_replication == 10);
  CHECK(b.b4_packing == 11);
  CHECK(b.best == 11);
  // k = 3, p_M + p_{M+1}: [5, 5, 5, 0, 0, 0] on 2 ranks: two fives share a rank -> 10.
  const double three[] = {5, 0, 5, 0, 5, 0};
  b = lower_bound_layer(three, 6, 6, 2, o);
  CHECK(b.b4_packing == 10);
  CHECK(b.best == 10);
  // k = 3, largest plus the two smallest: [9, 1, 1, 1, 1, 1] on 2 ranks -> 11; B1 = 7.
  const double big[] = {1, 1, 9, 1, 1, 1};
  b = lower_bound_layer(big, 6, 6, 2, o);
  CHECK(b.b4_packing == 11);
  CHECK(b.best == 11);
  // Any redundant slot turns B4 off.
  b = lower_bound_layer(big, 6, 8, 2, o);
  CHECK(b.b4_packing == 0);
}

TEST_CASE("FlashLB example: bound between the mean and the known optimum") {
  // policy-reference section 8: optimum 196.67 with counts (4, 3, 1, 3, 1, 1, 1, 2).
  const double w[] = {600, 560, 120, 120, 20, 10, 10, 10};
  for (const bool forbid : {true, false}) {
    for (const bool exact : {true, false}) {
      bound_options o;
      o.forbid_duplicates = forbid;
      o.exact_knapsack = exact;
      const layer_bound b = lower_bound_layer(w, 8, 16, 8, o);
      WARN("FlashLB forbid=" << forbid << " exact=" << exact << ": b1 " << b.b1_mean << " b2 "
                             << b.b2_replication << " b3 " << b.b3_cardinality << " best "
                             << b.best);
      CHECK(b.b1_mean == 181.25);
      CHECK(b.b2_replication == 120);  // D'Hondt: counts (5, 5, 1, ...), the 120s stay whole
      CHECK(b.best >= 181.25);
      CHECK(b.best <= 590.0 / 3);
    }
  }
}

TEST_CASE("measure_gap compares each layer's max rank load with its bound") {
  // Layer 0: FlashLB's optimum, counts (4, 3, 1, 3, 1, 1, 1, 2), two replicas per rank:
  // {1, 5} {1, 6} {1, 7} {0, 3} {0, 3} {0, 3} {0, 4} {2, 7}; loads 186.67+10, 186.67+10,
  // 186.67+5, 150+40 (x3), 150+20, 120+5 -> max 590/3.
  // Layer 1: uniform 100, slot p holds p % 8: every rank 50 + 50 = 100 = B1, gap 0.
  topology t{2, 8, 16, 8, 1, 1};
  weight_matrix w(2, 8);
  w.row(0) << 600, 560, 120, 120, 20, 10, 10, 10;
  w.row(1).setConstant(100);
  placement p = identity_placement(t);
  const std::int32_t l0[] = {1, 5, 1, 6, 1, 7, 0, 3, 0, 3, 0, 3, 0, 4, 2, 7};
  std::copy(std::begin(l0), std::end(l0), p.row(0));
  const bound_options o;
  auto r = measure_gap(w, p, t, o);
  REQUIRE(r.ok());
  const gap_report& g = *r;
  const double lb0 = lower_bound_layer(w.row(0).data(), 8, 16, 8, o).best;
  REQUIRE(g.layer_max.size() == 2);
  CHECK(g.layer_max[0] == Approx(590.0 / 3).epsilon(1e-12));
  CHECK(g.layer_max[1] == 100);
  CHECK(g.layer_bound[0] == lb0);
  CHECK(g.layer_bound[1] == 100);
  CHECK(g.layer_gap[0] == Approx(590.0 / 3 / lb0 - 1).epsilon(1e-12));
  CHECK(g.layer_gap[0] > 0);
  CHECK(g.layer_gap[1] == 0);
  CHECK(g.worst_layer == 0);
  CHECK(g.worst_gap == g.layer_gap[0]);
  CHECK(g.mean_gap == Approx(g.layer_gap[0] / 2).epsilon(1e-12));
  CHECK(g.overall_gap == Approx((590.0 / 3 + 100) / (lb0 + 100) - 1).epsilon(1e-12));

  // vLLM's counts [5,5,1,1,1,1,1,1] with GPU 7 = [1, 1] (section 8), LPT order: three ranks
  // {0, 1} = 120 + 112 = 232, GPU 7 = 224. The duplicate breaks forbid_duplicates, yet the gap is
  // still measured against the no-duplicate bound.
  const std::int32_t vllm[] = {0, 1, 0, 1, 0, 1, 0, 4, 0, 5, 2, 6, 3, 7, 1, 1};
  std::copy(std::begin(vllm), std::end(vllm), p.row(0));
  r = measure_gap(w, p, t, o);
  REQUIRE(r.ok());
  CHECK(r->layer_max[0] == Approx(120 + 112).epsilon(1e-12));
  CHECK(r->layer_gap[0] == Approx(232 / lb0 - 1).epsilon(1e-12));
}

TEST_CASE("lower_bounds and measure_gap reject unusable input") {
  topology t{1, 3, 4, 2, 1, 1};
  weight_matrix w(1, 3);
  w << 1, 2, 3;
  const bound_options o;
  REQUIRE(lower_bounds(w, t, o).ok());

  weight_matrix wrong(2, 3);
  wrong.setZero();
  auto r = lower_bounds(wrong, t, o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == errc::shape_mismatch);

  weight_matrix neg = w;
  neg(0, 2) = -1;
  r = lower_bounds(neg, t, o);
  REQUIRE_FALSE(r.ok());
  CHECK(r.code() == errc::invalid_value);
  CHECK_THAT(r.message(), Catch::Contains("layer 0 expert 2"));

  topology bad = t;
  bad.num_slots = 5;  // not divisible by 2 ranks
  CHECK(lower_bounds(w, bad, o).code() == errc::invalid_topology);

  // 4 slots on 1 rank hold 4 replicas of 3 experts: a duplicate is unavoidable.
  topology one_rank{1, 3, 4, 1, 1, 1};
  r = lower_bounds(w, one_rank, o);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.message(), Catch::Contains("forbid_duplicates"));
  CHECK(lower_bound_layer(w.data(), 3, 4, 1, o).best == kInf);
  bound_options allow;
  allow.forbid_duplicates = false;
  auto ok = lower_bounds(w, one_rank, allow);
  REQUIRE(ok.ok());
  CHECK((*ok)[0].best == 6);  // one rank carries everything

  placement p = identity_placement(t);
  p.row(0)[1] = 0;  // expert 1 vanishes
  CHECK(measure_gap(w, p, t, o).code() == errc::invalid_value);
  CHECK(measure_gap(w, identity_placement(t), t, o).ok());

  const double nan_w[] = {1, std::nan(""), 2};
  CHECK(lower_bound_layer(nan_w, 3, 4, 2, o).best == 0);
  CHECK(lower_bound_layer(w.data(), 3, 2, 2, o).best == 0);  // fewer slots than experts
}

TEST_CASE("bounds of a model-sized matrix stay below real placements and are fast") {
  // 94 layers x 128 experts, EP 64, 64 redundant (k = 3): skewed pseudo-random loads.
  topology t{94, 128, 192, 64, 1, 1};
  weight_matrix w(t.num_layers, t.num_experts);
  lcg rng{7};
  for (int l = 0; l < t.num_layers; ++l) {
    for (int e = 0; e < t.num_experts; ++e) {
      const double u = rng.unit();
      w(l, e) = std::floor(1e6 * u * u * u * u);
    }
  }
  const bound_options o;
  const auto start = std::chrono::steady_clock::now();
  auto lb = lower_bounds(w, t, o);
  const double ms =
      std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  REQUIRE(lb.ok());
  WARN("lower_bounds 94 x 128, EP 64, R 64: " << ms << " ms");
  // The identity placement (slot p holds p % E) has no duplicates at k = 3, so it is feasible under
  // either cap: no layer may beat its bound.
  auto g = measure_gap(w, identity_placement(t), t, o);
  REQUIRE(g.ok());
  for (int l = 0; l < t.num_layers; ++l) {
    INFO("layer " << l);
    CHECK(g->layer_gap[static_cast<std::size_t>(l)] >= -1e-12);
    CHECK(g->layer_bound[static_cast<std::size_t>(l)] == (*lb)[static_cast<std::size_t>(l)].best);
  }
}
