// Parse stage of the vLLM stats reader: one region of complete lines -> entries. See
// vllm_parse.hpp for the split between this stage and the apply stage.

#include "stats/vllm_parse.hpp"

#include <algorithm>
#include <climits>
#include <cmath>
#include <cstring>
#include <iterator>
#include <string_view>
#include <utility>

#include "eplb/limits.hpp"
#include "stats/int_matrix.hpp"
#include "stats/json_check.hpp"
#include "stats/json_diagnose.hpp"
#include "stats/text.hpp"

namespace eplb::detail {

namespace {

namespace ondemand = simdjson::ondemand;

std::string shape_str(std::size_t rows, std::size_t cols) {
  return cat('[', rows, "][", cols, ']');
}

// The token of a value that failed a type check, trimmed, for the message.
std::string token_of(ondemand::value& v) {
  std::string_view token = v.raw_json_token();
  while (!token.empty() && is_json_space(token.back())) token.remove_suffix(1);
  // The raw token of a container is its opening bracket alone.
  if (!token.empty() && token.front() == '{') return "an object";
  if (!token.empty() && token.front() == '[') return "an array";
  constexpr std::size_t max_len = 40;
  std::string out(token.substr(0, max_len));
  if (token.size() > max_len) out += "...";
  return out;
}

bool looks_like_integer(std::string_view token) {
  if (!token.empty() && token.front() == '-') token.remove_prefix(1);
  if (token.empty()) return false;
  return std::all_of(token.begin(), token.end(), [](char c) { return c >= '0' && c <= '9'; });
}

// The bit of a key the reader uses (0 for any other key), to refuse a key given twice: JSON
// leaves the meaning of duplicates open, and which value would count is a guess.
unsigned used_key_bit(std::string_view key) {
  static constexpr std::string_view keys[] = {
      "record_type", "version",    "step",      "expert_load",           "p2l_map", "num_layers",
      "num_ranks",   "num_groups", "num_nodes", "num_redundant_experts", "model"};
  for (std::size_t i = 0; i < std::size(keys); ++i) {
    if (key == keys[i]) return 1u << i;
  }
  return 0;
}

bool is_continuation(unsigned char c) { return (c & 0xC0) == 0x80; }

// Scans the rest of a JSON string after its opening quote when it holds no escapes and no control
// characters, checking UTF-8 as simdjson does; returns the position after the closing quote, or
// nullptr (left to the slow path). Stops at the '\n' or '\0' that ends every line.
const char* scan_plain_string(const char* p) {
  while (true) {
    const auto c = static_cast<unsigned char>(*p);
    if (c == '"') return p + 1;
    if (c < 0x80) {
      if (c < 0x20 || c == '\\') return nullptr;
      ++p;
      continue;
    }
    const auto c1 = static_cast<unsigned char>(p[1]);
    if (c >= 0xC2 && c <= 0xDF) {
      if (!is_continuation(c1)) return nullptr;
      p += 2;
      continue;
    }
    // Three and four byte forms: the second byte's range excludes overlong forms, surrogates and
    // code points beyond U+10FFFF.
    unsigned char lo = 0x80, hi = 0xBF;
    int len = 0;
    if (c == 0xE0) {
      lo = 0xA0, len = 3;
    } else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) {
      len = 3;
    } else if (c == 0xED) {
      hi = 0x9F, len = 3;
    } else if (c == 0xF0) {
      lo = 0x90, len = 4;
    } else if (c >= 0xF1 && c <= 0xF3) {
      len = 4;
    } else if (c == 0xF4) {
      hi = 0x8F, len = 4;
    } else {
      return nullptr;
    }
    if (c1 < lo || c1 > hi) return nullptr;
    if (!is_continuation(static_cast<unsigned char>(p[2]))) return nullptr;
    if (len == 4 && !is_continuation(static_cast<unsigned char>(p[3]))) return nullptr;
    p += len;
  }
}

bool key_is(const char* key, std::size_t len, std::string_view name) {
  return len == name.size() && std::memcmp(key, name.data(), len) == 0;
}

// The integer fields of a record type: their JSON key and where record_fields keeps them.
struct int_key {
  const char* name;
  std::int64_t record_fields::*value;
  bool record_fields::*present;
};
constexpr int_key meta_int_keys[] = {
    {"version", &record_fields::version, &record_fields::has_version},
    {"num_ranks", &record_fields::num_ranks, &record_fields::has_num_ranks},
    {"num_groups", &record_fields::num_groups, &record_fields::has_num_groups},
    {"num_nodes", &record_fields::num_nodes, &record_fields::has_num_nodes},
    {"num_layers", &record_fields::num_layers, &record_fields::has_num_layers},
    {"num_redundant_experts", &record_fields::redundant, &record_fields::has_redundant},
};
constexpr int_key stats_int_keys[] = {
    {"step", &record_fields::step, &record_fields::has_step},
    {"num_layers", &record_fields::num_layers, &record_fields::has_num_layers},
    {"num_ranks", &record_fields::num_ranks, &record_fields::has_num_ranks},
    {"version", &record_fields::version, &record_fields::has_version},
};

// Returns the entry of `keys` named `key`, or nullptr.
template <std::size_t N>
const int_key* find_int_key(const int_key (&keys)[N], std::string_view key) {
  for (const int_key& k : keys) {
    if (key == k.name) return &k;
  }
  return nullptr;
}

}  // namespace

