#pragma once
// Building blocks of the balanced policy (balanced.cpp, migration.cpp), exposed for unit tests.
// Everything works on one layer: loads w[0..E), M ranks of k slots each (P = M * k slots); a slot
// assignment is P expert ids, slot p on rank p / k. A replica of expert e carries w[e] / c[e],
// c[e] being e's number of replicas, as vLLM's metric splits it.

#include <cstdint>
#include <limits>
#include <utility>
#include <vector>

namespace eplb::detail {

/// One layer's loads and shape; the loads are borrowed.
struct layer_view {
  const double* w = nullptr;  // E loads, finite and >= 0
  int experts = 0;            // E
  int ranks = 0;              // M
  int per_rank = 0;           // k
  /// Returns P = M * k.
  int slots() const noexcept { return ranks * per_rank; }
};

/// Returns the max rank load of `slots`, summed per rank in slot order exactly as
/// eplb::rank_loads does; `cnt` and `load` are scratch.
double max_rank_load(const layer_view& v, const std::int32_t* slots, std::vector<int>& cnt,
                     std::vector<double>& load);

/// Returns how many replicas share a rank with another replica of the same expert beyond the
/// first (0: no rank holds an expert twice).
int count_duplicates(const layer_view& v, const std::int32_t* slots);

/// Swaps second replicas of an expert on a rank with replicas on other ranks of the same block of
/// `block_ranks` ranks until no rank holds an expert twice, keeping the max rank load at or below
/// `limit`; returns false (and leaves `slots` unchanged) when it cannot.
bool repair_duplicates(const layer_view& v, std::int32_t* slots, int block_ranks, double limit);

/// Returns max(W / M, the smallest possible max replica load with counts capped at M), a lower
/// bound of the max rank load of every duplicate-free placement (policy-reference section 10,
/// B1 and B2).
double simple_lower_bound(const layer_view& v);

/// Local search on a slot assignment. Each step looks at the most loaded rank r (load L) and
/// applies the move whose changed ranks all end below L with the smallest maximum: a swap of one
/// of r's replicas with a lighter replica elsewhere, or a re-split that turns one replica of an
/// expert with >= 2 replicas into a replica of another expert (growing one expert's count and
/// shrinking the other's, which changes every replica size of both). Every step lowers the sorted
/// load vector lexicographically, so the search terminates; the step cap bounds its time.
/// No move puts a second replica of an expert on a rank.
class local_search {
 public:
  /// Loads `slots` of layer `v`. `previous` (nullable, P ids) is what moves() counts changes
  /// against; `expert_node` (nullable, E entries, -1 = anywhere) pins each expert's new replicas
  /// to the ranks [n * ranks_per_node, (n + 1) * ranks_per_node) of its node n.
  void reset(const layer_view& v, const std::int32_t* slots, const std::int32_t* previous = nullptr,
             const int* expert_node = nullptr, int ranks_per_node = 0);

  /// Applies moves until the max rank load is <= target, no move improves, `max_steps` steps
  /// were taken, or (budget >= 0) every improving move would make moves() exceed `budget`.
  /// With a previous placement, moves reaching the target are preferred, fewest changed slots
  /// first. `resplit` false: swaps only (no re-splits, no 2-for-2 exchanges). Returns the
  /// number of steps taken.
  int improve(double target, int budget, int max_steps, bool resplit = true);

  /// Moves every second (third, ...) replica of an expert on a rank away by the swap that
  /// leaves the two ranks' max lowest, as long as moves() stays within `budget` (< 0: none);
  /// returns the number of duplicates left.
  int remove_duplicates(int budget);

  /// Undoes changes against the previous placement while every rank stays <= target: a changed
  /// slot takes back its previous expert (a re-split) or trades experts with another changed
  /// slot (a swap), whenever that lowers moves() without a duplicate. Returns moves() after.
  int revert_moves(double target, int max_passes);

  /// Returns the current max rank load (incrementally maintained).
  double max_load() const noexcept;
  /// Returns the number of slots that differ from the previous placement (0 without one).
  int moves() const noexcept { return moves_; }
  /// Returns the current slot assignment.
  const std::vector<std::int32_t>& slots() const noexcept { return slot_; }

