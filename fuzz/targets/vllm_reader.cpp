// vLLM stats JSONL: read_vllm_stats_text feeding the CPU aggregator, as `eplb-gen` does.
// Oracles: the outcome (message or summed matrix) does not depend on how the text was cut into
// read chunks; every error names the file and is not internal; a result respects the limits.
// With allow_partial_tail the same, and a text read without it reads the same, with no warning;
// one that only the flag lets through reads as the text before its last line.
#include <memory>
#include <string>

#include "eplb/aggregate.hpp"
#include "eplb/limits.hpp"
#include "eplb/stats.hpp"
#include "harness.hpp"

namespace eplb::fuzz {

namespace {

constexpr const char* k_name = "fuzz.jsonl";

struct outcome {
  bool ok = false;
  std::string message;
  load_matrix sums;
  std::size_t warnings = 0;
};

outcome run(const std::string& text, const stats_read_options& options) {
  outcome out;
  auto agg = make_aggregator("cpu");
  EPLB_FUZZ_CHECK(agg.ok(), agg.message());
  stats_read_summary summary;
  status st = read_vllm_stats_text(text, k_name, options, **agg, &summary);
  out.warnings = summary.warnings.size();
  if (st.ok()) {
    auto sums = (*agg)->finish();
    if (!sums.ok()) {
      st = sums.to_status();
    } else {
      out.sums = std::move(*sums);
    }
  }
  out.ok = st.ok();
  if (!st.ok()) {
    out.message = st.message();
    EPLB_FUZZ_CHECK(st.code() != errc::internal, st.message());
    EPLB_FUZZ_CHECK(names_input(st.message(), k_name), st.message());
    return out;
  }
  const auto& s = out.sums;
  EPLB_FUZZ_CHECK(s.rows() >= 1 && s.rows() <= limits::max_layers, std::to_string(s.rows()));
  EPLB_FUZZ_CHECK(s.cols() >= 1 && s.cols() <= limits::max_experts, std::to_string(s.cols()));
  EPLB_FUZZ_CHECK(summary.num_layers == s.rows() && summary.num_experts == s.cols(), "summary");
  EPLB_FUZZ_CHECK(summary.records_selected >= 1, "no record selected but success");
  EPLB_FUZZ_CHECK((s.array() >= 0).all(), "negative sum");
  return out;
}

}  // namespace

int vllm_reader(const std::uint8_t* data, std::size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  // A line limit just above the input's size: no line reaches it, and the fuzzer stays fast
  // (simdjson sizes its buffers by the limit; the default 16 MiB costs milliseconds per run).
  stats_read_options whole;
  whole.batch_bytes = size + 1;
  const outcome a = run(text, whole);

  // Tiny reads: records cross chunk boundaries and the buffer grows; same outcome required.
  stats_read_options chunked = whole;
  chunked.read_chunk_bytes = 1 + size % 67;
  const outcome b = run(text, chunked);
  EPLB_FUZZ_CHECK(a.ok == b.ok && a.message == b.message,
                  "whole: " + a.message + "\nchunked: " + b.message);
  if (a.ok) EPLB_FUZZ_CHECK(a.sums == b.sums, "sums differ between chunkings");

  // A file still being written: its incomplete last line may be ignored, nothing else.
  stats_read_options live = whole;
  live.allow_partial_tail = true;
  const outcome c = run(text, live);
  live.read_chunk_bytes = chunked.read_chunk_bytes;
  const outcome d = run(text, live);
  EPLB_FUZZ_CHECK(c.ok == d.ok && c.message == d.message,
                  "live whole: " + c.message + "\nlive chunked: " + d.message);
  if (c.ok) EPLB_FUZZ_CHECK(c.sums == d.sums, "live sums differ between chunkings");
  if (a.ok) {
    EPLB_FUZZ_CHECK(c.ok && c.sums == a.sums && c.warnings == 0, "live: " + c.message);
  } else if (c.ok) {
    const outcome e = run(text.substr(0, text.rfind('\n') + 1), whole);
    EPLB_FUZZ_CHECK(e.ok && e.sums == c.sums && c.warnings == 1,
                    "live read differs from the text before its last line: " + e.message);
  }

  // A line limit the inputs do reach, and a step range: only crashes and the generic oracles.
  stats_read_options small = whole;
  small.batch_bytes = 16 + size % 113;
  small.read_chunk_bytes = 1 + size % 29;
  small.steps.first = 0;
  small.steps.last = 2300;
  (void)run(text, small);
  return 0;
}

}  // namespace eplb::fuzz
