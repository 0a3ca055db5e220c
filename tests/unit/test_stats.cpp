// Stats reader: vLLM offline-EPLB JSONL (layouts 1a/1b/1c), streaming, error reporting.

#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <new>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/stats.hpp"
#include "test_util.hpp"

namespace {

using eplb::errc;

const std::string data_dir = std::string(EPLB_TEST_DATA_DIR) + "/stats/";

// Spec §5 records (shared/formats/vllm-offline-eplb.md).
const std::string meta_line =
    R"({"record_type": "eplb_load_meta", "version": 1, "model": "example/moe-3e", "num_ranks": 2, )"
    R"("num_groups": 1, "num_nodes": 1, "num_layers": 2, "num_redundant_experts": 1})";
const std::string rec_2250 =
    R"({"record_type": "eplb_load_stats", "version": 1, "model": "example/moe-3e", "step": 2250, )"
    R"("next_rearrange": 750, "num_ranks": 2, "num_layers": 2, )"
    R"("experts_per_rank": [[0, 1], [2, 0]], )"
    R"("tokens": [[50, 55], [65, 25]], "expert_load": [[40, 10, 25, 30], [5, 60, 20, 5]], )"
    R"("p2l_map": [[0, 1, 2, 0], [0, 1, 2, 0]]})";
const std::string rec_2260 =
    R"({"record_type": "eplb_load_stats", "version": 1, "model": "example/moe-3e", "step": 2260, )"
    R"("next_rearrange": 740, "num_ranks": 2, "num_layers": 2, )"
    R"("experts_per_rank": [[0, 1], [2, 0]], )"
    R"("tokens": [[47, 53], [58, 37]], "expert_load": [[35, 12, 20, 33], [8, 50, 30, 7]], )"
    R"("p2l_map": [[0, 1, 2, 0], [0, 1, 2, 0]]})";

// A minimal (1c) stats line.
std::string rec(std::int64_t step, const std::string& load, const std::string& p2l,
                int num_ranks = 0) {
  std::string s = R"({"record_type": "eplb_load_stats", "version": 1, "step": )";
  s.append(std::to_string(step));
  if (num_ranks > 0) s.append(R"(, "num_ranks": )").append(std::to_string(num_ranks));
  s.append(R"(, "expert_load": )");
  s.append(load);
  s.append(R"(, "p2l_map": )");
  s.append(p2l);
  s.append("}");
  return s;
}

eplb::load_matrix mat(const std::vector<std::vector<std::int64_t>>& rows) {
  eplb::load_matrix m(static_cast<Eigen::Index>(rows.size()),
                      static_cast<Eigen::Index>(rows.at(0).size()));
  for (std::size_t r = 0; r < rows.size(); ++r) {
    for (std::size_t c = 0; c < rows[r].size(); ++c) {
      m(static_cast<Eigen::Index>(r), static_cast<Eigen::Index>(c)) = rows[r][c];
    }
  }
  return m;
}

using run_result = eplb::test::read_outcome;

run_result aggregate_text(const std::string& text, const std::string& name = "t.jsonl",
                          eplb::stats_read_options options = {}) {
  return eplb::test::aggregate_stats_text(text, name, options);
}

run_result aggregate_files(const std::vector<std::string>& files,
                           eplb::stats_read_options options = {}) {
  return eplb::test::aggregate_stats_files(files, options);
}

// Reads the text and returns the status (the sink only counts).
struct counting_sink : eplb::stats_sink {
  std::vector<std::int64_t> steps;
  std::vector<std::uint64_t> lines;
  std::vector<std::uint64_t> bytes;
  std::vector<int> slots;
  std::vector<const eplb::stats_meta*> metas;
  eplb::status on_record(const eplb::stats_record& r) override {
    steps.push_back(r.step);
    lines.push_back(r.where.line);
    bytes.push_back(r.where.byte);
    slots.push_back(r.num_slots);
    metas.push_back(r.meta);
    return eplb::status::success();
  }
};

eplb::status read_text(const std::string& text, const std::string& name = "t.jsonl",
                       eplb::stats_read_options options = {}) {
  counting_sink sink;
  return eplb::read_vllm_stats_text(text, name, options, sink, nullptr);
}

bool contains(const std::string& haystack, const std::string& needle) {
  return haystack.find(needle) != std::string::npos;
}

// Checks the error code and that the message carries every given piece.
#define CHECK_ERROR(status_expr, expected_code, ...) \
  do {                                               \
    const eplb::status st_ = (status_expr);          \
    INFO("message: " << st_.message());              \
    CHECK(st_.code() == (expected_code));            \
    for (const std::string piece_ : {__VA_ARGS__}) { \
      INFO("expected piece: " << piece_);            \
      CHECK(contains(st_.message(), piece_));        \
    }                                                \
  } while (0)

std::string slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

using eplb::test::temp_dir;

}  // namespace

TEST_CASE("stats: spec §5 example (meta + 2 records) aggregates to the documented load",
          "[stats]") {
  auto r = aggregate_files({data_dir + "example_1b.jsonl"});
  REQUIRE(r.st.ok());
  CHECK(r.sums == mat({{138, 22, 45}, {25, 110, 50}}));
  CHECK(r.summary.records_seen == 2);
  CHECK(r.summary.records_selected == 2);
  CHECK(r.summary.records_skipped_other == 0);
  CHECK(r.summary.first_step == 2250);
  CHECK(r.summary.last_step == 2260);
  CHECK(r.summary.num_layers == 2);
  CHECK(r.summary.num_experts == 3);
  CHECK(r.summary.num_slots == 4);
  CHECK(r.summary.num_ranks == 2);
  CHECK(r.summary.bytes == slurp(data_dir + "example_1b.jsonl").size());
  REQUIRE(r.summary.files.size() == 1);
  REQUIRE(r.summary.meta.has_value());
  CHECK(r.summary.meta->model == "example/moe-3e");
  CHECK(r.summary.meta->num_ranks == 2);
  CHECK(r.summary.meta->num_groups == 1);
  CHECK(r.summary.meta->num_nodes == 1);
  CHECK(r.summary.meta->num_layers == 2);
  CHECK(r.summary.meta->num_redundant_experts == 1);
  CHECK(r.summary.meta->where.line == 1);
}

TEST_CASE("stats: the records carry positions, shapes and their meta", "[stats]") {
  counting_sink sink;
  eplb::stats_read_summary summary;
  const std::string text = meta_line + "\n\n" + rec_2250 + "\n" + rec_2260 + "\n";
  REQUIRE(eplb::read_vllm_stats_text(text, "m.jsonl", {}, sink, &summary).ok());
  CHECK(sink.steps == std::vector<std::int64_t>{2250, 2260});
  CHECK(sink.lines == std::vector<std::uint64_t>{3, 4});
  CHECK(sink.bytes == std::vector<std::uint64_t>{meta_line.size() + 2,
                                                 meta_line.size() + 2 + rec_2250.size() + 1});
  CHECK(sink.slots == std::vector<int>{4, 4});
  REQUIRE(sink.metas.size() == 2);
  CHECK(sink.metas[0] != nullptr);
}