chunk_parser::chunk_parser(const stats_read_options& options, std::uint32_t id)
    : options_(options), id_(id) {}

error chunk_parser::fail(errc code, const std::string& field, const std::string& what) const {
  // No position: the apply stage prefixes "file:line: " once the line's number is known.
  return make_error(code, position{}, field, what);
}

error chunk_parser::json_fail(simdjson::error_code e) const {
  return fail(errc::invalid_json, "", cat("invalid JSON: ", simdjson::error_message(e)));
}

error chunk_parser::line_too_long(std::size_t bytes) const {
  std::string what = "line ";
  if (bytes > 0) what += cat("of ", bytes, " bytes ");
  what += cat("is longer than the limit of ", options_.batch_bytes,
              " bytes (docs/limits.md; raise it with --max-line-bytes)");
  return make_error(errc::limit_exceeded, position{}, "", what);
}

parsed_entry chunk_parser::new_entry(entry_kind kind) const {
  parsed_entry entry;
  entry.kind = kind;
  entry.line = line_;
  entry.byte = byte_;
  return entry;
}

void chunk_parser::add_error(error e) {
  parsed_entry entry = new_entry(entry_kind::error);
  entry.error = static_cast<std::int32_t>(out_->errors.size());
  out_->errors.push_back(std::move(e));
  out_->entries.push_back(entry);
}

std::optional<error> chunk_parser::line_json_error(const line_info& line,
                                                   std::optional<error>* if_last,
                                                   bool* partial_tail) const {
  const char* data = region_->data;
  std::string_view text(data + line.content, line.end - line.content);
  const auto e = validate_json_text(text);
  if (e == simdjson::SUCCESS) return std::nullopt;
  if (region_->file_offset + line.content == 0 && text.size() >= 3 &&
      std::memcmp(text.data(), "\xEF\xBB\xBF", 3) == 0) {
    // Spreadsheet tools and some Windows editors write one; JSON (RFC 8259) forbids it.
    return make_error(errc::invalid_json, position{}, "",
                      "the file starts with a UTF-8 byte order mark; write it without one");
  }
  // A writer that died mid-line leaves a last line without its closing brace; anything else
  // that is invalid is reported as such.
  while (!text.empty() && is_json_space(text.back())) text.remove_suffix(1);
  // simdjson's DOM parser stops at 1024 levels.
  if (auto d = diagnose_invalid_line(text, e == simdjson::DEPTH_ERROR, 1024)) {
    return make_error(errc::invalid_json, position{}, d->field, cat("invalid JSON: ", d->what));
  }
  // The file's last line without its newline, starting a record it does not complete: a writer
  // still appending (or one that died mid-line) left it; any proper prefix of a record is
  // invalid JSON, and only a record (an object) can be cut short.
  if (region_->final && line.end == region_->len && !text.empty() && text.front() == '{') {
    *partial_tail = true;
    return make_error(errc::invalid_json, position{}, "",
                      cat("truncated record: the last line is not a complete JSON object and has "
                          "no newline (was the writer interrupted, or is the file still being "
                          "written? --allow-partial-tail uses the records before it): ",
                          simdjson::error_message(e)));
  }
  // Binary garbage is just invalid.
  const bool cut = !text.empty() && text.front() == '{' && text.back() != '}';
  const error invalid = make_error(errc::invalid_json, position{}, "",
                                   cat("invalid JSON: ", simdjson::error_message(e)));
  if (!cut) return invalid;
  // Only whitespace may follow the last line of the file. Whether it is the last is known here
  // only in the file's last region; otherwise, when the rest of the region is blank, the apply
  // stage decides between the two messages once it has seen what follows.
  const char* after = data + std::min(line.end, region_->len);
  if (!std::all_of(after, data + region_->len, is_json_space)) return invalid;
  error truncated = make_error(
      errc::invalid_json, position{}, "",
      cat("truncated record: the last line is not a complete JSON object (was the writer "
          "interrupted?): ",
          simdjson::error_message(e)));
  if (region_->final) return truncated;
  *if_last = std::move(truncated);
  return invalid;
}

