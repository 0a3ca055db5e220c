// vLLM offline-EPLB stats JSONL reader (layouts 1a, 1b and 1c, see
// shared/formats/vllm-offline-eplb.md §1-2).
//
// The file is read in chunks into one reused buffer; the complete lines of the buffer (a
// "region") go through simdjson's iterate_many and the partial last line is carried over to the
// next read, so memory stays constant whatever the file size. Every JSON document must start
// where a non-blank line starts: the reader keeps a table of the region's lines and checks each
// document against it, which gives exact line numbers and catches lines that simdjson would merge
// or drop (a truncated last line, two values on a line, a record continued on the next line).
// Then the region is redone line by line, each line validated on its own, so errors come in file
// order and their messages do not depend on where the chunk boundaries fell.
//
// Hot path: expert_load, p2l_map and the other integer matrices are parsed by a strict scanner
// (int_matrix.hpp) straight from the buffer; On-Demand is the fallback that reports any error.

#include <simdjson.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <iterator>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "eplb/limits.hpp"
#include "eplb/stats.hpp"
#include "stats/byte_source.hpp"
#include "stats/int_matrix.hpp"
#include "stats/json_check.hpp"
#include "stats/json_diagnose.hpp"
#include "stats/text.hpp"

namespace eplb {
namespace detail {
namespace {

namespace ondemand = simdjson::ondemand;

// simdjson's window must hold a whole document; a little slack keeps a line of exactly
// batch_bytes away from the window's edge.
constexpr std::size_t window_slack = 64;
// Upper bound of batch_bytes, well inside simdjson's 4 GiB limit.
constexpr std::size_t max_batch_bytes = limits::max_line_bytes;

std::string shape_str(std::size_t rows, std::size_t cols) {
  return cat('[', rows, "][", cols, ']');
}

std::string where_str(const position& p) { return cat(p.file, ':', p.line); }

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

// One non-blank line of the current region.
struct line_info {
  std::uint64_t number;  // 1-based line number in the file
  std::size_t start;     // offset of the line's first byte in the region
  std::size_t content;   // offset of its first non-whitespace byte
  std::size_t end;       // offset of its '\n', or of the region's end
};

enum class record_kind { meta, stats, other };

// The fields of a record that the reader uses; reset per record without freeing anything.
struct record_fields {
  bool has_step = false, has_load = false, has_p2l = false, has_num_layers = false,
       has_num_ranks = false, has_version = false, has_num_groups = false, has_num_nodes = false,
       has_redundant = false;
  std::int64_t step = 0, num_layers = 0, num_ranks = 0, version = 0, num_groups = 0, num_nodes = 0,
               redundant = 0;
  std::size_t load_rows = 0, load_cols = 0, p2l_rows = 0, p2l_cols = 0;
  std::size_t other_rows = 0, other_cols = 0;
  std::int64_t p2l_max = -1;
};

class stats_reader {
 public:
  stats_reader(const stats_read_options& options, stats_sink& sink, stats_read_summary& summary)
      : options_(options), sink_(sink), summary_(summary) {
#ifdef SIMDJSON_THREADS_ENABLED
    // One thread, as documented: the next batch's stage 1 is not run in the background.
    parser_.threaded = false;
#endif
  }

  status check_options() const {
    if (options_.batch_bytes == 0 || options_.batch_bytes > max_batch_bytes) {
      return make_error(
          errc::invalid_argument, position{}, "batch_bytes",
          cat("must be between 1 and ", max_batch_bytes, ", got ", options_.batch_bytes));
    }
    if (options_.read_chunk_bytes == 0) {
      return make_error(errc::invalid_argument, position{}, "read_chunk_bytes", "must be positive");
    }
    return status::success();
  }

  status read(const std::string& name, byte_source& source);
  status finish();

 private:
  status process_region(const char* data, std::size_t len, bool final);
  status process_document(ondemand::document_reference& doc);
  status process_meta(ondemand::object& object);
  status process_stats(ondemand::object& object);
  status process_other(ondemand::object& object);
  status check_selected(record_fields& f);

