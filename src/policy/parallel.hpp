#pragma once
// Private: the layer loop of the policies. Layers are independent; each writes only its own
// outputs, so results never depend on the number of threads.

#include <algorithm>
#include <atomic>
#include <thread>
#include <vector>

namespace eplb::detail {

/// Returns the threads to use for `work` independent jobs: `requested` (0: the hardware's), at
/// least 1 and at most `work`.
inline int worker_count(int requested, int work) {
  const int n = requested > 0 ? requested : static_cast<int>(std::thread::hardware_concurrency());
  return std::clamp(n, 1, std::max(work, 1));
}

/// Runs job(layer, worker) for every layer on `workers` threads (worker 0 is the caller).
/// Returns false when a job threw (out of memory).
template <typename Job>
bool for_each_layer(int layers, int workers, Job&& job) {
  std::atomic<int> next{0};
  std::atomic<bool> failed{false};
  auto run = [&](int worker) {
    try {
      for (int l = next.fetch_add(1); l < layers && !failed.load(); l = next.fetch_add(1)) {
        job(l, worker);
      }
    } catch (...) {
      failed.store(true);
    }
  };
  std::vector<std::thread> pool;
  try {
    for (int t = 1; t < workers; ++t) pool.emplace_back(run, t);
  } catch (...) {
    // Could not start a thread: the ones started and the caller share the layers.
  }
  run(0);
  for (auto& t : pool) t.join();
  return !failed.load();
}

}  // namespace eplb::detail