void chunk_parser::parse(const region_text& region, parsed_chunk& out) {
  region_ = &region;
  out_ = &out;
  out.clear();
  // Room for as many loads as the text can plausibly hold, reserved (not touched) at once rather
  // than grown by copies: about one value per 4 bytes.
  out.loads.discard_and_reserve(region.len / 4);
  const char* data = region.data;
  const std::size_t len = region.len;
  const std::size_t batch = options_.batch_bytes;
  std::uint64_t number = 1;  // relative to the region
  std::size_t pos = 0;
  while (pos < len) {
    const void* nl = std::memchr(data + pos, '\n', len - pos);
    const std::size_t end =
        nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - data) : len;
    if (nl != nullptr) ++out.lines;
    const line_info line{number, pos, pos, end};
    ++number;
    pos = end + 1;
    const std::size_t line_bytes =
        line.end - line.start - (end > line.start && data[end - 1] == '\r' ? 1 : 0);
    line_ = line.number;
    byte_ = region.file_offset + line.start;
    if (line_bytes > batch) {
      add_error(line_too_long(line_bytes));
      return;
    }
    std::size_t content = line.start;
    while (content < end && is_json_space(data[content])) ++content;
    if (content == end) continue;
    if (options_.fast_path && fast_line(data + content, data + end)) {
      finish_stats();
    } else {
      slow_line(line_info{line.number, line.start, content, end});
    }
    // Nothing after an entry that carries an error is needed: the read stops there.
    if (!out.entries.empty() && out.entries.back().error >= 0) return;
  }
}

// --- fast path -----------------------------------------------------------------------------------

