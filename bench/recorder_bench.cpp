// Recorder benchmark: a producer records 100,000 steps the way a serving loop would, and we
// report the producer's time per record_step call (p50 / p99 / p99.9 / max) beside the drops,
// for several sampling settings side by side. The point is that the serving step never waits on
// I/O: record_step only copies into a preallocated ring slot; the writer thread does the I/O.
//
// Usage: eplb-bench-recorder [--steps N] [--layers L] [--slots P] [--dir DIR]

#include <fmt/core.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "eplb/recorder.hpp"

namespace {

struct setting {
  const char* name;
  std::int64_t interval;
  int window;
  std::size_t capacity;
};

}  // namespace

int main(int argc, char** argv) {
  int steps = 100000, layers = 48, slots = 144;
  std::string dir = "/tmp";
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--steps")) steps = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--layers")) layers = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--slots")) slots = std::atoi(argv[i + 1]);
    if (!std::strcmp(argv[i], "--dir")) dir = argv[i + 1];
  }
  const std::size_t cells = static_cast<std::size_t>(layers) * slots;
  std::vector<std::int64_t> counts(cells);
  std::vector<std::int32_t> p2l(cells);
  for (std::size_t i = 0; i < cells; ++i) p2l[i] = static_cast<std::int32_t>(i % (slots - 16));
  const setting settings[] = {{"every step", 1, 1, 64},
                              {"every 10th step", 10, 1, 64},
                              {"window of 10", 1, 10, 64},
                              {"every step, ring of 4", 1, 1, 4}};
  fmt::print("{} steps, {} layers x {} slots per step\n\n", steps, layers, slots);
  fmt::print("| setting | p50 ns | p99 ns | p99.9 ns | max ns | recorded | dropped | file MB |\n");
  fmt::print("|---|---|---|---|---|---|---|---|\n");
  for (const setting& s : settings) {
    const std::string path = dir + "/eplb-bench-recorder-" + std::to_string(::getpid()) + ".jsonl";
    ::unlink(path.c_str());
    std::vector<double> ns;
    ns.reserve(static_cast<std::size_t>(steps));
    std::uint64_t recorded = 0, dropped = 0;
    {
      eplb::recorder_options o;
      o.path = path;
      o.model = "bench/moe";
      o.num_layers = layers;
      o.num_slots = slots;
      o.num_ranks = 8;
      o.num_redundant_experts = 16;
      o.interval = s.interval;
      o.window = s.window;
      o.capacity = s.capacity;
      eplb::recorder rec(o);
      if (!rec.ok()) {
        fmt::print(stderr, "recorder: {}\n", rec.last_error());
        return 1;
      }
      rec.set_p2l_map(p2l.data());
      std::uint64_t x = 88172645463325252ULL;
      for (int step = 0; step < steps; ++step) {
        for (auto& c : counts) {  // a cheap stand-in for the router's counters
          x ^= x << 13;
          x ^= x >> 7;
          x ^= x << 17;
          c = static_cast<std::int64_t>(x & 1023);
        }
        const auto a = std::chrono::steady_clock::now();
        rec.record_step(step, counts.data());
        const auto b = std::chrono::steady_clock::now();
        ns.push_back(std::chrono::duration<double, std::nano>(b - a).count());
      }
      rec.close();
      recorded = rec.recorded();
      dropped = rec.dropped();
    }
    std::sort(ns.begin(), ns.end());
    auto q = [&](double f) { return ns[static_cast<std::size_t>(f * (ns.size() - 1))]; };
    FILE* f = std::fopen(path.c_str(), "rb");
    double mb = 0;
    if (f) {
      std::fseek(f, 0, SEEK_END);
      mb = static_cast<double>(std::ftell(f)) / 1e6;
      std::fclose(f);
    }
    ::unlink(path.c_str());
    fmt::print("| {} | {:.0f} | {:.0f} | {:.0f} | {:.0f} | {} | {} | {:.1f} |\n", s.name, q(0.5),
               q(0.99), q(0.999), ns.back(), recorded, dropped, mb);
  }
  return 0;
}
