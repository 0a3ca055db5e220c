// vLLM offline-EPLB stats JSONL reader (layouts 1a, 1b and 1c, see
// shared/formats/vllm-offline-eplb.md §1-2).
//
// Three stages, in constant memory whatever the file size:
//  - read: the calling thread reads each file (decompressing gzip or zstd) in chunks into a
//    "work item"; the complete lines of the item form a region and the partial last line is
//    carried over to the next item;
//  - parse (vllm_parse.cpp): each region is turned into a list of entries (records or the error
//    at a line, lines numbered within the region) without looking at any other region, on the
//    calling thread or on parser threads;
//  - apply (here): the calling thread walks the entries in file order, numbers the lines, runs
//    the checks that tie a record to the meta and to the records before it, and calls the sink.
// With N threads, up to N + 1 items (each a read chunk and its parsed records) are in flight.
// Errors are reported by the apply stage in file order, so the first error, the records the sink
// saw and the summary are the same for any number of threads and any chunk size.

#include <simdjson.h>
#include <sys/stat.h>

#include <algorithm>
#include <chrono>
#include <climits>
#include <condition_variable>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <optional>
#include <string>
#include <system_error>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "eplb/files.hpp"
#include "eplb/limits.hpp"
#include "eplb/stats.hpp"
#include "stats/byte_source.hpp"
#include "stats/json_check.hpp"
#include "stats/text.hpp"
#include "stats/vllm_parse.hpp"

namespace eplb {
namespace detail {
namespace {

// Upper bound of batch_bytes, well inside simdjson's 4 GiB limit.
constexpr std::size_t max_batch_bytes = limits::max_line_bytes;
// Readable bytes kept after the data of an item: zeroed sentinel bytes for the scanners, then
// simdjson's padding.
constexpr std::size_t tail_bytes = 16 + simdjson::SIMDJSON_PADDING;

std::string where_str(const position& p) { return cat(p.file, ':', p.line); }

// Item buffers come from malloc so that growing one for a long line is a realloc, which moves the
// pages of a large block (mremap) instead of copying them: the old and the new buffer are never
// held at once, and a line of the limit takes the limit, not 1.5 or 2 times it.
struct free_deleter {
  void operator()(char* p) const noexcept { std::free(p); }
};

// One unit of work from the read stage to the apply stage.
struct work_item {
  enum class type { region, file_begin, file_end, failure };
  type kind = type::region;
  std::unique_ptr<char, free_deleter> buf;  // region text, the carried partial line, tail_bytes
  std::size_t cap = 0;          // bytes of text the buffer holds
  region_text region;
  std::uint64_t bytes_read = 0;  // bytes read from the file into this item
  parsed_chunk parsed;
  std::size_t file = 0;  // file_begin, file_end: index of the input
  error failure;
  bool failure_at_next_line = false;  // the failure's message still needs "file:line: "
  bool truncated = false;             // file_end: the compressed stream ended early (allowed)
  bool parsed_ready = false;          // guarded by the pipeline's mutex when threads run
};

// One input: a file path, or an in-memory text standing for a file.
struct input {
  std::string name;
  const std::string* text = nullptr;
};

// The read stage: turns the inputs into a sequence of work items.
class producer {
 public:
  producer(const stats_read_options& options, const std::vector<input>& inputs)
      : options_(options), inputs_(inputs) {}

  bool done() const noexcept { return done_; }
  // Bytes taken from the inputs so far (compressed bytes for compressed files).
  std::uint64_t consumed() const noexcept {
    return consumed_before_ + (source_ ? source_->consumed() : 0);
  }
  std::uint64_t text_bytes() const noexcept { return text_bytes_; }

  // Fills the next item; the last one sets done().
  void produce(work_item& item) {
    switch (phase_) {
      case phase::open:
        open(item);
        return;
      case phase::read:
        fill(item);
        return;
      case phase::end:
        item.kind = work_item::type::file_end;
        item.file = file_;
        item.truncated = source_ && source_->truncated();
        consumed_before_ += source_ ? source_->consumed() : 0;
        source_.reset();
        ++file_;
        phase_ = phase::open;
        done_ = file_ == inputs_.size();
        return;
    }
  }

