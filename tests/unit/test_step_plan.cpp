// Planning for the steps the server will run: the step sampler, the slot search of one layer,
// the default planner (plan_for_steps) with its held-out estimate and guard, and the one planning
// entry (plan_placement).

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/metrics.hpp"
#include "eplb/policy.hpp"
#include "eplb/synth.hpp"
#include "policy/balanced_detail.hpp"
#include "policy/step_search.hpp"

using namespace eplb;

namespace {

sample_matrix loads(int layers, int experts, std::vector<float> values) {
  sample_matrix m(layers, experts);
  for (int i = 0; i < layers * experts; ++i)
    m(i / experts, i % experts) = values[static_cast<std::size_t>(i)];
  return m;
}

std::vector<std::int32_t> sorted_rank(const placement& p, int layer, int rank, int k) {
  std::vector<std::int32_t> r(p.row(layer) + rank * k, p.row(layer) + (rank + 1) * k);
  std::sort(r.begin(), r.end());
  return r;
}

// Ranks of a layer as sorted expert sets, themselves sorted: the layout up to rank order.
std::vector<std::vector<std::int32_t>> layout(const placement& p, int layer, int ranks) {
  const int k = p.num_slots / ranks;
  std::vector<std::vector<std::int32_t>> out;
  for (int r = 0; r < ranks; ++r) out.push_back(sorted_rank(p, layer, r, k));
  std::sort(out.begin(), out.end());
  return out;
}

int duplicate_ranks(const placement& p, const topology& t) {
  int n = 0;
  const int k = t.slots_per_rank();
  for (int l = 0; l < p.num_layers; ++l) {
    for (int r = 0; r < t.num_ranks; ++r) {
      const auto e = sorted_rank(p, l, r, k);
      n += std::adjacent_find(e.begin(), e.end()) != e.end() ? 1 : 0;
    }
  }
  return n;
}

// Every step as its own sample (record index = position).
step_samples as_samples(const std::vector<sample_matrix>& steps) {
  step_samples s;
  for (std::size_t i = 0; i < steps.size(); ++i) {
    s.loads.push_back(steps[i]);
    s.index.push_back(i);
  }
  s.records = steps.size();
  return s;
}

weight_matrix sum_of(const std::vector<sample_matrix>& steps) {
  weight_matrix w = weight_matrix::Zero(steps[0].rows(), steps[0].cols());
  for (const auto& m : steps) w += m.cast<double>();
  return w;
}

weight_matrix zipf(int layers, int experts) {
  weight_matrix dist(layers, experts);
  for (int l = 0; l < layers; ++l) {
    for (int e = 0; e < experts; ++e) dist(l, e) = 1.0 / (1 + (e * 5 + l * 3) % experts);
  }
  return dist;
}

// A trace of `steps` records from zipf(layers, experts) recorded at EP `ranks` (the other knobs
// from `o`): its sampled steps, and its sums in *sums.
step_samples zipf_trace(int layers, int experts, int ranks, int steps, weight_matrix* sums,
                        synth_options o = {}) {
  o.num_steps = steps;
  o.recording = topology{layers, experts, experts, ranks, 1, 1};
  auto agg = make_aggregator("cpu");
  REQUIRE(agg.ok());
  step_sampler sampler(agg->get(), 512);
  REQUIRE(synthesize_records(zipf(layers, experts), o, sampler).ok());
  auto loads = (*agg)->finish();
  REQUIRE(loads.ok());
  *sums = to_weights(*loads);
  return sampler.sample();
}

}  // namespace

TEST_CASE("parse_objective knows sum and per-step") {
  CHECK(*parse_objective("sum") == objective_kind::sum);
  CHECK(*parse_objective("per-step") == objective_kind::per_step);
  CHECK(parse_objective("max").code() == errc::invalid_argument);
  CHECK(std::string(objective_name(objective_kind::per_step)) == "per-step");
}

