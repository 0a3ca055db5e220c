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
  policy_kind kind = policy_kind::deepseek;
  hierarchical_mode hierarchical = hierarchical_mode::automatic;
  int threads = 0;                  // 0: hardware concurrency; output never depends on it
  double time_budget_ms = 0;        // 0: the policy's default budget for local search
};

/// Parses "deepseek" or "balanced"; invalid_argument otherwise.
result<policy_kind> parse_policy_kind(const std::string& name);

/// Returns the policy's name as the CLI spells it.
const char* policy_name(policy_kind kind) noexcept;

/// What a policy decided, beside the placement itself.
struct plan_info {
  std::string policy;        // "deepseek" or "balanced"
  bool hierarchical = false;  // whether node grouping was used
  std::string note;          // why (for example "num_groups % num_nodes != 0: global policy")
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

/// Runs the policy chosen in `options` on `weights` for `topo`.
result<placement> rebalance(const weight_matrix& weights, const topology& topo,
                            const policy_options& options, plan_info* info = nullptr);

}  // namespace eplb
