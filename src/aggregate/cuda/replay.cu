// CUDA replay: for many steps and placements, each rank's load (an expert's load split evenly
// over its replicas, summed slot by slot in slot order) and the max over ranks, per step and
// layer. The operation order is that of eplb::rank_loads, and double division and addition are
// IEEE on both sides, so the results equal the CPU's bit for bit.

#include <cuda_runtime.h>

#include <string>

#include "aggregate/cuda/kernels.hpp"

namespace eplb::cuda_detail {

namespace {

bool check(cudaError_t e, const char* what, std::string& message) {
  if (e == cudaSuccess) return true;
  message = std::string(what) + ": " + cudaGetErrorString(e);
  return false;
}

// One block per (mapping, layer); its threads take the steps. Shared memory holds the layer's
// map and each expert's replica count.
__global__ void replay_kernel(const long long* loads, const int* maps, double* out, replay_dims d) {
  extern __shared__ int shared[];
  int* count = shared;            // [experts]
  int* map = shared + d.experts;  // [slots]
  const int m = blockIdx.x / d.layers;
  const int l = blockIdx.x % d.layers;
  const int* row = maps + (static_cast<size_t>(m) * d.layers + l) * d.slots;
  for (int e = threadIdx.x; e < d.experts; e += blockDim.x) count[e] = 0;
  __syncthreads();
  for (int p = threadIdx.x; p < d.slots; p += blockDim.x) {
    map[p] = row[p];
    atomicAdd(count + row[p], 1);
  }
  __syncthreads();
  const int per_rank = d.slots / d.ranks;
  for (int s = blockIdx.y * blockDim.x + threadIdx.x; s < d.steps; s += gridDim.y * blockDim.x) {
    const long long* w = loads + (static_cast<size_t>(s) * d.layers + l) * d.experts;
    double best = 0;
    for (int r = 0; r < d.ranks; ++r) {
      double acc = 0;
      for (int p = r * per_rank; p < (r + 1) * per_rank; ++p) {
        const int e = map[p];
        acc = __dadd_rn(acc, __ddiv_rn(static_cast<double>(w[e]), static_cast<double>(count[e])));
      }
      if (r == 0 || acc > best) best = acc;
    }
    out[(static_cast<size_t>(m) * d.steps + s) * d.layers + l] = best;
  }
}

}  // namespace

bool replay_max(const replay_dims& d, const std::int64_t* loads, const std::int32_t* maps,
                double* out, std::string& message) {
  const std::size_t load_bytes = sizeof(long long) * d.steps * d.layers * d.experts;
  const std::size_t map_bytes = sizeof(int) * d.mappings * d.layers * d.slots;
  const std::size_t out_bytes = sizeof(double) * d.mappings * d.steps * d.layers;
  const std::size_t shared_bytes = sizeof(int) * (d.experts + d.slots);
  int device = 0;
  cudaDeviceProp prop{};
  if (!check(cudaGetDevice(&device), "cudaGetDevice", message) ||
      !check(cudaGetDeviceProperties(&prop, device), "cudaGetDeviceProperties", message)) {
    return false;
  }
  if (shared_bytes > prop.sharedMemPerBlock) {
    message = "experts + slots per layer too large for the kernel's shared memory";
    return false;
  }
  long long* d_loads = nullptr;
  int* d_maps = nullptr;
  double* d_out = nullptr;
  bool ok =
      check(cudaMalloc(&d_loads, load_bytes), "cudaMalloc", message) &&
      check(cudaMalloc(&d_maps, map_bytes), "cudaMalloc", message) &&
      check(cudaMalloc(&d_out, out_bytes), "cudaMalloc", message) &&
      check(cudaMemcpy(d_loads, loads, load_bytes, cudaMemcpyHostToDevice), "cudaMemcpy",
            message) &&
      check(cudaMemcpy(d_maps, maps, map_bytes, cudaMemcpyHostToDevice), "cudaMemcpy", message);
  if (ok) {
    const unsigned threads = 128;
    unsigned step_blocks = static_cast<unsigned>((d.steps + threads - 1) / threads);
    if (step_blocks > 1024) step_blocks = 1024;
    const dim3 grid(static_cast<unsigned>(d.mappings * d.layers), step_blocks);
    replay_kernel<<<grid, threads, shared_bytes>>>(d_loads, d_maps, d_out, d);
    ok = check(cudaGetLastError(), "replay kernel launch", message) &&
         check(cudaMemcpy(out, d_out, out_bytes, cudaMemcpyDeviceToHost), "cudaMemcpy", message);
  }
  cudaFree(d_loads);
  cudaFree(d_maps);
  cudaFree(d_out);
  return ok;
}

}  // namespace eplb::cuda_detail
