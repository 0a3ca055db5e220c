#pragma once
// Each subcommand registers its flags on the CLI11 app and returns the function that runs it.
// Runners print, and return the process exit code; the library does the work.

#include <CLI/CLI.hpp>
#include <functional>

namespace eplb::cli {

/// Exit codes: 0 success, 1 bad input or failure, 2 usage error (CLI11's own).
inline constexpr int kExitFailure = 1;

using runner = std::function<int()>;

/// Registers the main job (plan a mapping from stats) on the root app.
runner add_plan(CLI::App& app);
/// Registers `synth`: write a synthetic stats trace.
runner add_synth(CLI::App& app);
/// Registers `convert`: rewrite a mapping file in other formats.
runner add_convert(CLI::App& app);
/// Registers `check`: validate a mapping file against a topology (and stats).
runner add_check(CLI::App& app);

/// Prints "eplb-gen: error: <message>" on stderr and returns kExitFailure.
int fail(const std::string& message);

}  // namespace eplb::cli
