// First translation unit: parses a valid mapping through loader.hpp.
#include <string>
#include <vector>

#include "eplb/loader.hpp"

/// Returns the experts rank 1 loads in layer 0 of the format example, empty on failure.
std::vector<int> odr_a() {
  const std::string text =
      R"({"record_type": "eplb_initial_mapping", "version": 1, "num_redundant_experts": 1, )"
      R"("num_slots": 4, "initial_global_assignments": {"0": [0, 2, 0, 1], "1": [1, 2, 1, 0]}})";
  const eplb::loader::load_result r = eplb::loader::parse_mapping(text, {2, 3, 2, 1}, "a.jsonl");
  if (!r.ok()) return {};
  return r.value.experts_for_rank(0, 1);
}
