#include <charconv>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "eplb/stats.hpp"
#include "stats/text.hpp"

namespace eplb {

namespace {

// Parses a whole decimal integer (optional leading '-'); nothing else is accepted.
std::optional<std::int64_t> parse_int(std::string_view text) {
  std::int64_t value = 0;
  const char* end = text.data() + text.size();
  auto [ptr, ec] = std::from_chars(text.data(), end, value);
  if (text.empty() || ec != std::errc() || ptr != end) return std::nullopt;
  return value;
}

}  // namespace

result<step_range> parse_step_range(const std::string& text, const std::string& flag) {
  auto bad = [&](const std::string& why) -> error {
    return make_error(errc::invalid_argument, position{}, flag,
                      detail::cat(why, " in '", text, "' (expected A:B, A:, :B or N)"));
  };
  if (text.empty()) return bad("empty step range");
  step_range range;
  const auto colon = text.find(':');
  if (colon == std::string::npos) {
    const auto step = parse_int(text);
    if (!step) return bad("not an integer step");
    range.first = range.last = *step;
    return range;
  }
  if (text.find(':', colon + 1) != std::string::npos) return bad("more than one ':'");
  const std::string_view first = std::string_view(text).substr(0, colon);
  const std::string_view last = std::string_view(text).substr(colon + 1);
  if (first.empty() && last.empty()) return bad("no bound");
  if (!first.empty()) {
    range.first = parse_int(first);
    if (!range.first) return bad("the first step is not an integer");
  }
  if (!last.empty()) {
    range.last = parse_int(last);
    if (!range.last) return bad("the last step is not an integer");
  }
  if (range.first && range.last && *range.first > *range.last) {
    return bad("the first step is after the last");
  }
  return range;
}

}  // namespace eplb