 private:
  struct candidate {
    int kind = -1;  // 0 swap slots (p, q); 1 convert slot p to expert b; 2 repartition ranks
                    // (p, q) by mask b
    int p = -1, q = -1, b = -1;
    double new_max = std::numeric_limits<double>::infinity();
    int delta_moves = 0;
  };
  struct grow_info {
    int expert;
    double ia;          // growth of each remaining replica when one is taken away
    double top1, top2;  // highest new loads of its ranks other than the max rank
    int top1_rank;
  };
  bool better(const candidate& a, const candidate& b, double target) const noexcept;
  bool allowed(int expert, int rank) const noexcept {
    return expert_node_ == nullptr || expert_node_[expert] < 0 ||
           expert_node_[expert] == rank / ranks_per_node_;
  }
  int has(int rank, int expert) const noexcept {
    return has_[static_cast<std::size_t>(rank) * experts_ + expert];
  }
  int change_cost(int slot, int expert) const noexcept;
  void scan_swaps_fast(int r, double limit, candidate& best);
  template <typename Budget, typename Offer>
  void scan_swaps(int r, int s, double limit, Budget&& within_budget, Offer&& offer);
  template <typename Budget, typename Offer>
  void scan_repartitions(int r, int s, double limit, Budget&& within_budget, Offer&& offer);
  void apply(const candidate& c);
  static constexpr int max_repartition_k = 4;
  static const std::vector<unsigned>& repartition_masks(int k);
  template <typename F>
  void for_each_repartition_swap(int r, int s, unsigned mask, F&& f) const;
  void apply_swap(int p, int q);
  void apply_convert(int p, int b);
  void list_remove(int slot);
  void list_add(int slot, int expert);

  const double* w_ = nullptr;
  int experts_ = 0, ranks_ = 0, per_rank_ = 0, slots_ = 0;
  const int* expert_node_ = nullptr;
  int ranks_per_node_ = 1;
  std::vector<std::int32_t> slot_, prev_;
  std::vector<int> cnt_;
  std::vector<double> piece_, load_, expert_max_;
  std::vector<double> slot_piece_;      // piece_ of each slot's expert
  std::vector<std::uint8_t> has_;       // [rank][expert] replica counts
  std::vector<std::int32_t> old_slot_;  // the assignment has_ last described
  int has_experts_ = -1, has_ranks_ = -1, has_per_rank_ = -1;
  std::vector<std::vector<int>> slots_of_;  // per expert: its slots
  std::vector<grow_info> multi_;            // experts with >= 2 replicas that may give one
  std::vector<int> list_pos_;               // slot -> index in slots_of_[slot_[slot]]
  std::vector<int> rank_of_;                // slot -> rank
  int moves_ = 0;
};

/// Writes to `out` a duplicate-free assignment made from `start` (which may hold an expert twice
/// on a rank): second replicas are swapped to other ranks where that keeps the max lowest, and
/// those that cannot move become a replica of the absent expert whose next replica is largest.
/// With ranks_per_node > 0 every expert stays on the node (block of ranks) of its first replica.
/// Returns false when no duplicate-free assignment is found (k > E, or too few experts on a
/// node). `search` is scratch.
bool make_duplicate_free(const layer_view& v, const std::int32_t* start, local_search& search,
                         std::vector<std::int32_t>& out, int ranks_per_node = 0);

/// Tuning of layer_planner; the defaults are what the policy uses.
struct planner_config {
  int probes = 8;                   // construction targets tried by bisection
  int search_starts = 1;            // best constructions refined by local search
  int max_steps_per_slot = 8;       // local search step cap = this * P + 64
  int lns_iterations_small_k = 12;  // ruin-and-recreate iterations when k <= 4
  int lns_iterations_mid_k = 12;    // ... when 5 <= k <= 8
  int lns_iterations = 0;           // ... when k > 8 (whole ranks are too large to ruin)
  int lns_ranks = 3;                // random ranks ruined with the most loaded one
  int lns_ranks_mid_k = 6;          // ... when 5 <= k <= 8
  int lns_steps = 16;               // local search steps a recreated candidate gets to win
  bool lns_quick_resplit = false;   // whether those steps may re-split replicas
};

/// Plans one layer from scratch: candidate placements from a target-driven greedy construction
/// (experts by descending load, each split over the fewest least-loaded ranks that keep them
/// under the target, free slots then filled with the replica that lowers the max most), the
/// target bisected between the lower bound and the best max found, plus D'Hondt counts packed
/// largest first; local search on the best; then ruin-and-recreate (remove every replica of the
/// experts on the most loaded rank and a few random ranks, re-insert them with the construction's
/// rule, keep the result if it is better). Deterministic: a fixed-seed generator, iteration caps.
class layer_planner {
 public:
  explicit layer_planner(planner_config config = {}) : config_(config) {}
  /// Writes a duplicate-free assignment of P slots to `out` and returns its max rank load
  /// (max_rank_load of `out`). Requires 1 <= k <= E. `refine` false skips the
  /// ruin-and-recreate phase (a cheaper, usually slightly worse plan).
  double plan(const layer_view& v, std::int32_t* out, bool refine = true);

  /// Migration repair: from `start` (an assignment of layer `v`), repeatedly empties the most
  /// loaded rank, the least loaded one and a random one, refills them with the construction's
  /// rule and local search (moves counted against `previous`), keeping each result that lowers
  /// the max within the move budget (< 0: none), until the max is <= target or `iterations`
  /// tries. Writes the best assignment (slots kept where experts stay) to `out`.
  void repair(const layer_view& v, const std::int32_t* previous, const std::int32_t* start,
              double target, int budget, int iterations, std::int32_t* out);