bool chunk_parser::fast_line(const char* p, const char* end) {
  record_fields& f = fields_;
  f = record_fields{};
  if (*p != '{') return false;
  p = skip_blanks(p + 1);
  bool has_type = false;
  unsigned other_keys = 0;  // used keys met in the generic branches below, to catch duplicates
  while (true) {
    if (*p != '"') return false;
    const char* key = p + 1;
    p = scan_plain_string(key);
    if (p == nullptr) return false;
    const std::size_t key_len = static_cast<std::size_t>(p - 1 - key);
    p = skip_blanks(p);
    if (*p != ':') return false;
    p = skip_blanks(p + 1);
    if (key_is(key, key_len, "expert_load")) {
      if (f.has_load) return false;
      f.has_load = true;
      p = scan_int_matrix<std::int64_t, true>(p, out_->loads, out_->loads_used, f.load_rows,
                                              f.load_cols, [](std::int64_t x) { return x >= 0; });
    } else if (key_is(key, key_len, "p2l_map")) {
      if (f.has_p2l) return false;
      f.has_p2l = true;
      const std::size_t n = p2l_text_.size();
      if (n > 0 && static_cast<std::size_t>(end - p) >= n &&
          std::memcmp(p, p2l_text_.data(), n) == 0) {
        // The same text as the previous record's map: the same values (a JSON array ends at its
        // own closing bracket, whatever follows).
        p += n;
      } else {
        const char* start = p;
        p2l_text_.clear();
        new_p2l_generation();
        std::int64_t max = -1;
        p = scan_int_matrix<std::int32_t, true>(p, p2l_values_, 0, p2l_rows_, p2l_cols_,
                                                [&max](std::int64_t x) {
                                                  if (x < 0 || x >= limits::max_experts) {
                                                    return false;
                                                  }
                                                  max = std::max(max, x);
                                                  return true;
                                                });
        if (p == nullptr) return false;
        p2l_max_ = max;
        p2l_text_.assign(start, static_cast<std::size_t>(p - start));
      }
      f.p2l_rows = p2l_rows_;
      f.p2l_cols = p2l_cols_;
      f.p2l_max = p2l_max_;
    } else if (key_is(key, key_len, "record_type")) {
      if (has_type || *p != '"') return false;
      has_type = true;
      const char* value = p + 1;
      p = scan_plain_string(value);
      if (p == nullptr ||
          !key_is(value, static_cast<std::size_t>(p - 1 - value), "eplb_load_stats")) {
        return false;
      }
    } else if (key_is(key, key_len, "step")) {
      if (f.has_step) return false;
      f.has_step = true;
      p = scan_int64(p, f.step);
    } else if (key_is(key, key_len, "num_layers")) {
      if (f.has_num_layers) return false;
      f.has_num_layers = true;
      p = scan_int64(p, f.num_layers);
    } else if (key_is(key, key_len, "num_ranks")) {
      if (f.has_num_ranks) return false;
      f.has_num_ranks = true;
      p = scan_int64(p, f.num_ranks);
    } else if (key_is(key, key_len, "version")) {
      if (f.has_version) return false;
      f.has_version = true;
      p = scan_int64(p, f.version);
    } else if (const unsigned bit = used_key_bit(std::string_view(key, key_len));
               (other_keys & bit) != 0) {
      return false;  // a used key given twice: the slow path reports it
    } else if (*p == '"') {
      other_keys |= bit;
      p = scan_plain_string(p + 1);
    } else if (*p == '[') {
      other_keys |= bit;
      p = scan_int_matrix<std::int64_t, false>(p, unused_, 0, f.other_rows, f.other_cols,
                                               [](std::int64_t) { return true; });
    } else {
      other_keys |= bit;
      std::int64_t ignored;
      p = scan_int64(p, ignored);
    }
    if (p == nullptr) return false;
    p = skip_blanks(p);
    if (*p == '}') break;
    if (*p != ',') return false;
    p = skip_blanks(p + 1);
  }
  p = skip_blanks(p + 1);
  return p == end && has_type;
}

void chunk_parser::new_p2l_generation() { ++p2l_gen_; }

status chunk_parser::check_duplicate(std::string_view key, unsigned& seen) const {
  const unsigned bit = used_key_bit(key);
  if ((seen & bit) != 0) {
    return fail(errc::invalid_value, std::string(key), "appears twice in the record");
  }
  seen |= bit;
  return status::success();
}

void chunk_parser::finish_stats() {
  if (auto st = check_fields(); !st) {
    add_error(st.err());
    return;
  }
  const record_fields& f = fields_;
  parsed_entry entry = new_entry(entry_kind::stats);
  entry.f = f;
  entry.loads_at = out_->loads_used;
  out_->loads_used += f.load_rows * f.load_cols;
  // The map is copied into the chunk once per region, however many records share it.
  const std::uint64_t id = (static_cast<std::uint64_t>(id_) << 40) | p2l_gen_;
  if (out_->p2l_gen != id) {
    const std::size_t n = f.p2l_rows * f.p2l_cols;
    if (out_->p2l.size() < out_->p2l_used + n) out_->p2l.resize(out_->p2l_used + n);
    std::copy_n(p2l_values_.data(), n, out_->p2l.data() + out_->p2l_used);
    out_->p2l_last_at = out_->p2l_used;
    out_->p2l_used += n;
    out_->p2l_gen = id;
  }
  entry.p2l_at = out_->p2l_last_at;
  entry.p2l_id = id;
  out_->entries.push_back(entry);
}

