// eplb-gen: offline expert-parallel load balancing for MoE serving.

#include <fmt/core.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <new>
#include <string>
#include <vector>

#include "commands.hpp"

namespace eplb::cli {
int fail(const std::string& message) {
  // Messages quote inputs (model names, file names, bad bytes): nothing reaches the terminal raw.
  fmt::print(stderr, "eplb-gen: error: {}\n", printable(message));
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
  for (const std::string& m : messages) fmt::print(stderr, "eplb-gen: warning: {}\n", printable(m));
}

}  // namespace eplb::cli

int main(int argc, char** argv) {
  CLI::App app{
      "eplb-gen: plan expert placements for MoE expert parallelism from recorded load stats.\n"
      "Without a subcommand it plans a mapping: eplb-gen --stats s.jsonl --ep 8 --redundant 8 -o m.jsonl",
      "eplb-gen"};
  app.set_version_flag("--version", "eplb-gen " EPLB_VERSION);
  app.require_subcommand(0, 1);
  // Parse errors read like every other error; the exit status is 2 (see below).
  app.failure_message([](const CLI::App* /*app*/, const CLI::Error& e) {
    return "eplb-gen: error: " + std::string(e.what()) +
           "\nRun with --help for more information.\n";
  });
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
    // --help and --version end the parse with a success; every other parse error is a usage
    // error (exit status 2, not CLI11's own codes).
    const int code = app.exit(e);
    return code == 0 ? 0 : eplb::cli::kExitUsage;
  }
  int code = -1;
  try {
    for (auto& [sub, run] : commands) {
      if (sub->parsed()) code = run();
    }
    if (code < 0) code = plan();
  } catch (const std::bad_alloc&) {
    // The limits (docs/limits.md) keep inputs from asking for more than a real model needs; this
    // is a machine with less memory than that. An error, never an abort.
    code = eplb::cli::fail("out of memory (docs/limits.md lists what bounds eplb-gen's memory)");
  }
  // What went to stdout (tables, JSON, a mapping with -o -) must have arrived: a full disk or a
  // closed stdout is a failed run, not a success.
  if (std::fflush(stdout) != 0 || std::ferror(stdout) != 0) {
    const int err = errno;
    if (code == 0) {
      code = eplb::cli::fail(std::string("standard output: cannot write: ") + std::strerror(err));
    }
  }
  return code;
}
