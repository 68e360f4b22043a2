// A tensor as it crosses from Python into the native core: pointer, shape, strides (in elements), dtype and
// device. The core never includes PyTorch; the Python layer (genfast/ops/_tensors.py) checks the tensors and
// builds these views.
#pragma once
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace genfast {

enum class DType : int { F32 = 0, F16 = 1, BF16 = 2, I64 = 3, I32 = 4, U8 = 5 };

inline const char* dtype_name(DType d) {
  switch (d) {
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::I64: return "int64";
    case DType::I32: return "int32";
    case DType::U8: return "uint8";
  }
  return "unknown";
}

struct TensorView {
  std::uintptr_t data = 0;
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;  // in elements
  DType dtype = DType::F32;
  int device = -1;  // -1: CPU, >= 0: CUDA device index

  int64_t numel() const {
    int64_t n = 1;
    for (auto s : shape) n *= s;
    return n;
  }
  int64_t dim() const { return static_cast<int64_t>(shape.size()); }
  int64_t size(int64_t i) const { return shape.at(static_cast<size_t>(i < 0 ? i + dim() : i)); }
  bool is_contiguous() const {
    int64_t expected = 1;
    for (int64_t i = dim() - 1; i >= 0; --i) {
      if (shape[i] != 1 && strides[i] != expected) return false;
      expected *= shape[i];
    }
    return true;
  }
  bool is_cuda() const { return device >= 0; }
  template <typename T>
  T* ptr() const { return reinterpret_cast<T*>(data); }
};

// Errors raised here become ValueError in Python (see bindings.cpp).
struct InputError : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

inline void check(bool ok, const std::string& msg) {
  if (!ok) throw InputError(msg);
}

}  // namespace genfast
