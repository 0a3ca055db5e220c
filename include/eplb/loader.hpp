#pragma once
// Header-only loader for vLLM's `eplb_initial_mapping` v1 JSONL files (the mapping eplb-gen
// writes). A serving binary includes it to apply a mapping at startup; eplb-gen's own `check`
// uses it too, so there is one parser and one validator of mapping files.
//
// Constraints: standard library only, C++17, no exceptions thrown (builds with -fno-exceptions),
// nvcc-friendly, every function `inline` so any number of translation units may include it.
//
// The rules are those of vLLM's `EplbState._load_initial_mapping_record` (section 4 of
// formats/vllm-offline-eplb.md): every non-empty line is JSON; lines whose record_type is not
// "eplb_initial_mapping" are ignored; the last mapping record wins; version == 1;
// num_slots == num_experts + num_redundant_experts; `initial_global_assignments` holds the keys
// "0".."L-1" (extra keys ignored); each row is exactly num_slots JSON integers in [0, E); every
// logical expert has at least one and at most 1024 slots per layer.
// Choices beyond vLLM: a line must hold a JSON object (vLLM would fail on `rec.get`); a UTF-8 byte
// order mark at the start of the text is an error (Python's json rejects it too); JSON booleans
// are not integers; integers beyond 64 bits parse but are then out of range. The cross-rank sha256
// comparison of the file (rule 1) is the serving binary's job: it owns the communicator.
// Limits (limits.hpp, docs/limits.md): at most 4096 layers, 65536 slots (and so experts) per layer
// and 2^24 cells; a mapping or an expected topology beyond them is rejected before anything is
// sized by it.

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eplb/limits.hpp"

namespace eplb::loader {

/// The topology the server runs; a zero field (or -1 for num_redundant) is not checked.
struct expected_topology {
  int num_layers = 0;      ///< MoE layers L; 0 takes L from the keys, which must then be "0".."L-1"
  int num_experts = 0;     ///< logical experts E per layer; 0 takes E = num_slots - redundant
  int num_ranks = 0;       ///< EP size; when > 0, num_slots must be divisible by it
  int num_redundant = -1;  ///< redundant slots R per layer; -1 accepts the file's value
};

/// Why a mapping was rejected; `message` already reads "name:line:column: what".
struct load_error {
  std::string message;     ///< complete message (line and column left out when not applicable)
  std::size_t line = 0;    ///< 1-based line of the problem, 0 when it concerns the whole file
  std::size_t column = 0;  ///< 1-based byte column within the line, 0 when not applicable
};

class mapping;
struct load_result;

/// Parses and validates mapping text (`name` prefixes messages); returns the mapping or an error.
inline load_result parse_mapping(std::string_view text, const expected_topology& expect,
                                 std::string_view name = "<mapping>");

/// A validated physical-to-logical expert mapping with its derived inverse.
class mapping {
 public:
  /// Returns the number of MoE layers L.
  int num_layers() const { return num_layers_; }
  /// Returns the number of physical slots P per layer (E + R).
  int num_slots() const { return num_slots_; }
  /// Returns the number of logical experts E per layer.
  int num_experts() const { return num_experts_; }
  /// Returns the number of redundant slots R per layer.
  int num_redundant() const { return num_slots_ - num_experts_; }
  /// Returns the EP size the mapping was checked against, 0 if none was given.
  int num_ranks() const { return num_ranks_; }

  /// Returns the logical expert of every slot of `layer`; empty if `layer` is out of range.
  const std::vector<int>& physical_to_logical(int layer) const {
    if (layer < 0 || layer >= num_layers_) return empty();
    return p2l_[static_cast<std::size_t>(layer)];
  }

  /// Returns the slots holding `expert` in `layer` in ascending order (vLLM's order); empty if out
  /// of range.
  const std::vector<int>& logical_to_physical(int layer, int expert) const {
    if (layer < 0 || layer >= num_layers_ || expert < 0 || expert >= num_experts_) return empty();
    return l2p_[static_cast<std::size_t>(layer) * static_cast<std::size_t>(num_experts_) +
                static_cast<std::size_t>(expert)];
  }

  /// Returns how many slots hold `expert` in `layer`; 0 if out of range.
  int replica_count(int layer, int expert) const {
    return static_cast<int>(logical_to_physical(layer, expert).size());
  }

