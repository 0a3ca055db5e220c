#pragma once
// Synthesizer of large vLLM stats traces for the ingest benchmarks, in the layout vLLM's 1b
// writer produces (json.dumps separators, every field): fast enough to write gigabytes at bench
// time, so no trace is ever committed. Loads are fresh random numbers per record (so compressed
// sizes are realistic); the p2l_map changes every `remap_every` records, as online EPLB would.

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

namespace eplb::bench {

/// A model shape: layers, logical experts, redundant slots, EP ranks.
struct trace_shape {
  const char* name;
  int layers, experts, redundant, ranks;
  int slots() const { return experts + redundant; }
};

/// DeepSeek-V3: 58 MoE layers, 256 experts + 32 redundant = 288 slots on EP 32.
inline constexpr trace_shape deepseek_v3{"deepseek-v3", 58, 256, 32, 32};
/// Qwen3-235B-A22B: 94 MoE layers, 128 experts + 32 redundant = 160 slots on EP 32.
inline constexpr trace_shape qwen3_235b{"qwen3-235b", 94, 128, 32, 32};

/// Writes records to `out` until at least `bytes` bytes are written; returns the bytes written.
class trace_writer {
 public:
  trace_writer(const trace_shape& shape, std::uint64_t seed, int remap_every = 3000)
      : shape_(shape), rng_(seed ? seed : 1), remap_every_(remap_every) {
    weights_.resize(static_cast<std::size_t>(shape.layers) * shape.experts);
    for (int l = 0; l < shape.layers; ++l) {
      for (int e = 0; e < shape.experts; ++e) {
        // Zipf(1) over a per-layer rotation of the experts.
        const int rank = (e * 7 + l * 3) % shape.experts;
        weights_[static_cast<std::size_t>(l) * shape.experts + e] = 1.0 / (rank + 1.0);
      }
    }
    remap();
  }

  /// Appends one record to `line` (cleared first), newline included.
  void record(std::string& line) {
    if (remap_every_ > 0 && count_ > 0 && count_ % remap_every_ == 0) remap();
    const int slots = shape_.slots();
    const int per_rank = slots / shape_.ranks;
    line.clear();
    line += "{\"record_type\": \"eplb_load_stats\", \"version\": 1, \"model\": \"bench/";
    line += shape_.name;
    line += "\", \"step\": ";
    append(line, 2250 + count_);
    line += ", \"next_rearrange\": ";
    append(line, 750 - count_);
    line += ", \"num_ranks\": ";
    append(line, shape_.ranks);
    line += ", \"num_layers\": ";
    append(line, shape_.layers);
    line += ", \"experts_per_rank\": ";
    line += experts_per_rank_;
    // Per-step tokens, then loads per slot: an expert's share split over its replicas, noisy.
    const double tokens =
        256.0 * std::exp2(static_cast<double>(next() % 1000) / 200.0);  // 256..8192
    loads_.resize(static_cast<std::size_t>(shape_.layers) * slots);
    for (int l = 0; l < shape_.layers; ++l) {
      double total = 0;
      for (int e = 0; e < shape_.experts; ++e)
        total += weights_[static_cast<std::size_t>(l) * shape_.experts + e];
      for (int p = 0; p < slots; ++p) {
        const std::size_t k = static_cast<std::size_t>(l) * slots + p;
        const int e = p2l_[k];
        const double share = weights_[static_cast<std::size_t>(l) * shape_.experts + e] / total /
                             replicas_[static_cast<std::size_t>(l) * shape_.experts + e];
        const double noise = 0.5 + static_cast<double>(next() % 1024) / 1024.0;
        loads_[k] = static_cast<std::int64_t>(tokens * 8 * share * noise);
      }
    }
    line += ", \"tokens\": [";
    for (int l = 0; l < shape_.layers; ++l) {
      line += l ? ", [" : "[";
      for (int r = 0; r < shape_.ranks; ++r) {
        std::int64_t sum = 0;
        for (int p = r * per_rank; p < (r + 1) * per_rank; ++p) {
          sum += loads_[static_cast<std::size_t>(l) * slots + p];
        }
        if (r) line += ", ";
        append(line, sum);
      }
      line += ']';
    }
    line += "], \"expert_load\": [";
    for (int l = 0; l < shape_.layers; ++l) {
      line += l ? ", [" : "[";
      for (int p = 0; p < slots; ++p) {
        if (p) line += ", ";
        append(line, loads_[static_cast<std::size_t>(l) * slots + p]);
      }
      line += ']';
    }
    line += "], \"p2l_map\": ";
    line += p2l_text_;
    line += "}\n";
    ++count_;
  }

