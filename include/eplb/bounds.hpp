#pragma once
// Lower bounds on the best achievable max rank load of each layer (policy-reference section 10),
// and the gap of a placement to them. A gap of 0 certifies a layer optimal; a large gap says either
// the placement or the bound is loose (the bounds are not tight for 3-4 slots per rank).
//
// Model: loads w_e >= 0, M ranks, P slots, k = P / M replicas on every rank; replica counts
// c_e >= 1 with sum c_e = P and c_e <= cap; each replica of e carries w_e / c_e (even split, as in
// vLLM's metric). Cap semantics:
//  - forbid_duplicates = true: no rank holds two replicas of one expert, so cap = min(M, R + 1).
//    Any count vector with c_e <= M can be placed without duplicates (deal the replicas, grouped by
//    expert, round-robin over the ranks), so the bounds cover every duplicate-free placement;
//    when k > E there is none and the bound is +inf.
//  - forbid_duplicates = false: cap = R + 1 (every other expert keeps one slot); the bounds cover
//    every placement, including those that stack replicas of one expert on a rank (vLLM's policy
//    does). Use this to measure placements that may hold duplicates.
// OPT(cap) is the minimum over such counts and placements of the max rank load; every bound below
// is <= OPT (up to rounding in the last bits of a double).

#include <vector>

#include "eplb/error.hpp"
#include "eplb/types.hpp"

namespace eplb {

/// How the optimum the bounds refer to is constrained.
struct bound_options {
  bool forbid_duplicates = true;  // cap = min(M, R + 1) when true, R + 1 when false
  // B3's slot minimum is a 0/1 knapsack: true solves it exactly (dynamic programming, tighter),
  // false uses its fractional relaxation only (cheaper); both give valid bounds.
  bool exact_knapsack = true;
};

/// The bounds of one layer; best is their maximum.
struct layer_bound {
  double b1_mean = 0;         // W / M
  double b2_replication = 0;  // T_rep = min over feasible counts of max_e w_e / c_e (D'Hondt)
  double b3_cardinality = 0;  // max_j LB_j; computed only where it exceeds max(b1, b2), else 0
  double b4_packing = 0;      // replica-packing bound; only when R == 0 (counts forced), else 0
  double best = 0;            // max of the above; +inf when no placement satisfies the cap
};

/// Lower bound of the optimal max rank load of one layer (weights w[0..E), M ranks, P slots);
/// returns all zeros (a trivial bound) when the sizes are invalid or a weight is negative or NaN.
layer_bound lower_bound_layer(const double* w, int num_experts, int num_slots, int num_ranks,
                              const bound_options& options);

/// Bounds of every layer of `weights` ([layers][experts]); invalid_topology, shape_mismatch or
/// invalid_value when the topology, the shape or a weight is unusable, or when forbid_duplicates
/// leaves no feasible placement (more slots per rank than experts).
result<std::vector<layer_bound>> lower_bounds(const weight_matrix& weights, const topology& topo,
                                              const bound_options& options);

/// How far a placement is from the lower bounds, per layer and overall.
struct gap_report {
  std::vector<double> layer_gap;    // max_load / LB - 1 per layer (0 when the layer has no load)
  double mean_gap = 0;              // mean of layer_gap
  double worst_gap = 0;             // max of layer_gap
  int worst_layer = 0;              // first layer with the worst gap
  double overall_gap = 0;           // sum_l max_l / sum_l LB_l - 1 (0 when there is no load)
  std::vector<double> layer_bound;  // LB_l (layer_bound::best)
  std::vector<double> layer_max;    // max rank load per layer, replicas splitting load evenly
};

/// Gap of placement `p` to the lower bounds of `weights` under `topo`; the errors of lower_bounds,
/// or those of validate_placement when `p` does not fit `topo`.
result<gap_report> measure_gap(const weight_matrix& weights, const placement& p,
                               const topology& topo, const bound_options& options);

}  // namespace eplb
