#pragma once
// Text helpers shared by the mapping writers (private to the library): locale-independent
// number formatting and JSON string escaping, so outputs are byte-identical everywhere.

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "eplb/error.hpp"
#include "eplb/types.hpp"

namespace eplb::detail {

/// Appends a decimal integer.
inline void append_int(std::string& out, std::int64_t v) {
  char buf[24];
  const auto r = std::to_chars(buf, buf + sizeof buf, v);
  out.append(buf, r.ptr);
}

/// Appends "[a, b, c]" (Python's json.dumps / PyYAML flow style separators).
template <class T>
void append_list(std::string& out, const T* values, std::size_t n) {
  out += '[';
  for (std::size_t i = 0; i < n; ++i) {
    if (i > 0) out += ", ";
    append_int(out, static_cast<std::int64_t>(values[i]));
  }
  out += ']';
}

/// Appends a JSON string literal with the escapes JSON requires (UTF-8 passes through).
void append_json_string(std::string& out, std::string_view s);

/// Appends the shortest decimal that reads back as the same double; false when not finite.
bool append_double(std::string& out, double v);

/// Checks the placement and topology every writer starts from.
status check_export_input(const placement& p, const topology& topo);

/// Resolves the decoder-layer id of every MoE layer; invalid_argument when they are not
/// num_layers non-negative strictly ascending ids.
result<std::vector<int>> resolve_layer_ids(int first_moe_layer, const std::vector<int>& layer_ids,
                                           int num_layers);

}  // namespace eplb::detail
