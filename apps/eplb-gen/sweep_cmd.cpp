// `eplb-gen sweep`: how many redundant slots? Plans every (EP, R) pair on the train part of the
// stats, judges it on the held-out part, adds the memory cost and recommends an R per EP.

#include <fmt/format.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "commands.hpp"
#include "eplb/flags.hpp"
#include "eplb/limits.hpp"
#include "eplb/mapping.hpp"
#include "eplb/sweep.hpp"
#include "progress.hpp"

namespace eplb::cli {

namespace {

struct sweep_flags {
  std::vector<std::string> stats;
  std::string steps;
  std::vector<std::string> eps;
  std::vector<std::string> redundant;
  double split = 0.8;
  double tolerance = 0.005;
  int groups = 1, nodes = 1;
  std::string model_config;
  double weight_bytes = 0;
  double expert_bytes = 0;
  double expert_fraction = 0;
  // Options whose value counts only when given (every value, negative ones included, is checked).
  CLI::Option *groups_given = nullptr, *nodes_given = nullptr, *weight_bytes_given = nullptr,
              *expert_bytes_given = nullptr, *expert_fraction_given = nullptr;
  std::string json;
  int threads = 0;
  std::uint64_t max_line_bytes = limits::default_max_line_bytes;
  bool allow_partial_tail = false;
  bool quiet = false;
};

// The values of a repeatable list flag ("--ep 8,16 --ep 32"); the first bad list is the error.
result<std::vector<int>> int_lists(const std::vector<std::string>& lists, const char* flag) {
  std::vector<int> out;
  for (const std::string& list : lists) {
    auto values = parse_int_list(list, flag);
    if (!values) return values.err();
    out.insert(out.end(), values->begin(), values->end());
  }
  return out;
}

std::string half_life_text(double h) {
  if (h < 0) return "the guard kept vLLM's placement (duplicates moved apart)";
  if (h == 0) return "all steps weighted alike";
  return fmt::format("recent steps weighted, half-life {:.0f}% of the window", 100 * h);
}

void print_table(const sweep_result& r) {
  fmt::print("stats:    {} file(s), {} records (steps {}..{}), {} layers x {} experts{}\n",
             r.files.size(), r.records, std::min(r.train_first, r.heldout_first),
             std::max(r.train_last, r.heldout_last), r.num_layers, r.num_experts,
             r.model.empty() ? "" : ", model " + r.model);
  fmt::print(
      "split:    plan on the first {} records (steps {}..{}), judge on the last {} (steps "
      "{}..{}): {:.3f} of the records (asked {})\n",
      r.train_records, r.train_first, r.train_last, r.heldout_records, r.heldout_first,
      r.heldout_last,
      static_cast<double>(r.train_records) /
          static_cast<double>(std::max<std::uint64_t>(r.records, 1)),
      r.split_asked);
  fmt::print("samples:  {} sampled train steps per plan, {} sampled held-out steps judge them\n",
             r.plan_samples, r.heldout_samples);
  if (r.memory) {
    const expert_memory& m = *r.memory;
    if (m.hidden_size > 0) {
      fmt::print(
          "memory:   {}: {} MoE layers of {}, one expert = 3 x {} x {} x {} B ({}) = {}; R "
          "redundant slots take R / EP x {} x {} per GPU\n",
          m.source, m.moe_layers, m.num_hidden_layers, m.hidden_size, m.moe_intermediate_size,
          m.bytes_per_weight, m.weight_type, format_bytes(m.expert_bytes),
          format_bytes(m.expert_bytes), m.moe_layers);
    } else {
      fmt::print("memory:   {}: one expert = {}; R redundant slots take R / EP x {} x {} per GPU\n",
                 m.source, format_bytes(m.expert_bytes), format_bytes(m.expert_bytes),
                 m.moe_layers);
    }
  }
  for (const sweep_point& p : r.points) {
    if (p.reference) {
      fmt::print(
          "plans:    EP {}: the default plan on the train part; the recency weighting chosen on "
          "R = {} ({}) is reused by the other R values\n",
          p.ep, p.redundant, half_life_text(p.half_life));
    }
  }
  const bool saved = r.expert_fraction.has_value();
  fmt::print("\nheld-out per-step imbalance (max / mean rank load; 1.0 is perfect)\n");
  fmt::print("{:>4} {:>5} {:>10} {:>7} {:>7} {:>7} {:>9}{}{}\n", "EP", "R", "slots/rank", "mean",
             "p99", "worst", "identity",
             saved ? fmt::format(" {:>11}", fmt::format("saved@f={}", *r.expert_fraction)) : "",
             r.memory ? fmt::format(" {:>14}", "extra mem/GPU") : "");
  for (const sweep_point& p : r.points) {
    if (!p.planned) {
      fmt::print("{:>4} {:>5}   skipped: {}; nearest valid R: {}\n", p.ep, p.redundant, p.skipped,
                 fmt::format("{}", fmt::join(p.nearest, ", ")));
      continue;
    }
    fmt::print(
        "{:>4} {:>5} {:>10} {:>7.4f} {:>7.4f} {:>7.4f} {:>9.4f}{}{}\n", p.ep, p.redundant,
        p.slots_per_rank, p.mean, p.p99, p.worst, p.identity_mean,
        p.time_saved ? fmt::format(" {:>10.1f}%", 100 * *p.time_saved) : "",
        p.extra_bytes_per_gpu ? fmt::format(" {:>14}", format_bytes(*p.extra_bytes_per_gpu)) : "");
  }
  fmt::print("\nrecommendation: the smallest R whose held-out mean is within {:.2f}% of the best\n",
             100 * r.tolerance);
  for (const sweep_choice& c : r.choices) {
    fmt::print("EP {}: {}\n", c.ep, c.why);
    fmt::print("  knee of the curve: {}\n", c.knee_why);
  }
  if (saved) {
    fmt::print(
        "\nsaved: predicted share of step time saved vs the identity column (vLLM's startup "
        "layout with the fewest redundant slots the EP allows), f * (1 - imbalance / identity's) "
        "(see eval)\n");
  }
  std::fflush(stdout);
}

}  // namespace

runner add_sweep(CLI::App& app) {
  auto f = std::make_shared<sweep_flags>();
  app.add_option("--stats", f->stats, "Stats JSONL file or glob (repeatable)")->take_all();
  app.add_option("--steps", f->steps, "Use only the records of the steps A:B");
  app.add_option("--ep", f->eps, "EP sizes, comma-separated (default: the stats' meta record)");
  app.add_option("--redundant", f->redundant,
                 "Redundant slots per layer to try, comma-separated (default 0,8,16,32,64,128)");
  app.add_option("--split", f->split,
                 "Plan on the first FRACTION of the records, judge on the rest")
      ->capture_default_str();
  app.add_option("--tolerance", f->tolerance,
                 "Recommend the smallest R whose held-out mean is within this (relative) of the "
                 "best")
      ->capture_default_str();
  f->groups_given =
      app.add_option("--groups", f->groups, "Expert groups (default: meta record, else 1)");
  f->nodes_given = app.add_option("--nodes", f->nodes, "Nodes (default: meta record, else 1)");
  app.add_option("--model-config", f->model_config,
                 "Hugging Face config.json of the model: the memory of one expert");
  f->weight_bytes_given = app.add_option(
      "--weight-bytes", f->weight_bytes,
      "With --model-config: bytes per weight (quantized models, e.g. 0.5 for 4-bit)");
  f->expert_bytes_given =
      app.add_option("--expert-bytes", f->expert_bytes,
                     "Bytes of one expert's weights (instead of --model-config)");
  f->expert_fraction_given = app.add_option(
      "--expert-fraction", f->expert_fraction,
      "Share of step time in expert compute under the identity layout: predicted time saved");
  app.add_option("--json", f->json, "Also write the sweep as JSON ('-': stdout, no table)");
  app.add_option("--threads", f->threads, "Worker threads (0 = all cores); output is identical");
  app.add_option("--max-line-bytes", f->max_line_bytes, "Longest stats line accepted")
      ->capture_default_str();
  app.add_flag("--allow-partial-tail", f->allow_partial_tail, kAllowPartialTailHelp);
  app.add_flag("-q,--quiet", f->quiet, "Print only errors (and the JSON with --json -)");
  return [f, &app]() -> int {
    if (f->stats.empty()) {
      fmt::print(stderr, "{}", app.help());
      return usage_error("sweep: --stats is required");
    }
    sweep_request req;
    req.stats = f->stats;
    if (!f->steps.empty()) {
      auto r = parse_step_range(f->steps, "--steps");
      if (!r) return usage_error(r.message());
      req.steps = *r;
    }
    if (!f->eps.empty()) {
      auto eps = int_lists(f->eps, "--ep");
      if (!eps) return usage_error(eps.message());
      req.eps = *eps;
    }
    auto redundant = int_lists(
        f->redundant.empty() ? std::vector<std::string>{"0,8,16,32,64,128"} : f->redundant,
        "--redundant");
    if (!redundant) return usage_error(redundant.message());
    req.redundant = *redundant;
    req.split = f->split;
    req.tolerance = f->tolerance;
    req.groups = given(f->groups_given, f->groups);
    req.nodes = given(f->nodes_given, f->nodes);
    req.expert_fraction = given(f->expert_fraction_given, f->expert_fraction);
    if (status s = check_flag(flags::expert_fraction, req.expert_fraction); !s.ok()) {
      return fail(s.err());
    }
    const bool weight_bytes = f->weight_bytes_given->count() > 0;
    const bool expert_bytes = f->expert_bytes_given->count() > 0;
    if (!f->model_config.empty() && expert_bytes) {
      return usage_error("--model-config and --expert-bytes: give one of them");
    }
    if (weight_bytes && f->model_config.empty()) {
      return usage_error("--weight-bytes: needs --model-config");
    }
    for (const auto& [given, value, name] :
         {std::tuple{weight_bytes, f->weight_bytes, "--weight-bytes"},
          std::tuple{expert_bytes, f->expert_bytes, "--expert-bytes"}}) {
      if (given && !(value > 0 && value < 1e18)) {
        return usage_error(
            fmt::format("{}: must be a positive number of bytes, got {}", name, value));
      }
    }
    if (!f->model_config.empty()) {
      auto m = read_model_config(
          f->model_config, weight_bytes ? std::optional<double>(f->weight_bytes) : std::nullopt);
      if (!m) return fail(m.message());
      req.memory = *m;
    } else if (expert_bytes) {
      expert_memory m;
      m.source = "--expert-bytes";
      m.expert_bytes = f->expert_bytes;
      req.memory = m;
    }
    if (status s = check_flag(flags::max_line_bytes, f->max_line_bytes); !s.ok()) {
      return fail(s.err());
    }
    req.max_line_bytes = static_cast<std::size_t>(f->max_line_bytes);
    req.allow_partial_tail = f->allow_partial_tail;
    if (status s = check_flag(flags::threads, f->threads); !s.ok()) return fail(s.err());
    // Never more threads than the machine has, whatever the value (as every other stage).
    req.threads = effective_threads(f->threads);
    progress_bar bar(progress_bar::wanted(f->quiet));
    req.read_progress = bar.callback();
    req.plan_progress = [&bar](int done, int total) {
      bar.count("planning: (EP, R) plans done:", done, total);
    };
    auto result = run_sweep(req);
    bar.clear();
    if (!result) return fail(result.err());
    if (!f->quiet) print_warnings(result->warnings);
    if (!f->json.empty()) {
      // '-' is standard output (write_file_atomic), which then carries the JSON alone.
      if (status s = write_file_atomic(f->json, sweep_json(*result)); !s.ok()) {
        return fail(s.message());
      }
      if (f->json == "-") return 0;
    }
    if (!f->quiet) print_table(*result);
    return 0;
  };
}

}  // namespace eplb::cli
