#pragma once
// Expert-load recorder for C++ serving binaries: header-only, standard library only, C++17.
//
// The server calls record_step() once per forward step with the per-physical-slot routed counts
// of every MoE layer, and set_p2l_map() whenever its physical-to-logical map changes. The
// recorder writes vLLM's offline-EPLB stats JSONL (1b layout: one `eplb_load_meta` line, written
// only into an empty file, then `eplb_load_stats` lines), which eplb-gen reads like a vLLM file.
//
// record_step() never blocks and never allocates: records go through a bounded ring of
// preallocated slots to a background writer thread; when the ring is full the record is dropped
// and counted (dropped()). The file is flushed after every batch and closed by close() or the
// destructor. One producer thread may call record_step / set_p2l_map / flush_window; the
// counters may be read from any thread. No exceptions are thrown for I/O problems: ok() and
// last_error() report them.

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <functional>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace eplb {

/// Settings of a recorder: where to write, the model's shape, and how to sample.
struct recorder_options {
  std::string path;                // stats file, opened in append mode
  std::string model;               // written into every record (vLLM: HF id or path)
  int num_layers = 0;              // MoE layers L
  int num_slots = 0;               // physical slots P per layer (E + redundant)
  int num_ranks = 1;               // EP size; rank r owns slots [r*P/EP, (r+1)*P/EP)
  int num_groups = 1;              // expert groups of the model (DeepSeek-V3: 8)
  int num_nodes = 1;               // hosts of the EP group
  int num_redundant_experts = 0;   // R = P - E
  std::int64_t interval = 1;       // only steps with step % interval == 0 are recorded
  int window = 1;                  // recorded steps summed into one record (flushed early when
                                   // the map changes)
  std::size_t capacity = 64;       // ring slots (each holds L*P counts and L*P map entries)
  std::int64_t step_interval = 0;  // next_rearrange = step_interval - step when > 0, else 0
  /// Test hook: runs on the writer thread before each record is written (e.g. to slow it down).
  std::function<void()> before_write;
};

/// Writes per-step expert loads of a serving binary as vLLM offline-EPLB stats JSONL.
class recorder {
 public:
  /// Opens the file and starts the writer thread; on a bad option or an unopenable file the
  /// recorder stays inert and ok() is false with the reason in last_error().
  explicit recorder(recorder_options options) : opt_(std::move(options)) { start(); }

  /// Publishes the pending window, writes everything queued and closes the file.
  ~recorder() { close(); }

  recorder(const recorder&) = delete;
  recorder& operator=(const recorder&) = delete;

  /// Records one step's counts, row-major [L][P] and non-negative; never blocks. Steps outside
  /// the interval or with a zero total are skipped (like vLLM). Returns false when a record was
  /// dropped because the ring was full, or when the recorder has failed.
  bool record_step(std::int64_t step, const std::int64_t* physical_counts) noexcept {
    if (!running_ || failed_.load(std::memory_order_relaxed)) return false;
    if (step % opt_.interval != 0) return true;
    std::int64_t total = 0;
    for (std::size_t i = 0; i < cells_; ++i) total += physical_counts[i];
    if (total == 0) {
      skipped_zero_.fetch_add(1, std::memory_order_relaxed);
      return true;
    }
    for (std::size_t i = 0; i < cells_; ++i) acc_[i] += physical_counts[i];
    acc_last_step_ = step;
    if (++acc_steps_ < opt_.window) return true;
    return publish();
  }

  /// Sets the physical-to-logical map [L][P] in force from the next step on; a pending window
  /// recorded under the previous map is handed to the writer first. Never blocks.
  void set_p2l_map(const std::int32_t* p2l) noexcept {
    if (!running_) return;
    if (std::memcmp(p2l, p2l_.data(), cells_ * sizeof(std::int32_t)) == 0) return;
    if (acc_steps_ > 0) publish();
    std::memcpy(p2l_.data(), p2l, cells_ * sizeof(std::int32_t));
  }

  /// Hands a partly filled window to the writer now; returns false when it was dropped.
  bool flush_window() noexcept { return acc_steps_ == 0 || publish(); }

  /// Publishes the pending window (waiting for a free slot if need be), waits until everything
  /// is written, stops the writer and closes the file; returns ok(). Later calls do nothing.
  bool close() {
    if (running_) {
      if (acc_steps_ > 0) {
        while (!has_free_slot()) std::this_thread::sleep_for(std::chrono::microseconds(200));
        publish();
      }
      stop_.store(true, std::memory_order_release);
      cv_.notify_one();
      writer_.join();
      running_ = false;
    }
    if (file_ != nullptr) {
      if (std::fclose(file_) != 0) fail("cannot close " + opt_.path);
      file_ = nullptr;
    }
    return ok();
  }

  /// Returns false once anything failed (bad options, open or write error).
  bool ok() const noexcept { return !failed_.load(std::memory_order_acquire); }
  /// Returns the first error's message ("" when none).
  std::string last_error() const {
    std::lock_guard<std::mutex> lock(error_mu_);
    return error_;
  }
  /// Returns the records dropped because the ring was full.
  std::uint64_t dropped() const noexcept { return dropped_.load(std::memory_order_relaxed); }
  /// Returns the recorded steps inside the dropped records.
  std::uint64_t dropped_steps() const noexcept {
    return dropped_steps_.load(std::memory_order_relaxed);
  }
  /// Returns the records handed to the writer (each becomes one eplb_load_stats line).
  std::uint64_t recorded() const noexcept { return recorded_.load(std::memory_order_relaxed); }
  /// Returns the records the writer has written so far.
  std::uint64_t written() const noexcept { return written_.load(std::memory_order_acquire); }
  /// Returns the steps skipped because their total was zero.
  std::uint64_t skipped_zero() const noexcept {
    return skipped_zero_.load(std::memory_order_relaxed);
  }

 private:
  struct slot {
    std::int64_t step = 0;
    std::vector<std::int64_t> counts;
    std::vector<std::int32_t> p2l;
  };

  void fail(const std::string& message) {
    {
      std::lock_guard<std::mutex> lock(error_mu_);
      if (error_.empty()) error_ = message;
    }
    failed_.store(true, std::memory_order_release);
  }

  std::string check_options() const {
    const auto& o = opt_;
    if (o.path.empty()) return "recorder: path is empty";
    if (o.num_layers <= 0 || o.num_slots <= 0 || o.num_ranks <= 0) {
      return "recorder: num_layers, num_slots and num_ranks must be positive";
    }
    if (o.num_slots % o.num_ranks != 0) {
      return "recorder: num_slots=" + std::to_string(o.num_slots) +
             " must be divisible by num_ranks=" + std::to_string(o.num_ranks);
    }
    if (o.num_redundant_experts < 0 || o.num_redundant_experts >= o.num_slots) {
      return "recorder: num_redundant_experts must be in [0, num_slots)";
    }
    if (o.num_groups <= 0 || o.num_nodes <= 0) {
      return "recorder: num_groups and num_nodes must be positive";
    }
    if (o.interval <= 0 || o.window <= 0 || o.capacity == 0) {
      return "recorder: interval, window and capacity must be positive";
    }
    return "";
  }

  void start() {
    if (std::string bad = check_options(); !bad.empty()) {
      fail(bad);
      return;
    }
    cells_ = static_cast<std::size_t>(opt_.num_layers) * static_cast<std::size_t>(opt_.num_slots);
    k_ = opt_.num_slots / opt_.num_ranks;
    const int experts = opt_.num_slots - opt_.num_redundant_experts;
    p2l_.resize(cells_);
    for (std::size_t i = 0; i < cells_; ++i) {
      // vLLM's startup layout: slot p holds expert p % E.
      p2l_[i] = static_cast<std::int32_t>(
          static_cast<int>(i % static_cast<std::size_t>(opt_.num_slots)) % experts);
    }
    acc_.assign(cells_, 0);
    slots_.resize(opt_.capacity);
    for (auto& s : slots_) {
      s.counts.resize(cells_);
      s.p2l.resize(cells_);
    }
    file_ = std::fopen(opt_.path.c_str(), "ab");
    if (file_ == nullptr) {
      fail("recorder: cannot open " + opt_.path + ": " + std::strerror(errno));
      return;
    }
    // Like vLLM: the meta line goes only into an empty file; a rerun appends under it.
    if (std::fseek(file_, 0, SEEK_END) != 0) {
      fail("recorder: cannot seek " + opt_.path);
      return;
    }
    if (std::ftell(file_) == 0) {
      std::string line = "{\"record_type\": \"eplb_load_meta\", \"version\": 1, \"model\": ";
      append_string(line, opt_.model);
      append_field(line, "num_ranks", opt_.num_ranks);
      append_field(line, "num_groups", opt_.num_groups);
      append_field(line, "num_nodes", opt_.num_nodes);
      append_field(line, "num_layers", opt_.num_layers);
      append_field(line, "num_redundant_experts", opt_.num_redundant_experts);
      line += "}\n";
      if (std::fwrite(line.data(), 1, line.size(), file_) != line.size() ||
          std::fflush(file_) != 0) {
        fail("recorder: cannot write " + opt_.path);
        return;
      }
    }
    running_ = true;
    writer_ = std::thread([this] { run_writer(); });
  }

  bool has_free_slot() const noexcept {
    return head_.load(std::memory_order_relaxed) - tail_.load(std::memory_order_acquire) <
           slots_.size();
  }

  // Producer side: moves the window into a free slot, or drops it when the ring is full.
  bool publish() noexcept {
    const std::uint64_t h = head_.load(std::memory_order_relaxed);
    bool ok = true;
    if (h - tail_.load(std::memory_order_acquire) >= slots_.size()) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      dropped_steps_.fetch_add(static_cast<std::uint64_t>(acc_steps_), std::memory_order_relaxed);
      ok = false;
    } else {
      slot& s = slots_[static_cast<std::size_t>(h % slots_.size())];
      s.step = acc_last_step_;
      std::memcpy(s.counts.data(), acc_.data(), cells_ * sizeof(std::int64_t));
      std::memcpy(s.p2l.data(), p2l_.data(), cells_ * sizeof(std::int32_t));
      head_.store(h + 1, std::memory_order_release);
      recorded_.fetch_add(1, std::memory_order_relaxed);
      // notify without the mutex: the writer also wakes on a short timeout, so a lost wake-up
      // only delays the write and the producer never waits for a lock.
      cv_.notify_one();
    }
    std::fill(acc_.begin(), acc_.end(), 0);
    acc_steps_ = 0;
    return ok;
  }

  void run_writer() {
    std::string line;
    for (;;) {
      std::uint64_t t = tail_.load(std::memory_order_relaxed);
      const std::uint64_t h = head_.load(std::memory_order_acquire);
      if (t == h) {
        if (stop_.load(std::memory_order_acquire) && head_.load(std::memory_order_acquire) == t) {
          break;
        }
        std::unique_lock<std::mutex> lock(wake_mu_);
        cv_.wait_for(lock, std::chrono::milliseconds(20), [&] {
          return stop_.load(std::memory_order_acquire) ||
                 head_.load(std::memory_order_acquire) != tail_.load(std::memory_order_relaxed);
        });
        continue;
      }
      for (; t != h; ++t) {
        if (opt_.before_write) opt_.before_write();
        format_record(slots_[static_cast<std::size_t>(t % slots_.size())], line);
        // After a failure the writer keeps draining (and discarding) so the producer never
        // finds the ring full because of it.
        if (ok() && std::fwrite(line.data(), 1, line.size(), file_) != line.size()) {
          fail("recorder: cannot write " + opt_.path + ": " + std::strerror(errno));
        }
        tail_.store(t + 1, std::memory_order_release);
        written_.fetch_add(1, std::memory_order_release);
      }
      if (ok() && std::fflush(file_) != 0) fail("recorder: cannot flush " + opt_.path);
    }
    if (ok() && std::fflush(file_) != 0) fail("recorder: cannot flush " + opt_.path);
  }

  static void append_int(std::string& out, std::int64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
  }

  static void append_field(std::string& out, const char* key, std::int64_t v) {
    out += ", \"";
    out += key;
    out += "\": ";
    append_int(out, v);
  }

  static void append_string(std::string& out, const std::string& s) {
    static const char hex[] = "0123456789abcdef";
    out += '"';
    for (const char ch : s) {
      const auto c = static_cast<unsigned char>(ch);
      if (c == '"' || c == '\\') {
        out += '\\';
        out += ch;
      } else if (c < 0x20) {
        out += "\\u00";
        out += hex[c >> 4];
        out += hex[c & 15];
      } else {
        out += ch;
      }
    }
    out += '"';
  }

  template <class T>
  void append_matrix(std::string& out, const T* data) const {
    out += '[';
    for (int l = 0; l < opt_.num_layers; ++l) {
      out += l > 0 ? ", [" : "[";
      const T* row = data + static_cast<std::size_t>(l) * static_cast<std::size_t>(opt_.num_slots);
      for (int p = 0; p < opt_.num_slots; ++p) {
        if (p > 0) out += ", ";
        append_int(out, static_cast<std::int64_t>(row[p]));
      }
      out += ']';
    }
    out += ']';
  }

  // The vLLM 1b `eplb_load_stats` line, fields in the order of the spec's table.
  void format_record(const slot& s, std::string& line) const {
    line.clear();
    line += "{\"record_type\": \"eplb_load_stats\", \"version\": 1, \"model\": ";
    append_string(line, opt_.model);
    append_field(line, "step", s.step);
    append_field(line, "next_rearrange", opt_.step_interval > 0 ? opt_.step_interval - s.step : 0);
    append_field(line, "num_ranks", opt_.num_ranks);
    append_field(line, "num_layers", opt_.num_layers);
    // Layer 0 only: the logical ids in the first and last slot of each rank.
    line += ", \"experts_per_rank\": [";
    for (int r = 0; r < opt_.num_ranks; ++r) {
      line += r > 0 ? ", [" : "[";
      append_int(line, s.p2l[static_cast<std::size_t>(r * k_)]);
      line += ", ";
      append_int(line, s.p2l[static_cast<std::size_t>((r + 1) * k_ - 1)]);
      line += ']';
    }
    line += "], \"tokens\": [";
    for (int l = 0; l < opt_.num_layers; ++l) {
      line += l > 0 ? ", [" : "[";
      const std::int64_t* row =
          s.counts.data() + static_cast<std::size_t>(l) * static_cast<std::size_t>(opt_.num_slots);
      for (int r = 0; r < opt_.num_ranks; ++r) {
        std::int64_t sum = 0;
        for (int p = r * k_; p < (r + 1) * k_; ++p) sum += row[p];
        if (r > 0) line += ", ";
        append_int(line, sum);
      }
      line += ']';
    }
    line += "], \"expert_load\": ";
    append_matrix(line, s.counts.data());
    line += ", \"p2l_map\": ";
    append_matrix(line, s.p2l.data());
    line += "}\n";
  }

  recorder_options opt_;
  std::size_t cells_ = 0;  // L * P
  int k_ = 0;              // slots per rank
  std::FILE* file_ = nullptr;
  bool running_ = false;  // writer thread started and not yet joined

  // Producer-only state.
  std::vector<std::int32_t> p2l_;
  std::vector<std::int64_t> acc_;
  int acc_steps_ = 0;
  std::int64_t acc_last_step_ = 0;

  // The ring: the producer advances head_, the writer advances tail_.
  std::vector<slot> slots_;
  std::atomic<std::uint64_t> head_{0};
  std::atomic<std::uint64_t> tail_{0};
  std::atomic<bool> stop_{false};
  std::mutex wake_mu_;
  std::condition_variable cv_;
  std::thread writer_;

  std::atomic<std::uint64_t> dropped_{0};
  std::atomic<std::uint64_t> dropped_steps_{0};
  std::atomic<std::uint64_t> recorded_{0};
  std::atomic<std::uint64_t> written_{0};
  std::atomic<std::uint64_t> skipped_zero_{0};
  std::atomic<bool> failed_{false};
  mutable std::mutex error_mu_;
  std::string error_;
};

}  // namespace eplb
