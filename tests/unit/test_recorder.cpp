// The header-only recorder: everything recorded reads back exactly, a full ring drops instead of
// blocking (and the file holds exactly the records that were not dropped), interval and window
// sampling, zero-total steps, append mode and error reporting.
#include <simdjson.h>

#include <atomic>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "eplb/recorder.hpp"

namespace fs = std::filesystem;

namespace {

constexpr int k_layers = 2;
constexpr int k_slots = 8;
constexpr int k_ranks = 2;
constexpr int k_redundant = 2;  // E = 6

std::string temp_path(const std::string& name) {
  // The pid keeps concurrent runs (ctest -j, several checkouts) from sharing a file.
  const auto p = fs::temp_directory_path() /
                 ("eplb_recorder_" + std::to_string(::getpid()) + "_" + name + ".jsonl");
  fs::remove(p);
  return p.string();
}

eplb::recorder_options base_options(const std::string& path) {
  eplb::recorder_options o;
  o.path = path;
  o.model = "test/\"moe\"";
  o.num_layers = k_layers;
  o.num_slots = k_slots;
  o.num_ranks = k_ranks;
  o.num_groups = 1;
  o.num_nodes = 1;
  o.num_redundant_experts = k_redundant;
  return o;
}

// Deterministic non-zero counts of a step.
std::vector<std::int64_t> counts_of(std::int64_t step) {
  std::vector<std::int64_t> c(k_layers * k_slots);
  for (int l = 0; l < k_layers; ++l) {
    for (int p = 0; p < k_slots; ++p) {
      c[static_cast<std::size_t>(l * k_slots + p)] = (step * 7 + l * 3 + p * 5) % 11 + (p == 0);
    }
  }
  return c;
}

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::vector<std::int64_t> flat(simdjson::dom::element matrix) {
  std::vector<std::int64_t> out;
  simdjson::dom::array rows = matrix.get_array();
  for (auto row : rows) {
    simdjson::dom::array values = row.get_array();
    for (auto v : values) out.push_back(v.get_int64().value());
  }
  return out;
}

struct parsed_record {
  std::int64_t step = 0;
  std::vector<std::int64_t> load;
  std::vector<std::int64_t> p2l;
  std::vector<std::int64_t> tokens;
  std::vector<std::int64_t> experts_per_rank;
  std::int64_t next_rearrange = 0;
};

// Parses a file: checks the single meta line, returns the stats records.
std::vector<parsed_record> parse_file(const std::string& path) {
  const auto lines = read_lines(path);
  REQUIRE_FALSE(lines.empty());
  simdjson::dom::parser parser;
  simdjson::dom::element meta = parser.parse(lines[0]);
  REQUIRE(meta["record_type"].get_string().value() == "eplb_load_meta");
  CHECK(meta["version"].get_int64().value() == 1);
  CHECK(meta["model"].get_string().value() == "test/\"moe\"");
  CHECK(meta["num_ranks"].get_int64().value() == k_ranks);
  CHECK(meta["num_layers"].get_int64().value() == k_layers);
  CHECK(meta["num_redundant_experts"].get_int64().value() == k_redundant);
  std::vector<parsed_record> out;
  out.reserve(lines.size());
  for (std::size_t i = 1; i < lines.size(); ++i) {
    simdjson::dom::element rec = parser.parse(lines[i]);
    REQUIRE(rec["record_type"].get_string().value() == "eplb_load_stats");
    REQUIRE(rec["version"].get_int64().value() == 1);
    REQUIRE(rec["num_layers"].get_int64().value() == k_layers);
    REQUIRE(rec["num_ranks"].get_int64().value() == k_ranks);
    parsed_record r;
    r.step = rec["step"].get_int64().value();
    r.next_rearrange = rec["next_rearrange"].get_int64().value();
    r.load = flat(rec["expert_load"]);
    r.p2l = flat(rec["p2l_map"]);
    r.tokens = flat(rec["tokens"]);
    r.experts_per_rank = flat(rec["experts_per_rank"]);
    REQUIRE(r.load.size() == static_cast<std::size_t>(k_layers * k_slots));
    REQUIRE(r.p2l.size() == r.load.size());
    out.push_back(std::move(r));
  }
  return out;
}

std::vector<std::int32_t> identity_map() {
  std::vector<std::int32_t> m(k_layers * k_slots);
  for (std::size_t i = 0; i < m.size(); ++i) {
    m[i] = static_cast<std::int32_t>(static_cast<int>(i % k_slots) % (k_slots - k_redundant));
  }
  return m;
}

std::vector<std::int64_t> as64(const std::vector<std::int32_t>& v) {
  return std::vector<std::int64_t>(v.begin(), v.end());
}

std::vector<std::int32_t> other_map() {
  // Every expert 0..5 present, replicas of 5 and 4.
  const std::int32_t row[k_slots] = {5, 4, 3, 2, 1, 0, 5, 4};
  std::vector<std::int32_t> m;
  for (int l = 0; l < k_layers; ++l) m.insert(m.end(), row, row + k_slots);
  return m;
}

}  // namespace

