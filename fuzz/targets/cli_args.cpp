// What eplb-gen does with its flags before reading anything big: the topology resolution from
// flags and the stats' meta record (resolve_topology, validate_topology), --steps
// (parse_step_range), --policy (parse_policy_kind), --stats-format (parse_stats_format); and, for a
// topology that passed, the policy itself on small loads.
// Input lines: "EP REDUNDANT GROUPS NODES" (negative = flag not given, as the CLI's -1 default);
// "LAYERS EXPERTS HAS_META META_RANKS META_REDUNDANT META_GROUPS META_NODES" (what the stats
// reader found); the --steps text; the --policy text; the --stats-format text; a mode character
// (a: automatic, 1: on, else off); the rest: bytes that make the loads.
// Oracles: a resolved topology passes validate_topology and the limits; the policy then returns a
// placement that validate_placement accepts, or a non-internal error; a parsed step range is
// ordered; errors carry a message.
#include <optional>
#include <string>

#include "eplb/import.hpp"
#include "eplb/limits.hpp"
#include "eplb/plan.hpp"
#include "eplb/policy.hpp"
#include "eplb/stats.hpp"
#include "eplb/types.hpp"
#include "harness.hpp"

namespace eplb::fuzz {

namespace {

std::optional<int> flag(int v) { return v >= 0 ? std::optional<int>(v) : std::nullopt; }

}  // namespace

int cli_args(const std::uint8_t* data, std::size_t size) {
  byte_reader in(data, size);
  const auto flags = parse_ints(in.line(), 4);
  const auto stats = parse_ints(in.line(), 7);
  const auto at = [](const std::vector<int>& v, std::size_t i, int fallback) {
    return i < v.size() ? v[i] : fallback;
  };
  plan_request req;
  req.ep = flag(at(flags, 0, -1));
  req.redundant = flag(at(flags, 1, -1));
  req.groups = flag(at(flags, 2, -1));
  req.nodes = flag(at(flags, 3, -1));
  stats_read_summary read;
  read.num_layers = at(stats, 0, 0);
  read.num_experts = at(stats, 1, 0);
  if (at(stats, 2, 0) != 0) {
    stats_meta meta;
    meta.num_ranks = at(stats, 3, 0);
    meta.num_redundant_experts = at(stats, 4, 0);
    meta.num_groups = at(stats, 5, 1);
    meta.num_nodes = at(stats, 6, 1);
    read.meta = meta;
  }

  const std::string steps = in.line();
  auto range = parse_step_range(steps, "--steps");
  if (range.ok()) {
    EPLB_FUZZ_CHECK(!range->first || !range->last || *range->first <= *range->last, steps);
  } else {
    EPLB_FUZZ_CHECK(range.message().rfind("--steps: ", 0) == 0, range.message());
  }
  auto kind = parse_policy_kind(in.line());
  EPLB_FUZZ_CHECK(kind.ok() || !kind.message().empty(), "empty message");
  auto format = parse_stats_format(in.line());
  EPLB_FUZZ_CHECK(format.ok() || !format.message().empty(), "empty message");
  const std::string mode = in.line();

  topology_sources sources;
  auto topo = resolve_topology(req, read, &sources);
  if (!topo.ok()) {
    EPLB_FUZZ_CHECK(topo.code() == errc::invalid_topology || topo.code() == errc::limit_exceeded,
                    topo.message());
    EPLB_FUZZ_CHECK(!topo.message().empty(), "empty message");
    return 0;
  }
  const topology& t = *topo;
  EPLB_FUZZ_CHECK(validate_topology(t).ok(), "resolved topology does not validate");
  EPLB_FUZZ_CHECK(t.num_layers <= limits::max_layers && t.num_experts <= limits::max_experts &&
                      t.num_slots <= limits::max_slots &&
                      std::int64_t{t.num_layers} * t.num_slots <= limits::max_cells,
                  "limits");
  EPLB_FUZZ_CHECK(t.num_slots % t.num_ranks == 0 && t.num_slots >= t.num_experts, "shape");

  // The policy on this topology, kept small so the fuzzer stays fast.
  if (std::int64_t{t.num_layers} * t.num_slots > 512) return 0;
  const std::string loads = in.rest();
  weight_matrix w(t.num_layers, t.num_experts);
  for (Eigen::Index i = 0; i < w.size(); ++i) {
    w.data()[i] =
        loads.empty()
            ? 1.0
            : static_cast<unsigned char>(loads[static_cast<std::size_t>(i) % loads.size()]);
  }
  policy_options options;
  options.kind = policy_kind::deepseek;
  options.threads = 1;
  options.hierarchical = mode == "a"   ? hierarchical_mode::automatic
                         : mode == "1" ? hierarchical_mode::on
                                       : hierarchical_mode::off;
  plan_info info;
  auto placed = rebalance(w, t, options, &info);
  if (!placed.ok()) {
    EPLB_FUZZ_CHECK(placed.code() != errc::internal && !placed.message().empty(), placed.message());
    return 0;
  }
  const status valid = validate_placement(*placed, t);
  EPLB_FUZZ_CHECK(valid.ok(), valid.message());
  return 0;
}

}  // namespace eplb::fuzz
