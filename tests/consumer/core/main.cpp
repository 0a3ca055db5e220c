// eplb-core-consumer: plans a mapping with eplb::core and loads it back with loader.hpp, as a
// program that links the eplb library would.
//
//   eplb-core-consumer STATS.jsonl EP REDUNDANT

#include <cstdio>
#include <cstdlib>
#include <string>

#include "eplb/loader.hpp"
#include "eplb/mapping.hpp"
#include "eplb/plan.hpp"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: eplb-core-consumer STATS.jsonl EP REDUNDANT\n");
    return 2;
  }
  eplb::plan_request request;
  request.stats = {argv[1]};
  request.ep = std::atoi(argv[2]);
  request.redundant = std::atoi(argv[3]);
  auto planned = eplb::plan(request);
  if (!planned) {
    std::fprintf(stderr, "plan: %s\n", planned.message().c_str());
    return 1;
  }
  auto text = eplb::to_vllm_mapping(planned->result, planned->topo);
  if (!text) {
    std::fprintf(stderr, "mapping: %s\n", text.message().c_str());
    return 1;
  }
  const eplb::topology& t = planned->topo;
  const eplb::loader::expected_topology live{t.num_layers, t.num_experts, t.num_ranks,
                                             t.num_redundant()};
  auto loaded = eplb::loader::parse_mapping(*text, live);
  if (!loaded.ok()) {
    std::fprintf(stderr, "load: %s\n", loaded.error.message.c_str());
    return 1;
  }
  std::printf("%d layers x %d experts, EP %d, %d slots: imbalance %.4fx -> %.4fx\n",
              loaded.value.num_layers(), loaded.value.num_experts(), t.num_ranks,
              loaded.value.num_slots(), planned->before.overall, planned->after.overall);
  return 0;
}
