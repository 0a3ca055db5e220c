#pragma once
// Private: the local search of the step-aware planner on one layer. A static placement is judged
// step by step: in every sampled step each expert's load is split evenly over its replicas and
// the busiest rank sets the layer's time. The search lowers sum_s w_s * max_r load_r(s) over the
// samples s (w_s: the sample's weight, 1 / its mean rank load summed over layers times its
// recency weight) by swapping slots between ranks and by re-splits (one replica of an expert with
// several becomes a replica of another expert, so replica counts change too). No move puts a
// second replica of an expert on a rank.

#include <cstdint>
#include <vector>

namespace eplb::detail {

/// One layer's sampled loads: x[e * samples + s] is expert e's load in sample s.
struct step_layer {
  const double* x = nullptr;  // [experts][samples]
  const double* w = nullptr;  // [samples] weight of every sample
  int experts = 0;
  int samples = 0;
  int ranks = 0;
  int per_rank = 0;
  /// Returns the number of slots (ranks * per_rank).
  int slots() const noexcept { return ranks * per_rank; }
};

/// The search state of one layer (reusable across layers to keep its buffers).
class step_search {
 public:
  /// Loads an assignment of v.slots() slots (a rank may hold an expert twice; no move adds such a
  /// duplicate, and swaps may take one apart). Moves stay inside blocks of
  /// `rank_block` consecutive ranks; `pinned` true also keeps every expert's replicas inside the
  /// block they start in (node-grouped placements). `previous` (may be null) is what changed()
  /// counts against.
  void reset(const step_layer& v, const std::int32_t* slots, int rank_block, bool pinned,
             const std::int32_t* previous = nullptr);
  /// Runs up to `max_passes` passes (each: every swap, then, when `resplit`, re-splits towards the
  /// `resplit_targets` experts most often on a busiest rank), applying each move that lowers the
  /// objective and keeps changed() <= `budget` (< 0: no limit); returns the moves applied.
  int improve(int max_passes, bool resplit, int resplit_targets, int budget = -1);
  /// Returns the slots whose expert differs from `previous` (0 without one).
  int changed() const noexcept { return changed_; }
  /// Returns sum_s w_s * max_r load_r(s) of the current assignment.
  double objective() const;
  /// Returns the current assignment.
  const std::vector<std::int32_t>& slots() const noexcept { return slot_; }

 private:
  static constexpr int top_n = 4;
  double* piece(int a) { return piece_.data() + static_cast<std::size_t>(a) * S_; }
  double* load(int r) { return load_.data() + static_cast<std::size_t>(r) * S_; }
  const double* xe(int e) const { return v_.x + static_cast<std::size_t>(e) * S_; }
  bool has(int r, int e) const { return has_[static_cast<std::size_t>(r) * E_ + e] != 0; }
  void set_piece(int a);
  void update_top(std::size_t s);
  void update_top_all();
  void update_top_pair(int ra, int rb);
  void update_maxp(int r);
  bool first_order(int ra, int rb);
  void gather_pair(int ra, int rb);
  double swap_delta(int i, int jb) const;
  double swap_screen(int i, int jb) const;
  void apply_swap(int a, int b);
  int swap_pass(double eps, int budget);
  int resplit_pass(double eps, int targets, int budget);
  int differs(int slot, int expert) const noexcept {
    return prev_.empty() ? 0 : (prev_[static_cast<std::size_t>(slot)] != expert ? 1 : 0);
  }
  double resplit_gain(int a, int e2);
  void apply_resplit(int a, int e2);

  step_layer v_;
  std::size_t S_ = 0;
  int E_ = 0, R_ = 0, k_ = 0, P_ = 0, block_ = 1;
  bool pinned_ = false;
  std::vector<std::int32_t> slot_, prev_;
  int changed_ = 0;
  std::vector<int> cnt_;
  std::vector<std::uint16_t> has_;  // [rank][expert] replicas of the expert on the rank
  std::vector<double> piece_, load_;
  std::vector<double> maxp_;   // [R][S] largest piece of every rank in every sample
  std::vector<double> top_v_;  // [S][top_n]
  std::vector<int> top_r_;     // [S][top_n]
  // Scratch of resplit_gain: affected ranks and their coefficients on x[e1] and x[e2].
  std::vector<int> aff_;
  std::vector<double> alpha_, beta_;
  std::vector<int> mark_;  // [R] 1 + the rank's index in aff_, 0 when unaffected
  std::vector<double> score_;
  std::vector<std::uint8_t> touched_, touched_last_;  // ranks a swap changed, this / last pass
  bool first_pass_ = true;
  // Scratch of a rank pair (gather_pair): the samples that matter and their gathered figures.
  std::vector<std::uint32_t> rel_;
  std::vector<double> g_other_, g_la_, g_lb_, g_v0_, g_w_, g_piece_, first_;
  std::vector<float> f_other_, f_la_, f_lb_, f_w_, f_piece_;
  double screen_tolerance_ = 0;
  std::vector<int> order_;
};

}  // namespace eplb::detail