 private:
  enum class phase { open, read, end };

  void fail(work_item& item, error e, bool at_next_line = false) {
    item.kind = work_item::type::failure;
    item.failure = std::move(e);
    item.failure_at_next_line = at_next_line;
    done_ = true;
  }

  void open(work_item& item) {
    const input& in = inputs_[file_];
    std::unique_ptr<byte_source> raw;
    if (in.text != nullptr) {
      raw = std::make_unique<memory_source>(*in.text);
    } else if (const opened_input* o = opened(in.name)) {
      // Read once already (format detection): its first bytes, then the rest of the descriptor.
      auto file = std::make_unique<file_source>();
      file->adopt(o->fd, in.name);
      raw = std::make_unique<prefixed_source>(std::move(file), o->prefix);
    } else {
      auto file = std::make_unique<file_source>();
      if (auto st = file->open(in.name); !st) return fail(item, st.err());
      raw = std::move(file);
    }
    size_hint_ = raw->size_hint();
    auto source = open_text_source(std::move(raw), in.name, options_.allow_partial_tail);
    if (!source) return fail(item, source.err());
    source_ = std::move(*source);
    carry_len_ = 0;
    file_offset_ = 0;
    item.kind = work_item::type::file_begin;
    item.file = file_;
    phase_ = phase::read;
  }

  const opened_input* opened(const std::string& name) const {
    for (const opened_input& o : options_.opened) {
      if (o.name == name) return &o;
    }
    return nullptr;
  }

  // The line that starts after the regions so far; the apply stage knows its number.
  error line_too_long() const {
    return make_error(errc::limit_exceeded, position{}, "",
                      cat("line is longer than the limit of ", options_.batch_bytes,
                          " bytes (docs/limits.md; raise it with --max-line-bytes)"));
  }

  // Makes room for `need` bytes of text in the item (keeping its first `keep` bytes); grows by
  // half at least, so that carried lines of varying length do not reallocate every time.
  static void reserve(work_item& item, std::size_t need, std::size_t keep, std::size_t max_cap) {
    if (item.cap >= need) return;
    need = std::max(need, std::min(max_cap, item.cap + item.cap / 2));
    char* old = keep > 0 ? item.buf.release() : nullptr;
    item.buf.reset();  // nothing to keep: free before allocating
    char* bigger = static_cast<char*>(std::realloc(old, need + tail_bytes));
    if (bigger == nullptr) {
      std::free(old);
      throw std::bad_alloc();  // as new[] would
    }
    item.buf.reset(bigger);
    item.cap = need;
  }