  template <class T, class Check>
  status parse_matrix(ondemand::value value, const char* field, std::vector<T>& out,
                      std::size_t& rows, std::size_t& cols, Check check);
  status read_int(ondemand::value value, const char* field, std::int64_t& out);
  // Fails when a key the reader uses appears a second time in the record.
  status check_duplicate(std::string_view key, unsigned& seen) const {
    const unsigned bit = used_key_bit(key);
    if ((seen & bit) != 0) {
      return fail(errc::invalid_value, std::string(key), "appears twice in the record");
    }
    seen |= bit;
    return status::success();
  }
  status read_string(ondemand::value value, const char* field, std::string_view& out);

  // Errors at the current record.
  error fail(errc code, const std::string& field, const std::string& what) const {
    return make_error(code, record_.where, field, what);
  }
  error json_fail(simdjson::error_code e) const {
    return fail(errc::invalid_json, "", cat("invalid JSON: ", simdjson::error_message(e)));
  }
  // Validates one line on its own; returns the JSON error for it, if any.
  // An invalid last line of a region that is not known to be the file's last (blank bytes may
  // follow unread) reads the rest of the file to tell, so the message does not depend on where
  // the read chunks fell; only called on that error path, which ends the read anyway.
  std::optional<error> line_json_error(const char* data, std::size_t k, bool last_in_file);
  // Returns true when only JSON whitespace follows the current region up to the end of the file.
  bool rest_is_blank();
  // Processes lines [from, end) of the region one at a time, each validated on its own.
  status process_lines_one_by_one(const char* data, std::size_t from, bool final);
  // Positions record_ at line k, processes its document and hands it to the sink if selected.
  status process_line_document(ondemand::document_reference& doc, const char* data, std::size_t k,
                               bool final);
  error line_too_long(std::uint64_t line, std::size_t bytes) const;

  const stats_read_options& options_;
  stats_sink& sink_;
  stats_read_summary& summary_;

  // Reused buffers: nothing is allocated per record once they have grown.
  std::unique_ptr<char[]> buf_;
  std::size_t cap_ = 0;
  std::vector<line_info> lines_;
  std::vector<std::int64_t> loads_;
  std::vector<std::int32_t> p2l_;
  std::vector<std::uint32_t> seen_;
  std::uint32_t stamp_ = 0;
  ondemand::parser parser_;
  std::unique_ptr<ondemand::parser> line_parser_;  // for the line-by-line fallback only
  stats_record record_;
  record_fields fields_;
  std::vector<std::int64_t> unused_;  // never filled: the scanner's output when only validating
  bool deliver_ = false;
  // The region being processed: its source, the bytes after it in buf_, whether it is the last.
  byte_source* source_ = nullptr;
  std::size_t tail_begin_ = 0, tail_end_ = 0;
  bool region_final_ = false;

  // Per file.
  std::optional<stats_meta> meta_;
  std::uint64_t file_stats_ = 0;
  std::uint64_t next_line_ = 1;
  std::uint64_t file_offset_ = 0;
  bool file_has_selected_ = false;

