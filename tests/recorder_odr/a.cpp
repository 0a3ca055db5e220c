// First translation unit: records the two steps of the vLLM example through recorder.hpp.
#include <cstdint>
#include <string>

#include "eplb/recorder.hpp"

/// Writes the example of vllm-offline-eplb.md section 5 to `path`; returns the records written.
std::uint64_t odr_record(const std::string& path) {
  eplb::recorder_options o;
  o.path = path;
  o.model = "example/moe-3e";
  o.num_layers = 2;
  o.num_slots = 4;
  o.num_ranks = 2;
  o.num_redundant_experts = 1;
  o.step_interval = 3000;
  eplb::recorder rec(o);
  const std::int64_t step_2250[] = {40, 10, 25, 30, 5, 60, 20, 5};
  const std::int64_t step_2260[] = {35, 12, 20, 33, 8, 50, 30, 7};
  rec.record_step(2250, step_2250);
  rec.record_step(2260, step_2260);
  rec.close();
  return rec.ok() ? rec.written() : 0;
}
