#pragma once
// Private helpers of the stats readers: full syntax checks of JSON values the readers do not use,
// and a stand-alone validity check of one line, used on error paths to name the faulty line.

#include <simdjson.h>

#include <string_view>

namespace eplb::detail {

/// Walks a value completely so that every token in it is syntax-checked; returns the first error.
simdjson::error_code check_value(simdjson::ondemand::value value, int depth = 0) noexcept;

/// Returns SUCCESS when `text` holds exactly one valid JSON value (integers of any size are
/// accepted, as Python's json module does), otherwise the simdjson error describing why not.
simdjson::error_code validate_json_text(std::string_view text);

/// Returns true for the bytes JSON counts as whitespace.
inline bool is_json_space(char c) noexcept {
  return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

}  // namespace eplb::detail
