#pragma once
// Placement policies: a load matrix and a topology in, a placement out.

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "eplb/aggregate.hpp"
#include "eplb/error.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// The placement algorithms eplb-gen offers.
enum class policy_kind { deepseek, balanced };

/// What a plan optimises: `sum` balances the summed loads of the train steps (what vLLM's tool
/// does); `per_step` balances the steps themselves, as the server will run them.
enum class objective_kind { sum, per_step };

/// Parses "sum" or "per-step"; invalid_argument naming --objective otherwise.
result<objective_kind> parse_objective(const std::string& name);

/// Returns the objective's name as the CLI spells it.
const char* objective_name(objective_kind kind) noexcept;

/// Whether a policy groups experts by nodes first.
enum class hierarchical_mode { automatic, on, off };

/// Options shared by the policies.
struct policy_options {
  policy_kind kind = policy_kind::balanced;
  hierarchical_mode hierarchical = hierarchical_mode::automatic;
  int threads = 0;  // 0: hardware concurrency; output never depends on it
  // Unused: the balanced policy bounds its search by iteration caps only, so its output never
  // depends on machine speed or load. Kept for source compatibility.
  double time_budget_ms = 0;
  // Migration-aware planning (balanced only): the placement currently deployed; when set, the
  // plan changes as few slots per layer as it can for the same balance (see rebalance_balanced).
  const placement* previous = nullptr;
  // With `previous`: the most slots per layer whose expert may change; -1: no limit.
  int max_moves = -1;
  // What plan_placement optimises; unset: per_step for balanced when per-step samples are given,
  // sum otherwise (deepseek stays vLLM's policy unless per_step is asked for).
  std::optional<objective_kind> objective;
};

/// Parses "deepseek" or "balanced"; invalid_argument otherwise.
result<policy_kind> parse_policy_kind(const std::string& name);

/// Returns the policy's name as the CLI spells it.
const char* policy_name(policy_kind kind) noexcept;

/// How a plan is expected to do on steps it has not seen: the same procedure planned on the
/// first part of the train steps (fit) and judged, step by step, on the sampled steps after them
/// (validation), beside vLLM's policy (deepseek) planned and judged the same way.
struct heldout_estimate {
  bool available = false;
  std::string note;                      // why there is no estimate, when there is none
  std::uint64_t fit_records = 0;         // train records before the validation part
  std::uint64_t validation_records = 0;  // train records in the validation part
  std::uint64_t validation_samples = 0;  // sampled steps the figures are means over
  double plan = 0;      // mean per-step imbalance of the plan's procedure on the validation steps
  double deepseek = 0;  // ... of deepseek's placement planned on the fit steps' sums
  double plan_p99 = 0, deepseek_p99 = 0;  // nearest-rank 99th percentiles of the same
};

/// What a policy decided, beside the placement itself.
struct plan_info {
  std::string policy;         // "deepseek" or "balanced"
  std::string objective = "sum";  // "sum" or "per-step": what the placement was optimised for
  bool hierarchical = false;  // whether node grouping was used
  std::string note;           // why (for example "num_groups % num_nodes != 0: global policy")
  int fallback_layers = 0;    // balanced: layers that kept deepseek's (better) placement
  std::vector<int> moves_per_layer;  // with a previous placement: slots changed in each layer
  std::string step_note;             // per_step: what the step-aware planner chose and why
  // per_step: the recency half-life chosen, as a fraction of the window (0: uniform weights);
  // -1 when the guard kept deepseek's placement.
  double step_half_life = 0;
  heldout_estimate heldout;  // when per-step samples were given
};

/// vLLM's DefaultEplbPolicy (DeepSeek EPLB) reproduced exactly; `weights` is [layers][experts].
/// Returns invalid_topology when the topology violates the policy's divisibility rules.
result<placement> rebalance_deepseek(const weight_matrix& weights, const topology& topo,
                                     plan_info* info = nullptr);

/// As above, but `mode` decides the branch: automatic follows vLLM (hierarchical iff num_groups %
/// num_nodes == 0), on forces node grouping, off forces the global policy (1 group, 1 node).
/// Returns invalid_topology when the topology violates the chosen branch's divisibility rules.
result<placement> rebalance_deepseek(const weight_matrix& weights, const topology& topo,
                                     hierarchical_mode mode, plan_info* info = nullptr);

