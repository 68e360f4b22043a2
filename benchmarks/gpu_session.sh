#!/usr/bin/env bash
# One whole GPU pass for a lent GPU machine (one call of the device tool), in under 10 minutes on one H200: build
# with CUDA for the card, run the CUDA and Triton tests and the kernel microbenchmarks, then
# benchmarks/throughput.py's CUDA rows, in float16 and in bfloat16, for the bundled digits model, tiny SD and the
# real SD 1.5 and SD 2-base UNet architectures with random weights (sd15, sd2: built from their published configs,
# nothing downloaded): each row has genfast's evaluations/s against Li et al.'s loop, peak memory, a roofline line
# (effective TFLOP/s against the card's dense peak) and the device's busy fraction from torch.profiler (target
# >= 95% on digits and tiny-sd only). Last, if 100 s are left, digits under compile="graphs" (CUDA graphs).
# Everything lands in ONE JSON, $OUT/gpu_session.json (benchmarks/gpu_session_merge.py: device name, date,
# torch/CUDA/genfast versions, each step's exact command, status and seconds, the test counts, the kernel timings,
# every throughput row and a summary row per model and dtype), with the whole log beside it,
# $OUT/gpu_session.log: two files, as the device tool brings back at most 8. The steps' own logs and JSONs
# stay in $GPU_SESSION_WORK (default /tmp/gpu-session).
#
#   bash benchmarks/gpu_session.sh             # on the GPU machine (OUT=... or ./gpu-out)
#   bash benchmarks/gpu_session.sh --dry-run   # anywhere: prints the steps and their commands, runs nothing
#
# The machine's image has torch, triton and transformers but no diffusers: carry wheels for diffusers (and what it
# needs) in .whl/ and the first step installs them, as the device tool's README says.
#
# Time. A deadline guard keeps the whole script under 10 minutes whatever the estimate gets wrong: every step runs
# under `timeout` for at most its cap and never past GPU_SESSION_BUDGET_S (570 s, 9.5 minutes) less 20 s kept for
# the merge (a kill 10 s after a step's limit still leaves the merge 10 s); a step that would get less than its
# minimum is skipped; a step cut short is recorded as timed out, and throughput.py rewrites its JSON after every
# row, so the rows done survive. Within each dtype the rows run digits, tiny-sd, sd2, sd15: a cut loses sd15 first.
# The estimate, with how it is made (nothing here has run on a GPU yet: these are sizes times assumed rates):
#   setup: wheels ~10 s, nvidia-smi, CMake + 9 C++ and 2 CUDA files for sm_90 on 16 cores ~35 s, info  ~50 s
#   tests: 237 collected, most on tiny models and Triton kernels at small shapes (one config each, ~1 s of
#     compiling), one inductor compile of the bundled UNet (test_compile, ~30-60 s)              ~90 s (cap 120)
#   bench_kernels: 24 benchmarks (SD 1.x class and shared-query cross-attention at 3 levels x fp16/bf16, the
#     Triton kernel and the SDPA baseline), ~0.4 s of timing each (--benchmark-max-time=0.25); Triton's
#     autotuning compiles ~6-9 configs per kernel, shape and dtype (12), ~0.5-1 s each, into Triton's disk cache,
#     where the sd15 rows find them later                                                         ~60 s (cap 75)
#   throughput, per dtype, ~10 s of imports, then per row: Li et al.'s schedule (2,750 evaluations per digit
#     image, 10 classes; 1,525 per 16-class image), and per repeat their loop at batch 32 and at genfast's
#     batch, genfast, and the floor (genfast's batches replayed); besides, a warm-up on one image of each, one
#     untimed run of their loop on genfast's noise (the decisions check), one FLOP count, one profiled run.
#     digits: 8 images = 22,000 evaluations, 2 repeats; launch-bound at ~4 ms a forward: ~700 forwards at 32
#       and ~90 at 256 a repeat -> ~8 s timed, ~20 s the row
#     tiny-sd: 4 images = 6,100 evaluations, 2 repeats; ~200 forwards at 32, ~30 at 256 a repeat    -> ~11 s
#     sd2, sd15: 1 image = 1,525 evaluations, 1 repeat, batches of 64 (genfast's default for 4x64x64 latents);
#       a plain SD UNet forward at ~0.3 s per 256 rows (0.2-0.4 s on an H100-class card), ~1.2-1.4 ms a row at
#       batches of 32-64: ~2.1 s their loop at 32, ~1.9 s each at 64, genfast and floor -> ~8 s timed; + ~8 s
#       warm-up, ~2 s decisions, ~1 s FLOPs, ~4.5 s profiled (the one image, ~5 x 10^5 trace events), ~3 s to
#       build, and Triton autotuning of the cross-attention kernels at 3 new shapes (10-40 s)        -> ~45 s each
#     -> ~10 + 20 + 11 + 2 x 45 = ~130 s per dtype                                         ~260 s (cap 200 each)
#   total ~460 s (7.7 minutes). Slow case (0.4 s per 256 SD rows, 40 s of autotuning per SD row, tests and
#   bench_kernels at their caps): ~615 s, and the guard cuts the bf16 run's sd15 row. Fast case (0.2 s, quick
#   tests): ~360 s. Then throughput_graphs (digits under compile="graphs": whether CUDA graphs lift the
#   launch-bound bundled model's busy fraction; ~30-60 s of inductor and graph capture, ~25 s of runs and
#   imports) runs only when its whole 100 s are left: not at the estimate (~90 s are), in the fast case.
# The baseline (their loop) runs in float16 in both dtypes' rows, as their code does on a GPU.
set -uo pipefail
cd "$(dirname "$0")/.."
dry=0
case "${1:-}" in
  --dry-run) dry=1 ;;
  "") ;;
  *) echo "usage: $0 [--dry-run]" >&2; exit 2 ;;
