// CUDA aggregation and replay, the host side. Records are copied into pinned staging buffers
// (two, so the copy to the device and the kernel of one batch overlap the parsing of the next)
// and folded on the device in 64-bit integers. While copying, the host checks what the CPU fold
// would report (ids outside [0, E), negative loads, a shape change) and keeps an upper bound on
// every sum; before anything could go wrong it downloads the sums and continues on the CPU with
// fold_record, so results and error messages are those of the CPU aggregator.

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "aggregate/detail.hpp"
#include "eplb/aggregate.hpp"
#include "stats/text.hpp"

#ifdef EPLB_HAVE_CUDA
#include "aggregate/cuda/kernels.hpp"
#endif

namespace eplb {

using detail::cat;

#ifdef EPLB_HAVE_CUDA

namespace {

constexpr std::uint64_t int64_max = static_cast<std::uint64_t>(INT64_MAX);

class cuda_aggregator final : public aggregator {
 public:
  explicit cuda_aggregator(const aggregator_options& options) : options_(options) {}
  cuda_aggregator(const cuda_aggregator&) = delete;
  cuda_aggregator& operator=(const cuda_aggregator&) = delete;
  ~cuda_aggregator() override { cuda_detail::fold_destroy(state_); }

  status on_record(const stats_record& record) override {
    if (!started_) {
      if (auto st = start(record); !st) return st;
    }
    if (!cpu_mode_ && !stage(record)) {
      // Something the CPU fold checks, or a record too large to batch: continue exactly there.
      if (auto st = switch_to_cpu(); !st) return st;
    }
    if (cpu_mode_) {
      if (auto st = fold_record(record, cpu_sums_); !st) return st;
    }
    ++records_;
    return status::success();
  }

  result<load_matrix> finish() override {
    if (records_ == 0) return detail::no_records_error();
    if (!cpu_mode_) {
      if (auto st = switch_to_cpu(); !st) return st.err();
    }
    load_matrix out = std::move(cpu_sums_);
    reset();
    return out;
  }

  const char* name() const noexcept override { return "cuda"; }
  std::string info() const override { return info_; }

 private:
  status start(const stats_record& record) {
    if (auto st = detail::check_first_record(record); !st) return st;
    started_ = true;
    layers_ = record.num_layers;
    experts_ = record.num_experts;
    cpu_sums_ = load_matrix::Zero(layers_, experts_);
    const std::size_t elements = static_cast<std::size_t>(layers_) * record.num_slots;
    // Room for at least four records of this size per batch.
    capacity_ = std::max(options_.cuda_batch_bytes / (sizeof(std::int64_t) + sizeof(std::int32_t)),
                         4 * elements);
    max_records_ = static_cast<int>(
        std::min<std::size_t>(65535, capacity_ / static_cast<std::size_t>(layers_) + 1));
    std::string message;
    state_ = cuda_detail::fold_create(layers_, experts_, capacity_, max_records_, message);
    if (state_ == nullptr) {
      // The device failed now rather than at creation: say so and use the CPU.
      cpu_mode_ = true;
      info_ = cat("CUDA failed (", message, "); aggregating on the CPU");
    }
    return status::success();
  }

  // Copies the record into the current staging buffer; false when the CPU must take it.
  bool stage(const stats_record& record) {
    if (record.num_layers != layers_ || record.num_experts != experts_) return false;
    const std::size_t n = static_cast<std::size_t>(layers_) * record.num_slots;
    if (n > capacity_) return false;
    if (used_ + n > capacity_ || batch_records_ == max_records_) {
      if (!submit()) return false;
    }
    const cuda_detail::staging buf = cuda_detail::fold_buffer(state_, current_);
    std::int64_t* loads = buf.loads + used_;
    std::int32_t* p2l = buf.p2l + used_;
    std::uint64_t bits = 0;
    std::uint32_t bad_ids = 0;
    const auto experts = static_cast<std::uint32_t>(experts_);
    for (std::size_t i = 0; i < n; ++i) {
      const std::int64_t v = record.expert_load[i];
      const std::int32_t e = record.p2l_map[i];
      loads[i] = v;
      p2l[i] = e;
      bits |= static_cast<std::uint64_t>(v);
      bad_ids |= static_cast<std::uint32_t>(static_cast<std::uint32_t>(e) >= experts);
    }
    if (bad_ids != 0 || bits > int64_max) return false;  // an id out of range, a negative load
    // Every load of the record is below 2^k = the next power of two above `bits`, so no sum can
    // grow by more than P * 2^k; past INT64_MAX, the exact per-value check of the CPU is needed.
    const int width = bits == 0 ? 0 : 64 - __builtin_clzll(bits);
    if (width >= 63) return false;
    std::uint64_t growth = 0;
    if (__builtin_mul_overflow(static_cast<std::uint64_t>(record.num_slots),
                               std::uint64_t{1} << width, &growth) ||
        __builtin_add_overflow(bound_, growth, &bound_) || bound_ > int64_max) {
      return false;
    }
    buf.record_offset[batch_records_] = static_cast<std::int64_t>(used_);
    buf.record_slots[batch_records_] = record.num_slots;
    ++batch_records_;
    used_ += n;
    return true;
  }