/// eplb-gen's own policy: replica counts and packing chosen together (a target-driven greedy
/// construction refined by local search and ruin-and-recreate; iteration caps only, so the output
/// never depends on machine speed or thread count), never two replicas of one expert on one rank,
/// and never a higher max rank load than deepseek (run with the same `hierarchical` mode) on any
/// layer: such a layer keeps deepseek's placement, counted in plan_info::fallback_layers. When
/// every rank has more slots than there are experts, duplicates are unavoidable and deepseek's
/// placement is returned. With num_nodes > 1 a node-grouped variant (each expert's replicas on
/// one node; whole groups per node when num_groups > 1) is planned too: `off` skips it, `on`
/// forces it (compared per layer only with deepseek's node-grouped placement, when deepseek has
/// one), automatic keeps it when its sum over layers of the max rank load is within 0.5% of the
/// global plan's, a layer where it loses to deepseek taking the global plan's layer. With
/// options.previous, each layer gets the fewest slot changes from `previous` that bring its max
/// rank load within 0.1% of the from-scratch plan's (and not above deepseek's), or with
/// options.max_moves >= 0 the best placement within that many changed slots, never worse than
/// `previous`; experts that stay on a rank keep their slot. Returns invalid_topology,
/// shape_mismatch or invalid_value on bad inputs, invalid_argument for a `previous` that does
/// not fit the topology.
result<placement> rebalance_balanced(const weight_matrix& weights, const topology& topo,
                                     const policy_options& options, plan_info* info = nullptr);

/// Returns, per layer, the number of slots whose expert differs between `p` and `previous` (zeros
/// when their shapes differ).
std::vector<int> moves_per_layer(const placement& p, const placement& previous);

/// The --max-moves cap, applied to the result of any policy and objective: every layer of `p`
/// that changes more than `max_moves` slots of `previous` is replaced by the best placement the
/// balanced migration search (detail::migrate_layer) finds within the cap, which is never worse
/// than `previous`'s layer, or by `previous`'s layer itself when a rank has more slots than there
/// are experts. Layers within the cap stay as they are. Returns the changed slots of every layer
/// afterwards; invalid_argument for a negative cap or shapes that differ.
result<std::vector<int>> cap_moves(placement& p, const placement& previous, int max_moves,
                                   const weight_matrix& weights, const topology& topo);

/// Runs the policy chosen in `options` on `weights` for `topo` (the sum objective).
result<placement> rebalance(const weight_matrix& weights, const topology& topo,
                            const policy_options& options, plan_info* info = nullptr);

/// The one planning entry: `sums` are the train steps' summed loads [L][E]; `samples` (may be
/// null) an evenly spaced sample of those steps in stream order. With the per-step objective the
/// step-aware planner runs (see plan_for_steps); with the sum objective the policy runs on
/// `sums`. With samples, info->heldout gets the held-out estimate of either. Returns the
/// policy's errors; invalid_argument for the per-step objective without samples.
result<placement> plan_placement(const weight_matrix& sums, const step_samples* samples,
                                 const topology& topo, const policy_options& options,
                                 plan_info* info = nullptr);

/// Knobs of the step-aware planner (the defaults are what the CLI uses).
struct step_plan_options {
  double validation_fraction = 0.2;  // last share of the train records that judges the choices
  int min_samples = 8;  // fewer fit or validation samples: no validation (uniform weights)
  // Recency weights are tried only when they leave this many effective fit samples and the
  // validation part has this many samples.
  int min_effective_samples = 16;
  int max_passes = 3;  // passes of the slot search per layer
  // Recency weights tried: a sample's weight halves every `h` of the window's records, for h a
  // fraction of the window (0: all samples weigh the same).
  std::vector<double> half_lives = {0.0, 0.25, 0.1, 0.05, 0.025};
  int fit_samples = 128;    // the fit part is thinned to at most this many samples for the choice
  int final_samples = 512;  // the final plan uses at most this many samples
  // An expert's share of a sample's layer load counts at most this many times its 95th percentile
  // over the samples (0: no cap): rare spikes are not planned around.
  double spike_cap = 1.5;
};

/// Plans for the steps the server will run. Per layer: deepseek's replica counts and packing on
/// the (recency-weighted) sums, second replicas of an expert on a rank moved away, then slot
/// swaps between ranks that lower the mean over the sampled steps of the per-step imbalance.
/// Which recency weighting is used is chosen on the last `validation_fraction` of the train
/// steps (each variant planned on the steps before them); if none beats deepseek there, the
/// duplicate-free deepseek placement is kept (the guard). The chosen variant is then planned on
/// all samples. The result never holds an expert twice on a rank (unless slots per rank exceed
/// the experts) and does not depend on the thread count.
result<placement> plan_for_steps(const weight_matrix& sums, const step_samples& samples,
                                 const topology& topo, const policy_options& options,
                                 const step_plan_options& step_options, plan_info* info);

}  // namespace eplb
