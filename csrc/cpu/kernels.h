// The native kernels' arguments (checked views; see csrc/noise.cpp, csrc/error_reduce.cpp) and the CPU
// implementations. The CUDA launchers with the same arguments are declared in csrc/cuda/kernels.h.
#pragma once
#include <cstdint>

#include "common/tensor_view.h"

namespace genfast {

// eps[r] = noise(seed, keys[slot[r]], sample[r]) (antithetic: (-1)^j noise(..., j / 2)),
// z_t[r] = alpha[r] * z0[slot[r]] + sigma[r] * eps[r]; all views contiguous, sizes checked.
struct NoiseNoisingArgs {
  TensorView z0, keys, slot, sample, alpha, sigma, eps, z_t;
  uint64_t seed = 0;
  bool antithetic = false;
  int64_t rows = 0;    // R
  int64_t images = 0;  // N
  int64_t latent = 0;  // elements per row
};

// out[r, i] = 32-bit word i % 4 of philox_draw(seed, keys[r], sample[r], i / 4), as int64.
struct NoiseBitsArgs {
  TensorView keys, sample, out;
  uint64_t seed = 0;
  int64_t rows = 0;
  int64_t count = 0;  // words per row
};

enum class Loss : int { L2 = 0, L1 = 1, Huber = 2 };

// out[b] = weight[b] * mean_i loss(coef[b,0] pred[b,i] + coef[b,1] z_t[s,i] - coef[b,2] target[s,i]) for the
// rows b of sample row s (offsets[s] <= b < offsets[s+1]).
struct ErrorReduceArgs {
  TensorView pred, offsets, target, z_t, coef, out;
  const float* weight = nullptr;  // optional, [B]
  Loss loss = Loss::L2;
  float delta = 1.0f;
  int64_t rows = 0;     // B
  int64_t samples = 0;  // S
  int64_t latent = 0;   // elements per row
};

namespace cpu {
void noise_noising(const NoiseNoisingArgs& a);
void noise_bits(const NoiseBitsArgs& a);
void error_reduce(const ErrorReduceArgs& a);
}  // namespace cpu

}  // namespace genfast
