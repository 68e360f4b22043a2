// Placeholder: bindings for the scoring engine are added by the engine work.
#include "common/registry.h"
namespace genfast {
void register_engine(pybind11::module_&) {}
}  // namespace genfast