TEST_CASE("mean_step_imbalance averages the per-step vLLM metric") {
  // One layer, experts [0 1 | 2 3] on two ranks. Step 1 loads [10 10 0 0]: ranks 20 / 0, mean 10,
  // imbalance 2. Step 2 [5 5 5 5]: balanced, 1.
  const topology t{1, 4, 4, 2, 1, 1};
  const std::vector<sample_matrix> s = {loads(1, 4, {10, 10, 0, 0}), loads(1, 4, {5, 5, 5, 5})};
  CHECK(mean_step_imbalance(s, identity_placement(t), t) == Approx(1.5));
  const std::vector<double> v = step_imbalances(s, identity_placement(t), t);
  REQUIRE(v.size() == 2);
  CHECK(v[0] == Approx(2.0));
  CHECK(v[1] == Approx(1.0));
  CHECK(mean_step_imbalance({}, identity_placement(t), t) == 0);
}

TEST_CASE("the step sampler keeps an evenly spaced, bounded sample") {
  weight_matrix sums;
  synth_options o;
  o.num_steps = 300;
  o.recording = topology{2, 8, 8, 2, 1, 1};
  auto agg = make_aggregator("cpu");
  REQUIRE(agg.ok());
  step_sampler sampler(agg->get(), 64);
  REQUIRE(synthesize_records(zipf(2, 8), o, sampler).ok());
  CHECK(sampler.steps() == 300);
  REQUIRE(sampler.samples().size() <= 64);
  const auto& idx = sampler.sample_index();
  REQUIRE(idx.size() >= 2);
  const std::uint64_t stride = idx[1] - idx[0];
  for (std::size_t i = 0; i < idx.size(); ++i) CHECK(idx[i] == i * stride);
  CHECK(idx.size() == (300 + stride - 1) / stride);
  // A byte budget below two samples still keeps two.
  step_sampler tiny(nullptr, 512, 1);
  REQUIRE(synthesize_records(zipf(2, 8), o, tiny).ok());
  CHECK(tiny.samples().size() == 2);
}

TEST_CASE("the slot search separates experts that are hot in the same steps") {
  // Experts 0 and 1 peak together, then 2 and 3; their sums are equal, so the sum cannot tell
  // [0 1 | 2 3] from [0 2 | 1 3], but every step of the first overloads one rank 2x.
  const int S = 10;
  std::vector<double> x(4 * S), w(S, 1.0 / 10);
  for (int s = 0; s < S; ++s) {
    const bool odd = s % 2 == 1;
    x[0 * S + s] = x[1 * S + s] = odd ? 10 : 0;
    x[2 * S + s] = x[3 * S + s] = odd ? 0 : 10;
  }
  const detail::step_layer v{x.data(), w.data(), 4, S, 2, 2};
  const std::int32_t start[4] = {0, 1, 2, 3};
  detail::step_search search;
  search.reset(v, start, 2, false);
  CHECK(search.objective() == Approx(S * 20.0 / 10));  // every step's max is 20, mean 10
  CHECK(search.improve(3, false, 0) == 1);
  CHECK(search.objective() == Approx(S * 10.0 / 10));
  // 0 and 1 now on different ranks (and so 2 and 3).
  const auto& r = search.slots();
  const int rank_of_0 = static_cast<int>(std::find(r.begin(), r.end(), 0) - r.begin()) / 2;
  const int rank_of_1 = static_cast<int>(std::find(r.begin(), r.end(), 1) - r.begin()) / 2;
  CHECK(rank_of_0 != rank_of_1);
  // Blocks of one rank: nothing can move.
  search.reset(v, start, 1, false);
  CHECK(search.improve(3, false, 0) == 0);
  // A budget of 1 changed slot against the start forbids the swap (it changes 2).
  search.reset(v, start, 2, false, start);
  CHECK(search.improve(3, false, 0, 1) == 0);
  CHECK(search.changed() == 0);
}

