// eplb-serving-example: the startup step of a serving binary. It loads an eplb-gen mapping with
// loader.hpp, checks it against the topology the server runs, and reports which logical experts
// this rank loads into its slots for each MoE layer. Standard library only, C++17.
//
//   eplb-serving-example --mapping m.jsonl --layers L --experts E --ep EP --rank r [--redundant R]
//
// A real server would also compare a hash of the file across ranks before using it (vLLM
// all-gathers its sha256) and then load the weights of `experts` into the rank's slots.

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "eplb/loader.hpp"

namespace {

const char* const k_usage =
    "usage: eplb-serving-example --mapping FILE --layers L --experts E --ep EP --rank R "
    "[--redundant N]\n";

// Parses a non-negative decimal int; returns false on anything else.
bool parse_int(const char* text, int& out) {
  if (text == nullptr || *text < '0' || *text > '9') return false;
  errno = 0;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (errno != 0 || *end != '\0' || value > 1000000000L) return false;
  out = static_cast<int>(value);
  return true;
}

int usage_error(const std::string& what) {
  std::fprintf(stderr, "eplb-serving-example: %s\n%s", what.c_str(), k_usage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string mapping_path;
  eplb::loader::expected_topology expect;
  int rank = -1;
  for (int i = 1; i < argc; ++i) {
    const std::string flag = argv[i];
    if (flag == "--help" || flag == "-h") {
      std::fputs(k_usage, stdout);
      return 0;
    }
    if (i + 1 >= argc) return usage_error(flag + " needs a value");
    const char* value = argv[++i];
    bool ok = true;
    if (flag == "--mapping") {
      mapping_path = value;
    } else if (flag == "--layers") {
      ok = parse_int(value, expect.num_layers) && expect.num_layers > 0;
    } else if (flag == "--experts") {
      ok = parse_int(value, expect.num_experts) && expect.num_experts > 0;
    } else if (flag == "--ep") {
      ok = parse_int(value, expect.num_ranks) && expect.num_ranks > 0;
    } else if (flag == "--redundant") {
      ok = parse_int(value, expect.num_redundant);
    } else if (flag == "--rank") {
      ok = parse_int(value, rank);
    } else {
      return usage_error("unknown option " + flag);
    }
    if (!ok) return usage_error("invalid value for " + flag + ": " + value);
  }
  if (mapping_path.empty() || expect.num_layers == 0 || expect.num_experts == 0 ||
      expect.num_ranks == 0 || rank < 0) {
    return usage_error("--mapping, --layers, --experts, --ep and --rank are required");
  }
  if (rank >= expect.num_ranks) {
    return usage_error("--rank " + std::to_string(rank) + " is not below --ep " +
                       std::to_string(expect.num_ranks));
  }

  const eplb::loader::load_result loaded = eplb::loader::load_mapping_file(mapping_path, expect);
  if (!loaded.ok()) {
    std::fprintf(stderr, "eplb-serving-example: %s\n", loaded.error.message.c_str());
    return 1;
  }
  const eplb::loader::mapping& m = loaded.value;
  const int per_rank = m.num_slots() / m.num_ranks();
  std::printf("mapping %s: %d layers, %d experts + %d redundant = %d slots, EP %d\n",
              mapping_path.c_str(), m.num_layers(), m.num_experts(), m.num_redundant(),
              m.num_slots(), m.num_ranks());
  for (int layer = 0; layer < m.num_layers(); ++layer) {
    std::printf("rank %d layer %d slots %d-%d: experts", rank, layer, rank * per_rank,
                (rank + 1) * per_rank - 1);
    for (const int expert : m.experts_for_rank(layer, rank)) std::printf(" %d", expert);
    std::printf("\n");
  }
  return 0;
}
