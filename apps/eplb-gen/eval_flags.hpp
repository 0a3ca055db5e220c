#pragma once
// Flags `eval` and `report` share, and the run both start with: resolve the judged steps, replay
// them through the mappings, print the table.

#include <CLI/CLI.hpp>
#include <optional>
#include <string>
#include <vector>

#include "eplb/eval.hpp"
#include "eplb/files.hpp"

namespace eplb::cli {

/// What the user asked `eval` or `report` to judge.
struct eval_flags {
  std::vector<std::string> stats;
  std::vector<std::string> mappings;
  std::string steps;
  std::string train_steps;
  double split = 0;
  bool no_identity = false;
  bool recorded = false;
  bool no_bound = false;
  int ep = 0, redundant = 0;
  double expert_fraction = 0;
  bool per_layer = false;
  bool quiet = false;
  bool allow_partial_tail = false;
  std::string baseline;       // eval: the mapping deployed now (the regression gate)
  double max_regression = 0;  // eval: the gate's threshold
  // Options whose absence means "from the stats" or "not asked for": given() tells.
  CLI::Option *ep_opt = nullptr, *redundant_opt = nullptr, *split_opt = nullptr,
              *expert_fraction_opt = nullptr;
};

/// Registers the shared flags on a subcommand.
void add_eval_flags(CLI::App& app, eval_flags& f);

/// Returns the stats and mapping files the flags name, for check_output_paths.
std::vector<named_path> eval_inputs(const eval_flags& f);

/// Runs the evaluation the flags describe and prints the table on stdout (unless quiet) and the
/// warnings on stderr; returns the figures and the context, or the exit code on failure.
struct eval_run {
  eval_result result;
  eval_context context;
};
std::optional<eval_run> run_eval(const eval_flags& f, const replay_options& replay, int* exit_code);

}  // namespace eplb::cli