TEST_CASE("stats: 1a layout (records only, no meta)", "[stats]") {
  auto r = aggregate_files({data_dir + "example_1a.jsonl"});
  REQUIRE(r.st.ok());
  CHECK(r.sums == mat({{138, 22, 45}, {25, 110, 50}}));
  CHECK_FALSE(r.summary.meta.has_value());
  CHECK(r.summary.num_experts == 3);  // max(p2l) + 1
  CHECK(r.summary.num_ranks == 2);
}

TEST_CASE("stats: PR fixtures (identity records; two slots of one expert)", "[stats]") {
  auto r = aggregate_files({data_dir + "identity_1c.jsonl"});
  REQUIRE(r.st.ok());
  CHECK(r.sums == mat({{11, 2, 6, 3}, {4, 10, 3, 5}}));
  CHECK(r.summary.num_ranks == 0);  // 1c records carry no num_ranks

  auto one = aggregate_text(rec(7, "[[3, 7]]", "[[0, 0]]") + "\n");
  REQUIRE(one.st.ok());
  CHECK(one.sums == mat({{10}}));
}

TEST_CASE("stats: step range selection", "[stats]") {
  const std::string text = meta_line + "\n" + rec_2250 + "\n" + rec_2260 + "\n";
  eplb::stats_read_options options;

  options.steps = *eplb::parse_step_range("2250", "--steps");
  auto first = aggregate_text(text, "t.jsonl", options);
  REQUIRE(first.st.ok());
  CHECK(first.sums == mat({{70, 10, 25}, {10, 60, 20}}));
  CHECK(first.summary.records_seen == 2);
  CHECK(first.summary.records_selected == 1);
  CHECK(first.summary.first_step == 2250);
  CHECK(first.summary.last_step == 2250);

  options.steps = *eplb::parse_step_range("2251:", "--steps");
  auto second = aggregate_text(text, "t.jsonl", options);
  REQUIRE(second.st.ok());
  CHECK(second.sums == mat({{68, 12, 20}, {15, 50, 30}}));

  options.steps = *eplb::parse_step_range(":2260", "--steps");
  auto both = aggregate_text(text, "t.jsonl", options);
  REQUIRE(both.st.ok());
  CHECK(both.sums == mat({{138, 22, 45}, {25, 110, 50}}));

  options.steps = *eplb::parse_step_range("1:100", "--steps");
  CHECK_ERROR(read_text(text, "t.jsonl", options), errc::no_records, "1:100", "none of the 2",
              "2250..2260");

  SECTION("records outside the range are still syntax-checked") {
    options.steps = *eplb::parse_step_range("2250", "--steps");
    const std::string bad =
        meta_line + "\n" + rec_2250 + "\n" +
        R"({"record_type": "eplb_load_stats", "step": 9, "expert_load": [[1 2]], )"
        R"("p2l_map": [[0, 0]]})" +
        "\n" + rec_2260 + "\n";
    CHECK_ERROR(read_text(bad, "t.jsonl", options), errc::invalid_json,
                "t.jsonl:3:", "invalid JSON");
    const std::string bad_type =
        meta_line + "\n" +
        rec(1, "[[1, 2.5, 1, 1], [1, 1, 1, 1]]", "[[0, 1, 2, 0], [0, 1, 2, 0]]") + "\n" + rec_2250 +
        "\n";
    CHECK_ERROR(read_text(bad_type, "t.jsonl", options), errc::wrong_type,
                "t.jsonl:2:", "expert_load", "2.5");
  }
  SECTION("an appended run can be selected away") {
    options.steps = *eplb::parse_step_range("2250:2260", "--steps");
    const std::string text2 =
        meta_line + "\n" + rec_2250 + "\n" + rec_2260 + "\n" +
        rec(5, "[[1, 1, 1, 1, 1], [1, 1, 1, 1, 1]]", "[[0, 1, 2, 3, 4], [0, 1, 2, 3, 4]]") + "\n";
    auto r = aggregate_text(text2, "t.jsonl", options);
    REQUIRE(r.st.ok());
    CHECK(r.sums == mat({{138, 22, 45}, {25, 110, 50}}));
  }
}

TEST_CASE("stats: parse_step_range", "[stats]") {
  auto both = eplb::parse_step_range("10:20", "--steps");
  REQUIRE(both.ok());
  CHECK(*both->first == 10);
  CHECK(*both->last == 20);
  CHECK(both->contains(10));
  CHECK(both->contains(20));
  CHECK_FALSE(both->contains(21));
  CHECK_FALSE(both->contains(9));

  auto open_end = eplb::parse_step_range("10:", "--steps");
  REQUIRE(open_end.ok());
  CHECK(*open_end->first == 10);
  CHECK_FALSE(open_end->last.has_value());

  auto open_start = eplb::parse_step_range(":20", "--steps");
  REQUIRE(open_start.ok());
  CHECK_FALSE(open_start->first.has_value());
  CHECK(*open_start->last == 20);

  auto single = eplb::parse_step_range("2250", "--steps");
  REQUIRE(single.ok());
  CHECK(single->contains(2250));
  CHECK_FALSE(single->contains(2251));
  CHECK_FALSE(single->contains(2249));

  for (const char* bad : {"", ":", "a:b", "10:x", "1:2:3", "20:10", " 1:2", "1.5", "1:2 "}) {
    auto r = eplb::parse_step_range(bad, "--steps");
    INFO("text: '" << bad << "'");
    REQUIRE_FALSE(r.ok());
    CHECK(r.code() == errc::invalid_argument);
    CHECK(contains(r.message(), "--steps"));
  }
}

