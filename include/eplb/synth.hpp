#pragma once
// Synthesizer of realistic stats traces: per-step records sampled from a per-layer expert
// distribution, with batch-size sampling, drift, bursts and a chosen recording topology. Used for
// the bundled sample data, tests, benchmarks and held-out evaluation.

#include <cstdint>
#include <functional>
#include <ostream>
#include <string>
#include <string_view>

#include "eplb/error.hpp"
#include "eplb/stats.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// Options of the trace synthesizer.
struct synth_options {
  std::string model = "synthetic/moe";
  int num_steps = 100;            // records to write (steps with zero load are not written)
  std::int64_t first_step = 2250; // vLLM starts counting at step_interval - step_interval / 4
  int top_k = 8;                  // expert choices per token
  int min_batch_tokens = 256;     // tokens per step are drawn log-uniformly in [min, max]
  int max_batch_tokens = 8192;
  double drift = 0.0;        // stationary std-dev of each expert's log-weight random walk
  double drift_speed = 0.002;  // how fast the walk moves (AR(1) 1 - phi per step)
  double burst_prob = 0.0;   // chance per step and layer that a random expert starts a burst
  double burst_factor = 8.0; // weight multiplier during a burst
  int burst_steps = 20;      // length of a burst in steps
  // > 0: two workload mixes alternate in blocks of this many steps; the second mix gives each
  // layer's weights to other experts (a seeded permutation per layer), so other experts are hot.
  int regime_steps = 0;
  topology recording;        // EP size, slots, groups and nodes of the recording server
  bool shuffle_p2l = false;  // record under a shuffled (non-identity) p2l_map
  int remap_every = 0;       // > 0: a new shuffled p2l_map every N steps (online rearrangement)
  bool write_meta = true;    // false: the older self-describing layout without a meta record
  std::uint64_t seed = 1;
};

/// Reads per-layer per-expert counts from JSON: {"counts": [[...]]} (the Qwen files) or a 2-D
/// array; returns the matrix or an error naming the file and the offending element.
result<weight_matrix> read_counts_json(const std::string& path);

/// Checks every option against its range (flags.hpp: --steps, --first-step, --top-k,
/// --min-batch, --max-batch, --drift, --drift-speed, --burst-prob, --burst-factor, --burst-steps,
/// --remap-every) and the recording topology; invalid_argument naming the flag otherwise.
status validate_synth_options(const synth_options& options);

/// Writes a stats JSONL trace sampled from `distribution` ([layers][experts] relative weights),
/// one record at a time through `write` (the trace is never held whole); returns the first
/// error of `write`. The recording topology must have the distribution's shape; returns
/// invalid_argument otherwise.
status synthesize_stats(const weight_matrix& distribution, const synth_options& options,
                        const std::function<status(std::string_view)>& write);

/// As above, into a stream; io_error when the stream fails.
status synthesize_stats(const weight_matrix& distribution, const synth_options& options,
                        std::ostream& out);

/// Hands the same records synthesize_stats would write (same seed, same loads) straight to a
/// stats sink, without JSON; returns the sink's first error or the options' error.
status synthesize_records(const weight_matrix& distribution, const synth_options& options,
                          stats_sink& sink);

}  // namespace eplb
