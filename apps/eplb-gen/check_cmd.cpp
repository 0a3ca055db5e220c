// `eplb-gen check`: validate a mapping file against the topology it will be deployed on (and
// optionally against stats), as a CI gate before a mapping artifact ships. vLLM files are checked
// by loader.hpp, the loader a serving binary uses, so the verdict is the server's.

#include <fmt/core.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "commands.hpp"
#include "eplb/flags.hpp"
#include "eplb/mapping_io.hpp"
#include "eplb/metrics.hpp"
#include "eplb/plan.hpp"

namespace eplb::cli {

namespace {
struct check_flags {
  std::string mapping;
  std::string format = "auto";
  int layers = 0, experts = 0, ep = 0, redundant = 0;
  int first_moe_layer = 0;
  int num_hidden_layers = 0;
  CLI::Option *first_moe_layer_opt = nullptr, *num_hidden_layers_opt = nullptr;
  std::vector<std::string> stats;
  std::string stats_format = "auto";
  std::string steps;
  int skip_layers = 0;
  bool allow_partial_tail = false;
};
}  // namespace

runner add_check(CLI::App& app) {
  auto f = std::make_shared<check_flags>();
  app.add_option("--mapping", f->mapping, "Mapping file to check")->required();
  app.add_option("--format", f->format, "Its format: auto|vllm|sglang|trtllm|ascend|json")
      ->capture_default_str();
  app.add_option("--layers", f->layers, "MoE layers of the model")->required();
  app.add_option("--experts", f->experts, "Logical experts per layer")->required();
  app.add_option("--ep", f->ep, "EP size of the deployment")->required();
  app.add_option("--redundant", f->redundant, "Redundant slots per layer")->required();
  f->first_moe_layer_opt =
      app.add_option("--first-moe-layer", f->first_moe_layer,
                     "SGLang: row of MoE layer 0 (default: the last --layers rows); TensorRT-LLM: "
                     "key of MoE layer 0 (default: the keys must be exactly --layers)");
  f->num_hidden_layers_opt =
      app.add_option("--num-hidden-layers", f->num_hidden_layers,
                     "SGLang: rows the file must have (the model's decoder layers)");
  app.add_option("--stats", f->stats,
                 "Stats to check the shape against and measure the imbalance on (repeatable)")
      ->take_all();
  app.add_option("--stats-format", f->stats_format, "auto|vllm|sglang|trtllm|matrix")
      ->capture_default_str();
  app.add_option("--steps", f->steps, "Inclusive step range A:B of the stats");
  app.add_option("--skip-layers", f->skip_layers,
                 "SGLang and matrix stats: leading dense rows to drop");
  app.add_flag("--allow-partial-tail", f->allow_partial_tail, kAllowPartialTailHelp);
  return [f]() -> int {
    std::optional<mapping_format> format;
    if (f->format != "auto") {
      auto parsed = parse_mapping_format(f->format);
      if (!parsed) return fail(parsed.err());
      format = *parsed;
    }
    const auto first_moe_layer = given(f->first_moe_layer_opt, f->first_moe_layer);
    const auto num_hidden_layers = given(f->num_hidden_layers_opt, f->num_hidden_layers);
    for (const auto& [flag, value] :
         {std::pair{flags::layers, std::optional<int>(f->layers)},
          std::pair{flags::experts, std::optional<int>(f->experts)},
          std::pair{flags::ep, std::optional<int>(f->ep)},
          std::pair{flags::redundant, std::optional<int>(f->redundant)},
          std::pair{flags::first_moe_layer, first_moe_layer},
          std::pair{flags::num_hidden_layers, num_hidden_layers},
          std::pair{flags::skip_layers, std::optional<int>(f->skip_layers)}}) {
      if (status s = check_flag(flag, value); !s.ok()) return fail(s.err());
    }
    mapping_read_options opt;
    opt.num_layers = f->layers;
    opt.num_experts = f->experts;
    opt.num_ranks = f->ep;
    opt.num_redundant = f->redundant;
    opt.first_moe_layer = first_moe_layer;
    opt.num_hidden_layers = num_hidden_layers.value_or(0);
    auto m = read_mapping(f->mapping, format, opt);
    if (!m) return fail(m.err());
    if (m->format == mapping_format::vllm) {
      // vLLM ignores layer keys beyond its own layers; a gate does not: a mapping with more layers
      // was planned for another model.
      mapping_read_options all = opt;
      all.num_layers = 0;
      auto whole = read_mapping(f->mapping, mapping_format::vllm, all);
      if (whole && whole->place.num_layers != f->layers) {
        return fail(fmt::format(
            "{}: initial_global_assignments: the mapping has {} layers but --layers is {} (vLLM "
            "would ignore the extra layers; a mapping for another model?)",
            f->mapping, whole->place.num_layers, f->layers));
      }
    }
    const topology topo = mapping_topology(*m, f->ep);
    if (status s = validate_placement(m->place, topo); !s.ok()) {
      return fail(f->mapping + ": " + s.message());  // the readers check this; keep it honest
    }
    std::string line = fmt::format(
        "OK: {} ({}): {} layers x {} experts, {} slots ({} redundant), EP {} ({} slots/rank)",
        f->mapping, mapping_format_name(m->format), topo.num_layers, topo.num_experts,
        topo.num_slots, topo.num_redundant(), topo.num_ranks, topo.slots_per_rank());
    if (!f->stats.empty()) {
      plan_request req;
      req.stats = f->stats;
      req.stats_format = f->stats_format;
      req.skip_layers = f->skip_layers;
      req.allow_partial_tail = f->allow_partial_tail;
      if (!f->steps.empty()) {
        auto r = parse_step_range(f->steps, "--steps");
        if (!r) return fail(r.err());
        req.steps = *r;
      }
      plan_outcome stats;
      if (status s = read_stats(req, &stats); !s.ok()) return fail(s.err());
      print_warnings(stats.read.warnings);
      if (stats.loads.rows() != topo.num_layers || stats.loads.cols() != topo.num_experts) {
        return fail(fmt::format(
            "{}: the stats have {} layers x {} experts but the mapping has {} x {}", f->mapping,
            stats.loads.rows(), stats.loads.cols(), topo.num_layers, topo.num_experts));
      }
      const weight_matrix w = to_weights(stats.loads);
      const double mapped = measure_imbalance(w, m->place, topo).overall;
      const double identity = measure_imbalance(w, identity_placement(topo), topo).overall;
      line += fmt::format("; imbalance on the stats {:.4f}x (identity layout {:.4f}x)", mapped,
                          identity);
    }
    fmt::print("{}\n", line);
    return 0;
  };
}

}  // namespace eplb::cli
