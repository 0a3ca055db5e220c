#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "eplb/loader.hpp"

using eplb::loader::expected_topology;
using eplb::loader::load_result;
using eplb::loader::parse_mapping;

namespace {

// The example of formats/vllm-offline-eplb.md section 5: E=3, R=1, P=4, EP=2, L=2.
const std::string k_example =
    R"({"record_type": "eplb_initial_mapping", "version": 1, "num_redundant_experts": 1, )"
    R"("num_slots": 4, "initial_global_assignments": {"0": [0, 2, 0, 1], "1": [1, 2, 1, 0]}})";
const expected_topology k_server{2, 3, 2, 1};

// A mapping record with the given R, P and assignments object text.
std::string record(int redundant, int slots, const std::string& table) {
  std::string s =
      R"({"record_type": "eplb_initial_mapping", "version": 1, "num_redundant_experts": )";
  s.append(std::to_string(redundant)).append(", \"num_slots\": ").append(std::to_string(slots));
  s.append(", \"initial_global_assignments\": ").append(table).append("}");
  return s;
}

// The 1-based column of the first occurrence of `needle` in `text` (which must hold it).
std::size_t column_of(const std::string& text, const std::string& needle) {
  const std::size_t at = text.find(needle);
  REQUIRE(at != std::string::npos);
  return at + 1;
}

// `text` with its first `from` replaced by `to` (appends: g++ 12 warns falsely on replace).
std::string replaced(const std::string& text, const std::string& from, const std::string& to) {
  const std::size_t at = text.find(from);
  REQUIRE(at != std::string::npos);
  std::string out = text.substr(0, at);
  out.append(to).append(text, at + from.size(), std::string::npos);
  return out;
}

load_result parse(const std::string& text, const expected_topology& expect = k_server) {
  return parse_mapping(text, expect, "m.jsonl");
}

}  // namespace

TEST_CASE("loader accepts the format example and derives the inverse maps") {
  const load_result r = parse(k_example);
  REQUIRE(r.ok());
  CHECK(r.error.message.empty());
  const auto& m = r.value;
  CHECK(m.num_layers() == 2);
  CHECK(m.num_slots() == 4);
  CHECK(m.num_experts() == 3);
  CHECK(m.num_redundant() == 1);
  CHECK(m.num_ranks() == 2);
  CHECK(m.physical_to_logical(0) == std::vector<int>{0, 2, 0, 1});
  CHECK(m.physical_to_logical(1) == std::vector<int>{1, 2, 1, 0});
  // Layer 0 [0,2,0,1]: expert 0 in slots 0 and 2, expert 1 in 3, expert 2 in 1.
  CHECK(m.logical_to_physical(0, 0) == std::vector<int>{0, 2});
  CHECK(m.logical_to_physical(0, 1) == std::vector<int>{3});
  CHECK(m.logical_to_physical(0, 2) == std::vector<int>{1});
  // Layer 1 [1,2,1,0]: expert 0 in 3, expert 1 in 0 and 2, expert 2 in 1.
  CHECK(m.logical_to_physical(1, 0) == std::vector<int>{3});
  CHECK(m.logical_to_physical(1, 1) == std::vector<int>{0, 2});
  CHECK(m.replica_count(0, 0) == 2);
  CHECK(m.replica_count(0, 1) == 1);
  CHECK(m.replica_count(1, 1) == 2);
  CHECK(m.replica_count(1, 2) == 1);
  // Two slots per rank.
  CHECK(m.experts_for_rank(0, 0) == std::vector<int>{0, 2});
  CHECK(m.experts_for_rank(0, 1) == std::vector<int>{0, 1});
  CHECK(m.experts_for_rank(1, 0) == std::vector<int>{1, 2});
  CHECK(m.experts_for_rank(1, 1) == std::vector<int>{1, 0});
  CHECK(m.flat_physical_to_logical() == std::vector<int>{0, 2, 0, 1, 1, 2, 1, 0});
  // Out-of-range queries are empty, not crashes.
  CHECK(m.physical_to_logical(2).empty());
  CHECK(m.logical_to_physical(0, 3).empty());
  CHECK(m.replica_count(-1, 0) == 0);
  CHECK(m.experts_for_rank(0, 2).empty());
}

