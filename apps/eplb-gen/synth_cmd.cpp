// `eplb-gen synth`: write a realistic stats trace from a per-layer expert distribution.

#include <fmt/core.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "eplb/mapping.hpp"
#include "eplb/synth.hpp"

namespace eplb::cli {

namespace {
struct synth_flags {
  std::string counts;
  int layers = 4, experts = 16;
  double zipf = 1.0;
  std::string output = "-";
  synth_options opt;
  int ep = 4, redundant = 0, groups = 1, nodes = 1;
};
}  // namespace

runner add_synth(CLI::App& app) {
  auto f = std::make_shared<synth_flags>();
  app.add_option("--counts", f->counts,
                 "Per-layer expert counts JSON ({\"counts\": [[...]]} or a 2-D array); default: "
                 "a Zipf distribution of --layers x --experts");
  app.add_option("--layers", f->layers, "Layers of the Zipf distribution")->capture_default_str();
  app.add_option("--experts", f->experts, "Experts of the Zipf distribution")->capture_default_str();
  app.add_option("--zipf", f->zipf, "Zipf exponent of the default distribution")->capture_default_str();
  app.add_option("-o,--output", f->output, "Output JSONL ('-' for stdout)")->capture_default_str();
  app.add_option("--steps", f->opt.num_steps, "Records to write")->capture_default_str();
  app.add_option("--first-step", f->opt.first_step, "Step number of the first record")->capture_default_str();
  app.add_option("--top-k", f->opt.top_k, "Experts per token")->capture_default_str();
  app.add_option("--min-batch", f->opt.min_batch_tokens, "Fewest tokens per step")->capture_default_str();
  app.add_option("--max-batch", f->opt.max_batch_tokens, "Most tokens per step")->capture_default_str();
  app.add_option("--drift", f->opt.drift, "Std-dev of each expert's log-weight drift")->capture_default_str();
  app.add_option("--drift-speed", f->opt.drift_speed, "Drift speed per step")->capture_default_str();
  app.add_option("--burst-prob", f->opt.burst_prob, "Chance per step and layer of a burst")->capture_default_str();
  app.add_option("--burst-factor", f->opt.burst_factor, "Weight multiplier in a burst")->capture_default_str();
  app.add_option("--burst-steps", f->opt.burst_steps, "Length of a burst")->capture_default_str();
  app.add_option("--regime-steps", f->opt.regime_steps,
                 "Alternate two workload mixes (other experts hot) in blocks of N steps (0: one)")
      ->capture_default_str();
  app.add_option("--model", f->opt.model, "Model name written in the records")->capture_default_str();
  app.add_option("--ep", f->ep, "EP size of the recording server")->capture_default_str();
  app.add_option("--redundant", f->redundant, "Redundant slots of the recording server")->capture_default_str();
  app.add_option("--groups", f->groups, "Expert groups written in the meta record")->capture_default_str();
  app.add_option("--nodes", f->nodes, "Nodes written in the meta record")->capture_default_str();
  app.add_flag("--shuffle-p2l", f->opt.shuffle_p2l, "Record under a shuffled p2l_map");
  app.add_option("--remap-every", f->opt.remap_every, "New p2l_map every N steps (0: never)");
  app.add_flag("!--no-meta", f->opt.write_meta, "Older layout without an eplb_load_meta record");
  app.add_option("--seed", f->opt.seed, "Random seed")->capture_default_str();
  return [f]() -> int {
    weight_matrix dist;
    if (!f->counts.empty()) {
      auto c = read_counts_json(f->counts);
      if (!c) return fail(c.message());
      dist = std::move(*c);
    } else {
      if (f->layers <= 0 || f->experts <= 0) return fail("--layers and --experts must be positive");
      dist.resize(f->layers, f->experts);
      for (int l = 0; l < f->layers; ++l) {
        for (int e = 0; e < f->experts; ++e) {
          // Rotate the ranking per layer so each layer has different hot experts.
          const int rank = (e * 7 + l * 3) % f->experts;
          dist(l, e) = 1.0 / std::pow(rank + 1.0, f->zipf);
        }
      }
    }
    f->opt.recording = topology{static_cast<int>(dist.rows()), static_cast<int>(dist.cols()),
                                static_cast<int>(dist.cols()) + f->redundant, f->ep, f->nodes,
                                f->groups};
    std::ostringstream out;
    if (status s = synthesize_stats(dist, f->opt, out); !s.ok()) return fail(s.message());
    if (f->output == "-") {
      std::cout << out.str();
      return std::cout ? 0 : kExitFailure;
    }
    if (status s = write_file_atomic(f->output, out.str()); !s.ok()) return fail(s.message());
    return 0;
  };
}

}  // namespace eplb::cli
