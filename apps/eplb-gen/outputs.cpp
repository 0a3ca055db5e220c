// Rendering and writing of the mapping files (see outputs.hpp).

#include "outputs.hpp"

#include <fmt/core.h>

#include <cstdio>
#include <filesystem>
#include <set>
#include <tuple>

#include "eplb/export.hpp"
#include "eplb/flags.hpp"
#include "eplb/import.hpp"
#include "eplb/mapping.hpp"
#include "eplb/stats.hpp"

namespace eplb::cli {

std::shared_ptr<output_flags> add_output_flags(CLI::App& app) {
  auto f = std::make_shared<output_flags>();
  app.add_option("--format", f->formats,
                 "Mapping format(s) to write: vllm, sglang, trtllm, ascend, json (repeatable or "
                 "comma-separated; default vllm)")
      ->delimiter(',');
  f->output_option = app.add_option(
      "-o,--output", f->output,
      "Output file when one format is written ('-' for stdout; default: the format's file name: "
      "mapping.jsonl, sglang_expert_location.json, trtllm_eplb.yaml, ascend_expert_map.json, "
      "placement.json)");
  f->output_dir_option = app.add_option(
      "--output-dir", f->output_dir,
      "Directory for the outputs under their default names (default: the current one)");
  f->first_moe_layer_option = app.add_option(
      "--first-moe-layer", f->first_moe_layer,
      "Decoder-layer id of MoE layer 0 for SGLang and TensorRT-LLM outputs (default: "
      "the input's layer ids, else 0)");
  f->num_hidden_layers_option = app.add_option(
      "--num-hidden-layers", f->num_hidden_layers,
      "Decoder layers of the model: the rows of an SGLang mapping (default: the last "
      "MoE layer + 1)");
  f->layer_updates_option = app.add_option(
      "--layer-updates-per-iter", f->layer_updates_per_iter,
      "TensorRT-LLM: layers the online balancer may re-plan per iteration (default 0: "
      "static placement)");
  return f;
}

result<resolved_outputs> resolve_outputs(const output_flags& flags) {
  for (const auto& [flag, option, value] :
       {std::tuple{flags::first_moe_layer, flags.first_moe_layer_option, flags.first_moe_layer},
        std::tuple{flags::num_hidden_layers, flags.num_hidden_layers_option,
                   flags.num_hidden_layers},
        std::tuple{flags::layer_updates_per_iter, flags.layer_updates_option,
                   flags.layer_updates_per_iter}}) {
    if (status s = check_flag(flag, given(option, value)); !s.ok()) return s.err();
  }
  std::vector<mapping_format> formats;
  std::set<mapping_format> seen;
  for (const std::string& name : flags.formats) {
    auto f = parse_mapping_format(name);
    if (!f.ok()) return f.err();
    if (seen.insert(*f).second) formats.push_back(*f);
  }
  if (formats.empty()) formats.push_back(mapping_format::vllm);
  const bool has_output = flags.has_output();
  const bool has_dir = flags.output_dir_option != nullptr && flags.output_dir_option->count() > 0;
  const position none{};
  if (formats.size() > 1 && has_output) {
    return make_error(errc::invalid_argument, none, "-o",
                      "names one file but " + std::to_string(formats.size()) +
                          " formats are requested; use --output-dir DIR to write each under its "
                          "default name");
  }
  if (has_output && has_dir) {
    return make_error(errc::invalid_argument, none, "-o",
                      "and --output-dir exclude each other; give the whole path with -o");
  }
  resolved_outputs out;
  for (const mapping_format f : formats) {
    if (has_output) {
      out.emplace_back(f, flags.output);
    } else {
      out.emplace_back(f, (std::filesystem::path(flags.output_dir) / default_mapping_file_name(f))
                              .lexically_normal()
                              .string());
    }
  }
  return out;
}

status render_outputs(const output_flags& flags, const resolved_outputs& outputs,
                      const placement& p, const topology& topo, const layer_defaults& defaults,
                      const export_metadata& meta, std::vector<rendered_file>& files) {
  mapping_render_options opt;
  if (auto first = flags.first_moe_layer_flag()) {
    opt.layers.first_moe_layer = *first;
  } else {
    opt.layers.layer_ids = defaults.layer_ids;
  }
  opt.num_hidden_layers = given(flags.num_hidden_layers_option, flags.num_hidden_layers)
                              .value_or(defaults.num_hidden_layers);
  opt.layer_updates_per_iter = given(flags.layer_updates_option, flags.layer_updates_per_iter)
                                   .value_or(defaults.layer_updates_per_iter);
  opt.meta = meta;
  for (const auto& [format, path] : outputs) {
    auto text = render_mapping(format, p, topo, opt);
    if (!text.ok()) {
      error e = text.err();
      e.message = std::string(mapping_format_name(format)) + " output: " + e.message;
      return e;
    }
    files.push_back(rendered_file{path, std::move(*text)});
  }
  return status::success();
}

status render_plan_outputs(const output_flags& flags, const resolved_outputs& outputs,
                           const plan_outcome& o, const std::string& summary_path,
                           std::vector<rendered_file>& files) {
  export_metadata meta;
  meta.policy = o.info.policy;
  meta.imbalance_before = o.before.overall;
  meta.imbalance_after = o.after.overall;
  const std::string format = o.imported ? stats_format_name(o.imported->format) : "vllm_jsonl";
  // Only the plain JSON records the sources; hash them only when it is requested.
  bool wants_json = false;
  for (const auto& out : outputs) wants_json = wants_json || out.first == mapping_format::json;
  if (wants_json) {
    for (const std::string& file : o.imported ? o.imported->files : o.read.files) {
      auto src = describe_source(file, format);
      if (!src.ok()) return src.err();
      meta.sources.push_back(std::move(*src));
    }
  }
  if (o.read.meta && !o.read.meta->model.empty())
    meta.extra.emplace_back("model", o.read.meta->model);
  layer_defaults defaults;
  if (o.imported) defaults.layer_ids = o.imported->layer_ids;
  if (status s = render_outputs(flags, outputs, o.result, o.topo, defaults, meta, files); !s.ok()) {
    return s;
  }
  if (!summary_path.empty()) files.push_back(rendered_file{summary_path, summary_json(o)});
  return status::success();
}

std::vector<named_path> output_paths(const output_flags& flags, const resolved_outputs& outputs,
                                     const std::string& summary_path) {
  const char* flag = flags.has_output() ? "-o" : "--output-dir";
  std::vector<named_path> out;
  for (const auto& [format, path] : outputs) out.push_back(named_path{flag, path});
  if (!summary_path.empty()) out.push_back(named_path{"--summary", summary_path});
  return out;
}

std::vector<named_path> stats_inputs(const std::vector<std::string>& stats) {
  std::vector<named_path> in;
  for (const std::string& pattern : stats) {
    auto files = expand_stats_paths({pattern});
    for (const std::string& file : files.ok() ? *files : std::vector<std::string>{pattern}) {
      in.push_back(named_path{"--stats", file});
    }
  }
  return in;
}

void print_written(const std::vector<rendered_file>& files) {
  for (const rendered_file& f : files) {
    if (f.path != "-") fmt::print(stderr, "wrote {}\n", f.path);
  }
}

}  // namespace eplb::cli
