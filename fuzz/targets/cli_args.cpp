// What eplb-gen does with its flags before reading anything big: the range of every numeric flag
// (flags.hpp: validate_plan_request, check_flag), the topology resolution from flags and the
// stats' meta record (resolve_topology, validate_topology), the planner's size limits
// (check_plan_size), --steps (parse_step_range), --policy (parse_policy_kind), --stats-format
// (parse_stats_format); and, for a topology that passed, the policy itself and the --max-moves cap
// on small loads.
// Input lines: "EP REDUNDANT GROUPS NODES" (a token "_", or a missing one, is a flag not given;
// any integer, negative included, is a given value); "LAYERS EXPERTS HAS_META META_RANKS
// META_REDUNDANT META_GROUPS META_NODES" (what the stats reader found); the --steps text; the
// --policy text; the --stats-format text; a mode character (a: automatic, 1: on, else off);
// "MAX_MOVES THREADS SKIP_LAYERS MAX_LINE_BYTES FIRST_MOE_LAYER NUM_HIDDEN_LAYERS
// LAYER_UPDATES_PER_ITER HAS_PREVIOUS" ("_" not given); the rest: bytes that make the loads.
// Oracles: a flag is accepted exactly when it lies in its documented range, and refused with a
// usage error (invalid_argument) naming it; a resolved topology passes validate_topology, the
// limits and the planner's limits; the policy returns a placement that validate_placement
// accepts, or a non-internal error; cap_moves keeps every layer within the cap; a parsed step
// range is ordered; errors carry a message.
#include <algorithm>
#include <charconv>
#include <climits>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eplb/flags.hpp"
#include "eplb/import.hpp"
#include "eplb/limits.hpp"
#include "eplb/plan.hpp"
#include "eplb/policy.hpp"
#include "eplb/stats.hpp"
#include "eplb/types.hpp"
#include "harness.hpp"

namespace eplb::fuzz {

namespace {

// Space-separated values of a line: "_" or a token that is no integer is absent.
std::vector<std::optional<std::int64_t>> parse_flags(const std::string& line, std::size_t count) {
  std::vector<std::optional<std::int64_t>> out(count);
  std::size_t pos = 0;
  for (std::size_t i = 0; i < count && pos < line.size(); ++i) {
    while (pos < line.size() && line[pos] == ' ') ++pos;
    std::size_t end = line.find(' ', pos);
    if (end == std::string::npos) end = line.size();
    std::int64_t v = 0;
    auto [p, ec] = std::from_chars(line.data() + pos, line.data() + end, v);
    if (ec == std::errc() && p == line.data() + end && end > pos) out[i] = v;
    pos = end;
  }
  return out;
}

bool in_range(const int_flag& flag, std::int64_t v) { return v >= flag.min && v <= flag.max; }

// An int option of a request: absent, or the value (clamped to int the way CLI11 would refuse).
std::optional<int> as_int(const std::optional<std::int64_t>& v) {
  if (!v) return std::nullopt;
  return static_cast<int>(std::clamp<std::int64_t>(*v, INT32_MIN, INT32_MAX));
}

// A flag check must accept exactly its range and name the flag otherwise.
void check_one(const int_flag& flag, const std::optional<std::int64_t>& v) {
  if (!v) return;
  const status s = check_flag(flag, *v);
  EPLB_FUZZ_CHECK(s.ok() == in_range(flag, *v), std::string(flag.name) + " " + std::to_string(*v));
  if (!s.ok()) {
    EPLB_FUZZ_CHECK(s.code() == errc::invalid_argument && names_input(s.message(), flag.name),
                    s.message());
  }
}

}  // namespace

int cli_args(const std::uint8_t* data, std::size_t size) {
  byte_reader in(data, size);
  const auto flags = parse_flags(in.line(), 4);
  const auto stats = parse_ints(in.line(), 7);
  const auto at = [](const std::vector<int>& v, std::size_t i, int fallback) {
    return i < v.size() ? v[i] : fallback;
  };
  plan_request req;
  req.ep = as_int(flags[0]);
  req.redundant = as_int(flags[1]);
  req.groups = as_int(flags[2]);
  req.nodes = as_int(flags[3]);
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

  // The other numeric flags, each against its range, then the request as plan() checks it.
  const auto more = parse_flags(in.line(), 8);
  check_one(flags::ep, flags[0]);
  check_one(flags::redundant, flags[1]);
  check_one(flags::groups, flags[2]);
  check_one(flags::nodes, flags[3]);
  check_one(flags::max_moves, more[0]);
  check_one(flags::threads, more[1]);
  check_one(flags::skip_layers, more[2]);
  check_one(flags::max_line_bytes, more[3]);
  check_one(flags::first_moe_layer, more[4]);
  check_one(flags::num_hidden_layers, more[5]);
  check_one(flags::layer_updates_per_iter, more[6]);
  req.max_moves = as_int(more[0]);
  req.policy.threads = as_int(more[1]).value_or(0);
  req.skip_layers = as_int(more[2]).value_or(0);
  if (more[3] && *more[3] > 0) req.max_line_bytes = static_cast<std::size_t>(*more[3]);
  const bool has_previous = more[7].value_or(0) != 0;
  if (has_previous) req.previous = "previous.jsonl";
  const status valid = validate_plan_request(req);
  bool expect_valid = !req.max_moves || has_previous;
  for (const auto& [flag, v] :
       {std::pair{flags::ep, flags[0]}, std::pair{flags::redundant, flags[1]},
        std::pair{flags::groups, flags[2]}, std::pair{flags::nodes, flags[3]},
        std::pair{flags::max_moves, more[0]}, std::pair{flags::threads, more[1]},
        std::pair{flags::skip_layers, more[2]}}) {
    expect_valid = expect_valid && (!v || in_range(flag, *v));
  }
  if (more[3] && *more[3] > 0)
    expect_valid = expect_valid && in_range(flags::max_line_bytes, *more[3]);
  EPLB_FUZZ_CHECK(valid.ok() == expect_valid, valid.message());
  if (!valid.ok()) {
    EPLB_FUZZ_CHECK(valid.code() == errc::invalid_argument && valid.message().rfind("--", 0) == 0,
                    valid.message());
    return 0;
  }

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
  if (const status size_ok = check_plan_size(t); !size_ok.ok()) {
    EPLB_FUZZ_CHECK(size_ok.code() == errc::limit_exceeded, size_ok.message());
    return 0;
  }
  EPLB_FUZZ_CHECK(std::int64_t{t.num_ranks} * t.num_experts <= limits::max_rank_expert_pairs &&
                      std::int64_t{t.num_layers} * t.num_experts *
                              (t.slots_per_rank() + std::int64_t{t.num_ranks}) <=
                          limits::max_plan_work,
                  "planner limits");

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
  const status valid_placement = validate_placement(*placed, t);
  EPLB_FUZZ_CHECK(valid_placement.ok(), valid_placement.message());
  if (req.max_moves) {
    // The cap against vLLM's startup layout as the deployed placement.
    const placement previous = identity_placement(t);
    auto moves = cap_moves(*placed, previous, *req.max_moves, w, t);
    EPLB_FUZZ_CHECK(moves.ok(), moves.message());
    EPLB_FUZZ_CHECK(validate_placement(*placed, t).ok(), "capped placement does not validate");
    for (const int m : moves_per_layer(*placed, previous)) {
      EPLB_FUZZ_CHECK(m <= *req.max_moves, "a layer changes more slots than --max-moves");
    }
  }
  return 0;
}

}  // namespace eplb::fuzz