TEST_CASE("stats: several files, each with its meta, add up", "[stats]") {
  auto r = aggregate_files({data_dir + "multi/part-0.jsonl", data_dir + "multi/part-1.jsonl"});
  REQUIRE(r.st.ok());
  CHECK(r.sums == mat({{138, 22, 45}, {25, 110, 50}}));
  CHECK(r.summary.files.size() == 2);
  CHECK(r.summary.records_selected == 2);
  REQUIRE(r.summary.meta.has_value());
  CHECK(contains(r.summary.meta->where.file, "part-0.jsonl"));

  SECTION("files must agree on the number of experts") {
    temp_dir dir;
    const auto a = dir.write("a.jsonl", rec(1, "[[1, 2, 3]]", "[[0, 1, 2]]") + "\n");
    const auto b = dir.write("b.jsonl", rec(2, "[[1, 2]]", "[[0, 1]]") + "\n");
    CHECK_ERROR(aggregate_files({a, b}).st, errc::shape_mismatch, "b.jsonl:1:", "p2l_map",
                "a.jsonl:1");
  }
  SECTION("a later file's meta implies another number of experts") {
    temp_dir dir;
    const auto a = dir.write("a.jsonl", meta_line + "\n" + rec_2250 + "\n");
    // Consistent in itself (P 5 - R 1 = 4 experts, all mapped) but not with a.jsonl.
    const auto b = dir.write("b.jsonl", meta_line + "\n" +
                                            rec(5, "[[1, 1, 1, 1, 1], [1, 1, 1, 1, 1]]",
                                                "[[0, 1, 2, 3, 0], [0, 1, 2, 3, 0]]") +
                                            "\n");
    CHECK_ERROR(aggregate_files({a, b}).st, errc::shape_mismatch,
                "b.jsonl:2: num_redundant_experts:", "implies 4", "a.jsonl:2");
  }
  SECTION("files must agree on the number of layers") {
    temp_dir dir;
    const auto a = dir.write("a.jsonl", rec(1, "[[1, 2]]", "[[0, 1]]") + "\n");
    const auto b = dir.write("b.jsonl", rec(2, "[[1, 2], [3, 4]]", "[[0, 1], [0, 1]]") + "\n");
    CHECK_ERROR(aggregate_files({a, b}).st, errc::shape_mismatch, "b.jsonl:1:", "expert_load",
                "2 layers", "a.jsonl:1");
  }
  SECTION("a file without records fails even when others have some") {
    temp_dir dir;
    const auto a = dir.write("a.jsonl", rec(1, "[[1, 2]]", "[[0, 1]]") + "\n");
    const auto b = dir.write("b.jsonl", "\n");
    CHECK_ERROR(aggregate_files({a, b}).st, errc::no_records, "b.jsonl: no eplb_load_stats");
  }
  SECTION("a missing file is an io_error naming it") {
    CHECK_ERROR(aggregate_files({data_dir + "does-not-exist.jsonl"}).st, errc::io_error,
                "does-not-exist.jsonl", "cannot open");
  }
  SECTION("a file listed twice") {
    CHECK_ERROR(aggregate_files({data_dir + "example_1a.jsonl", data_dir + "example_1a.jsonl"}).st,
                errc::invalid_argument, "example_1a.jsonl: listed more than once");
  }
  SECTION("no files at all") { CHECK(aggregate_files({}).st.code() == errc::invalid_argument); }
}

TEST_CASE("stats: expand_stats_paths expands globs in byte order", "[stats]") {
  auto paths = eplb::expand_stats_paths({data_dir + "multi/part-*.jsonl", "plain.jsonl"});
  REQUIRE(paths.ok());
  REQUIRE(paths->size() == 3);
  CHECK(contains((*paths)[0], "part-0.jsonl"));
  CHECK(contains((*paths)[1], "part-1.jsonl"));
  CHECK((*paths)[2] == "plain.jsonl");

  auto r = aggregate_files(*eplb::expand_stats_paths({data_dir + "multi/*.jsonl"}));
  REQUIRE(r.st.ok());
  CHECK(r.sums == mat({{138, 22, 45}, {25, 110, 50}}));

  temp_dir dir;
  for (const char* name : {"b.jsonl", "B.jsonl", "a10.jsonl", "a2.jsonl"}) dir.write(name, "");
  auto sorted = eplb::expand_stats_paths({dir.path + "/*.jsonl"});
  REQUIRE(sorted.ok());
  REQUIRE(sorted->size() == 4);
  CHECK(contains((*sorted)[0], "/B.jsonl"));
  CHECK(contains((*sorted)[1], "/a10.jsonl"));
  CHECK(contains((*sorted)[2], "/a2.jsonl"));
  CHECK(contains((*sorted)[3], "/b.jsonl"));

  auto none = eplb::expand_stats_paths({dir.path + "/*.nothing"});
  REQUIRE_FALSE(none.ok());
  CHECK(none.code() == errc::io_error);
  CHECK(contains(none.message(), "*.nothing"));
}

TEST_CASE("stats: truncated last line is reported, not dropped", "[stats]") {
  CHECK_ERROR(aggregate_files({data_dir + "truncated.jsonl"}).st, errc::invalid_json,
              "truncated.jsonl:3: truncated record");
  // The same with a final newline, and with trailing blank lines.
  const std::string cut = rec_2250.substr(0, 100);
  CHECK_ERROR(read_text(meta_line + "\n" + rec_2250 + "\n" + cut + "\n"), errc::invalid_json,
              "t.jsonl:3: truncated record");
  CHECK_ERROR(read_text(meta_line + "\n" + rec_2250 + "\n" + cut + "\n\n  \n"), errc::invalid_json,
              "t.jsonl:3: truncated record");
  // A cut line that is not the last is plain invalid JSON.
  CHECK_ERROR(read_text(meta_line + "\n" + cut + "\n" + rec_2250 + "\n"), errc::invalid_json,
              "t.jsonl:2: invalid JSON");
}

TEST_CASE("stats: blank and whitespace-only lines are skipped", "[stats]") {
  const std::string text =
      "\n\n" + meta_line + "\n   \n\t\n" + rec_2250 + "\n\n" + rec_2260 + "\n\n\n";
  auto r = aggregate_text(text);
  REQUIRE(r.st.ok());
  CHECK(r.sums == mat({{138, 22, 45}, {25, 110, 50}}));
  // Line numbers still count the blank lines.
  const std::string bad = "\n\n" + meta_line + "\n\n" +
                          rec(1, "[[-1, 0, 0, 0], [0, 0, 0, 0]]", "[[0, 1, 2, 0], [0, 1, 2, 0]]") +
                          "\n";
  CHECK_ERROR(read_text(bad), errc::invalid_value, "t.jsonl:5: expert_load:", "negative load -1");
  // Leading spaces before a record are fine too.
  auto indented = aggregate_text("  " + rec_2250 + "\n\t" + rec_2260);
  REQUIRE(indented.st.ok());
  CHECK(indented.sums == mat({{138, 22, 45}, {25, 110, 50}}));
}

TEST_CASE("stats: lines longer than the batch are refused", "[stats]") {
  eplb::stats_read_options options;
  options.batch_bytes = 300;  // the meta line (about 170 bytes) fits, the §5 records do not
  CHECK_ERROR(read_text(meta_line + "\n" + rec_2250 + "\n", "t.jsonl", options),
              errc::limit_exceeded, "t.jsonl:2:", "limit of 300 bytes");
  // The same when the long line has to be carried across reads.
  options.read_chunk_bytes = 64;
  CHECK_ERROR(read_text(meta_line + "\n" + rec_2250 + "\n", "t.jsonl", options),
              errc::limit_exceeded, "t.jsonl:2:", "limit of 300 bytes");
  // And when it is the unterminated last line.
  CHECK_ERROR(read_text(meta_line + "\n" + rec_2250, "t.jsonl", options), errc::limit_exceeded,
              "t.jsonl:2:");
  // A batch that holds the longest line works, whatever the read size.
  options.batch_bytes = rec_2260.size();
  for (std::size_t chunk : {1, 7, 64, 4096}) {
    options.read_chunk_bytes = chunk;
    auto r =
        aggregate_text(meta_line + "\n" + rec_2250 + "\n" + rec_2260 + "\n", "t.jsonl", options);
    INFO("chunk " << chunk);
    REQUIRE(r.st.ok());
    CHECK(r.sums == mat({{138, 22, 45}, {25, 110, 50}}));
  }
  options.batch_bytes = 0;
  CHECK(read_text(rec_2250, "t.jsonl", options).code() == errc::invalid_argument);
}