  // Launches the current buffer and makes the other one current (after its batch is done).
  bool submit() {
    if (batch_records_ == 0) return true;
    if (!cuda_detail::fold_launch(state_, current_, batch_records_, used_, error_)) return false;
    current_ = 1 - current_;
    used_ = 0;
    batch_records_ = 0;
    unsigned flags = 0;
    if (!cuda_detail::fold_wait(state_, current_, flags, error_)) return false;
    if (flags != 0) {
      error_ = cat("the device flagged values the host had checked (flags ", flags, ')');
      return false;
    }
    return true;
  }

  // Folds what is staged, downloads the sums and continues on the CPU.
  status switch_to_cpu() {
    if (cpu_mode_) return status::success();
    cpu_mode_ = true;
    unsigned flags[2] = {0, 0};
    std::vector<std::uint64_t> sums(static_cast<std::size_t>(layers_) * experts_);
    const bool ok = submit() && cuda_detail::fold_wait(state_, 0, flags[0], error_) &&
                    cuda_detail::fold_wait(state_, 1, flags[1], error_) &&
                    cuda_detail::fold_download(state_, sums.data(), error_);
    cuda_detail::fold_destroy(state_);
    state_ = nullptr;
    if (!ok || flags[0] != 0 || flags[1] != 0) {
      return make_error(
          errc::internal, position{}, "device",
          cat("CUDA aggregation failed: ",
              ok ? std::string("the device flagged values the host had checked") : error_));
    }
    // The bound kept every sum below 2^63.
    for (std::size_t i = 0; i < sums.size(); ++i) {
      cpu_sums_.data()[i] = static_cast<std::int64_t>(sums[i]);
    }
    return status::success();
  }

  void reset() {
    cuda_detail::fold_destroy(state_);
    state_ = nullptr;
    started_ = false;
    cpu_mode_ = false;
    records_ = 0;
    used_ = 0;
    batch_records_ = 0;
    current_ = 0;
    bound_ = 0;
    cpu_sums_ = load_matrix();
  }

  aggregator_options options_;
  cuda_detail::fold_state* state_ = nullptr;
  bool started_ = false;
  bool cpu_mode_ = false;
  int layers_ = 0, experts_ = 0;
  std::size_t capacity_ = 0;
  int max_records_ = 0;
  int current_ = 0;
  std::size_t used_ = 0;
  int batch_records_ = 0;
  std::uint64_t bound_ = 0;  // no sum exceeds it
  std::uint64_t records_ = 0;
  load_matrix cpu_sums_;
  std::string info_;
  std::string error_;
};

}  // namespace

bool cuda_available(std::string* why) {
  int count = 0;
  std::string message;
  if (cuda_detail::device_count(count, message)) return true;
  if (why != nullptr) *why = message;
  return false;
}

namespace detail {

std::unique_ptr<aggregator> make_cuda_aggregator(const aggregator_options& options,
                                                 std::string& why) {
  if (!cuda_available(&why)) return nullptr;
  return std::make_unique<cuda_aggregator>(options);
}

}  // namespace detail

#else  // !EPLB_HAVE_CUDA

namespace {
const char* const not_built = "built without CUDA (nvcc was not found, or EPLB_ENABLE_CUDA=OFF)";
}  // namespace

bool cuda_available(std::string* why) {
  if (why != nullptr) *why = not_built;
  return false;
}

namespace detail {

std::unique_ptr<aggregator> make_cuda_aggregator(const aggregator_options& /*options*/,
                                                 std::string& why) {
  why = not_built;
  return nullptr;
}

}  // namespace detail

#endif  // EPLB_HAVE_CUDA

status cuda_replay_max(const replay_shape& shape, const std::int64_t* loads,
                       const std::int32_t* maps, double* out) {
  const replay_shape& s = shape;
  auto bad = [](const std::string& what) {
    return make_error(errc::invalid_argument, position{}, "replay", what);
  };
  if (s.steps < 1 || s.layers < 1 || s.experts < 1 || s.slots < 1 || s.ranks < 1 ||
      s.mappings < 1) {
    return bad(cat("every size must be positive (steps ", s.steps, ", layers ", s.layers,
                   ", experts ", s.experts, ", slots ", s.slots, ", ranks ", s.ranks, ", mappings ",
                   s.mappings, ')'));
  }
  if (s.slots % s.ranks != 0) {
    return bad(cat("slots ", s.slots, " are not divisible by ranks ", s.ranks));
  }
  if (loads == nullptr || maps == nullptr || out == nullptr) return bad("null buffer");
  const std::size_t map_values = static_cast<std::size_t>(s.mappings) * s.layers * s.slots;
  for (std::size_t i = 0; i < map_values; ++i) {
    if (maps[i] < 0 || maps[i] >= s.experts) {
      const std::size_t per_map = static_cast<std::size_t>(s.layers) * s.slots;
      return bad(cat("mapping ", i / per_map, ", layer ", i % per_map / s.slots, ", slot ",
                     i % s.slots, ": expert id ", maps[i], " is outside [0, ", s.experts, ')'));
    }
  }
#ifdef EPLB_HAVE_CUDA
  std::string why;
  if (!cuda_available(&why)) return bad(cat("CUDA is not usable: ", why));
  const cuda_detail::replay_dims dims{s.steps, s.layers, s.experts, s.slots, s.ranks, s.mappings};
  if (!cuda_detail::replay_max(dims, loads, maps, out, why)) {
    return make_error(errc::internal, position{}, "replay", cat("CUDA replay failed: ", why));
  }
  return status::success();
#else
  return bad(cat("CUDA is not usable: ", not_built));
#endif
}

}  // namespace eplb
