// The DeepSeek / vLLM DefaultEplbPolicy port against vLLM's own outputs (tests/data/parity), the
// worked examples of shared/formats (policy-reference.md §8-9, vllm-offline-eplb.md §5) and
// hand-computed cases of its building blocks.

#include <simdjson.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

#include "eplb/metrics.hpp"
#include "eplb/policy.hpp"
#include "policy/deepseek_detail.hpp"

using namespace eplb;

namespace {

weight_matrix make_weights(const std::vector<std::vector<double>>& rows) {
  weight_matrix w(static_cast<Eigen::Index>(rows.size()),
                  static_cast<Eigen::Index>(rows.empty() ? 0 : rows[0].size()));
  for (std::size_t l = 0; l < rows.size(); ++l) {
    for (std::size_t e = 0; e < rows[l].size(); ++e) {
      w(static_cast<Eigen::Index>(l), static_cast<Eigen::Index>(e)) = rows[l][e];
    }
  }
  return w;
}

std::vector<std::vector<int>> rows_of(const placement& p) {
  std::vector<std::vector<int>> out;
  for (int l = 0; l < p.num_layers; ++l) out.emplace_back(p.row(l), p.row(l) + p.num_slots);
  return out;
}

std::vector<std::vector<int>> counts_of(const placement& p) {
  const auto flat = replica_counts(p);
  std::vector<std::vector<int>> out;
  for (int l = 0; l < p.num_layers; ++l) {
    out.emplace_back(flat.begin() + static_cast<std::ptrdiff_t>(l) * p.num_experts,
                     flat.begin() + static_cast<std::ptrdiff_t>(l + 1) * p.num_experts);
  }
  return out;
}

std::vector<std::vector<double>> double_rows(simdjson::dom::array a) {
  std::vector<std::vector<double>> out;
  for (simdjson::dom::element row : a) {
    std::vector<double> r;
    for (simdjson::dom::element v : row.get_array()) r.push_back(v.get_double());
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::vector<int>> int_rows(simdjson::dom::array a) {
  std::vector<std::vector<int>> out;
  for (simdjson::dom::element row : a) {
    std::vector<int> r;
    for (simdjson::dom::element v : row.get_array()) r.push_back(static_cast<int>(v.get_int64()));
    out.push_back(std::move(r));
  }
  return out;
}

// The DeepSeek EPLB README example (policy-reference.md §9).
const std::vector<std::vector<double>> readme_weight = {
    {90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86},
    {20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27}};
const topology readme_topo{2, 12, 16, 8, 2, 4};

}  // namespace

TEST_CASE("deepseek reproduces every vLLM parity case exactly") {
  namespace fs = std::filesystem;
  std::vector<fs::path> files;
  for (const auto& entry : fs::directory_iterator(fs::path(EPLB_TEST_DATA_DIR) / "parity")) {
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  }
  std::sort(files.begin(), files.end());
  REQUIRE(files.size() == 40);
  simdjson::dom::parser parser;
  for (const auto& file : files) {
    INFO(file.filename().string());
    simdjson::dom::element doc = parser.load(file.string());
    const auto weight = double_rows(doc["weight"].get_array());
    const auto want_phy2log = int_rows(doc["phy2log"].get_array());
    const auto want_logcnt = int_rows(doc["logcnt"].get_array());
    const double balancedness = doc["balancedness"].get_double();
    const bool want_hierarchical =
        std::string(doc["policy"].get_string().value()) == "hierarchical";
    topology t;
    t.num_layers = static_cast<int>(weight.size());
    t.num_experts = static_cast<int>(weight[0].size());
    t.num_slots = static_cast<int>(doc["num_replicas"].get_int64());
    t.num_groups = static_cast<int>(doc["num_groups"].get_int64());
    t.num_nodes = static_cast<int>(doc["num_nodes"].get_int64());
    t.num_ranks = static_cast<int>(doc["num_gpus"].get_int64());
    const weight_matrix w = make_weights(weight);

    plan_info info;
    auto r = rebalance_deepseek(w, t, &info);
    REQUIRE(r.ok());
    REQUIRE(validate_placement(*r, t).ok());
    CHECK(rows_of(*r) == want_phy2log);
    CHECK(counts_of(*r) == want_logcnt);
    CHECK(info.policy == "deepseek");
    // One group on one node runs vLLM's hierarchical branch but is the global policy.
    const bool trivial = t.num_groups == 1 && t.num_nodes == 1;
    CHECK(info.hierarchical == (want_hierarchical && !trivial));
    // The reference balancedness was computed on the float32 loads vLLM converts to (with the
    // JSON's doubles it differs by ~1e-8 relative), so measure on the same values.
    const weight_matrix w32 = w.cast<float>().cast<double>();
    const imbalance_report rep = measure_imbalance(w32, *r, t);
    CHECK(1.0 / rep.overall == Approx(balancedness).epsilon(1e-9));
  }
}

TEST_CASE("deepseek README example: hierarchical placement, GPU loads and balancedness") {
  const weight_matrix w = make_weights(readme_weight);
  plan_info info;
  auto r = rebalance_deepseek(w, readme_topo, &info);
  REQUIRE(r.ok());
  CHECK(rows_of(*r) ==
        std::vector<std::vector<int>>{{5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1},
                                      {7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1}});
  CHECK(counts_of(*r) == std::vector<std::vector<int>>{{1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1},
                                                       {1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1}});
  CHECK(info.hierarchical);
  CHECK_THAT(info.note, Catch::Contains("hierarchical"));

  const weight_matrix loads = rank_loads(w, *r, readme_topo);
  const std::vector<std::vector<double>> want = {{121.5, 86.5, 125, 113, 147.5, 131.5, 156, 152},
                                                 {173, 179.5, 120.5, 172, 123, 152, 118.5, 117.5}};
  for (int l = 0; l < 2; ++l) {
    for (int g = 0; g < 8; ++g) CHECK(loads(l, g) == want[l][g]);
  }
  const imbalance_report rep = measure_imbalance(w, *r, readme_topo);
  CHECK(1.0 / rep.overall == Approx(273.625 / 335.5).epsilon(1e-12));
  CHECK(1.0 / rep.overall == Approx(0.8156).margin(5e-5));
}

TEST_CASE("deepseek global policy on the README input, forced and by vLLM's rule") {
  const weight_matrix w = make_weights(readme_weight);
  const std::vector<std::vector<int>> want = {{10, 6, 10, 7, 0, 2, 11, 4, 5, 9, 5, 4, 8, 3, 1, 1},
                                              {1, 10, 2, 4, 5, 11, 5, 0, 6, 7, 6, 3, 8, 8, 9, 7}};
  plan_info info;
  auto forced = rebalance_deepseek(w, readme_topo, hierarchical_mode::off, &info);
  REQUIRE(forced.ok());
  CHECK(rows_of(*forced) == want);
  CHECK_FALSE(info.hierarchical);
  const imbalance_report rep = measure_imbalance(w, *forced, readme_topo);
  CHECK(rep.layer_max[0] == 138.5);
  CHECK(rep.layer_max[1] == 172.0);
  CHECK(1.0 / rep.overall == Approx(0.8812).margin(5e-5));
  // The known duplicates (policy-reference.md §8): layer 0 GPU 7 = [1, 1], layer 1 GPU 6 = [8, 8].
  CHECK(forced->at(0, 14) == 1);
  CHECK(forced->at(0, 15) == 1);
  CHECK(forced->at(1, 12) == 8);
  CHECK(forced->at(1, 13) == 8);

  // 3 groups on 2 nodes: 3 % 2 != 0, so vLLM (and eplb-gen by default) use the global policy.
  topology odd = readme_topo;
  odd.num_groups = 3;
  auto automatic = rebalance_deepseek(w, odd, &info);
  REQUIRE(automatic.ok());
  CHECK(rows_of(*automatic) == want);
  CHECK_FALSE(info.hierarchical);
  CHECK_THAT(info.note, Catch::Contains("not divisible") && Catch::Contains("global"));
}

TEST_CASE("deepseek on the vLLM offline-EPLB example writes the reference mapping") {
  const weight_matrix w = make_weights({{138, 22, 45}, {25, 110, 50}});
  const topology t{2, 3, 4, 2, 1, 1};
  auto r = rebalance_deepseek(w, t);
  REQUIRE(r.ok());
  CHECK(rows_of(*r) == std::vector<std::vector<int>>{{0, 2, 0, 1}, {1, 2, 1, 0}});
  const imbalance_report before = measure_imbalance(w, identity_placement(t), t);
  const imbalance_report after = measure_imbalance(w, *r, t);
  CHECK(std::round(before.overall * 1e4) / 1e4 == Approx(1.2128).margin(1e-12));
  CHECK(std::round(after.overall * 1e4) / 1e4 == Approx(1.1231).margin(1e-12));

  // R = 0: 3 slots cannot be split over 2 ranks.
  const topology no_redundant{2, 3, 3, 2, 1, 1};
  auto bad = rebalance_deepseek(w, no_redundant);
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.code() == errc::invalid_topology);
  CHECK_THAT(bad.message(),
             Catch::Contains("divisible by --ep 2") && Catch::Contains("use --redundant 1"));
}

TEST_CASE("deepseek on FlashLB's example replicates by D'Hondt and duplicates on GPU 7") {
  const weight_matrix w = make_weights({{600, 560, 120, 120, 20, 10, 10, 10}});
  const topology t{1, 8, 16, 8, 1, 1};
  auto r = rebalance_deepseek(w, t);
  REQUIRE(r.ok());
  CHECK(counts_of(*r) == std::vector<std::vector<int>>{{5, 5, 1, 1, 1, 1, 1, 1}});
  const imbalance_report rep = measure_imbalance(w, *r, t);
  CHECK(rep.layer_max[0] == Approx(232.0).epsilon(1e-12));
  CHECK(r->at(0, 14) == 1);
  CHECK(r->at(0, 15) == 1);
}

TEST_CASE("deepseek rejects invalid topologies with messages that say what to change") {
  const weight_matrix w16 = weight_matrix::Constant(1, 16, 1.0);
  auto message_of = [](const result<placement>& r) {
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == errc::invalid_topology);
    return r.message();
  };
  // E % G: 16 experts in 3 groups (3 % 1 == 0, so hierarchical).
  CHECK_THAT(message_of(rebalance_deepseek(w16, topology{1, 16, 16, 4, 1, 3})),
             Catch::Contains("16 experts must be divisible by --groups 3"));
  // G % N matters only when the hierarchical policy is forced.
  const topology g3n2{1, 18, 18, 6, 2, 3};
  const weight_matrix w18 = weight_matrix::Constant(1, 18, 1.0);
  CHECK(rebalance_deepseek(w18, g3n2).ok());
  CHECK_THAT(message_of(rebalance_deepseek(w18, g3n2, hierarchical_mode::on)),
             Catch::Contains("3 groups must be divisible by --nodes 2"));
  // M % N: 6 ranks on 4 nodes.
  CHECK_THAT(message_of(rebalance_deepseek(w16, topology{1, 16, 18, 6, 4, 4})),
             Catch::Contains("EP size 6 must be divisible by --nodes 4"));
  // P % M, with the smallest valid redundant count.
  CHECK_THAT(message_of(rebalance_deepseek(w16, topology{1, 16, 17, 3, 1, 1})),
             Catch::Contains("num_slots=17") && Catch::Contains("use --redundant 2"));
  // P >= E.
  CHECK_THAT(message_of(rebalance_deepseek(w16, topology{1, 16, 8, 4, 1, 1})),
             Catch::Contains("--redundant") && Catch::Contains("-8"));
  CHECK_THAT(message_of(rebalance_deepseek(w16, topology{1, 16, 16, 0, 1, 1})),
             Catch::Contains("--ep"));
  // The load matrix must match the topology, and loads must be finite and non-negative.
  auto shape = rebalance_deepseek(w16, topology{2, 16, 16, 4, 1, 1});
  REQUIRE_FALSE(shape.ok());
  CHECK(shape.code() == errc::shape_mismatch);
  weight_matrix negative = w16;
  negative(0, 5) = -1;
  auto neg = rebalance_deepseek(negative, topology{1, 16, 16, 4, 1, 1});
  REQUIRE_FALSE(neg.ok());
  CHECK(neg.code() == errc::invalid_value);
  CHECK_THAT(neg.message(), Catch::Contains("expert 5"));
  weight_matrix nan = w16;
  nan(0, 2) = std::nan("");
  CHECK(rebalance_deepseek(nan, topology{1, 16, 16, 4, 1, 1}).code() == errc::invalid_value);
}

