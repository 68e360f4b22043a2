"""The Triton building blocks both cross-attention kernels share: tile loads and stores, the online-softmax
attention of one query tile to one class's keys and values, and the launch configurations.

Imports Triton: only the kernel modules import this, lazily, after genfast.kernels checked availability.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import triton
import triton.language as tl
from torch.library import wrap_triton

from genfast.kernels.availability import interpreting

LOG2_E = 1.4426950408889634

# Autotuned on GPU. The cached text keys are short (77 tokens), so one query tile sees all of them in 1-3
# blocks: the work is a q read, two small dots and an output write per tile, memory-bound at large Nq.
# The small config comes first: it fits every GPU (registers and shared memory, even float32 with head_dim
# 160) and runs the small problems that are not worth autotuning.
SMALL_CONFIG = triton.Config({"BLOCK_M": 32, "BLOCK_N": 32}, num_warps=4, num_stages=1)
_GPU_CONFIGS = [SMALL_CONFIG] + [
    triton.Config({"BLOCK_M": block_m, "BLOCK_N": block_n}, num_warps=warps, num_stages=2)
    for block_m, block_n, warps in [
        (64, 32, 4), (64, 64, 4), (64, 128, 4), (64, 32, 8), (64, 64, 8), (128, 32, 4), (128, 64, 8), (128, 128, 8),
    ]
]
# Fewer queries than this per row run SMALL_CONFIG without autotuning (each new shape would cost seconds of
# compiling and timing for a launch of microseconds); Stable Diffusion's large cross-attentions are tuned.
AUTOTUNE_MIN_QUERIES = 256
# The interpreter runs one small config (16 is the smallest tile tl.dot takes); small blocks make the
# tests cover several query tiles and several key blocks (the online-softmax rescaling) on tiny shapes.
INTERPRETER_META = {"BLOCK_M": 16, "BLOCK_N": 32}


def _prune_configs(configs: list[triton.Config], named_args: dict[str, Any], **kwargs: Any) -> list[triton.Config]:
    """Keep SMALL_CONFIG, plus those whose key block is not much longer than Lk and whose float32 registers
    per thread (accumulator and scores, BLOCK_M * (BLOCK_D + BLOCK_N) / threads) stay within a budget that
    compiled without spills for sm_90 (96; 64 for float32 inputs, whose 3xTF32 dots need about twice the
    registers). Configs that still exceed shared memory are skipped by the autotuner itself."""
    key_cap = max(32, triton.next_power_of_2(int(named_args["Lk"])))
    budget = 64 if named_args["q_ptr"].element_size() == 4 else 96
    block_d = kwargs["BLOCK_D"]

    def fits(c: triton.Config) -> bool:
        block_m, block_n = c.kwargs["BLOCK_M"], c.kwargs["BLOCK_N"]
        return block_n <= key_cap and block_m * (block_d + block_n) <= budget * 32 * c.num_warps

    return [configs[0]] + [c for c in configs[1:] if fits(c)]


def autotuned(kernel: Callable) -> tuple[Callable, Callable]:
    """The GPU launchers of a cross-attention kernel: SMALL_CONFIG alone (no tuning), and autotuned per
    (Nq, Lk, head_dim, dtypes); both are Triton autotuners, so wrap_triton carries their launch configs."""
    small = triton.autotune(configs=[SMALL_CONFIG], key=[])(kernel)
    tuned = triton.autotune(
        configs=_GPU_CONFIGS, key=["Nq", "Lk", "D"], prune_configs_by={"early_config_prune": _prune_configs}
    )(kernel)
    return small, tuned


def dot_precision(dtype: torch.dtype) -> str:
    """tl.dot input precision: float32 on NVIDIA uses 3xTF32 (tensor cores, ~1e-6 relative error, unlike TF32's
    ~1e-3; exact fp32 FMA dots spill registers at useful tile sizes); elsewhere full fp32 ("ieee"). Float16 and
    bfloat16 operands ignore it."""
    if dtype == torch.float32 and not interpreting() and torch.version.hip is None:
        return "tf32x3"
    return "ieee"


def launch(kernel: Callable, launchers: tuple[Callable, Callable], programs: int, nq: int, args: tuple,
           head_dim: int, dtype: torch.dtype) -> None:
    """Launch over a (programs, query tiles) grid through torch.library.wrap_triton (so torch.compile sees the
    kernel): the interpreter config on CPU, SMALL_CONFIG for small Nq, else autotuned."""
    meta = {"BLOCK_D": max(16, triton.next_power_of_2(head_dim)), "DOT_PRECISION": dot_precision(dtype)}
    if interpreting():
        grid = (programs, triton.cdiv(nq, INTERPRETER_META["BLOCK_M"]))
        wrap_triton(kernel)[grid](*args, **meta, **INTERPRETER_META)
        return
    small, tuned = launchers
    wrap_triton(small if nq < AUTOTUNE_MIN_QUERIES else tuned)[
        lambda m: (programs, triton.cdiv(nq, m["BLOCK_M"]))](*args, **meta)


@triton.jit
def load_query_tile(base, offs_m, offs_d, stride_m, stride_d, Nq, D):
    """The [BLOCK_M, BLOCK_D] query tile at base, zero outside Nq x D."""
    mask = (offs_m[:, None] < Nq) & (offs_d[None, :] < D)
    return tl.load(base + offs_m[:, None] * stride_m + offs_d[None, :] * stride_d, mask=mask, other=0.0)


@triton.jit
def store_output_tile(base, tile, offs_m, offs_d, stride_m, stride_d, Nq, D):
    """Store the [BLOCK_M, BLOCK_D] float32 tile at base in the output's dtype, inside Nq x D only."""
    mask = (offs_m[:, None] < Nq) & (offs_d[None, :] < D)
    tl.store(base + offs_m[:, None] * stride_m + offs_d[None, :] * stride_d,
             tile.to(base.dtype.element_ty), mask=mask)


