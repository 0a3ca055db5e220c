#pragma once
// The shared vocabulary: topology, load matrices and placements. Every stage of the pipeline
// (stats -> aggregation -> policy -> mapping -> evaluation) speaks in these types.

#include <Eigen/Core>
#include <cstdint>
#include <string>
#include <vector>

#include "eplb/error.hpp"

namespace eplb {

/// Per-layer per-logical-expert loads as exact 64-bit counts: rows are MoE layers, columns experts.
using load_matrix = Eigen::Matrix<std::int64_t, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Per-layer per-logical-expert loads as doubles, the input of every placement policy.
using weight_matrix = Eigen::Matrix<double, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Per-step logical loads ([L][E]) kept for later work; float halves the memory and is exact
/// for counts below 2^24.
using sample_matrix = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;

/// Where the experts of one model live: layers, logical experts, slots, ranks, nodes and groups.
struct topology {
  int num_layers = 0;   // MoE layers (dense layers are not counted)
  int num_experts = 0;  // logical experts per layer (E)
  int num_slots = 0;    // physical slots per layer (P = E + redundant)
  int num_ranks = 0;    // EP size; rank r owns slots [r*P/EP, (r+1)*P/EP)
  int num_nodes = 1;    // hosts; ranks are split evenly between nodes
  int num_groups = 1;   // expert groups (DeepSeek-V3: 8); experts split evenly between groups

  /// Returns the number of redundant slots per layer (P - E).
  int num_redundant() const noexcept { return num_slots - num_experts; }
  /// Returns the slots per rank (P / EP); only meaningful for a validated topology.
  int slots_per_rank() const noexcept { return num_ranks > 0 ? num_slots / num_ranks : 0; }
  /// Returns the rank that owns a slot; only meaningful for a validated topology.
  int rank_of_slot(int slot) const noexcept { return slot / slots_per_rank(); }
};

/// Checks the counts every placement needs (positive sizes, P >= E, P % EP == 0) and the limits
/// of limits.hpp (limit_exceeded); the error says what to change, for example the smallest valid
/// number of redundant slots.
status validate_topology(const topology& topo);

/// Returns the smallest R >= 0 with (E + R) % EP == 0.
int smallest_valid_redundant(int num_experts, int num_ranks) noexcept;

/// A placement: the logical expert held by every physical slot of every layer.
struct placement {
  int num_layers = 0;
  int num_slots = 0;
  int num_experts = 0;
  std::vector<std::int32_t> physical_to_logical;  // row-major [num_layers][num_slots]

  /// Returns a pointer to the num_slots entries of one layer.
  const std::int32_t* row(int layer) const noexcept {
    return physical_to_logical.data() + static_cast<std::size_t>(layer) * num_slots;
  }
  /// Returns a mutable pointer to the num_slots entries of one layer.
  std::int32_t* row(int layer) noexcept {
    return physical_to_logical.data() + static_cast<std::size_t>(layer) * num_slots;
  }
  /// Returns the logical expert in a slot of a layer.
  std::int32_t at(int layer, int slot) const noexcept { return row(layer)[slot]; }
};

/// Returns vLLM's startup layout: slot p of every layer holds expert p % E.
placement identity_placement(const topology& topo);

/// Checks that a placement fits the topology: shape, ids in [0, E), every expert present per layer.
status validate_placement(const placement& p, const topology& topo);

/// Returns the replica count of every logical expert, row-major [num_layers][num_experts].
std::vector<std::int32_t> replica_counts(const placement& p);

/// Returns, per layer and expert, its slots in ascending order (vLLM's logical_to_physical order).
std::vector<std::vector<std::vector<std::int32_t>>> logical_to_physical(const placement& p);

}  // namespace eplb
