// CUDA aggregation and replay against the CPU. Where CUDA is not built or no device is usable,
// the GPU comparisons print why and return (the CPU reference and argument checks still run).

#include <algorithm>
#include <catch2/catch.hpp>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/metrics.hpp"
#include "eplb/stats.hpp"
#include "eplb/types.hpp"

namespace {

using eplb::errc;

// The CPU reference of cuda_replay_max, written from its documented definition.
std::vector<double> replay_reference(const eplb::replay_shape& s,
                                     const std::vector<std::int64_t>& loads,
                                     const std::vector<std::int32_t>& maps) {
  std::vector<double> out(static_cast<std::size_t>(s.mappings) * s.steps * s.layers);
  const int per_rank = s.slots / s.ranks;
  for (int m = 0; m < s.mappings; ++m) {
    for (int l = 0; l < s.layers; ++l) {
      const std::int32_t* map =
          maps.data() + (static_cast<std::size_t>(m) * s.layers + l) * s.slots;
      std::vector<int> replicas(static_cast<std::size_t>(s.experts), 0);
      for (int p = 0; p < s.slots; ++p) ++replicas[static_cast<std::size_t>(map[p])];
      for (int step = 0; step < s.steps; ++step) {
        const std::int64_t* w =
            loads.data() + (static_cast<std::size_t>(step) * s.layers + l) * s.experts;
        double best = 0;
        for (int r = 0; r < s.ranks; ++r) {
          double acc = 0;
          for (int p = r * per_rank; p < (r + 1) * per_rank; ++p) {
            acc += static_cast<double>(w[map[p]]) / replicas[static_cast<std::size_t>(map[p])];
          }
          if (r == 0 || acc > best) best = acc;
        }
        out[(static_cast<std::size_t>(m) * s.steps + step) * s.layers + l] = best;
      }
    }
  }
  return out;
}

struct replay_case {
  eplb::replay_shape shape;
  std::vector<std::int64_t> loads;
  std::vector<std::int32_t> maps;
};

replay_case make_replay_case(int steps, int layers, int experts, int redundant, int ranks,
                             int mappings, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  replay_case c;
  c.shape = eplb::replay_shape{steps, layers, experts, experts + redundant, ranks, mappings};
  c.loads.resize(static_cast<std::size_t>(steps) * layers * experts);
  for (auto& v : c.loads) v = static_cast<std::int64_t>(rng() % 100000);
  c.maps.resize(static_cast<std::size_t>(mappings) * layers * c.shape.slots);
  for (int m = 0; m < mappings; ++m) {
    for (int l = 0; l < layers; ++l) {
      std::int32_t* row =
          c.maps.data() + (static_cast<std::size_t>(m) * layers + l) * c.shape.slots;
      for (int p = 0; p < c.shape.slots; ++p) {
        row[p] = p < experts ? p : static_cast<std::int32_t>(rng() % experts);
      }
      std::shuffle(row, row + c.shape.slots, rng);
    }
  }
  return c;
}

// A record that owns its arrays.
struct owned_record {
  std::vector<std::int64_t> load;
  std::vector<std::int32_t> p2l;
  eplb::stats_record record;
  owned_record(int layers, int slots, int experts, std::vector<std::int64_t> l,
               std::vector<std::int32_t> m, std::uint64_t line)
      : load(std::move(l)), p2l(std::move(m)) {
    record.num_layers = layers;
    record.num_slots = slots;
    record.num_experts = experts;
    record.expert_load = load.data();
    record.p2l_map = p2l.data();
    record.where = eplb::position{"r.jsonl", line, 0};
  }
};

std::vector<owned_record> random_records(int count, int layers, int experts, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::vector<owned_record> out;
  out.reserve(static_cast<std::size_t>(count));
  for (int i = 0; i < count; ++i) {
    const int slots = experts + static_cast<int>(rng() % 5);  // elastic P
    std::vector<std::int64_t> load(static_cast<std::size_t>(layers) * slots);
    std::vector<std::int32_t> p2l(load.size());
    for (int l = 0; l < layers; ++l) {
      for (int p = 0; p < slots; ++p) {
        const std::size_t k = static_cast<std::size_t>(l) * slots + p;
        p2l[k] = p < experts ? (p + l) % experts : static_cast<std::int32_t>(rng() % experts);
        load[k] = static_cast<std::int64_t>(rng() % 1000000);
      }
    }
    out.emplace_back(layers, slots, experts, std::move(load), std::move(p2l),
                     static_cast<std::uint64_t>(i + 1));
  }
  return out;
}

// Feeds the records to an aggregator; returns the first error or the sums.
eplb::result<eplb::load_matrix> run(eplb::aggregator& agg, const std::vector<owned_record>& recs) {
  for (const auto& r : recs) {
    if (auto st = agg.on_record(r.record); !st) return st.err();
  }
  return agg.finish();
}

bool skip_without_cuda() {
  std::string why;
  if (eplb::cuda_available(&why)) return false;
  WARN("CUDA comparison skipped: " << why);
  return true;
}

}  // namespace