// The checks of a stats record that need nothing but the record itself.
status chunk_parser::check_fields() {
  const record_fields& f = fields_;
  if (!f.has_step) return fail(errc::missing_field, "step", "missing in eplb_load_stats");
  if (!f.has_load) return fail(errc::missing_field, "expert_load", "missing in eplb_load_stats");
  if (!f.has_p2l) return fail(errc::missing_field, "p2l_map", "missing in eplb_load_stats");
  if (f.has_version && f.version != 1) {
    return fail(errc::invalid_value, "version", cat("expected 1, got ", f.version));
  }
  if (f.load_rows != f.p2l_rows || f.load_cols != f.p2l_cols) {
    return fail(errc::shape_mismatch, "expert_load",
                cat("shape ", shape_str(f.load_rows, f.load_cols), " does not match p2l_map shape ",
                    shape_str(f.p2l_rows, f.p2l_cols), " (step ", f.step, ')'));
  }
  if (f.load_rows > static_cast<std::size_t>(limits::max_layers)) {
    return fail(
        errc::limit_exceeded, "expert_load",
        cat(f.load_rows, " layers exceed the limit of ", limits::max_layers, " (docs/limits.md)"));
  }
  if (f.load_cols > static_cast<std::size_t>(limits::max_slots)) {
    return fail(errc::limit_exceeded, "expert_load",
                cat(f.load_cols, " slots per layer exceed the limit of ", limits::max_slots,
                    " (docs/limits.md)"));
  }
  if (static_cast<std::int64_t>(f.load_rows * f.load_cols) > limits::max_cells) {
    return fail(errc::limit_exceeded, "expert_load",
                cat("shape ", shape_str(f.load_rows, f.load_cols), " exceeds the limit of ",
                    limits::max_cells, " cells (docs/limits.md)"));
  }
  if (f.has_num_layers && f.num_layers != static_cast<std::int64_t>(f.load_rows)) {
    return fail(
        errc::shape_mismatch, "num_layers",
        cat("the record says ", f.num_layers, " but expert_load has ", f.load_rows, " layers"));
  }
  if (f.has_num_ranks && f.num_ranks < 1) {
    return fail(errc::invalid_value, "num_ranks", cat("must be positive, got ", f.num_ranks));
  }
  if (f.has_num_ranks && f.num_ranks > limits::max_slots) {
    return fail(errc::limit_exceeded, "num_ranks",
                cat(f.num_ranks, " exceeds the limit of ", limits::max_slots, " (docs/limits.md)"));
  }
  return status::success();
}

// --- slow path: simdjson On-Demand ---------------------------------------------------------------

void chunk_parser::slow_line(const line_info& line) {
  // Every line is validated on its own first, so syntax errors outrank whatever the record's
  // content looked like and do not depend on how the input was cut into regions.
  std::optional<error> if_last;
  bool partial_tail = false;
  if (auto e = line_json_error(line, &if_last, &partial_tail)) {
    if (partial_tail && options_.allow_partial_tail) {
      parsed_entry entry = new_entry(entry_kind::partial_tail);
      entry.tail_bytes = line.end - line.start;
      out_->entries.push_back(entry);
      return;
    }
    add_error(std::move(*e));
    if (if_last) {
      out_->entries.back().if_last = static_cast<std::int32_t>(out_->errors.size());
      out_->errors.push_back(std::move(*if_last));
    }
    return;
  }
  if (!parser_) {
    parser_ = std::make_unique<ondemand::parser>();
#ifdef SIMDJSON_THREADS_ENABLED
    parser_->threaded = false;
#endif
  }
  // The region is followed by SIMDJSON_PADDING readable bytes.
  const std::size_t room = region_->len - line.content + simdjson::SIMDJSON_PADDING;
  ondemand::document doc;
  if (auto e =
          parser_->iterate(region_->data + line.content, line.end - line.content, room).get(doc)) {
    add_error(json_fail(e));
    return;
  }
  ondemand::document_reference ref(doc);
  if (auto st = process_document(ref); !st) {
    add_error(st.err());
    return;
  }
  switch (kind_) {
    case entry_kind::stats:
      finish_stats();
      return;
    case entry_kind::meta:
    case entry_kind::other: {
      parsed_entry entry = new_entry(kind_);
      if (kind_ == entry_kind::meta) {
        entry.meta = static_cast<std::uint32_t>(out_->metas_used);
        if (out_->metas.size() <= out_->metas_used) out_->metas.emplace_back();
        out_->metas[out_->metas_used++] = meta_scratch_;
        if (has_meta_field_error_) {
          entry.error = static_cast<std::int32_t>(out_->errors.size());
          out_->errors.push_back(meta_field_error_);
        }
      }
      out_->entries.push_back(entry);
      return;
    }
    case entry_kind::error:
    case entry_kind::partial_tail:
      break;
  }
}

