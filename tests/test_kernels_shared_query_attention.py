"""genfast.kernels.shared_query_cross_attention against a plain float64 PyTorch reference, and against
class_cross_attention on the query repeated per row (the plain path it replaces). CPU: Triton interpreter."""
from __future__ import annotations

import pytest
import torch

from genfast import kernels

pytestmark = pytest.mark.skipif(not kernels.available(), reason=f"{kernels.unavailable_reason()}")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
# Relative error (max abs error / max abs reference) allowed per input dtype.
TOLERANCE = {torch.float32: 1e-5, torch.float16: 1e-2, torch.bfloat16: 2e-2}
BF16_INTERPRETER = (
    "Triton 3.9's interpreter multiplies bfloat16 tl.dot operands as their raw uint16 bits; bf16 runs on GPU only"
)
DTYPES = [
    pytest.param(torch.float32, id="fp32"),
    pytest.param(torch.float16, id="fp16"),
    pytest.param(torch.bfloat16, id="bf16", marks=pytest.mark.skipif(DEVICE == "cpu", reason=BF16_INTERPRETER)),
]
# Four samples over five rows: one row, no rows, three rows, one row.
OFFSETS = [0, 1, 1, 4, 5]
CLASS_INDEX = [2, 0, 1, 2, 1]


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sample_offsets: list[int],
              class_index: list[int], scale: float) -> torch.Tensor:
    """Plain float64 attention, one output row at a time: row b of sample s uses q[s] and class class_index[b]."""
    rows = []
    for s in range(len(sample_offsets) - 1):
        for b in range(sample_offsets[s], sample_offsets[s + 1]):
            c = class_index[b]
            scores = torch.einsum("mhd,nhd->hmn", q[s].double(), k[c].double()) * scale
            rows.append(torch.einsum("hmn,nhd->mhd", scores.softmax(dim=-1), v[c].double()))
    return torch.stack(rows)


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out.double() - ref).abs().max() / ref.abs().max()).item()


def make_inputs(samples: int, nq: int, heads: int, head_dim: int, classes: int, lk: int, dtype: torch.dtype,
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(samples, nq, heads, head_dim, generator=gen)
    k = torch.randn(classes, lk, heads, head_dim, generator=gen)
    v = torch.randn(classes, lk, heads, head_dim, generator=gen)
    return q.to(DEVICE, dtype), k.to(DEVICE, dtype), v.to(DEVICE, dtype)


def as_tensor(values: list[int]) -> torch.Tensor:
    return torch.tensor(values, dtype=torch.int64, device=DEVICE)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "nq, heads, head_dim, lk",
    [(5, 1, 8, 7), (33, 2, 40, 77), (17, 3, 24, 33)],
    ids=["tiny-d8", "sd-text-77", "odd-d24"],
)
def test_matches_reference(nq: int, heads: int, head_dim: int, lk: int, dtype: torch.dtype) -> None:
    q, k, v = make_inputs(len(OFFSETS) - 1, nq, heads, head_dim, 3, lk, dtype)
    scale = head_dim**-0.5
    out = torch.full((len(CLASS_INDEX), nq, heads, head_dim), float("nan"), dtype=dtype, device=DEVICE)
    result = kernels.shared_query_cross_attention(q, k, v, as_tensor(OFFSETS), as_tensor(CLASS_INDEX), scale,
                                                  out=out)
    assert result is out
    assert relative_error(out, reference(q, k, v, OFFSETS, CLASS_INDEX, scale)) < TOLERANCE[dtype]


@pytest.mark.slow
@pytest.mark.skipif(DEVICE == "cpu", reason="the interpreter runs one fixed config; GPUs autotune from Nq >= 256")
@pytest.mark.parametrize("dtype", DTYPES)
def test_autotuned_path_matches_reference(dtype: torch.dtype) -> None:
    q, k, v = make_inputs(len(OFFSETS) - 1, 300, 2, 40, 3, 77, dtype, seed=4)
    out = torch.full((len(CLASS_INDEX), 300, 2, 40), float("nan"), dtype=dtype, device=DEVICE)
    kernels.shared_query_cross_attention(q, k, v, as_tensor(OFFSETS), as_tensor(CLASS_INDEX), 40**-0.5, out=out)
    assert relative_error(out, reference(q, k, v, OFFSETS, CLASS_INDEX, 40**-0.5)) < TOLERANCE[dtype]


