#pragma once
// Private: builds messages by appending pieces (g++ 12 warns wrongly about "lit" + std::string).

#include <string>
#include <string_view>
#include <type_traits>

#include "eplb/error.hpp"

namespace eplb::detail {

inline void append_piece(std::string& out, std::string_view piece) { out.append(piece); }
inline void append_piece(std::string& out, char c) { out.push_back(c); }
template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, char> &&
                                        !std::is_same_v<T, bool>,
                                    int> = 0>
void append_piece(std::string& out, T value) {
  out.append(std::to_string(value));
}

/// Returns the pieces (strings, characters, integers) concatenated.
template <class... Pieces>
std::string cat(const Pieces&... pieces) {
  std::string out;
  (append_piece(out, pieces), ...);
  return out;
}

/// Returns at most `max` bytes of an input's text for a message, printable (error.hpp), with
/// "..." when it was cut: a binary or huge value never floods the terminal.
inline std::string excerpt(std::string_view text, std::size_t max = 60) {
  if (text.size() <= max) return printable(text);
  return printable(text.substr(0, max)) + "...";
}

}  // namespace eplb::detail