  /// Writes the meta line and records to `f` until `bytes` are written; returns the count.
  std::uint64_t write(std::FILE* f, std::uint64_t bytes) {
    std::string line = "{\"record_type\": \"eplb_load_meta\", \"version\": 1, \"model\": \"bench/";
    line += shape_.name;
    line += "\", \"num_ranks\": ";
    append(line, shape_.ranks);
    line += ", \"num_groups\": 1, \"num_nodes\": 1, \"num_layers\": ";
    append(line, shape_.layers);
    line += ", \"num_redundant_experts\": ";
    append(line, shape_.redundant);
    line += "}\n";
    std::uint64_t written = 0;
    while (written < bytes) {
      if (std::fwrite(line.data(), 1, line.size(), f) != line.size()) return written;
      written += line.size();
      record(line);
    }
    return written;
  }

 private:
  std::uint64_t next() {
    // xorshift64*
    rng_ ^= rng_ >> 12;
    rng_ ^= rng_ << 25;
    rng_ ^= rng_ >> 27;
    return rng_ * 2685821657736338717ULL;
  }

  static void append(std::string& s, std::int64_t v) {
    char buf[24];
    const auto r = std::to_chars(buf, buf + sizeof buf, v);
    s.append(buf, r.ptr);
  }

  void remap() {
    const int slots = shape_.slots();
    p2l_.resize(static_cast<std::size_t>(shape_.layers) * slots);
    replicas_.assign(static_cast<std::size_t>(shape_.layers) * shape_.experts, 0);
    for (int l = 0; l < shape_.layers; ++l) {
      int* row = p2l_.data() + static_cast<std::size_t>(l) * slots;
      for (int p = 0; p < slots; ++p) {
        row[p] = p < shape_.experts ? p : static_cast<int>(next() % shape_.experts);
      }
      for (int p = slots - 1; p > 0; --p) std::swap(row[p], row[next() % (p + 1)]);
      for (int p = 0; p < slots; ++p)
        ++replicas_[static_cast<std::size_t>(l) * shape_.experts + row[p]];
    }
    p2l_text_.assign(1, '[');
    for (int l = 0; l < shape_.layers; ++l) {
      p2l_text_ += l ? ", [" : "[";
      for (int p = 0; p < slots; ++p) {
        if (p) p2l_text_ += ", ";
        append(p2l_text_, p2l_[static_cast<std::size_t>(l) * slots + p]);
      }
      p2l_text_ += ']';
    }
    p2l_text_ += ']';
    // Layer 0 only: the ids in the first and last slot of each rank.
    const int per_rank = slots / shape_.ranks;
    experts_per_rank_.assign(1, '[');
    for (int r = 0; r < shape_.ranks; ++r) {
      if (r) experts_per_rank_ += ", ";
      experts_per_rank_ += '[';
      append(experts_per_rank_, p2l_[static_cast<std::size_t>(r) * per_rank]);
      experts_per_rank_ += ", ";
      append(experts_per_rank_, p2l_[static_cast<std::size_t>(r + 1) * per_rank - 1]);
      experts_per_rank_ += ']';
    }
    experts_per_rank_ += ']';
  }

  trace_shape shape_;
  std::uint64_t rng_;
  int remap_every_;
  std::int64_t count_ = 0;
  std::vector<double> weights_;
  std::vector<int> p2l_;
  std::vector<int> replicas_;
  std::vector<std::int64_t> loads_;
  std::string p2l_text_, experts_per_rank_;
};

}  // namespace eplb::bench
