// `eplb-gen convert`: read a mapping in one engine's format and write it in others.

#include <fmt/core.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "eplb/flags.hpp"
#include "eplb/mapping_io.hpp"
#include "outputs.hpp"

namespace eplb::cli {

namespace {
struct convert_flags {
  std::string input;
  std::string input_format = "auto";
  int ep = 0;
  int layers = 0;
  bool quiet = false;
  CLI::Option *ep_opt = nullptr, *layers_opt = nullptr;
};
}  // namespace

runner add_convert(CLI::App& app) {
  auto f = std::make_shared<convert_flags>();
  app.add_option("--input", f->input, "Mapping file to convert")->required();
  app.add_option("--input-format", f->input_format,
                 "Format of the input: auto|vllm|sglang|trtllm|ascend|json")
      ->capture_default_str();
  f->ep_opt = app.add_option(
      "--ep", f->ep,
      "EP size; needed for ascend and json outputs when the input does not state it");
  f->layers_opt = app.add_option(
      "--layers", f->layers,
      "MoE layers to take from an SGLang or TensorRT-LLM input (default: all rows or "
      "keys, from --first-moe-layer)");
  app.add_flag("-q,--quiet", f->quiet, "Print nothing but errors");
  const auto out = add_output_flags(app);
  return [f, out]() -> int {
    const auto ep = given(f->ep_opt, f->ep);
    const auto layers = given(f->layers_opt, f->layers);
    if (status s = check_flag(flags::ep, ep); !s.ok()) return fail(s.err());
    if (status s = check_flag(flags::layers, layers); !s.ok()) return fail(s.err());
    auto outputs = resolve_outputs(*out);
    if (!outputs) return fail(outputs.err());
    std::optional<mapping_format> in_format;
    if (f->input_format != "auto") {
      auto parsed = parse_mapping_format(f->input_format);
      if (!parsed) {
        // The parser names --format; here the flag is --input-format.
        return usage_error("--input-format: unknown mapping format \"" + f->input_format +
                           "\"; expected vllm, sglang, trtllm, ascend or json");
      }
      in_format = *parsed;
    }
    if (status s =
            check_output_paths({named_path{"--input", f->input}}, output_paths(*out, *outputs, ""));
        !s.ok()) {
      return fail(s.err());
    }
    mapping_read_options ropt;
    ropt.num_ranks = ep.value_or(0);
    ropt.num_layers = layers.value_or(0);
    ropt.first_moe_layer = out->first_moe_layer_flag();
    ropt.num_hidden_layers =
        given(out->num_hidden_layers_option, out->num_hidden_layers).value_or(0);
    auto in = read_mapping(f->input, in_format, ropt);
    if (!in) return fail(in.err());
    topology topo = mapping_topology(*in, ropt.num_ranks);
    if (topo.num_ranks <= 0) {
      for (const auto& [format, path] : *outputs) {
        if (format == mapping_format::ascend || format == mapping_format::json) {
          return usage_error(std::string("--ep is required to write the ") +
                             mapping_format_name(format) + " mapping: the " +
                             mapping_format_name(in->format) + " input does not state the EP size");
        }
      }
      topo.num_ranks = 1;  // the other formats do not depend on it
    }
    layer_defaults defaults;
    defaults.layer_ids = in->layer_ids;
    defaults.num_hidden_layers = in->num_hidden_layers;
    defaults.layer_updates_per_iter = in->layer_updates_per_iter;
    export_metadata meta;
    meta.policy = in->policy;
    auto src = describe_source(f->input, std::string("mapping_") + mapping_format_name(in->format));
    if (!src) return fail(src.err());
    meta.sources.push_back(std::move(*src));
    std::vector<rendered_file> files;
    if (status s = render_outputs(*out, *outputs, in->place, topo, defaults, meta, files);
        !s.ok()) {
      return fail(s.err());
    }
    if (status s = write_files_atomic(files); !s.ok()) return fail(s.err());
    if (!f->quiet) {
      fmt::print(stderr, "read {} ({}): {} layers x {} experts, {} slots\n", f->input,
                 mapping_format_name(in->format), in->place.num_layers, in->place.num_experts,
                 in->place.num_slots);
      print_written(files);
    }
    return 0;
  };
}

}  // namespace eplb::cli
