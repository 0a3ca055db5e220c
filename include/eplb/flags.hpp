#pragma once
// The accepted range of every numeric flag of eplb-gen, in one table (docs/limits.md), and the
// checks that turn a value outside it into a usage error (errc::invalid_argument, exit status 2)
// naming the flag and the range. "Not given" is never a special value: a flag the user gives is
// checked, one the user leaves out is absent (std::nullopt).

#include <cstdint>
#include <optional>
#include <string>

#include "eplb/error.hpp"
#include "eplb/limits.hpp"

namespace eplb {

/// An integer flag and its inclusive range; `note` (may be empty) explains a special value.
struct int_flag {
  const char* name;
  std::int64_t min;
  std::int64_t max;
  const char* note;
};

/// A real-valued flag and its range; the open ends exclude their bound.
struct real_flag {
  const char* name;
  double min;
  double max;
  bool min_open;
  bool max_open;
};

namespace flags {
// Topology (plan, eval, check, convert, synth).
inline constexpr int_flag ep{"--ep", 1, limits::max_slots, ""};
inline constexpr int_flag redundant{"--redundant", 0, limits::max_slots - 1, ""};
inline constexpr int_flag groups{"--groups", 1, limits::max_groups, ""};
inline constexpr int_flag nodes{"--nodes", 1, limits::max_groups, ""};
inline constexpr int_flag layers{"--layers", 1, limits::max_layers, ""};
inline constexpr int_flag experts{"--experts", 1, limits::max_experts, ""};
// Planning.
inline constexpr int_flag max_moves{"--max-moves", 0, limits::max_slots, ""};
inline constexpr int_flag threads{"--threads", 0, limits::max_threads, " (0: all cores)"};
inline constexpr int_flag max_line_bytes{"--max-line-bytes", 1,
                                         static_cast<std::int64_t>(limits::max_line_bytes), ""};
inline constexpr int_flag skip_layers{"--skip-layers", 0, limits::max_decoder_layers - 1, ""};
// Layer ids of the SGLang and TensorRT-LLM formats.
inline constexpr int_flag first_moe_layer{"--first-moe-layer", 0, limits::max_decoder_layers - 1,
                                          ""};
inline constexpr int_flag num_hidden_layers{"--num-hidden-layers", 1, limits::max_decoder_layers,
                                            ""};
inline constexpr int_flag layer_updates_per_iter{"--layer-updates-per-iter", 0, limits::max_layers,
                                                 " (0: static placement)"};
// Trace synthesis.
inline constexpr int_flag synth_steps{"--steps", 0, (std::int64_t{1} << 31) - 1, ""};
inline constexpr int_flag first_step{"--first-step", 0, std::int64_t{1} << 53, ""};
inline constexpr int_flag top_k{"--top-k", 1, limits::max_experts, ""};
inline constexpr int_flag min_batch{"--min-batch", 1, std::int64_t{1} << 30, ""};
inline constexpr int_flag max_batch{"--max-batch", 1, std::int64_t{1} << 30, ""};
inline constexpr int_flag burst_steps{"--burst-steps", 0, (std::int64_t{1} << 31) - 1, ""};
inline constexpr int_flag remap_every{"--remap-every", 0, (std::int64_t{1} << 31) - 1,
                                      " (0: never)"};
inline constexpr int_flag regime_steps{"--regime-steps", 0, (std::int64_t{1} << 31) - 1,
                                       " (0: one workload mix)"};
// Real-valued flags.
inline constexpr real_flag split{"--split", 0, 1, true, true};
inline constexpr real_flag expert_fraction{"--expert-fraction", 0, 1, false, false};
inline constexpr real_flag zipf{"--zipf", 0, 100, false, false};
inline constexpr real_flag drift{"--drift", 0, 10, false, false};
inline constexpr real_flag drift_speed{"--drift-speed", 0, 1, true, false};
inline constexpr real_flag burst_prob{"--burst-prob", 0, 1, false, false};
inline constexpr real_flag burst_factor{"--burst-factor", 0, 1e6, false, false};
}  // namespace flags

/// Returns invalid_argument "FLAG: must be between MIN and MAX, got V" when `value` lies outside
/// the flag's range.
status check_flag(const int_flag& flag, std::int64_t value);

/// As above for a flag that may be absent (nullopt passes).
status check_flag(const int_flag& flag, const std::optional<int>& value);

/// Returns invalid_argument naming the flag and its range when `value` lies outside it or is not
/// a finite number.
status check_flag(const real_flag& flag, double value);

/// As above for a flag that may be absent (nullopt passes).
status check_flag(const real_flag& flag, const std::optional<double>& value);

/// Returns the threads a stage starts for --threads `requested`: all hardware threads for 0, else
/// `requested` but at most the hardware's (more would only cost memory; results never depend on
/// the number).
int effective_threads(int requested) noexcept;

/// Returns the range of a flag as its messages print it ("between 1 and 65536").
std::string describe_range(const int_flag& flag);

}  // namespace eplb
