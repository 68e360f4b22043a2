// CUDA kernels for counter-based noise and fused noising (docs/ARCHITECTURE.md, "Noise", "Fused noising").
// One thread per (row, Philox word): four consecutive elements of one row. Values cannot be checked on the
// host without a synchronisation, so a row whose slot is not a row of z0 gets NaN in eps and z_t, and sample
// indices are taken modulo 2^32.
#include <cmath>

#include "common/philox.h"
#include "cuda/cuda_utils.cuh"
#include "cuda/kernels.h"

namespace genfast::cuda {

namespace {

constexpr int kThreads = 256;

template <typename Store>
__global__ void noise_noising_kernel(const typename Store::T* __restrict__ z0, const int64_t* __restrict__ keys,
                                     const int64_t* __restrict__ slot, const int64_t* __restrict__ sample,
                                     const float* __restrict__ alpha, const float* __restrict__ sigma,
                                     typename Store::T* __restrict__ eps, typename Store::T* __restrict__ z_t,
                                     uint64_t seed, bool antithetic, int64_t rows, int64_t images, int64_t latent) {
  const int64_t words = (latent + 3) / 4;
  const int64_t total = rows * words;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = idx / words;
    const int64_t word = idx - r * words;
    const int64_t n = slot[r];
    const int64_t j = sample[r];
    float normal[4] = {NAN, NAN, NAN, NAN};
    const bool valid = n >= 0 && n < images;
    if (valid) {
      const uint32_t draw = static_cast<uint32_t>(antithetic ? j / 2 : j);
      philox_normal4(seed, static_cast<uint64_t>(keys[n]), draw, static_cast<uint32_t>(word), normal);
    }
    const float sign = (antithetic && (j & 1)) ? -1.0f : 1.0f;
    const float a = alpha[r], s = sigma[r];
    for (int q = 0; q < 4; ++q) {
      const int64_t i = 4 * word + q;
      if (i >= latent) break;
      typename Store::T* e_ptr = eps + r * latent + i;
      Store::store(e_ptr, sign * normal[q]);
      const float x0 = valid ? Store::load(z0 + n * latent + i) : NAN;
      // Explicit roundings (no FMA contraction) give the same float as the CPU kernel.
      Store::store(z_t + r * latent + i, __fadd_rn(__fmul_rn(a, x0), __fmul_rn(s, Store::load(e_ptr))));
    }
  }
}

__global__ void noise_bits_kernel(const int64_t* __restrict__ keys, const int64_t* __restrict__ sample,
                                  int64_t* __restrict__ out, uint64_t seed, int64_t rows, int64_t count) {
  const int64_t words = (count + 3) / 4;
  const int64_t total = rows * words;
  for (int64_t idx = blockIdx.x * int64_t{blockDim.x} + threadIdx.x; idx < total;
       idx += int64_t{gridDim.x} * blockDim.x) {
    const int64_t r = idx / words;
    const int64_t word = idx - r * words;
    const Philox4 bits = philox_draw(seed, static_cast<uint64_t>(keys[r]), static_cast<uint32_t>(sample[r]),
                                     static_cast<uint32_t>(word));
    for (int q = 0; q < 4; ++q) {
      const int64_t i = 4 * word + q;
      if (i < count) out[r * count + i] = bits.v[q];
    }
  }
}

}  // namespace

void noise_noising(const NoiseNoisingArgs& a, std::uintptr_t stream) {
  const int64_t total = a.rows * ((a.latent + 3) / 4);
  if (total == 0) return;
  DeviceGuard guard(a.z0.device);
  dispatch_float(a.z0.dtype, [&](auto store) {
    using Store = decltype(store);
    using T = typename Store::T;
    noise_noising_kernel<Store><<<blocks_for(total, kThreads), kThreads, 0, as_stream(stream)>>>(
        a.z0.ptr<const T>(), a.keys.ptr<const int64_t>(), a.slot.ptr<const int64_t>(),
        a.sample.ptr<const int64_t>(), a.alpha.ptr<const float>(), a.sigma.ptr<const float>(), a.eps.ptr<T>(),
        a.z_t.ptr<T>(), a.seed, a.antithetic, a.rows, a.images, a.latent);
  });
  check_cuda(cudaGetLastError(), "noise_noising: kernel launch failed");
}

void noise_bits(const NoiseBitsArgs& a, std::uintptr_t stream) {
  const int64_t total = a.rows * ((a.count + 3) / 4);
  if (total == 0) return;
  DeviceGuard guard(a.out.device);
  noise_bits_kernel<<<blocks_for(total, kThreads), kThreads, 0, as_stream(stream)>>>(
      a.keys.ptr<const int64_t>(), a.sample.ptr<const int64_t>(), a.out.ptr<int64_t>(), a.seed, a.rows, a.count);
  check_cuda(cudaGetLastError(), "noise_bits: kernel launch failed");
}

}  // namespace genfast::cuda
