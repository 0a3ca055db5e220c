#pragma once
// Private: a growable array of trivially copyable values that leaves new elements uninitialized,
// for the reader's parse buffers. Unlike std::vector::resize it does not write the memory it
// reserves, so a generous first size costs no page faults until the bytes are used.

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <type_traits>

namespace eplb::detail {

template <class T>
class raw_buffer {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  using value_type = T;

  std::size_t size() const noexcept { return size_; }
  T* data() noexcept { return data_.get(); }
  const T* data() const noexcept { return data_.get(); }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }

  /// Makes room for at least `n` values without keeping any (all values become unspecified).
  void discard_and_reserve(std::size_t n) {
    if (n > capacity_) {
      data_.reset();  // free first: the old values are not needed
      capacity_ = n + n / 4;
      data_.reset(new T[capacity_]);
    }
    size_ = std::max(size_, n);
  }

  /// Makes the size `n`, keeping the first min(n, size()) values; new values are unspecified.
  void resize(std::size_t n) {
    if (n > capacity_) {
      const std::size_t cap = std::max(n, capacity_ * 2);
      std::unique_ptr<T[]> bigger(new T[cap]);
      if (size_ > 0) std::memcpy(bigger.get(), data_.get(), size_ * sizeof(T));
      data_ = std::move(bigger);
      capacity_ = cap;
    }
    size_ = n;
  }

 private:
  std::unique_ptr<T[]> data_;
  std::size_t size_ = 0, capacity_ = 0;
};

}  // namespace eplb::detail