@pytest.mark.parametrize("dtype", DTYPES)
def test_equals_class_attention_on_repeated_query(dtype: torch.dtype) -> None:
    """Sharing the query is exact: same result as the per-row kernel on q repeated for every row."""
    q, k, v = make_inputs(len(OFFSETS) - 1, 20, 2, 16, 3, 45, dtype, seed=1)
    offsets, class_index = as_tensor(OFFSETS), as_tensor(CLASS_INDEX)
    shared = kernels.shared_query_cross_attention(q, k, v, offsets, class_index, 0.3)
    repeated = q.repeat_interleave(offsets.diff(), dim=0)
    per_row = kernels.class_cross_attention(repeated, k, v, class_index, 0.3)
    assert shared.dtype == dtype and shared.is_contiguous()
    # Same arithmetic per row; on GPU the two kernels may be autotuned to different block sizes.
    torch.testing.assert_close(shared, per_row, rtol=TOLERANCE[dtype] / 10, atol=TOLERANCE[dtype] / 10)


def test_strided_inputs_and_output() -> None:
    """q from a [S, H, Nq, D] buffer, k/v slices of a packed [C, Lk, 2, H, D] projection, out a strided view."""
    gen = torch.Generator().manual_seed(2)
    nq, heads, head_dim, classes, lk = 18, 2, 12, 3, 9
    samples, rows = len(OFFSETS) - 1, len(CLASS_INDEX)
    q = torch.randn(samples, heads, nq, head_dim, generator=gen).to(DEVICE).permute(0, 2, 1, 3)
    kv = torch.randn(classes, lk, 2, heads, head_dim, generator=gen).to(DEVICE)
    k, v = kv[:, :, 0], kv[:, :, 1]
    out = torch.full((rows, heads, nq, head_dim), float("nan"), device=DEVICE).permute(0, 2, 1, 3)
    assert not (q.is_contiguous() or k.is_contiguous() or out.is_contiguous())
    kernels.shared_query_cross_attention(q, k, v, as_tensor(OFFSETS), as_tensor(CLASS_INDEX), 0.4, out=out)
    assert relative_error(out, reference(q, k, v, OFFSETS, CLASS_INDEX, 0.4)) < TOLERANCE[torch.float32]


def test_no_rows() -> None:
    q, k, v = make_inputs(2, 5, 1, 8, 2, 7, torch.float32)
    out = kernels.shared_query_cross_attention(q, k, v, as_tensor([0, 0, 0]), as_tensor([]), 1.0)
    assert out.shape == (0, 5, 1, 8)


def _valid() -> dict:
    q, k, v = make_inputs(2, 4, 2, 8, 3, 5, torch.float32)
    return {"q": q, "k": k, "v": v, "sample_offsets": as_tensor([0, 1, 3]), "class_index": as_tensor([0, 2, 1]),
            "scale": 0.5}


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"sample_offsets": [0, 1, 3]}, TypeError, "sample_offsets must be a torch.Tensor"),
        ({"sample_offsets": torch.tensor([0, 1, 3], dtype=torch.int32)}, TypeError, "sample_offsets must be int64"),
        ({"sample_offsets": torch.tensor([0, 3])}, ValueError, r"sample_offsets must have shape \[3\]"),
        ({"sample_offsets": torch.tensor([1, 2, 3])}, ValueError, "must start at 0 and end at the number of rows 3"),
        ({"sample_offsets": torch.tensor([0, 1, 2])}, ValueError, "must start at 0 and end at the number of rows 3"),
        ({"sample_offsets": torch.tensor([0, 4, 3])}, ValueError, "sample_offsets must be non-decreasing"),
        ({"class_index": torch.tensor([[0, 2, 1]])}, ValueError, "class_index must have 1-D"),
        ({"class_index": torch.tensor([0, 2, 3])}, ValueError, r"class_index must be in \[0, 3\)"),
        ({"q": torch.zeros(2, 4, 2, 16)}, ValueError, "same heads and head_dim"),
        ({"scale": "0.5"}, TypeError, "scale must be a real number"),
        ({"out": torch.zeros(2, 4, 2, 8)}, ValueError, r"out must have shape \(3, 4, 2, 8\)"),
    ],
)
def test_bad_inputs_raise(change: dict, error: type, match: str) -> None:
    args = _valid()
    args.update({name: value.to(DEVICE) if isinstance(value, torch.Tensor) else value
                 for name, value in change.items()})
    with pytest.raises(error, match=match):
        kernels.shared_query_cross_attention(**args)