status chunk_parser::read_int(ondemand::value value, const char* field, std::int64_t& out) {
  const auto e = value.get_int64().get(out);
  if (e == simdjson::SUCCESS) return status::success();
  if (e == simdjson::INCORRECT_TYPE || e == simdjson::NUMBER_OUT_OF_RANGE) {
    const std::string token = token_of(value);
    if (looks_like_integer(token)) {
      return fail(errc::wrong_type, field, cat("integer ", token, " does not fit in 64 bits"));
    }
    return fail(errc::wrong_type, field, cat("expected an integer, got ", token));
  }
  return json_fail(e);
}

status chunk_parser::read_string(ondemand::value value, const char* field, std::string_view& out) {
  const auto e = value.get_string().get(out);
  if (e == simdjson::SUCCESS) return status::success();
  if (e == simdjson::INCORRECT_TYPE) {
    return fail(errc::wrong_type, field, cat("expected a string, got ", token_of(value)));
  }
  return json_fail(e);
}

// Parses an array of equally long arrays of integers into `out` from index `at` (row-major);
// `check(v, row, col)` returns an empty optional for an acceptable value or the error to report.
template <class T, class Check>
status chunk_parser::parse_matrix(ondemand::value value, const char* field, raw_buffer<T>& out,
                                  std::size_t at, std::size_t& rows, std::size_t& cols, Check check,
                                  bool integral_floats) {
  rows = 0;
  cols = 0;
  std::size_t count = 0;
  ondemand::array outer;
  if (auto e = value.get_array().get(outer)) {
    if (e == simdjson::INCORRECT_TYPE) {
      return fail(errc::wrong_type, field,
                  cat("expected an array of arrays of integers, got ", token_of(value)));
    }
    return json_fail(e);
  }
  for (auto row_result : outer) {
    ondemand::value row_value;
    if (auto e = row_result.get(row_value)) return json_fail(e);
    ondemand::array row;
    if (auto e = row_value.get_array().get(row)) {
      if (e == simdjson::INCORRECT_TYPE) {
        return fail(
            errc::wrong_type, field,
            cat("layer ", rows, ": expected an array of integers, got ", token_of(row_value)));
      }
      return json_fail(e);
    }
    std::size_t n = 0;
    for (auto element : row) {
      ondemand::value v;
      if (auto e = element.get(v)) return json_fail(e);
      std::int64_t x = 0;
      double d = 0;
      if (auto e = v.get_int64().get(x)) {
        if (e != simdjson::INCORRECT_TYPE && e != simdjson::NUMBER_OUT_OF_RANGE) {
          return json_fail(e);
        }
        if (integral_floats && v.get_double().get(d) == simdjson::SUCCESS && d >= 0 &&
            d < 9223372036854775808.0 && std::floor(d) == d) {
          x = static_cast<std::int64_t>(d);
        } else {
          const std::string token = token_of(v);
          std::string what = cat("layer ", rows, ", slot ", n, ": ");
          if (looks_like_integer(token)) {
            what += cat("integer ", token, " does not fit in 64 bits");
          } else {
            what += cat("expected an integer, got ", token);
          }
          return fail(errc::wrong_type, field, what);
        }
      }
      if (auto bad = check(x, rows, n)) return *bad;
      if (out.size() <= at + count) out.resize(std::max<std::size_t>(256, 2 * (at + count)));
      out[at + count] = static_cast<T>(x);
      ++count;
      ++n;
    }
    if (rows == 0) {
      cols = n;
    } else if (n != cols) {
      return fail(errc::shape_mismatch, field,
                  cat("layer ", rows, " has ", n, " entries, layer 0 has ", cols));
    }
    ++rows;
  }
  if (rows == 0) return fail(errc::invalid_value, field, "empty: no layers");
  if (cols == 0) return fail(errc::invalid_value, field, "empty: layers have no slots");
  if (rows > static_cast<std::size_t>(INT_MAX) || cols > static_cast<std::size_t>(INT_MAX)) {
    return fail(errc::limit_exceeded, field, cat("shape ", shape_str(rows, cols), " is too large"));
  }
  return status::success();
}

