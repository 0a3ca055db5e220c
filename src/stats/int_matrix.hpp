#pragma once
// Private: a strict, fast scanner for the reader's hot path, JSON arrays of arrays of integers
// ("[[1, 2], [3, 4]]"). It accepts only that exact shape of valid JSON and gives up (returns
// false) on anything else, so callers fall back to simdjson's On-Demand path, which then reports
// the precise error. simdjson still skips the value by its structural index afterwards.

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

namespace eplb::detail {

// The scanner reads no bounds: it stops at the first byte that does not fit the grammar, and the
// caller guarantees that the line ends with a '\n' or a '\0' sentinel, neither of which fits, and
// that at least 8 initialized bytes follow the end of the line (it loads 8 bytes at a time).

/// Returns the number of leading ASCII digits (0..8) of 8 bytes loaded in memory order.
inline int leading_digits(std::uint64_t word) noexcept {
  // Per byte: d = b - '0'; b is a digit iff d < 10, i.e. neither d nor d + 0x76 has its top bit.
  // Borrows and carries only travel upwards from a non-digit byte, so the lowest flagged byte is
  // exact.
  const std::uint64_t d = word - 0x3030303030303030ULL;
  const std::uint64_t flags = (d | (d + 0x7676767676767676ULL)) & 0x8080808080808080ULL;
  return flags == 0 ? 8 : __builtin_ctzll(flags) / 8;
}

/// Converts n (1..8) ASCII digits at the low end of `word` (memory order) to their value.
inline std::uint64_t digits_value(std::uint64_t word, int n) noexcept {
  // Move the digits to the top so the zero bytes shifted in read as leading '0's.
  std::uint64_t v = word << (8 * (8 - n));
  v = (v & 0x0F0F0F0F0F0F0F0FULL) * 2561 >> 8;
  v = (v & 0x00FF00FF00FF00FFULL) * 6553601 >> 16;
  return (v & 0x0000FFFF0000FFFFULL) * 42949672960001ULL >> 32;
}

/// Scans one integer: optional '-', then 1 to 19 digits without a leading zero, fitting int64;
/// returns the position after it, or nullptr when the text is not such an integer.
__attribute__((always_inline)) inline const char* scan_int64(const char* p,
                                                             std::int64_t& out) noexcept {
  const bool negative = *p == '-';
  p += negative;
  const char* digits = p;
  std::uint64_t word;
  std::memcpy(&word, p, 8);
  int n = leading_digits(word);
  if (n == 0) return nullptr;
  std::uint64_t value = digits_value(word, n);
  p += n;
  if (n == 8) {
    // Long numbers (rare in loads): finish digit by digit.
    while (static_cast<unsigned char>(*p - '0') < 10) {
      value = value * 10 + static_cast<unsigned char>(*p - '0');
      ++p;
    }
  }
  const auto count = p - digits;
  // 19 digits always fit in uint64 (longer numbers wrapped above and are left to the slow path).
  if (count > 19) return nullptr;
  if (count > 1 && *digits == '0') return nullptr;          // leading zero: not JSON
  if (*p == '.' || *p == 'e' || *p == 'E') return nullptr;  // not an integer
  constexpr std::uint64_t max_positive = static_cast<std::uint64_t>(INT64_MAX);
  if (negative) {
    if (value > max_positive + 1) return nullptr;
    out = value == max_positive + 1 ? INT64_MIN : -static_cast<std::int64_t>(value);
  } else {
    if (value > max_positive) return nullptr;
    out = static_cast<std::int64_t>(value);
  }
  return p;
}

/// Skips blanks inside a line (not '\n', which ends the line for the scanner).
inline const char* skip_blanks(const char* p) noexcept {
  while (*p == ' ' || *p == '\t' || *p == '\r') ++p;
  return p;
}

/// Scans `[[int, ...], ...]` starting at `p` (its '['), storing the values row-major at the front
/// of `out` when `Store` (out may be left longer than rows * cols) and passing each to
/// `check(value)` (false = give up); requires equally long, non-empty rows and at least one row.
/// Returns false on anything else; true with rows and cols.
template <class T, bool Store, class Check>
bool scan_int_matrix(const char* p, std::vector<T>& out, std::size_t& rows, std::size_t& cols,
                     Check check) {
  rows = 0;
  cols = 0;
  // Write through a raw pointer into the vector's full capacity; grow by doubling.
  T* base = nullptr;
  std::size_t count = 0, limit = 0;
  if constexpr (Store) {
    if (out.size() < out.capacity()) out.resize(out.capacity());
    if (out.size() < 256) out.resize(256);
    base = out.data();
    limit = out.size();
  }
  if (*p != '[') return false;
  p = skip_blanks(p + 1);
  if (*p != '[') return false;  // empty or not an array of arrays
  while (true) {
    // p is at a row's '['.
    p = skip_blanks(p + 1);
    const std::size_t row_start = count;
    while (true) {
      std::int64_t v = 0;
      p = scan_int64(p, v);
      if (p == nullptr || !check(v)) return false;
      if constexpr (Store) {
        if (count == limit) {
          out.resize(limit * 2);
          base = out.data();
          limit = out.size();
        }
        base[count] = static_cast<T>(v);
      }
      ++count;
      p = skip_blanks(p);
      if (*p == ',') {
        p = skip_blanks(p + 1);
        continue;
      }
      if (*p != ']') return false;
      ++p;
      break;
    }
    const std::size_t n = count - row_start;
    if (rows == 0) {
      cols = n;
    } else if (n != cols) {
      return false;
    }
    ++rows;
    p = skip_blanks(p);
    if (*p == ']') return true;
    if (*p != ',') return false;
    p = skip_blanks(p + 1);
    if (*p != '[') return false;
  }
}

}  // namespace eplb::detail
