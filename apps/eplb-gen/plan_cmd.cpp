// The main job: stats -> mapping, with the before/after figures on stderr.

#include <fmt/core.h>

#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "eplb/eval.hpp"
#include "eplb/flags.hpp"
#include "eplb/limits.hpp"
#include "eplb/mapping.hpp"
#include "eplb/plan.hpp"
#include "outputs.hpp"
#include "progress.hpp"

namespace eplb::cli {

namespace {

struct plan_flags {
  std::vector<std::string> stats;
  std::string steps;
  std::string stats_format = "auto";
  int skip_layers = 0;
  std::string summary;
  std::string policy = "balanced";
  std::string previous;
  int max_moves = 0;
  std::string hierarchical = "auto";
  std::string device = "cpu";
  std::string objective;  // empty: the policy's default
  double split = 0;
  int ep = 0, redundant = 0, groups = 0, nodes = 0;
  int threads = 0;
  std::int64_t max_line_bytes = limits::default_max_line_bytes;
  bool quiet = false;
  bool per_layer = false;
  bool allow_partial_tail = false;
  // Options whose absence means "from the stats" or "no limit": given() tells.
  CLI::Option *ep_opt = nullptr, *redundant_opt = nullptr, *groups_opt = nullptr,
              *nodes_opt = nullptr, *max_moves_opt = nullptr, *split_opt = nullptr;
};

void print_summary(const plan_outcome& o, bool per_layer, std::optional<int> max_moves) {
  const topology& t = o.topo;
  if (o.imported) {
    fmt::print(stderr, "stats:    {} file(s), {}, {} of {} steps used\n", o.imported->files.size(),
               stats_format_name(o.imported->format), o.imported->steps_used,
               o.imported->steps_total);
  } else {
    fmt::print(stderr, "stats:    {} file(s), {} of {} records used (steps {}..{}){}\n",
               o.read.files.size(), o.read.records_selected, o.read.records_seen, o.read.first_step,
               o.read.last_step,
               o.read.meta ? fmt::format(", model {}", printable(o.read.meta->model)) : "");
    for (const std::string& note : o.read.notes) {
      fmt::print(stderr, "stats:    note: {}\n", printable(note));
    }
  }
  fmt::print(stderr,
             "topology: {} layers x {} experts, {} slots ({} redundant), EP {} ({} slots/rank), "
             "{} node(s), {} group(s)\n",
             t.num_layers, t.num_experts, t.num_slots, t.num_redundant(), t.num_ranks,
             t.slots_per_rank(), t.num_nodes, t.num_groups);
  fmt::print(stderr, "policy:   {} ({}){}\n", o.info.policy,
             o.info.hierarchical ? "hierarchical" : "global",
             o.info.note.empty() ? "" : "; " + o.info.note);
  if (o.has_previous) {
    int total = 0;
    for (int m : o.info.moves_per_layer) total += m;
    // Counted on the placement written, against --previous.
    fmt::print(stderr, "previous: imbalance {:.4f}x; {} slot(s) change over {} layers{}\n",
               o.previous_imbalance.overall, total, o.info.moves_per_layer.size(),
               max_moves ? fmt::format(" (at most {} per layer)", *max_moves) : "");
    if (per_layer) {
      for (std::size_t l = 0; l < o.info.moves_per_layer.size(); ++l) {
        fmt::print(stderr, "layer {:3}: {} move(s)\n", l, o.info.moves_per_layer[l]);
      }
    }
  }
  fmt::print(stderr, "objective: {}{}\n", o.info.objective,
             o.info.step_note.empty() ? "" : ": " + o.info.step_note);
  if (per_layer) {
    fmt::print(stderr, "layer  before   after    gap to bound\n");
    for (std::size_t l = 0; l < o.after.layer_ratio.size(); ++l) {
      fmt::print(stderr, "{:5}  {:.4f}x  {:.4f}x  {:.2f}%\n", l, o.before.layer_ratio[l],
                 o.after.layer_ratio[l], 100 * o.gap.layer_gap[l]);
    }
  }
  // Same lines and metric as vLLM's tools/eplb/generate_static_mapping.py, so figures compare:
  // the summed loads of the planning steps ("before" is vLLM's startup layout).
  fmt::print(stderr, "planning steps, summed loads (in-sample):\n");
  fmt::print(stderr, "Imbalance before: {:.4f}x\n", o.before.overall);
  fmt::print(stderr, "Imbalance after:  {:.4f}x\n", o.after.overall);
  fmt::print(stderr,
             "Gap to lower bound: {:.2f}% overall, {:.2f}% mean over layers, worst {:.2f}% (layer "
             "{})\n",
             100 * o.gap.overall_gap, 100 * o.gap.mean_gap, 100 * o.gap.worst_gap,
             o.gap.worst_layer);
  // What the server will see: the plan's procedure judged step by step on steps it did not plan
  // on, beside vLLM's policy on the same steps.
  const heldout_estimate& h = o.info.heldout;
  if (h.available) {
    fmt::print(stderr,
               "Held-out per-step imbalance: {:.4f} (vLLM's policy {:.4f}); p99 {:.4f} ({:.4f})\n"
               "  estimate: planned on the first {} train records, judged on {} sampled steps of "
               "the last {}\n",
               h.plan, h.deepseek, h.plan_p99, h.deepseek_p99, h.fit_records, h.validation_samples,
               h.validation_records);
  } else if (!h.note.empty()) {
    fmt::print(stderr, "Held-out per-step imbalance: not estimated ({})\n", h.note);
  }
}

}  // namespace

runner add_plan(CLI::App& app) {
  auto f = std::make_shared<plan_flags>();
  app.add_option("--stats", f->stats, "Stats file, directory or glob (repeatable)")->take_all();
  app.add_option("--stats-format", f->stats_format,
                 "Stats format: auto|vllm|sglang|trtllm|matrix (files of a non-vLLM format are "
                 "summed)")->capture_default_str();
  app.add_option("--steps,--train-steps", f->steps,
                 "Inclusive step range A:B to plan on (A: or :B open-ended)");
  f->split_opt = app.add_option(
      "--split", f->split,
      "Plan on the first FRACTION of the selected steps (e.g. 0.7) and hold the rest "
      "out for `eval --split` (reads the stats once more to count the steps)");
  app.add_option("--objective", f->objective,
                 "per-step: plan for the steps themselves (default for balanced with per-step "
                 "records); sum: balance the summed loads (default for deepseek)");
  app.add_option("--skip-layers", f->skip_layers,
                 "SGLang and matrix stats: leading dense rows to drop");
  const auto out = add_output_flags(app);
  app.add_option("--summary", f->summary, "Also write the run summary as JSON to this file");
  f->ep_opt = app.add_option("--ep", f->ep, "EP size (default: the stats' meta record)");
  f->redundant_opt =
      app.add_option("--redundant", f->redundant,
                     "Redundant slots per layer (default: the stats' meta record, else 0)");
  f->groups_opt =
      app.add_option("--groups", f->groups, "Expert groups (default: meta record, else 1)");
  f->nodes_opt = app.add_option("--nodes", f->nodes, "Nodes (default: meta record, else 1)");
  app.add_option("--policy", f->policy,
                 "Placement policy: balanced (eplb-gen's own) or deepseek (vLLM's, exactly)")
      ->capture_default_str();
  app.add_option("--previous", f->previous,
                 "Deployed vLLM mapping to plan from: change as few slots as possible");
  f->max_moves_opt = app.add_option(
      "--max-moves", f->max_moves, "With --previous: most slots per layer whose expert may change");
  app.add_option("--hierarchical", f->hierarchical, "Node grouping: auto|on|off")->capture_default_str();
  app.add_option("--device", f->device, "Aggregation device: cpu|cuda|auto")->capture_default_str();
  app.add_option("--threads", f->threads, "Worker threads (0 = all cores); output is identical");
  app.add_option("--max-line-bytes", f->max_line_bytes,
                 "Longest stats line accepted (docs/limits.md)")
      ->capture_default_str();
  app.add_flag("--allow-partial-tail", f->allow_partial_tail, kAllowPartialTailHelp);
  app.add_flag("-q,--quiet", f->quiet, "Print nothing but errors");
  app.add_flag("--per-layer", f->per_layer, "Print per-layer imbalance");
  return [f, out, &app]() -> int {
    if (f->stats.empty()) {
      fmt::print(stderr, "{}", app.help());
      return usage_error("--stats is required");
    }
    plan_request req;
    req.stats = f->stats;
    req.stats_format = f->stats_format;
    req.skip_layers = f->skip_layers;
    req.device = f->device;
    req.ep = given(f->ep_opt, f->ep);
    req.redundant = given(f->redundant_opt, f->redundant);
    req.groups = given(f->groups_opt, f->groups);
    req.nodes = given(f->nodes_opt, f->nodes);
    req.policy.threads = f->threads;
    req.previous = f->previous;
    req.max_moves = given(f->max_moves_opt, f->max_moves);
    if (status s = check_flag(flags::max_line_bytes, f->max_line_bytes); !s.ok()) {
      return fail(s.err());
    }
    req.max_line_bytes = static_cast<std::size_t>(f->max_line_bytes);
    req.allow_partial_tail = f->allow_partial_tail;
    // Every flag is checked before anything is read or written.
    if (status s = validate_plan_request(req); !s.ok()) return fail(s.err());
    const auto split = given(f->split_opt, f->split);
    if (status s = check_flag(flags::split, split); !s.ok()) return fail(s.err());
    if (!f->objective.empty()) {  // unset: the policy's default
      auto objective = parse_objective(f->objective);
      if (!objective) return fail(objective.err());
      req.objective = *objective;
    }
    auto kind = parse_policy_kind(f->policy);
    if (!kind) return fail(kind.err());
    req.policy.kind = *kind;
    if (f->hierarchical == "auto") {
      req.policy.hierarchical = hierarchical_mode::automatic;
    } else if (f->hierarchical == "on") {
      req.policy.hierarchical = hierarchical_mode::on;
    } else if (f->hierarchical == "off") {
      req.policy.hierarchical = hierarchical_mode::off;
    } else {
      return usage_error("--hierarchical: expected auto, on or off, got '" + f->hierarchical + "'");
    }
    if (!f->steps.empty()) {
      auto r = parse_step_range(f->steps, "--steps");
      if (!r) return fail(r.err());
      req.steps = *r;
    }
    // No output may be an input or another output.
    auto outputs = resolve_outputs(*out);
    if (!outputs) return fail(outputs.err());
    std::vector<named_path> inputs = stats_inputs(f->stats);
    if (!f->previous.empty()) inputs.push_back(named_path{"--previous", f->previous});
    if (status s = check_output_paths(inputs, output_paths(*out, *outputs, f->summary)); !s.ok()) {
      return fail(s.err());
    }
    if (split) {
      auto sp = split_steps(req.stats, req.steps, *split, f->allow_partial_tail);
      if (!sp) return fail(sp.err());
      req.steps = sp->train;
      if (!f->quiet) {
        fmt::print(stderr, "split:    plan on steps {}..{} ({} records), held out {}..{} ({})\n",
                   *sp->train.first, *sp->train.last, sp->train_records, *sp->held_out.first,
                   *sp->held_out.last, sp->held_out_records);
      }
    }

    progress_bar bar(progress_bar::wanted(f->quiet));
    req.progress = bar.callback();
    auto outcome = plan(req);
    if (!outcome) return fail(outcome.err());
    if (!f->quiet) print_warnings(outcome->read.warnings);
    if (!f->quiet && !outcome->aggregator_info.empty()) {
      fmt::print(stderr, "device:   {}\n", outcome->aggregator_info);
    }
    // Render every output first: nothing is written when one of them cannot be.
    std::vector<rendered_file> files;
    if (status s = render_plan_outputs(*out, *outputs, *outcome, f->summary, files); !s.ok()) {
      return fail(s.err());
    }
    if (status s = write_files_atomic(files); !s.ok()) return fail(s.err());
    if (!f->quiet) {
      print_summary(*outcome, f->per_layer, req.max_moves);
      print_written(files);
    }
    return 0;
  };
}

}  // namespace eplb::cli
