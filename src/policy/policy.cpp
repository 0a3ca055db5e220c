// Policy names and dispatch.

#include "eplb/policy.hpp"

#include <string>

namespace eplb {

result<policy_kind> parse_policy_kind(const std::string& name) {
  if (name == "deepseek") return policy_kind::deepseek;
  if (name == "balanced") return policy_kind::balanced;
  std::string what = "unknown policy '";
  what.append(name).append("' (expected deepseek or balanced)");
  return make_error(errc::invalid_argument, position{}, "--policy", what);
}

const char* policy_name(policy_kind kind) noexcept {
  switch (kind) {
    case policy_kind::deepseek:
      return "deepseek";
    case policy_kind::balanced:
      return "balanced";
  }
  return "unknown";
}

result<placement> rebalance(const weight_matrix& weights, const topology& topo,
                            const policy_options& options, plan_info* info) {
  switch (options.kind) {
    case policy_kind::deepseek:
      return rebalance_deepseek(weights, topo, options.hierarchical, info);
    case policy_kind::balanced:
      return rebalance_balanced(weights, topo, options, info);
  }
  return make_error(errc::invalid_argument, position{}, "--policy", "unknown policy kind");
}

}  // namespace eplb
