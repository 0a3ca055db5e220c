// The per-step objective: the step sampler, the slot-swap search and the hold-out guard.

#include <algorithm>
#include <catch2/catch.hpp>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/eval.hpp"
#include "eplb/metrics.hpp"
#include "eplb/objective.hpp"
#include "eplb/synth.hpp"

using namespace eplb;

namespace {

sample_matrix loads(int layers, int experts, std::vector<float> values) {
  sample_matrix m(layers, experts);
  for (int i = 0; i < layers * experts; ++i)
    m(i / experts, i % experts) = values[static_cast<std::size_t>(i)];
  return m;
}

std::vector<std::int32_t> sorted_row(const placement& p, int layer) {
  std::vector<std::int32_t> r(p.row(layer), p.row(layer) + p.num_slots);
  std::sort(r.begin(), r.end());
  return r;
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
  CHECK(mean_step_imbalance({}, identity_placement(t), t) == 0);
}

TEST_CASE("the search separates experts that are hot in the same steps") {
  // Experts 0 and 1 peak together, then 2 and 3; their sums are equal, so the sum objective
  // cannot tell [0 1 | 2 3] from [0 2 | 1 3], but every step of the first overloads one rank 2x.
  const topology t{1, 4, 4, 2, 1, 1};
  std::vector<sample_matrix> s;
  for (int i = 0; i < 10; ++i) {
    s.push_back(i % 2 ? loads(1, 4, {10, 10, 0, 0}) : loads(1, 4, {0, 0, 10, 10}));
  }
  const placement start = identity_placement(t);  // [0 1 | 2 3]
  CHECK(mean_step_imbalance(s, start, t) == Approx(2.0));
  std::uint64_t swaps = 0;
  const placement best = refine_per_step(start, t, s, t.num_ranks, 3, 1, &swaps);
  CHECK(mean_step_imbalance(s, best, t) == Approx(1.0));
  CHECK(swaps == 1);
  CHECK(sorted_row(best, 0) == sorted_row(start, 0));
  CHECK(validate_placement(best, t).ok());
  // Swaps only inside blocks of one rank: nothing can move.
  const placement frozen = refine_per_step(start, t, s, 1, 3, 1, &swaps);
  CHECK(swaps == 0);
  CHECK(frozen.physical_to_logical == start.physical_to_logical);
}

TEST_CASE("the search never worsens its samples and does not depend on threads") {
  const topology t{6, 16, 20, 4, 1, 1};
  weight_matrix dist(6, 16);
  for (int l = 0; l < 6; ++l) {
    for (int e = 0; e < 16; ++e) dist(l, e) = 1.0 / (1 + (e * 5 + l) % 16);
  }
  synth_options o;
  o.num_steps = 300;
  o.recording = topology{6, 16, 16, 4, 1, 1};
  o.drift = 0.5;
  o.drift_speed = 0.05;
  o.min_batch_tokens = 32;
  o.max_batch_tokens = 256;
  auto agg = make_aggregator("cpu");
  REQUIRE(agg.ok());
  step_sampler sampler(agg->get(), 64);
  REQUIRE(synthesize_records(dist, o, sampler).ok());
  CHECK(sampler.steps() == 300);
  REQUIRE(sampler.samples().size() <= 64);
  // Evenly spaced: every index a multiple of the same stride, starting at 0.
  const auto& idx = sampler.sample_index();
  REQUIRE(idx.size() >= 2);
  const std::uint64_t stride = idx[1] - idx[0];
  for (std::size_t i = 0; i < idx.size(); ++i) CHECK(idx[i] == i * stride);
  CHECK(idx.size() == (300 + stride - 1) / stride);

  auto sums = (*agg)->finish();
  REQUIRE(sums.ok());
  auto base = rebalance(to_weights(*sums), t, policy_options{});
  REQUIRE(base.ok());
  const double before = mean_step_imbalance(sampler.samples(), *base, t);
  std::uint64_t swaps1 = 0, swaps2 = 0;
  const placement one = refine_per_step(*base, t, sampler.samples(), 4, 3, 1, &swaps1);
  const placement two = refine_per_step(*base, t, sampler.samples(), 4, 3, 2, &swaps2);
  CHECK(one.physical_to_logical == two.physical_to_logical);
  CHECK(swaps1 == swaps2);
  CHECK(swaps1 > 0);
  CHECK(mean_step_imbalance(sampler.samples(), one, t) < before);
  for (int l = 0; l < t.num_layers; ++l) CHECK(sorted_row(one, l) == sorted_row(*base, l));
  // Hierarchical limit: with 2-rank blocks no slot crosses between ranks {0,1} and {2,3}.
  const placement blocked = refine_per_step(*base, t, sampler.samples(), 2, 3, 1, nullptr);
  const int half = t.num_slots / 2;
  for (int l = 0; l < t.num_layers; ++l) {
    std::vector<std::int32_t> a(blocked.row(l), blocked.row(l) + half);
    std::vector<std::int32_t> b(base->row(l), base->row(l) + half);
    std::sort(a.begin(), a.end());
    std::sort(b.begin(), b.end());
    CHECK(a == b);
  }
}

TEST_CASE("plan_per_step keeps the sum placement without enough steps for the hold-out") {
  const topology t{1, 4, 4, 2, 1, 1};
  auto agg = make_aggregator("cpu");
  REQUIRE(agg.ok());
  step_sampler sampler(agg->get(), 64);
  synth_options o;
  o.num_steps = 5;
  o.recording = t;
  weight_matrix dist = weight_matrix::Constant(1, 4, 1.0);
  REQUIRE(synthesize_records(dist, o, sampler).ok());
  const weight_matrix w = to_weights(*(*agg)->finish());
  objective_info info;
  plan_info pinfo;
  auto p = plan_per_step(w, sampler, t, policy_options{}, objective_options{}, &pinfo, &info);
  REQUIRE(p.ok());
  auto ref = rebalance(w, t, policy_options{});
  REQUIRE(ref.ok());
  CHECK(p->physical_to_logical == ref->physical_to_logical);
  CHECK_FALSE(info.searched);
  CHECK(info.note.find("too few") != std::string::npos);
  CHECK(pinfo.policy == policy_name(policy_options{}.kind));
}

TEST_CASE("plan_per_step searches when the hold-out confirms it, and is deterministic") {
  // Steps alternate between A: loads [30 5 5 20] and B: [5 25 25 2]. The sums (35 30 30 22 per
  // two steps) make the DeepSeek packing put {0, 3} and {1, 2} together, so each step loads one
  // rank with the pair that is hot in it; {0, 1} | {2, 3} balances both kinds of steps better.
  const topology t{2, 4, 4, 2, 1, 1};
  auto feed = [](stats_sink& sink, int steps) {
    std::vector<std::int64_t> load(8);
    const std::vector<std::int32_t> p2l = {0, 1, 2, 3, 0, 1, 2, 3};
    const std::int64_t a[4] = {30, 5, 5, 20}, b[4] = {5, 25, 25, 2};
    for (int s = 0; s < steps; ++s) {
      // Through a pointer: GCC 12 with -fsanitize=address,undefined at -O2 miscompiled
      // `(s % 2 ? b : a)[i % 4]` (an array-typed conditional) into wrong loads.
      const std::int64_t* src = s % 2 ? b : a;
      for (int i = 0; i < 8; ++i) load[static_cast<std::size_t>(i)] = src[i % 4];
      stats_record r;
      r.step = s;
      r.num_layers = 2;
      r.num_slots = 4;
      r.num_experts = 4;
      r.expert_load = load.data();
      r.p2l_map = p2l.data();
      if (status st = sink.on_record(r); !st.ok()) return st;
    }
    return status::success();
  };
  auto agg = make_aggregator("cpu");
  REQUIRE(agg.ok());
  step_sampler sampler(agg->get(), 1024);  // keeps every step: a stride of 2 would keep only A
  REQUIRE(feed(sampler, 400).ok());
  const weight_matrix w = to_weights(*(*agg)->finish());
  auto sum_plan = rebalance(w, t, policy_options{});
  REQUIRE(sum_plan.ok());
  objective_options opt;
  opt.threads = 1;
  objective_info info;
  auto p = plan_per_step(w, sampler, t, policy_options{}, opt, nullptr, &info);
  REQUIRE(p.ok());
  CHECK(info.searched);
  CHECK(info.holdout_search < info.holdout_sum);
  CHECK(info.swaps > 0);
  // A-step: {0 1} = 35 vs {2 3} = 25, B-step: 30 vs 27; both over a mean of 30 and 28.5.
  const std::vector<sample_matrix> ab = {loads(2, 4, {30, 5, 5, 20, 30, 5, 5, 20}),
                                         loads(2, 4, {5, 25, 25, 2, 5, 25, 25, 2})};
  CHECK(mean_step_imbalance(ab, *p, t) == Approx((35.0 / 30 + 30.0 / 28.5) / 2));
  CHECK(mean_step_imbalance(ab, *sum_plan, t) == Approx((50.0 / 30 + 50.0 / 28.5) / 2));
  opt.threads = 2;
  auto again = plan_per_step(w, sampler, t, policy_options{}, opt, nullptr, nullptr);
  REQUIRE(again.ok());
  CHECK(again->physical_to_logical == p->physical_to_logical);
}
