#pragma once
// Placement policies: a load matrix and a topology in, a placement out.

#include <string>
#include <vector>

#include "eplb/error.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// The placement algorithms eplb-gen offers.
enum class policy_kind { deepseek, balanced };

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
};

/// Parses "deepseek" or "balanced"; invalid_argument otherwise.
result<policy_kind> parse_policy_kind(const std::string& name);

/// Returns the policy's name as the CLI spells it.
const char* policy_name(policy_kind kind) noexcept;

/// What a policy decided, beside the placement itself.
struct plan_info {
  std::string policy;         // "deepseek" or "balanced"
  bool hierarchical = false;  // whether node grouping was used
  std::string note;           // why (for example "num_groups % num_nodes != 0: global policy")
  int fallback_layers = 0;    // balanced: layers that kept deepseek's (better) placement
  std::vector<int> moves_per_layer;  // with a previous placement: slots changed in each layer
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

/// Runs the policy chosen in `options` on `weights` for `topo`.
result<placement> rebalance(const weight_matrix& weights, const topology& topo,
                            const policy_options& options, plan_info* info = nullptr);

}  // namespace eplb
