// Each part of the native core registers its Python bindings through one of these functions; bindings.cpp
// calls them all. Keeping them separate lets each part live in its own files.
#pragma once
#include <pybind11/pybind11.h>

namespace genfast {
void register_noise(pybind11::module_& m);         // csrc/noise.cpp
void register_error_reduce(pybind11::module_& m);  // csrc/error_reduce.cpp
void register_engine(pybind11::module_& m);        // csrc/engine/engine_bindings.cpp
}  // namespace genfast