  // Across files: the shape fixed by the first selected record.
  bool have_shape_ = false;
  int num_layers_ = 0;
  int num_experts_ = 0;
  position first_where_;
  std::int64_t seen_min_step_ = 0, seen_max_step_ = 0;
};

error stats_reader::line_too_long(std::uint64_t line, std::size_t bytes) const {
  std::string what = "line ";
  if (bytes > 0) what += cat("of ", bytes, " bytes ");
  what += cat("is longer than the limit of ", options_.batch_bytes,
              " bytes (docs/limits.md; raise it with --max-line-bytes)");
  return make_error(errc::limit_exceeded, position{record_.where.file, line, 0}, "", what);
}

bool stats_reader::rest_is_blank() {
  if (!std::all_of(buf_.get() + tail_begin_, buf_.get() + tail_end_, is_json_space)) return false;
  char chunk[4096];
  for (;;) {
    auto got = source_->read(chunk, sizeof chunk);
    if (!got) return false;  // unknown: not "last"
    if (!std::all_of(chunk, chunk + *got, is_json_space)) return false;
    if (*got < sizeof chunk) return true;
  }
}

std::optional<error> stats_reader::line_json_error(const char* data, std::size_t k,
                                                   bool last_in_file) {
  const line_info& line = lines_[k];
  const auto e = validate_json_text(std::string_view(data + line.content, line.end - line.content));
  if (e == simdjson::SUCCESS) return std::nullopt;
  if (!last_in_file && !region_final_ && k + 1 == lines_.size()) last_in_file = rest_is_blank();
  position where{record_.where.file, line.number, file_offset_ + line.start};
  if (file_offset_ + line.content == 0 && line.end - line.content >= 3 &&
      std::memcmp(data + line.content, "\xEF\xBB\xBF", 3) == 0) {
    // Spreadsheet tools and some Windows editors write one; JSON (RFC 8259) forbids it.
    return make_error(errc::invalid_json, where, "",
                      "the file starts with a UTF-8 byte order mark; write it without one");
  }
  // A writer that died mid-line leaves a last line without its closing brace; anything else
  // that is invalid is reported as such.
  std::string_view text(data + line.content, line.end - line.content);
  while (!text.empty() && is_json_space(text.back())) text.remove_suffix(1);
  // simdjson's DOM parser stops at 1024 levels.
  if (auto d = diagnose_invalid_line(text, e == simdjson::DEPTH_ERROR, 1024)) {
    return make_error(errc::invalid_json, where, d->field, cat("invalid JSON: ", d->what));
  }
  // Only a record (an object) can be cut short; binary garbage is just invalid.
  const bool truncated = last_in_file && !text.empty() && text.front() == '{' && text.back() != '}';
  const std::string what =
      truncated ? cat("truncated record: the last line is not a complete JSON object (was the "
                      "writer interrupted?): ",
                      simdjson::error_message(e))
                : cat("invalid JSON: ", simdjson::error_message(e));
  return make_error(errc::invalid_json, where, "", what);
}

status stats_reader::process_line_document(ondemand::document_reference& doc, const char* data,
                                           std::size_t k, bool final) {
  const line_info& line = lines_[k];
  record_.where.line = line.number;
  record_.where.byte = file_offset_ + line.start;
  if (auto st = process_document(doc); !st) {
    // A syntax error in the line outranks whatever the record's content looked like.
    if (auto e = line_json_error(data, k, final && k + 1 == lines_.size())) return *e;
    return st;
  }
  if (deliver_) return sink_.on_record(record_);
  return status::success();
}

status stats_reader::process_lines_one_by_one(const char* data, std::size_t from, bool final) {
  if (!line_parser_) line_parser_ = std::make_unique<ondemand::parser>();
  for (std::size_t k = from; k < lines_.size(); ++k) {
    if (auto e = line_json_error(data, k, final && k + 1 == lines_.size())) return *e;
    const line_info& line = lines_[k];
    // The buffer holds SIMDJSON_PADDING readable bytes past any line of it.
    const std::size_t room = cap_ + simdjson::SIMDJSON_PADDING - line.content;
    ondemand::document doc;
    if (auto e =
            line_parser_->iterate(data + line.content, line.end - line.content, room).get(doc)) {
      return make_error(errc::invalid_json,
                        position{record_.where.file, line.number, file_offset_ + line.start}, "",
                        cat("invalid JSON: ", simdjson::error_message(e)));
    }
    ondemand::document_reference ref(doc);
    if (auto st = process_line_document(ref, data, k, final); !st) return st;
  }
  return status::success();
}

status stats_reader::read(const std::string& name, byte_source& source) {
  meta_.reset();
  file_stats_ = 0;
  next_line_ = 1;
  file_offset_ = 0;
  file_has_selected_ = false;
  record_.where = position{name, 0, 0};
  summary_.files.push_back(name);

  const std::size_t batch = options_.batch_bytes;
  // The buffer must hold one line of batch bytes with its CR LF.
  const std::size_t max_cap = std::max(options_.read_chunk_bytes, batch + 2);
  std::size_t want = max_cap;
  const std::uint64_t hint = source.size_hint();
  if (hint > 0 && hint < max_cap) want = std::max<std::size_t>(hint + 1, 4096);
  want = std::min(want, max_cap);
  if (cap_ < want) {
    buf_.reset(new char[want + simdjson::SIMDJSON_PADDING]);
    cap_ = want;
  }

  std::size_t len = 0;  // bytes in buf_: the carried partial line, then new data
  bool eof = false;
  while (!eof) {
    if (len == cap_) {
      // A full buffer without a newline: grow it up to the size one line may have.
      if (cap_ >= max_cap) return line_too_long(next_line_, 0);
      const std::size_t grown = std::min(max_cap, cap_ * 2);
      std::unique_ptr<char[]> bigger(new char[grown + simdjson::SIMDJSON_PADDING]);
      std::memcpy(bigger.get(), buf_.get(), len);
      buf_ = std::move(bigger);
      cap_ = grown;
    }
    const std::size_t ask = std::min(options_.read_chunk_bytes, cap_ - len);
    auto got = source.read(buf_.get() + len, ask);
    if (!got) return got.to_status();
    eof = *got < ask;  // sources fill every request until the input ends
    const std::size_t old_len = len;
    len += *got;
    summary_.bytes += *got;

    std::size_t region = len;
    if (!eof) {
      const void* nl = ::memrchr(buf_.get() + old_len, '\n', len - old_len);
      if (nl == nullptr) {
        // Everything in the buffer is one unfinished line (its CR may already be there).
        if (len - (buf_[len - 1] == '\r' ? 1 : 0) > batch) return line_too_long(next_line_, 0);
        continue;
      }
      region = static_cast<std::size_t>(static_cast<const char*>(nl) - buf_.get()) + 1;
    }
    // The region is the last of the file when only whitespace follows it and the source is done.
    bool last_region = eof;
    if (!last_region && source.at_end()) {
      last_region = std::all_of(buf_.get() + region, buf_.get() + len, is_json_space);
    }
    // Every line must end in '\n' or '\0' for the integer scanner, which also loads up to 8
    // bytes past a line's end: zero the padding after the data (only the file's last line can
    // lack its newline).
    std::memset(buf_.get() + len, 0, 16);
    source_ = &source;
    tail_begin_ = region;
    tail_end_ = len;
    region_final_ = last_region;
    if (auto st = process_region(buf_.get(), region, last_region); !st) return st;
    std::memmove(buf_.get(), buf_.get() + region, len - region);
    len -= region;
    file_offset_ += region;
  }
  if (file_stats_ == 0) {
    return make_error(errc::no_records, position{name, 0, 0}, "",
                      "no eplb_load_stats records found");
  }
  return status::success();
}

status stats_reader::process_region(const char* data, std::size_t len, bool final) {
  const std::size_t batch = options_.batch_bytes;
  lines_.clear();
  std::uint64_t number = next_line_;
  std::size_t pos = 0;
  while (pos < len) {
    const void* nl = std::memchr(data + pos, '\n', len - pos);
    const std::size_t end =
        nl ? static_cast<std::size_t>(static_cast<const char*>(nl) - data) : len;
    const std::size_t line_bytes = end - pos - (end > pos && data[end - 1] == '\r' ? 1 : 0);
    if (line_bytes > batch) return line_too_long(number, line_bytes);
    std::size_t content = pos;
    while (content < end && is_json_space(data[content])) ++content;
    if (content < end) lines_.push_back(line_info{number, pos, content, end});
    ++number;
    pos = end + 1;
  }
  next_line_ = number;
  if (lines_.empty()) return status::success();

  ondemand::document_stream stream;
  if (auto e =
          parser_
              .iterate_many(reinterpret_cast<const std::uint8_t*>(data), len, batch + window_slack)
              .get(stream)) {
    return make_error(errc::internal, position{record_.where.file, lines_[0].number, 0}, "",
                      cat("cannot start the JSON stream: ", simdjson::error_message(e)));
  }
  std::size_t k = 0;  // index of the line the next document must start
  // When the stream and the line table disagree (a syntax error, a record spread over two
  // lines, two values on a line, a truncated last line), redo the region from the last good
  // document line by line: errors then come in file order and nothing depends on simdjson's
  // batching. The document before k was complete on its line unless its line is invalid.
  auto fall_back = [&]() -> status {
    if (k > 0) {
      if (auto e = line_json_error(data, k - 1, final && k == lines_.size())) return *e;
    }
    return process_lines_one_by_one(data, k, final);
  };
  for (auto it = stream.begin(); it != stream.end(); ++it) {
    auto doc_result = *it;
    if (doc_result.error()) return fall_back();
    std::size_t start = it.current_index();
    while (start < len && is_json_space(data[start])) ++start;
    if (k >= lines_.size() || start != lines_[k].content) return fall_back();
    ondemand::document_reference doc;
    if (std::move(doc_result).get(doc)) return fall_back();
    if (auto st = process_line_document(doc, data, k, final); !st) return st;
    ++k;
  }
  if (k != lines_.size() || stream.truncated_bytes() != 0) return fall_back();
  return status::success();
}

status stats_reader::read_int(ondemand::value value, const char* field, std::int64_t& out) {
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

status stats_reader::read_string(ondemand::value value, const char* field, std::string_view& out) {
  const auto e = value.get_string().get(out);
  if (e == simdjson::SUCCESS) return status::success();
  if (e == simdjson::INCORRECT_TYPE) {
    return fail(errc::wrong_type, field, cat("expected a string, got ", token_of(value)));
  }
  return json_fail(e);
}

// Parses an array of equally long arrays of integers into `out` (row-major); `check(v, row, col)`
// returns an empty optional for an acceptable value or the error to report.
template <class T, class Check>
status stats_reader::parse_matrix(ondemand::value value, const char* field, std::vector<T>& out,
                                  std::size_t& rows, std::size_t& cols, Check check) {
  out.clear();
  rows = 0;
  cols = 0;
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
      if (auto e = v.get_int64().get(x)) {
        if (e != simdjson::INCORRECT_TYPE && e != simdjson::NUMBER_OUT_OF_RANGE) {
          return json_fail(e);
        }
        const std::string token = token_of(v);
        std::string what = cat("layer ", rows, ", slot ", n, ": ");
        if (looks_like_integer(token)) {
          what += cat("integer ", token, " does not fit in 64 bits");
        } else {
          what += cat("expected an integer, got ", token);
        }
        return fail(errc::wrong_type, field, what);
      }
      if (auto bad = check(x, rows, n)) return *bad;
      out.push_back(static_cast<T>(x));
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

status stats_reader::process_document(ondemand::document_reference& doc) {
  deliver_ = false;
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
  record_kind kind = record_kind::other;
  if (type == "eplb_load_stats") {
    kind = record_kind::stats;
  } else if (type == "eplb_load_meta") {
    kind = record_kind::meta;
  }
  // Walk the whole object from its start (record_type usually comes first, so this rereads little).
  bool non_empty = false;
  if (auto e2 = object.reset().get(non_empty)) return json_fail(e2);
  switch (kind) {
    case record_kind::meta:
      return process_meta(object);
    case record_kind::stats:
      return process_stats(object);
    case record_kind::other:
      return process_other(object);
  }
  return status::success();
}

status stats_reader::process_other(ondemand::object& object) {
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
  ++summary_.records_skipped_other;
  return status::success();
}

status stats_reader::process_meta(ondemand::object& object) {
  if (meta_) {
    return fail(errc::bad_sequence, "",
                cat("second eplb_load_meta record found (the first is at line ", meta_->where.line,
                    "); a file holds exactly one"));
  }
  if (file_stats_ > 0) {
    return fail(errc::bad_sequence, "", "eplb_load_meta must precede all eplb_load_stats records");
  }
  record_fields f;
  stats_meta meta;
  meta.where = record_.where;
  unsigned seen_keys = 0;
  for (auto field_result : object) {
    ondemand::field field;
    if (auto e = std::move(field_result).get(field)) return json_fail(e);
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return json_fail(e);
    if (auto st = check_duplicate(key, seen_keys); !st) return st;
    ondemand::value v = field.value();
    status st;
    if (key == "version") {
      st = read_int(v, "version", f.version);
      f.has_version = true;
    } else if (key == "num_ranks") {
      st = read_int(v, "num_ranks", f.num_ranks);
      f.has_num_ranks = true;
    } else if (key == "num_groups") {
      st = read_int(v, "num_groups", f.num_groups);
      f.has_num_groups = true;
    } else if (key == "num_nodes") {
      st = read_int(v, "num_nodes", f.num_nodes);
      f.has_num_nodes = true;
    } else if (key == "num_layers") {
      st = read_int(v, "num_layers", f.num_layers);
      f.has_num_layers = true;
    } else if (key == "num_redundant_experts") {
      st = read_int(v, "num_redundant_experts", f.redundant);
      f.has_redundant = true;
    } else if (key == "model") {
      std::string_view model;
      st = read_string(v, "model", model);
      if (st) meta.model.assign(model);
    } else if (key == "record_type") {
      ondemand::raw_json_string raw;
      if (auto e = v.get_raw_json_string().get(raw)) return json_fail(e);
    } else if (auto e = check_value(v)) {
      return json_fail(e);
    }
    if (!st) return st;
  }
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
  meta_ = std::move(meta);
  if (!summary_.meta) summary_.meta = meta_;
  return status::success();
}

status stats_reader::process_stats(ondemand::object& object) {
  record_fields& f = fields_;
  f = record_fields{};
  unsigned seen_keys = 0;
  for (auto field_result : object) {
    ondemand::field field;
    if (auto e = std::move(field_result).get(field)) return json_fail(e);
    std::string_view key;
    if (auto e = field.unescaped_key().get(key)) return json_fail(e);
    if (auto st = check_duplicate(key, seen_keys); !st) return st;
    ondemand::value v = field.value();
    status st;
    if (key == "expert_load") {
      f.has_load = true;
      // The fast scanner handles well-formed input; anything else (including every error) goes
      // through On-Demand, which reports it precisely. A scanned value is left unconsumed and
      // simdjson skips it by its structural index.
      if (!scan_int_matrix<std::int64_t, true>(v.raw_json_token().data(), loads_, f.load_rows,
                                               f.load_cols,
                                               [](std::int64_t x) { return x >= 0; })) {
        st = parse_matrix(
            v, "expert_load", loads_, f.load_rows, f.load_cols,
            [this](std::int64_t x, std::size_t l, std::size_t p) -> std::optional<error> {
              if (x >= 0) return std::nullopt;
              return fail(errc::invalid_value, "expert_load",
                          cat("layer ", l, ", slot ", p, ": negative load ", x));
            });
      }
    } else if (key == "p2l_map") {
      f.has_p2l = true;
      f.p2l_max = -1;
      if (!scan_int_matrix<std::int32_t, true>(v.raw_json_token().data(), p2l_, f.p2l_rows,
                                               f.p2l_cols, [&f](std::int64_t x) {
                                                 if (x < 0 || x >= limits::max_experts) {
                                                   return false;
                                                 }
                                                 f.p2l_max = std::max(f.p2l_max, x);
                                                 return true;
                                               })) {
        f.p2l_max = -1;
        st = parse_matrix(
            v, "p2l_map", p2l_, f.p2l_rows, f.p2l_cols,
            [this, &f](std::int64_t x, std::size_t l, std::size_t p) -> std::optional<error> {
              if (x >= 0 && x < limits::max_experts) {
                f.p2l_max = std::max(f.p2l_max, x);
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
    } else if (key == "step") {
      f.has_step = true;
      st = read_int(v, "step", f.step);
    } else if (key == "num_layers") {
      f.has_num_layers = true;
      st = read_int(v, "num_layers", f.num_layers);
    } else if (key == "num_ranks") {
      f.has_num_ranks = true;
      st = read_int(v, "num_ranks", f.num_ranks);
    } else if (key == "version") {
      f.has_version = true;
      st = read_int(v, "version", f.version);
    } else if (key == "record_type") {
      ondemand::raw_json_string raw;
      if (auto e = v.get_raw_json_string().get(raw)) return json_fail(e);
    } else if (!scan_int_matrix<std::int64_t, false>(v.raw_json_token().data(), unused_,
                                                     f.other_rows, f.other_cols,
                                                     [](std::int64_t) { return true; })) {
      // Fields the reader does not use (tokens, experts_per_rank, ...) are syntax-checked: the
      // integer matrices by the scanner, anything else by a full On-Demand walk.
      if (auto e = check_value(v)) return json_fail(e);
    }
    if (!st) return st;
  }
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
  if (summary_.records_seen == 0) {
    seen_min_step_ = seen_max_step_ = f.step;
  } else {
    seen_min_step_ = std::min(seen_min_step_, f.step);
    seen_max_step_ = std::max(seen_max_step_, f.step);
  }
  ++summary_.records_seen;
  ++file_stats_;
  if (!options_.steps.contains(f.step)) return status::success();
  if (auto st = check_selected(f); !st) return st;
  deliver_ = true;
  return status::success();
}

// Checks that tie a selected record to the meta and to the records before it, then fills record_.
status stats_reader::check_selected(record_fields& f) {
  const int num_layers = static_cast<int>(f.load_rows);
  const int num_slots = static_cast<int>(f.load_cols);
  const int record_experts = static_cast<int>(f.p2l_max + 1);
  const bool same_file = first_where_.file == record_.where.file;
  auto appended_hint = [&]() {
    return same_file ? std::string(
                           " (a second run appended to the file with a different shape? "
                           "select one run with a step range)")
                     : std::string();
  };

  if (meta_ && meta_->num_layers != num_layers) {
    return fail(errc::shape_mismatch, "num_layers",
                cat("the record has ", num_layers, " layers but eplb_load_meta (line ",
                    meta_->where.line, ") says num_layers = ", meta_->num_layers));
  }
  if (have_shape_ && num_layers != num_layers_) {
    return fail(errc::shape_mismatch, "expert_load",
                cat("the record has ", num_layers, " layers but the first selected record (",
                    where_str(first_where_), ") has ", num_layers_, appended_hint()));
  }
  int expected = have_shape_ ? num_experts_ : record_experts;
  if (meta_ && !file_has_selected_) {
    // The meta gives E = P - R for the recording run; later records may have another P
    // (elastic EP) as long as E stays the same.
    const int meta_experts = num_slots - meta_->num_redundant_experts;
    const std::string origin =
        cat("num_slots ", num_slots, " - num_redundant_experts ", meta_->num_redundant_experts,
            " of eplb_load_meta at line ", meta_->where.line);
    if (meta_experts < 1) {
      return fail(errc::invalid_value, "num_redundant_experts",
                  cat("leaves no logical expert: ", origin));
    }
    if (record_experts > meta_experts) {
      const auto it =
          std::find_if(p2l_.begin(), p2l_.end(), [&](std::int32_t v) { return v >= meta_experts; });
      const std::size_t at = static_cast<std::size_t>(it - p2l_.begin());
      return fail(errc::out_of_range, "p2l_map",
                  cat("layer ", at / f.p2l_cols, ", slot ", at % f.p2l_cols, ": logical expert id ",
                      *it, " is not below E = ", meta_experts, " (", origin, ')'));
    }
    if (have_shape_ && meta_experts != num_experts_) {
      return fail(errc::shape_mismatch, "num_redundant_experts",
                  cat("eplb_load_meta implies ", meta_experts, " logical experts (", origin,
                      ") but the first selected record (", where_str(first_where_), ") has ",
                      num_experts_));
    }
    expected = meta_experts;
  } else if (have_shape_ && record_experts != num_experts_) {
    return fail(errc::shape_mismatch, "p2l_map",
                cat("the record maps ", record_experts,
                    " logical experts (largest id + 1) but the first selected record (",
                    where_str(first_where_), ") maps ", num_experts_, appended_hint()));
  }

  // Every logical expert needs a slot in every layer, or its load would silently vanish.
  if (seen_.size() < static_cast<std::size_t>(expected)) seen_.assign(expected, 0);
  for (int l = 0; l < num_layers; ++l) {
    if (++stamp_ == 0) {
      std::fill(seen_.begin(), seen_.end(), 0);
      stamp_ = 1;
    }
    const std::int32_t* row = p2l_.data() + static_cast<std::size_t>(l) * num_slots;
    int distinct = 0;
    for (int p = 0; p < num_slots; ++p) {
      std::uint32_t& mark = seen_[row[p]];
      if (mark != stamp_) {
        mark = stamp_;
        ++distinct;
      }
    }
    if (distinct != expected) {
      int missing = 0;
      while (seen_[missing] == stamp_) ++missing;
      return fail(errc::invalid_value, "p2l_map",
                  cat("layer ", l, ": logical expert ", missing,
                      " has no slot (expected experts 0..", expected - 1, ')'));
    }
  }

  if (!have_shape_) {
    have_shape_ = true;
    num_layers_ = num_layers;
    num_experts_ = expected;
    first_where_ = record_.where;
    summary_.first_step = summary_.last_step = f.step;
    summary_.num_ranks = f.has_num_ranks ? static_cast<int>(f.num_ranks) : 0;
  }
  file_has_selected_ = true;
  ++summary_.records_selected;
  summary_.first_step = std::min(summary_.first_step, f.step);
  summary_.last_step = std::max(summary_.last_step, f.step);
  summary_.num_layers = num_layers_;
  summary_.num_experts = num_experts_;
  summary_.num_slots = num_slots;

  record_.step = f.step;
  record_.num_layers = num_layers;
  record_.num_slots = num_slots;
  record_.num_experts = num_experts_;
  record_.num_ranks = f.has_num_ranks ? static_cast<int>(f.num_ranks) : 0;
  record_.expert_load = loads_.data();
  record_.p2l_map = p2l_.data();
  record_.meta = meta_ ? &*meta_ : nullptr;
  return status::success();
}

status stats_reader::finish() {
  if (summary_.records_selected > 0) return status::success();
  if (summary_.records_seen == 0) {
    // Unreachable through read(), which refuses a file without records; kept for safety.
    return make_error(errc::no_records, position{}, "", "no eplb_load_stats records found");
  }
  std::string range;
  if (options_.steps.first) range += std::to_string(*options_.steps.first);
  range += ':';
  if (options_.steps.last) range += std::to_string(*options_.steps.last);
  return make_error(
      errc::no_records, position{}, "",
      cat("the step range ", range, " selected none of the ", summary_.records_seen,
          " eplb_load_stats records (steps ", seen_min_step_, "..", seen_max_step_, ')'));
}

}  // namespace
}  // namespace detail

status read_vllm_stats(const std::vector<std::string>& files, const stats_read_options& options,
                       stats_sink& sink, stats_read_summary* summary) {
  stats_read_summary local;
  stats_read_summary& out = summary ? *summary : local;
  out = stats_read_summary{};
  if (files.empty()) {
    return make_error(errc::invalid_argument, position{}, "", "no stats files given");
  }
  // The same file twice would silently double its loads (overlapping globs, say).
  std::vector<std::string> sorted(files);
  std::sort(sorted.begin(), sorted.end());
  const auto dup = std::adjacent_find(sorted.begin(), sorted.end());
  if (dup != sorted.end()) {
    return make_error(errc::invalid_argument, position{*dup, 0, 0}, "",
                      "listed more than once (its loads would be counted twice)");
  }
  auto reader = std::make_unique<detail::stats_reader>(options, sink, out);
  if (auto st = reader->check_options(); !st) return st;
  for (const auto& path : files) {
    detail::file_source source;
    if (auto st = source.open(path); !st) return st;
    if (auto st = reader->read(path, source); !st) return st;
  }
  return reader->finish();
}

status read_vllm_stats_text(const std::string& text, const std::string& name,
                            const stats_read_options& options, stats_sink& sink,
                            stats_read_summary* summary) {
  stats_read_summary local;
  stats_read_summary& out = summary ? *summary : local;
  out = stats_read_summary{};
  auto reader = std::make_unique<detail::stats_reader>(options, sink, out);
  if (auto st = reader->check_options(); !st) return st;
  detail::memory_source source(text);
  if (auto st = reader->read(name, source); !st) return st;
  return reader->finish();
}

}  // namespace eplb