TEST_CASE("loader takes unchecked sizes from the file") {
  const load_result r = parse(k_example, expected_topology{});
  REQUIRE(r.ok());
  CHECK(r.value.num_layers() == 2);
  CHECK(r.value.num_experts() == 3);
  CHECK(r.value.num_ranks() == 0);
  CHECK(r.value.experts_for_rank(0, 0).empty());  // no EP size, no ranks

  // Without a layer count the keys must be exactly "0".."L-1".
  const load_result gap =
      parse(record(1, 4, R"({"0": [0, 2, 0, 1], "2": [1, 2, 1, 0]})"), expected_topology{});
  REQUIRE_FALSE(gap.ok());
  CHECK(gap.error.message ==
        "m.jsonl: layer keys must be \"0\"..\"1\" when the layer count is not given "
        "(missing key \"1\")");
}

TEST_CASE("loader follows vLLM on layer keys: extra keys ignored, missing keys rejected") {
  const load_result fewer = parse(k_example, expected_topology{1, 3, 2, 1});
  REQUIRE(fewer.ok());
  CHECK(fewer.value.num_layers() == 1);
  CHECK(fewer.value.physical_to_logical(0) == std::vector<int>{0, 2, 0, 1});

  const std::string extra = record(1, 4, R"({"0": [0, 2, 0, 1], "1": [1, 2, 1, 0], "x": 5})");
  CHECK(parse(extra).ok());

  const load_result more = parse(k_example, expected_topology{3, 3, 2, 1});
  REQUIRE_FALSE(more.ok());
  CHECK(more.error.message ==
        "m.jsonl: mapping has 2 layers but the server has 3 MoE layers (missing key \"2\")");
  CHECK(more.error.line == 0);
}

TEST_CASE("loader rejects a layer without some logical expert") {
  const std::string text = record(1, 4, R"({"0": [0, 0, 0, 1], "1": [1, 2, 1, 0]})");
  const load_result r = parse(text);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error.message, Catch::StartsWith("m.jsonl:1:"));
  CHECK_THAT(r.error.message, Catch::EndsWith("layer 0: logical expert 2 has no slot"));
}

TEST_CASE("loader rejects an expert index out of range, naming layer, slot and column") {
  const std::string text = record(1, 4, R"({"0": [0, 2, 0, 1], "1": [1, 2, 3, 0]})");
  const load_result r = parse(text);
  REQUIRE_FALSE(r.ok());
  const std::size_t col = column_of(text, "3, 0]");
  CHECK(r.error.line == 1);
  CHECK(r.error.column == col);
  CHECK(r.error.message ==
        "m.jsonl:1:" + std::to_string(col) + ": layer 1 slot 2: expert 3 out of range [0, 3)");

  const load_result neg = parse(record(1, 4, R"({"0": [0, 2, -1, 1], "1": [1, 2, 1, 0]})"));
  REQUIRE_FALSE(neg.ok());
  CHECK_THAT(neg.error.message, Catch::EndsWith("layer 0 slot 2: expert -1 out of range [0, 3)"));
}

TEST_CASE("loader rejects a row with the wrong slot count") {
  const std::string text = record(1, 4, R"({"0": [0, 2, 0, 1], "1": [1, 2, 0]})");
  const load_result r = parse(text);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error.message == "m.jsonl:1:" + std::to_string(column_of(text, "[1, 2, 0]")) +
                               ": layer 1 has 3 slots, expected 4");

  const load_result not_list = parse(record(1, 4, R"({"0": [0, 2, 0, 1], "1": "x"})"));
  REQUIRE_FALSE(not_list.ok());
  CHECK_THAT(not_list.error.message,
             Catch::EndsWith("layer 1: expected a list of 4 integers, got a string"));
}

TEST_CASE("loader rejects a float even when it is integral") {
  const std::string text = record(1, 4, R"({"0": [0, 2, 0, 1.0], "1": [1, 2, 1, 0]})");
  const load_result r = parse(text);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error.column == column_of(text, "1.0"));
  CHECK_THAT(r.error.message, Catch::EndsWith("layer 0 slot 3: expected an integer, got 1.0"));
  const load_result exp = parse(record(1, 4, R"({"0": [0, 2, 0, 1e0], "1": [1, 2, 1, 0]})"));
  CHECK_THAT(exp.error.message, Catch::EndsWith("expected an integer, got 1e0"));
  const load_result boolean = parse(record(1, 4, R"({"0": [0, 2, 0, true], "1": [1, 2, 1, 0]})"));
  CHECK_THAT(boolean.error.message, Catch::EndsWith("expected an integer, got true"));
  const std::string slots = replaced(k_example, "\"num_slots\": 4", "\"num_slots\": 4.0");
  CHECK_THAT(parse(slots).error.message,
             Catch::EndsWith("num_slots: expected a non-negative integer, got 4.0"));
}

