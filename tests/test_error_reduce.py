"""Fused per-class error reduction: native op against the PyTorch reference for every dtype and loss, the
tiled loop against a plain per-row loop, CPU against CUDA, and clear errors on bad input."""
from __future__ import annotations

import functools

import pytest
import torch

from genfast import _native
from genfast.ops import error_reduce as er_ops
from genfast.ops._tensors import native_for, to_view
from genfast.ops.error_reduce import LOSSES, error_reduce, error_reduce_reference

DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _inputs(counts, latent, pred_dtype, sample_dtype, seed=0, weight=True):
    """Random inputs: sample row s has counts[s] class rows (zero allowed)."""
    gen = torch.Generator().manual_seed(seed)
    offsets = torch.tensor([0, *torch.tensor(counts).cumsum(0).tolist()], dtype=torch.int64)
    rows, samples = int(offsets[-1]), len(counts)
    pred = torch.randn((rows, *latent), generator=gen).to(pred_dtype)
    target = torch.randn((samples, *latent), generator=gen).to(sample_dtype)
    z_t = torch.randn((samples, *latent), generator=gen).to(sample_dtype)
    coef = torch.randn((rows, 3), generator=gen)
    w = torch.rand(rows, generator=gen) if weight else None
    return pred, offsets, target, z_t, coef, w


def _plain_loop(pred, offsets, target, z_t, coef, weight, loss, delta):
    """Row by row in float64: the mathematics the fused kernel must reproduce."""
    out = []
    for s in range(target.shape[0]):
        for b in range(int(offsets[s]), int(offsets[s + 1])):
            r = coef[b, 0].double() * pred[b].double() + coef[b, 1].double() * z_t[s].double()
            r = r - coef[b, 2].double() * target[s].double()
            if loss == "l2":
                e = r.square()
            elif loss == "l1":
                e = r.abs()
            else:
                a = r.abs()
                e = torch.where(a < delta, 0.5 * r.square(), delta * (a - 0.5 * delta))
            out.append(e.mean() * (1.0 if weight is None else weight[b].double()))
    return torch.stack(out).float()