TEST_CASE("cuda: the replay reference is eplb::rank_loads' max", "[cuda]") {
  const replay_case c = make_replay_case(1, 3, 8, 4, 4, 2, 1);
  const std::vector<double> ref = replay_reference(c.shape, c.loads, c.maps);
  for (int m = 0; m < c.shape.mappings; ++m) {
    eplb::placement p;
    p.num_layers = c.shape.layers;
    p.num_slots = c.shape.slots;
    p.num_experts = c.shape.experts;
    const auto first =
        c.maps.begin() + static_cast<std::ptrdiff_t>(m) * c.shape.layers * c.shape.slots;
    p.physical_to_logical.assign(first, first + c.shape.layers * c.shape.slots);
    eplb::topology t{c.shape.layers, c.shape.experts, c.shape.slots, c.shape.ranks, 1, 1};
    eplb::weight_matrix w(c.shape.layers, c.shape.experts);
    for (int l = 0; l < c.shape.layers; ++l) {
      for (int e = 0; e < c.shape.experts; ++e) {
        w(l, e) = static_cast<double>(c.loads[static_cast<std::size_t>(l) * c.shape.experts + e]);
      }
    }
    const eplb::weight_matrix ranks = eplb::rank_loads(w, p, t);
    for (int l = 0; l < c.shape.layers; ++l) {
      CHECK(ref[static_cast<std::size_t>(m) * c.shape.layers + l] == ranks.row(l).maxCoeff());
    }
  }
}

TEST_CASE("cuda: replay arguments are checked before any device work", "[cuda]") {
  replay_case c = make_replay_case(2, 2, 4, 0, 2, 1, 2);
  std::vector<double> out(4);
  eplb::replay_shape bad = c.shape;
  bad.ranks = 3;  // 4 slots on 3 ranks
  auto st = eplb::cuda_replay_max(bad, c.loads.data(), c.maps.data(), out.data());
  CHECK(st.code() == errc::invalid_argument);
  CHECK(st.message().find("not divisible") != std::string::npos);
  bad = c.shape;
  bad.steps = 0;
  CHECK(eplb::cuda_replay_max(bad, c.loads.data(), c.maps.data(), out.data()).code() ==
        errc::invalid_argument);
  c.maps[5] = 4;  // expert id E
  st = eplb::cuda_replay_max(c.shape, c.loads.data(), c.maps.data(), out.data());
  CHECK(st.code() == errc::invalid_argument);
  CHECK(st.message().find("mapping 0, layer 1, slot 1: expert id 4") != std::string::npos);
}

TEST_CASE("cuda: replay on the GPU equals the CPU reference", "[cuda]") {
  if (skip_without_cuda()) return;
  for (const auto& c :
       {make_replay_case(300, 5, 16, 8, 6, 3, 3), make_replay_case(1000, 58, 256, 32, 32, 2, 4),
        make_replay_case(7, 94, 128, 32, 16, 1, 5)}) {
    std::vector<double> out(static_cast<std::size_t>(c.shape.mappings) * c.shape.steps *
                            c.shape.layers);
    const auto st = eplb::cuda_replay_max(c.shape, c.loads.data(), c.maps.data(), out.data());
    REQUIRE(st.ok());
    CHECK(out == replay_reference(c.shape, c.loads, c.maps));
  }
}

TEST_CASE("cuda: aggregation on the GPU equals the CPU, errors included", "[cuda]") {
  if (skip_without_cuda()) return;
  eplb::aggregator_options small;
  small.cuda_batch_bytes = 4096;  // many batches, both staging buffers
  const auto recs = random_records(200, 4, 16, 7);
  auto cpu = eplb::make_aggregator("cpu");
  REQUIRE(cpu.ok());
  const auto expected = run(**cpu, recs);
  REQUIRE(expected.ok());
  for (const auto& options : {eplb::aggregator_options{}, small}) {
    auto gpu = eplb::make_aggregator("cuda", options);
    REQUIRE(gpu.ok());
    CHECK(std::string((*gpu)->name()) == "cuda");
    const auto sums = run(**gpu, recs);
    REQUIRE(sums.ok());
    CHECK(*sums == *expected);
  }
  // The checks of the CPU fold, with the CPU's messages.
  auto bad_id = random_records(50, 4, 16, 8);
  bad_id[30].p2l[5] = 16;
  auto negative = random_records(50, 4, 16, 9);
  negative[40].load[3] = -1;
  auto huge = random_records(50, 4, 16, 10);
  huge[20].load[0] = INT64_MAX - 5;
  huge[45].load[0] = 100;
  huge[45].p2l[0] = huge[20].p2l[0];
  for (const auto* input : {&bad_id, &negative, &huge}) {
    auto c = eplb::make_aggregator("cpu");
    auto g = eplb::make_aggregator("cuda", small);
    REQUIRE(c.ok());
    REQUIRE(g.ok());
    const auto want = run(**c, *input);
    const auto got = run(**g, *input);
    REQUIRE_FALSE(want.ok());
    CHECK(got.code() == want.code());
    CHECK(got.message() == want.message());
  }
}

TEST_CASE("cuda: auto picks the CPU below its threshold and says why", "[cuda]") {
  auto agg = eplb::make_aggregator("auto");
  REQUIRE(agg.ok());
  REQUIRE((*agg)->on_begin(eplb::stats_input{1000, 1}).ok());
  CHECK(std::string((*agg)->name()) == "cpu");
  CHECK((*agg)->info().find("auto: CPU") != std::string::npos);
  eplb::aggregator_options always;
  always.auto_min_bytes = 0;
  auto big = eplb::make_aggregator("auto", always);
  REQUIRE(big.ok());
  REQUIRE((*big)->on_begin(eplb::stats_input{1000, 1}).ok());
  CHECK(std::string((*big)->name()) == (eplb::cuda_available() ? "cuda" : "cpu"));
  const auto recs = random_records(20, 2, 8, 11);
  auto cpu = eplb::make_aggregator("cpu");
  REQUIRE(cpu.ok());
  const auto a = run(**big, recs);
  const auto b = run(**cpu, recs);
  REQUIRE(a.ok());
  REQUIRE(b.ok());
  CHECK(*a == *b);
}
