// CUDA aggregation: batches of records folded into 64-bit sums on the device,
// sums[l][p2l[l][p]] += expert_load[l][p], with two pinned staging buffers so that the copy and
// the kernel of one batch overlap the host filling the next.

#include <cuda_runtime.h>

#include <string>

#include "aggregate/cuda/kernels.hpp"

namespace eplb::cuda_detail {

namespace {

constexpr unsigned long long int64_max = 0x7FFFFFFFFFFFFFFFULL;

bool check(cudaError_t e, const char* what, std::string& message) {
  if (e == cudaSuccess) return true;
  message = std::string(what) + ": " + cudaGetErrorString(e);
  return false;
}

// One block per (layer, record of the batch); threads walk the record's slots of that layer.
__global__ void fold_kernel(const long long* loads, const int* p2l, const long long* offsets,
                            const int* slots, int experts, unsigned long long* sums,
                            unsigned* flags) {
  const int layer = blockIdx.x;
  const int record = blockIdx.y;
  const int num_slots = slots[record];
  const long long base = offsets[record] + static_cast<long long>(layer) * num_slots;
  unsigned long long* row = sums + static_cast<size_t>(layer) * experts;
  for (int p = threadIdx.x; p < num_slots; p += blockDim.x) {
    const int e = p2l[base + p];
    const long long v = loads[base + p];
    if (e < 0 || e >= experts || v < 0) {
      atomicOr(flags, 2U);
      continue;
    }
    const auto add = static_cast<unsigned long long>(v);
    // Sums below 2^63 plus a value below 2^63 cannot wrap, so the first add past INT64_MAX is
    // seen here; the host then redoes the batch on the CPU to report it exactly.
    const unsigned long long old = atomicAdd(row + e, add);
    if (old + add > int64_max) atomicOr(flags, 1U);
  }
}

struct buffer_set {
  staging host;
  long long* loads = nullptr;
  int* p2l = nullptr;
  long long* offsets = nullptr;
  int* slots = nullptr;
  unsigned* flags = nullptr;       // device
  unsigned* host_flags = nullptr;  // pinned
  cudaEvent_t done = nullptr;
  bool pending = false;
};

}  // namespace

struct fold_state {
  int layers = 0, experts = 0;
  unsigned long long* sums = nullptr;
  cudaStream_t stream = nullptr;
  buffer_set buffers[2];
};

bool device_count(int& count, std::string& message) {
  count = 0;
  if (!check(cudaGetDeviceCount(&count), "cudaGetDeviceCount", message)) return false;
  if (count < 1) {
    message = "no CUDA device";
    return false;
  }
  return true;
}

void fold_destroy(fold_state* state) {
  if (state == nullptr) return;
  if (state->stream != nullptr) cudaStreamSynchronize(state->stream);
  for (auto& b : state->buffers) {
    cudaFreeHost(b.host.loads);
    cudaFreeHost(b.host.p2l);
    cudaFreeHost(b.host.record_offset);
    cudaFreeHost(b.host.record_slots);
    cudaFreeHost(b.host_flags);
    cudaFree(b.loads);
    cudaFree(b.p2l);
    cudaFree(b.offsets);
    cudaFree(b.slots);
    cudaFree(b.flags);
    if (b.done != nullptr) cudaEventDestroy(b.done);
  }
  cudaFree(state->sums);
  if (state->stream != nullptr) cudaStreamDestroy(state->stream);
  delete state;
}

fold_state* fold_create(int layers, int experts, std::size_t capacity, int max_records,
                        std::string& message) {
  auto* s = new fold_state;
  s->layers = layers;
  s->experts = experts;
  const std::size_t sums_bytes = sizeof(unsigned long long) * layers * experts;
  bool ok = check(cudaStreamCreateWithFlags(&s->stream, cudaStreamNonBlocking), "cudaStreamCreate",
                  message) &&
            check(cudaMalloc(&s->sums, sums_bytes), "cudaMalloc", message) &&
            check(cudaMemsetAsync(s->sums, 0, sums_bytes, s->stream), "cudaMemset", message);
  for (auto& b : s->buffers) {
    if (!ok) break;
    b.host.capacity = capacity;
    b.host.max_records = max_records;
    ok = check(cudaMallocHost(&b.host.loads, capacity * sizeof(std::int64_t)), "cudaMallocHost",
               message) &&
         check(cudaMallocHost(&b.host.p2l, capacity * sizeof(std::int32_t)), "cudaMallocHost",
               message) &&
         check(cudaMallocHost(&b.host.record_offset, max_records * sizeof(std::int64_t)),
               "cudaMallocHost", message) &&
         check(cudaMallocHost(&b.host.record_slots, max_records * sizeof(std::int32_t)),
               "cudaMallocHost", message) &&
         check(cudaMallocHost(&b.host_flags, sizeof(unsigned)), "cudaMallocHost", message) &&
         check(cudaMalloc(&b.loads, capacity * sizeof(long long)), "cudaMalloc", message) &&
         check(cudaMalloc(&b.p2l, capacity * sizeof(int)), "cudaMalloc", message) &&
         check(cudaMalloc(&b.offsets, max_records * sizeof(long long)), "cudaMalloc", message) &&
         check(cudaMalloc(&b.slots, max_records * sizeof(int)), "cudaMalloc", message) &&
         check(cudaMalloc(&b.flags, sizeof(unsigned)), "cudaMalloc", message) &&
         check(cudaEventCreateWithFlags(&b.done, cudaEventDisableTiming), "cudaEventCreate",
               message);
    if (ok) *b.host_flags = 0;
  }
  if (!ok) {
    fold_destroy(s);
    return nullptr;
  }
  return s;
}

staging fold_buffer(fold_state* state, int buffer) { return state->buffers[buffer].host; }

bool fold_launch(fold_state* state, int buffer, int records, std::size_t elements,
                 std::string& message) {
  buffer_set& b = state->buffers[buffer];
  cudaStream_t st = state->stream;
  bool ok =
      check(cudaMemsetAsync(b.flags, 0, sizeof(unsigned), st), "cudaMemsetAsync", message) &&
      check(cudaMemcpyAsync(b.loads, b.host.loads, elements * sizeof(long long),
                            cudaMemcpyHostToDevice, st),
            "cudaMemcpyAsync", message) &&
      check(cudaMemcpyAsync(b.p2l, b.host.p2l, elements * sizeof(int), cudaMemcpyHostToDevice, st),
            "cudaMemcpyAsync", message) &&
      check(cudaMemcpyAsync(b.offsets, b.host.record_offset, records * sizeof(long long),
                            cudaMemcpyHostToDevice, st),
            "cudaMemcpyAsync", message) &&
      check(cudaMemcpyAsync(b.slots, b.host.record_slots, records * sizeof(int),
                            cudaMemcpyHostToDevice, st),
            "cudaMemcpyAsync", message);
  if (!ok) return false;
  const dim3 grid(static_cast<unsigned>(state->layers), static_cast<unsigned>(records));
  fold_kernel<<<grid, 256, 0, st>>>(b.loads, b.p2l, b.offsets, b.slots, state->experts, state->sums,
                                    b.flags);
  ok = check(cudaGetLastError(), "fold kernel launch", message) &&
       check(cudaMemcpyAsync(b.host_flags, b.flags, sizeof(unsigned), cudaMemcpyDeviceToHost, st),
             "cudaMemcpyAsync", message) &&
       check(cudaEventRecord(b.done, st), "cudaEventRecord", message);
  b.pending = ok;
  return ok;
}

bool fold_wait(fold_state* state, int buffer, unsigned& flags, std::string& message) {
  buffer_set& b = state->buffers[buffer];
  flags = 0;
  if (!b.pending) return true;
  if (!check(cudaEventSynchronize(b.done), "cudaEventSynchronize", message)) return false;
  b.pending = false;
  flags = *b.host_flags;
  return true;
}

bool fold_download(fold_state* state, std::uint64_t* sums, std::string& message) {
  const std::size_t bytes = sizeof(unsigned long long) * state->layers * state->experts;
  return check(cudaMemcpyAsync(sums, state->sums, bytes, cudaMemcpyDeviceToHost, state->stream),
               "cudaMemcpyAsync", message) &&
         check(cudaStreamSynchronize(state->stream), "cudaStreamSynchronize", message);
}

}  // namespace eplb::cuda_detail
