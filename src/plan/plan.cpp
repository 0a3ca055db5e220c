#include "eplb/plan.hpp"

#include <fmt/format.h>

#include <string>

#include "eplb/flags.hpp"
#include "eplb/limits.hpp"
#include "eplb/loader.hpp"

namespace eplb {

namespace {

// JSON string escaping for the few free-form strings in the summary (file names, model).
std::string json_string(const std::string& s) {
  std::string out = "\"";
  for (const char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          out += fmt::format("\\u{:04x}", static_cast<unsigned>(static_cast<unsigned char>(c)));
        } else {
          out += c;
        }
    }
  }
  return out + "\"";
}

// Shortest round-trip representation keeps the JSON exact and byte-stable.
std::string json_number(double x) { return fmt::format("{}", x); }

std::string json_array(const std::vector<double>& v) {
  std::string out = "[";
  for (std::size_t i = 0; i < v.size(); ++i) {
    if (i) out += ", ";
    out += json_number(v[i]);
  }
  return out + "]";
}

int pick(const std::optional<int>& flag, const char* flag_name, bool has_meta, int meta_value,
         int fallback, std::string* source) {
  if (flag) {
    *source = flag_name;
    return *flag;
  }
  if (has_meta) {
    *source = "meta";
    return meta_value;
  }
  *source = "default";
  return fallback;
}

}  // namespace

result<topology> resolve_topology(const plan_request& req, const stats_read_summary& read,
                                  topology_sources* sources) {
  topology_sources src;
  const bool meta = read.meta.has_value();
  const stats_meta m = meta ? *read.meta : stats_meta{};
  topology t;
  t.num_layers = read.num_layers;
  t.num_experts = read.num_experts;
  t.num_ranks = pick(req.ep, "--ep", meta, m.num_ranks, 0, &src.ep);
  if (!req.ep && !meta && read.num_ranks > 0) {
    // Without a meta record the records' own num_ranks is the recording EP size (as in eval).
    t.num_ranks = read.num_ranks;
    src.ep = "records";
  }
  const int redundant =
      pick(req.redundant, "--redundant", meta, m.num_redundant_experts, 0, &src.redundant);
  // In 64 bits: --redundant may be anything up to INT_MAX.
  const std::int64_t slots = std::int64_t{t.num_experts} + redundant;
  if (slots > limits::max_slots) {
    return make_error(errc::limit_exceeded, position{}, "--redundant",
                      fmt::format("num_slots={} ({} experts + {} redundant) exceeds the limit of "
                                  "{} slots per layer (docs/limits.md)",
                                  slots, t.num_experts, redundant, limits::max_slots));
  }
  t.num_slots = static_cast<int>(slots);
  t.num_groups = pick(req.groups, "--groups", meta, m.num_groups, 1, &src.groups);
  t.num_nodes = pick(req.nodes, "--nodes", meta, m.num_nodes, 1, &src.nodes);
  if (sources) *sources = src;
  if (t.num_ranks <= 0) {
    return make_error(errc::invalid_topology, position{}, "--ep",
                      "the EP size is required: the stats have no eplb_load_meta record and their "
                      "records no num_ranks");
  }
  if (status s = validate_topology(t); !s.ok()) {
    error e = s.err();
    if (src.ep == "meta" || src.redundant == "meta" || src.nodes == "meta" ||
        src.groups == "meta") {
      e.message += " (values not given as flags come from the stats' eplb_load_meta record)";
    }
    return e;
  }
  return t;
}

status validate_plan_request(const plan_request& req) {
  for (const auto& [flag, value] :
       {std::pair{flags::ep, req.ep}, std::pair{flags::redundant, req.redundant},
        std::pair{flags::groups, req.groups}, std::pair{flags::nodes, req.nodes},
        std::pair{flags::max_moves, req.max_moves}}) {
    if (status s = check_flag(flag, value); !s.ok()) return s;
  }
  if (status s = check_flag(flags::threads, req.policy.threads); !s.ok()) return s;
  if (status s = check_flag(flags::skip_layers, req.skip_layers); !s.ok()) return s;
  if (status s = check_flag(flags::max_line_bytes, static_cast<std::int64_t>(req.max_line_bytes));
      !s.ok()) {
    return s;
  }
  if (req.max_moves && req.previous.empty()) {
    return make_error(errc::invalid_argument, position{}, "--max-moves", "needs --previous");
  }
  return status::success();
}

