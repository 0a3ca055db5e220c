// Reader of TensorRT-LLM's load-balancer YAML (shared/formats/other-engines.md section 2). Not a
// YAML parser: it reads exactly the shape PyYAML's yaml.dump gives the config (block mapping of
// top-level keys, a block mapping of integer layer ids, flow lists of integers, optionally
// wrapped onto more indented lines), plus blank and comment lines, and refuses anything else with
// the line and column, so a hand edit cannot be half understood.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "eplb/limits.hpp"
#include "eplb/mapping_io.hpp"
#include "mapping/read_common.hpp"

namespace eplb {

namespace {

constexpr const char* k_assignments = "initial_global_assignments";
constexpr const char* k_slots = "num_slots";
constexpr const char* k_updates = "layer_updates_per_iter";

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_key_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || is_digit(c) || c == '_';
}

std::string describe_char(char c) {
  if (c == '\n' || c == '\r') return "end of line";
  std::string out = "'";
  out.push_back(c);
  out.push_back('\'');
  return out;
}

// A cursor over the text that knows line starts, so it can check indentation.
class yaml_reader {
 public:
  yaml_reader(std::string_view text, const detail::text_locator& where) : s_(text), where_(where) {}

  result<mapping_file> read(const mapping_read_options& options);

 private:
  error fail(std::size_t at, const std::string& field, const std::string& what) const {
    return where_.at(errc::invalid_value, at, field, what);
  }

  bool at_end() const { return pos_ >= s_.size(); }
  char peek() const { return at_end() ? '\n' : s_[pos_]; }

  // Returns the end of the current line's content (before "\r\n" or "\n").
  std::size_t line_end(std::size_t from) const {
    std::size_t e = s_.find('\n', from);
    if (e == std::string_view::npos) e = s_.size();
    if (e > from && s_[e - 1] == '\r') --e;
    return e;
  }

  // Moves past the end of the current line.
  void next_line() {
    const std::size_t e = s_.find('\n', pos_);
    pos_ = e == std::string_view::npos ? s_.size() : e + 1;
  }

  // At a line start: skips blank and comment lines; returns the indentation of the next content
  // line (pos_ at its line start), or -1 at the end. Tabs in indentation are an error.
  result<int> next_content_line() {
    while (!at_end()) {
      std::size_t i = pos_;
      while (i < s_.size() && s_[i] == ' ') ++i;
      if (i < s_.size() && s_[i] == '\t') {
        return fail(i, "", "tab in indentation (YAML forbids it)");
      }
      const std::size_t e = line_end(pos_);
      if (i >= e || s_[i] == '#') {
        next_line();
        continue;
      }
      return static_cast<int>(i - pos_);
    }
    return -1;
  }

  // Skips spaces; at `pos_` must then be the end of the line (or a comment after a space).
  status expect_line_end(const std::string& field) {
    const std::size_t start = pos_;
    while (peek() == ' ') ++pos_;
    const std::size_t e = line_end(pos_);
    if (pos_ < e && !(s_[pos_] == '#' && pos_ > start)) {
      return fail(pos_, field, "unexpected " + describe_char(s_[pos_]) + " after the value");
    }
    next_line();
    return status::success();
  }

  // Reads a decimal integer at pos_ (an optional '-', then digits).
  status integer(std::int64_t& out, const std::string& field) {
    const std::size_t start = pos_;
    const bool negative = peek() == '-';
    if (negative) ++pos_;
    if (!is_digit(peek())) {
      pos_ = start;
      return fail(start, field, "expected an integer, got " + describe_char(peek()));
    }
    std::int64_t v = 0;
    while (is_digit(peek())) {
      if (v > (INT64_MAX - (peek() - '0')) / 10) return fail(start, field, "integer too large");
      v = v * 10 + (peek() - '0');
      ++pos_;
    }
    if (is_key_char(peek()) || peek() == '.') {
      return fail(start, field, "expected an integer, got a different scalar");
    }
    out = negative ? -v : v;
    return status::success();
  }

  // Skips spaces and line breaks inside a flow list; a continuation line must be indented more
  // than `min_indent`.
  status flow_space(int min_indent, const std::string& field) {
    for (;;) {
      while (peek() == ' ' || (peek() == '\r' && pos_ + 1 < s_.size() && s_[pos_ + 1] == '\n')) {
        ++pos_;
      }
      if (at_end()) return fail(pos_, field, "unterminated list: expected ']'");
      if (s_[pos_] == '\t') return fail(pos_, field, "tab inside a list");
      if (s_[pos_] != '\n') return status::success();
      ++pos_;
      std::size_t i = pos_;
      while (i < s_.size() && s_[i] == ' ') ++i;
      if (i < line_end(pos_) && static_cast<int>(i - pos_) <= min_indent) {
        return fail(i, field, "unterminated list: a continuation line must be indented more");
      }
    }
  }

