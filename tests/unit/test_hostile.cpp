// Hostile input and faults: limits, overflow-free topology checks, the JSON diagnosis of lines the
// validator rejects, and the stale temporary files of killed writers. The bad-input corpus runs
// through the real binaries in tests/e2e/bad_input_test.sh; crashes found by fuzzing are replayed
// by the fuzz_regressions test.
#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <climits>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "eplb/limits.hpp"
#include "eplb/loader.hpp"
#include "eplb/mapping.hpp"
#include "eplb/plan.hpp"
#include "eplb/stats.hpp"
#include "eplb/types.hpp"
#include "stats/json_diagnose.hpp"

using namespace eplb;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  std::string tmpl = (fs::temp_directory_path() / "eplb-hostile-XXXXXX").string();
  REQUIRE(::mkdtemp(tmpl.data()) != nullptr);
  return tmpl;
}

topology topo(int layers, int experts, int slots, int ranks) {
  return topology{layers, experts, slots, ranks, 1, 1};
}

class null_sink : public stats_sink {
 public:
  status on_record(const stats_record&) override { return status::success(); }
};

}  // namespace

TEST_CASE("hostile: validate_topology enforces the limits before any arithmetic", "[hostile]") {
  CHECK(validate_topology(topo(limits::max_layers, 4, 4, 1)).ok());
  CHECK(validate_topology(topo(limits::max_layers + 1, 4, 4, 1)).code() == errc::limit_exceeded);
  CHECK(validate_topology(topo(1, limits::max_experts + 1, limits::max_experts + 1, 1)).code() ==
        errc::limit_exceeded);
  CHECK(validate_topology(topo(1, 4, limits::max_slots + 1, 1)).code() == errc::limit_exceeded);
  CHECK(validate_topology(topo(1, 4, 4, limits::max_slots + 1)).code() == errc::limit_exceeded);
  // 4096 x 4096 cells = 2^24 is the limit itself; one slot more per layer is over it.
  CHECK(validate_topology(topo(4096, 4096, 4096, 1)).ok());
  const status cells = validate_topology(topo(4096, 4096, 4097, 1));
  CHECK(cells.code() == errc::limit_exceeded);
  CHECK_THAT(cells.message(), Catch::Contains("4096 layers x 4097 slots"));
  // Slots below experts with counts that would overflow int when subtracted.
  const status neg = validate_topology(topo(1, INT_MAX, INT_MIN, 1));
  CHECK(neg.code() == errc::limit_exceeded);  // E beyond the limit is reported first
  const status below = validate_topology(topo(1, 8, INT_MIN, 1));
  CHECK(below.code() == errc::invalid_topology);
  CHECK_THAT(below.message(), Catch::Contains("got -2147483656"));  // INT_MIN - 8, exact
}

TEST_CASE("hostile: the suggested --redundant is computed, not searched", "[hostile]") {
  // E = 3, R = 0, EP = 65536: the next valid R is 65533 (3 + 65533 = 65536), found by a formula;
  // the old loop took up to EP steps and overflowed for larger EP sizes.
  const status s = validate_topology(topo(1, 3, 3, 65536));
  REQUIRE(s.code() == errc::invalid_topology);
  CHECK_THAT(s.message(), Catch::Contains("use --redundant 65533 (smallest valid: 65533)"));
  // E = 10, R = 3, EP = 4: 13 -> next multiple of 4 is 16, so R = 6; smallest valid is 2.
  const status t = validate_topology(topo(1, 10, 13, 4));
  CHECK_THAT(t.message(), Catch::Contains("use --redundant 6 (smallest valid: 2)"));
}

TEST_CASE("hostile: resolve_topology does not overflow E + R", "[hostile]") {
  plan_request req;
  req.ep = 2;
  req.redundant = INT_MAX;
  stats_read_summary read;
  read.num_layers = 2;
  read.num_experts = 3;
  auto t = resolve_topology(req, read, nullptr);
  REQUIRE_FALSE(t.ok());
  CHECK(t.code() == errc::limit_exceeded);
  CHECK_THAT(t.message(),
             Catch::Contains("num_slots=2147483650 (3 experts + 2147483647 redundant)"));
}