TEST_CASE("stats: garbage bytes", "[stats]") {
  const std::string garbage("\x00\x01\xff\xfe garbage \x80", 15);
  CHECK_ERROR(read_text(meta_line + "\n" + garbage + "\n" + rec_2250 + "\n"), errc::invalid_json,
              "t.jsonl:2:", "invalid JSON");
  CHECK_ERROR(read_text(meta_line + "\nnot json at all\n" + rec_2250 + "\n"), errc::invalid_json,
              "t.jsonl:2:");
  // At the end of the file too: only a line that starts a record ('{') reads as truncated.
  CHECK_ERROR(read_text(meta_line + "\n" + rec_2250 + "\n" + garbage), errc::invalid_json,
              "t.jsonl:3: invalid JSON: The input is not valid UTF-8");
  CHECK_ERROR(read_text(meta_line + "\n" + rec_2250 + "\n" + rec_2260.substr(0, 40)),
              errc::invalid_json, "t.jsonl:3: truncated record");
  // Invalid UTF-8 inside a string of a later record.
  std::string bad_utf8 = rec_2260;
  bad_utf8.replace(bad_utf8.find("example/moe-3e"), 1, "\xc3\x28");
  CHECK_ERROR(read_text(meta_line + "\n" + rec_2250 + "\n" + bad_utf8 + "\n" + rec_2250 + "\n"),
              errc::invalid_json, "t.jsonl:3:", "UTF-8");
  // Trailing bytes after the record on the same line.
  CHECK_ERROR(read_text(rec_2250 + " x\n" + rec_2260 + "\n"), errc::invalid_json, "t.jsonl:1:");
  CHECK_ERROR(read_text(rec_2250 + "}\n" + rec_2260 + "\n"), errc::invalid_json, "t.jsonl:1:");
  CHECK_ERROR(read_text(rec_2250 + "\n{\n" + rec_2260 + "\n"), errc::invalid_json, "t.jsonl:2:");
  // A UTF-8 byte order mark is not JSON.
  CHECK_ERROR(read_text("\xef\xbb\xbf" + rec_2250 + "\n" + rec_2260 + "\n"), errc::invalid_json,
              "t.jsonl:1:");
}

TEST_CASE("stats: empty input", "[stats]") {
  CHECK_ERROR(aggregate_files({data_dir + "empty.jsonl"}).st, errc::no_records,
              "empty.jsonl: no eplb_load_stats records found");
  CHECK_ERROR(read_text("", "e.jsonl"), errc::no_records,
              "e.jsonl: no eplb_load_stats records found");
  CHECK_ERROR(read_text("\n \r\n\n", "e.jsonl"), errc::no_records, "e.jsonl: no eplb_load_stats");
  CHECK_ERROR(read_text(meta_line + "\n", "m.jsonl"), errc::no_records,
              "m.jsonl: no eplb_load_stats records found");
}

TEST_CASE("stats: CRLF line ends", "[stats]") {
  auto r = aggregate_files({data_dir + "example_crlf.jsonl"});
  REQUIRE(r.st.ok());
  CHECK(r.sums == mat({{138, 22, 45}, {25, 110, 50}}));
  CHECK(slurp(data_dir + "example_crlf.jsonl").find("\r\n") != std::string::npos);
  // Errors still name the right line.
  CHECK_ERROR(read_text(meta_line + "\r\n" + rec_2250 + "\r\n" + rec(1, "[[1]]", "[[0]]") + "\r\n"),
              errc::shape_mismatch, "t.jsonl:3:");
}

