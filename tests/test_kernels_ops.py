"""torch.library.opcheck on every Triton op of genfast.kernels (the C++ ops are checked in test_noise.py and
test_error_reduce.py): schema, autograd registration and the fake implementations everywhere; on a GPU also the
AOT-dispatch tracing that torch.compile relies on (the CPU interpreter's kernels cannot be traced by wrap_triton)."""
from __future__ import annotations

import pytest
import torch

from genfast import kernels

pytestmark = pytest.mark.skipif(not kernels.available(), reason=f"{kernels.unavailable_reason()}")

DEVICE = "cuda" if torch.cuda.is_available() else "cpu"
ALL_CHECKS = ("test_schema", "test_autograd_registration", "test_faketensor", "test_aot_dispatch_dynamic")
CHECKS = ALL_CHECKS if DEVICE == "cuda" else ALL_CHECKS[:3]


def inputs() -> dict[str, torch.Tensor]:
    gen = torch.Generator().manual_seed(0)
    q = torch.randn(5, 7, 2, 8, generator=gen).to(DEVICE)  # 5 rows (or 2 samples for the shared-query op)
    k, v = (torch.randn(3, 9, 2, 8, generator=gen).to(DEVICE) for _ in range(2))
    index = torch.tensor([0, 2, 1, 1, 0], device=DEVICE)
    offsets = torch.tensor([0, 2, 5], device=DEVICE)
    return {"q": q, "k": k, "v": v, "class_index": index, "sample_offsets": offsets}


def test_every_op_is_registered_once():
    first, again = kernels.ops(), kernels.ops()
    assert first == again and [op._qualified_op_name for op in first] == [f"genfast::{n}" for n in kernels.OPS]


def test_opcheck_class_attention():
    x = inputs()
    args = (x["q"], x["k"], x["v"], x["class_index"], 0.35)
    torch.library.opcheck(torch.ops.genfast.class_cross_attention.default, args, test_utils=CHECKS)
    out = torch.empty_like(x["q"])
    torch.library.opcheck(torch.ops.genfast.class_cross_attention_out.default, (*args, out), test_utils=CHECKS)


def test_opcheck_shared_query_attention():
    x = inputs()
    q = x["q"][:2]
    args = (q, x["k"], x["v"], x["sample_offsets"], x["class_index"], 0.35)
    torch.library.opcheck(torch.ops.genfast.shared_query_cross_attention.default, args, test_utils=CHECKS)
    out = torch.empty(5, 7, 2, 8, device=DEVICE)
    torch.library.opcheck(torch.ops.genfast.shared_query_cross_attention_out.default, (*args, out),
                          test_utils=CHECKS)


def test_the_ops_give_the_public_functions_results():
    x = inputs()
    direct = torch.ops.genfast.class_cross_attention(x["q"], x["k"], x["v"], x["class_index"], 0.35)
    assert torch.equal(direct, kernels.class_cross_attention(x["q"], x["k"], x["v"], x["class_index"], 0.35))
    real = (x["q"][:2].clone(), x["k"], x["v"], x["sample_offsets"], x["class_index"])
    with torch._subclasses.FakeTensorMode() as mode:  # the fake: shape, dtype and device only
        fake = torch.ops.genfast.shared_query_cross_attention(*(mode.from_tensor(t) for t in real), 0.35)
    assert fake.shape == (5, 7, 2, 8) and fake.dtype == x["q"].dtype
