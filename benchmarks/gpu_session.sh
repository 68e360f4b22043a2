#!/usr/bin/env bash
# One whole GPU pass for a lent GPU machine (one call of the device tool): build with CUDA for the card, run the
# CUDA and Triton tests, the kernel microbenchmarks and the throughput benchmark (its JSON rows carry the device's
# busy fraction from torch.profiler, device_busy), and keep the logs and JSON under $OUT (or ./gpu-out). The
# machine's image has torch, triton and transformers but no diffusers: carry wheels for diffusers (and what it
# needs) in .whl/ and install them first, as the device tool's README says.
set -uo pipefail
out="${OUT:-gpu-out}"
mkdir -p "$out"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
nvidia-smi | tee "$out/nvidia-smi.txt"
GENFAST_CUDA=ON GENFAST_CUDA_ARCHS="${GENFAST_CUDA_ARCHS:-90}" ./scripts/dev-build.sh 2>&1 | tail -3
export PYTHONPATH="src:${PYTHONPATH:-}" GENFAST_REQUIRE_NATIVE=1 PYTHONUNBUFFERED=1
python3 -m genfast.info | tee "$out/info.txt"
python3 -m pytest -q -rs tests/test_noise.py tests/test_error_reduce.py tests/test_kernels_class_attention.py \
  tests/test_kernels_shared_query_attention.py tests/test_kernels_ops.py tests/test_attention_processors.py \
  tests/test_models_unet.py tests/test_loop_syncs.py tests/test_compile.py tests/test_throughput_busy.py \
  2>&1 | tee "$out/tests.txt" | tail -15
python3 -m pytest -q benchmarks/bench_kernels.py --benchmark-only --benchmark-json "$out/bench_kernels.json" \
  2>&1 | tail -25
python3 benchmarks/throughput.py --models digits,tiny-sd,sd2 --dtype bfloat16 --json "$out/throughput.json" \
  2>&1 | tee "$out/throughput.txt" | tail -12
python3 benchmarks/throughput.py --models digits,tiny-sd --compile graphs --json "$out/throughput_graphs.json" \
  2>&1 | tee "$out/throughput_graphs.txt" | tail -12
