// `eplb-gen eval`: judge mappings on recorded steps (ideally steps that did not build them).

#include <fmt/core.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <numeric>
#include <string>

#include "commands.hpp"
#include "eplb/flags.hpp"
#include "eplb/mapping.hpp"
#include "eval_flags.hpp"
#include "outputs.hpp"

namespace eplb::cli {

namespace {

std::string range_text(const step_range& r) {
  return fmt::format("{}..{}", r.first ? std::to_string(*r.first) : "",
                     r.last ? std::to_string(*r.last) : "");
}

void print_table(const eval_result& r, const eval_context& ctx, bool per_layer) {
  const auto [lo, hi] = std::minmax_element(r.steps.begin(), r.steps.end());
  fmt::print("judged:  steps {}..{} ({} records) from {} file(s); {} layers x {} experts, EP {}\n",
             *lo, *hi, r.steps.size(), ctx.files.size(), r.topo.num_layers, r.topo.num_experts,
             r.topo.num_ranks);
  if (ctx.train_steps) {
    fmt::print("train:   steps {}{}\n", range_text(*ctx.train_steps),
               ctx.train_overlap
                   ? fmt::format(": {} judged records inside (not held out)", ctx.train_overlap)
                   : ": no judged step inside (held out)");
  }
  std::size_t width = 20;
  for (const candidate_report& c : r.candidates) width = std::max(width, c.name.size());
  const candidate_report* id = find_identity(r);
  const bool speed = ctx.expert_fraction && id;
  fmt::print("\nper-step imbalance (max / mean rank load; 1.0 is perfect)\n");
  fmt::print("{:<{}} {:>3} {:>5} {:>7} {:>7} {:>7} {:>7} {:>7} {:>9}{}\n", "mapping", width, "EP",
             "slots", "mean", "p50", "p90", "p99", "worst", "gap",
             speed ? fmt::format(" {:>11}", fmt::format("saved@f={}", *ctx.expert_fraction)) : "");
  for (const candidate_report& c : r.candidates) {
    const step_distribution& d = c.imbalance;
    fmt::print(
        "{:<{}} {:>3} {:>5} {:>7.4f} {:>7.4f} {:>7.4f} {:>7.4f} {:>7.4f} {:>9}{}\n", c.name, width,
        c.num_ranks, c.num_slots, d.mean, d.p50, d.p90, d.p99, d.worst,
        c.gap ? fmt::format("{:.2f}%", 100 * c.gap->mean) : "-",
        speed ? fmt::format(" {:>10.1f}%", 100 * predicted_time_saved(*ctx.expert_fraction, d.mean,
                                                                      id->imbalance.mean))
              : "");
  }
  if (r.bound) {
    const step_distribution& d = *r.bound;
    fmt::print("{:<{}} {:>3} {:>5} {:>7.4f} {:>7.4f} {:>7.4f} {:>7.4f} {:>7.4f}\n",
               "(per-step bound)", width, r.topo.num_ranks, r.topo.num_slots, d.mean, d.p50, d.p90,
               d.p99, d.worst);
  }
  fmt::print("\nbusiest ranks (summed load / mean rank's; share of layer-steps it was the max)\n");
  for (const candidate_report& c : r.candidates) {
    std::vector<int> order(c.rank_share.size());
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
      return c.rank_share[static_cast<std::size_t>(a)] > c.rank_share[static_cast<std::size_t>(b)];
    });
    const double steps = static_cast<double>(r.steps.size()) * r.topo.num_layers;
    std::string line;
    for (std::size_t k = 0; k < std::min<std::size_t>(3, order.size()); ++k) {
      const auto i = static_cast<std::size_t>(order[k]);
      line += fmt::format("{}rank {} {:.3f}x ({:.0f}%)", k ? ", " : "", order[k], c.rank_share[i],
                          100.0 * static_cast<double>(c.busiest_count[i]) / steps);
    }
    fmt::print("{:<{}} {}\n", c.name, width, line);
  }
  if (per_layer) {
    fmt::print("\nper-layer mean per-step imbalance\nlayer");
    for (const candidate_report& c : r.candidates) fmt::print(" {:>12.12}", c.name);
    fmt::print("\n");
    for (int l = 0; l < r.topo.num_layers; ++l) {
      fmt::print("{:5}", l);
      for (const candidate_report& c : r.candidates) {
        fmt::print(" {:>12.4f}", c.layer_mean_imbalance[static_cast<std::size_t>(l)]);
      }
      fmt::print("\n");
    }
  } else {
    fmt::print("\nworst layers (mean per-step imbalance; --per-layer prints all)\n");
    for (const candidate_report& c : r.candidates) {
      std::vector<int> order(c.layer_mean_imbalance.size());
      std::iota(order.begin(), order.end(), 0);
      std::stable_sort(order.begin(), order.end(), [&](int a, int b) {
        return c.layer_mean_imbalance[static_cast<std::size_t>(a)] >
               c.layer_mean_imbalance[static_cast<std::size_t>(b)];
      });
      std::string line;
      for (std::size_t k = 0; k < std::min<std::size_t>(3, order.size()); ++k) {
        line += fmt::format("{}layer {} {:.4f}", k ? ", " : "", order[k],
                            c.layer_mean_imbalance[static_cast<std::size_t>(order[k])]);
      }
      fmt::print("{:<{}} {}\n", c.name, width, line);
    }
  }
  if (speed) {
    fmt::print(
        "\nsaved: predicted share of step time saved vs identity if a step spends f of its time in\n"
        "expert compute under identity and that part scales with the imbalance:\n"
        "f * (1 - imbalance / identity's)\n");
  }
  std::fflush(stdout);
}

