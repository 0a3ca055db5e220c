#pragma once
// Private: names the field of a JSON syntax error the validator only reports as a code, for the
// two mistakes real writers make: Python's json.dumps writes NaN and Infinity for non-finite
// floats (not JSON), and runaway nesting.

#include <optional>
#include <string>
#include <string_view>

namespace eplb::detail {

/// What diagnose_invalid_line found: the top-level key the problem is in ("" when outside any)
/// and a description.
struct line_diagnosis {
  std::string field;
  std::string what;
};

/// For a line that failed JSON validation, finds the first bare NaN, Infinity or -Infinity value,
/// or (when `too_deep`) the point where nesting passes `max_depth`; returns nothing when neither
/// is there, so the caller keeps the validator's own message.
std::optional<line_diagnosis> diagnose_invalid_line(std::string_view text, bool too_deep,
                                                    int max_depth);

}  // namespace eplb::detail