TEST_CASE("loader rejects a version other than 1") {
  const load_result r = parse(replaced(k_example, "\"version\": 1", "\"version\": 2"));
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error.message, Catch::EndsWith("expected eplb_initial_mapping version 1, got 2"));
  CHECK_THAT(parse(replaced(k_example, "\"version\": 1, ", "")).error.message,
             Catch::EndsWith("version 1, got none"));
}

TEST_CASE("loader rejects a mapping that does not fit the server's topology") {
  const load_result ep = parse(k_example, expected_topology{2, 3, 3, 1});
  REQUIRE_FALSE(ep.ok());
  CHECK(ep.error.message ==
        "m.jsonl: mapping does not fit EP size 3: num_slots=4 is not divisible by num_ranks=3");

  const load_result red = parse(k_example, expected_topology{2, 3, 2, 2});
  REQUIRE_FALSE(red.ok());
  CHECK_THAT(red.error.message, Catch::EndsWith("num_redundant_experts=1 but the server runs 2"));
  CHECK(red.error.column == column_of(k_example, "1, \"num_slots\""));

  const load_result experts = parse(k_example, expected_topology{2, 4, 2, -1});
  REQUIRE_FALSE(experts.ok());
  CHECK_THAT(experts.error.message,
             Catch::EndsWith("num_slots=4 but num_experts + num_redundant_experts = 4 + 1"));

  CHECK_FALSE(parse(record(4, 4, "{}"), expected_topology{}).ok());  // E = 0
}

TEST_CASE("loader needs a mapping record and uses the last one") {
  const std::string meta = R"({"record_type": "eplb_load_meta", "version": 1, "num_layers": 2})";
  const load_result none = parse(meta + "\n\n");
  REQUIRE_FALSE(none.ok());
  CHECK(none.error.message == "m.jsonl: does not contain an eplb_initial_mapping record");
  CHECK_FALSE(parse("").ok());

  // The first record is broken, but only the last one counts (as in vLLM).
  const std::string first = record(1, 4, R"({"0": [0, 0, 0, 0]})");
  const std::string last = record(1, 4, R"({"0": [2, 1, 0, 1], "1": [0, 1, 2, 2]})");
  const load_result r = parse(first + "\n" + meta + "\n   \n" + last + "\n");
  REQUIRE(r.ok());
  CHECK(r.value.physical_to_logical(0) == std::vector<int>{2, 1, 0, 1});
  CHECK(r.value.logical_to_physical(1, 2) == std::vector<int>{2, 3});
  // And the other way round the broken record is the one that counts.
  CHECK_FALSE(parse(last + "\n" + first + "\n").ok());
}

TEST_CASE("loader ignores other record types but still requires valid JSON on every line") {
  const std::string meta =
      R"({"record_type": "eplb_load_meta", "version": 1, "model": "example/moe-3e", )"
      R"("num_ranks": 2, "num_groups": 1, "num_nodes": 1, "num_layers": 2, )"
      R"("num_redundant_experts": 1})";
  const std::string stats =
      R"({"record_type": "eplb_load_stats", "version": 1, "model": "example/moe-3e", )"
      R"("step": 2250, "next_rearrange": 750, "num_ranks": 2, "num_layers": 2, )"
      R"("experts_per_rank": [[0, 1], [2, 0]], "tokens": [[50, 55], [65, 25]], )"
      R"("expert_load": [[40, 10, 25, 30], [5, 60, 20, 5]], )"
      R"("p2l_map": [[0, 1, 2, 0], [0, 1, 2, 0]]})";
  CHECK(parse(meta + "\n" + stats + "\n" + k_example + "\r\n").ok());
  CHECK(parse(k_example + "\n" + R"({"record_type": 7, "note": "\u00e9\ud83d\ude00"})").ok());

  const std::string bad = R"({"record_type": "x",})";
  const load_result r = parse(meta + "\n" + k_example + "\n" + bad + "\n");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error.line == 3);
  CHECK(r.error.column == bad.size());  // the '}' where a key should be
  CHECK(r.error.message == "m.jsonl:3:" + std::to_string(bad.size()) +
                               ": invalid JSON: unexpected character '}', expected a string key");

  const load_result array = parse(k_example + "\n[1, 2]\n");
  REQUIRE_FALSE(array.ok());
  CHECK(array.error.message == "m.jsonl:2:1: expected a JSON object per line, got a list");
}

