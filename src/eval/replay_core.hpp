#pragma once
// Private: the inner loop of every replay (eval, step_imbalances): rank loads of one step under
// one placement, each logical expert's load split evenly over its replicas.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "eplb/types.hpp"

namespace eplb::detail {

/// Per slot of one placement: its logical expert, its rank and 1 / the expert's replica count.
class slot_table {
 public:
  /// Fills the table for `p` (which must be valid) with `num_ranks` ranks.
  void build(const placement& p, int num_ranks) {
    layers_ = p.num_layers;
    slots_ = p.num_slots;
    experts_ = p.num_experts;
    ranks_ = num_ranks;
    const auto n = static_cast<std::size_t>(layers_) * static_cast<std::size_t>(slots_);
    expert_.resize(n);
    rank_.resize(n);
    share_.resize(n);
    for (int l = 0; l < layers_; ++l) set_row(l, p.row(l));
  }

  /// Refills one layer from a row of slot -> expert ids (each in [0, E), every expert present).
  void set_row(int layer, const std::int32_t* row) {
    count_.assign(static_cast<std::size_t>(experts_), 0);
    for (int s = 0; s < slots_; ++s) ++count_[static_cast<std::size_t>(row[s])];
    const int per_rank = slots_ / ranks_;
    const std::size_t base = static_cast<std::size_t>(layer) * static_cast<std::size_t>(slots_);
    for (int s = 0; s < slots_; ++s) {
      expert_[base + s] = row[s];
      rank_[base + s] = s / per_rank;
      share_[base + s] = 1.0 / count_[static_cast<std::size_t>(row[s])];
    }
  }

  /// Adds one layer's rank loads for the logical loads `w` ([E]) into `out` ([R], zeroed by the
  /// caller); sums run in slot order, so results do not depend on anything but the inputs.
  template <class T>
  void add_layer(int layer, const T* w, double* out) const {
    const std::size_t base = static_cast<std::size_t>(layer) * static_cast<std::size_t>(slots_);
    for (int s = 0; s < slots_; ++s) {
      out[rank_[base + s]] += static_cast<double>(w[expert_[base + s]]) * share_[base + s];
    }
  }

  int num_layers() const noexcept { return layers_; }
  int num_slots() const noexcept { return slots_; }
  int num_experts() const noexcept { return experts_; }
  int num_ranks() const noexcept { return ranks_; }

 private:
  int layers_ = 0, slots_ = 0, experts_ = 0, ranks_ = 1;
  std::vector<std::int32_t> expert_, rank_, count_;
  std::vector<double> share_;
};

/// Returns the index of the first largest of n values (n > 0).
inline int argmax(const double* v, int n) {
  return static_cast<int>(std::max_element(v, v + n) - v);
}

}  // namespace eplb::detail