TEST_CASE("recorder: 100,000 steps read back exactly", "[recorder]") {
  const auto path = temp_path("bulk");
  constexpr std::int64_t steps = 100000;
  constexpr std::int64_t switch_at = 50000;
  std::vector<std::int64_t> logical(k_layers * (k_slots - k_redundant), 0);
  {
    auto opts = base_options(path);
    opts.capacity = 1 << 17;  // larger than the run: nothing may be dropped
    opts.step_interval = 3000;
    eplb::recorder rec(opts);
    REQUIRE(rec.ok());
    const auto first = identity_map();
    const auto second = other_map();
    for (std::int64_t s = 0; s < steps; ++s) {
      if (s == switch_at) rec.set_p2l_map(second.data());
      const auto c = counts_of(s);
      REQUIRE(rec.record_step(s, c.data()));
      const auto& map = s < switch_at ? first : second;
      for (int l = 0; l < k_layers; ++l) {
        for (int p = 0; p < k_slots; ++p) {
          const auto i = static_cast<std::size_t>(l * k_slots + p);
          logical[static_cast<std::size_t>(l * (k_slots - k_redundant) + map[i])] += c[i];
        }
      }
    }
    REQUIRE(rec.close());
    CHECK(rec.dropped() == 0);
    CHECK(rec.recorded() == static_cast<std::uint64_t>(steps));
    CHECK(rec.written() == static_cast<std::uint64_t>(steps));
  }
  const auto records = parse_file(path);
  REQUIRE(records.size() == static_cast<std::size_t>(steps));
  std::vector<std::int64_t> from_file(logical.size(), 0);
  for (std::int64_t s = 0; s < steps; ++s) {
    const auto& r = records[static_cast<std::size_t>(s)];
    REQUIRE(r.step == s);
    REQUIRE(r.load == counts_of(s));
    CHECK(r.next_rearrange == 3000 - s);
    // tokens: per-rank sums of the rank's 4 slots.
    for (int l = 0; l < k_layers; ++l) {
      for (int rank = 0; rank < k_ranks; ++rank) {
        std::int64_t sum = 0;
        for (int p = rank * 4; p < rank * 4 + 4; ++p)
          sum += r.load[static_cast<std::size_t>(l * 8 + p)];
        REQUIRE(r.tokens[static_cast<std::size_t>(l * k_ranks + rank)] == sum);
      }
    }
    // experts_per_rank: layer-0 logical ids of each rank's first and last slot.
    for (int rank = 0; rank < k_ranks; ++rank) {
      REQUIRE(r.experts_per_rank[static_cast<std::size_t>(2 * rank)] ==
              r.p2l[static_cast<std::size_t>(rank * 4)]);
      REQUIRE(r.experts_per_rank[static_cast<std::size_t>(2 * rank + 1)] ==
              r.p2l[static_cast<std::size_t>(rank * 4 + 3)]);
    }
    for (std::size_t i = 0; i < r.load.size(); ++i) {
      const auto l = i / k_slots;
      from_file[l * (k_slots - k_redundant) + static_cast<std::size_t>(r.p2l[i])] += r.load[i];
    }
  }
  CHECK(records[0].p2l == as64(identity_map()));
  CHECK(records.back().p2l == as64(other_map()));
  CHECK(from_file == logical);
  fs::remove(path);
}

TEST_CASE("recorder: a full ring drops records instead of blocking", "[recorder]") {
  const auto path = temp_path("full");
  std::atomic<bool> release{false};
  auto opts = base_options(path);
  opts.capacity = 1;
  opts.before_write = [&release] {
    while (!release.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  };
  constexpr int steps = 10;
  {
    eplb::recorder rec(opts);
    REQUIRE(rec.ok());
    const auto t0 = std::chrono::steady_clock::now();
    int accepted = 0;
    for (int s = 0; s < steps; ++s) accepted += rec.record_step(s, counts_of(s).data()) ? 1 : 0;
    // The writer is stuck in the hook holding the only slot: nothing may wait for it.
    CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(1));
    CHECK(accepted == 1);
    CHECK(rec.recorded() == 1);
    CHECK(rec.dropped() == steps - 1);
    CHECK(rec.dropped_steps() == steps - 1);
    release.store(true);
    REQUIRE(rec.close());
    CHECK(rec.written() == 1);
  }
  const auto records = parse_file(path);
  REQUIRE(records.size() == 1);
  CHECK(records[0].step == 0);
  CHECK(records[0].load == counts_of(0));
  fs::remove(path);

  // A burst into a small ring without a hook: whatever was dropped, the file holds exactly the
  // records that were not.
  const auto burst_path = temp_path("burst");
  auto burst = base_options(burst_path);
  burst.capacity = 2;
  constexpr int burst_steps = 20000;
  std::uint64_t recorded = 0;
  std::uint64_t dropped = 0;
  {
    eplb::recorder rec(burst);
    for (int s = 0; s < burst_steps; ++s) rec.record_step(s, counts_of(s).data());
    REQUIRE(rec.close());
    recorded = rec.recorded();
    dropped = rec.dropped();
  }
  CHECK(recorded + dropped == burst_steps);
  const auto burst_records = parse_file(burst_path);
  CHECK(burst_records.size() == recorded);
  for (std::size_t i = 1; i < burst_records.size(); ++i) {
    REQUIRE(burst_records[i].step > burst_records[i - 1].step);
    REQUIRE(burst_records[i].load == counts_of(burst_records[i].step));
  }
  fs::remove(burst_path);
}

