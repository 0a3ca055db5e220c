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

result<objective_kind> parse_objective(const std::string& name) {
  if (name == "sum") return objective_kind::sum;
  if (name == "per-step") return objective_kind::per_step;
  std::string what = "unknown objective '";
  what.append(name).append("' (expected sum or per-step)");
  return make_error(errc::invalid_argument, position{}, "--objective", what);
}

const char* objective_name(objective_kind kind) noexcept {
  return kind == objective_kind::per_step ? "per-step" : "sum";
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