// The regression gate of --baseline: one line per judged mapping file (failures even when
// quiet), and the exit code.
int run_gate(const eval_result& r, double max_regression, bool quiet) {
  const std::optional<regression_gate> gate = judge_regression(r, max_regression);
  if (!gate) return fail("--baseline: the baseline mapping was not judged");
  for (const regression_check& c : gate->checks) {
    if (quiet && c.pass) continue;
    fmt::print(stderr,
               "gate: {} mean per-step imbalance {:.4f} vs baseline {} {:.4f}: {:+.2f}% (limit "
               "+{:.2f}%): {}\n",
               c.name, c.mean, gate->baseline, gate->baseline_mean, 100 * c.regression,
               100 * max_regression, c.pass ? "pass" : "FAIL");
  }
  if (gate->pass) return 0;
  fmt::print(stderr,
             "eplb-gen: error: a mapping is worse than the baseline by more than "
             "--max-regression {}\n",
             max_regression);
  return kExitEvalGate;
}

}  // namespace

void add_eval_flags(CLI::App& app, eval_flags& f) {
  app.add_option("--stats", f.stats, "Stats JSONL file or glob (repeatable)")->take_all();
  app.add_option("-m,--mapping", f.mappings, "Mapping file to judge (repeatable)")->take_all();
  app.add_option("--steps", f.steps, "Judge the steps in A:B (A: or :B open-ended)");
  f.split_opt =
      app.add_option("--split", f.split,
                     "Judge only the last (1 - FRACTION) of the selected steps, the ones `eplb-gen "
                     "--split FRACTION` held out (reads the stats once more to count the steps)");
  app.add_option("--train-steps", f.train_steps,
                 "Steps A:B that built the mappings: warn when judged steps fall inside");
  app.add_flag("--no-identity", f.no_identity, "Do not judge vLLM's startup layout arange(P) % E");
  app.add_flag("--recorded", f.recorded, "Also judge each record's own p2l_map");
  f.ep_opt = app.add_option("--ep", f.ep, "EP size (default: the stats' meta record)");
  f.redundant_opt =
      app.add_option("--redundant", f.redundant,
                     "Redundant slots of the identity layout and the bound (default: the first "
                     "mapping's, else the meta record's)");
  app.add_flag("--no-bound", f.no_bound, "Skip the per-step lower bound (faster)");
  f.expert_fraction_opt = app.add_option(
      "--expert-fraction", f.expert_fraction,
      "Fraction of step time in expert compute under the identity layout; prints the "
      "predicted time saved per mapping");
  app.add_flag("--per-layer", f.per_layer, "Print every layer's mean per-step imbalance");
  app.add_flag("--allow-partial-tail", f.allow_partial_tail, kAllowPartialTailHelp);
  app.add_flag("-q,--quiet", f.quiet, "Print nothing but errors and warnings");
}

std::vector<named_path> eval_inputs(const eval_flags& f) {
  std::vector<named_path> in = stats_inputs(f.stats);
  for (const std::string& m : f.mappings) in.push_back(named_path{"-m", m});
  if (!f.baseline.empty()) in.push_back(named_path{"--baseline", f.baseline});
  return in;
}