TEST_CASE("stats: malformed records name file, line and field", "[stats]") {
  const std::string head = meta_line + "\n" + rec_2250 + "\n";
  const std::string p2l = "[[0, 1, 2, 0], [0, 1, 2, 0]]";

  SECTION("invalid JSON in the middle") {
    CHECK_ERROR(read_text(head + R"({"record_type": "eplb_load_stats", "step": 1,, })" + "\n" +
                          rec_2260 + "\n"),
                errc::invalid_json, "t.jsonl:3: invalid JSON");
  }
  SECTION("a float in expert_load") {
    CHECK_ERROR(read_text(head + rec(1, "[[1, 2, 3, 4], [5, 6.5, 7, 8]]", p2l) + "\n"),
                errc::wrong_type, "t.jsonl:3: expert_load:", "layer 1, slot 1", "6.5");
  }
  SECTION("a string in expert_load") {
    CHECK_ERROR(read_text(head + rec(1, R"([[1, 2, "3", 4], [5, 6, 7, 8]])", p2l) + "\n"),
                errc::wrong_type, "t.jsonl:3: expert_load:", "layer 0, slot 2", "\"3\"");
  }
  SECTION("a number beyond int64") {
    CHECK_ERROR(
        read_text(head + rec(1, "[[1, 2, 3, 9223372036854775808], [5, 6, 7, 8]]", p2l) + "\n"),
        errc::wrong_type, "t.jsonl:3: expert_load:", "layer 0, slot 3", "does not fit in 64 bits");
    CHECK_ERROR(read_text(head +
                          rec(1, "[[1, 2, 3, 4], [5, 6, 7, 8]]",
                              "[[0, 1, 2, 0], [0, 1, 2, 123456789012345678901234567890]]") +
                          "\n"),
                errc::wrong_type, "t.jsonl:3: p2l_map:", "layer 1, slot 3");
  }
  SECTION("expert_load is not an array of arrays") {
    CHECK_ERROR(read_text(head + rec(1, "[1, 2, 3, 4]", p2l) + "\n"), errc::wrong_type,
                "t.jsonl:3: expert_load:", "layer 0");
    CHECK_ERROR(read_text(head + rec(1, "{}", p2l) + "\n"), errc::wrong_type,
                "t.jsonl:3: expert_load:");
  }
  SECTION("a step that is not an integer") {
    CHECK_ERROR(read_text(head + R"({"record_type": "eplb_load_stats", "step": "x", )"
                                 R"("expert_load": [[1]], "p2l_map": [[0]]})"
                                 "\n"),
                errc::wrong_type, "t.jsonl:3: step:");
  }
  SECTION("the number of layers changes") {
    CHECK_ERROR(read_text(rec_2250 + "\n" + rec(1, "[[1, 2, 3, 4]]", "[[0, 1, 2, 0]]") + "\n"),
                errc::shape_mismatch, "t.jsonl:2: expert_load:", "1 layers", "t.jsonl:1");
  }
  SECTION("the number of logical experts changes (no meta)") {
    CHECK_ERROR(
        read_text(rec_2250 + "\n" +
                  rec(1, "[[1, 1, 1, 1], [1, 1, 1, 1]]", "[[0, 1, 2, 3], [0, 1, 2, 3]]") + "\n"),
        errc::shape_mismatch, "t.jsonl:2: p2l_map:", "4 logical experts", "t.jsonl:1", "maps 3");
    CHECK_ERROR(
        read_text(rec_2250 + "\n" +
                  rec(1, "[[1, 1, 1, 1], [1, 1, 1, 1]]", "[[0, 1, 0, 1], [0, 1, 1, 0]]") + "\n"),
        errc::shape_mismatch, "t.jsonl:2: p2l_map:", "2 logical experts");
  }
  SECTION("expert_load shape differs from p2l_map shape") {
    CHECK_ERROR(read_text(head + rec(2270, "[[1, 2, 3], [4, 5, 6]]", p2l) + "\n"),
                errc::shape_mismatch, "t.jsonl:3: expert_load:", "[2][3]", "[2][4]", "2270");
  }
  SECTION("ragged rows") {
    CHECK_ERROR(read_text(head + rec(1, "[[1, 2, 3, 4], [4, 5, 6]]", p2l) + "\n"),
                errc::shape_mismatch, "t.jsonl:3: expert_load:", "layer 1 has 3 entries");
  }
  SECTION("empty matrices") {
    CHECK_ERROR(read_text(rec(1, "[]", "[]") + "\n"), errc::invalid_value,
                "t.jsonl:1: expert_load:", "empty");
    CHECK_ERROR(read_text(rec(1, "[[]]", "[[]]") + "\n"), errc::invalid_value,
                "t.jsonl:1: expert_load:", "no slots");
  }
  SECTION("a negative p2l_map value") {
    CHECK_ERROR(
        read_text(head + rec(1, "[[1, 2, 3, 4], [5, 6, 7, 8]]", "[[0, 1, 2, 0], [0, 1, 2, -1]]") +
                  "\n"),
        errc::out_of_range, "t.jsonl:3: p2l_map:", "layer 1, slot 3", "-1");
  }
  SECTION("a p2l_map value not below E = P - R of the meta") {
    CHECK_ERROR(
        read_text(meta_line + "\n" +
                  rec(1, "[[1, 2, 3, 4], [5, 6, 7, 8]]", "[[0, 1, 2, 3], [0, 1, 2, 0]]") + "\n"),
        errc::out_of_range, "t.jsonl:2: p2l_map:", "layer 0, slot 3", "id 3", "E = 3", "line 1");
  }
  SECTION("a p2l_map value beyond the first record's E (no meta)") {
    CHECK_ERROR(read_text(rec(1, "[[1, 2, 3, 4]]", "[[0, 1, 2, 0]]") + "\n" +
                          rec(2, "[[1, 2, 3, 4]]", "[[0, 1, 2, 5]]") + "\n"),
                errc::shape_mismatch, "t.jsonl:2: p2l_map:", "6 logical experts", "t.jsonl:1");
  }
  SECTION("a p2l_map row misses an expert") {
    CHECK_ERROR(
        read_text(head + rec(1, "[[1, 2, 3, 4], [5, 6, 7, 8]]", "[[0, 1, 2, 0], [0, 0, 2, 2]]") +
                  "\n"),
        errc::invalid_value, "t.jsonl:3: p2l_map:", "layer 1", "expert 1 has no slot");
    // With a meta, the first record must cover all E = P - R experts.
    CHECK_ERROR(
        read_text(meta_line + "\n" +
                  rec(1, "[[1, 2, 3, 4], [5, 6, 7, 8]]", "[[0, 1, 0, 1], [0, 1, 0, 1]]") + "\n"),
        errc::invalid_value, "t.jsonl:2: p2l_map:", "layer 0", "expert 2 has no slot");
  }
  SECTION("a negative load") {
    CHECK_ERROR(read_text(head + rec(1, "[[1, 2, 3, 4], [5, 6, -7, 8]]", p2l) + "\n"),
                errc::invalid_value, "t.jsonl:3: expert_load:", "layer 1, slot 2",
                "negative load -7");
  }
  SECTION("a meta after stats records") {
    CHECK_ERROR(read_text(rec_2250 + "\n" + meta_line + "\n" + rec_2260 + "\n"), errc::bad_sequence,
                "t.jsonl:2:", "eplb_load_meta must precede all eplb_load_stats records");
  }
  SECTION("a second meta") {
    CHECK_ERROR(read_text(meta_line + "\n\n" + meta_line + "\n" + rec_2250 + "\n"),
                errc::bad_sequence, "t.jsonl:3:", "second eplb_load_meta", "line 1");
  }
  SECTION("a second run appended under the same meta with other shapes") {
    CHECK_ERROR(aggregate_files({data_dir + "appended_run.jsonl"}).st, errc::shape_mismatch,
                "appended_run.jsonl:4: p2l_map:", "appended", "appended_run.jsonl:2", "maps 3");
  }
  SECTION("no stats records") {
    CHECK_ERROR(read_text(meta_line + "\n" + R"({"record_type": "other"})" + "\n", "n.jsonl"),
                errc::no_records, "n.jsonl: no eplb_load_stats records found");
  }
  SECTION("meta num_layers contradicts the records") {
    std::string meta3 = meta_line;
    meta3.replace(meta3.find("\"num_layers\": 2"), 15, "\"num_layers\": 3");
    CHECK_ERROR(read_text(meta3 + "\n" + rec_2250 + "\n"), errc::shape_mismatch,
                "t.jsonl:2: num_layers:", "2 layers", "num_layers = 3");
  }
  SECTION("a record's own num_layers contradicts its rows") {
    std::string r = rec_2250;
    r.replace(r.find("\"num_layers\": 2"), 15, "\"num_layers\": 5");
    CHECK_ERROR(read_text(r + "\n"), errc::shape_mismatch, "t.jsonl:1: num_layers:", "says 5");
  }
  SECTION("meta R leaves no logical expert") {
    std::string meta9 = meta_line;
    meta9.replace(meta9.find("\"num_redundant_experts\": 1"), 26, "\"num_redundant_experts\": 9");
    CHECK_ERROR(read_text(meta9 + "\n" + rec_2250 + "\n"), errc::invalid_value,
                "t.jsonl:2: num_redundant_experts:");
  }
  SECTION("meta fields") {
    CHECK_ERROR(read_text(R"({"record_type": "eplb_load_meta", "num_layers": 2})"
                          "\n" +
                          rec_2250),
                errc::missing_field, "t.jsonl:1: num_ranks:");
    std::string bad = meta_line;
    bad.replace(bad.find("\"num_nodes\": 1"), 14, "\"num_nodes\": 0");
    CHECK_ERROR(read_text(bad + "\n" + rec_2250), errc::invalid_value, "t.jsonl:1: num_nodes:");
    bad = meta_line;
    bad.replace(bad.find("\"num_ranks\": 2"), 14, "\"num_ranks\": \"2\"");
    CHECK_ERROR(read_text(bad + "\n" + rec_2250), errc::wrong_type, "t.jsonl:1: num_ranks:");
    bad = meta_line;
    bad.replace(bad.find("\"version\": 1"), 12, "\"version\": 2");
    CHECK_ERROR(read_text(bad + "\n" + rec_2250), errc::invalid_value, "t.jsonl:1: version:");
  }
  SECTION("record_type missing or not a string") {
    CHECK_ERROR(read_text(head + R"({"step": 1, "expert_load": [[1]], "p2l_map": [[0]]})"
                                 "\n"),
                errc::missing_field, "t.jsonl:3: record_type:");
    CHECK_ERROR(read_text(head + R"({"record_type": 7})"
                                 "\n"),
                errc::wrong_type, "t.jsonl:3: record_type:");
  }
  SECTION("required stats fields") {
    CHECK_ERROR(
        read_text(R"({"record_type": "eplb_load_stats", "expert_load": [[1]], "p2l_map": [[0]]})"),
        errc::missing_field, "t.jsonl:1: step:");
    CHECK_ERROR(read_text(R"({"record_type": "eplb_load_stats", "step": 1, "p2l_map": [[0]]})"),
                errc::missing_field, "t.jsonl:1: expert_load:");
    CHECK_ERROR(read_text(R"({"record_type": "eplb_load_stats", "step": 1, "expert_load": [[0]]})"),
                errc::missing_field, "t.jsonl:1: p2l_map:");
  }
  SECTION("a record that is not an object") {
    CHECK_ERROR(read_text(head + "[1, 2, 3]\n"), errc::wrong_type, "t.jsonl:3:", "JSON object");
    CHECK_ERROR(read_text(head + "42\n" + rec_2260 + "\n"), errc::wrong_type, "t.jsonl:3:");
  }
  SECTION("two records on one line") {
    CHECK_ERROR(read_text(meta_line + "\n" + rec_2250 + " " + rec_2260 + "\n"), errc::invalid_json,
                "t.jsonl:2:");
  }
  SECTION("a record continued on the next line") {
    const std::string split = rec_2250.substr(0, 200) + "\n" + rec_2250.substr(200);
    CHECK_ERROR(read_text(meta_line + "\n" + split + "\n" + rec_2260 + "\n"), errc::invalid_json,
                "t.jsonl:2:");
    CHECK_ERROR(read_text(meta_line + "\n" + split + "\n"), errc::invalid_json, "t.jsonl:2:");
  }
  SECTION("an unsupported version") {
    std::string r = rec_2250;
    r.replace(r.find("\"version\": 1"), 12, "\"version\": 3");
    CHECK_ERROR(read_text(r + "\n"), errc::invalid_value, "t.jsonl:1: version:", "got 3");
  }
}

