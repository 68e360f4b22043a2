// The pybind11 module genfast._C: build metadata, the TensorView type, and every part's bindings.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include "build_info.h"
#include "common/registry.h"
#include "common/tensor_view.h"

#if GENFAST_BUILD_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace py = pybind11;
using namespace genfast;

namespace {

// Whether a CUDA device can be used by this binary, and if not, why.
py::tuple cuda_status() {
#if GENFAST_BUILD_WITH_CUDA
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return py::make_tuple(0, std::string("CUDA runtime reports: ") + cudaGetErrorString(err));
  }
  if (count == 0) return py::make_tuple(0, std::string("no CUDA device found"));
  return py::make_tuple(count, std::string(""));
#else
  return py::make_tuple(0, std::string("genfast._C was built without CUDA (no CUDA compiler at build time, or GENFAST_CUDA=OFF)"));
#endif
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "genfast native core: counter-based noise, fused noising and error reduction, the scoring engine";

  py::register_exception<InputError>(m, "InputError", PyExc_ValueError);

  py::enum_<DType>(m, "DType")
      .value("F32", DType::F32)
      .value("F16", DType::F16)
      .value("BF16", DType::BF16)
      .value("I64", DType::I64)
      .value("I32", DType::I32)
      .value("U8", DType::U8);

  py::class_<TensorView>(m, "TensorView")
      .def(py::init([](std::uintptr_t data, std::vector<int64_t> shape, std::vector<int64_t> strides, DType dtype,
                       int device) {
             if (shape.size() != strides.size()) throw InputError("TensorView: shape and strides differ in length");
             return TensorView{data, std::move(shape), std::move(strides), dtype, device};
           }),
           py::arg("data"), py::arg("shape"), py::arg("strides"), py::arg("dtype"), py::arg("device"))
      .def_readonly("shape", &TensorView::shape)
      .def_readonly("strides", &TensorView::strides)
      .def_readonly("device", &TensorView::device);

  py::dict info;
  info["version"] = GENFAST_VERSION;
  info["with_cuda"] = bool(GENFAST_BUILD_WITH_CUDA);
  info["cuda_archs"] = GENFAST_BUILD_CUDA_ARCHS;
  info["cuda_compiler"] = GENFAST_BUILD_CUDA_COMPILER;
  info["cxx_compiler"] = GENFAST_BUILD_CXX_COMPILER;
  info["build_type"] = GENFAST_BUILD_TYPE;
  m.attr("build_info") = info;
  m.def("cuda_status", &cuda_status, "(device count, reason when zero) as seen by this binary's CUDA runtime");

  register_noise(m);
  register_error_reduce(m);
  register_engine(m);
}
