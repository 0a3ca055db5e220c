// CPU aggregation: logical[l][p2l[l][p]] += expert_load[l][p] over records, in int64.

#include <catch2/catch.hpp>
#include <cstdint>
#include <limits>
#include <string>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/stats.hpp"

namespace {

using eplb::errc;

// A record over caller-owned arrays.
struct owned_record {
  std::vector<std::int64_t> load;
  std::vector<std::int32_t> p2l;
  eplb::stats_record record;
  owned_record(int layers, int slots, int experts, std::vector<std::int64_t> l,
               std::vector<std::int32_t> m, std::uint64_t line = 7)
      : load(std::move(l)), p2l(std::move(m)) {
    record.step = 1;
    record.num_layers = layers;
    record.num_slots = slots;
    record.num_experts = experts;
    record.expert_load = load.data();
    record.p2l_map = p2l.data();
    record.where = eplb::position{"f.jsonl", line, 0};
  }
};

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

constexpr std::int64_t int64_max = std::numeric_limits<std::int64_t>::max();

}  // namespace

TEST_CASE("aggregate: fold_record maps slots to logical experts", "[aggregate]") {
  // E=3, P=4 (slot 3 is a replica of expert 0 in layer 0 and of expert 2 in layer 1).
  owned_record a(2, 4, 3, {40, 10, 25, 30, 5, 60, 20, 5}, {0, 1, 2, 0, 0, 1, 2, 2});
  owned_record b(2, 4, 3, {1, 2, 3, 4, 5, 6, 7, 8}, {2, 1, 0, 0, 1, 0, 2, 1});
  eplb::load_matrix sums = eplb::load_matrix::Zero(2, 3);
  REQUIRE(eplb::fold_record(a.record, sums).ok());
  REQUIRE(eplb::fold_record(b.record, sums).ok());
  eplb::load_matrix expected(2, 3);
  // layer 0: a -> [70, 10, 25]; b -> e2 += 1, e1 += 2, e0 += 3 + 4
  // layer 1: a -> [5, 60, 25];  b -> e1 += 5, e0 += 6, e2 += 7, e1 += 8
  expected << 77, 12, 26, 11, 73, 32;
  CHECK(sums == expected);
}

TEST_CASE("aggregate: overflow is detected and named", "[aggregate]") {
  SECTION("across records") {
    owned_record a(1, 2, 2, {int64_max, 0}, {0, 1}, 3);
    owned_record b(1, 2, 2, {0, 0}, {0, 1}, 4);
    owned_record c(1, 2, 2, {1, 0}, {0, 1}, 5);
    eplb::load_matrix sums = eplb::load_matrix::Zero(1, 2);
    REQUIRE(eplb::fold_record(a.record, sums).ok());
    REQUIRE(eplb::fold_record(b.record, sums).ok());
    const auto st = eplb::fold_record(c.record, sums);
    CHECK(st.code() == errc::overflow);
    CHECK(contains(st.message(), "f.jsonl:5"));
    CHECK(contains(st.message(), "layer 0"));
    CHECK(contains(st.message(), "expert 0"));
  }
  SECTION("within one record, two replicas of one expert") {
    // Layer 1: slots 0 and 2 both hold expert 1; their sum overflows on slot 2.
    owned_record a(2, 3, 2, {1, 1, 1, int64_max, 0, 1}, {0, 1, 0, 1, 0, 1}, 10);
    eplb::load_matrix sums = eplb::load_matrix::Zero(2, 2);
    const auto st = eplb::fold_record(a.record, sums);
    CHECK(st.code() == errc::overflow);
    CHECK(contains(st.message(), "f.jsonl:10"));
    CHECK(contains(st.message(), "layer 1, expert 1"));
  }
  SECTION("through the reader") {
    const std::string line = R"({"record_type": "eplb_load_stats", "step": 1, )"
                             R"("expert_load": [[9223372036854775807, 1]], "p2l_map": [[0, 1]]})";
    auto agg = eplb::make_aggregator("cpu");
    REQUIRE(agg.ok());
    const auto st =
        eplb::read_vllm_stats_text(line + "\n\n" + line + "\n", "o.jsonl", {}, **agg, nullptr);
    CHECK(st.code() == errc::overflow);
    CHECK(contains(st.message(), "o.jsonl:3:"));
    CHECK(contains(st.message(), "layer 0, expert 0"));
  }
}

TEST_CASE("aggregate: fold_record checks shape and ids", "[aggregate]") {
  owned_record a(2, 4, 3, {1, 1, 1, 1, 1, 1, 1, 1}, {0, 1, 2, 0, 0, 1, 2, 0});
  eplb::load_matrix wrong = eplb::load_matrix::Zero(3, 3);
  CHECK(eplb::fold_record(a.record, wrong).code() == errc::shape_mismatch);
  owned_record bad(1, 2, 2, {1, 1}, {0, 2});
  eplb::load_matrix sums = eplb::load_matrix::Zero(1, 2);
  const auto st = eplb::fold_record(bad.record, sums);
  CHECK(st.code() == errc::out_of_range);
  CHECK(contains(st.message(), "slot 1"));
}

TEST_CASE("aggregate: make_aggregator and finish", "[aggregate]") {
  for (const char* device : {"cpu", "auto"}) {
    auto agg = eplb::make_aggregator(device);
    REQUIRE(agg.ok());
    CHECK(std::string((*agg)->name()) == "cpu");
  }
  // Without CUDA (not built, or no device) "cuda" falls back to the CPU and says why.
  auto cuda = eplb::make_aggregator("cuda");
  REQUIRE(cuda.ok());
  if (eplb::cuda_available()) {
    CHECK(std::string((*cuda)->name()) == "cuda");
  } else {
    CHECK(std::string((*cuda)->name()) == "cpu");
    CHECK(contains((*cuda)->info(), "CUDA requested but not usable"));
  }
  auto bogus = eplb::make_aggregator("gpu");
  REQUIRE_FALSE(bogus.ok());
  CHECK(bogus.code() == errc::invalid_argument);
  CHECK(contains(bogus.message(), "gpu"));

  auto agg = eplb::make_aggregator("cpu");
  REQUIRE(agg.ok());
  auto empty = (*agg)->finish();
  REQUIRE_FALSE(empty.ok());
  CHECK(empty.code() == errc::no_records);

  owned_record a(1, 3, 2, {3, 7, 5}, {0, 0, 1});
  REQUIRE((*agg)->on_record(a.record).ok());
  REQUIRE((*agg)->on_record(a.record).ok());
  auto sums = (*agg)->finish();
  REQUIRE(sums.ok());
  REQUIRE(sums->rows() == 1);
  REQUIRE(sums->cols() == 2);
  CHECK((*sums)(0, 0) == 20);
  CHECK((*sums)(0, 1) == 10);
  // finish() starts over.
  CHECK((*agg)->finish().code() == errc::no_records);
  owned_record other(2, 1, 1, {4, 6}, {0, 0});
  REQUIRE((*agg)->on_record(other.record).ok());
  auto again = (*agg)->finish();
  REQUIRE(again.ok());
  CHECK(again->rows() == 2);
  CHECK((*again)(1, 0) == 6);
  // A record of another shape is refused.
  REQUIRE((*agg)->on_record(a.record).ok());
  CHECK((*agg)->on_record(other.record).code() == errc::shape_mismatch);
}
