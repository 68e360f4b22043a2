// CPU kernels for counter-based noise and fused noising (docs/ARCHITECTURE.md, "Noise", "Fused noising").
#include <limits>
#include <string>

#include "common/philox.h"
#include "cpu/half_convert.h"
#include "cpu/kernels.h"

namespace genfast::cpu {

namespace {

// Sample indices index the Philox counter's 32-bit word.
void check_samples(const char* op, const TensorView& sample, int64_t rows) {
  const int64_t* values = sample.ptr<const int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    check(values[r] >= 0 && values[r] <= int64_t{std::numeric_limits<uint32_t>::max()},
          std::string(op) + ": sample[" + std::to_string(r) + "] = " + std::to_string(values[r]) +
              " is outside [0, 2^32)");
  }
}

template <typename Store>
void noise_noising_typed(const NoiseNoisingArgs& a) {
  using T = typename Store::T;
  const T* z0 = a.z0.ptr<const T>();
  T* eps = a.eps.ptr<T>();
  T* z_t = a.z_t.ptr<T>();
  const int64_t* keys = a.keys.ptr<const int64_t>();
  const int64_t* slot = a.slot.ptr<const int64_t>();
  const int64_t* sample = a.sample.ptr<const int64_t>();
  const float* alpha = a.alpha.ptr<const float>();
  const float* sigma = a.sigma.ptr<const float>();
  const int64_t L = a.latent;
  for (int64_t r = 0; r < a.rows; ++r) {
    const int64_t n = slot[r];
    const int64_t j = sample[r];
    const uint32_t draw = static_cast<uint32_t>(a.antithetic ? j / 2 : j);
    const float sign = (a.antithetic && (j & 1)) ? -1.0f : 1.0f;
    const uint64_t key = static_cast<uint64_t>(keys[n]);
    const T* z0_row = z0 + n * L;
    T* eps_row = eps + r * L;
    T* zt_row = z_t + r * L;
    for (int64_t word = 0; 4 * word < L; ++word) {
      float normal[4];
      philox_normal4(a.seed, key, draw, static_cast<uint32_t>(word), normal);
      for (int64_t q = 0, i = 4 * word; q < 4 && i < L; ++q, ++i) {
        Store::store(eps_row + i, sign * normal[q]);
        const float e = Store::load(eps_row + i);
        Store::store(zt_row + i, alpha[r] * Store::load(z0_row + i) + sigma[r] * e);
      }
    }
  }
}

}  // namespace

void noise_noising(const NoiseNoisingArgs& a) {
  check_samples("noise_noising", a.sample, a.rows);
  const int64_t* slot = a.slot.ptr<const int64_t>();
  for (int64_t r = 0; r < a.rows; ++r) {
    check(slot[r] >= 0 && slot[r] < a.images, "noise_noising: slot[" + std::to_string(r) + "] = " +
                                                  std::to_string(slot[r]) + " is not a row of z0 (0 <= slot < " +
                                                  std::to_string(a.images) + ")");
  }
  dispatch_float(a.z0.dtype, [&](auto store) { noise_noising_typed<decltype(store)>(a); });
}

void noise_bits(const NoiseBitsArgs& a) {
  const int64_t* keys = a.keys.ptr<const int64_t>();
  const int64_t* sample = a.sample.ptr<const int64_t>();
  int64_t* out = a.out.ptr<int64_t>();
  check_samples("noise_bits", a.sample, a.rows);
  for (int64_t r = 0; r < a.rows; ++r) {
    const int64_t j = sample[r];
    for (int64_t word = 0; 4 * word < a.count; ++word) {
      const Philox4 bits = philox_draw(a.seed, static_cast<uint64_t>(keys[r]), static_cast<uint32_t>(j),
                                       static_cast<uint32_t>(word));
      for (int64_t q = 0, i = 4 * word; q < 4 && i < a.count; ++q, ++i) out[r * a.count + i] = bits.v[q];
    }
  }
}

}  // namespace genfast::cpu