TEST_CASE("stats: integer tokens in expert_load", "[stats]") {
  struct token_case {
    const char* token;
    errc code;
    std::int64_t value;  // expected sum of expert 0 when code is ok
  };
  const token_case cases[] = {
      {"0", errc::ok, 0},
      {"-0", errc::ok, 0},
      {"7", errc::ok, 7},
      {"12345678", errc::ok, 12345678},
      {"123456789", errc::ok, 123456789},
      {"1234567890123456789", errc::ok, 1234567890123456789},
      {"9223372036854775807", errc::ok, INT64_MAX},
      {"-9223372036854775808", errc::invalid_value, 0},
      {"-3", errc::invalid_value, 0},
      {"9223372036854775808", errc::wrong_type, 0},
      {"12345678901234567890", errc::wrong_type, 0},
      // Integral floats are counts, as vLLM's own tool reads loads (float32); others are not.
      {"1.0", errc::ok, 1},
      {"6848.0", errc::ok, 6848},
      {"1e2", errc::ok, 100},
      {"1.5", errc::wrong_type, 0},
      {"-1.0", errc::wrong_type, 0},
      {"1e19", errc::wrong_type, 0},
      {"true", errc::wrong_type, 0},
      {"null", errc::wrong_type, 0},
      {"\"5\"", errc::wrong_type, 0},
      {"[1]", errc::wrong_type, 0},
      {"00", errc::invalid_json, 0},
      {"01", errc::invalid_json, 0},
      {"+1", errc::invalid_json, 0},
      {"1 2", errc::invalid_json, 0},
      {"1.", errc::invalid_json, 0},
      {"-", errc::invalid_json, 0},
  };
  for (const auto& c : cases) {
    const std::string load = std::string("[[") + c.token + ", 1]]";
    // The token on the first line and, to exercise the last-line path, on the second.
    for (const bool last : {false, true}) {
      const std::string line = rec(1, load, "[[0, 1]]");
      const std::string text = last ? rec(0, "[[0, 0]]", "[[0, 1]]") + "\n" + line
                                    : line + "\n" + rec(0, "[[0, 0]]", "[[0, 1]]") + "\n";
      auto r = aggregate_text(text);
      INFO("token " << c.token << (last ? " (last line)" : "") << ": " << r.st.message());
      CHECK(r.st.code() == c.code);
      if (c.code == errc::ok) {
        CHECK(r.sums == mat({{c.value, 1}}));
      } else {
        CHECK(contains(r.st.message(), last ? "t.jsonl:2:" : "t.jsonl:1:"));
      }
    }
  }
  // Whitespace anywhere JSON allows it.
  auto spaced = aggregate_text(rec(1, "[ [ 5 ,\t6 ] , [7,8 ] ]", "[[0,1],[ 1 , 0 ]]") + "\n");
  REQUIRE(spaced.st.ok());
  CHECK(spaced.sums == mat({{5, 6}, {8, 7}}));
}

TEST_CASE("stats: unknown record types are skipped and counted", "[stats]") {
  const std::string other =
      R"({"record_type": "eplb_initial_mapping", "version": 1, "num_slots": 4, )"
      R"("initial_global_assignments": {"0": [0, 1, 2, 0]}})";
  const std::string text =
      meta_line + "\n" + other + "\n" + rec_2250 + "\n" + other + "\n" + rec_2260 + "\n";
  auto r = aggregate_text(text);
  REQUIRE(r.st.ok());
  CHECK(r.sums == mat({{138, 22, 45}, {25, 110, 50}}));
  CHECK(r.summary.records_skipped_other == 2);
  CHECK(r.summary.records_seen == 2);
  // A skipped record must still be valid JSON.
  CHECK_ERROR(read_text(meta_line + "\n" + R"({"record_type": "x", "a": [1, 2,]})" + "\n" +
                        rec_2250 + "\n"),
              errc::invalid_json, "t.jsonl:2:");
  CHECK_ERROR(
      read_text(meta_line + "\n" + R"({"record_type": "x", "a": [tru]})" + "\n" + rec_2250 + "\n"),
      errc::invalid_json, "t.jsonl:2:");
}