status check_plan_size(const topology& t) {
  const std::int64_t pairs = std::int64_t{t.num_ranks} * t.num_experts;
  if (pairs > limits::max_rank_expert_pairs) {
    return make_error(
        errc::limit_exceeded, position{}, "topology",
        fmt::format("EP {} x {} experts = {} (rank, expert) pairs per layer exceed the "
                    "planner's limit of {} (docs/limits.md)",
                    t.num_ranks, t.num_experts, pairs, limits::max_rank_expert_pairs));
  }
  const std::int64_t work =
      std::int64_t{t.num_layers} * t.num_experts * (std::int64_t{t.slots_per_rank()} + t.num_ranks);
  if (work > limits::max_plan_work) {
    return make_error(errc::limit_exceeded, position{}, "topology",
                      fmt::format("{} layers x {} experts x ({} slots/rank + EP {}) = {} exceeds "
                                  "the planner's limit of {} (docs/limits.md)",
                                  t.num_layers, t.num_experts, t.slots_per_rank(), t.num_ranks,
                                  work, limits::max_plan_work));
  }
  return status::success();
}

result<plan_outcome> plan(const plan_request& req) {
  if (status s = validate_plan_request(req); !s.ok()) return s.err();
  plan_outcome out;
  // A sample of the steps (per-step planning and the held-out estimate) is kept on the way to the
  // aggregator.
  step_sampler sampler;
  if (status s = read_stats(req, &out, &sampler); !s.ok()) return s.err();
  // TensorRT-LLM writes one stats file per rank: their count is the recording EP size.
  plan_request sized = req;
  if (!req.ep && out.imported && out.imported->num_ranks > 0) sized.ep = out.imported->num_ranks;
  auto topo = resolve_topology(sized, out.read, &out.sources);
  if (!topo) return topo.err();
  if (!req.ep && sized.ep) out.sources.ep = "rank files";
  out.topo = *topo;
  if (status s = check_plan_size(out.topo); !s.ok()) return s.err();
  const weight_matrix w = to_weights(out.loads);
  policy_options popt = req.policy;
  popt.threads = effective_threads(req.policy.threads);
  if (!req.previous.empty()) {
    // The loader is the one parser of vLLM mapping files: the same rules as the serving side.
    const loader::expected_topology expect{out.topo.num_layers, out.topo.num_experts,
                                           out.topo.num_ranks, out.topo.num_redundant()};
    auto prev = loader::load_mapping_file(req.previous, expect);
    if (!prev.ok()) {
      return make_error(errc::invalid_value, position{}, "--previous", prev.error.message);
    }
    out.previous.num_layers = out.topo.num_layers;
    out.previous.num_slots = out.topo.num_slots;
    out.previous.num_experts = out.topo.num_experts;
    const std::vector<int> flat = prev.value.flat_physical_to_logical();
    out.previous.physical_to_logical.assign(flat.begin(), flat.end());
    out.has_previous = true;
    popt.previous = &out.previous;
    popt.max_moves = req.max_moves.value_or(-1);
  }
  popt.objective = req.objective;
  auto placed = plan_placement(w, &sampler.sample(), out.topo, popt, &out.info);
  if (!placed) return placed.err();
  out.result = std::move(*placed);
  if (out.has_previous) {
    // The cap holds for every policy and objective, and the moves reported are those of the
    // placement that is written.
    if (req.max_moves) {
      auto capped = cap_moves(out.result, out.previous, *req.max_moves, w, out.topo);
      if (!capped) return capped.err();
    }
    out.info.moves_per_layer = moves_per_layer(out.result, out.previous);
  }
  if (status s = validate_placement(out.result, out.topo); !s.ok()) {
    return make_error(errc::internal, position{}, "policy", "produced an invalid placement: " + s.message());
  }
  out.before = measure_imbalance(w, identity_placement(out.topo), out.topo);
  out.after = measure_imbalance(w, out.result, out.topo);
  if (out.has_previous) out.previous_imbalance = measure_imbalance(w, out.previous, out.topo);
  // The bound that allows duplicates holds for every placement, so the gap is never negative.
  bound_options bopt;
  bopt.forbid_duplicates = false;
  auto gap = measure_gap(w, out.result, out.topo, bopt);
  if (!gap) return gap.err();
  out.gap = std::move(*gap);
  return out;
}