TEST_CASE("balanced_packing: one item per pack keeps the order, else greedy LPT") {
  // c == 1: item j to pack j, even though the loads are not sorted.
  auto one = detail::balanced_packing({1, 9, 5}, 3);
  CHECK(one.pack_index == std::vector<int>{0, 1, 2});
  CHECK(one.rank_in_pack == std::vector<int>{0, 0, 0});
  // Loads 5 8 3 7 into 2 packs of 2: 8 -> p0, 7 -> p1, 5 -> p1 (7 < 8), p1 full,
  // 3 -> p0 (the only open pack).
  auto lpt = detail::balanced_packing({5, 8, 3, 7}, 2);
  CHECK(lpt.pack_index == std::vector<int>{1, 0, 0, 1});
  CHECK(lpt.rank_in_pack == std::vector<int>{1, 0, 1, 0});
  // Ties: equal loads are visited by ascending index and go to the first lightest pack.
  auto ties = detail::balanced_packing({2, 2, 2, 2}, 2);
  CHECK(ties.pack_index == std::vector<int>{0, 1, 0, 1});
  CHECK(ties.rank_in_pack == std::vector<int>{0, 0, 1, 1});
  // A full pack is closed even when lighter: 10 -> p0, 1 -> p1, 1 -> p1 (full), 1 -> p0.
  auto closed = detail::balanced_packing({10, 1, 1, 1}, 2);
  CHECK(closed.pack_index == std::vector<int>{0, 1, 1, 0});
}

