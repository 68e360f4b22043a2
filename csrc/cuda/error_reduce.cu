// CUDA kernels for the fused per-class error reduction (docs/ARCHITECTURE.md, "Error reduction").
//
// Pass 1: a block per (sample row s, tile of kTile elements) loads that tile of target and z_t into shared
// memory once (as float); its warps then take the class rows of s in turn, each reading its pred tile
// coalesced and writing the tile's loss sum to partial[b, tile]. Pass 2: a thread per class row adds its tile
// sums in a fixed order (so results do not depend on scheduling) and applies weight / numel.
// Offsets cannot be checked on the host without a synchronisation: partial sums start as NaN, a sample row
// whose offsets are out of range or decreasing is skipped, so rows it should have covered come out NaN.
#include <cmath>

#include "cuda/cuda_utils.cuh"
#include "cuda/kernels.h"

namespace genfast::cuda {

namespace {

constexpr int kTile = 2048;
constexpr int kThreads = 256;
constexpr int kWarps = kThreads / 32;

template <Loss L>
__device__ __forceinline__ float loss_of(float r, float delta) {
  if constexpr (L == Loss::L2) {
    return r * r;
  } else if constexpr (L == Loss::L1) {
    return fabsf(r);
  } else {  // Huber: 0.5 r^2 for |r| < delta, else delta (|r| - delta / 2); q = min(|r|, delta) covers both
    const float a = fabsf(r);
    const float q = fminf(a, delta);
    return q * (a - 0.5f * q);
  }
}

template <typename PredStore, typename SampleStore, Loss L>
__global__ void __launch_bounds__(kThreads)
    error_partial_kernel(const typename PredStore::T* __restrict__ pred, const int64_t* __restrict__ offsets,
                         const typename SampleStore::T* __restrict__ target,
                         const typename SampleStore::T* __restrict__ z_t, const float* __restrict__ coef,
                         float* __restrict__ partial, int64_t rows, int64_t latent, int64_t tiles, float delta) {
  __shared__ float zt_tile[kTile];
  __shared__ float target_tile[kTile];
  const int64_t s = blockIdx.x / tiles;
  const int64_t tile = blockIdx.x - s * tiles;
  const int64_t start = tile * kTile;
  const int n = static_cast<int>(min(int64_t{kTile}, latent - start));
  const int64_t b0 = offsets[s], b1 = offsets[s + 1];
  if (b0 < 0 || b1 > rows || b1 < b0) return;
  for (int i = threadIdx.x; i < n; i += kThreads) {
    zt_tile[i] = SampleStore::load(z_t + s * latent + start + i);
    target_tile[i] = SampleStore::load(target + s * latent + start + i);
  }
  __syncthreads();
  const int warp = threadIdx.x / 32, lane = threadIdx.x % 32;
  for (int64_t b = b0 + warp; b < b1; b += kWarps) {
    const float c0 = coef[3 * b], c1 = coef[3 * b + 1], c2 = coef[3 * b + 2];
    const typename PredStore::T* p = pred + b * latent + start;
    float acc = 0.0f;
    for (int i = lane; i < n; i += 32) {
      acc += loss_of<L>(c0 * PredStore::load(p + i) + c1 * zt_tile[i] - c2 * target_tile[i], delta);
    }
    for (int offset = 16; offset > 0; offset /= 2) acc += __shfl_down_sync(0xFFFFFFFFu, acc, offset);
    if (lane == 0) partial[b * tiles + tile] = acc;
  }
}

__global__ void error_finish_kernel(const float* __restrict__ partial, const float* __restrict__ weight,
                                    float* __restrict__ out, int64_t rows, int64_t latent, int64_t tiles) {
  for (int64_t b = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; b < rows; b += int64_t{gridDim.x} * blockDim.x) {
    double sum = 0.0;
    for (int64_t t = 0; t < tiles; ++t) sum += partial[b * tiles + t];
    const double w = weight ? weight[b] : 1.0;
    out[b] = static_cast<float>(w * sum / static_cast<double>(latent));
  }
}

}  // namespace

void error_reduce(const ErrorReduceArgs& a, std::uintptr_t stream) {
  if (a.rows == 0) return;
  DeviceGuard guard(a.pred.device);
  cudaStream_t st = as_stream(stream);
  const int64_t tiles = (a.latent + kTile - 1) / kTile;
  const int64_t blocks = a.samples * tiles;
  check(blocks <= 0x7FFFFFFF, "error_reduce: too many sample rows x tiles for one launch");
  float* partial = nullptr;
  check_cuda(cudaMallocAsync(reinterpret_cast<void**>(&partial), sizeof(float) * a.rows * tiles, st),
             "error_reduce: cudaMallocAsync of the partial sums");
  // All bits set is a NaN: rows that no valid sample row covers stay NaN.
  cudaError_t err = cudaMemsetAsync(partial, 0xFF, sizeof(float) * a.rows * tiles, st);
  if (err == cudaSuccess && blocks > 0) {
    dispatch_float(a.pred.dtype, [&](auto pred_store) {
      dispatch_float(a.target.dtype, [&](auto sample_store) {
        using PS = decltype(pred_store);
        using SS = decltype(sample_store);
        using P = typename PS::T;
        using T = typename SS::T;
        auto launch = [&](auto kernel) {
          kernel<<<static_cast<unsigned>(blocks), kThreads, 0, st>>>(
              a.pred.ptr<const P>(), a.offsets.ptr<const int64_t>(), a.target.ptr<const T>(),
              a.z_t.ptr<const T>(), a.coef.ptr<const float>(), partial, a.rows, a.latent, tiles, a.delta);
        };
        switch (a.loss) {
          case Loss::L2: launch(error_partial_kernel<PS, SS, Loss::L2>); break;
          case Loss::L1: launch(error_partial_kernel<PS, SS, Loss::L1>); break;
          case Loss::Huber: launch(error_partial_kernel<PS, SS, Loss::Huber>); break;
        }
      });
    });
    err = cudaGetLastError();
  }
  if (err == cudaSuccess) {
    error_finish_kernel<<<blocks_for(a.rows, kThreads), kThreads, 0, st>>>(partial, a.weight, a.out.ptr<float>(),
                                                                            a.rows, a.latent, tiles);
    err = cudaGetLastError();
  }
  const cudaError_t free_err = cudaFreeAsync(partial, st);
  check_cuda(err, "error_reduce: kernel launch failed");
  check_cuda(free_err, "error_reduce: cudaFreeAsync of the partial sums");
}

}  // namespace genfast::cuda
