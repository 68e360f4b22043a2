// Placeholder: bindings for noise are added by the native-core work.
#include "common/registry.h"
namespace genfast {
void register_noise(pybind11::module_&) {}
}  // namespace genfast