  // Reads "[a, b, ...]" at pos_, possibly wrapped over lines.
  status flow_list(detail::read_row& row, int min_indent) {
    if (peek() != '[') {
      return fail(pos_, row.field,
                  "expected a flow list [..] of expert ids, got " + describe_char(peek()));
    }
    row.offset = pos_;
    ++pos_;
    if (status s = flow_space(min_indent, row.field); !s.ok()) return s;
    if (peek() == ']') {
      ++pos_;
      return status::success();
    }
    for (;;) {
      std::int64_t v = 0;
      row.offsets.push_back(pos_);
      const std::string cell = row.field + "[" + std::to_string(row.values.size()) + "]";
      if (status s = integer(v, cell); !s.ok()) return s;
      row.values.push_back(v);
      if (status s = flow_space(min_indent, row.field); !s.ok()) return s;
      if (peek() == ']') {
        ++pos_;
        return status::success();
      }
      if (peek() != ',') {
        return fail(pos_, row.field, "expected ',' or ']', got " + describe_char(peek()));
      }
      ++pos_;
      if (status s = flow_space(min_indent, row.field); !s.ok()) return s;
    }
  }

  // Reads the block mapping under initial_global_assignments: "  <layer id>: [..]" lines.
  status assignments(std::map<std::int64_t, detail::read_row>& rows, std::size_t key_at_top) {
    int indent = -1;
    for (;;) {
      auto line_indent = next_content_line();
      if (!line_indent.ok()) return line_indent.err();
      if (*line_indent <= 0) break;  // end of text or the next top-level key
      const std::size_t key_at = pos_ + static_cast<std::size_t>(*line_indent);
      if (indent < 0) indent = *line_indent;
      if (*line_indent != indent) {
        return fail(key_at, k_assignments,
                    "indentation " + std::to_string(*line_indent) + " differs from the first " +
                        "layer's " + std::to_string(indent));
      }
      pos_ = key_at;
      if (!is_digit(peek())) {
        return fail(pos_, k_assignments,
                    "expected a decoder-layer id (a non-negative integer key), got " +
                        describe_char(peek()));
      }
      std::int64_t layer = 0;
      if (status s = integer(layer, k_assignments); !s.ok()) return s;
      if (layer >= limits::max_decoder_layers) {
        return fail(key_at, k_assignments,
                    "layer id " + std::to_string(layer) + " is beyond the limit of " +
                        std::to_string(limits::max_decoder_layers) +
                        " decoder layers (docs/limits.md)");
      }
      const std::string field = std::string(k_assignments) + "[" + std::to_string(layer) + "]";
      if (peek() != ':') return fail(pos_, field, "expected ':' after the layer id");
      ++pos_;
      if (peek() != ' ') return fail(pos_, field, "expected a space and a list after ':'");
      while (peek() == ' ') ++pos_;
      if (rows.count(layer) != 0) {
        return fail(key_at, field,
                    "layer id repeated (first on line " + line_of(rows[layer].offset) + ")");
      }
      detail::read_row row;
      row.field = field;
      if (status s = flow_list(row, indent); !s.ok()) return s;
      rows.emplace(layer, std::move(row));
      if (status s = expect_line_end(field); !s.ok()) return s;
    }
    if (indent < 0) return fail(key_at_top, k_assignments, "has no layers");
    return status::success();
  }

  std::string line_of(std::size_t offset) const {
    std::size_t line = 0;
    std::size_t column = 0;
    where_.line_column(offset, line, column);
    return std::to_string(line);
  }

