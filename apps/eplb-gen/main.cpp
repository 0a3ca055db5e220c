// eplb-gen: offline expert-parallel load balancing for MoE serving.

#include <fmt/core.h>

#include <cstdio>
#include <vector>

#include "commands.hpp"

namespace eplb::cli {
int fail(const std::string& message) {
  fmt::print(stderr, "eplb-gen: error: {}\n", message);
  return kExitFailure;
}
int fail(const error& e) {
  fail(e.message);
  return e.code == errc::invalid_argument ? kExitUsage : kExitFailure;
}
int usage_error(const std::string& message) {
  fail(message);
  return kExitUsage;
}
void print_warnings(const std::vector<std::string>& messages) {
  for (const std::string& m : messages) fmt::print(stderr, "eplb-gen: warning: {}\n", m);
}
}  // namespace eplb::cli

int main(int argc, char** argv) {
  CLI::App app{
      "eplb-gen: plan expert placements for MoE expert parallelism from recorded load stats.\n"
      "Without a subcommand it plans a mapping: eplb-gen --stats s.jsonl --ep 8 --redundant 8 -o m.jsonl",
      "eplb-gen"};
  app.set_version_flag("--version", "eplb-gen " EPLB_VERSION);
  app.require_subcommand(0, 1);
  app.fallthrough(false);
  std::vector<std::pair<CLI::App*, eplb::cli::runner>> commands;
  const eplb::cli::runner plan = eplb::cli::add_plan(app);
  {
    CLI::App* sub = app.add_subcommand("synth", "Write a synthetic stats trace (vLLM JSONL)");
    commands.emplace_back(sub, eplb::cli::add_synth(*sub));
  }
  {
    CLI::App* sub = app.add_subcommand("convert", "Convert a mapping file between formats");
    commands.emplace_back(sub, eplb::cli::add_convert(*sub));
  }
  {
    CLI::App* sub =
        app.add_subcommand("check", "Validate a mapping file against a topology (CI gate)");
    commands.emplace_back(sub, eplb::cli::add_check(*sub));
  }
  {
    CLI::App* sub = app.add_subcommand("eval", "Judge mappings on recorded (held-out) steps");
    commands.emplace_back(sub, eplb::cli::add_eval(*sub));
  }
  {
    CLI::App* sub =
        app.add_subcommand("report", "Write the evaluation as a self-contained HTML page");
    commands.emplace_back(sub, eplb::cli::add_report(*sub));
  }
  {
    CLI::App* sub = app.add_subcommand(
        "sweep", "How many redundant slots? Plan and judge each (EP, R) on held-out steps");
    commands.emplace_back(sub, eplb::cli::add_sweep(*sub));
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  for (auto& [sub, run] : commands) {
    if (sub->parsed()) return run();
  }
  return plan();
}