TEST_CASE("a re-split gives a noisy expert a second replica (hand-computed)") {
  // Expert 0 alternates 6 / 0 per step, experts 1-3 carry 1 each; 3 ranks of 2 slots start as
  // [0 1 | 2 3 | 1 3] (1 and 3 twice). No swap splits expert 0's spikes; re-splitting the replica
  // of 1 on rank 2 into a second replica of 0 gives [0 1 | 2 3 | 0 3]: step 1 ranks 3 + 1, 1 +
  // 0.5, 3 + 0.5 (max 4), step 2 max 1.5.
  const int S = 2;
  std::vector<double> x = {6, 0, 1, 1, 1, 1, 1, 1}, w(S, 1.0);
  const detail::step_layer v{x.data(), w.data(), 4, S, 3, 2};
  const std::int32_t start[6] = {0, 1, 2, 3, 1, 3};
  detail::step_search search;
  search.reset(v, start, 3, false);
  // Step 1: ranks 6 + 0.5, 1 + 0.5, 0.5 + 0.5 -> max 6.5; step 2: 0.5, 1.5, 1.0 -> 1.5.
  CHECK(search.objective() == Approx(6.5 + 1.5));
  CHECK(search.improve(3, false, 0) == 0);
  search.improve(3, true, 4);
  int zeros = 0;
  for (std::int32_t e : search.slots()) zeros += e == 0 ? 1 : 0;
  CHECK(zeros >= 2);
  CHECK(search.objective() <= 4 + 1.5);
}

TEST_CASE("a re-split is judged right when it touches more than 255 ranks") {
  // 300 ranks of one slot: expert 0 on ranks 0-249 (load 250, 1 per replica), expert 1 on ranks
  // 250-299 (load 500, 10 per replica). Re-splitting any replica of 0 into one of 1 touches all
  // 300 ranks and lowers the max from 10 to 500 / 51; a rank marker that wrapped at 256 mistook an
  // affected rank of expert 1 for an untouched one and kept the old max.
  const int R = 300;
  std::vector<double> x = {250, 500}, w = {1.0};
  const detail::step_layer v{x.data(), w.data(), 2, 1, R, 1};
  std::vector<std::int32_t> start(R, 0);
  std::fill(start.begin() + 250, start.end(), 1);
  detail::step_search search;
  search.reset(v, start.data(), R, false);
  CHECK(search.objective() == Approx(10.0));
  CHECK(search.improve(3, true, 2) > 0);
  CHECK(search.objective() <= 500.0 / 51 + 1e-9);
}

