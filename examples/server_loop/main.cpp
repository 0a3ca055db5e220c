// eplb-server-loop-example: a C++ serving loop that records its expert loads with recorder.hpp,
// and loads the mapping eplb-gen plans from them with loader.hpp. Standard library only, C++17.
//
//   --record STATS.jsonl: simulate STEPS forward steps of a skewed MoE router under vLLM's startup
//       layout (slot p holds expert p % E), switch to a rotated layout halfway (as an online
//       rearrangement would), and record every step's per-slot counts.
//   --load MAPPING.jsonl: load an eplb-gen mapping for the same topology, print what rank R holds
//       in layer 0, and compare the expected max/mean rank load of the mapping with the startup
//       layout's on the same router.
//
// Both modes take --layers L --experts E --ep EP --redundant R [--seed S].

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "eplb/loader.hpp"
#include "eplb/recorder.hpp"

namespace {

const char* const k_usage =
    "usage: eplb-server-loop-example (--record STATS | --load MAPPING) --layers L --experts E "
    "--ep EP --redundant R [--steps N] [--rank R] [--seed S]\n";

struct options {
  std::string record, load;
  int layers = 0, experts = 0, ep = 0, redundant = -1;
  int steps = 200, rank = 0;
  std::uint64_t seed = 1;
};

bool parse_int(const char* text, long max, long& out) {
  if (text == nullptr || *text < '0' || *text > '9') return false;
  errno = 0;
  char* end = nullptr;
  const long v = std::strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || v > max) return false;
  out = v;
  return true;
}

// A small deterministic generator (splitmix64): the same seed gives the same trace everywhere,
// unlike the standard distributions, whose algorithms are implementation-defined.
struct rng {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * (1.0 / 9007199254740992.0); }
};

// The router's preference: a Zipf-like weight per logical expert, hot experts differing by layer.
double router_weight(int layer, int expert, int experts) {
  const int rank = (expert * 7 + layer * 3) % experts;
  return 1.0 / ((rank + 1.0) * (rank + 1.0) * 0.5 + 0.5);
}

// Slots of each logical expert under a map [P], ascending.
std::vector<std::vector<int>> replicas_of(const std::int32_t* p2l, int slots, int experts) {
  std::vector<std::vector<int>> out(static_cast<std::size_t>(experts));
  for (int p = 0; p < slots; ++p) out[static_cast<std::size_t>(p2l[p])].push_back(p);
  return out;
}

int record(const options& o) {
  const int slots = o.experts + o.redundant;
  eplb::recorder_options ro;
  ro.path = o.record;
  ro.model = "example/server-loop";
  ro.num_layers = o.layers;
  ro.num_slots = slots;
  ro.num_ranks = o.ep;
  ro.num_redundant_experts = o.redundant;
  ro.capacity = static_cast<std::size_t>(o.steps) + 1;  // never full: the trace stays complete
  eplb::recorder rec(ro);
  if (!rec.ok()) {
    std::fprintf(stderr, "eplb-server-loop-example: %s\n", rec.last_error().c_str());
    return 1;
  }
  // Startup layout, as vLLM: slot p holds expert p % E in every layer.
  std::vector<std::int32_t> p2l(static_cast<std::size_t>(o.layers) * slots);
  for (std::size_t i = 0; i < p2l.size(); ++i) {
    p2l[i] = static_cast<std::int32_t>(static_cast<int>(i % slots) % o.experts);
  }
  std::vector<double> cdf(static_cast<std::size_t>(o.experts));
  std::vector<std::int64_t> counts(p2l.size());
  rng gen{o.seed};
  const int top_k = 2;
  for (int step = 0; step < o.steps; ++step) {
    if (step == o.steps / 2) {
      // An online rearrangement halfway: a rotated layout. The recorder writes each record with
      // the map in force, so eplb-gen folds both halves to the same logical experts.
      for (std::size_t i = 0; i < p2l.size(); ++i) {
        p2l[i] = static_cast<std::int32_t>((static_cast<int>(i % slots) + 1) % o.experts);
      }
      rec.set_p2l_map(p2l.data());
    }
    std::fill(counts.begin(), counts.end(), 0);
    const int tokens = 256 + static_cast<int>(gen.next() % 768);
    for (int l = 0; l < o.layers; ++l) {
      double total = 0;
      for (int e = 0; e < o.experts; ++e) {
        total += router_weight(l, e, o.experts);
        cdf[static_cast<std::size_t>(e)] = total;
      }
      const std::int32_t* row = p2l.data() + static_cast<std::size_t>(l) * slots;
      const auto replicas = replicas_of(row, slots, o.experts);
      for (int t = 0; t < tokens * top_k; ++t) {
        const double u = gen.uniform() * total;
        int e = 0;
        while (e + 1 < o.experts && cdf[static_cast<std::size_t>(e)] < u) ++e;
        // Dispatch to one replica of the chosen expert (round robin over tokens).
        const auto& reps = replicas[static_cast<std::size_t>(e)];
        const int slot = reps[static_cast<std::size_t>(t) % reps.size()];
        ++counts[static_cast<std::size_t>(l) * slots + static_cast<std::size_t>(slot)];
      }
    }
    rec.record_step(step, counts.data());
  }
  if (!rec.close()) {
    std::fprintf(stderr, "eplb-server-loop-example: %s\n", rec.last_error().c_str());
    return 1;
  }
  std::printf("recorded %llu steps to %s (%llu dropped)\n",
              static_cast<unsigned long long>(rec.written()), o.record.c_str(),
              static_cast<unsigned long long>(rec.dropped()));
  return rec.dropped() == 0 ? 0 : 1;
}