status chunk_parser::process_document(ondemand::document_reference& doc) {
  kind_ = entry_kind::error;
  ondemand::object object;
  if (auto e = doc.get_object().get(object)) {
    if (e == simdjson::INCORRECT_TYPE) {
      return fail(errc::wrong_type, "", "a record must be a JSON object");
    }
    return json_fail(e);
  }
  ondemand::value type_value;
  auto e = object.find_field_unordered("record_type").get(type_value);
  if (e == simdjson::NO_SUCH_FIELD) return fail(errc::missing_field, "record_type", "missing");
  if (e) return json_fail(e);
  std::string_view type;
  if (auto st = read_string(type_value, "record_type", type); !st) return st;
  entry_kind kind = entry_kind::other;
  if (type == "eplb_load_stats") {
    kind = entry_kind::stats;
  } else if (type == "eplb_load_meta") {
    kind = entry_kind::meta;
  }
  // Walk the whole object from its start (record_type usually comes first, so this rereads little).
  bool non_empty = false;
  if (auto e2 = object.reset().get(non_empty)) return json_fail(e2);
  status st;
  switch (kind) {
    case entry_kind::meta:
      st = process_meta(object);
      break;
    case entry_kind::stats:
      st = process_stats(object);
      break;
    default:
      st = process_other(object);
      break;
  }
  if (st) kind_ = kind;
  return st;
}

status chunk_parser::process_other(ondemand::object& object) {
  // Record types the reader does not use are skipped, but their syntax is still checked.
  for (auto field_result : object) {
    ondemand::field field;
    if (auto e = std::move(field_result).get(field)) return json_fail(e);
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return json_fail(e);
    if (key == "record_type") {
      ondemand::raw_json_string raw;  // already unescaped once; do not unescape it again
      if (auto e = field.value().get_raw_json_string().get(raw)) return json_fail(e);
      continue;
    }
    if (auto e = check_value(field.value())) return json_fail(e);
  }
  return status::success();
}

template <class Fn>
status chunk_parser::for_each_field(ondemand::object& object, Fn&& fn) {
  unsigned seen_keys = 0;
  for (auto field_result : object) {
    ondemand::field field;
    if (auto e = std::move(field_result).get(field)) return json_fail(e);
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return json_fail(e);
    if (auto st = check_duplicate(key, seen_keys); !st) return st;
    if (auto st = fn(key, field.value()); !st) return st;
  }
  return status::success();
}

// Parses the meta record's fields into meta_scratch_. A field error is not returned but kept in
// the entry: the checks of the record's place in the file (apply stage) come first.
status chunk_parser::process_meta(ondemand::object& object) {
  record_fields f;
  stats_meta& meta = meta_scratch_;
  meta = stats_meta{};
  meta.where = position{};  // set by the apply stage
  auto field_error = [&]() -> status {
    const status walked =
        for_each_field(object, [&](std::string_view key, ondemand::value v) -> status {
          if (const int_key* k = find_int_key(meta_int_keys, key)) {
            f.*(k->present) = true;
            return read_int(v, k->name, f.*(k->value));
          }
          if (key == "model") {
            std::string_view model;
            status st = read_string(v, "model", model);
            if (st) meta.model.assign(model);
            return st;
          }
          if (key == "record_type") {
            ondemand::raw_json_string raw;
            if (auto e = v.get_raw_json_string().get(raw)) return json_fail(e);
          } else if (auto e = check_value(v)) {
            return json_fail(e);
          }
          return status::success();
        });
    if (!walked) return walked;
    if (f.has_version && f.version != 1) {
      return fail(errc::invalid_value, "version", cat("expected 1, got ", f.version));
    }
    struct int_field {
      bool present;
      std::int64_t value;
      const char* name;
      int min;
      int max;  // docs/limits.md
      int* out;
    };
    const int_field ints[] = {
        {f.has_num_layers, f.num_layers, "num_layers", 1, limits::max_layers, &meta.num_layers},
        {f.has_num_ranks, f.num_ranks, "num_ranks", 1, limits::max_slots, &meta.num_ranks},
        {f.has_num_groups, f.num_groups, "num_groups", 1, limits::max_groups, &meta.num_groups},
        {f.has_num_nodes, f.num_nodes, "num_nodes", 1, limits::max_groups, &meta.num_nodes},
        {f.has_redundant, f.redundant, "num_redundant_experts", 0, limits::max_slots,
         &meta.num_redundant_experts},
    };
    for (const auto& i : ints) {
      if (!i.present) return fail(errc::missing_field, i.name, "missing in eplb_load_meta");
      if (i.value < i.min) {
        return fail(errc::invalid_value, i.name,
                    cat("must be ", i.min == 0 ? "non-negative" : "positive", ", got ", i.value));
      }
      if (i.value > i.max) {
        return fail(errc::limit_exceeded, i.name,
                    cat(i.value, " exceeds the limit of ", i.max, " (docs/limits.md)"));
      }
      *i.out = static_cast<int>(i.value);
    }
    return status::success();
  }();
  if (!field_error) {
    // Kept for the apply stage; the meta entry is still produced.
    meta_field_error_ = field_error.err();
    has_meta_field_error_ = true;
  } else {
    has_meta_field_error_ = false;
  }
  return status::success();
}

