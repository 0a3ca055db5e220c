#include "eplb/types.hpp"

#include <string>

#include "eplb/limits.hpp"

namespace eplb {

int smallest_valid_redundant(int num_experts, int num_ranks) noexcept {
  if (num_ranks <= 0) return 0;
  return (num_ranks - num_experts % num_ranks) % num_ranks;
}

status validate_topology(const topology& t) {
  const position none{};
  auto bad = [&](const std::string& field, const std::string& what) {
    return status(make_error(errc::invalid_topology, none, field, what));
  };
  auto over = [&](const std::string& field, const std::string& what, std::int64_t limit) {
    return status(
        make_error(errc::limit_exceeded, none, field,
                   what + " exceeds the limit of " + std::to_string(limit) + " (docs/limits.md)"));
  };
  if (t.num_layers <= 0)
    return bad("num_layers", "must be positive, got " + std::to_string(t.num_layers));
  if (t.num_experts <= 0)
    return bad("num_experts", "must be positive, got " + std::to_string(t.num_experts));
  if (t.num_ranks <= 0)
    return bad("--ep", "EP size must be positive, got " + std::to_string(t.num_ranks));
  // The limits come before any arithmetic on the counts, which then cannot overflow.
  if (t.num_layers > limits::max_layers) {
    return over("num_layers", std::to_string(t.num_layers), limits::max_layers);
  }
  if (t.num_experts > limits::max_experts) {
    return over("num_experts", std::to_string(t.num_experts), limits::max_experts);
  }
  if (t.num_ranks > limits::max_slots) {
    return over("--ep", "EP size " + std::to_string(t.num_ranks), limits::max_slots);
  }
  if (t.num_slots < t.num_experts) {
    return bad("--redundant", "must be non-negative, got " +
                                  std::to_string(std::int64_t{t.num_slots} - t.num_experts));
  }
  if (t.num_slots > limits::max_slots) {
    return over("--redundant",
                "num_slots=" + std::to_string(t.num_slots) + " (" + std::to_string(t.num_experts) +
                    " experts + " + std::to_string(t.num_slots - t.num_experts) + " redundant)",
                limits::max_slots);
  }
  if (std::int64_t{t.num_layers} * t.num_slots > limits::max_cells) {
    return over(
        "num_layers",
        std::to_string(t.num_layers) + " layers x " + std::to_string(t.num_slots) + " slots",
        limits::max_cells);
  }
  if (t.num_slots % t.num_ranks != 0) {
    const int r = t.num_slots - t.num_experts;
    // The next R' >= R with (E + R') % EP == 0, computed (a loop could run 2^31 times).
    const int next = r + (t.num_ranks - t.num_slots % t.num_ranks) % t.num_ranks;
    return bad("--redundant",
               "num_slots=" + std::to_string(t.num_slots) + " (" + std::to_string(t.num_experts) +
                   " experts + " + std::to_string(r) + " redundant) must be divisible by --ep " +
                   std::to_string(t.num_ranks) + "; use --redundant " + std::to_string(next) +
                   " (smallest valid: " +
                   std::to_string(smallest_valid_redundant(t.num_experts, t.num_ranks)) + ")");
  }
  if (t.num_nodes <= 0)
    return bad("--nodes", "must be positive, got " + std::to_string(t.num_nodes));
  if (t.num_groups <= 0)
    return bad("--groups", "must be positive, got " + std::to_string(t.num_groups));
  if (t.num_ranks % t.num_nodes != 0) {
    return bad("--nodes", "EP size " + std::to_string(t.num_ranks) +
                              " must be divisible by --nodes " + std::to_string(t.num_nodes));
  }
  if (t.num_experts % t.num_groups != 0) {
    return bad("--groups", std::to_string(t.num_experts) +
                               " experts must be divisible by --groups " +
                               std::to_string(t.num_groups));
  }
  return status::success();
}

placement identity_placement(const topology& t) {
  placement p;
  p.num_layers = t.num_layers;
  p.num_slots = t.num_slots;
  p.num_experts = t.num_experts;
  p.physical_to_logical.resize(static_cast<std::size_t>(t.num_layers) * t.num_slots);
  for (int l = 0; l < t.num_layers; ++l) {
    for (int s = 0; s < t.num_slots; ++s) p.row(l)[s] = s % t.num_experts;
  }
  return p;
}

status validate_placement(const placement& p, const topology& t) {
  const position none{};
  if (p.num_layers != t.num_layers || p.num_slots != t.num_slots ||
      p.num_experts != t.num_experts ||
      p.physical_to_logical.size() != static_cast<std::size_t>(p.num_layers) * p.num_slots) {
    return make_error(errc::shape_mismatch, none, "placement",
                      "shape " + std::to_string(p.num_layers) + "x" + std::to_string(p.num_slots) +
                          " (" + std::to_string(p.num_experts) +
                          " experts) does not match topology " + std::to_string(t.num_layers) +
                          "x" + std::to_string(t.num_slots) + " (" + std::to_string(t.num_experts) +
                          " experts)");
  }
  std::vector<int> seen(static_cast<std::size_t>(t.num_experts));
  for (int l = 0; l < p.num_layers; ++l) {
    std::fill(seen.begin(), seen.end(), 0);
    for (int s = 0; s < p.num_slots; ++s) {
      const int e = p.at(l, s);
      if (e < 0 || e >= t.num_experts) {
        return make_error(errc::out_of_range, none,
                          "layer " + std::to_string(l) + " slot " + std::to_string(s),
                          "expert " + std::to_string(e) + " is outside [0, " +
                              std::to_string(t.num_experts) + ")");
      }
      ++seen[static_cast<std::size_t>(e)];
    }
    for (int e = 0; e < t.num_experts; ++e) {
      if (seen[static_cast<std::size_t>(e)] == 0) {
        return make_error(errc::invalid_value, none, "layer " + std::to_string(l),
                          "logical expert " + std::to_string(e) + " has no slot");
      }
    }
  }
  return status::success();
}

std::vector<std::int32_t> replica_counts(const placement& p) {
  std::vector<std::int32_t> cnt(static_cast<std::size_t>(p.num_layers) * p.num_experts, 0);
  for (int l = 0; l < p.num_layers; ++l) {
    for (int s = 0; s < p.num_slots; ++s) {
      const int e = p.at(l, s);
      if (e >= 0 && e < p.num_experts) ++cnt[static_cast<std::size_t>(l) * p.num_experts + e];
    }
  }
  return cnt;
}

std::vector<std::vector<std::vector<std::int32_t>>> logical_to_physical(const placement& p) {
  std::vector<std::vector<std::vector<std::int32_t>>> out(
      static_cast<std::size_t>(p.num_layers),
      std::vector<std::vector<std::int32_t>>(static_cast<std::size_t>(p.num_experts)));
  for (int l = 0; l < p.num_layers; ++l) {
    for (int s = 0; s < p.num_slots; ++s) {
      const int e = p.at(l, s);
      if (e >= 0 && e < p.num_experts) out[l][static_cast<std::size_t>(e)].push_back(s);
    }
  }
  return out;
}

}  // namespace eplb