TEST_CASE("hostile: the stats reader refuses shapes and ids beyond the limits", "[hostile]") {
  null_sink sink;
  stats_read_options options;
  const std::string big_id =
      R"({"record_type": "eplb_load_stats", "step": 1, "expert_load": [[1, 1]], )"
      R"("p2l_map": [[0, 65536]]})"
      "\n";
  status s = read_vllm_stats_text(big_id, "s.jsonl", options, sink, nullptr);
  CHECK(s.code() == errc::limit_exceeded);
  CHECK_THAT(s.message(), Catch::StartsWith("s.jsonl:1: p2l_map: layer 0, slot 1:"));
  const std::string max_id =
      R"({"record_type": "eplb_load_meta", "version": 1, "num_ranks": 1, "num_groups": 1, )"
      R"("num_nodes": 1, "num_layers": 1, "num_redundant_experts": 65537})"
      "\n";
  s = read_vllm_stats_text(max_id, "m.jsonl", options, sink, nullptr);
  CHECK(s.code() == errc::limit_exceeded);
  CHECK(s.message() ==
        "m.jsonl:1: num_redundant_experts: 65537 exceeds the limit of 65536 (docs/limits.md)");
}

TEST_CASE("hostile: duplicate keys and a byte order mark are refused by the reader", "[hostile]") {
  null_sink sink;
  stats_read_options options;
  const std::string rec =
      R"({"record_type": "eplb_load_stats", "step": 1, "step": 2, "expert_load": [[1]], )"
      R"("p2l_map": [[0]]})"
      "\n";
  status s = read_vllm_stats_text(rec, "d.jsonl", options, sink, nullptr);
  CHECK(s.message() == "d.jsonl:1: step: appears twice in the record");
  // Keys the reader does not use may repeat (it ignores them either way).
  const std::string other =
      R"({"record_type": "eplb_load_stats", "step": 1, "x": 1, "x": 2, "expert_load": [[1]], )"
      R"("p2l_map": [[0]]})"
      "\n";
  CHECK(read_vllm_stats_text(other, "d.jsonl", options, sink, nullptr).ok());
  s = read_vllm_stats_text("\xEF\xBB\xBF" + other, "b.jsonl", options, sink, nullptr);
  CHECK(s.message() ==
        "b.jsonl:1: the file starts with a UTF-8 byte order mark; write it without one");
}

TEST_CASE("hostile: diagnose_invalid_line names the key of NaN, Infinity and deep nesting",
          "[hostile]") {
  using detail::diagnose_invalid_line;
  auto d = diagnose_invalid_line(R"({"a": [1, 2], "b": {"c": [NaN]}})", false, 1024);
  REQUIRE(d);
  CHECK(d->field == "b");  // the top-level key
  CHECK_THAT(d->what, Catch::StartsWith("NaN is not a JSON number"));
  d = diagnose_invalid_line(R"({"x": "NaN, Infinity", "y": -Infinity})", false, 1024);
  REQUIRE(d);
  CHECK(d->field == "y");  // the ones inside a string do not count
  CHECK_THAT(d->what, Catch::StartsWith("-Infinity is not"));
  CHECK_FALSE(diagnose_invalid_line(R"({"x": NaNa, "y": Infinityx})", false, 1024));
  CHECK_FALSE(diagnose_invalid_line(R"({"k\"NaN": 1, "z": [1,,2]})", false, 1024));
  d = diagnose_invalid_line(R"({"ok": [[1]], "deep": [[[[1]]]]})", true, 3);
  REQUIRE(d);
  CHECK(d->field == "deep");
  CHECK(d->what == "nested deeper than 3 levels of arrays and objects");
  CHECK_FALSE(diagnose_invalid_line(R"({"deep": [[[[1]]]]})", false, 3));  // not a depth error
}

