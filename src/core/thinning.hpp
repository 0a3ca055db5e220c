#pragma once
// Private: an evenly spaced, bounded subset of a stream of unknown length (the step sampler, the
// replay's per-step series and bound steps).

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace eplb::detail {

/// Keeps an evenly spaced, bounded subset of a stream of unknown length: items whose index is a
/// multiple of the stride are kept; when more than `cap` are kept, every other kept item is
/// dropped and the stride doubles. At any time the kept items are indices 0, s, 2s, ... < n.
class thinning {
 public:
  explicit thinning(std::size_t cap) : cap_(std::max<std::size_t>(cap, 1)) {}
  /// Returns whether the item with this index is to be kept.
  bool wants(std::uint64_t index) const noexcept { return index % stride_ == 0; }
  /// Called after keeping an item (now `kept` in all); returns true when the caller must drop
  /// every other kept item (keep_even), the stride having doubled.
  bool overflows(std::size_t kept) noexcept {
    if (kept <= cap_) return false;
    stride_ *= 2;
    return true;
  }
  /// Keeps the chunks at even positions of `v` (chunks of `chunk` elements), in order.
  template <class T>
  static void keep_even(std::vector<T>& v, std::size_t chunk = 1) {
    const std::size_t n = v.size() / chunk;
    std::size_t out = 0;
    for (std::size_t i = 0; i < n; i += 2, ++out) {
      if (out != i) {
        std::move(v.begin() + static_cast<std::ptrdiff_t>(i * chunk),
                  v.begin() + static_cast<std::ptrdiff_t>((i + 1) * chunk),
                  v.begin() + static_cast<std::ptrdiff_t>(out * chunk));
      }
    }
    v.resize(out * chunk);
  }

 private:
  std::size_t cap_;
  std::uint64_t stride_ = 1;
};

}  // namespace eplb::detail
