// Google Benchmark micro-benchmarks of stats ingest: the whole reader on an in-memory trace
// (bytes/s = JSONL bytes), and the integer-matrix scanner's SIMD and scalar paths.

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/stats.hpp"
#include "ingest_gen.hpp"
#include "stats/int_matrix.hpp"

namespace {

const eplb::bench::trace_shape* shape_of(int i) {
  return i == 0 ? &eplb::bench::deepseek_v3 : &eplb::bench::qwen3_235b;
}

// About 32 MB of trace per shape, made once.
const std::string& trace_text(int shape) {
  static std::map<int, std::string> cache;
  auto it = cache.find(shape);
  if (it != cache.end()) return it->second;
  eplb::bench::trace_writer writer(*shape_of(shape), 7);
  std::string text, line;
  while (text.size() < (std::size_t{32} << 20)) {
    writer.record(line);
    text += line;
  }
  return cache.emplace(shape, std::move(text)).first->second;
}

void BM_ingest(benchmark::State& state) {
  const std::string& text = trace_text(static_cast<int>(state.range(0)));
  eplb::stats_read_options options;
  options.threads = static_cast<int>(state.range(1));
  for (auto _ : state) {
    auto agg = eplb::make_aggregator("cpu");
    const auto st = eplb::read_vllm_stats_text(text, "bench.jsonl", options, **agg, nullptr);
    if (!st.ok()) state.SkipWithError(st.message().c_str());
    benchmark::DoNotOptimize((*agg)->finish());
  }
  state.SetBytesProcessed(static_cast<std::int64_t>(state.iterations() * text.size()));
  state.SetLabel(shape_of(static_cast<int>(state.range(0)))->name);
}
BENCHMARK(BM_ingest)
    ->ArgsProduct({{0, 1}, {1, 2}})
    ->ArgNames({"shape", "threads"})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

// One record's expert_load text, padded as the reader pads its buffers.
const std::string& load_text() {
  static std::string text;
  if (text.empty()) {
    eplb::bench::trace_writer writer(eplb::bench::deepseek_v3, 9);
    std::string line;
    writer.record(line);
    text = line.substr(line.find("\"expert_load\": ") + 15);
    text.append(128, '\0');
  }
  return text;
}

void BM_scan_matrix(benchmark::State& state) {
  const std::string& text = load_text();
  std::vector<std::int64_t> out;
  std::size_t rows = 0, cols = 0;
  auto any = [](std::int64_t) { return true; };
  for (auto _ : state) {
    const char* end = state.range(0) == 0
                          ? eplb::detail::scan_int_matrix_scalar<std::int64_t, true>(
                                text.data(), out, 0, rows, cols, any)
                          : eplb::detail::scan_int_matrix<std::int64_t, true>(text.data(), out, 0,
                                                                              rows, cols, any);
    benchmark::DoNotOptimize(end);
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * rows * cols));
  state.SetLabel(state.range(0) == 0 ? "scalar" : "simd");
}
BENCHMARK(BM_scan_matrix)->Arg(0)->Arg(1);

}  // namespace

BENCHMARK_MAIN();
