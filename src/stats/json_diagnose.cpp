#include "stats/json_diagnose.hpp"

namespace eplb::detail {

namespace {

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// Returns the non-finite literal starting at `i`, if there is one that ends at a token boundary.
std::string_view non_finite_at(std::string_view text, std::size_t i) {
  for (std::string_view word : {"NaN", "Infinity", "-Infinity"}) {
    if (text.substr(i, word.size()) != word) continue;
    const std::size_t end = i + word.size();
    if (end == text.size() || is_blank(text[end]) || text[end] == ',' || text[end] == ']' ||
        text[end] == '}') {
      return word;
    }
  }
  return {};
}

}  // namespace

std::optional<line_diagnosis> diagnose_invalid_line(std::string_view text, bool too_deep,
                                                    int max_depth) {
  // A lexical walk: strings (with escapes) are skipped, brackets counted, and the last key of
  // the top-level object remembered.
  int depth = 0;
  std::string_view key;
  std::string_view last_string;
  bool string_may_be_key = false;  // the last token was a string at depth 1
  char previous = '\0';            // last non-blank character outside strings
  for (std::size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '"') {
      const std::size_t start = i + 1;
      for (++i; i < text.size() && text[i] != '"'; ++i) {
        if (text[i] == '\\') ++i;
      }
      last_string = text.substr(start, i - start);
      string_may_be_key = depth == 1;
      previous = '"';
      continue;
    }
    if (is_blank(c)) continue;
    if (c == ':' && string_may_be_key) key = last_string;
    string_may_be_key = false;
    if (c == '{' || c == '[') {
      if (++depth > max_depth && too_deep) {
        return line_diagnosis{std::string(key), "nested deeper than " + std::to_string(max_depth) +
                                                    " levels of arrays and objects"};
      }
    } else if (c == '}' || c == ']') {
      --depth;
    } else if (previous == ':' || previous == ',' || previous == '[') {
      const std::string_view word = non_finite_at(text, i);
      if (!word.empty()) {
        std::string what(word);
        what +=
            " is not a JSON number (Python's json.dumps writes NaN and Infinity for "
            "non-finite floats)";
        return line_diagnosis{std::string(key), what};
      }
    }
    previous = c;
  }
  return std::nullopt;
}

}  // namespace eplb::detail