TEST_CASE("loader reports a truncated file as invalid JSON with its position") {
  const std::size_t cut = k_example.find("0, 1]");  // the line ends in "[0, 2, "
  const std::string text = "{\"record_type\": \"eplb_load_meta\"}\n" + k_example.substr(0, cut);
  const load_result r = parse(text);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error.line == 2);
  CHECK(r.error.column == cut + 1);
  CHECK(r.error.message == "m.jsonl:2:" + std::to_string(cut + 1) +
                               ": invalid JSON: unexpected end of line, expected a value");
  const load_result s = parse(k_example.substr(0, 20));
  CHECK_THAT(s.error.message, Catch::StartsWith("m.jsonl:1:21: invalid JSON: unterminated string"));
}

TEST_CASE("loader enforces at most 1024 replicas per expert") {
  auto row_of_zeros = [](int n) {
    std::string row = "[1";
    for (int i = 1; i < n; ++i) row.append(", 0");
    return row + "]";
  };
  // E=2: expert 1 once, expert 0 in the other slots.
  const load_result max = parse(record(1023, 1025, "{\"0\": " + row_of_zeros(1025) + "}"),
                                expected_topology{1, 2, 0, 1023});
  REQUIRE(max.ok());
  CHECK(max.value.replica_count(0, 0) == 1024);
  CHECK(max.value.logical_to_physical(0, 1) == std::vector<int>{0});
  const load_result over = parse(record(1024, 1026, "{\"0\": " + row_of_zeros(1026) + "}"),
                                 expected_topology{1, 2, 0, 1024});
  REQUIRE_FALSE(over.ok());
  CHECK_THAT(over.error.message,
             Catch::EndsWith("layer 0: logical expert 0 has 1025 replicas, at most 1024 allowed"));
}

TEST_CASE("loader caps nesting depth") {
  auto nested = [](int arrays) {
    return "{\"a\": " + std::string(static_cast<std::size_t>(arrays), '[') +
           std::string(static_cast<std::size_t>(arrays), ']') + "}";
  };
  CHECK(parse(nested(63) + "\n" + k_example).ok());  // object + 63 arrays = 64 levels
  const load_result deep = parse(nested(64) + "\n" + k_example);
  REQUIRE_FALSE(deep.ok());
  CHECK_THAT(deep.error.message, Catch::Contains("nesting deeper than 64 levels"));
  const load_result huge = parse(std::string(1000000, '['));  // would overflow an unbounded stack
  CHECK_THAT(huge.error.message, Catch::Contains("nesting deeper than 64 levels"));
}

TEST_CASE("loader handles numbers beyond 64 bits") {
  const std::string big =
      record(1, 4, R"({"0": [0, 2, 0, 99999999999999999999], "1": [1, 2, 1, 0]})");
  const load_result r = parse(big);
  REQUIRE_FALSE(r.ok());
  CHECK_THAT(r.error.message,
             Catch::EndsWith("layer 0 slot 3: expert 99999999999999999999 out of range [0, 3)"));
  const std::string slots =
      replaced(k_example, "\"num_slots\": 4", "\"num_slots\": 18446744073709551620");
  CHECK_THAT(
      parse(slots).error.message,
      Catch::EndsWith("num_slots: expected a non-negative integer, got 18446744073709551620"));
  // int64 limits are still ordinary integers; other records may hold them.
  CHECK(parse(R"({"a": [-9223372036854775808, 9223372036854775807, 1e999]})"
              "\n" +
              k_example)
            .ok());
}

