// Dispatch and Python bindings for counter-based noise and fused noising: checks the views, then runs the CPU
// kernel (csrc/cpu/noise.cpp) or the CUDA one (csrc/cuda/noise.cu) on the tensors' device.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <array>
#include <string>

#include "common/philox.h"
#include "common/registry.h"
#include "cpu/kernels.h"
#include "common/view_checks.h"
#if GENFAST_WITH_CUDA
#include "cuda/kernels.h"
#endif

namespace py = pybind11;

namespace genfast {

namespace {

constexpr const char* kNoising = "noise_noising";
constexpr const char* kBits = "noise_bits";

#if !GENFAST_WITH_CUDA
[[noreturn]] void no_cuda(const char* op) {
  throw InputError(std::string(op) + ": the tensors are on a CUDA device but genfast._C was built without CUDA");
}
#endif

NoiseNoisingArgs noising_args(const TensorView& z0, const TensorView& keys, const TensorView& slot,
                              const TensorView& sample, const TensorView& alpha, const TensorView& sigma,
                              uint64_t seed, bool antithetic, const TensorView& eps, const TensorView& z_t) {
  const char* op = kNoising;
  check_view(op, "z0", z0, {DType::F32, DType::F16, DType::BF16}, -1);
  check(z0.dim() >= 1, "noise_noising: z0 must be [N, *latent], got a 0-dimensional view");
  check_view(op, "keys", keys, {DType::I64}, 1);
  check_view(op, "slot", slot, {DType::I64}, 1);
  check_view(op, "sample", sample, {DType::I64}, 1);
  check_view(op, "alpha", alpha, {DType::F32}, 1);
  check_view(op, "sigma", sigma, {DType::F32}, 1);
  check_view(op, "eps", eps, {z0.dtype}, z0.dim());
  check_view(op, "z_t", z_t, {z0.dtype}, z0.dim());
  const int64_t rows = slot.size(0);
  check_size(op, "keys", keys, 0, z0.size(0), "one key per row of z0");
  check_size(op, "sample", sample, 0, rows, "one per row of slot");
  check_size(op, "alpha", alpha, 0, rows, "one per row of slot");
  check_size(op, "sigma", sigma, 0, rows, "one per row of slot");
  check_size(op, "eps", eps, 0, rows, "one per row of slot");
  check_size(op, "z_t", z_t, 0, rows, "one per row of slot");
  check_same_latent(op, "eps", eps, "z0", z0);
  check_same_latent(op, "z_t", z_t, "z0", z0);
  for (const auto& [name, v] : {std::pair<const char*, const TensorView*>{"keys", &keys}, {"slot", &slot},
                                {"sample", &sample}, {"alpha", &alpha}, {"sigma", &sigma}, {"eps", &eps},
                                {"z_t", &z_t}}) {
    check_same_device(op, z0, "z0", *v, name);
  }
  NoiseNoisingArgs a{z0, keys, slot, sample, alpha, sigma, eps, z_t};
  a.seed = seed;
  a.antithetic = antithetic;
  a.rows = rows;
  a.images = z0.size(0);
  a.latent = latent_size(z0);
  return a;
}

void noise_noising(const TensorView& z0, const TensorView& keys, const TensorView& slot, const TensorView& sample,
                   const TensorView& alpha, const TensorView& sigma, uint64_t seed, bool antithetic,
                   const TensorView& eps, const TensorView& z_t, std::uintptr_t stream) {
  const NoiseNoisingArgs a = noising_args(z0, keys, slot, sample, alpha, sigma, seed, antithetic, eps, z_t);
  if (!z0.is_cuda()) return cpu::noise_noising(a);
#if GENFAST_WITH_CUDA
  cuda::noise_noising(a, stream);
#else
  (void)stream;
  no_cuda(kNoising);
#endif
}

void noise_bits(const TensorView& keys, const TensorView& sample, uint64_t seed, const TensorView& out,
                std::uintptr_t stream) {
  const char* op = kBits;
  check_view(op, "keys", keys, {DType::I64}, 1);
  check_view(op, "sample", sample, {DType::I64}, 1);
  check_view(op, "out", out, {DType::I64}, 2);
  check_size(op, "sample", sample, 0, keys.size(0), "one per key");
  check_size(op, "out", out, 0, keys.size(0), "one row per key");
  check_same_device(op, keys, "keys", sample, "sample");
  check_same_device(op, keys, "keys", out, "out");
  NoiseBitsArgs a{keys, sample, out};
  a.seed = seed;
  a.rows = keys.size(0);
  a.count = out.size(1);
  if (!out.is_cuda()) return cpu::noise_bits(a);
#if GENFAST_WITH_CUDA
  cuda::noise_bits(a, stream);
#else
  (void)stream;
  no_cuda(kBits);
#endif
}

}  // namespace

void register_noise(py::module_& m) {
  m.def(
      "philox4x32_10",
      [](std::array<uint32_t, 4> counter, std::array<uint32_t, 2> key) {
        const Philox4 r = philox4x32_10(counter[0], counter[1], counter[2], counter[3], key[0], key[1]);
        return std::array<uint32_t, 4>{r.v[0], r.v[1], r.v[2], r.v[3]};
      },
      py::arg("counter"), py::arg("key"), "Philox-4x32-10 of a 4-word counter and a 2-word key (for tests)");
  m.def("noise_noising", &noise_noising, py::arg("z0"), py::arg("keys"), py::arg("slot"), py::arg("sample"),
        py::arg("alpha"), py::arg("sigma"), py::arg("seed"), py::arg("antithetic"), py::arg("eps"), py::arg("z_t"),
        py::arg("stream") = 0, py::call_guard<py::gil_scoped_release>(),
        "eps = noise(seed, keys[slot], sample), z_t = alpha z0[slot] + sigma eps, written into eps and z_t");
  m.def("noise_bits", &noise_bits, py::arg("keys"), py::arg("sample"), py::arg("seed"), py::arg("out"),
        py::arg("stream") = 0, py::call_guard<py::gil_scoped_release>(),
        "out[r, i] = Philox word i % 4 of (seed, keys[r], sample[r], word i / 4), as int64");
}

}  // namespace genfast
