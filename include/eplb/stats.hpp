#pragma once
// Stats input: streams the per-step expert-load records a server wrote (vLLM offline EPLB JSONL)
// and hands each one to a sink, in constant memory whatever the file size.

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "eplb/error.hpp"
#include "eplb/limits.hpp"

namespace eplb {

/// The `eplb_load_meta` record of a vLLM stats file (1b/1c layout); absent in the 1a layout.
struct stats_meta {
  std::string model;
  int version = 1;
  int num_ranks = 0;
  int num_groups = 1;
  int num_nodes = 1;
  int num_layers = 0;
  int num_redundant_experts = 0;
  position where;  // file and line of the record
};

/// An inclusive range of `step` values; an empty side means unbounded.
struct step_range {
  std::optional<std::int64_t> first;
  std::optional<std::int64_t> last;
  /// Returns true when the step lies inside the range.
  bool contains(std::int64_t step) const noexcept {
    return (!first || step >= *first) && (!last || step <= *last);
  }
};

/// Parses "A:B", "A:", ":B" (inclusive) or "N" (one step); returns invalid_argument naming the
/// flag when the text is not of that form or A > B.
result<step_range> parse_step_range(const std::string& text, const std::string& flag);

/// One `eplb_load_stats` record as the reader hands it out; the pointers are valid only during
/// the sink call.
struct stats_record {
  std::int64_t step = 0;
  int num_layers = 0;
  int num_slots = 0;                          // physical slots P of this record
  const std::int64_t* expert_load = nullptr;  // row-major [num_layers][num_slots], >= 0
  const std::int32_t* p2l_map = nullptr;      // row-major [num_layers][num_slots], in [0, E)
  int num_experts = 0;                        // logical experts E implied by the file
  int num_ranks = 0;                          // the record's `num_ranks`, 0 when it has none (1c)
  const stats_meta* meta = nullptr;           // the meta record this record belongs to, if any
  position where;                             // file, line and byte of the record
};

/// What a read is about to process, handed to the sink before the first record.
struct stats_input {
  std::uint64_t bytes = 0;  // total size of the files on disk (compressed size if compressed)
  int threads = 1;          // threads the reader uses (the calling thread included)
};

/// Receives the records of a stats stream in file order, always on the thread that called the
/// reader, whatever the number of parser threads.
class stats_sink {
 public:
  virtual ~stats_sink() = default;
  /// Called once before any record; a failure stops the read. The default does nothing.
  virtual status on_begin(const stats_input& /*input*/) { return status::success(); }
  /// Called once per selected record; a failure stops the read and is returned by the reader.
  virtual status on_record(const stats_record& record) = 0;
};

/// How far a read has got, for a progress display.
struct stats_read_progress {
  std::uint64_t bytes_done = 0;   // input bytes consumed (compressed bytes of compressed files)
  std::uint64_t bytes_total = 0;  // total size of the files, 0 when unknown (a pipe)
  std::uint64_t text_bytes = 0;   // JSONL bytes read (after decompression)
  std::uint64_t records = 0;      // eplb_load_stats records checked so far
  double seconds = 0;             // since the read started
  bool done = false;              // the last call of a read (success or failure)
};

/// An input the caller opened already because it can be read only once (a FIFO, a pipe, standard
/// input): the reader takes `prefix`, the bytes already read from it (format detection), then
/// reads `fd` to its end. The caller keeps and closes the descriptor.
struct opened_input {
  std::string name;  // the path as given: the reader uses this entry for that file name
  int fd = -1;
  std::string prefix;
};

/// Options of the stats reader.
struct stats_read_options {
  // Records outside are skipped after the checks of the record itself (syntax, types, its own
  // shapes); the checks against other records and the meta apply to selected records only.
  step_range steps;
  // The longest line accepted (also simdjson's batch); longer lines are limit_exceeded.
  std::size_t batch_bytes = limits::default_max_line_bytes;
  // Bytes asked of the file per read. The buffer holds up to max(this, batch_bytes + 2) bytes (a
  // partial line is carried over), so memory is constant whatever the file size. 1 MiB reads
  // keep each byte in cache from the copy through the newline scan, stage 1 and the integer
  // parse: on number-heavy JSONL this measured ~1.5x faster than 32 MiB reads. Tests use tiny
  // values to force records across read chunks.
  std::size_t read_chunk_bytes = std::size_t{1} << 20;
  // Threads: 1 does everything on the calling thread; N > 1 starts N - 1 threads that parse
  // regions of the input while the calling thread reads (and decompresses) the files, checks
  // the records in file order, calls the sink, and parses too when it has nothing else to do;
  // 0 uses one per hardware thread. Results, summaries and the first error are the same for
  // every value. Inputs of at most 4 read chunks are read on the calling thread alone.
  int threads = 0;
  // Called on the calling thread at most about ten times a second, and once more with
  // `done` set when the read ends; may be empty. The library itself never prints.
  std::function<void(const stats_read_progress&)> progress;
  // For tests: false sends every line through simdjson instead of the strict fast scanner.
  bool fast_path = true;
  // A file still being written (a live stats file): its last line, when it has no newline and
  // is not a complete record, is ignored with a warning in stats_read_summary::warnings instead
  // of failing the read; a compressed stream that ends early ends the text there. Anything
  // malformed before the last line is still an error.
  bool allow_partial_tail = false;
  // Inputs already open (see opened_input), by file name; other files are opened by name.
  std::vector<opened_input> opened;
};

/// What a read saw, for the run summary.
struct stats_read_summary {
  std::vector<std::string> files;
  std::optional<stats_meta> meta;           // meta of the first file that had one
  std::uint64_t records_seen = 0;           // eplb_load_stats records in the files
  std::uint64_t records_selected = 0;       // of those, inside the step range
  std::uint64_t records_skipped_other = 0;  // records of types the reader does not use
  std::int64_t first_step = 0;              // smallest selected step
  std::int64_t last_step = 0;               // largest selected step
  int num_layers = 0;
  int num_experts = 0;
  int num_slots = 0;        // P of the last selected record
  int num_ranks = 0;        // num_ranks of the first selected record, 0 when it has none
  std::uint64_t bytes = 0;  // JSONL bytes read from all files (after decompression)
  // Bytes of incomplete last lines ignored under allow_partial_tail (after decompression).
  std::uint64_t partial_tail_bytes = 0;
  // What the caller should tell the user ("file:line: ..."), in file order; the library never
  // prints.
  std::vector<std::string> warnings;
  // Differences between the files' meta records that do not change the plan (the recording
  // servers' num_ranks and num_redundant_experts), one sentence each, for the user.
  std::vector<std::string> notes;
};

/// Expands shell-style globs ("stats/*.jsonl") in the given paths; a path without wildcards is
/// kept as is; a glob that matches nothing is an io_error naming it.
result<std::vector<std::string>> expand_stats_paths(const std::vector<std::string>& patterns);

/// Streams vLLM offline-EPLB stats files (plain, gzip or zstd, told apart by their first bytes)
/// into the sink in file order; returns the first error, naming file, line and field.
// Layouts 1a, 1b and 1c; each file may have its own meta. Checked: the JSON syntax of every line
// (a cut last line reads "truncated record"), field types, shapes (expert_load and p2l_map both
// [L][P]; L and E equal in every selected record and file, P may vary), p2l_map ids in [0, E)
// covering every expert in every layer, loads >= 0, the meta first and at most once per file,
// at least one eplb_load_stats record per file. E is P - R of the meta for a file's first
// selected record, else max(p2l_map) + 1 of the first selected record. Other record types are
// syntax-checked and skipped. A path given twice is invalid_argument. On error the sink may
// already have received the records before it; `summary` (may be null) is filled as far as the
// read got.
status read_vllm_stats(const std::vector<std::string>& files, const stats_read_options& options,
                       stats_sink& sink, stats_read_summary* summary);

/// Same as read_vllm_stats on an in-memory text (`name` stands for the file in messages).
status read_vllm_stats_text(const std::string& text, const std::string& name,
                            const stats_read_options& options, stats_sink& sink,
                            stats_read_summary* summary);

}  // namespace eplb
