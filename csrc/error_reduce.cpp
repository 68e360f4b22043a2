// Dispatch and Python bindings for the fused per-class error reduction: checks the views, then runs the CPU
// kernel (csrc/cpu/error_reduce.cpp) or the CUDA one (csrc/cuda/error_reduce.cu) on the tensors' device.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cmath>
#include <optional>
#include <string>

#include "common/registry.h"
#include "cpu/kernels.h"
#include "common/view_checks.h"
#if GENFAST_WITH_CUDA
#include "cuda/kernels.h"
#endif

namespace py = pybind11;

namespace genfast {

namespace {

Loss parse_loss(const std::string& loss, double delta) {
  if (loss == "l2") return Loss::L2;
  if (loss == "l1") return Loss::L1;
  if (loss == "huber") {
    check(std::isfinite(delta) && delta > 0,
          "error_reduce: delta must be a positive finite number for the huber loss, got " + std::to_string(delta));
    return Loss::Huber;
  }
  throw InputError("error_reduce: loss must be 'l2', 'l1' or 'huber', got '" + loss + "'");
}

void error_reduce(const TensorView& pred, const TensorView& offsets, const TensorView& target,
                  const TensorView& z_t, const TensorView& coef, const std::optional<TensorView>& weight,
                  const std::string& loss, double delta, const TensorView& out, std::uintptr_t stream) {
  const char* op = "error_reduce";
  check_view(op, "pred", pred, {DType::F32, DType::F16, DType::BF16}, -1);
  check(pred.dim() >= 1, "error_reduce: pred must be [B, *latent], got a 0-dimensional view");
  check_view(op, "sample_offsets", offsets, {DType::I64}, 1);
  check(offsets.size(0) >= 1, "error_reduce: sample_offsets must have S + 1 >= 1 entries, got none");
  check_view(op, "target", target, {DType::F32, DType::F16, DType::BF16}, pred.dim());
  check_view(op, "z_t", z_t, {target.dtype}, pred.dim());
  check_view(op, "coef", coef, {DType::F32}, 2);
  check_view(op, "out", out, {DType::F32}, 1);
  const int64_t rows = pred.size(0), samples = offsets.size(0) - 1;
  check_size(op, "target", target, 0, samples, "one per sample row: len(sample_offsets) - 1");
  check_size(op, "z_t", z_t, 0, samples, "one per sample row: len(sample_offsets) - 1");
  check_same_latent(op, "target", target, "pred", pred);
  check_same_latent(op, "z_t", z_t, "pred", pred);
  check_size(op, "coef", coef, 0, rows, "one per row of pred");
  check_size(op, "coef", coef, 1, 3, "coefficients of pred, z_t and target");
  check_size(op, "out", out, 0, rows, "one per row of pred");
  for (const auto& [name, v] : {std::pair<const char*, const TensorView*>{"sample_offsets", &offsets},
                                {"target", &target}, {"z_t", &z_t}, {"coef", &coef}, {"out", &out}}) {
    check_same_device(op, pred, "pred", *v, name);
  }
  if (weight) {
    check_view(op, "weight", *weight, {DType::F32}, 1);
    check_size(op, "weight", *weight, 0, rows, "one per row of pred");
    check_same_device(op, pred, "pred", *weight, "weight");
  }
  const int64_t latent = latent_size(pred);
  check(latent > 0, "error_reduce: pred has no elements per row (shape " + shape_str(pred.shape) + ")");

  ErrorReduceArgs a{pred, offsets, target, z_t, coef, out};
  a.weight = weight ? weight->ptr<const float>() : nullptr;
  a.loss = parse_loss(loss, delta);
  a.delta = static_cast<float>(delta);
  a.rows = rows;
  a.samples = samples;
  a.latent = latent;
  if (!pred.is_cuda()) return cpu::error_reduce(a);
#if GENFAST_WITH_CUDA
  cuda::error_reduce(a, stream);
#else
  (void)stream;
  throw InputError("error_reduce: the tensors are on a CUDA device but genfast._C was built without CUDA");
#endif
}

}  // namespace

void register_error_reduce(py::module_& m) {
  m.def("error_reduce", &error_reduce, py::arg("pred"), py::arg("sample_offsets"), py::arg("target"),
        py::arg("z_t"), py::arg("coef"), py::arg("weight"), py::arg("loss"), py::arg("delta"), py::arg("out"),
        py::arg("stream") = 0, py::call_guard<py::gil_scoped_release>(),
        "out[b] = weight[b] * mean(loss(coef[b,0] pred[b] + coef[b,1] z_t[s] - coef[b,2] target[s])), s the "
        "sample row of b");
}

}  // namespace genfast