TEST_CASE("a hot expert alone on a rank: sum-optimal, but the default splits it (hand-checked)") {
  // One layer, experts H, A, B, Z1, Z2 (Z1, Z2 never routed to), 2 ranks x 3 slots, 1 redundant
  // slot. H alternates 5 / 1 per step (mean 3); A and B carry 1.5 each. Summed, both layouts
  // below reach the lower bound (3 per rank):
  //   fragile: {H, Z1, Z2} | {A, B, Z1}: H alone takes all its swings: steps with H = 5 give
  //            ranks 5 / 3 (mean 4, imbalance 1.25), steps with H = 1 give 1 / 3 (mean 2, 1.5);
  //   split:   {H, A, Z1} | {H, B, Z2}: 2.5 + 1.5 = 4 on both ranks, or 0.5 + 1.5 = 2: 1.0.
  const topology t{1, 5, 6, 2, 1, 1};
  std::vector<sample_matrix> train, held_out;
  for (int s = 0; s < 100; ++s) {
    train.push_back(loads(1, 5, {s % 2 ? 1.0f : 5.0f, 1.5f, 1.5f, 0, 0}));
  }
  for (int s = 0; s < 4; ++s)
    held_out.push_back(loads(1, 5, {s % 2 ? 1.0f : 5.0f, 1.5f, 1.5f, 0, 0}));
  const weight_matrix sums = sum_of(train);
  const placement fragile{1, 6, 5, {0, 3, 4, 1, 2, 3}};
  REQUIRE(validate_placement(fragile, t).ok());
  // Sum-optimal: its max rank load on the sums equals the mean rank load (the lower bound).
  const imbalance_report fr = measure_imbalance(sums, fragile, t);
  CHECK(fr.overall == Approx(1.0));
  CHECK(mean_step_imbalance(held_out, fragile, t) == Approx((1.25 + 1.5) / 2));

  const step_samples ts = as_samples(train);
  plan_info info;
  auto p = plan_placement(sums, &ts, t, policy_options{}, &info);
  REQUIRE(p.ok());
  CHECK(info.objective == "per-step");
  CHECK(measure_imbalance(sums, *p, t).overall == Approx(1.0));
  CHECK(mean_step_imbalance(held_out, *p, t) == Approx(1.0));
  // H on both ranks, A and B apart.
  const auto lay = layout(*p, 0, 2);
  for (const auto& rank : lay) {
    CHECK(std::count(rank.begin(), rank.end(), 0) == 1);
    CHECK(std::count(rank.begin(), rank.end(), 1) + std::count(rank.begin(), rank.end(), 2) == 1);
  }
  // The estimate on the validation steps agrees: the plan 1.0, deepseek (same counts) 1.0.
  REQUIRE(info.heldout.available);
  CHECK(info.heldout.plan == Approx(1.0));
  CHECK(info.heldout.deepseek == Approx(1.0));
}

TEST_CASE("the guard keeps deepseek's placement when the search over-fits the fit steps") {
  // 4 experts A B C D, 2 ranks x 2 slots. The fit steps alternate X = {A 8, D 2} and
  // Y = {B 6, C 4}; deepseek's packing of the sums is {A, D} | {B, C}, which every fit step
  // overloads 2x, so the search moves to {A, B} | {C, D} or {A, C} | {B, D} (1.4 on the fit
  // steps). The validation steps alternate Z1 = {A 4, B 4} and Z2 = {A 4, C 4}: there both
  // searched layouts average 1.5 and deepseek's 1.0. The guard must keep deepseek's.
  const topology t{1, 4, 4, 2, 1, 1};
  std::vector<sample_matrix> steps;
  for (int s = 0; s < 80; ++s) {
    steps.push_back(s % 2 ? loads(1, 4, {0, 6, 4, 0}) : loads(1, 4, {8, 0, 0, 2}));
  }
  for (int s = 0; s < 20; ++s) {
    steps.push_back(s % 2 ? loads(1, 4, {4, 0, 4, 0}) : loads(1, 4, {4, 4, 0, 0}));
  }
  const weight_matrix sums = sum_of(steps);
  policy_options ds;
  ds.kind = policy_kind::deepseek;
  auto ref = rebalance(sums, t, ds);
  REQUIRE(ref.ok());
  REQUIRE(layout(*ref, 0, 2) == std::vector<std::vector<std::int32_t>>{{0, 3}, {1, 2}});
  const step_samples ts = as_samples(steps);
  plan_info info;
  auto p = plan_for_steps(sums, ts, t, policy_options{}, step_plan_options{}, &info);
  REQUIRE(p.ok());
  CHECK(info.step_half_life == -1);
  CHECK(info.step_note.find("did not beat") != std::string::npos);
  CHECK(layout(*p, 0, 2) == layout(*ref, 0, 2));
  REQUIRE(info.heldout.available);
  CHECK(info.heldout.deepseek == Approx(1.0));
  CHECK(info.heldout.plan == Approx(1.0));
  CHECK(info.heldout.validation_samples == 20);
  // Without the validation steps the search would have left deepseek's layout.
  const std::vector<sample_matrix> fit(steps.begin(), steps.begin() + 80);
  const step_samples fs = as_samples(fit);
  plan_info fit_info;
  auto q = plan_for_steps(sum_of(fit), fs, t, policy_options{}, step_plan_options{}, &fit_info);
  REQUIRE(q.ok());
  CHECK(fit_info.step_half_life >= 0);
  CHECK(layout(*q, 0, 2) != layout(*ref, 0, 2));
}

