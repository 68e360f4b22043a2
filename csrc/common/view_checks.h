// Checks of TensorViews at the native boundary, shared by the dispatch files (csrc/noise.cpp,
// csrc/error_reduce.cpp): each failure is an InputError (ValueError in Python) naming the op and argument.
#pragma once
#include <initializer_list>
#include <string>
#include <vector>

#include "common/tensor_view.h"

namespace genfast {

inline std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

inline void check_view(const char* op, const char* name, const TensorView& v, std::initializer_list<DType> dtypes,
                       int64_t dim) {
  bool ok = false;
  for (DType d : dtypes) ok = ok || v.dtype == d;
  std::string allowed;
  for (DType d : dtypes) allowed += std::string(allowed.empty() ? "" : "/") + dtype_name(d);
  check(ok, std::string(op) + ": " + name + " must be " + allowed + ", got " + dtype_name(v.dtype));
  check(dim < 0 || v.dim() == dim, std::string(op) + ": " + name + " must have " + std::to_string(dim) +
                                       " dimensions, got shape " + shape_str(v.shape));
  check(v.is_contiguous(), std::string(op) + ": " + name + " must be contiguous");
  check(v.numel() == 0 || v.data != 0, std::string(op) + ": " + name + " has a null data pointer");
}

inline void check_size(const char* op, const char* name, const TensorView& v, int64_t axis, int64_t expected,
                       const char* what) {
  check(v.size(axis) == expected, std::string(op) + ": " + name + " has shape " + shape_str(v.shape) +
                                      " but its dimension " + std::to_string(axis) + " must be " +
                                      std::to_string(expected) + " (" + what + ")");
}

inline void check_same_device(const char* op, const TensorView& first, const char* first_name, const TensorView& v,
                              const char* name) {
  auto dev = [](int d) { return d < 0 ? std::string("cpu") : "cuda:" + std::to_string(d); };
  check(v.device == first.device, std::string(op) + ": " + name + " is on " + dev(v.device) + " but " +
                                      first_name + " is on " + dev(first.device));
}

// The number of elements of one row of a [rows, *latent] view.
inline int64_t latent_size(const TensorView& v) {
  int64_t n = 1;
  for (size_t i = 1; i < v.shape.size(); ++i) n *= v.shape[i];
  return n;
}

inline void check_same_latent(const char* op, const char* name, const TensorView& v, const char* ref_name,
                              const TensorView& ref) {
  const std::vector<int64_t> a(v.shape.begin() + 1, v.shape.end()), b(ref.shape.begin() + 1, ref.shape.end());
  check(v.dim() >= 1 && a == b, std::string(op) + ": " + name + " has shape " + shape_str(v.shape) + " but " +
                                    ref_name + " has shape " + shape_str(ref.shape) +
                                    " (they must agree after the first dimension)");
}

}  // namespace genfast