  void fill(work_item& item) {
    const std::size_t batch = options_.batch_bytes;
    const std::size_t chunk = options_.read_chunk_bytes;
    // The buffer must hold one line of batch bytes with its CR LF.
    const std::size_t max_cap = std::max(chunk, batch + 2);
    item.kind = work_item::type::region;
    item.bytes_read = 0;
    // A small file gets a small buffer; otherwise twice the read size (the carried line plus one
    // read, so that carried lines rarely need a bigger buffer).
    std::size_t want = std::max(carry_len_ + chunk, 2 * chunk);
    if (size_hint_ > 0 && size_hint_ < want) {
      want = std::max<std::size_t>(static_cast<std::size_t>(size_hint_) + 1, 4096);
    }
    // Room for the carried line and at least one more byte, within the limit of one line.
    want = std::min(max_cap, std::max(want, carry_len_ + 1));
    // A buffer grown for a long line is given back once its region is done with.
    if (item.cap > std::max(want, 4 * chunk)) {
      item.buf.reset();
      item.cap = 0;
    }
    reserve(item, std::min(want, max_cap), 0, max_cap);
    char* buf = item.buf.get();
    // memcpy from a null carry is undefined even for zero bytes.
    if (carry_len_ > 0) std::memcpy(buf, carry_.get(), carry_len_);
    std::size_t len = carry_len_;
    bool eof = false;
    std::size_t region = 0;
    while (true) {
      if (len == item.cap) {
        // A full buffer without a newline: grow it up to the size one line may have.
        if (item.cap >= max_cap) return fail(item, line_too_long(), true);
        reserve(item, std::min(max_cap, item.cap * 2), len, max_cap);
        buf = item.buf.get();
      }
      const std::size_t ask = std::min(chunk, item.cap - len);
      auto got = source_->read(buf + len, ask);
      if (!got) return fail(item, got.err());
      eof = *got < ask;  // sources fill every request until the input ends
      const std::size_t old_len = len;
      len += *got;
      item.bytes_read += *got;
      text_bytes_ += *got;
      if (eof) {
        region = len;
        break;
      }
      const void* nl = ::memrchr(buf + old_len, '\n', len - old_len);
      if (nl != nullptr) {
        region = static_cast<std::size_t>(static_cast<const char*>(nl) - buf) + 1;
        break;
      }
      // Everything in the buffer is one unfinished line (its CR may already be there).
      if (len - (buf[len - 1] == '\r' ? 1 : 0) > batch) {
        return fail(item, line_too_long(), true);
      }
    }
    // The region is the last of the file when only whitespace follows it and the source is done.
    bool last_region = eof;
    if (!last_region && source_->at_end()) {
      last_region = std::all_of(buf + region, buf + len, is_json_space);
    }
    // Every line must end in '\n' or '\0' for the scanners, which also load up to 8 bytes past a
    // line's end: zero the bytes after the data (only the file's last line can lack its newline).
    std::memset(buf + len, 0, tail_bytes);  // all of it, so no scanner reads undefined bytes
    item.region = region_text{buf, region, file_offset_, last_region};
    // Carry the partial line over.
    carry_len_ = len - region;
    if (carry_cap_ < carry_len_) {
      carry_cap_ = std::max(carry_len_, 2 * carry_cap_);
      carry_.reset(new char[carry_cap_]);
    }
    if (carry_len_ > 0) std::memcpy(carry_.get(), buf + region, carry_len_);
    file_offset_ += region;
    if (eof) phase_ = phase::end;
  }

  const stats_read_options& options_;
  const std::vector<input>& inputs_;
  std::size_t file_ = 0;
  phase phase_ = phase::open;
  bool done_ = false;
  std::unique_ptr<byte_source> source_;
  std::uint64_t size_hint_ = 0;
  std::unique_ptr<char[]> carry_;
  std::size_t carry_cap_ = 0, carry_len_ = 0;
  std::uint64_t file_offset_ = 0;
  std::uint64_t consumed_before_ = 0, text_bytes_ = 0;
};

// The apply stage: the checks that need earlier records, in file order, then the sink.
class stats_reader {
 public:
  stats_reader(const stats_read_options& options, stats_sink& sink, stats_read_summary& summary)
      : options_(options), sink_(sink), summary_(summary) {}

