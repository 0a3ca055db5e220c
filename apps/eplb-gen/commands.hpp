#pragma once
// Each subcommand registers its flags on the CLI11 app and returns the function that runs it.
// Runners print, and return the process exit code; the library does the work.

#include <CLI/CLI.hpp>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "eplb/error.hpp"

namespace eplb::cli {

/// Exit codes (README "Exit status", docs/limits.md): 0 success; 1 bad input or a failed run
/// (nothing written); 2 usage error (a flag out of range, flags that clash, an output that is an
/// input, CLI11's parse errors); 3 is reserved for the gate of `eval --max-regression`.
inline constexpr int kExitFailure = 1;
inline constexpr int kExitUsage = 2;
/// Exit code of `eval --baseline` when a mapping is worse than the baseline by more than
/// --max-regression.
inline constexpr int kExitEvalGate = 3;

/// Help of --allow-partial-tail, on every subcommand that reads stats.
inline constexpr const char* kAllowPartialTailHelp =
    "Ignore an incomplete last line (no newline) of a stats file still being written, with a "
    "warning";

using runner = std::function<int()>;

/// Registers the main job (plan a mapping from stats) on the root app.
runner add_plan(CLI::App& app);
/// Registers `synth`: write a synthetic stats trace.
runner add_synth(CLI::App& app);
/// Registers `convert`: rewrite a mapping file in other formats.
runner add_convert(CLI::App& app);
/// Registers `check`: validate a mapping file against a topology (and stats).
runner add_check(CLI::App& app);
/// Registers `eval`: judge mappings on recorded steps.
runner add_eval(CLI::App& app);
/// Registers `report`: write the evaluation as one self-contained HTML page.
runner add_report(CLI::App& app);
/// Registers `sweep`: plan and judge every (EP, redundant slots) pair and recommend R.
runner add_sweep(CLI::App& app);

/// Prints "eplb-gen: error: <message>" on stderr and returns kExitFailure.
int fail(const std::string& message);

/// Prints the error's message like fail() and returns its exit code: kExitUsage for
/// errc::invalid_argument (a usage error), else kExitFailure.
int fail(const error& e);

/// Prints "eplb-gen: error: <message>" on stderr and returns kExitUsage.
int usage_error(const std::string& message);
/// Prints "eplb-gen: warning: <message>" on stderr for each message.
void print_warnings(const std::vector<std::string>& messages);

/// Returns the value of an option the user gave, nullopt for one left out (whatever its value).
template <class T>
std::optional<T> given(const CLI::Option* option, const T& value) {
  return option != nullptr && option->count() > 0 ? std::optional<T>(value) : std::nullopt;
}

}  // namespace eplb::cli
