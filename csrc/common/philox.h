// Philox-4x32-10 (Salmon et al. 2011, "Parallel random numbers: as easy as 1, 2, 3"), shared by the CPU and
// CUDA code so that both produce the same bits for the same (key, counter).
//
// genfast's use of the counter space (see docs/ARCHITECTURE.md, "Noise"):
//   key     = (seed low 32 bits, seed high 32 bits)
//   counter = (word, sample index, image key low 32 bits, image key high 32 bits)
// where `word` is the index of a group of four outputs. Gaussian noise uses words 0, 1, 2, ... (element i of
// a sample's noise comes from word i / 4); other draws (e.g. timesteps) use words counted down from
// 0xFFFFFFFF, named below, so the streams never overlap for any realistic latent size.
#pragma once
#include <cstdint>
#include <cmath>

#if defined(__CUDACC__)
#define GENFAST_HD __host__ __device__ __forceinline__
#else
#define GENFAST_HD inline
#endif

namespace genfast {

constexpr uint32_t kPhiloxM0 = 0xD2511F53u;
constexpr uint32_t kPhiloxM1 = 0xCD9E8D57u;
constexpr uint32_t kPhiloxW0 = 0x9E3779B9u;
constexpr uint32_t kPhiloxW1 = 0xBB67AE85u;

// Counter words reserved for non-noise draws.
constexpr uint32_t kWordTimestep = 0xFFFFFFFFu;  // the uniform that picks sample j's timestep
constexpr uint32_t kWordShift = 0xFFFFFFFEu;     // per-image random shifts (e.g. of a lattice sequence)

struct Philox4 {
  uint32_t v[4];
};

GENFAST_HD void philox_mulhilo(uint32_t a, uint32_t b, uint32_t& hi, uint32_t& lo) {
  const uint64_t p = static_cast<uint64_t>(a) * static_cast<uint64_t>(b);
  hi = static_cast<uint32_t>(p >> 32);
  lo = static_cast<uint32_t>(p);
}

// Ten rounds of Philox-4x32 on counter (c0..c3) with key (k0, k1).
GENFAST_HD Philox4 philox4x32_10(uint32_t c0, uint32_t c1, uint32_t c2, uint32_t c3, uint32_t k0, uint32_t k1) {
#if defined(__CUDACC__)
#pragma unroll
#endif
  for (int round = 0; round < 10; ++round) {
    uint32_t hi0, lo0, hi1, lo1;
    philox_mulhilo(kPhiloxM0, c0, hi0, lo0);
    philox_mulhilo(kPhiloxM1, c2, hi1, lo1);
    const uint32_t n0 = hi1 ^ c1 ^ k0;
    const uint32_t n2 = hi0 ^ c3 ^ k1;
    c0 = n0;
    c1 = lo1;
    c2 = n2;
    c3 = lo0;
    k0 += kPhiloxW0;
    k1 += kPhiloxW1;
  }
  return Philox4{{c0, c1, c2, c3}};
}

// genfast's counter layout: one call gives four 32-bit words for (seed, image key, sample, word).
GENFAST_HD Philox4 philox_draw(uint64_t seed, uint64_t image_key, uint32_t sample, uint32_t word) {
  return philox4x32_10(word, sample, static_cast<uint32_t>(image_key), static_cast<uint32_t>(image_key >> 32),
                       static_cast<uint32_t>(seed), static_cast<uint32_t>(seed >> 32));
}

// A 32-bit word to a uniform in the open interval (0, 1): the top 24 bits, centred in their cell, so the
// value is exactly representable in float and never 0 or 1.
GENFAST_HD double philox_uniform(uint32_t x) {
  return (static_cast<double>(x >> 8) + 0.5) * (1.0 / 16777216.0);
}

// Box-Muller on two words, in double so that CPU and CUDA round to the same float almost always.
GENFAST_HD void philox_box_muller(uint32_t a, uint32_t b, float& z0, float& z1) {
  const double kTwoPi = 6.283185307179586476925286766559;
  const double r = sqrt(-2.0 * log(philox_uniform(a)));
  const double theta = kTwoPi * philox_uniform(b);
  z0 = static_cast<float>(r * cos(theta));
  z1 = static_cast<float>(r * sin(theta));
}

// Four standard normals for (seed, image key, sample, word): elements 4*word .. 4*word+3 of the sample's noise.
GENFAST_HD void philox_normal4(uint64_t seed, uint64_t image_key, uint32_t sample, uint32_t word, float out[4]) {
  const Philox4 r = philox_draw(seed, image_key, sample, word);
  philox_box_muller(r.v[0], r.v[1], out[0], out[1]);
  philox_box_muller(r.v[2], r.v[3], out[2], out[3]);
}

}  // namespace genfast
