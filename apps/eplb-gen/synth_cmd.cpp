// `eplb-gen synth`: write a realistic stats trace from a per-layer expert distribution.

#include <fmt/core.h>

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string_view>
#include <utility>

#include "commands.hpp"
#include "eplb/files.hpp"
#include "eplb/flags.hpp"
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
    for (const auto& [flag, value] :
         {std::pair{flags::layers, f->layers}, std::pair{flags::experts, f->experts},
          std::pair{flags::ep, f->ep}, std::pair{flags::redundant, f->redundant},
          std::pair{flags::groups, f->groups}, std::pair{flags::nodes, f->nodes}}) {
      if (status s = check_flag(flag, std::int64_t{value}); !s.ok()) return fail(s.err());
    }
    if (status s = check_flag(flags::zipf, f->zipf); !s.ok()) return fail(s.err());
    if (status s = validate_synth_options(f->opt); !s.ok() && s.code() == errc::invalid_argument) {
      return fail(s.err());  // the topology is checked once the distribution's shape is known
    }
    if (!f->counts.empty()) {
      if (status s = check_output_paths({named_path{"--counts", f->counts}},
                                        {named_path{"-o", f->output}});
          !s.ok()) {
        return fail(s.err());
      }
    }
    weight_matrix dist;
    if (!f->counts.empty()) {
      auto c = read_counts_json(f->counts);
      if (!c) return fail(c.err());
      dist = std::move(*c);
    } else {
      dist.resize(f->layers, f->experts);
      for (int l = 0; l < f->layers; ++l) {
        for (int e = 0; e < f->experts; ++e) {
          // Rotate the ranking per layer so each layer has different hot experts.
          const int rank = (e * 7 + l * 3) % f->experts;
          dist(l, e) = 1.0 / std::pow(rank + 1.0, f->zipf);
        }
      }
    }
    const std::int64_t slots = dist.cols() + std::int64_t{f->redundant};
    f->opt.recording = topology{static_cast<int>(dist.rows()),
                                static_cast<int>(dist.cols()),
                                static_cast<int>(std::min<std::int64_t>(slots, INT32_MAX)),
                                f->ep,
                                f->nodes,
                                f->groups};
    // The trace streams to its temporary file (or stdout), one record at a time.
    atomic_output out;
    if (status s = out.open(f->output); !s.ok()) return fail(s.err());
    auto write = [&](std::string_view text) { return out.write(text); };
    if (status s = synthesize_stats(dist, f->opt, write); !s.ok()) return fail(s.err());
    if (status s = out.commit(); !s.ok()) return fail(s.err());
    return 0;
  };
}

}  // namespace eplb::cli