TEST_CASE("recorder: interval keeps every Nth step", "[recorder]") {
  const auto path = temp_path("interval");
  auto opts = base_options(path);
  opts.interval = 3;
  {
    eplb::recorder rec(opts);
    for (int s = 0; s < 30; ++s) REQUIRE(rec.record_step(s, counts_of(s).data()));
    CHECK(rec.recorded() == 10);
  }
  const auto records = parse_file(path);
  REQUIRE(records.size() == 10);
  for (std::size_t i = 0; i < records.size(); ++i) {
    CHECK(records[i].step == static_cast<std::int64_t>(3 * i));
    CHECK(records[i].load == counts_of(static_cast<std::int64_t>(3 * i)));
    CHECK(records[i].next_rearrange == 0);  // no step_interval given
  }
  fs::remove(path);
}

TEST_CASE("recorder: windows sum steps and close early when the map changes", "[recorder]") {
  const auto path = temp_path("window");
  auto opts = base_options(path);
  opts.window = 4;
  const auto second = other_map();
  auto sum_steps = [](std::int64_t first, std::int64_t last) {
    std::vector<std::int64_t> s(k_layers * k_slots, 0);
    for (std::int64_t t = first; t <= last; ++t) {
      const auto c = counts_of(t);
      for (std::size_t i = 0; i < s.size(); ++i) s[i] += c[i];
    }
    return s;
  };
  {
    eplb::recorder rec(opts);
    for (int s = 0; s <= 10; ++s) {
      if (s == 6) rec.set_p2l_map(second.data());
      if (s == 8) rec.set_p2l_map(second.data());  // unchanged: no early flush
      REQUIRE(rec.record_step(s, counts_of(s).data()));
    }
    CHECK(rec.recorded() == 3);  // steps 0-3, 4-5 (map change), 6-9; step 10 is pending
  }                              // the destructor writes the pending window
  const auto records = parse_file(path);
  REQUIRE(records.size() == 4);
  CHECK(records[0].step == 3);
  CHECK(records[0].load == sum_steps(0, 3));
  CHECK(records[1].step == 5);
  CHECK(records[1].load == sum_steps(4, 5));
  CHECK(records[1].p2l == as64(identity_map()));
  CHECK(records[2].step == 9);
  CHECK(records[2].load == sum_steps(6, 9));
  CHECK(records[2].p2l == as64(second));
  CHECK(records[3].step == 10);
  CHECK(records[3].load == sum_steps(10, 10));
  fs::remove(path);
}

TEST_CASE("recorder: zero-total steps are skipped; reruns append under one meta", "[recorder]") {
  const auto path = temp_path("append");
  const std::vector<std::int64_t> zeros(k_layers * k_slots, 0);
  for (int run = 0; run < 2; ++run) {
    eplb::recorder rec(base_options(path));
    REQUIRE(rec.record_step(1, zeros.data()));
    REQUIRE(rec.record_step(2, counts_of(2).data()));
    REQUIRE(rec.record_step(3, zeros.data()));
    REQUIRE(rec.close());
    CHECK(rec.skipped_zero() == 2);
    CHECK(rec.recorded() == 1);
    CHECK(rec.close());  // a second close does nothing
  }
  const auto lines = read_lines(path);
  REQUIRE(lines.size() == 3);  // one meta, one record per run
  const auto records = parse_file(path);
  REQUIRE(records.size() == 2);
  CHECK(records[0].step == 2);
  CHECK(records[1].step == 2);
  fs::remove(path);
}

TEST_CASE("recorder: errors are reported, not thrown", "[recorder]") {
  auto opts = base_options((fs::temp_directory_path() / "eplb_no_such_dir" / "x.jsonl").string());
  eplb::recorder rec(opts);
  CHECK_FALSE(rec.ok());
  CHECK(rec.last_error().find("eplb_no_such_dir") != std::string::npos);
  CHECK_FALSE(rec.record_step(0, counts_of(0).data()));
  CHECK_FALSE(rec.close());

  auto bad = base_options(temp_path("bad"));
  bad.num_slots = 7;  // not divisible by 2 ranks
  eplb::recorder rec2(bad);
  CHECK_FALSE(rec2.ok());
  CHECK(rec2.last_error().find("divisible") != std::string::npos);
  CHECK_FALSE(fs::exists(bad.path));
}