TEST_CASE("plan_for_steps: too few steps to hold any out says so, and still plans") {
  const topology t{1, 4, 6, 2, 1, 1};
  std::vector<sample_matrix> steps = {loads(1, 4, {5, 1, 1, 1})};
  const step_samples ts = as_samples(steps);
  plan_info info;
  auto p = plan_placement(sum_of(steps), &ts, t, policy_options{}, &info);
  REQUIRE(p.ok());
  CHECK(validate_placement(*p, t).ok());
  CHECK_FALSE(info.heldout.available);
  CHECK(info.heldout.note.find("too few train steps (1 records)") != std::string::npos);
  CHECK(duplicate_ranks(*p, t) == 0);
}

TEST_CASE("plan_placement: objectives by policy, and sums-only inputs") {
  const topology t{2, 8, 10, 2, 1, 1};
  weight_matrix sums;
  const step_samples s = zipf_trace(2, 8, 2, 200, &sums);
  plan_info info;
  // balanced: per-step by default; deepseek: sum, exactly vLLM's policy.
  REQUIRE(plan_placement(sums, &s, t, policy_options{}, &info).ok());
  CHECK(info.objective == "per-step");
  CHECK(info.heldout.available);
  policy_options ds;
  ds.kind = policy_kind::deepseek;
  auto d = plan_placement(sums, &s, t, ds, &info);
  REQUIRE(d.ok());
  CHECK(info.objective == "sum");
  CHECK(d->physical_to_logical == rebalance_deepseek(sums, t)->physical_to_logical);
  REQUIRE(info.heldout.available);
  CHECK(info.heldout.plan == info.heldout.deepseek);
  // Sums only: balanced falls back to the sum objective; per-step asked for is an error.
  auto b = plan_placement(sums, nullptr, t, policy_options{}, &info);
  REQUIRE(b.ok());
  CHECK(info.objective == "sum");
  CHECK_FALSE(info.heldout.available);
  policy_options per;
  per.objective = objective_kind::per_step;
  CHECK(plan_placement(sums, nullptr, t, per, nullptr).code() == errc::invalid_argument);
}

TEST_CASE("plan_for_steps: duplicate-free, deterministic across thread counts") {
  const topology t{6, 16, 24, 4, 1, 1};
  weight_matrix sums;
  synth_options o;
  o.drift = 0.5;
  o.drift_speed = 0.02;
  o.burst_prob = 0.02;
  o.min_batch_tokens = 32;
  o.max_batch_tokens = 256;
  const step_samples s = zipf_trace(6, 16, 4, 400, &sums, o);
  std::vector<placement> plans;
  std::vector<plan_info> infos;
  for (int threads : {1, 2, 3}) {
    policy_options opt;
    opt.threads = threads;
    plan_info info;
    auto p = plan_for_steps(sums, s, t, opt, step_plan_options{}, &info);
    REQUIRE(p.ok());
    REQUIRE(validate_placement(*p, t).ok());
    CHECK(duplicate_ranks(*p, t) == 0);
    plans.push_back(*p);
    infos.push_back(info);
  }
  for (std::size_t i = 1; i < plans.size(); ++i) {
    CHECK(plans[i].physical_to_logical == plans[0].physical_to_logical);
    CHECK(infos[i].heldout.plan == infos[0].heldout.plan);
    CHECK(infos[i].step_half_life == infos[0].step_half_life);
  }
  // The guard: on the validation steps the plan's procedure is never worse than deepseek's.
  REQUIRE(infos[0].heldout.available);
  CHECK(infos[0].heldout.plan <= infos[0].heldout.deepseek);
}