@triton.jit
def attend_one_class(q, k_base, v_base, stride_kn, stride_kd, stride_vn, stride_vd, Lk, D, qk_scale,
                     BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
                     DOT_PRECISION: tl.constexpr):
    """softmax(q k^T * scale) v for one query tile and one class's [Lk, D] keys and values, in float32.

    Online softmax over blocks of BLOCK_N keys (so any Lk works); qk_scale is scale * log2(e), for exp2.
    Every block holds at least one real key, so the running maximum is finite after the first block.
    DOT_PRECISION only affects float32 operands (see :func:`dot_precision`).
    """
    offs_n = tl.arange(0, BLOCK_N)
    offs_d = tl.arange(0, BLOCK_D)
    d_mask = offs_d < D
    m_i = tl.full([BLOCK_M], float("-inf"), tl.float32)
    l_i = tl.zeros([BLOCK_M], tl.float32)
    acc = tl.zeros([BLOCK_M, BLOCK_D], tl.float32)
    for start in range(0, Lk, BLOCK_N):
        n = start + offs_n
        n_mask = n < Lk
        k_t = tl.load(k_base + n[None, :] * stride_kn + offs_d[:, None] * stride_kd,
                      mask=n_mask[None, :] & d_mask[:, None], other=0.0)
        s = tl.dot(q, k_t, input_precision=DOT_PRECISION) * qk_scale
        s = tl.where(n_mask[None, :], s, float("-inf"))
        m_new = tl.maximum(m_i, tl.max(s, 1))
        alpha = tl.exp2(m_i - m_new)
        p = tl.exp2(s - m_new[:, None])
        l_i = l_i * alpha + tl.sum(p, 1)
        v = tl.load(v_base + n[:, None] * stride_vn + offs_d[None, :] * stride_vd,
                    mask=n_mask[:, None] & d_mask[None, :], other=0.0)
        acc = tl.dot(p.to(v.dtype), v, acc * alpha[:, None], input_precision=DOT_PRECISION)
        m_i = m_new
    return acc / l_i[:, None]
