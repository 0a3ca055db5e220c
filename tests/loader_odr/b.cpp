// Second translation unit: the same inline functions, used again, must link without clashes.
#include <string>

#include "eplb/loader.hpp"

/// Returns the loader's message for a mapping checked against the wrong EP size.
std::string odr_b() {
  const std::string text =
      R"({"record_type": "eplb_initial_mapping", "version": 1, "num_redundant_experts": 1, )"
      R"("num_slots": 4, "initial_global_assignments": {"0": [0, 2, 0, 1]}})";
  eplb::loader::expected_topology expect;
  expect.num_ranks = 3;
  return eplb::loader::parse_mapping(text, expect, "b.jsonl").error.message;
}
