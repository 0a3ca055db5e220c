#pragma once
// Private: the parse stage of the vLLM stats reader. A chunk_parser turns the complete lines of
// one region of a file into a list of entries (a parsed record, or the error that stops the read
// at that line) without looking at any other region, so that regions can be parsed by several
// threads at once. Everything that depends on earlier records (the meta, the shape fixed by the
// first selected record, the step range bookkeeping) is left to the apply stage in
// vllm_reader.cpp, which walks the entries in file order; the first error is therefore the same
// whatever the number of threads and wherever the region boundaries fall.
//
// Each line goes through a strict hand-written scanner first (the fast path: an eplb_load_stats
// object made of plain strings, integers and rectangular integer matrices). Any line the scanner
// does not accept, including every invalid one, is validated and parsed by simdjson On-Demand
// (the slow path), which produces all the error messages. A p2l_map whose text equals the
// previous record's is not parsed again.

#include <simdjson.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "eplb/error.hpp"
#include "eplb/stats.hpp"
#include "stats/raw_buffer.hpp"

namespace eplb::detail {

// The fields of a record that the reader uses.
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

// partial_tail: the file's last line, without its newline and not a complete record, which
// stats_read_options::allow_partial_tail ignores.
enum class entry_kind : std::uint8_t { stats, meta, other, error, partial_tail };

// One non-blank line of a region, as the parse stage left it.
struct parsed_entry {
  entry_kind kind = entry_kind::error;
  std::uint64_t line = 0;    // 1-based line number in the region (the apply stage adds the base)
  std::uint64_t byte = 0;    // file offset of the line's first byte
  record_fields f;           // stats: the checked fields
  std::size_t loads_at = 0;  // stats: offset of expert_load in parsed_chunk::loads
  std::size_t p2l_at = 0;    // stats: offset of p2l_map in parsed_chunk::p2l
  std::uint64_t p2l_id = 0;  // stats: equal ids mean equal p2l_map values
  std::uint32_t meta = 0;    // meta: index in parsed_chunk::metas
  std::int32_t error = -1;   // error, or a meta's field error: index in parsed_chunk::errors
  // error: the error to report instead when only whitespace follows this line to the end of the
  // file, which the parse stage cannot see (a record cut short); index in parsed_chunk::errors.
  std::int32_t if_last = -1;
  std::uint64_t tail_bytes = 0;  // partial_tail: the bytes of the line, ignored
};

// What the parse stage produced for one region; cleared without freeing between regions.
struct parsed_chunk {
  std::vector<parsed_entry> entries;
  raw_buffer<std::int64_t> loads;
  raw_buffer<std::int32_t> p2l;
  std::vector<stats_meta> metas;
  std::vector<error> errors;  // messages without "file:line: ", which the apply stage adds
  std::uint64_t lines = 0;    // '\n' bytes in the region (as far as it was parsed)
  std::uint64_t p2l_gen = 0;  // the parser's p2l generation copied last into `p2l`, 0 = none
  std::size_t p2l_last_at = 0;
  std::size_t loads_used = 0;
  std::size_t p2l_used = 0;
  std::size_t metas_used = 0;

  void clear() {
    entries.clear();
    errors.clear();
    lines = 0;
    p2l_gen = 0;
    p2l_last_at = 0;
    loads_used = 0;
    p2l_used = 0;
    metas_used = 0;
  }
};

// A region: complete lines of one file, starting at a line boundary. Lines are numbered from 1
// within the region: the parse stage does not need to know how many lines came before.
struct region_text {
  const char* data = nullptr;  // followed by at least 16 readable bytes, see chunk_parser::parse
  std::size_t len = 0;
  std::uint64_t file_offset = 0;  // offset of data[0] in the file
  bool final = false;             // the last region of the file
};

class chunk_parser {
 public:
  // `id` tells this parser's p2l generations apart from other parsers' (one per thread).
  chunk_parser(const stats_read_options& options, std::uint32_t id);

  // Parses the region's lines into `out` (cleared first), stopping after the first error entry.
  // Every line must end in '\n' or, for the last line of the file, be followed by a '\0'; at
  // least 16 bytes past the region (plus simdjson's padding) must be readable.
  void parse(const region_text& region, parsed_chunk& out);

 private:
  struct line_info {
    std::uint64_t number;
    std::size_t start;    // offset of the line's first byte in the region
    std::size_t content;  // offset of its first non-whitespace byte
    std::size_t end;      // offset of its '\n', or of the region's end
  };

  // Returns false when the line is not an eplb_load_stats record of the simple shape.
  bool fast_line(const char* p, const char* end);
  void slow_line(const line_info& line);
  // Finishes a stats record whose fields are in fields_ and loads in out_->loads.
  void finish_stats();
  // Returns an entry of the kind at the current line.
  parsed_entry new_entry(entry_kind kind) const;
  void add_error(error e);
  error fail(errc code, const std::string& field, const std::string& what) const;
  error json_fail(simdjson::error_code e) const;
  error line_too_long(std::size_t bytes) const;
  // Validates the line on its own; returns its JSON error, if any. When the line would read as
  // a truncated record were it the file's last, and the parse stage cannot tell, sets *if_last
  // to that error. Sets *partial_tail when the line is the file's last, has no newline and
  // starts a record that it does not complete (a file still being written).
  std::optional<error> line_json_error(const line_info& line, std::optional<error>* if_last,
                                       bool* partial_tail) const;

  // The On-Demand path.
  status process_document(simdjson::ondemand::document_reference& doc);
  status process_meta(simdjson::ondemand::object& object);
  status process_stats(simdjson::ondemand::object& object);
  status process_other(simdjson::ondemand::object& object);
  // integral_floats: also accept numbers written as floats with an integral value (6848.0), as
  // vLLM's own tool does for loads (it reads them as float32).
  template <class T, class Check>
  status parse_matrix(simdjson::ondemand::value value, const char* field, raw_buffer<T>& out,
                      std::size_t at, std::size_t& rows, std::size_t& cols, Check check,
                      bool integral_floats = false);
  status read_int(simdjson::ondemand::value value, const char* field, std::int64_t& out);
  status read_string(simdjson::ondemand::value value, const char* field, std::string_view& out);
  status check_fields();
  // Fails when a key the reader uses appears a second time in the record.
  status check_duplicate(std::string_view key, unsigned& seen) const;
  // Calls fn(key, value) on each field of `object` after the duplicate-key check; returns the
  // first error, of the walk or of fn.
  template <class Fn>
  status for_each_field(simdjson::ondemand::object& object, Fn&& fn);
  void new_p2l_generation();

  const stats_read_options& options_;
  std::uint32_t id_;
  const region_text* region_ = nullptr;
  parsed_chunk* out_ = nullptr;
  std::vector<line_info> lines_;
  std::uint64_t line_ = 0, byte_ = 0;  // the current line: number in the region, file offset
  record_fields fields_;
  entry_kind kind_ = entry_kind::other;
  stats_meta meta_scratch_;
  error meta_field_error_;  // a meta record's field error, reported after its sequence checks
  bool has_meta_field_error_ = false;
  raw_buffer<std::int64_t> unused_;

  // The p2l_map of the last record this parser saw, with its text for the comparison.
  raw_buffer<std::int32_t> p2l_values_;
  std::string p2l_text_;  // empty: nothing cached
  std::size_t p2l_rows_ = 0, p2l_cols_ = 0;
  std::int64_t p2l_max_ = -1;
  std::uint64_t p2l_gen_ = 0;

  std::unique_ptr<simdjson::ondemand::parser> parser_;
};

}  // namespace eplb::detail