TEST_CASE("replicate_experts gives each extra replica to the largest load per replica") {
  // Keys x/cnt picked in turn: 600 (e0), 560 (e1), 300 (e0), 280 (e1), 200 (e0); 120 never wins.
  auto r = detail::replicate_experts({600, 560, 120}, 8);
  CHECK(r.phy2log == std::vector<int>{0, 1, 2, 0, 1, 0, 1, 0});
  CHECK(r.cnt == std::vector<int>{4, 3, 1});
  // Ties go to the first expert; an all-zero row gives every extra replica to expert 0.
  auto tie = detail::replicate_experts({3, 3}, 4);
  CHECK(tie.phy2log == std::vector<int>{0, 1, 0, 1});
  auto zero = detail::replicate_experts({0, 0, 0}, 6);
  CHECK(zero.phy2log == std::vector<int>{0, 1, 2, 0, 0, 0});
  CHECK(zero.cnt == std::vector<int>{4, 1, 1});
}

TEST_CASE("group sums follow numpy's float32 pairwise summation") {
  // 2^24 + 1 rounds back to 2^24 in float32, so a sequential sum of 2^24 and fifteen ones stays
  // 2^24; numpy's 8 accumulators give r0 = 2^24 (+1 lost), r1..r7 = 2, total 2^24 + 14.
  std::vector<float> a(16, 1.0f);
  a[0] = 16777216.0f;
  CHECK(detail::numpy_pairwise_sum(a.data(), 16) == 16777230.0f);
  // Under 8 values the sum is sequential: every +1 is lost.
  CHECK(detail::numpy_pairwise_sum(a.data(), 7) == 16777216.0f);
  // n = 10: accumulators combine to 2^24 + 6 (r0 + r1 loses its 1), then the two remaining ones
  // are added sequentially: 2^24 + 7 rounds to even (2^24 + 8), 2^24 + 9 rounds back to 2^24 + 8.
  CHECK(detail::numpy_pairwise_sum(a.data(), 10) == 16777216.0f + 8.0f);
}

TEST_CASE("policy names parse, print and dispatch") {
  auto k = parse_policy_kind("deepseek");
  REQUIRE(k.ok());
  CHECK(*k == policy_kind::deepseek);
  CHECK(std::string(policy_name(policy_kind::balanced)) == "balanced");
  auto bad = parse_policy_kind("greedy");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.code() == errc::invalid_argument);
  CHECK_THAT(bad.message(), Catch::Contains("greedy"));

  const weight_matrix w = make_weights(readme_weight);
  policy_options opt;
  opt.kind = policy_kind::deepseek;  // the default is balanced
  plan_info info;
  auto r = rebalance(w, readme_topo, opt, &info);
  REQUIRE(r.ok());
  CHECK(r->at(0, 0) == 5);
  opt.hierarchical = hierarchical_mode::off;
  r = rebalance(w, readme_topo, opt, &info);
  REQUIRE(r.ok());
  CHECK(r->at(0, 0) == 10);
  opt.kind = policy_kind::balanced;
  r = rebalance(w, readme_topo, opt, &info);
  REQUIRE(r.ok());
  CHECK(info.policy == "balanced");
}