TEST_CASE("JSON parser decodes escapes and tracks columns") {
  using eplb::loader::detail::json_parser;
  using eplb::loader::detail::json_value;
  json_value v;
  json_parser p(R"( ["a\"\\\/\b\f\n\r\t", "\u00e9\ud83d\ude00\ud800x", -0, -12])");
  REQUIRE(p.parse(v));
  REQUIRE(v.items.size() == 4);
  CHECK(v.column == 2);
  CHECK(v.items[0].text == "a\"\\/\b\f\n\r\t");
  // é, U+1F600 from a surrogate pair, and a lone surrogate kept as 3 bytes (as Python does).
  CHECK(v.items[1].text == "\xC3\xA9\xF0\x9F\x98\x80\xED\xA0\x80x");
  CHECK(v.items[2].integer == 0);
  CHECK(v.items[3].integer == -12);
  CHECK(v.items[3].column ==
        column_of(R"( ["a\"\\\/\b\f\n\r\t", "\u00e9\ud83d\ude00\ud800x", -0, -12])", "-12"));
  for (const char* bad : {"01", "[1,]", "{\"a\" 1}", "\"\\x\"", "\"\\u12\"", "tru", "-", "1.", "1e",
                          "[1] 2", "\"a\tb\"", "NaN", ""}) {
    json_value w;
    json_parser q(bad);
    CHECK_FALSE(q.parse(w));
    CHECK_FALSE(q.error().empty());
  }
}

TEST_CASE("loader rejects a BOM, NUL bytes and a missing file with clear messages") {
  const load_result bom = parse("\xEF\xBB\xBF" + k_example);
  REQUIRE_FALSE(bom.ok());
  CHECK(bom.error.message ==
        "m.jsonl:1:1: file starts with a UTF-8 byte order mark; write it without one");
  std::string nul = k_example;
  nul[5] = '\0';
  CHECK_THAT(parse(nul).error.message, Catch::StartsWith("m.jsonl:1:6: invalid JSON"));
  const load_result missing =
      eplb::loader::load_mapping_file("no_such_dir/mapping.jsonl", k_server);
  CHECK_THAT(missing.error.message,
             Catch::StartsWith("no_such_dir/mapping.jsonl: cannot open file: "));
}

TEST_CASE("load_mapping_file reads a file and names it in messages") {
  const std::string path = "test_loader_mapping.jsonl";
  std::FILE* f = std::fopen(path.c_str(), "wb");
  REQUIRE(f != nullptr);
  const std::string text = k_example + "\n";
  REQUIRE(std::fwrite(text.data(), 1, text.size(), f) == text.size());
  std::fclose(f);
  const load_result r = eplb::loader::load_mapping_file(path, k_server);
  CHECK(r.ok());
  CHECK(r.value.experts_for_rank(1, 0) == std::vector<int>{1, 2});
  const load_result wrong = eplb::loader::load_mapping_file(path, expected_topology{2, 3, 3, 1});
  CHECK_THAT(wrong.error.message, Catch::StartsWith(path + ": mapping does not fit EP size 3"));
  std::remove(path.c_str());
}

TEST_CASE("loader survives mutated inputs (deterministic fuzz)") {
  std::uint64_t state = 0x9e3779b97f4a7c15ULL;
  auto next = [&state]() {  // xorshift64
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return state;
  };
  const std::string alphabet = "{}[]\",:0123456789-+.eE \\u\n\rtfnl\xEF\xBB\xBF";
  const std::vector<std::string> seeds = {
      k_example, k_example + "\n" + k_example,
      R"({"record_type": "eplb_load_meta", "a": [[1, 2], {"b": null}], "c": "\u00e9"})"
      "\n" +
          k_example};
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    std::string s = seeds[next() % seeds.size()];
    const int edits = 1 + static_cast<int>(next() % 4);
    for (int e = 0; e < edits && !s.empty(); ++e) {
      const std::size_t at = next() % s.size();
      switch (next() % 5) {
        case 0:
          s[at] = static_cast<char>(next() & 0xff);
          break;
        case 1:
          s[at] = alphabet[next() % alphabet.size()];
          break;
        case 2:
          s.erase(at, 1 + next() % 8);
          break;
        case 3:
          s.insert(at, 1, alphabet[next() % alphabet.size()]);
          break;
        default:
          s.resize(at);
          break;
      }
    }
    const load_result r = parse_mapping(s, expected_topology{}, "fuzz");
    REQUIRE(r.ok() == r.error.message.empty());
    if (!r.ok()) continue;
    ++accepted;
    // Whatever was accepted satisfies the invariants.
    const auto& m = r.value;
    for (int l = 0; l < m.num_layers(); ++l) {
      REQUIRE(m.physical_to_logical(l).size() == static_cast<std::size_t>(m.num_slots()));
      int total = 0;
      for (int e = 0; e < m.num_experts(); ++e) {
        REQUIRE(m.replica_count(l, e) >= 1);
        total += m.replica_count(l, e);
      }
      REQUIRE(total == m.num_slots());
    }
  }
  CHECK(accepted > 0);  // some mutations (e.g. in whitespace) stay valid
}
