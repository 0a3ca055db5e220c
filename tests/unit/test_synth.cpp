#include <simdjson.h>

#include <catch2/catch.hpp>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "eplb/synth.hpp"

using namespace eplb;

namespace {
weight_matrix zipf(int layers, int experts) {
  weight_matrix w(layers, experts);
  for (int l = 0; l < layers; ++l) {
    for (int e = 0; e < experts; ++e) w(l, e) = 1.0 / (1 + (e + l) % experts);
  }
  return w;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}
}  // namespace

TEST_CASE("synth writes meta + records whose loads fold back to tokens * top_k per layer") {
  synth_options o;
  o.num_steps = 12;
  o.top_k = 4;
  o.min_batch_tokens = 100;
  o.max_batch_tokens = 200;
  o.recording = topology{3, 8, 12, 4, 1, 1};
  o.shuffle_p2l = true;
  o.drift = 0.5;
  o.burst_prob = 0.2;
  std::ostringstream out;
  REQUIRE(synthesize_stats(zipf(3, 8), o, out).ok());
  const auto lines = lines_of(out.str());
  REQUIRE(lines.size() == 13);
  simdjson::dom::parser parser;
  simdjson::dom::element meta = parser.parse(lines[0]);
  CHECK(std::string_view(meta["record_type"]) == "eplb_load_meta");
  CHECK(int64_t(meta["num_redundant_experts"]) == 4);
  bool saw_non_identity = false;
  for (std::size_t i = 1; i < lines.size(); ++i) {
    simdjson::dom::element rec = parser.parse(lines[i]);
    CHECK(int64_t(rec["step"]) == 2250 + static_cast<int64_t>(i) - 1);
    std::vector<std::int64_t> totals;
    for (auto row : rec["expert_load"].get_array()) {
      std::int64_t sum = 0;
      std::size_t n = 0;
      for (auto v : row.get_array()) {
        sum += int64_t(v);
        ++n;
      }
      CHECK(n == 12);
      totals.push_back(sum);
    }
    REQUIRE(totals.size() == 3);
    CHECK(totals[0] == totals[1]);
    CHECK(totals[0] % 4 == 0);
    CHECK(totals[0] >= 400);
    CHECK(totals[0] <= 800);
    for (auto row : rec["p2l_map"].get_array()) {
      std::set<int64_t> experts;
      int64_t slot = 0;
      for (auto v : row.get_array()) {
        experts.insert(int64_t(v));
        if (int64_t(v) != slot % 8) saw_non_identity = true;
        ++slot;
      }
      CHECK(experts.size() == 8);
    }
  }
  CHECK(saw_non_identity);
}

TEST_CASE("synth is deterministic per seed and differs between seeds") {
  synth_options o;
  o.num_steps = 5;
  o.recording = topology{2, 6, 6, 2, 1, 1};
  o.drift = 0.3;
  std::ostringstream a, b, c;
  REQUIRE(synthesize_stats(zipf(2, 6), o, a).ok());
  REQUIRE(synthesize_stats(zipf(2, 6), o, b).ok());
  o.seed = 2;
  REQUIRE(synthesize_stats(zipf(2, 6), o, c).ok());
  CHECK(a.str() == b.str());
  CHECK(a.str() != c.str());
}

TEST_CASE("synth without meta writes the self-describing layout; bad shapes are refused") {
  synth_options o;
  o.num_steps = 2;
  o.write_meta = false;
  o.recording = topology{2, 6, 6, 2, 1, 1};
  std::ostringstream out;
  REQUIRE(synthesize_stats(zipf(2, 6), o, out).ok());
  CHECK(out.str().rfind("{\"record_type\": \"eplb_load_stats\"", 0) == 0);
  o.recording.num_experts = 7;
  o.recording.num_slots = 7;
  std::ostringstream bad;
  status s = synthesize_stats(zipf(2, 6), o, bad);
  REQUIRE_FALSE(s.ok());
  CHECK(s.code() == errc::invalid_argument);
}

TEST_CASE("counts JSON reader accepts the Qwen layout and names bad elements") {
  const std::string dir = EPLB_TEST_DATA_DIR;
  auto w = read_counts_json(dir + "/counts/small_counts.json");
  REQUIRE(w.ok());
  CHECK(w->rows() == 2);
  CHECK(w->cols() == 3);
  CHECK((*w)(1, 2) == 6.0);
  auto bad = read_counts_json(dir + "/counts/bad_counts.json");
  REQUIRE_FALSE(bad.ok());
  CHECK_THAT(bad.message(), Catch::Contains("counts[1][0]"));
}
