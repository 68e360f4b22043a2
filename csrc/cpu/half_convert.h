// float16 / bfloat16 <-> float32 on the host, bit-exact with PyTorch's conversions (round to nearest even),
// without depending on compiler support for _Float16.
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "common/tensor_view.h"

namespace genfast::cpu {

inline uint32_t float_bits(float f) {
  uint32_t x;
  std::memcpy(&x, &f, sizeof x);
  return x;
}

inline float bits_float(uint32_t x) {
  float f;
  std::memcpy(&f, &x, sizeof f);
  return f;
}

inline float half_to_float(uint16_t h) {
  const uint32_t sign = static_cast<uint32_t>(h & 0x8000u) << 16;
  const uint32_t exp = (h >> 10) & 0x1Fu;
  const uint32_t man = h & 0x3FFu;
  if (exp == 0) {  // zero or subnormal: man * 2^-24, exact in float
    const float v = static_cast<float>(man) * 5.9604644775390625e-08f;
    return bits_float(float_bits(v) | sign);
  }
  if (exp == 31) return bits_float(sign | 0x7F800000u | (man << 13));
  return bits_float(sign | ((exp + 112u) << 23) | (man << 13));
}

inline uint16_t float_to_half(float f) {
  const uint32_t x = float_bits(f);
  const uint16_t sign = static_cast<uint16_t>((x >> 16) & 0x8000u);
  const uint32_t ax = x & 0x7FFFFFFFu;
  if (ax >= 0x7F800000u) return sign | 0x7C00u | (ax > 0x7F800000u ? 0x200u : 0u);  // inf, nan
  if (ax >= 0x477FF000u) return sign | 0x7C00u;                                    // rounds to inf
  if (ax < 0x38800000u) {  // below 2^-14: a half subnormal, i.e. a multiple of 2^-24 (scaling is exact)
    const float scaled = bits_float(ax) * 16777216.0f;
    return sign | static_cast<uint16_t>(std::nearbyint(scaled));
  }
  const uint32_t rounded = ax + 0xFFFu + ((ax >> 13) & 1u);
  return sign | static_cast<uint16_t>((rounded - (112u << 23)) >> 13);
}

inline float bf16_to_float(uint16_t h) { return bits_float(static_cast<uint32_t>(h) << 16); }

inline uint16_t float_to_bf16(float f) {
  const uint32_t x = float_bits(f);
  if ((x & 0x7FFFFFFFu) > 0x7F800000u) return static_cast<uint16_t>((x >> 16) | 0x40u);  // quiet nan
  return static_cast<uint16_t>((x + 0x7FFFu + ((x >> 16) & 1u)) >> 16);
}

// Storage types with load/store through float, for templated kernels.
struct StoreF32 {
  using T = float;
  static float load(const T* p) { return *p; }
  static void store(T* p, float v) { *p = v; }
};
struct StoreF16 {
  using T = uint16_t;
  static float load(const T* p) { return half_to_float(*p); }
  static void store(T* p, float v) { *p = float_to_half(v); }
};
struct StoreBF16 {
  using T = uint16_t;
  static float load(const T* p) { return bf16_to_float(*p); }
  static void store(T* p, float v) { *p = float_to_bf16(v); }
};

// Calls f(Store) with the storage type of a float32/float16/bfloat16 view.
template <typename F>
void dispatch_float(DType dtype, F&& f) {
  switch (dtype) {
    case DType::F32: f(StoreF32{}); return;
    case DType::F16: f(StoreF16{}); return;
    case DType::BF16: f(StoreBF16{}); return;
    default: throw InputError(std::string("unsupported dtype ") + dtype_name(dtype));
  }
}

}  // namespace genfast::cpu