  /// Returns the logical expert of each slot rank `rank` owns in `layer`, in slot order; empty if
  /// no EP size was given or an argument is out of range.
  std::vector<int> experts_for_rank(int layer, int rank) const {
    if (num_ranks_ <= 0 || layer < 0 || layer >= num_layers_ || rank < 0 || rank >= num_ranks_) {
      return {};
    }
    const std::vector<int>& row = p2l_[static_cast<std::size_t>(layer)];
    const std::ptrdiff_t per_rank = num_slots_ / num_ranks_;
    return std::vector<int>(row.begin() + rank * per_rank, row.begin() + (rank + 1) * per_rank);
  }

  /// Returns the whole map flattened row-major as [L * P].
  std::vector<int> flat_physical_to_logical() const {
    std::vector<int> flat;
    flat.reserve(static_cast<std::size_t>(num_layers_) * static_cast<std::size_t>(num_slots_));
    for (const std::vector<int>& row : p2l_) flat.insert(flat.end(), row.begin(), row.end());
    return flat;
  }

 private:
  friend load_result parse_mapping(std::string_view, const expected_topology&, std::string_view);

  static const std::vector<int>& empty() {
    static const std::vector<int> none;
    return none;
  }

  int num_layers_ = 0;
  int num_slots_ = 0;
  int num_experts_ = 0;
  int num_ranks_ = 0;
  std::vector<std::vector<int>> p2l_;  // [L][P]
  std::vector<std::vector<int>> l2p_;  // [L * E] -> ascending slots
};

/// A mapping or the reason it was rejected.
struct load_result {
  /// Returns true when `value` holds a validated mapping (and `error` is empty).
  bool ok() const { return error.message.empty(); }
  mapping value;     ///< the mapping; empty when !ok()
  load_error error;  ///< the failure; empty when ok()
};

/// Reads and parses the file at `path` (named by its path in messages). Returns the mapping or an
/// error, including one for an unreadable file.
inline load_result load_mapping_file(const std::string& path, const expected_topology& expect);

namespace detail {

/// Deepest nesting of arrays and objects a line may have; bounds the parser's recursion.
constexpr int max_json_depth = 64;
/// Most slots one logical expert may occupy in a layer (vLLM's MAX_EXPERT_REDUNDANCY + 1).
constexpr int max_replicas = 1024;

/// A parsed JSON value (a small DOM; one mapping line holds at most a few ten thousand values).
struct json_value {
  enum kind_t { k_null, k_bool, k_int, k_big_int, k_float, k_string, k_array, k_object };
  kind_t kind = k_null;
  bool boolean = false;
  std::int64_t integer = 0;
  std::string text;               // string contents; raw token for k_big_int and k_float
  std::vector<json_value> items;  // array elements, or object member values
  std::vector<std::string> keys;  // object member keys, parallel to items
  std::size_t column = 0;         // 1-based column where the value starts

  /// Returns the member named `key` (the last one if repeated, like Python), or null if absent.
  const json_value* find(std::string_view key) const {
    for (std::size_t i = keys.size(); i-- > 0;) {
      if (keys[i] == key) return &items[i];
    }
    return nullptr;
  }
};

/// Describes a value for messages: the number itself, or its JSON type.
inline std::string describe(const json_value& v) {
  switch (v.kind) {
    case json_value::k_null:
      return "null";
    case json_value::k_bool:
      return v.boolean ? "true" : "false";
    case json_value::k_int:
      return std::to_string(v.integer);
    case json_value::k_big_int:
    case json_value::k_float:
      return v.text;
    case json_value::k_string:
      return "a string";
    case json_value::k_array:
      return "a list";
    case json_value::k_object:
      return "an object";
  }
  return "a value";
}

/// Strict RFC 8259 parser for one line; never reads past the line and recurses at most
/// max_json_depth levels.
class json_parser {
 public:
  /// Parses `s`, refusing lines of more than `max_values` values (the default fits any mapping
  /// within the limits).
  explicit json_parser(std::string_view s, std::int64_t max_values = default_max_values)
      : s_(s), max_values_(max_values) {}

  /// One value per cell, one per layer key, and a few fields: about 100 bytes each in the tree.
  static constexpr std::int64_t default_max_values = limits::max_cells + limits::max_layers + 1024;

  /// Parses the whole line into `out`. Returns false and sets error()/error_column() on failure.
  bool parse(json_value& out) {
    skip_ws();
    if (!value(out, 0)) return false;
    skip_ws();
    if (pos_ != s_.size()) return fail("extra data after the JSON value");
    return true;
  }