std::optional<eval_run> run_eval(const eval_flags& f, const replay_options& replay, int* code) {
  *code = kExitUsage;
  if (f.stats.empty()) {
    usage_error("--stats is required");
    return std::nullopt;
  }
  const auto split = given(f.split_opt, f.split);
  const auto expert_fraction = given(f.expert_fraction_opt, f.expert_fraction);
  eval_request req;
  req.stats = f.stats;
  req.mappings = f.mappings;
  req.identity = !f.no_identity;
  req.recorded = f.recorded;
  req.ep = given(f.ep_opt, f.ep);
  req.redundant = given(f.redundant_opt, f.redundant);
  req.replay = replay;
  req.replay.bounds = !f.no_bound;
  req.allow_partial_tail = f.allow_partial_tail;
  req.baseline = f.baseline;
  for (const status& s :
       {check_flag(flags::split, split), check_flag(flags::expert_fraction, expert_fraction),
        check_flag(flags::ep, req.ep), check_flag(flags::redundant, req.redundant)}) {
    if (!s.ok()) {
      *code = fail(s.err());
      return std::nullopt;
    }
  }
  eval_context ctx;
  if (!f.steps.empty()) {
    auto r = parse_step_range(f.steps, "--steps");
    if (!r) {
      *code = fail(r.err());
      return std::nullopt;
    }
    req.steps = *r;
  }
  if (!f.train_steps.empty()) {
    auto r = parse_step_range(f.train_steps, "--train-steps");
    if (!r) {
      *code = fail(r.err());
      return std::nullopt;
    }
    ctx.train_steps = *r;
  }
  *code = kExitFailure;
  if (split) {
    auto sp = split_steps(req.stats, req.steps, *split, f.allow_partial_tail);
    if (!sp) {
      *code = fail(sp.err());
      return std::nullopt;
    }
    req.steps = sp->held_out;
    if (!ctx.train_steps) ctx.train_steps = sp->train;
  }
  ctx.expert_fraction = expert_fraction;
  if (!f.baseline.empty()) ctx.max_regression = f.max_regression;
  stats_read_summary read;
  auto res = evaluate(req, &read);
  if (!res) {
    *code = fail(res.err());
    return std::nullopt;
  }
  print_warnings(read.warnings);
  ctx.files = read.files;
  if (ctx.train_steps) {
    ctx.train_overlap = count_overlap(*res, *ctx.train_steps);
    if (ctx.train_overlap > 0) {
      fmt::print(stderr,
                 "eplb-gen: warning: {} of the {} judged records lie in the train steps {}: "
                 "these figures are not held out\n",
                 ctx.train_overlap, res->steps.size(), range_text(*ctx.train_steps));
    }
  }
  if (!f.quiet) print_table(*res, ctx, f.per_layer);
  *code = 0;
  return eval_run{std::move(*res), std::move(ctx)};
}

runner add_eval(CLI::App& app) {
  auto f = std::make_shared<eval_flags>();
  auto json = std::make_shared<std::string>();
  add_eval_flags(app, *f);
  app.add_option("--json", *json,
                 "Also write the figures as JSON to this file (for CI); '-': on stdout, no table");
  CLI::Option* baseline =
      app.add_option("--baseline", f->baseline,
                     "The mapping deployed now: judge it too, and exit 3 when a -m mapping's mean "
                     "per-step imbalance is worse than its by more than --max-regression")
          ->needs(app.get_option("--mapping"));
  app.add_option("--max-regression", f->max_regression,
                 "With --baseline: the largest relative increase accepted (0.005 = 0.5%)")
      ->check(CLI::NonNegativeNumber)
      ->needs(baseline)
      ->capture_default_str();
  return [f, json]() -> int {
    // Check the flags and the paths before the (long) replay.
    if (!json->empty() && *json != "-") {
      if (status s = check_output_paths(eval_inputs(*f), {named_path{"--json", *json}}); !s.ok()) {
        return fail(s.err());
      }
    }
    int code = 0;
    eval_flags flags = *f;
    if (*json == "-") flags.quiet = true;  // stdout carries the JSON alone
    auto run = run_eval(flags, replay_options{}, &code);
    if (!run) return code;
    // The JSON is written whatever the gate says: it is the record of why it failed.
    if (!json->empty()) {
      if (status s = write_file_atomic(*json, eval_json(run->result, run->context)); !s.ok()) {
        return fail(s.err());
      }
    }
    return f->baseline.empty() ? 0 : run_gate(run->result, f->max_regression, f->quiet);
  };
}

}  // namespace eplb::cli
