// Rank loads and imbalance as vLLM's reference tool computes them (vllm-offline-eplb.md §3, §5).

#include <catch2/catch.hpp>
#include <cstdint>
#include <vector>

#include "eplb/metrics.hpp"

using namespace eplb;

namespace {

// The aggregated loads of the vLLM offline-EPLB example (§5): E=3, R=1, EP=2, 2 layers.
weight_matrix example_weights() {
  weight_matrix w(2, 3);
  w << 138, 22, 45, 25, 110, 50;
  return w;
}

}  // namespace

TEST_CASE("rank loads split each expert's load evenly over its replicas") {
  const topology t{2, 3, 4, 2, 1, 1};
  // Identity layout [0, 1, 2, 0]: expert 0 has two replicas.
  // Layer 0: rank 0 = 138/2 + 22 = 91, rank 1 = 45 + 138/2 = 114.
  // Layer 1: rank 0 = 25/2 + 110 = 122.5, rank 1 = 50 + 25/2 = 62.5.
  const weight_matrix loads = rank_loads(example_weights(), identity_placement(t), t);
  REQUIRE(loads.rows() == 2);
  REQUIRE(loads.cols() == 2);
  CHECK(loads(0, 0) == 91.0);
  CHECK(loads(0, 1) == 114.0);
  CHECK(loads(1, 0) == 122.5);
  CHECK(loads(1, 1) == 62.5);
}

TEST_CASE("imbalance before and after match the reference tool's printout") {
  const topology t{2, 3, 4, 2, 1, 1};
  const weight_matrix w = example_weights();
  const imbalance_report before = measure_imbalance(w, identity_placement(t), t);
  CHECK(before.layer_max == std::vector<double>{114.0, 122.5});
  CHECK(before.layer_mean == std::vector<double>{102.5, 92.5});
  CHECK(before.overall == Approx(236.5 / 195.0).epsilon(1e-15));  // "Imbalance before: 1.2128x"
  CHECK(before.layer_ratio[0] == Approx(114.0 / 102.5).epsilon(1e-15));
  CHECK(before.mean_layer_ratio == Approx((114.0 / 102.5 + 122.5 / 92.5) / 2).epsilon(1e-15));

  // The reference mapping {"0": [0, 2, 0, 1], "1": [1, 2, 1, 0]}: maxima 114 and 105.
  placement after;
  after.num_layers = 2;
  after.num_slots = 4;
  after.num_experts = 3;
  after.physical_to_logical = {0, 2, 0, 1, 1, 2, 1, 0};
  const imbalance_report rep = measure_imbalance(w, after, t);
  CHECK(rep.layer_max == std::vector<double>{114.0, 105.0});
  CHECK(rep.overall == Approx(219.0 / 195.0).epsilon(1e-15));  // "Imbalance after:  1.1231x"
}

TEST_CASE("imbalance is 0 when there is no load") {
  const topology t{2, 3, 4, 2, 1, 1};
  weight_matrix w = weight_matrix::Zero(2, 3);
  imbalance_report rep = measure_imbalance(w, identity_placement(t), t);
  CHECK(rep.overall == 0.0);
  CHECK(rep.layer_ratio == std::vector<double>{0.0, 0.0});
  CHECK(rep.mean_layer_ratio == 0.0);
  // A loaded layer next to an empty one: the empty layer's ratio is 0, the overall ignores it.
  w(0, 1) = 10;  // expert 1 sits on rank 0 only: max 10, mean 5
  rep = measure_imbalance(w, identity_placement(t), t);
  CHECK(rep.layer_ratio == std::vector<double>{2.0, 0.0});
  CHECK(rep.overall == 2.0);
  CHECK(rep.mean_layer_ratio == 1.0);
}

TEST_CASE("to_weights converts exact counts to doubles") {
  load_matrix counts(1, 3);
  counts << 0, 7, (std::int64_t{1} << 40) + 1;
  const weight_matrix w = to_weights(counts);
  REQUIRE(w.rows() == 1);
  REQUIRE(w.cols() == 3);
  CHECK(w(0, 1) == 7.0);
  CHECK(w(0, 2) == 1099511627777.0);
}
