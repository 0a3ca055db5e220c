// Writer of vLLM's `eplb_initial_mapping` v1 record. The bytes follow Python's json.dumps defaults
// (", " and ": " separators), so a file written here and one written by vLLM's reference tool
// for the same placement are identical.

#include <fmt/format.h>

#include <string>

#include "eplb/mapping.hpp"

namespace eplb {

namespace {
// vLLM's MAX_EXPERT_REDUNDANCY = 1023: a logical expert may have at most 1024 replicas.
constexpr int kMaxReplicasPerExpert = 1024;
}  // namespace

result<std::string> to_vllm_mapping(const placement& p, const topology& topo) {
  if (status s = validate_placement(p, topo); !s.ok()) return s.err();
  const position none{};
  if (topo.num_redundant() > kMaxReplicasPerExpert - 1) {
    return make_error(errc::invalid_value, none, "num_redundant_experts",
                      fmt::format("{} exceeds vLLM's limit of {}", topo.num_redundant(),
                                  kMaxReplicasPerExpert - 1));
  }
  const auto counts = replica_counts(p);
  for (std::size_t i = 0; i < counts.size(); ++i) {
    if (counts[i] > kMaxReplicasPerExpert) {
      return make_error(errc::invalid_value, none,
                        fmt::format("layer {}", i / static_cast<std::size_t>(p.num_experts)),
                        fmt::format("expert {} has {} replicas; vLLM allows at most {}",
                                    i % static_cast<std::size_t>(p.num_experts), counts[i],
                                    kMaxReplicasPerExpert));
    }
  }
  std::string out;
  out.reserve(static_cast<std::size_t>(p.num_layers) * (p.num_slots * 5 + 8) + 160);
  fmt::format_to(std::back_inserter(out),
                 "{{\"record_type\": \"eplb_initial_mapping\", \"version\": 1, "
                 "\"num_redundant_experts\": {}, \"num_slots\": {}, "
                 "\"initial_global_assignments\": {{",
                 topo.num_redundant(), p.num_slots);
  for (int l = 0; l < p.num_layers; ++l) {
    if (l > 0) out += ", ";
    fmt::format_to(std::back_inserter(out), "\"{}\": [", l);
    const std::int32_t* row = p.row(l);
    for (int s = 0; s < p.num_slots; ++s) {
      if (s > 0) out += ", ";
      fmt::format_to(std::back_inserter(out), "{}", row[s]);
    }
    out += ']';
  }
  out += "}}\n";
  return out;
}

}  // namespace eplb