  std::string_view s_;
  const detail::text_locator& where_;
  std::size_t pos_ = 0;
};

result<mapping_file> yaml_reader::read(const mapping_read_options& options) {
  if (s_.substr(0, 3) == "\xEF\xBB\xBF") {
    return fail(0, "", "file starts with a UTF-8 byte order mark; write it without one");
  }
  std::map<std::int64_t, detail::read_row> rows;
  std::int64_t slots = -1;
  std::int64_t updates = 0;
  std::size_t slots_at = detail::k_no_offset;
  std::map<std::string, std::size_t> seen;
  bool first_line = true;
  for (;;) {
    auto indent = next_content_line();
    if (!indent.ok()) return indent.err();
    if (*indent < 0) break;
    if (*indent > 0) {
      return fail(pos_ + static_cast<std::size_t>(*indent), "",
                  "unexpected indentation: expected a top-level key");
    }
    if (first_line && s_.substr(pos_, 3) == "---" && line_end(pos_) == pos_ + 3) {
      first_line = false;
      next_line();
      continue;  // an explicit document start
    }
    first_line = false;
    const std::size_t key_at = pos_;
    while (is_key_char(peek())) ++pos_;
    const std::string key(s_.substr(key_at, pos_ - key_at));
    if (key.empty() || peek() != ':') {
      return fail(pos_, key, "expected a top-level 'key:', got " + describe_char(peek()));
    }
    ++pos_;
    if (seen.count(key) != 0) {
      return fail(key_at, key, "key repeated (first on line " + line_of(seen[key]) + ")");
    }
    seen[key] = key_at;
    if (key == k_assignments) {
      if (status s = expect_line_end(key); !s.ok()) {
        return fail(key_at, key, "expected a block mapping of layer id: [expert ids] lines");
      }
      if (status s = assignments(rows, key_at); !s.ok()) return s.err();
      continue;
    }
    if (key != k_slots && key != k_updates) {
      return fail(key_at, key,
                  "unknown key; expected initial_global_assignments, layer_updates_per_iter or "
                  "num_slots");
    }
    if (peek() != ' ') return fail(pos_, key, "expected a space and an integer after ':'");
    while (peek() == ' ') ++pos_;
    const std::size_t value_at = pos_;
    std::int64_t v = 0;
    if (status s = integer(v, key); !s.ok()) return s.err();
    if (key == k_slots) {
      if (v <= 0 || v > INT32_MAX) return fail(value_at, key, "must be a positive int32");
      slots = v;
      slots_at = value_at;
    } else {
      if (v < 0 || v > INT32_MAX) return fail(value_at, key, "must be a non-negative int32");
      updates = v;
    }
    if (status s = expect_line_end(key); !s.ok()) return s.err();
  }
  if (seen.count(k_assignments) == 0) {
    return where_.at(errc::missing_field, detail::k_no_offset, k_assignments, "missing");
  }
  if (slots < 0) return where_.at(errc::missing_field, detail::k_no_offset, k_slots, "missing");

  // The MoE layers: first_moe_layer .. + L - 1 when a first layer is given (TensorRT-LLM looks
  // each one up; other keys are not used), else every key in ascending order.
  std::vector<detail::read_row> picked;
  std::vector<int> ids;
  if (options.first_moe_layer.has_value()) {
    const int count = options.num_layers > 0 ? options.num_layers : static_cast<int>(rows.size());
    for (int l = 0; l < count; ++l) {
      const std::int64_t id = static_cast<std::int64_t>(*options.first_moe_layer) + l;
      auto it = rows.find(id);
      if (it == rows.end()) {
        return where_.at(errc::missing_field, detail::k_no_offset, k_assignments,
                         "layer_idx " + std::to_string(id) + " not found (MoE layers " +
                             std::to_string(*options.first_moe_layer) + ".." +
                             std::to_string(*options.first_moe_layer + count - 1) + ")");
      }
      picked.push_back(it->second);
      ids.push_back(static_cast<int>(id));
    }
  } else {
    if (options.num_layers > 0 && static_cast<int>(rows.size()) != options.num_layers) {
      return where_.at(errc::shape_mismatch, seen[k_assignments], k_assignments,
                       "has " + std::to_string(rows.size()) + " layers, expected " +
                           std::to_string(options.num_layers) + " MoE layers");
    }
    for (auto& [id, row] : rows) {
      picked.push_back(row);
      ids.push_back(static_cast<int>(id));
    }
  }
  for (const detail::read_row& row : picked) {
    if (static_cast<std::int64_t>(row.values.size()) != slots) {
      return where_.at(errc::shape_mismatch, row.offset, row.field,
                       "assignment length (" + std::to_string(row.values.size()) +
                           ") does not match num_slots (" + std::to_string(slots) + ")");
    }
  }
  auto place =
      detail::rows_to_placement(picked, static_cast<int>(slots), 0, options, where_, slots_at);
  if (!place.ok()) return place.err();
  mapping_file out;
  out.format = mapping_format::trtllm;
  out.place = std::move(*place);
  out.layer_ids = std::move(ids);
  out.layer_updates_per_iter = static_cast<int>(updates);
  out.num_ranks = options.num_ranks;
  return out;
}

}  // namespace

result<mapping_file> read_trtllm_yaml_text(std::string_view text, const std::string& name,
                                           const mapping_read_options& options) {
  const detail::text_locator where(text, name);
  yaml_reader reader(text, where);
  return reader.read(options);
}

}  // namespace eplb
