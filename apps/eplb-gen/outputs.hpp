#pragma once
// Mapping outputs shared by `plan` and `convert`: the --format / -o / --output-dir / layer flags,
// and the rule that every output is rendered before any file is written, so a run that fails
// leaves no partial set of files behind.

#include <CLI/CLI.hpp>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "commands.hpp"
#include "eplb/error.hpp"
#include "eplb/files.hpp"
#include "eplb/mapping_io.hpp"
#include "eplb/plan.hpp"

namespace eplb::cli {

/// Values of the output flags.
struct output_flags {
  std::vector<std::string> formats;  // --format: repeatable, comma-separated; default vllm
  std::string output;                // -o: the path when one format is written
  std::string output_dir = ".";      // --output-dir: where several formats go
  int first_moe_layer = 0;           // absent: the input's layer ids, else 0
  int num_hidden_layers = 0;         // absent: the input's (SGLang), else the last MoE layer + 1
  int layer_updates_per_iter = 0;    // absent: the input's (TensorRT-LLM), else 0
  CLI::Option* output_option = nullptr;
  CLI::Option* output_dir_option = nullptr;
  CLI::Option* first_moe_layer_option = nullptr;
  CLI::Option* num_hidden_layers_option = nullptr;
  CLI::Option* layer_updates_option = nullptr;

  /// Returns --first-moe-layer when given.
  std::optional<int> first_moe_layer_flag() const {
    return given(first_moe_layer_option, first_moe_layer);
  }
  /// Returns true when -o was given.
  bool has_output() const { return output_option != nullptr && output_option->count() > 0; }
};

/// Registers --format, -o/--output, --output-dir, --first-moe-layer, --num-hidden-layers and
/// --layer-updates-per-iter on `app`; returns where their values land.
std::shared_ptr<output_flags> add_output_flags(CLI::App& app);

/// One file to write: its path ("-" for stdout) and its content.
using rendered_file = output_file;

/// The mapping outputs the flags name: each format with its path.
using resolved_outputs = std::vector<std::pair<mapping_format, std::string>>;

/// Returns the requested formats (deduplicated, in order) with their paths; invalid_argument for
/// an unknown format, -o with several formats, or a layer flag out of its range (flags.hpp).
/// A command resolves them once and hands them to the functions below.
result<resolved_outputs> resolve_outputs(const output_flags& flags);

/// What the input says about layers, used where the flags leave them open.
struct layer_defaults {
  std::vector<int> layer_ids;  // decoder-layer id of every MoE layer; empty: first_moe_layer 0
  int num_hidden_layers = 0;
  int layer_updates_per_iter = 0;
};

/// Returns every output (and the summary when `summary_path` is not empty) with the flag that
/// named it, for check_output_paths.
std::vector<named_path> output_paths(const output_flags& flags, const resolved_outputs& outputs,
                                     const std::string& summary_path);

/// Returns the stats paths (globs expanded where they match) named by --stats, for
/// check_output_paths.
std::vector<named_path> stats_inputs(const std::vector<std::string>& stats);

/// Renders `p` in every format of `outputs` and appends the files to `files`; the first error
/// (naming the format) otherwise.
status render_outputs(const output_flags& flags, const resolved_outputs& outputs,
                      const placement& p, const topology& topo, const layer_defaults& defaults,
                      const export_metadata& meta, std::vector<rendered_file>& files);

/// Renders the mappings of a plan (and its summary JSON when `summary_path` is not empty).
status render_plan_outputs(const output_flags& flags, const resolved_outputs& outputs,
                           const plan_outcome& outcome, const std::string& summary_path,
                           std::vector<rendered_file>& files);

/// Prints "wrote PATH" on stderr for every file not written to stdout.
void print_written(const std::vector<rendered_file>& files);

}  // namespace eplb::cli