  /// Returns what went wrong.
  const std::string& error() const { return error_; }
  /// Returns the 1-based column where it went wrong.
  std::size_t error_column() const { return error_pos_ + 1; }

 private:
  bool fail(const std::string& what) {
    error_ = what;
    error_pos_ = pos_;
    return false;
  }

  bool fail_unexpected(const char* expected) {
    if (pos_ >= s_.size()) return fail(std::string("unexpected end of line, expected ") + expected);
    std::string what = "unexpected ";
    const auto c = static_cast<unsigned char>(s_[pos_]);
    if (c >= 0x20 && c < 0x7f) {
      what.append("character '").push_back(static_cast<char>(c));
      what.append("'");
    } else {
      static const char hex[] = "0123456789abcdef";
      what.append("byte 0x").push_back(hex[c >> 4]);
      what.push_back(hex[c & 15]);
    }
    what.append(", expected ").append(expected);
    return fail(what);
  }

  void skip_ws() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r' || s_[pos_] == '\n')) {
      ++pos_;
    }
  }

  bool peek_is(char c) const { return pos_ < s_.size() && s_[pos_] == c; }

  bool value(json_value& v, int depth) {
    v.column = pos_ + 1;
    // The budget bounds the tree whatever the file holds.
    if (++values_ > max_values_) {
      return fail("more than " + std::to_string(max_values_) +
                  " values in one line (docs/limits.md: at most " +
                  std::to_string(limits::max_cells) + " cells)");
    }
    if (pos_ >= s_.size()) return fail_unexpected("a value");
    switch (s_[pos_]) {
      case '{':
        return object(v, depth + 1);
      case '[':
        return array(v, depth + 1);
      case '"':
        v.kind = json_value::k_string;
        return string(v.text);
      case 't':
        v.kind = json_value::k_bool;
        v.boolean = true;
        return literal("true");
      case 'f':
        v.kind = json_value::k_bool;
        return literal("false");
      case 'n':
        v.kind = json_value::k_null;
        return literal("null");
      default:
        break;
    }
    if (s_[pos_] == '-' || (s_[pos_] >= '0' && s_[pos_] <= '9')) return number(v);
    return fail_unexpected("a value");
  }

  bool literal(std::string_view word) {
    if (s_.substr(pos_, word.size()) != word) {
      return fail("invalid literal, expected '" + std::string(word) + "'");
    }
    pos_ += word.size();
    return true;
  }

  bool digits() {
    if (pos_ >= s_.size() || s_[pos_] < '0' || s_[pos_] > '9') return fail_unexpected("a digit");
    while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
    return true;
  }

  bool number(json_value& v) {
    const std::size_t start = pos_;
    const bool negative = peek_is('-');
    if (negative) ++pos_;
    if (peek_is('0')) {
      ++pos_;  // a leading zero stands alone; "01" then fails at the caller
    } else if (!digits()) {
      return false;
    }
    bool is_float = false;
    if (peek_is('.')) {
      ++pos_;
      if (!digits()) return false;
      is_float = true;
    }
    if (peek_is('e') || peek_is('E')) {
      ++pos_;
      if (peek_is('+') || peek_is('-')) ++pos_;
      if (!digits()) return false;
      is_float = true;
    }
    const std::string_view token = s_.substr(start, pos_ - start);
    if (is_float) {
      v.kind = json_value::k_float;
      v.text = std::string(token);
      return true;
    }
    // Accumulate the magnitude in 64 bits; anything beyond int64 stays as text (Python would hold
    // a big int, which every check here then rejects as out of range).
    const std::uint64_t limit = negative ? std::uint64_t{1} << 63 : (std::uint64_t{1} << 63) - 1;
    std::uint64_t magnitude = 0;
    bool overflow = false;
    for (std::size_t i = negative ? 1 : 0; i < token.size() && !overflow; ++i) {
      const auto d = static_cast<std::uint64_t>(token[i] - '0');
      if (magnitude > (limit - d) / 10) {
        overflow = true;
      } else {
        magnitude = magnitude * 10 + d;
      }
    }
    if (overflow) {
      v.kind = json_value::k_big_int;
      v.text = std::string(token);
    } else {
      v.kind = json_value::k_int;
      // Negate in unsigned arithmetic so -2^63 does not overflow.
      v.integer = negative ? static_cast<std::int64_t>(~magnitude + 1)
                           : static_cast<std::int64_t>(magnitude);
    }
    return true;
  }

