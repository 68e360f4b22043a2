// Placeholder: bindings for error_reduce are added by the native-core work.
#include "common/registry.h"
namespace genfast {
void register_error_reduce(pybind11::module_&) {}
}  // namespace genfast
