#pragma once
// Private: builds messages by appending pieces (g++ 12 warns wrongly about "lit" + std::string).

#include <string>
#include <string_view>
#include <type_traits>

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

}  // namespace eplb::detail
