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
  int max_moves = -1;  // with `previous`: most slots per layer whose expert may change; -1: no limit
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
  int fallback_layers = 0;    // balanced: layers where deepseek's placement was kept (it was better)
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
/// construction refined by local search: swaps between ranks and re-splits of replicas between
/// experts), never two replicas of one expert on one rank, and never a higher max rank load than
/// deepseek on any layer (that layer keeps deepseek's placement then, counted in
/// plan_info::fallback_layers). With num_nodes > 1 a node-grouped variant (every expert's replicas
/// on one node) is planned too: `on` forces it, `off` skips it, and automatic keeps it when its
/// sum over layers of the max rank load is within 0.5% of the global plan's. With
/// options.previous, each layer first gets a from-scratch target and then the fewest slot changes
/// from `previous` that reach it within 0.1% (never above deepseek's max), or the best placement
/// within options.max_moves changed slots, never worse than `previous`; experts that stay on a
/// rank keep their slot. Returns invalid_topology, shape_mismatch or invalid_value on bad inputs.
result<placement> rebalance_balanced(const weight_matrix& weights, const topology& topo,
                                     const policy_options& options, plan_info* info = nullptr);

/// Runs the policy chosen in `options` on `weights` for `topo`.
result<placement> rebalance(const weight_matrix& weights, const topology& topo,
                            const policy_options& options, plan_info* info = nullptr);

}  // namespace eplb
