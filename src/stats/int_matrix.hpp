#pragma once
// Private: a strict, fast scanner for the reader's hot path, JSON arrays of arrays of integers
// ("[[1, 2], [3, 4]]"). It accepts only that exact shape of valid JSON and gives up (returns
// false) on anything else, so callers fall back to simdjson's On-Demand path, which then reports
// the precise error. simdjson still skips the value by its structural index afterwards.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

namespace eplb::detail {

// The scanner reads no bounds: it stops at the first byte that does not fit the grammar, and the
// caller guarantees that the line ends with a '\n' or a '\0' sentinel, neither of which fits, and
// that at least 64 initialized bytes follow the end of the line (it loads 8 bytes at a time, and
// 64 at a time on the SIMD path).

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

/// Where scan_int_matrix writes: `out` from index `at` through a raw pointer into the vector's
/// full size, grown by doubling; nothing at all when !Store.
template <class T, bool Store, class Out>
struct int_store {
  int_store(Out& o, std::size_t a) : out(o), at(a) {
    if constexpr (Store) {
      if (out.size() < at + 256) out.resize(at + 256);
      rebase();
    }
  }
  /// Makes room for `need` values from `at`.
  void reserve(std::size_t need) {
    if constexpr (Store) {
      if (need > limit) {
        out.resize(at + std::max(limit * 2, need));
        rebase();
      }
    }
  }
  void rebase() {
    base = out.data() + at;
    limit = out.size() - at;
  }
  Out& out;
  std::size_t at;
  T* base = nullptr;
  std::size_t limit = 0;
};

/// Counts a finished row of `n` values; false when its length differs from the first row's.
inline bool close_row(std::size_t n, std::size_t& rows, std::size_t& cols) noexcept {
  if (rows == 0) {
    cols = n;
  } else if (n != cols) {
    return false;
  }
  ++rows;
  return true;
}

/// The portable path of scan_int_matrix (below), one byte at a time.
template <class T, bool Store, class Out, class Check>
const char* scan_int_matrix_scalar(const char* p, Out& out, std::size_t at, std::size_t& rows,
                                   std::size_t& cols, Check check) {
  rows = 0;
  cols = 0;
  int_store<T, Store, Out> store(out, at);
  std::size_t count = 0;
  if (*p != '[') return nullptr;
  p = skip_blanks(p + 1);
  if (*p != '[') return nullptr;  // empty or not an array of arrays
  while (true) {
    // p is at a row's '['.
    p = skip_blanks(p + 1);
    const std::size_t row_start = count;
    while (true) {
      std::int64_t v = 0;
      p = scan_int64(p, v);
      if (p == nullptr || !check(v)) return nullptr;
      if constexpr (Store) {
        store.reserve(count + 1);
        store.base[count] = static_cast<T>(v);
      }
      ++count;
      p = skip_blanks(p);
      if (*p == ',') {
        p = skip_blanks(p + 1);
        continue;
      }
      if (*p != ']') return nullptr;
      ++p;
      break;
    }
    if (!close_row(count - row_start, rows, cols)) return nullptr;
    p = skip_blanks(p);
    if (*p == ']') return p + 1;
    if (*p != ',') return nullptr;
    p = skip_blanks(p + 1);
    if (*p != '[') return nullptr;
  }
}

#if defined(__SSE2__)

/// Masks (bit i = byte p[i]) of the digits and of the in-row separators (space, comma) of the 64
/// bytes at p, and of the commas alone.
inline void classify64(const char* p, std::uint64_t& digits, std::uint64_t& blank_or_comma,
                       std::uint64_t& commas) noexcept {
  const __m128i zero = _mm_set1_epi8('0');
  const __m128i nine = _mm_set1_epi8(9);
  const __m128i space = _mm_set1_epi8(' ');
  const __m128i comma = _mm_set1_epi8(',');
  digits = 0;
  blank_or_comma = 0;
  commas = 0;
  for (int k = 0; k < 4; ++k) {
    const __m128i c = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p + 16 * k));
    const __m128i d = _mm_sub_epi8(c, zero);
    const __m128i is_digit = _mm_cmpeq_epi8(_mm_min_epu8(d, nine), d);
    const __m128i is_comma = _mm_cmpeq_epi8(c, comma);
    const __m128i is_sep = _mm_or_si128(_mm_cmpeq_epi8(c, space), is_comma);
    const int shift = 16 * k;
    digits |= static_cast<std::uint64_t>(static_cast<std::uint16_t>(_mm_movemask_epi8(is_digit)))
              << shift;
    blank_or_comma |=
        static_cast<std::uint64_t>(static_cast<std::uint16_t>(_mm_movemask_epi8(is_sep))) << shift;
    commas |= static_cast<std::uint64_t>(static_cast<std::uint16_t>(_mm_movemask_epi8(is_comma)))
              << shift;
  }
}