TEST_CASE("plan_for_steps with a previous placement: 0 moves on the same input, caps honoured") {
  const topology t{4, 16, 20, 4, 1, 1};
  weight_matrix sums;
  synth_options o;
  o.min_batch_tokens = 64;
  o.max_batch_tokens = 512;
  const step_samples s = zipf_trace(4, 16, 4, 300, &sums, o);
  auto first = plan_for_steps(sums, s, t, policy_options{}, step_plan_options{}, nullptr);
  REQUIRE(first.ok());
  policy_options again;
  again.previous = &*first;
  plan_info info;
  auto same = plan_for_steps(sums, s, t, again, step_plan_options{}, &info);
  REQUIRE(same.ok());
  CHECK(same->physical_to_logical == first->physical_to_logical);
  REQUIRE(info.moves_per_layer.size() == 4);
  for (int m : info.moves_per_layer) CHECK(m == 0);
  // From the identity layout and from deepseek's (which may hold an expert twice on a rank),
  // with caps of 0 and 3 changed slots per layer: never more, and the count reported is real.
  const placement id = identity_placement(t);
  const placement ds = *rebalance_deepseek(sums, t);
  for (const placement* prev : {&id, &ds}) {
    for (int cap : {0, 3}) {
      policy_options capped;
      capped.previous = prev;
      capped.max_moves = cap;
      auto p = plan_for_steps(sums, s, t, capped, step_plan_options{}, &info);
      REQUIRE(p.ok());
      REQUIRE(validate_placement(*p, t).ok());
      int total = 0;
      for (int l = 0; l < t.num_layers; ++l) {
        int changed = 0;
        for (int q = 0; q < t.num_slots; ++q) changed += p->at(l, q) != prev->at(l, q) ? 1 : 0;
        CHECK(changed <= cap);
        CHECK(changed == info.moves_per_layer[static_cast<std::size_t>(l)]);
        total += changed;
      }
      // With room to move, the search from the deployed layout does move.
      if (cap > 0 && prev == &id) CHECK(total > 0);
      // And it never makes the deployed layout worse on the samples.
      CHECK(mean_step_imbalance(s.loads, *p, t) <= mean_step_imbalance(s.loads, *prev, t) + 1e-12);
    }
  }
}

TEST_CASE(
    "plan_for_steps: node grouping follows vLLM's rule, and forced grouping must be possible") {
  // 16 experts in 4 groups on 2 nodes of 2 ranks: vLLM's hierarchical policy; every expert's
  // replicas stay on one node through the search.
  const topology t{2, 16, 24, 4, 2, 4};
  weight_matrix sums;
  const step_samples s = zipf_trace(2, 16, 4, 200, &sums);
  plan_info info;
  auto p = plan_for_steps(sums, s, t, policy_options{}, step_plan_options{}, &info);
  REQUIRE(p.ok());
  CHECK(info.hierarchical);
  const int per_node = t.num_slots / t.num_nodes;
  for (int l = 0; l < t.num_layers; ++l) {
    for (int e = 0; e < t.num_experts; ++e) {
      int node = -1;
      bool one_node = true;
      for (int q = 0; q < t.num_slots; ++q) {
        if (p->at(l, q) != e) continue;
        if (node < 0) node = q / per_node;
        one_node = one_node && node == q / per_node;
      }
      CHECK(one_node);
    }
  }
  // One group cannot be split over two nodes: `on` is deepseek's error, `automatic` the global
  // plan.
  const topology g{2, 16, 24, 4, 2, 1};
  policy_options on;
  on.hierarchical = hierarchical_mode::on;
  CHECK(plan_for_steps(sums, s, g, on, step_plan_options{}, nullptr).code() ==
        errc::invalid_topology);
  REQUIRE(plan_for_steps(sums, s, g, policy_options{}, step_plan_options{}, &info).ok());
  CHECK_FALSE(info.hierarchical);
}
