"""Microbenchmarks of the Triton cross-attention kernels against the plain PyTorch path (CUDA only).

Run: ``pytest benchmarks/bench_kernels.py --benchmark-only`` (never part of the test suite). Shapes are
Stable Diffusion 1.x cross-attention at 512x512 (64x64 latents): Nq = 4096 / 1024 / 256 query tokens with
8 heads of 40 / 80 / 160 dims, 77 text tokens, 16 classes, and a batch of 2 samples x 16 classes = 32 rows.
The baseline is what diffusers does with repeated prompt embeddings: keys/values gathered per row, then SDPA.
"""
from __future__ import annotations

from typing import Callable

import pytest
import torch
import torch.nn.functional as F

from genfast import kernels

if not torch.cuda.is_available() or not kernels.available():
    pytest.skip("the kernel benchmarks need a CUDA device and Triton", allow_module_level=True)

SAMPLES, CLASSES, HEADS, TEXT_TOKENS = 2, 16, 8, 77
LEVELS = [(4096, 40), (1024, 80), (256, 160)]
DTYPES = [torch.float16, torch.bfloat16]


def _inputs(nq: int, head_dim: int, dtype: torch.dtype) -> dict[str, torch.Tensor]:
    gen = torch.Generator(device="cuda").manual_seed(0)
    rows = SAMPLES * CLASSES

    def randn(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=gen, device="cuda", dtype=dtype)

    return {
        "q_rows": randn(rows, nq, HEADS, head_dim),
        "q_samples": randn(SAMPLES, nq, HEADS, head_dim),
        "k": randn(CLASSES, TEXT_TOKENS, HEADS, head_dim),
        "v": randn(CLASSES, TEXT_TOKENS, HEADS, head_dim),
        "sample_offsets": torch.arange(0, rows + 1, CLASSES, device="cuda"),
        "class_index": torch.arange(CLASSES, device="cuda").repeat(SAMPLES),
    }


def _sdpa_repeated(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, class_index: torch.Tensor) -> torch.Tensor:
    """Baseline: per-row keys/values gathered (as repeated prompt embeddings give), SDPA in [B, H, N, D]."""
    out = F.scaled_dot_product_attention(
        q.transpose(1, 2), k[class_index].transpose(1, 2), v[class_index].transpose(1, 2)
    )
    return out.transpose(1, 2)


def _timed(benchmark, fn: Callable[[], torch.Tensor]) -> None:
    fn()  # compile and autotune outside the timing
    torch.cuda.synchronize()

    def run() -> None:
        fn()
        torch.cuda.synchronize()

    benchmark(run)


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("nq, head_dim", LEVELS, ids=[f"nq{n}-d{d}" for n, d in LEVELS])
@pytest.mark.parametrize("impl", ["triton", "sdpa_repeated"])
def test_class_cross_attention(benchmark, impl: str, nq: int, head_dim: int, dtype: torch.dtype) -> None:
    x = _inputs(nq, head_dim, dtype)
    benchmark.group = f"class rows, nq={nq}, d={head_dim}, {dtype}"
    if impl == "triton":
        _timed(benchmark, lambda: kernels.class_cross_attention(
            x["q_rows"], x["k"], x["v"], x["class_index"], head_dim**-0.5, check_indices=False))
    else:
        _timed(benchmark, lambda: _sdpa_repeated(x["q_rows"], x["k"], x["v"], x["class_index"]))


@pytest.mark.parametrize("dtype", DTYPES, ids=str)
@pytest.mark.parametrize("nq, head_dim", LEVELS, ids=[f"nq{n}-d{d}" for n, d in LEVELS])
@pytest.mark.parametrize("impl", ["triton_shared", "sdpa_repeated"])
def test_shared_query_cross_attention(benchmark, impl: str, nq: int, head_dim: int, dtype: torch.dtype) -> None:
    x = _inputs(nq, head_dim, dtype)
    benchmark.group = f"shared query, nq={nq}, d={head_dim}, {dtype}"
    if impl == "triton_shared":
        _timed(benchmark, lambda: kernels.shared_query_cross_attention(
            x["q_samples"], x["k"], x["v"], x["sample_offsets"], x["class_index"], head_dim**-0.5,
            check_indices=False))
    else:
        _timed(benchmark, lambda: _sdpa_repeated(
            x["q_samples"].repeat_interleave(CLASSES, dim=0), x["k"], x["v"], x["class_index"]))