  status apply(const work_item& item, const std::vector<input>& inputs) {
    if (pending_) return apply_pending(item);
    switch (item.kind) {
      case work_item::type::file_begin:
        begin_file(inputs[item.file].name);
        return status::success();
      case work_item::type::file_end:
        if (item.truncated) {
          summary_.warnings.push_back(
              cat(inputs[item.file].name,
                  ": the compressed stream ends early (is the file still being written?); read "
                  "the text before the cut"));
        }
        if (file_stats_ == 0) {
          return make_error(errc::no_records, position{inputs[item.file].name, 0, 0}, "",
                            "no eplb_load_stats records found");
        }
        return status::success();
      case work_item::type::failure:
        if (item.failure_at_next_line) return with_line(item.failure, line_base_ + 1);
        return item.failure;
      case work_item::type::region:
        break;
    }
    summary_.bytes += item.bytes_read;
    const parsed_chunk& chunk = item.parsed;
    for (const parsed_entry& e : chunk.entries) {
      record_.where.line = line_base_ + e.line;
      record_.where.byte = e.byte;
      status st;
      switch (e.kind) {
        case entry_kind::error:
          if (e.if_last >= 0) {
            // The message depends on whether anything but whitespace follows: decided by the
            // items after this one (the entry is the region's last).
            pending_ =
                with_line(chunk.errors[static_cast<std::size_t>(e.error)], record_.where.line);
            pending_if_last_ =
                with_line(chunk.errors[static_cast<std::size_t>(e.if_last)], record_.where.line);
            return status::success();
          }
          return with_line(chunk.errors[static_cast<std::size_t>(e.error)], record_.where.line);
        case entry_kind::meta:
          st = apply_meta(e, chunk);
          break;
        case entry_kind::other:
          ++summary_.records_skipped_other;
          break;
        case entry_kind::partial_tail:
          summary_.partial_tail_bytes += e.tail_bytes;
          summary_.warnings.push_back(cat(record_.where.file, ':', record_.where.line,
                                          ": ignored the incomplete last line (", e.tail_bytes,
                                          " bytes, no newline; is the file still being written?)"));
          break;
        case entry_kind::stats:
          st = apply_stats(e, chunk);
          break;
      }
      if (!st) return st;
    }
    line_base_ += chunk.lines;
    return status::success();
  }

