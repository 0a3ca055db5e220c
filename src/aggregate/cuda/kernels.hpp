#pragma once
// Private, C++17 and std-only: the boundary between the library (C++20) and the .cu files, which
// nvcc compiles as C++17 without simdjson, fmt or Eigen. Functions return false with a message
// on any CUDA failure; nothing here throws or prints.

#include <cstddef>
#include <cstdint>
#include <string>

namespace eplb::cuda_detail {

/// Returns true with the number of CUDA devices (at least one); false with the reason otherwise
/// (no driver, no device, a CUDA error).
bool device_count(int& count, std::string& message);

/// Pinned host memory of one staging buffer: records are appended here, then copied to the
/// device and folded while the host fills the other buffer.
struct staging {
  std::int64_t* loads = nullptr;          // [elements]
  std::int32_t* p2l = nullptr;            // [elements]
  std::int64_t* record_offset = nullptr;  // [records]: first element of each record
  std::int32_t* record_slots = nullptr;   // [records]: P of each record (its L is the state's)
  std::size_t capacity = 0;               // elements
  int max_records = 0;
};

struct fold_state;

/// Creates the device state of one aggregation: sums [layers][experts] set to zero, two staging
/// buffers of `capacity` elements; nullptr with a message on failure.
fold_state* fold_create(int layers, int experts, std::size_t capacity, int max_records,
                        std::string& message);
/// Frees everything (waits for the device first); null is fine.
void fold_destroy(fold_state* state);
/// Returns staging buffer 0 or 1.
staging fold_buffer(fold_state* state, int buffer);
/// Starts folding `records` records (`elements` values) of the buffer: copies them to the device
/// and launches the scatter-add, asynchronously.
bool fold_launch(fold_state* state, int buffer, int records, std::size_t elements,
                 std::string& message);
/// Waits until the buffer's last batch is folded (so the buffer may be refilled); `flags` gets the
/// kernel's findings for it: bit 0 a sum went past INT64_MAX, bit 1 an id outside [0, E) or a
/// negative load (those values were not added).
bool fold_wait(fold_state* state, int buffer, unsigned& flags, std::string& message);
/// Waits for everything and copies the sums ([layers][experts], modulo 2^64) to `sums`.
bool fold_download(fold_state* state, std::uint64_t* sums, std::string& message);

/// Sizes of a replay (see eplb::cuda_replay_max).
struct replay_dims {
  int steps, layers, experts, slots, ranks, mappings;
};
/// The GPU replay: out[m][s][l] = max over ranks of the rank's split load (see aggregate.hpp).
bool replay_max(const replay_dims& dims, const std::int64_t* loads, const std::int32_t* maps,
                double* out, std::string& message);

}  // namespace eplb::cuda_detail
