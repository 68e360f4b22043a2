#!/usr/bin/env bash
# Incremental in-tree build of genfast._C for development: builds into build/dev and copies the module into
# src/genfast/, so that `PYTHONPATH=src pytest` uses it. GENFAST_CUDA=OFF skips the CUDA sources for speed.
set -euo pipefail
cd "$(dirname "$0")/.."
cmake -S . -B build/dev -G Ninja -DCMAKE_BUILD_TYPE=Release -DGENFAST_CUDA="${GENFAST_CUDA:-AUTO}" \
  -Dpybind11_DIR="$(python -c 'import pybind11; print(pybind11.get_cmake_dir())')" \
  -DPython_EXECUTABLE="$(command -v python)" >/dev/null
cmake --build build/dev -j "${JOBS:-2}"
# copy then rename: processes that have the old module loaded keep their mapping of it
for module in build/dev/_C*.so; do
  cp "$module" "src/genfast/.$(basename "$module").tmp"
  mv -f "src/genfast/.$(basename "$module").tmp" "src/genfast/$(basename "$module")"
done
