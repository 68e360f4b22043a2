"""The GPU side of genfast.kernels, checked without a GPU: the autotuning configs kept per shape, and (slow)
ahead-of-time compilation of both kernels for sm_80 and sm_90 in a fresh interpreter without TRITON_INTERPRET.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genfast import kernels

pytestmark = pytest.mark.skipif(not kernels.available(), reason=f"{kernels.unavailable_reason()}")

REPO = Path(__file__).resolve().parents[1]


def kept_configs(lk: int, block_d: int, dtype: torch.dtype) -> list[tuple[int, int, int]]:
    from genfast.kernels.attention_core import _GPU_CONFIGS, _prune_configs

    named_args = {"Lk": lk, "q_ptr": torch.empty(0, dtype=dtype)}
    kept = _prune_configs(_GPU_CONFIGS, named_args, BLOCK_D=block_d, DOT_PRECISION="ieee")
    return [(c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"], c.num_warps) for c in kept]


def test_pruning_keeps_the_safe_config_first_and_respects_lk_and_registers() -> None:
    sd_fp16 = kept_configs(77, 64, torch.float16)
    assert sd_fp16[0] == (32, 32, 4) and len(sd_fp16) == 9  # Lk=77, head_dim 40: every config is worth timing
    assert {n for _, n, _ in kept_configs(7, 64, torch.float16)} == {32}  # no 128-key blocks for 7 keys
    wide_fp16 = kept_configs(77, 256, torch.float16)
    assert (64, 32, 8) in wide_fp16 and (128, 64, 8) not in wide_fp16 and (64, 32, 4) not in wide_fp16
    assert kept_configs(77, 256, torch.float32) == [(32, 32, 4)]  # only the fallback fits
    assert len(kept_configs(77, 64, torch.float32)) < len(sd_fp16)


COMPILE_SCRIPT = r"""
import sys
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from genfast.kernels.class_attention import _class_attention_kernel
from genfast.kernels.shared_query_attention import _shared_query_attention_kernel

def signature(kernel, dtype, constants):
    sig = {}
    for name in kernel.arg_names:
        if name in constants:
            sig[name] = "constexpr"
        elif name in ("q_ptr", "k_ptr", "v_ptr", "out_ptr"):
            sig[name] = "*" + dtype
        elif name.endswith("_ptr"):
            sig[name] = "*i64"
        elif name == "qk_scale":
            sig[name] = "fp32"
        else:
            sig[name] = "i32"
    return sig

# Ampere with the small untuned config, Hopper with a tuned one: (arch, BLOCK_M, BLOCK_N, num_warps, num_stages).
for arch, block_m, block_n, warps, stages in ((80, 32, 32, 4, 1), (90, 64, 64, 4, 2)):
    for kernel in (_class_attention_kernel, _shared_query_attention_kernel):
        for dtype, precision in (("fp16", "ieee"), ("bf16", "ieee"), ("fp32", "tf32x3")):
            constants = {"BLOCK_M": block_m, "BLOCK_N": block_n, "BLOCK_D": 64, "DOT_PRECISION": precision}
            source = ASTSource(fn=kernel, signature=signature(kernel, dtype, constants),
                               constexprs={(kernel.arg_names.index(k),): v for k, v in constants.items()})
            compiled = triton.compile(source, target=GPUTarget("cuda", arch, 32),
                                      options={"num_warps": warps, "num_stages": stages})
            ptx = compiled.asm["ptx"]
            print(arch, kernel.__name__, dtype, "mma" if ("mma.sync" in ptx or "wgmma" in ptx) else "no-mma",
                  flush=True)
"""


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="the GPU tests run the compiled kernels directly")
def test_kernels_compile_for_ampere_and_hopper_with_tensor_cores() -> None:
    pytest.importorskip("triton.backends.nvidia", reason="Triton's NVIDIA backend is not installed")
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["PYTHONPATH"] = os.pathsep.join([str(REPO), env.get("PYTHONPATH", "")])
    env["TRITON_DEFAULT_FP_FUSION"] = "1"
    result = subprocess.run([sys.executable, "-c", COMPILE_SCRIPT], capture_output=True, text=True, env=env,
                            timeout=300)
    lines = result.stdout.splitlines()
    # Triton can crash while tearing down its driver on a machine without a GPU, after the work is done.
    assert len(lines) == 12, result.stdout + result.stderr
    assert all(line.endswith(" mma") for line in lines), result.stdout
