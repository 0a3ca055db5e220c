// The header-only mapping loader (eplb::loader::parse_mapping) a serving binary runs at startup.
// Input: a first line "LAYERS EXPERTS RANKS REDUNDANT" (the live topology, decimal, missing or bad
// numbers read as 0, REDUNDANT -1 when absent) and the mapping text after it.
// Oracles: an error names the file; an accepted mapping agrees with the expected topology and the
// limits, and its logical_to_physical is the exact inverse of physical_to_logical.
#include "eplb/loader.hpp"

#include <string>
#include <vector>

#include "eplb/limits.hpp"
#include "harness.hpp"

namespace eplb::fuzz {

int loader(const std::uint8_t* data, std::size_t size) {
  constexpr const char* name = "fuzz.jsonl";
  byte_reader in(data, size);
  const std::vector<int> ints = parse_ints(in.line(), 4);
  const auto at = [&](std::size_t i, int fallback) { return i < ints.size() ? ints[i] : fallback; };
  eplb::loader::expected_topology expect;
  expect.num_layers = at(0, 0);
  expect.num_experts = at(1, 0);
  expect.num_ranks = at(2, 0);
  expect.num_redundant = at(3, -1);
  const std::string text = in.rest();

  const eplb::loader::load_result r = eplb::loader::parse_mapping(text, expect, name);
  if (!r.ok()) {
    EPLB_FUZZ_CHECK(names_input(r.error.message, name), r.error.message);
    EPLB_FUZZ_CHECK(r.value.num_layers() == 0, "a rejected mapping is not empty");
    return 0;
  }
  const eplb::loader::mapping& m = r.value;
  const int layers = m.num_layers(), slots = m.num_slots(), experts = m.num_experts();
  EPLB_FUZZ_CHECK(layers >= 1 && layers <= limits::max_layers, std::to_string(layers));
  EPLB_FUZZ_CHECK(experts >= 1 && experts <= slots && slots <= limits::max_slots,
                  std::to_string(experts) + " " + std::to_string(slots));
  EPLB_FUZZ_CHECK(expect.num_layers == 0 || layers == expect.num_layers, "layers");
  EPLB_FUZZ_CHECK(expect.num_experts == 0 || experts == expect.num_experts, "experts");
  EPLB_FUZZ_CHECK(expect.num_redundant < 0 || m.num_redundant() == expect.num_redundant,
                  "redundant");
  EPLB_FUZZ_CHECK(expect.num_ranks == 0 || slots % expect.num_ranks == 0, "ranks");
  for (int l = 0; l < layers; ++l) {
    const std::vector<int>& row = m.physical_to_logical(l);
    EPLB_FUZZ_CHECK(row.size() == static_cast<std::size_t>(slots), "row length");
    int total = 0;
    for (int e = 0; e < experts; ++e) {
      const std::vector<int>& replicas = m.logical_to_physical(l, e);
      EPLB_FUZZ_CHECK(!replicas.empty() && replicas.size() <= 1024, "replica count");
      for (std::size_t i = 0; i < replicas.size(); ++i) {
        EPLB_FUZZ_CHECK(row[static_cast<std::size_t>(replicas[i])] == e, "inverse");
        EPLB_FUZZ_CHECK(i == 0 || replicas[i - 1] < replicas[i], "ascending slots");
      }
      total += static_cast<int>(replicas.size());
    }
    EPLB_FUZZ_CHECK(total == slots, "every slot in the inverse once");
    if (m.num_ranks() > 0) {
      std::size_t owned = 0;
      for (int rank = 0; rank < m.num_ranks(); ++rank) owned += m.experts_for_rank(l, rank).size();
      EPLB_FUZZ_CHECK(owned == static_cast<std::size_t>(slots), "ranks own every slot");
    }
  }
  return 0;
}

}  // namespace eplb::fuzz