std::string summary_json(const plan_outcome& o) {
  std::string s = "{\n";
  s += fmt::format("  \"tool\": \"eplb-gen\",\n  \"version\": {},\n", json_string(EPLB_VERSION));
  s += "  \"stats\": {\n    \"files\": [";
  for (std::size_t i = 0; i < o.read.files.size(); ++i) {
    s += (i ? ", " : "") + json_string(o.read.files[i]);
  }
  s += "],\n";
  s += fmt::format(
      "    \"format\": {},\n    \"model\": {},\n    \"has_meta\": {},\n    \"records_seen\": {},\n"
      "    \"records_used\": {},\n    \"first_step\": {},\n    \"last_step\": {},\n"
      "    \"partial_tail_bytes\": {},\n    \"aggregator\": {}\n  }},\n",
      json_string(o.imported ? stats_format_name(o.imported->format) : "vllm_jsonl"),
      json_string(o.read.meta ? o.read.meta->model : ""), o.read.meta ? "true" : "false",
      o.read.records_seen, o.read.records_selected, o.read.first_step, o.read.last_step,
      o.read.partial_tail_bytes, json_string(o.aggregator));
  s += fmt::format(
      "  \"topology\": {{\n    \"num_layers\": {},\n    \"num_experts\": {},\n"
      "    \"num_slots\": {},\n    \"num_redundant\": {},\n    \"num_ranks\": {},\n"
      "    \"slots_per_rank\": {},\n    \"num_nodes\": {},\n    \"num_groups\": {},\n"
      "    \"sources\": {{\"ep\": {}, \"redundant\": {}, \"groups\": {}, \"nodes\": {}}}\n  }},\n",
      o.topo.num_layers, o.topo.num_experts, o.topo.num_slots, o.topo.num_redundant(),
      o.topo.num_ranks, o.topo.slots_per_rank(), o.topo.num_nodes, o.topo.num_groups,
      json_string(o.sources.ep), json_string(o.sources.redundant), json_string(o.sources.groups),
      json_string(o.sources.nodes));
  s += fmt::format(
      "  \"policy\": {{\"name\": {}, \"hierarchical\": {}, \"note\": {}, \"fallback_layers\": {}}},\n",
      json_string(o.info.policy), o.info.hierarchical ? "true" : "false", json_string(o.info.note),
      o.info.fallback_layers);
  if (o.has_previous) {
    std::vector<double> moves(o.info.moves_per_layer.begin(), o.info.moves_per_layer.end());
    double total = 0;
    for (double m : moves) total += m;
    s += fmt::format(
        "  \"migration\": {{\"previous_imbalance\": {}, \"total_moves\": {}, \"moves_per_layer\": {}}},\n",
        json_number(o.previous_imbalance.overall), json_number(total), json_array(moves));
  }
  // The steps that built the mapping, so an evaluation can judge it on others.
  s += fmt::format("  \"train_steps\": {{\"first\": {}, \"last\": {}, \"records\": {}}},\n",
                   o.read.first_step, o.read.last_step, o.read.records_selected);
  s += fmt::format("  \"objective\": {{\"name\": {}, \"note\": {}}},\n",
                   json_string(o.info.objective), json_string(o.info.step_note));
  // What the plan is expected to do on steps it has not seen (see heldout_estimate).
  const heldout_estimate& h = o.info.heldout;
  if (h.available) {
    s += fmt::format(
        "  \"heldout\": {{\"available\": true, \"fit_records\": {}, \"validation_records\": {}, "
        "\"validation_samples\": {}, \"plan_mean\": {}, \"plan_p99\": {}, \"deepseek_mean\": {}, "
        "\"deepseek_p99\": {}}},\n",
        h.fit_records, h.validation_records, h.validation_samples, json_number(h.plan),
        json_number(h.plan_p99), json_number(h.deepseek), json_number(h.deepseek_p99));
  } else {
    s += fmt::format("  \"heldout\": {{\"available\": false, \"note\": {}}},\n",
                     json_string(h.note));
  }
  auto block = [&](const char* name, const imbalance_report& r, bool last) {
    s += fmt::format(
        "  \"{}\": {{\n    \"imbalance\": {},\n    \"mean_layer_imbalance\": {},\n"
        "    \"layer_imbalance\": {},\n    \"layer_max_load\": {}\n  }}{}\n",
        name, json_number(r.overall), json_number(r.mean_layer_ratio), json_array(r.layer_ratio),
        json_array(r.layer_max), last ? "" : ",");
  };
  block("before", o.before, false);
  block("after", o.after, false);
  s += fmt::format(
      "  \"bound\": {{\n    \"mean_gap\": {},\n    \"worst_gap\": {},\n    \"worst_layer\": {},\n"
      "    \"overall_gap\": {},\n    \"layer_gap\": {},\n    \"layer_bound\": {}\n  }}\n",
      json_number(o.gap.mean_gap), json_number(o.gap.worst_gap), o.gap.worst_layer,
      json_number(o.gap.overall_gap), json_array(o.gap.layer_gap), json_array(o.gap.layer_bound));
  s += "}\n";
  return s;
}

}  // namespace eplb