  bool hex4(std::uint32_t& out) {
    out = 0;
    for (int i = 0; i < 4; ++i) {
      if (pos_ >= s_.size()) return fail("unexpected end of line in \\u escape");
      const char c = s_[pos_];
      std::uint32_t d = 0;
      if (c >= '0' && c <= '9') {
        d = static_cast<std::uint32_t>(c - '0');
      } else if (c >= 'a' && c <= 'f') {
        d = static_cast<std::uint32_t>(c - 'a' + 10);
      } else if (c >= 'A' && c <= 'F') {
        d = static_cast<std::uint32_t>(c - 'A' + 10);
      } else {
        return fail("invalid \\u escape, expected 4 hex digits");
      }
      out = out * 16 + d;
      ++pos_;
    }
    return true;
  }

  static void append_utf8(std::string& out, std::uint32_t cp) {
    if (cp < 0x80) {
      out.push_back(static_cast<char>(cp));
    } else if (cp < 0x800) {
      out.push_back(static_cast<char>(0xc0 | (cp >> 6)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else if (cp < 0x10000) {
      out.push_back(static_cast<char>(0xe0 | (cp >> 12)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    } else {
      out.push_back(static_cast<char>(0xf0 | (cp >> 18)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 12) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | ((cp >> 6) & 0x3f)));
      out.push_back(static_cast<char>(0x80 | (cp & 0x3f)));
    }
  }

  bool string(std::string& out) {
    ++pos_;  // opening quote
    for (;;) {
      if (pos_ >= s_.size()) return fail("unterminated string");
      const char c = s_[pos_];
      if (c == '"') {
        ++pos_;
        return true;
      }
      if (static_cast<unsigned char>(c) < 0x20) return fail("control character in string");
      if (c != '\\') {
        out.push_back(c);
        ++pos_;
        continue;
      }
      ++pos_;
      if (pos_ >= s_.size()) return fail("unterminated string");
      const char e = s_[pos_++];
      switch (e) {
        case '"':
          out.push_back('"');
          break;
        case '\\':
          out.push_back('\\');
          break;
        case '/':
          out.push_back('/');
          break;
        case 'b':
          out.push_back('\b');
          break;
        case 'f':
          out.push_back('\f');
          break;
        case 'n':
          out.push_back('\n');
          break;
        case 'r':
          out.push_back('\r');
          break;
        case 't':
          out.push_back('\t');
          break;
        case 'u': {
          std::uint32_t cp = 0;
          if (!hex4(cp)) return false;
          // Join a surrogate pair; a lone surrogate is kept as is, as Python does.
          if (cp >= 0xd800 && cp < 0xdc00 && s_.substr(pos_, 2) == "\\u") {
            const std::size_t save = pos_;
            pos_ += 2;
            std::uint32_t low = 0;
            if (!hex4(low)) return false;
            if (low >= 0xdc00 && low < 0xe000) {
              cp = 0x10000 + ((cp - 0xd800) << 10) + (low - 0xdc00);
            } else {
              pos_ = save;
            }
          }
          append_utf8(out, cp);
          break;
        }
        default:
          --pos_;
          return fail("invalid escape in string");
      }
    }
  }

  bool array(json_value& v, int depth) {
    if (depth > max_json_depth) {
      return fail("nesting deeper than " + std::to_string(max_json_depth) + " levels");
    }
    v.kind = json_value::k_array;
    ++pos_;
    skip_ws();
    if (peek_is(']')) {
      ++pos_;
      return true;
    }
    for (;;) {
      v.items.emplace_back();
      if (!value(v.items.back(), depth)) return false;
      skip_ws();
      if (peek_is(',')) {
        ++pos_;
        skip_ws();
      } else if (peek_is(']')) {
        ++pos_;
        return true;
      } else {
        return fail_unexpected("',' or ']'");
      }
    }
  }

  bool object(json_value& v, int depth) {
    if (depth > max_json_depth) {
      return fail("nesting deeper than " + std::to_string(max_json_depth) + " levels");
    }
    v.kind = json_value::k_object;
    ++pos_;
    skip_ws();
    if (peek_is('}')) {
      ++pos_;
      return true;
    }
    for (;;) {
      if (!peek_is('"')) return fail_unexpected("a string key");
      v.keys.emplace_back();
      if (!string(v.keys.back())) return false;
      skip_ws();
      if (!peek_is(':')) return fail_unexpected("':'");
      ++pos_;
      skip_ws();
      v.items.emplace_back();
      if (!value(v.items.back(), depth)) return false;
      skip_ws();
      if (peek_is(',')) {
        ++pos_;
        skip_ws();
      } else if (peek_is('}')) {
        ++pos_;
        return true;
      } else {
        return fail_unexpected("',' or '}'");
      }
    }
  }

  std::string_view s_;
  std::int64_t max_values_;
  std::size_t pos_ = 0;
  std::int64_t values_ = 0;
  std::string error_;
  std::size_t error_pos_ = 0;
};

/// Builds a load_error whose message reads "name:line:column: what" (zero parts left out).
inline load_error make_error(std::string_view name, std::size_t line, std::size_t column,
                             const std::string& what) {
  load_error e;
  e.line = line;
  e.column = column;
  e.message.append(name.data(), name.size());
  if (line > 0) {
    e.message.append(":").append(std::to_string(line));
    if (column > 0) e.message.append(":").append(std::to_string(column));
  }
  e.message.append(": ").append(what);
  return e;
}

/// Returns true when `c` is JSON whitespace (a line of only these counts as empty).
inline bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r'; }

}  // namespace detail

inline load_result parse_mapping(std::string_view text, const expected_topology& expect,
                                 std::string_view name) {
  using detail::json_value;
  using detail::make_error;
  load_result out;
  auto fail = [&](std::size_t line, std::size_t column, const std::string& what) {
    out.value = mapping();
    out.error = make_error(name, line, column, what);
    return out;
  };
  if (expect.num_layers < 0 || expect.num_experts < 0 || expect.num_ranks < 0 ||
      expect.num_redundant < -1) {
    return fail(0, 0, "invalid expected topology (negative count)");
  }
  // The limits of docs/limits.md: a mapping (or a server) beyond them is refused before anything
  // is sized by it.
  if (expect.num_layers > limits::max_layers || expect.num_experts > limits::max_experts ||
      expect.num_ranks > limits::max_slots || expect.num_redundant > limits::max_slots) {
    return fail(0, 0,
                "expected topology exceeds the limits (" + std::to_string(limits::max_layers) +
                    " layers, " + std::to_string(limits::max_experts) + " experts, " +
                    std::to_string(limits::max_slots) + " slots and ranks)");
  }
  if (text.substr(0, 3) == "\xEF\xBB\xBF") {
    return fail(1, 1, "file starts with a UTF-8 byte order mark; write it without one");
  }

  // 1. Every non-empty line must be a JSON object; keep the last mapping record.
  json_value record;
  std::size_t record_line = 0;
  std::size_t line_no = 0;
  std::size_t begin = 0;
  while (begin < text.size()) {
    ++line_no;
    std::size_t end = text.find('\n', begin);
    if (end == std::string_view::npos) end = text.size();
    const std::string_view line = text.substr(begin, end - begin);
    begin = end + 1;
    if (std::all_of(line.begin(), line.end(), detail::is_blank)) continue;
    json_value v;
    detail::json_parser parser(line);
    if (!parser.parse(v)) {
      return fail(line_no, parser.error_column(), "invalid JSON: " + parser.error());
    }
    if (v.kind != json_value::k_object) {
      return fail(line_no, v.column, "expected a JSON object per line, got " + detail::describe(v));
    }
    const json_value* type = v.find("record_type");
    if (type != nullptr && type->kind == json_value::k_string &&
        type->text == "eplb_initial_mapping") {
      record = std::move(v);
      record_line = line_no;
    }
  }
  if (record_line == 0) return fail(0, 0, "does not contain an eplb_initial_mapping record");

  // 2. Scalar fields, in vLLM's order.
  const std::size_t ln = record_line;
  auto int_field = [&](const char* key, int& value) -> bool {
    const json_value* f = record.find(key);
    if (f == nullptr) {
      fail(ln, 0, std::string("missing field \"") + key + "\"");
      return false;
    }
    if (f->kind != json_value::k_int || f->integer < 0 || f->integer > INT_MAX) {
      fail(ln, f->column,
           std::string(key) + ": expected a non-negative integer, got " + detail::describe(*f));
      return false;
    }
    value = static_cast<int>(f->integer);
    return true;
  };
  const json_value* version = record.find("version");
  if (version == nullptr || version->kind != json_value::k_int || version->integer != 1) {
    return fail(ln, version != nullptr ? version->column : 0,
                "expected eplb_initial_mapping version 1, got " +
                    (version != nullptr ? detail::describe(*version) : std::string("none")));
  }
  int redundant = 0;
  int slots = 0;
  if (!int_field("num_redundant_experts", redundant)) return out;
  if (expect.num_redundant >= 0 && redundant != expect.num_redundant) {
    return fail(ln, record.find("num_redundant_experts")->column,
                "num_redundant_experts=" + std::to_string(redundant) + " but the server runs " +
                    std::to_string(expect.num_redundant));
  }
  if (!int_field("num_slots", slots)) return out;
  const std::size_t slots_col = record.find("num_slots")->column;
  if (slots > limits::max_slots) {
    return fail(ln, slots_col,
                "num_slots=" + std::to_string(slots) + " exceeds the limit of " +
                    std::to_string(limits::max_slots) + " slots per layer");
  }
  int experts = expect.num_experts;
  if (experts > 0 &&
      static_cast<std::int64_t>(slots) != static_cast<std::int64_t>(experts) + redundant) {
    return fail(ln, slots_col,
                "num_slots=" + std::to_string(slots) +
                    " but num_experts + num_redundant_experts = " + std::to_string(experts) +
                    " + " + std::to_string(redundant));
  }
  if (experts == 0) {
    experts = slots - redundant;
    if (experts <= 0) {
      return fail(ln, slots_col,
                  "num_slots=" + std::to_string(slots) + " leaves no logical experts with " +
                      "num_redundant_experts=" + std::to_string(redundant));
    }
  }
  if (expect.num_ranks > 0 && slots % expect.num_ranks != 0) {
    return fail(0, 0,
                "mapping does not fit EP size " + std::to_string(expect.num_ranks) +
                    ": num_slots=" + std::to_string(slots) +
                    " is not divisible by num_ranks=" + std::to_string(expect.num_ranks));
  }

  // 3. The layer keys "0".."L-1".
  const json_value* table = record.find("initial_global_assignments");
  if (table == nullptr) return fail(ln, 0, "missing field \"initial_global_assignments\"");
  if (table->kind != json_value::k_object) {
    return fail(ln, table->column,
                "initial_global_assignments: expected an object, got " + detail::describe(*table));
  }
  std::vector<std::string> distinct = table->keys;
  std::sort(distinct.begin(), distinct.end());
  distinct.erase(std::unique(distinct.begin(), distinct.end()), distinct.end());
  const std::size_t num_keys = distinct.size();
  int layers = expect.num_layers;
  if (layers == 0) {
    if (num_keys == 0) return fail(ln, table->column, "initial_global_assignments has no layers");
    if (num_keys > static_cast<std::size_t>(limits::max_layers)) {
      return fail(ln, table->column,
                  "initial_global_assignments has " + std::to_string(num_keys) +
                      " keys, more than the limit of " + std::to_string(limits::max_layers) +
                      " layers");
    }
    layers = static_cast<int>(num_keys);
  }
  if (static_cast<std::int64_t>(layers) * slots > limits::max_cells) {
    return fail(0, 0,
                std::to_string(layers) + " layers x " + std::to_string(slots) +
                    " slots exceed the limit of " + std::to_string(limits::max_cells) + " cells");
  }
  std::vector<const json_value*> rows(static_cast<std::size_t>(layers));
  for (int l = 0; l < layers; ++l) {
    const std::string key = std::to_string(l);
    rows[static_cast<std::size_t>(l)] = table->find(key);
    if (rows[static_cast<std::size_t>(l)] != nullptr) continue;
    const std::string missing = "(missing key \"" + key + "\")";
    if (expect.num_layers == 0) {
      return fail(0, 0,
                  "layer keys must be \"0\"..\"" + std::to_string(layers - 1) +
                      "\" when the layer count is not given " + missing);
    }
    if (num_keys < static_cast<std::size_t>(layers)) {
      return fail(0, 0,
                  "mapping has " + std::to_string(num_keys) + " layers but the server has " +
                      std::to_string(layers) + " MoE layers " + missing);
    }
    return fail(0, 0,
                "initial_global_assignments lacks layer " + key + " of the server's " +
                    std::to_string(layers) + " MoE layers " + missing);
  }

  // 4. Each row: exactly P integers in [0, E), every expert present, at most 1024 replicas.
  mapping& m = out.value;
  m.p2l_.resize(static_cast<std::size_t>(layers));
  std::vector<int> count;  // sized after a row passes its length check: E <= P <= input size
  for (int l = 0; l < layers; ++l) {
    const json_value& row = *rows[static_cast<std::size_t>(l)];
    const std::string layer = "layer " + std::to_string(l);
    if (row.kind != json_value::k_array) {
      return fail(ln, row.column,
                  layer + ": expected a list of " + std::to_string(slots) + " integers, got " +
                      detail::describe(row));
    }
    if (row.items.size() != static_cast<std::size_t>(slots)) {
      return fail(ln, row.column,
                  layer + " has " + std::to_string(row.items.size()) + " slots, expected " +
                      std::to_string(slots));
    }
    std::vector<int>& p2l = m.p2l_[static_cast<std::size_t>(l)];
    p2l.resize(static_cast<std::size_t>(slots));
    count.assign(static_cast<std::size_t>(experts), 0);
    for (int p = 0; p < slots; ++p) {
      const json_value& cell = row.items[static_cast<std::size_t>(p)];
      const std::string where = layer + " slot " + std::to_string(p) + ": ";
      if (cell.kind != json_value::k_int && cell.kind != json_value::k_big_int) {
        return fail(ln, cell.column, where + "expected an integer, got " + detail::describe(cell));
      }
      if (cell.kind == json_value::k_big_int || cell.integer < 0 || cell.integer >= experts) {
        return fail(ln, cell.column,
                    where + "expert " + detail::describe(cell) + " out of range [0, " +
                        std::to_string(experts) + ")");
      }
      p2l[static_cast<std::size_t>(p)] = static_cast<int>(cell.integer);
      ++count[static_cast<std::size_t>(cell.integer)];
    }
    for (int e = 0; e < experts; ++e) {
      const int c = count[static_cast<std::size_t>(e)];
      if (c == 0) {
        return fail(ln, row.column,
                    layer + ": logical expert " + std::to_string(e) + " has no slot");
      }
      if (c > detail::max_replicas) {
        return fail(ln, row.column,
                    layer + ": logical expert " + std::to_string(e) + " has " + std::to_string(c) +
                        " replicas, at most " + std::to_string(detail::max_replicas) + " allowed");
      }
    }
  }

  // 5. Derive logical_to_physical (ascending slots, as vLLM's compute_logical_maps).
  m.num_layers_ = layers;
  m.num_slots_ = slots;
  m.num_experts_ = experts;
  m.num_ranks_ = expect.num_ranks;
  m.l2p_.resize(static_cast<std::size_t>(layers) * static_cast<std::size_t>(experts));
  for (int l = 0; l < layers; ++l) {
    const std::vector<int>& p2l = m.p2l_[static_cast<std::size_t>(l)];
    for (int p = 0; p < slots; ++p) {
      m.l2p_[static_cast<std::size_t>(l) * static_cast<std::size_t>(experts) +
             static_cast<std::size_t>(p2l[static_cast<std::size_t>(p)])]
          .push_back(p);
    }
  }
  return out;
}

inline load_result load_mapping_file(const std::string& path, const expected_topology& expect) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) {
    load_result out;
    out.error =
        detail::make_error(path, 0, 0, std::string("cannot open file: ") + std::strerror(errno));
    return out;
  }
  std::string text;
  char buffer[1 << 16];
  std::size_t n = 0;
  bool too_big = false;
  // Bounded like every input (docs/limits.md): /dev/zero or a runaway file stops at the limit.
  while ((n = std::fread(buffer, 1, sizeof buffer, f)) > 0) {
    if (text.size() + n > limits::max_mapping_file_bytes) {
      too_big = true;
      break;
    }
    text.append(buffer, n);
  }
  const bool read_failed = std::ferror(f) != 0;
  std::fclose(f);
  if (read_failed || too_big) {
    load_result out;
    out.error = detail::make_error(path, 0, 0,
                                   too_big ? "larger than the limit of " +
                                                 std::to_string(limits::max_mapping_file_bytes) +
                                                 " bytes (docs/limits.md)"
                                           : std::string("read error"));
    return out;
  }
  return parse_mapping(text, expect, path);
}

}  // namespace eplb::loader