TEST_CASE("stats: field order does not matter; unknown fields are checked and ignored", "[stats]") {
  const std::string shuffled =
      R"({"p2l_map": [[0, 1, 2, 0], [0, 1, 2, 0]], "extra": {"nested": [1, "two", null, true]}, )"
      R"("expert_load": [[40, 10, 25, 30], [5, 60, 20, 5]], "step": 2250, )"
      R"("record_type": "eplb_load_stats"})";
  auto r = aggregate_text(meta_line + "\n" + shuffled + "\n" + rec_2260 + "\n");
  REQUIRE(r.st.ok());
  CHECK(r.sums == mat({{138, 22, 45}, {25, 110, 50}}));
  CHECK_ERROR(read_text(R"({"tokens": [[1 2]], "record_type": "eplb_load_stats", "step": 1, )"
                        R"("expert_load": [[1]], "p2l_map": [[0]]})"),
              errc::invalid_json, "t.jsonl:1:");
}

TEST_CASE("stats: elastic EP, P may change while L and E stay", "[stats]") {
  // An elastic rescale records its new num_ranks with the new slot count.
  const std::string text = rec(1, "[[1, 2, 3, 4]]", "[[0, 1, 2, 0]]", 2) + "\n" +
                           rec(2, "[[5, 6, 7, 8, 9, 10]]", "[[0, 1, 2, 0, 1, 2]]", 3) + "\n" +
                           rec(3, "[[1, 1, 1]]", "[[2, 1, 0]]", 1) + "\n";
  auto r = aggregate_text(text);
  REQUIRE(r.st.ok());
  CHECK(r.sums == mat({{1 + 4 + 5 + 8 + 1, 2 + 6 + 9 + 1, 3 + 7 + 10 + 1}}));
  CHECK(r.summary.num_slots == 3);  // P of the last record
  // With a meta, E = P - R of the first record; later records may use another P.
  std::string meta1 = meta_line;
  meta1.replace(meta1.find("\"num_layers\": 2"), 15, "\"num_layers\": 1");
  auto m = aggregate_text(meta1 + "\n" + text);
  REQUIRE(m.st.ok());
  CHECK(m.sums == r.sums);
  // Without a new num_ranks the slot count changing is a second run appended to the file.
  CHECK_ERROR(aggregate_text(rec(1, "[[1, 2, 3, 4]]", "[[0, 1, 2, 0]]") + "\n" +
                             rec(2, "[[5, 6, 7, 8, 9]]", "[[0, 1, 2, 0, 1]]") + "\n")
                  .st,
              errc::shape_mismatch,
              "t.jsonl:2: expert_load: the record has 5 slots per layer but the record before it "
              "(t.jsonl:1) has 4, with the same 3 logical experts and no num_ranks (a second run "
              "appended to the file? select one run with a step range; an elastic EP rescale "
              "records its new num_ranks)");
  CHECK_ERROR(aggregate_text(meta1 + "\n" + rec(1, "[[1, 2, 3, 4]]", "[[0, 1, 2, 0]]", 2) + "\n" +
                             rec(2, "[[5, 6, 7, 8, 9, 1]]", "[[0, 1, 2, 0, 1, 2]]", 2) + "\n")
                  .st,
              errc::shape_mismatch, "with the same 3 logical experts and the same num_ranks 2");
}

TEST_CASE("stats: records across read-chunk boundaries give identical results", "[stats]") {
  const std::string text = "\n" + meta_line + "\r\n\n" + rec_2250 + "\n  \n" + rec_2260 + "\r\n" +
                           R"({"record_type": "other"})" + "\n" + rec_2250;
  auto reference = aggregate_text(text);
  REQUIRE(reference.st.ok());
  CHECK(reference.sums == mat({{208, 32, 70}, {35, 170, 70}}));
  for (std::size_t chunk = 1; chunk <= 40; ++chunk) {
    eplb::stats_read_options options;
    options.read_chunk_bytes = chunk;
    options.batch_bytes = 512;
    auto r = aggregate_text(text, "t.jsonl", options);
    INFO("chunk " << chunk);
    REQUIRE(r.st.ok());
    CHECK(r.sums == reference.sums);
    CHECK(r.summary.records_selected == 3);
    CHECK(r.summary.records_skipped_other == 1);
    CHECK(r.summary.bytes == text.size());
  }
  // Errors read the same whatever the chunking.
  const std::string truncated = slurp(data_dir + "truncated.jsonl");
  const std::string bad = meta_line + "\n" + rec_2250 + "\n\n" +
                          rec(1, "[[1, 2, 3, 4], [5, 6, 7.5, 8]]", "[[0, 1, 2, 0], [0, 1, 2, 0]]") +
                          "\n" + rec_2260;
  const std::string garbage = meta_line + "\n" + rec_2250 + "\n{\"a\": [1, 2}\n" + rec_2260 + "\n";
  for (const std::string* input : {&truncated, &bad, &garbage}) {
    const std::string expected = read_text(*input).message();
    CHECK_FALSE(expected.empty());
    for (std::size_t chunk : {1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233, 377}) {
      eplb::stats_read_options options;
      options.read_chunk_bytes = chunk;
      options.batch_bytes = 512;
      INFO("chunk " << chunk);
      CHECK(read_text(*input, "t.jsonl", options).message() == expected);
    }
  }
}

TEST_CASE("stats: random streams match a direct computation for any chunk and batch size",
          "[stats]") {
  std::mt19937_64 rng(12345);
  const int layers = 3, experts = 5;
  for (int round = 0; round < 6; ++round) {
    eplb::load_matrix expected = eplb::load_matrix::Zero(layers, experts);
    std::string text;
    std::size_t longest = 0;
    const int records = 20 + static_cast<int>(rng() % 20);
    for (int i = 0; i < records; ++i) {
      const int slots = experts + static_cast<int>(rng() % 4);  // elastic P
      std::string load = "[", p2l = "[";
      for (int l = 0; l < layers; ++l) {
        load += l ? ", [" : "[";
        p2l += l ? ", [" : "[";
        for (int p = 0; p < slots; ++p) {
          // Every expert once, then random replicas.
          const int e = p < experts ? (p + l) % experts : static_cast<int>(rng() % experts);
          const std::int64_t v = static_cast<std::int64_t>(rng() % 100000);
          expected(l, e) += v;
          load += (p ? ", " : "") + std::to_string(v);
          p2l += (p ? ", " : "") + std::to_string(e);
        }
        load += "]";
        p2l += "]";
      }
      load += "]";
      p2l += "]";
      // Each slot count with its own num_ranks, as an elastic rescale records it.
      const std::string line = rec(i, load, p2l, slots);
      longest = std::max(longest, line.size());
      text += line;
      switch (rng() % 4) {
        case 0:
          text += "\r\n";
          break;
        case 1:
          text += "\n\n";
          break;
        case 2:
          text += "\n \t \n";
          break;
        default:
          text += "\n";
          break;
      }
    }
    for (std::size_t chunk :
         {std::size_t{3}, std::size_t{97}, std::size_t{1000}, longest * 3, std::size_t{1} << 20}) {
      for (std::size_t batch : {longest, longest + 1, longest * 2 + 7, std::size_t{1} << 16}) {
        eplb::stats_read_options options;
        options.read_chunk_bytes = chunk;
        options.batch_bytes = batch;
        auto r = aggregate_text(text, "r.jsonl", options);
        INFO("round " << round << " chunk " << chunk << " batch " << batch << ": "
                      << r.st.message());
        REQUIRE(r.st.ok());
        CHECK(r.sums == expected);
        CHECK(r.summary.records_selected == static_cast<std::uint64_t>(records));
      }
    }
  }
}

