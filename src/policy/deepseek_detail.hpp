#pragma once
// Building blocks of the DeepSeek EPLB / vLLM DefaultEplbPolicy port, exposed for unit tests.
// The pointer-based forms allocate nothing; the vector forms are conveniences for tests.

#include <cstddef>
#include <utility>
#include <vector>

namespace eplb::detail {

/// Scratch space of balanced_packing, reused across rows so the hot loop never allocates.
struct packing_scratch {
  std::vector<std::pair<double, int>> order;  // (load, item), heaviest first
  std::vector<std::pair<double, int>> open;   // min-heap of (load, pack) over open packs
  std::vector<int> count;                     // items per pack
};

/// Scratch space of replicate_experts: a max-heap of (load per replica, expert).
struct replicate_scratch {
  std::vector<std::pair<double, int>> heap;
};

/// Returns numpy's float32 sum of n values (pairwise summation, 8-way unrolled blocks of 128).
float numpy_pairwise_sum(const float* a, std::ptrdiff_t n) noexcept;

/// Packs n items of loads x into m packs of exactly n/m items (greedy LPT, vLLM's
/// balanced_packing); writes each item's pack and insertion rank. Requires n % m == 0.
void balanced_packing(const double* x, int n, int m, int* pack_index, int* rank_in_pack,
                      packing_scratch& scratch);

/// Gives q - n extra replicas to n experts of loads x, each to the expert with the largest
/// x/cnt (first on ties); writes phy2log[q] (j < n holds j) and cnt[n]. Requires q >= n.
void replicate_experts(const double* x, int n, int q, int* phy2log, int* cnt,
                       replicate_scratch& scratch);

/// balanced_packing's result for one row.
struct packing_result {
  std::vector<int> pack_index;
  std::vector<int> rank_in_pack;
};

/// Returns balanced_packing of one row (allocating form, for tests).
packing_result balanced_packing(const std::vector<double>& x, int m);

/// replicate_experts' result for one row.
struct replication_result {
  std::vector<int> phy2log;
  std::vector<int> cnt;
};

/// Returns replicate_experts of one row (allocating form, for tests).
replication_result replicate_experts(const std::vector<double>& x, int q);

}  // namespace eplb::detail
