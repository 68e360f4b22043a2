"""genfast.kernels.class_cross_attention against a plain float64 PyTorch reference (CPU: Triton interpreter)."""
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


def reference(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, class_index: torch.Tensor,
              scale: float) -> torch.Tensor:
    """Plain cross-attention in float64: gather each row's class keys/values, softmax over the keys."""
    kb = k.double()[class_index]
    vb = v.double()[class_index]
    scores = torch.einsum("bmhd,bnhd->bhmn", q.double(), kb) * scale
    return torch.einsum("bhmn,bnhd->bmhd", scores.softmax(dim=-1), vb)


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> float:
    return ((out.double() - ref).abs().max() / ref.abs().max()).item()


def make_inputs(rows: int, nq: int, heads: int, head_dim: int, classes: int, lk: int, dtype: torch.dtype,
                seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    q = torch.randn(rows, nq, heads, head_dim, generator=gen)
    k = torch.randn(classes, lk, heads, head_dim, generator=gen)
    v = torch.randn(classes, lk, heads, head_dim, generator=gen)
    return q.to(DEVICE, dtype), k.to(DEVICE, dtype), v.to(DEVICE, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize(
    "nq, heads, head_dim, lk",
    [(5, 1, 8, 7), (33, 2, 40, 77), (17, 3, 24, 33)],
    ids=["tiny-d8", "sd-text-77", "odd-d24"],
)
def test_matches_reference(nq: int, heads: int, head_dim: int, lk: int, dtype: torch.dtype) -> None:
    q, k, v = make_inputs(5, nq, heads, head_dim, 3, lk, dtype)
    class_index = torch.tensor([2, 0, 1, 2, 2], device=DEVICE)
    scale = head_dim**-0.5
    out = torch.full_like(q, float("nan"))  # poisoned: an element the kernel misses fails the comparison
    result = kernels.class_cross_attention(q, k, v, class_index, scale, out=out)
    assert result is out
    assert relative_error(out, reference(q, k, v, class_index, scale)) < TOLERANCE[dtype]


@pytest.mark.slow
@pytest.mark.skipif(DEVICE == "cpu", reason="the interpreter runs one fixed config; GPUs autotune from Nq >= 256")
@pytest.mark.parametrize("dtype", DTYPES)
def test_autotuned_path_matches_reference(dtype: torch.dtype) -> None:
    q, k, v = make_inputs(5, 300, 2, 40, 3, 77, dtype, seed=4)
    class_index = torch.tensor([2, 0, 1, 2, 2], device=DEVICE)
    out = torch.full_like(q, float("nan"))
    kernels.class_cross_attention(q, k, v, class_index, 40**-0.5, out=out)
    assert relative_error(out, reference(q, k, v, class_index, 40**-0.5)) < TOLERANCE[dtype]


def test_new_output_is_contiguous_in_q_dtype() -> None:
    q, k, v = make_inputs(2, 5, 2, 16, 3, 7, torch.float16, seed=1)
    class_index = torch.tensor([1, 0], device=DEVICE)
    out = kernels.class_cross_attention(q, k, v, class_index, 0.7)
    assert out.dtype == torch.float16 and out.shape == q.shape and out.is_contiguous()
    assert relative_error(out, reference(q, k, v, class_index, 0.7)) < TOLERANCE[torch.float16]


def test_strided_inputs_and_output() -> None:
    """q from a [B, H, Nq, D] buffer, k/v slices of a packed [C, Lk, 2, H, D] projection, out a strided view."""
    gen = torch.Generator().manual_seed(2)
    rows, nq, heads, head_dim, classes, lk = 3, 18, 2, 12, 2, 9
    q = torch.randn(rows, heads, nq, head_dim, generator=gen).to(DEVICE).permute(0, 2, 1, 3)
    kv = torch.randn(classes, lk, 2, heads, head_dim, generator=gen).to(DEVICE)
    k, v = kv[:, :, 0], kv[:, :, 1]
    out_buffer = torch.full((rows, heads, nq, head_dim), float("nan"), device=DEVICE)
    out = out_buffer.permute(0, 2, 1, 3)
    assert not (q.is_contiguous() or k.is_contiguous() or out.is_contiguous())
    class_index = torch.tensor([1, 1, 0], device=DEVICE)
    kernels.class_cross_attention(q, k, v, class_index, 0.4, out=out)
    assert relative_error(out, reference(q, k, v, class_index, 0.4)) < TOLERANCE[torch.float32]


def test_large_logits_are_stable() -> None:
    """Scores of order 1e3 overflow exp() without the running maximum; the online softmax must handle them."""
    q, k, v = make_inputs(2, 6, 1, 16, 2, 40, torch.float32, seed=3)
    class_index = torch.tensor([0, 1], device=DEVICE)
    out = kernels.class_cross_attention(q * 30.0, k * 30.0, v, class_index, 1.0)
    ref = reference(q * 30.0, k * 30.0, v, class_index, 1.0)
    assert torch.isfinite(out).all()
    assert relative_error(out, ref) < TOLERANCE[torch.float32]


def test_empty_batch() -> None:
    q, k, v = make_inputs(0, 5, 1, 8, 2, 7, torch.float32)
    out = kernels.class_cross_attention(q, k, v, torch.zeros(0, dtype=torch.int64, device=DEVICE), 1.0)
    assert out.shape == (0, 5, 1, 8)


def _valid() -> dict:
    q, k, v = make_inputs(2, 4, 2, 8, 3, 5, torch.float32)
    return {"q": q, "k": k, "v": v, "class_index": torch.tensor([0, 2], device=DEVICE), "scale": 0.5}


@pytest.mark.parametrize(
    "change, error, match",
    [
        ({"q": "not a tensor"}, TypeError, "q must be a torch.Tensor"),
        ({"q": torch.zeros(2, 4, 16)}, ValueError, "q must be 4-D"),
        ({"q": torch.zeros(2, 4, 2, 8, dtype=torch.float64)}, TypeError, "q must be float32"),
        ({"k": torch.zeros(3, 5, 2, 8, dtype=torch.float16)}, TypeError, "same dtype"),
        ({"v": torch.zeros(3, 6, 2, 8)}, ValueError, "k and v must have the same shape"),
        ({"k": torch.zeros(3, 5, 1, 8), "v": torch.zeros(3, 5, 1, 8)}, ValueError, "same heads and head_dim"),
        ({"k": torch.zeros(3, 0, 2, 8), "v": torch.zeros(3, 0, 2, 8)}, ValueError, "at least one"),
        ({"q": torch.zeros(2, 4, 2, 300), "k": torch.zeros(3, 5, 2, 300), "v": torch.zeros(3, 5, 2, 300)},
         ValueError, "head_dim <= 256"),
        ({"class_index": [0, 2]}, TypeError, "class_index must be a torch.Tensor"),
        ({"class_index": torch.tensor([0, 2], dtype=torch.int32)}, TypeError, "class_index must be int64"),
        ({"class_index": torch.tensor([0, 1, 2])}, ValueError, r"class_index must have shape \[2\]"),
        ({"class_index": torch.tensor([0, 3])}, ValueError, r"class_index must be in \[0, 3\)"),
        ({"class_index": torch.tensor([-1, 0])}, ValueError, r"class_index must be in \[0, 3\)"),
        ({"scale": True}, TypeError, "scale must be a real number"),
        ({"scale": float("inf")}, ValueError, "scale must be finite"),
        ({"out": torch.zeros(2, 4, 2, 8, dtype=torch.float16)}, TypeError, "out must have q's dtype"),
        ({"out": torch.zeros(2, 4, 2, 9)}, ValueError, "out must have shape"),
    ],
)
def test_bad_inputs_raise(change: dict, error: type, match: str) -> None:
    args = _valid()
    args.update({name: value.to(DEVICE) if isinstance(value, torch.Tensor) else value
                 for name, value in change.items()})
    with pytest.raises(error, match=match):
        kernels.class_cross_attention(**args)


@pytest.mark.skipif(DEVICE == "cpu", reason="needs a CUDA device to put one input elsewhere")
def test_mixed_devices_raise() -> None:
    args = _valid()
    args["class_index"] = args["class_index"].cpu()
    with pytest.raises(ValueError, match="class_index must be on"):
        kernels.class_cross_attention(**args)