  status finish() {
    if (pending_) return *pending_;  // unreachable: a file always ends with its file_end item
    if (summary_.records_selected > 0) return status::success();
    if (summary_.records_seen == 0) {
      // Unreachable: a file without records fails on its own; kept for safety.
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

 private:
  // An error waits for the rest of its file: a region with a non-blank line or a failure gives
  // the error as it is, the end of the file its "last line" form.
  status apply_pending(const work_item& item) {
    switch (item.kind) {
      case work_item::type::region:
        if (item.parsed.entries.empty()) return status::success();
        return *pending_;
      case work_item::type::file_end:
        return pending_if_last_;
      case work_item::type::file_begin:
      case work_item::type::failure:
        break;
    }
    return *pending_;
  }

  void begin_file(const std::string& name) {
    meta_.reset();
    file_stats_ = 0;
    file_has_selected_ = false;
    line_base_ = 0;
    record_.where = position{name, 0, 0};
    summary_.files.push_back(name);
  }

  error fail(errc code, const std::string& field, const std::string& what) const {
    return make_error(code, record_.where, field, what);
  }

  // A parse-stage error (its message has no position yet) at a line of the current file.
  error with_line(const error& e, std::uint64_t line) const {
    return error{e.code, cat(record_.where.file, ':', line, ": ", e.message)};
  }

  status apply_meta(const parsed_entry& e, const parsed_chunk& chunk) {
    if (meta_) {
      return fail(errc::bad_sequence, "",
                  cat("second eplb_load_meta record found (the first is at line ",
                      meta_->where.line, "); a file holds exactly one"));
    }
    if (file_stats_ > 0) {
      return fail(errc::bad_sequence, "",
                  "eplb_load_meta must precede all eplb_load_stats records");
    }
    if (e.error >= 0)
      return with_line(chunk.errors[static_cast<std::size_t>(e.error)], record_.where.line);
    meta_ = chunk.metas[e.meta];
    meta_->where = record_.where;
    if (!summary_.meta) {
      summary_.meta = meta_;
      return status::success();
    }
    return compare_metas(*summary_.meta, *meta_);
  }

  // Files planned together come from one model and cluster shape; the EP size and redundant
  // slots of the recording servers may differ (the plan sets its own) and are only reported.
  status compare_metas(const stats_meta& first, const stats_meta& m) {
    const std::string origin = cat(" but ", where_str(first.where), " says ");
    if (m.model != first.model) {
      return fail(errc::shape_mismatch, "model",
                  cat('"', printable(m.model), '"', origin, '"', printable(first.model),
                      "\"; stats of different models cannot be planned together"));
    }
    for (const auto& [name, a, b] : {std::tuple{"num_layers", m.num_layers, first.num_layers},
                                     std::tuple{"num_groups", m.num_groups, first.num_groups},
                                     std::tuple{"num_nodes", m.num_nodes, first.num_nodes}}) {
      if (a != b) {
        return fail(errc::shape_mismatch, name,
                    cat(a, origin, b,
                        "; files planned together must agree on everything but num_ranks and "
                        "num_redundant_experts"));
      }
    }
    for (const auto& [name, a, b] : {std::tuple{"num_ranks", m.num_ranks, first.num_ranks},
                                     std::tuple{"num_redundant_experts", m.num_redundant_experts,
                                                first.num_redundant_experts}}) {
      if (a != b) {
        summary_.notes.push_back(cat(where_str(m.where), ": ", name, " = ", a, origin, b,
                                     " (the recording servers differ; the plan uses ",
                                     where_str(first.where), "'s unless given as a flag)"));
      }
    }
    return status::success();
  }

  status apply_stats(const parsed_entry& e, const parsed_chunk& chunk) {
    const record_fields& f = e.f;
    if (summary_.records_seen == 0) {
      seen_min_step_ = seen_max_step_ = f.step;
    } else {
      seen_min_step_ = std::min(seen_min_step_, f.step);
      seen_max_step_ = std::max(seen_max_step_, f.step);
    }
    ++summary_.records_seen;
    ++file_stats_;
    if (!options_.steps.contains(f.step)) return status::success();
    const std::int32_t* p2l = chunk.p2l.data() + e.p2l_at;
    if (auto st = check_selected(f, p2l, e.p2l_id); !st) return st;
    record_.expert_load = chunk.loads.data() + e.loads_at;
    record_.p2l_map = p2l;
    return sink_.on_record(record_);
  }

  status check_selected(const record_fields& f, const std::int32_t* p2l, std::uint64_t p2l_id);

  const stats_read_options& options_;
  stats_sink& sink_;
  stats_read_summary& summary_;
  stats_record record_;

  // Per file.
  std::optional<stats_meta> meta_;
  std::uint64_t file_stats_ = 0;
  bool file_has_selected_ = false;
  int file_slots_ = 0, file_ranks_ = 0;  // P and num_ranks of the file's last selected record
  position file_slots_where_;
  std::uint64_t line_base_ = 0;   // lines of the file before the current region
  std::optional<error> pending_;  // see apply_pending
  error pending_if_last_;

  // Across files: the shape fixed by the first selected record.
  bool have_shape_ = false;
  int num_layers_ = 0;
  int num_experts_ = 0;
  position first_where_;
  std::int64_t seen_min_step_ = 0, seen_max_step_ = 0;

  // The coverage check of a map is done once for as long as records share it.
  std::vector<std::uint32_t> seen_;
  std::uint32_t stamp_ = 0;
  std::uint64_t covered_id_ = 0;
  int covered_experts_ = 0;
};

// Checks that tie a selected record to the meta and to the records before it, then fills record_.
status stats_reader::check_selected(const record_fields& f, const std::int32_t* p2l,
                                    std::uint64_t p2l_id) {
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
      const std::size_t n = f.p2l_rows * f.p2l_cols;
      const auto* it =
          std::find_if(p2l, p2l + n, [&](std::int32_t v) { return v >= meta_experts; });
      const std::size_t at = static_cast<std::size_t>(it - p2l);
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
  if (p2l_id != covered_id_ || expected != covered_experts_) {
    if (seen_.size() < static_cast<std::size_t>(expected)) seen_.assign(expected, 0);
    for (int l = 0; l < num_layers; ++l) {
      if (++stamp_ == 0) {
        std::fill(seen_.begin(), seen_.end(), 0);
        stamp_ = 1;
      }
      const std::int32_t* row = p2l + static_cast<std::size_t>(l) * num_slots;
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
    covered_id_ = p2l_id;
    covered_experts_ = expected;
  }

  // Within a file the slot count changes only with an elastic EP rescale, which records a new
  // num_ranks; otherwise the file holds a second run (other redundant slots) under the first's
  // meta, or none, and its topology would be wrong.
  const int record_ranks = f.has_num_ranks ? static_cast<int>(f.num_ranks) : 0;
  if (file_has_selected_ && num_slots != file_slots_ &&
      (record_ranks == 0 || record_ranks == file_ranks_)) {
    return fail(errc::shape_mismatch, "expert_load",
                cat("the record has ", num_slots, " slots per layer but the record before it (",
                    where_str(file_slots_where_), ") has ", file_slots_, ", with the same ",
                    expected, " logical experts and ",
                    record_ranks == 0 ? std::string("no num_ranks")
                                      : cat("the same num_ranks ", record_ranks),
                    " (a second run appended to the file? select one run with a step range; an "
                    "elastic EP rescale records its new num_ranks)"));
  }
  file_slots_ = num_slots;
  file_ranks_ = record_ranks;
  file_slots_where_ = record_.where;

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
  record_.meta = meta_ ? &*meta_ : nullptr;
  return status::success();
}

status check_options(const stats_read_options& options) {
  if (options.batch_bytes == 0 || options.batch_bytes > max_batch_bytes) {
    return make_error(
        errc::invalid_argument, position{}, "batch_bytes",
        cat("must be between 1 and ", max_batch_bytes, ", got ", options.batch_bytes));
  }
  if (options.read_chunk_bytes == 0) {
    return make_error(errc::invalid_argument, position{}, "read_chunk_bytes", "must be positive");
  }
  if (options.threads < 0) {
    return make_error(errc::invalid_argument, position{}, "threads",
                      cat("must be 0 (all cores) or positive, got ", options.threads));
  }
  return status::success();
}

// Calls the progress callback at most about ten times a second.
class progress_reporter {
 public:
  progress_reporter(const stats_read_options& options, std::uint64_t total)
      : callback_(options.progress), start_(clock::now()), last_(start_) {
    state_.bytes_total = total;
  }
  void tick(const producer& prod, const stats_read_summary& summary, bool done) {
    if (!callback_) return;
    const auto now = clock::now();
    if (!done && now - last_ < std::chrono::milliseconds(100)) return;
    last_ = now;
    state_.bytes_done = prod.consumed();
    state_.text_bytes = prod.text_bytes();
    state_.records = summary.records_seen;
    state_.seconds = std::chrono::duration<double>(now - start_).count();
    state_.done = done;
    callback_(state_);
  }

 private:
  using clock = std::chrono::steady_clock;
  const std::function<void(const stats_read_progress&)>& callback_;
  clock::time_point start_, last_;
  stats_read_progress state_;
};

// Runs the three stages over the inputs.
status run(const std::vector<input>& inputs, const stats_read_options& options, stats_sink& sink,
           stats_read_summary& summary) {
  if (auto st = check_options(options); !st) return st;
  std::uint64_t total = 0;
  bool sizes_known = true;
  for (const input& in : inputs) {
    if (in.text != nullptr) {
      total += in.text->size();
      continue;
    }
    struct stat st {};
    if (::stat(in.name.c_str(), &st) == 0 && S_ISREG(st.st_mode)) {
      total += static_cast<std::uint64_t>(st.st_size);
    } else {
      sizes_known = false;
    }
  }
  int threads = options.threads;
  if (threads == 0) threads = static_cast<int>(std::max(1U, std::thread::hardware_concurrency()));
  // Threads only pay off over a few regions.
  if (sizes_known && total <= 4 * static_cast<std::uint64_t>(options.read_chunk_bytes)) {
    threads = 1;
  }

  stats_reader reader(options, sink, summary);
  producer prod(options, inputs);
  progress_reporter progress(options, sizes_known ? total : 0);
  auto finish = [&](status st) {
    progress.tick(prod, summary, true);
    return st;
  };
  if (auto st = sink.on_begin(stats_input{total, threads}); !st) return finish(st);

  if (threads == 1) {
    work_item item;
    chunk_parser parser(options, 1);
    while (!prod.done()) {
      prod.produce(item);
      if (item.kind == work_item::type::region) parser.parse(item.region, item.parsed);
      if (auto st = reader.apply(item, inputs); !st) return finish(st);
      progress.tick(prod, summary, false);
    }
    return finish(reader.finish());
  }

  // Items are parsed in order by N - 1 parser threads and by the calling thread, which also
  // reads, applies, and parses only when it has nothing else to do (so N threads keep N cores
  // busy, and a parser thread the system holds back does not stall the others).
  const std::size_t slots = static_cast<std::size_t>(threads) + 1;
  std::vector<work_item> items(slots);
  std::mutex mutex;
  std::condition_variable work_cv, done_cv;
  std::size_t produced = 0, next_parse = 0, applied = 0;
  bool stop = false;
  // Parses the next item; called with the lock held, returns with it held.
  auto parse_next = [&](chunk_parser& parser, std::unique_lock<std::mutex>& lock) {
    work_item& item = items[next_parse++ % slots];
    lock.unlock();
    if (item.kind == work_item::type::region) parser.parse(item.region, item.parsed);
    lock.lock();
    item.parsed_ready = true;
  };
  auto worker = [&](std::uint32_t id) {
    chunk_parser parser(options, id);
    std::unique_lock<std::mutex> lock(mutex);
    while (true) {
      work_cv.wait(lock, [&] { return stop || next_parse < produced; });
      if (stop) return;
      parse_next(parser, lock);
      done_cv.notify_one();
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < threads; ++t) {
    try {
      pool.emplace_back(worker, static_cast<std::uint32_t>(t + 1));
    } catch (const std::system_error&) {
      break;  // fewer threads than asked: the calling thread parses too
    }
  }
  auto shut_down = [&](status st) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      stop = true;
    }
    work_cv.notify_all();
    for (auto& t : pool) t.join();
    return finish(std::move(st));
  };
  chunk_parser own_parser(options, 1);
  std::unique_lock<std::mutex> lock(mutex);
  while (true) {
    // Apply whatever is parsed, in order.
    while (applied < produced && items[applied % slots].parsed_ready) {
      work_item& item = items[applied % slots];
      lock.unlock();
      status st = reader.apply(item, inputs);
      lock.lock();
      item.parsed_ready = false;
      ++applied;
      if (!st) {
        lock.unlock();
        return shut_down(std::move(st));
      }
    }
    if (prod.done() && applied == produced) break;
    if (!prod.done() && produced - applied < slots) {
      work_item& item = items[produced % slots];
      lock.unlock();
      prod.produce(item);
      progress.tick(prod, summary, false);
      lock.lock();
      ++produced;
      work_cv.notify_one();
      continue;
    }
    if (next_parse < produced) {
      parse_next(own_parser, lock);
      continue;
    }
    done_cv.wait(lock, [&] { return items[applied % slots].parsed_ready; });
  }
  lock.unlock();
  return shut_down(reader.finish());
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
  // The same file twice would silently double its loads (overlapping globs, two spellings).
  if (status st = check_distinct_inputs(files, ""); !st.ok()) return st;
  std::vector<detail::input> inputs;
  inputs.reserve(files.size());
  for (const auto& path : files) inputs.push_back(detail::input{path, nullptr});
  return detail::run(inputs, options, sink, out);
}

status read_vllm_stats_text(const std::string& text, const std::string& name,
                            const stats_read_options& options, stats_sink& sink,
                            stats_read_summary* summary) {
  stats_read_summary local;
  stats_read_summary& out = summary ? *summary : local;
  out = stats_read_summary{};
  const std::vector<detail::input> inputs{detail::input{name, &text}};
  return detail::run(inputs, options, sink, out);
}

}  // namespace eplb