/// The SIMD path of scan_int_matrix for the usual text (non-negative numbers of up to 8 digits,
/// each followed directly by its comma, then blanks): a 64-byte window at a time, the numbers and
/// the separators between them are found and checked with bit masks, so the position of a number
/// does not wait on the parse of the one before. Returns nullptr on anything else, valid or not.
template <class T, bool Store, class Out, class Check>
const char* scan_int_matrix_simd(const char* p, Out& out, std::size_t at, std::size_t& rows,
                                 std::size_t& cols, Check check) {
  rows = 0;
  cols = 0;
  int_store<T, Store, Out> store(out, at);
  std::size_t count = 0, row_start = 0;
  if (*p != '[') return nullptr;
  p = skip_blanks(p + 1);
  if (*p != '[') return nullptr;
  p = skip_blanks(p + 1);
  // Here and at the top of every pass, p is at the first byte of a number.
  while (true) {
    std::uint64_t digits, seps, commas;
    classify64(p, digits, seps, commas);
    const std::uint64_t starts = digits & ~(digits << 1);
    // The byte after each number; only those before byte 48 count, so that every number of the
    // window has its 8-byte load and the byte after it inside the window.
    const std::uint64_t after = ((digits & ~(digits >> 1)) << 1) & ((std::uint64_t{1} << 48) - 1);
    if ((starts & 1) == 0 || after == 0) return nullptr;  // '-', a long number, not a number
    // The window ends after the first number not followed by a comma (the end of a row, say),
    // else after the last number that fits.
    const std::uint64_t no_comma = after & ~commas;
    const int end = no_comma != 0 ? __builtin_ctzll(no_comma) : 63 - __builtin_clzll(after);
    const std::uint64_t window = (std::uint64_t{1} << end) - 1;
    // Between the numbers: one comma right after each (checked above, and no other comma) and
    // blanks; numbers of at most 8 digits without a leading zero.
    std::uint64_t long_runs = digits & (digits >> 1);
    long_runs &= long_runs >> 2;
    long_runs &= long_runs >> 4;
    long_runs &= long_runs >> 1;
    if (((~digits & ~seps) & window) != 0 || (commas & window & ~after) != 0 ||
        (long_runs & window) != 0) {
      return nullptr;
    }
    std::uint64_t s_bits = starts & window;
    std::uint64_t e_bits = after & (window | (std::uint64_t{1} << end));
    store.reserve(count + 64);
    while (s_bits != 0) {
      const int s = __builtin_ctzll(s_bits);
      const int e = __builtin_ctzll(e_bits);
      s_bits &= s_bits - 1;
      e_bits &= e_bits - 1;
      std::uint64_t word;
      std::memcpy(&word, p + s, 8);
      const int n = e - s;
      if (n > 1 && (word & 0xFF) == '0') return nullptr;  // leading zero: not JSON
      const auto v = static_cast<std::int64_t>(digits_value(word, n));
      if (!check(v)) return nullptr;
      if constexpr (Store) store.base[count] = static_cast<T>(v);
      ++count;
    }
    // After the window's last number: its comma and the next number, or the end of the row.
    p = skip_blanks(p + end);
    if (*p == ',') {
      p = skip_blanks(p + 1);
      continue;
    }
    if (*p != ']') return nullptr;
    if (!close_row(count - row_start, rows, cols)) return nullptr;
    row_start = count;
    p = skip_blanks(p + 1);
    if (*p == ']') return p + 1;
    if (*p != ',') return nullptr;
    p = skip_blanks(p + 1);
    if (*p != '[') return nullptr;
    p = skip_blanks(p + 1);
  }
}

#endif  // __SSE2__

/// Scans `[[int, ...], ...]` starting at `p` (its '['), storing the values row-major in `out` (a
/// std::vector<T> or raw_buffer<T>) from index `at` when `Store` and passing each to `check(value)`
/// (false = give up); requires equally long, non-empty rows and at least one row. Returns the
/// position after the closing ']' with rows and cols, or nullptr on anything else (the caller then
/// uses simdjson, which reports the precise error).
template <class T, bool Store, class Out, class Check>
const char* scan_int_matrix(const char* p, Out& out, std::size_t at, std::size_t& rows,
                            std::size_t& cols, Check check) {
#if defined(__SSE2__)
  if (const char* end = scan_int_matrix_simd<T, Store>(p, out, at, rows, cols, check)) return end;
#endif
  return scan_int_matrix_scalar<T, Store>(p, out, at, rows, cols, check);
}

}  // namespace eplb::detail