  /// Starts from `start` (which may hold duplicate replicas): moves the duplicates away, then
  /// local search and `iterations` ruin-and-recreate rounds. Writes the result to `out` and
  /// returns its max rank load, or +inf (out unchanged) when a duplicate cannot be removed.
  double improve_from(const layer_view& v, const std::int32_t* start, int iterations,
                      std::int32_t* out);

 private:
  double construct(const layer_view& v, double target, std::int32_t* out);
  // Orders extra-replica candidates: smaller next replica, then fewer replicas, then index.
  bool cheaper(int a, int b) const {
    const double na = next_piece_[static_cast<std::size_t>(a)];
    const double nb = next_piece_[static_cast<std::size_t>(b)];
    if (na != nb) return na < nb;
    const int ca = cnt_[static_cast<std::size_t>(a)], cb = cnt_[static_cast<std::size_t>(b)];
    return ca != cb ? ca < cb : a < b;
  }
  void clear_has(int experts, int ranks);
  void set_has(std::size_t i) {
    has_[i] = 1;
    has_set_.push_back(i);
  }
  double recreate(const layer_view& v, double target, std::int32_t* out,
                  const std::vector<int>& insert);
  void ruin_and_recreate(const layer_view& v, std::int32_t* best, double& best_max,
                         int iterations = -1);
  void sort_experts(const layer_view& v);
  double dhondt_lpt(const layer_view& v, std::int32_t* out);

  planner_config config_;
  std::vector<int> order_, free_, cnt_, by_load_, merged_, fill_, ranks_of_, fill_order_;
  std::vector<double> load_, cur_piece_, next_piece_;
  std::vector<std::uint8_t> has_;
  std::vector<std::size_t> has_set_;  // entries of has_ set since the last clear
  std::pair<int, int> has_dims_{-1, -1};
  std::vector<std::int32_t> cand_;
  std::vector<std::pair<double, int>> heap_;
  std::vector<int> exact_cnt_;
  std::vector<double> exact_load_;
  local_search search_;
};

/// Assigns the experts of layer `v` to `nodes` nodes for node-grouped planning: whole groups of
/// `group_size` experts when group_size > 1 (falling back to single experts if that fails), the
/// heaviest first onto the least loaded node that keeps every node between k and P / nodes
/// experts. Writes expert_node[E]; returns false when nodes * k > E (no valid assignment).
bool assign_nodes(const layer_view& v, int nodes, int group_size, std::vector<int>& expert_node);

/// Plans layer `v` with each expert's replicas on the ranks of its node (expert_node from
/// assign_nodes): one independent layer_planner run per node. Writes P slots to `out` and
/// returns the max rank load.
double plan_grouped(layer_planner& planner, const layer_view& v, int nodes,
                    const std::vector<int>& expert_node, std::int32_t* out);

/// Rewrites the assignment `plan` so that it changes as few slots of `previous` as possible
/// without changing any rank's set of replicas up to a permutation of the ranks inside each
/// block of `ranks_per_block` ranks (minimum-cost matching), then, inside each rank, keeping every
/// expert the previous placement had in some slot of that rank in that slot. Writes P slots to
/// `out` and returns the number of slots that differ from `previous`.
int align_to_previous(const layer_view& v, const std::int32_t* plan, const std::int32_t* previous,
                      int ranks_per_block, std::int32_t* out);

/// Reorders the slots inside every rank of `slots` so that each expert a rank held in
/// `previous` and still holds keeps its previous slot; returns the slots that differ from
/// `previous` (the fewest any order inside the ranks allows).
int keep_slots(const layer_view& v, const std::int32_t* previous, std::int32_t* slots);

/// What migrate_layer chose.
struct migration_outcome {
  int moves = 0;        // slots that differ from the previous placement
  double max_load = 0;  // max rank load of the result
  int duplicates = 0;   // duplicates left (only when a budget forbade removing the previous ones)
};

/// Re-plans one layer starting from `previous`: applies the local search's improving moves
/// (fewest changed slots first) until the max rank load is <= target, and compares that with
/// `scratch` (a from-scratch plan, aligned to `previous`), with layer_planner::repair from the
/// local search's result (unless experts are pinned to nodes) and with `previous` itself. Without a
/// budget (max_moves < 0): a duplicate-free candidate reaching the target with the fewest moves,
/// else the lowest max. With one: the same among candidates with at most max_moves moves.
/// Writes P slots to `out`.
migration_outcome migrate_layer(const layer_view& v, const std::int32_t* previous,
                                const std::int32_t* scratch, double target, int max_moves,
                                const int* expert_node, int ranks_per_node, local_search& search,
                                layer_planner& planner, std::int32_t* out);

}  // namespace eplb::detail
