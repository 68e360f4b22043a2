// CUDA launchers of the native kernels (arguments in csrc/cpu/kernels.h). Each launches on `stream` (a
// cudaStream_t passed from Python as an integer) on the device of its tensors, and raises RuntimeError with
// the CUDA error message when a launch fails.
#pragma once
#include <cstdint>

#include "cpu/kernels.h"

namespace genfast::cuda {
void noise_noising(const NoiseNoisingArgs& a, std::uintptr_t stream);
void noise_bits(const NoiseBitsArgs& a, std::uintptr_t stream);
void error_reduce(const ErrorReduceArgs& a, std::uintptr_t stream);
}  // namespace genfast::cuda