TEST_CASE("stats: mutated streams fail (or pass) the same way whatever the chunking", "[stats]") {
  const std::string base = meta_line + "\n" + rec_2250 + "\r\n\n" + rec_2260 + "\n" + rec_2250;
  const char inserts[] = {',', ']', '[', '{', '}', '"',  '\n',
                          ' ', '-', '1', '.', 'e', '\0', '\xff'};
  std::mt19937 rng(7);
  int failures = 0;
  for (int round = 0; round < 300; ++round) {
    std::string text = base;
    const std::size_t at = rng() % text.size();
    switch (rng() % 3) {
      case 0:
        text.erase(at, 1);
        break;
      case 1:
        text.insert(at, 1, inserts[rng() % sizeof(inserts)]);
        break;
      default:
        text[at] = inserts[rng() % sizeof(inserts)];
        break;
    }
    auto reference = aggregate_text(text);
    if (!reference.st.ok()) ++failures;
    for (std::size_t chunk : {1, 7, 64}) {
      eplb::stats_read_options options;
      options.read_chunk_bytes = chunk;
      options.batch_bytes = 512;
      auto r = aggregate_text(text, "t.jsonl", options);
      INFO("round " << round << " chunk " << chunk << ": " << reference.st.message());
      CHECK(r.st.message() == reference.st.message());
      CHECK(r.st.code() == reference.st.code());
      if (reference.st.ok() && r.st.ok()) CHECK(r.sums == reference.sums);
    }
  }
  CHECK(failures > 100);  // most single-byte mutations break a record
}

TEST_CASE("stats: files and in-memory text read identically", "[stats]") {
  for (const char* name : {"example_1b.jsonl", "example_1a.jsonl", "truncated.jsonl",
                           "appended_run.jsonl", "empty.jsonl", "example_crlf.jsonl"}) {
    const std::string path = data_dir + name;
    counting_sink a, b;
    eplb::stats_read_summary sa, sb;
    const auto st_file = eplb::read_vllm_stats({path}, {}, a, &sa);
    const auto st_text = eplb::read_vllm_stats_text(slurp(path), path, {}, b, &sb);
    INFO(name);
    CHECK(st_file.code() == st_text.code());
    CHECK(st_file.message() == st_text.message());
    CHECK(a.steps == b.steps);
    CHECK(a.lines == b.lines);
    CHECK(sa.bytes == sb.bytes);
    CHECK(sa.records_seen == sb.records_seen);
  }
}

TEST_CASE("stats: a sink failure stops the read and is returned as is", "[stats]") {
  struct failing_sink : eplb::stats_sink {
    int calls = 0;
    eplb::status on_record(const eplb::stats_record& r) override {
      if (++calls == 2) return eplb::make_error(errc::internal, r.where, "sink", "stop");
      return eplb::status::success();
    }
  } sink;
  const auto st = eplb::read_vllm_stats_text(rec_2250 + "\n" + rec_2260 + "\n" + rec_2250 + "\n",
                                             "s.jsonl", {}, sink, nullptr);
  CHECK(st.code() == errc::internal);
  CHECK(st.message() == "s.jsonl:2: sink: stop");
  CHECK(sink.calls == 2);
}

// Counts heap allocations made by this thread while enabled, to show that the reader reuses its
// buffers: reading 400 records must not allocate more than reading 4.
namespace {
thread_local bool count_allocations = false;
thread_local std::size_t allocations = 0;
}  // namespace

// A pass-through replacement of the global operators (the whole test binary uses them, so all of
// the non-aligned forms are replaced together to keep sanitizers happy); GCC cannot see that new
// and delete here pair malloc with free.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmismatched-new-delete"
void* operator new(std::size_t n) {
  if (count_allocations) ++allocations;
  if (void* p = std::malloc(n ? n : 1)) return p;
  throw std::bad_alloc();
}
void* operator new[](std::size_t n) { return ::operator new(n); }
void* operator new(std::size_t n, const std::nothrow_t&) noexcept {
  if (count_allocations) ++allocations;
  return std::malloc(n ? n : 1);
}
void* operator new[](std::size_t n, const std::nothrow_t& tag) noexcept {
  return ::operator new(n, tag);
}
void operator delete(void* p) noexcept { std::free(p); }
void operator delete(void* p, std::size_t) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete[](void* p, std::size_t) noexcept { std::free(p); }
void operator delete(void* p, const std::nothrow_t&) noexcept { std::free(p); }
void operator delete[](void* p, const std::nothrow_t&) noexcept { std::free(p); }
#pragma GCC diagnostic pop

TEST_CASE("stats: no per-record allocation in steady state", "[stats]") {
  struct summing_sink : eplb::stats_sink {
    std::int64_t total = 0;
    eplb::status on_record(const eplb::stats_record& r) override {
      for (int i = 0; i < r.num_layers * r.num_slots; ++i) total += r.expert_load[i];
      return eplb::status::success();
    }
  };
  auto allocations_for = [](int records) {
    std::string text = meta_line + "\n";
    for (int i = 0; i < records; ++i) text += (i % 2 ? rec_2250 : rec_2260) + "\n";
    summing_sink sink;
    eplb::stats_read_summary summary;
    summary.files.reserve(4);
    eplb::stats_read_options options;
    allocations = 0;
    count_allocations = true;
    const auto st = eplb::read_vllm_stats_text(text, "a.jsonl", options, sink, &summary);
    count_allocations = false;
    REQUIRE(st.ok());
    CHECK(sink.total == records * 195);  // both §5 records load 195 in total
    return allocations;
  };
  allocations_for(2);  // warm-up: one-time library set-up is not the reader's doing
  const std::size_t few = allocations_for(200);
  const std::size_t many = allocations_for(400);
  if (few == 0) {
    // Buffers are allocated at least once, so a zero means operator new is not ours here.
    WARN("heap allocations cannot be counted (operator new replaced, e.g. by valgrind): skipped");
    return;
  }
  // 200 more records: at most a few more (the line table of the chunk doubles), never one each.
  CHECK(many >= few);
  CHECK(many <= few + 3);
}