// vLLM's imbalance of a layout on the router's expected load: sum over layers of the max rank
// load over the sum of the mean rank load, each expert's load split evenly over its replicas.
double imbalance(const options& o, const std::vector<std::vector<int>>& layout) {
  const int slots = o.experts + o.redundant;
  const int per_rank = slots / o.ep;
  double sum_max = 0;
  double sum_mean = 0;
  for (int l = 0; l < o.layers; ++l) {
    const std::vector<int>& row = layout[static_cast<std::size_t>(l)];
    std::vector<int> copies(static_cast<std::size_t>(o.experts), 0);
    for (const int e : row) ++copies[static_cast<std::size_t>(e)];
    std::vector<double> rank_load(static_cast<std::size_t>(o.ep), 0.0);
    double total = 0;
    for (int p = 0; p < slots; ++p) {
      const int e = row[static_cast<std::size_t>(p)];
      const double share = router_weight(l, e, o.experts) / copies[static_cast<std::size_t>(e)];
      rank_load[static_cast<std::size_t>(p / per_rank)] += share;
      total += share;
    }
    double max = 0;
    for (const double r : rank_load) max = r > max ? r : max;
    sum_max += max;
    sum_mean += total / o.ep;
  }
  return sum_max / sum_mean;
}

int load(const options& o) {
  eplb::loader::expected_topology expect;
  expect.num_layers = o.layers;
  expect.num_experts = o.experts;
  expect.num_ranks = o.ep;
  expect.num_redundant = o.redundant;
  const eplb::loader::load_result r = eplb::loader::load_mapping_file(o.load, expect);
  if (!r.ok()) {
    std::fprintf(stderr, "eplb-server-loop-example: %s\n", r.error.message.c_str());
    return 1;
  }
  const eplb::loader::mapping& m = r.value;
  std::printf("rank %d, layer 0 slots hold experts:", o.rank);
  for (const int e : m.experts_for_rank(0, o.rank)) std::printf(" %d", e);
  std::printf("\n");
  std::vector<std::vector<int>> startup(static_cast<std::size_t>(o.layers));
  std::vector<std::vector<int>> planned(static_cast<std::size_t>(o.layers));
  for (int l = 0; l < o.layers; ++l) {
    for (int p = 0; p < m.num_slots(); ++p)
      startup[static_cast<std::size_t>(l)].push_back(p % o.experts);
    planned[static_cast<std::size_t>(l)] = m.physical_to_logical(l);
  }
  std::printf("expected imbalance: startup layout %.4fx, mapping %.4fx\n", imbalance(o, startup),
              imbalance(o, planned));
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  options o;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(k_usage, stdout);
      return 0;
    }
    if (i + 1 >= argc) {
      std::fprintf(stderr, "eplb-server-loop-example: %s needs a value\n%s", flag.c_str(), k_usage);
      return 2;
    }
    const char* value = argv[++i];
    long v = 0;
    bool ok = true;
    if (flag == "--record") {
      o.record = value;
    } else if (flag == "--load") {
      o.load = value;
    } else if (flag == "--seed") {
      ok = parse_int(value, 2147483647L, v);
      o.seed = static_cast<std::uint64_t>(v);
    } else {
      ok = parse_int(value, 1000000L, v);
      int* target = flag == "--layers"      ? &o.layers
                    : flag == "--experts"   ? &o.experts
                    : flag == "--ep"        ? &o.ep
                    : flag == "--redundant" ? &o.redundant
                    : flag == "--steps"     ? &o.steps
                    : flag == "--rank"      ? &o.rank
                                            : nullptr;
      if (target == nullptr) {
        std::fprintf(stderr, "eplb-server-loop-example: unknown flag %s\n%s", flag.c_str(),
                     k_usage);
        return 2;
      }
      *target = static_cast<int>(v);
    }
    if (!ok) {
      std::fprintf(stderr, "eplb-server-loop-example: bad value for %s\n%s", flag.c_str(), k_usage);
      return 2;
    }
  }
  const bool shape_ok = o.layers > 0 && o.experts > 0 && o.ep > 0 && o.redundant >= 0 &&
                        (o.experts + o.redundant) % o.ep == 0 && o.rank < o.ep && o.steps > 0;
  if (o.record.empty() == o.load.empty() || !shape_ok) {
    std::fprintf(stderr,
                 "eplb-server-loop-example: give --record or --load, and a topology whose "
                 "E + R slots divide among the EP ranks\n%s",
                 k_usage);
    return 2;
  }
  return o.record.empty() ? load(o) : record(o);
}