esac
out="${OUT:-gpu-out}"
work="${GPU_SESSION_WORK:-/tmp/gpu-session}"
budget="${GPU_SESSION_BUDGET_S:-570}"
reserve=20  # seconds kept for the merge
log="$out/gpu_session.log"
if (( ! dry )); then
  mkdir -p "$out" && rm -rf "$work" && mkdir -p "$work" && : >"$log" || exit 1
  command -v python >/dev/null || {  # scripts/dev-build.sh calls `python`; the image may have python3 alone
    mkdir -p "$work/bin" && ln -sf "$(command -v python3)" "$work/bin/python" && export PATH="$work/bin:$PATH"; }
fi

# step NAME CAP MIN_LEFT COMMAND: run COMMAND (bash) for at most CAP seconds and never past the budget, output in
# $work/NAME.log and the session log; skipped when under MIN_LEFT seconds are left. Recorded in $work/steps.tsv.
step() {
  local name="$1" cap="$2" min_left="$3" cmd="$4"
  if (( dry )); then
    printf '[%s] at most %s s (skipped with under %s s left):\n  %s\n' "$name" "$cap" "$min_left" "$cmd"
    return 0
  fi
  printf '%s' "$cmd" >"$work/$name.cmd"
  local left=$(( budget - reserve - SECONDS ))
  if (( left < min_left )); then
    printf '%s\t%s\t\t\t0\tskipped: %s s left of the budget\n' "$name" "$cap" "$left" >>"$work/steps.tsv"
    printf '== %s: skipped (%s s left)\n' "$name" "$left" | tee -a "$log"
    return 0
  fi
  local limit=$(( cap < left ? cap : left )) start=$SECONDS rc status
  printf '== %s (at most %s s, at %s s): %s\n' "$name" "$limit" "$SECONDS" "$cmd" | tee -a "$log"
  timeout -k 10 "$limit" bash -o pipefail -c "$cmd" </dev/null 2>&1 | tee "$work/$name.log" >>"$log"
  rc=${PIPESTATUS[0]}
  case "$rc" in
    0) status=ok ;;
    124|137) status="timed out after $limit s" ;;
    *) status="failed (rc $rc)" ;;
  esac
  printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$name" "$cap" "$limit" "$rc" "$(( SECONDS - start ))" "$status" \
    >>"$work/steps.tsv"
  printf -- '-> %s: %s in %s s\n' "$name" "$status" "$(( SECONDS - start ))" | tee -a "$log"
  tail -n 6 "$work/$name.log"
}

w="$work"  # the commands below name the work folder as it is
step wheels 60 30 "if ls .whl/*.whl >/dev/null 2>&1; then python3 -m pip install -q --no-index --no-deps \
--no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl; else echo 'no .whl/: nothing to install'; fi"
[[ -d /tmp/site ]] && export PYTHONPATH="/tmp/site"
export PYTHONPATH="src${PYTHONPATH:+:$PYTHONPATH}" GENFAST_REQUIRE_NATIVE=1 PYTHONUNBUFFERED=1
step nvidia-smi 20 10 "nvidia-smi | tee $w/nvidia-smi.txt"
step build 150 60 "GENFAST_CUDA=ON GENFAST_CUDA_ARCHS=\${GENFAST_CUDA_ARCHS:-90} JOBS=\$(nproc) ./scripts/dev-build.sh"
step info 30 10 "python3 -m genfast.info | tee $w/info.txt"
step tests 120 60 "python3 -m pytest -q -rs -p no:cacheprovider --junitxml=$w/tests.xml tests/test_noise.py \
tests/test_error_reduce.py tests/test_kernels_class_attention.py tests/test_kernels_shared_query_attention.py \
tests/test_kernels_ops.py tests/test_attention_processors.py tests/test_models_unet.py tests/test_loop_syncs.py \
tests/test_compile.py tests/test_throughput_busy.py"
step bench_kernels 75 30 "python3 -m pytest -q -p no:cacheprovider benchmarks/bench_kernels.py --benchmark-only \
--benchmark-max-time=0.25 --benchmark-json $w/bench_kernels.json"
for dtype in float16 bfloat16; do
  step "throughput_$dtype" 200 30 "python3 benchmarks/throughput.py --device cuda --dtype $dtype \
--models digits,tiny-sd,sd2,sd15 --images sd2=1,sd15=1 --repeats 2,sd2=1,sd15=1 --json $w/throughput_$dtype.json"
done
step throughput_graphs 100 100 "python3 benchmarks/throughput.py --device cuda --models digits --compile graphs \
--repeats 2 --json $w/throughput_graphs.json"

merge=(python3 benchmarks/gpu_session_merge.py "$w" "$out/gpu_session.json" --budget-s "$budget")
if (( dry )); then
  printf '[merge] always:\n  %s --elapsed-s SECONDS\n' "${merge[*]}"
  printf 'outputs: %s/gpu_session.json (the one JSON) and %s; budget %s s\n' "$out" "$log" "$budget"
  exit 0
fi
"${merge[@]}" --elapsed-s "$SECONDS" 2>&1 | tee -a "$log"