@pytest.mark.parametrize("pred_dtype", DTYPES)
@pytest.mark.parametrize("sample_dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSSES)
def test_matches_reference(pred_dtype, sample_dtype, loss):
    args = _inputs([3, 0, 5, 1, 4], (3, 17, 23), pred_dtype, sample_dtype, seed=1)
    out = error_reduce(*args, loss=loss, delta=0.6)
    assert out.dtype == torch.float32 and out.shape == (13,)
    torch.testing.assert_close(out, error_reduce_reference(*args, loss, 0.6), rtol=2e-5, atol=1e-6)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("latent", [(5,), (4, 33, 31), (2, 1, 2049)])
def test_tiled_kernel_matches_plain_loop(loss, latent):
    """The tile-by-tile loop (tiles of 2048 elements, shared target/z_t) equals a plain per-row loop."""
    args = _inputs([2, 3, 1], latent, torch.float32, torch.float32, seed=2)
    out = error_reduce(*args, loss=loss, delta=1.3)
    torch.testing.assert_close(out, _plain_loop(*args, loss, 1.3), rtol=1e-5, atol=1e-7)


def test_without_weight_and_huber_regimes():
    args = _inputs([4, 2], (3, 8, 8), torch.float32, torch.float32, seed=3, weight=False)
    unweighted = error_reduce(*args)
    torch.testing.assert_close(unweighted, _plain_loop(*args, "l2", 1.0), rtol=1e-5, atol=1e-7)
    # huber with a huge delta is half the squared error; with a tiny delta it is delta * (|r| - delta / 2)
    torch.testing.assert_close(error_reduce(*args, loss="huber", delta=1e6), 0.5 * unweighted, rtol=1e-5, atol=0)
    l1 = error_reduce(*args, loss="l1")
    torch.testing.assert_close(error_reduce(*args, loss="huber", delta=1e-3), 1e-3 * (l1 - 5e-4), rtol=1e-4, atol=0)


@pytest.mark.parametrize("counts", [[], [0, 0]])
def test_empty_batches(counts, monkeypatch):
    args = _inputs(counts, (2, 3), torch.float16, torch.float32, seed=9)
    assert error_reduce(*args).shape == (0,)
    monkeypatch.setattr(er_ops, "native_for", lambda device: None)
    assert error_reduce(*args).shape == (0,)


def test_rows_see_only_their_sample():
    """Changing one sample row's target changes exactly the errors of that sample's class rows."""
    pred, offsets, target, z_t, coef, w = _inputs([2, 3, 2], (4, 5), torch.float32, torch.float32, seed=4)
    before = error_reduce(pred, offsets, target, z_t, coef, w)
    target2 = target.clone()
    target2[1] += 1.0
    after = error_reduce(pred, offsets, target2, z_t, coef, w)
    changed = (before != after).tolist()
    assert changed == [False, False, True, True, True, False, False]


def test_fallback_path_matches_native(monkeypatch):
    if not _native.available():
        pytest.skip(f"native core not loaded: {_native.LOAD_ERROR}")
    args = _inputs([1, 2, 3], (2, 9, 7), torch.bfloat16, torch.float16, seed=5)
    native = error_reduce(*args, loss="huber", delta=0.5)
    monkeypatch.setattr(er_ops, "native_for", lambda device: None)
    torch.testing.assert_close(error_reduce(*args, loss="huber", delta=0.5), native, rtol=2e-5, atol=1e-6)


def test_opcheck():
    for weight in (True, False):
        args = _inputs([2, 1, 3], (2, 3, 5), torch.float16, torch.float32, seed=6, weight=weight)
        torch.library.opcheck(torch.ops.genfast.error_reduce.default, (*args, "huber", 0.5))


# ---------------------------------------------------------------------------------------------------- errors


def _good():
    return list(_inputs([2, 3], (2, 4), torch.float32, torch.float32, seed=7))


@pytest.mark.parametrize(
    "index,bad,error,match",
    [
        (0, lambda t: t.double(), TypeError, "pred must be float32/float16/bfloat16"),
        (0, lambda t: t.transpose(0, 1).contiguous().transpose(0, 1), ValueError, "pred must be contiguous"),
        (0, lambda t: t[:, :1].contiguous(), ValueError, "target has shape .* but pred has shape"),
        (1, lambda t: t.int(), TypeError, "sample_offsets must be int64"),
        (1, lambda t: torch.tensor([0, 6, 5]), ValueError, r"sample_offsets\[2\] = 5 < sample_offsets\[1\] = 6"),
        (1, lambda t: torch.tensor([0, 2, 4]), ValueError, "must end at the number of pred rows 5, got 4"),
        (1, lambda t: torch.tensor([1, 2, 5]), ValueError, r"sample_offsets\[0\] must be 0"),
        (1, lambda t: t[:2], ValueError, "target has shape .* first dimension must be 1"),
        (2, lambda t: t.half(), TypeError, "z_t must be float16"),
        (4, lambda t: t[:, :2].contiguous(), ValueError, r"coef must have shape \[5, 3\]"),
        (4, lambda t: t.double(), TypeError, "coef must be float32"),
        (5, lambda t: t[:4], ValueError, "weight has shape"),
        (5, lambda t: t.to("meta"), ValueError, "weight is on meta but pred is on cpu"),
    ],
)
def test_bad_inputs_raise_clear_errors(index, bad, error, match):
    args = _good()
    args[index] = bad(args[index])
    with pytest.raises(error, match=match):
        error_reduce(*args)


def test_bad_loss_and_delta():
    with pytest.raises(ValueError, match="loss must be one of l2, l1, huber, got 'l3'"):
        error_reduce(*_good(), loss="l3")
    with pytest.raises(ValueError, match="delta must be a positive finite number"):
        error_reduce(*_good(), loss="huber", delta=0.0)


def test_native_binding_checks_offsets():
    """The native entry point validates offsets itself (it can be called directly) and raises ValueError."""
    module = native_for(torch.device("cpu"))
    if module is None:
        pytest.skip(f"native core not loaded: {_native.LOAD_ERROR}")
    pred, _, target, z_t, coef, w = _good()
    v = functools.partial(to_view, module)
    out = torch.empty(5)
    for values, match in (([0, 6, 5], "non-decreasing"), ([0, 2, 9], "must end at"), ([2, 2, 5], r"\[0\] must be 0")):
        offsets = torch.tensor(values)  # views hold raw pointers: keep the tensor alive while they are used
        with pytest.raises(ValueError, match=match):
            module.error_reduce(v(pred), v(offsets), v(target), v(z_t), v(coef), v(w), "l2", 1.0, v(out))
    offsets = torch.tensor([0, 2, 5])
    with pytest.raises(ValueError, match="loss must be"):
        module.error_reduce(v(pred), v(offsets), v(target), v(z_t), v(coef), None, "mse", 1.0, v(out))


# ------------------------------------------------------------------------------------------------------ CUDA


def _cuda_reason() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device visible to torch"
    if native_for(torch.device("cuda")) is None:
        return "the native core has no usable CUDA kernels here (see python -m genfast.info)"
    return None


@pytest.mark.cuda
@pytest.mark.skipif(_cuda_reason() is not None, reason=str(_cuda_reason()))
@pytest.mark.parametrize("pred_dtype", DTYPES)
@pytest.mark.parametrize("loss", LOSSES)
def test_cuda_matches_cpu(pred_dtype, loss):
    args = _inputs([3, 0, 40, 1, 7], (4, 64, 33), pred_dtype, torch.bfloat16, seed=8)
    cpu = error_reduce(*args, loss=loss, delta=0.4)
    gpu = error_reduce(*(a.cuda() for a in args), loss=loss, delta=0.4)
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=2e-5, atol=1e-6)