status chunk_parser::process_stats(ondemand::object& object) {
  record_fields& f = fields_;
  f = record_fields{};
  return for_each_field(object, [&](std::string_view key, ondemand::value v) -> status {
    status st;
    if (key == "expert_load") {
      f.has_load = true;
      // The fast scanner handles well-formed input; anything else (including every error) goes
      // through On-Demand, which reports it precisely. A scanned value is left unconsumed and
      // simdjson skips it by its structural index.
      if (!scan_int_matrix<std::int64_t, true>(v.raw_json_token().data(), out_->loads,
                                               out_->loads_used, f.load_rows, f.load_cols,
                                               [](std::int64_t x) { return x >= 0; })) {
        st = parse_matrix(
            v, "expert_load", out_->loads, out_->loads_used, f.load_rows, f.load_cols,
            [this](std::int64_t x, std::size_t l, std::size_t p) -> std::optional<error> {
              if (x >= 0) return std::nullopt;
              return fail(errc::invalid_value, "expert_load",
                          cat("layer ", l, ", slot ", p, ": negative load ", x));
            },
            /*integral_floats=*/true);
      }
    } else if (key == "p2l_map") {
      f.has_p2l = true;
      // Parsed afresh into the cache, which no longer matches any text.
      p2l_text_.clear();
      new_p2l_generation();
      std::int64_t max = -1;
      if (!scan_int_matrix<std::int32_t, true>(v.raw_json_token().data(), p2l_values_, 0, p2l_rows_,
                                               p2l_cols_, [&max](std::int64_t x) {
                                                 if (x < 0 || x >= limits::max_experts) {
                                                   return false;
                                                 }
                                                 max = std::max(max, x);
                                                 return true;
                                               })) {
        max = -1;
        st = parse_matrix(
            v, "p2l_map", p2l_values_, 0, p2l_rows_, p2l_cols_,
            [this, &max](std::int64_t x, std::size_t l, std::size_t p) -> std::optional<error> {
              if (x >= 0 && x < limits::max_experts) {
                max = std::max(max, x);
                return std::nullopt;
              }
              if (x < 0) {
                return fail(errc::out_of_range, "p2l_map",
                            cat("layer ", l, ", slot ", p, ": logical expert id ", x,
                                " is negative (an unmapped slot?)"));
              }
              return fail(errc::limit_exceeded, "p2l_map",
                          cat("layer ", l, ", slot ", p, ": logical expert id ", x,
                              " is beyond the limit of ", limits::max_experts,
                              " experts (docs/limits.md)"));
            });
      }
      p2l_max_ = max;
      f.p2l_rows = p2l_rows_;
      f.p2l_cols = p2l_cols_;
      f.p2l_max = p2l_max_;
    } else if (const int_key* k = find_int_key(stats_int_keys, key)) {
      f.*(k->present) = true;
      st = read_int(v, k->name, f.*(k->value));
    } else if (key == "record_type") {
      ondemand::raw_json_string raw;
      if (auto e = v.get_raw_json_string().get(raw)) return json_fail(e);
    } else if (!scan_int_matrix<std::int64_t, false>(v.raw_json_token().data(), unused_, 0,
                                                     f.other_rows, f.other_cols,
                                                     [](std::int64_t) { return true; })) {
      // Fields the reader does not use (tokens, experts_per_rank, ...) are syntax-checked: the
      // integer matrices by the scanner, anything else by a full On-Demand walk.
      if (auto e = check_value(v)) return json_fail(e);
    }
    return st;
  });
}

}  // namespace eplb::detail