TEST_CASE("hostile: the loader refuses topologies and mappings beyond the limits", "[hostile]") {
  const std::string text =
      R"({"record_type": "eplb_initial_mapping", "version": 1, "num_redundant_experts": 0, )"
      R"("num_slots": 65537, "initial_global_assignments": {"0": [0]}})";
  loader::expected_topology none;
  auto r = loader::parse_mapping(text, none, "m.jsonl");
  CHECK(r.error.message ==
        "m.jsonl:1:96: num_slots=65537 exceeds the limit of 65536 slots per layer");
  loader::expected_topology huge;
  huge.num_layers = 2000000000;  // would size a 16 GB table before the fix
  r = loader::parse_mapping(text, huge, "m.jsonl");
  CHECK_THAT(r.error.message, Catch::StartsWith("m.jsonl: expected topology exceeds the limits"));
}

TEST_CASE("hostile: a successful write removes stale temporary files of its target only",
          "[hostile]") {
  const fs::path dir = temp_dir();
  const std::string target = (dir / "m.jsonl").string();
  auto touch = [](const fs::path& p) { std::ofstream(p) << "partial"; };
  touch(dir / ".m.jsonl.tmp.AAAAAA");      // left by a killed run: removed
  touch(dir / ".m.jsonl.tmp.short");       // not mkstemp's six characters: kept
  touch(dir / ".other.jsonl.tmp.BBBBBB");  // another target's: kept
  touch(dir / ".m.jsonl.tmp.CCCCCC");      // held by a live writer (its flock): kept
  const int live = ::open((dir / ".m.jsonl.tmp.CCCCCC").c_str(), O_RDONLY);
  REQUIRE(live >= 0);
  REQUIRE(::flock(live, LOCK_EX) == 0);
  REQUIRE(write_file_atomic(target, "new\n").ok());
  CHECK_FALSE(fs::exists(dir / ".m.jsonl.tmp.AAAAAA"));
  CHECK(fs::exists(dir / ".m.jsonl.tmp.short"));
  CHECK(fs::exists(dir / ".other.jsonl.tmp.BBBBBB"));
  CHECK(fs::exists(dir / ".m.jsonl.tmp.CCCCCC"));
  ::close(live);  // the writer is gone now: the next write removes it
  REQUIRE(write_file_atomic(target, "newer\n").ok());
  CHECK_FALSE(fs::exists(dir / ".m.jsonl.tmp.CCCCCC"));
  CHECK(*read_file(target) == "newer\n");
  fs::remove_all(dir);
}

TEST_CASE("hostile: a cut last line followed by blanks reads the same for any read chunk",
          "[hostile]") {
  // fuzz_vllm_reader: the blanks after the last newline were still unread when the line failed,
  // so small reads called it invalid JSON and whole reads a truncated record.
  const std::string text =
      "{\"record_type\": \"eplb_load_stats\", \"step\": 1, \"expert_load\": [[1]], \"p2l\n  \n ";
  for (std::size_t chunk :
       {std::size_t{1} << 20, std::size_t{3}, std::size_t{70}, std::size_t{78}}) {
    null_sink sink;
    stats_read_options options;
    options.read_chunk_bytes = chunk;
    const status s = read_vllm_stats_text(text, "c.jsonl", options, sink, nullptr);
    INFO("chunk " << chunk);
    CHECK_THAT(s.message(), Catch::StartsWith("c.jsonl:1: truncated record"));
  }
}

TEST_CASE("hostile: the loader bounds the values of one line", "[hostile]") {
  // The default budget is cells + layer keys + 1024 values (about 2 GB of tree at most); the
  // same check with a budget of 5: the array and four numbers pass, a fifth number does not.
  CHECK(loader::detail::json_parser::default_max_values ==
        limits::max_cells + limits::max_layers + 1024);
  loader::detail::json_value v;
  loader::detail::json_parser ok("[1, 2, 3, 4]", 5);
  CHECK(ok.parse(v));
  loader::detail::json_parser over("[1, 2, 3, 4, 5]", 5);
  loader::detail::json_value w;
  CHECK_FALSE(over.parse(w));
  CHECK(over.error() == "more than 5 values in one line (docs/limits.md: at most 16777216 cells)");
  CHECK(over.error_column() == 14);  // the fifth number
}
