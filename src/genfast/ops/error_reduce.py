"""Fused per-class error reduction (docs/ARCHITECTURE.md, "Error reduction").

For class row ``b`` of sample row ``s`` (``sample_offsets[s] <= b < sample_offsets[s+1]``):
``r = coef[b,0] pred[b] + coef[b,1] z_t[s] - coef[b,2] target[s]`` and
``out[b] = weight[b] * mean(loss(r))`` in float32, so the target and z_t of a sample are read once for all its
class rows and never repeated per class. The custom op runs the native kernels and falls back to
:func:`error_reduce_reference` when the native core did not load or cannot run on the tensors' device.
"""
from __future__ import annotations

import functools
import math

import torch

from genfast.ops._tensors import (
    FLOAT_DTYPES,
    check_rows,
    check_same_device,
    check_tensor,
    native_for,
    stream_of,
    to_view,
)

__all__ = ["error_reduce", "error_reduce_reference", "LOSSES"]

LOSSES: tuple[str, ...] = ("l2", "l1", "huber")
_OP = "error_reduce"


def error_reduce_reference(
    pred: torch.Tensor,
    sample_offsets: torch.Tensor,
    target: torch.Tensor,
    z_t: torch.Tensor,
    coef: torch.Tensor,
    weight: torch.Tensor | None = None,
    loss: str = "l2",
    delta: float = 1.0,
) -> torch.Tensor:
    """Reference of :func:`error_reduce` in plain PyTorch (float32; repeats target and z_t per class row)."""
    rows, samples, latent = pred.shape[0], target.shape[0], math.prod(pred.shape[1:])
    sample_of_row = torch.repeat_interleave(
        torch.arange(samples, device=pred.device), sample_offsets.diff(), output_size=rows
    )
    r = (
        coef[:, 0:1] * pred.reshape(rows, latent).float()
        + coef[:, 1:2] * z_t.reshape(samples, latent).float()[sample_of_row]
        - coef[:, 2:3] * target.reshape(samples, latent).float()[sample_of_row]
    )
    if loss == "l2":
        per_element = r * r
    elif loss == "l1":
        per_element = r.abs()
    else:
        per_element = torch.where(r.abs() < delta, 0.5 * r * r, delta * (r.abs() - 0.5 * delta))
    out = per_element.mean(dim=1)
    return out * weight if weight is not None else out


def _check(
    pred: torch.Tensor,
    sample_offsets: torch.Tensor,
    target: torch.Tensor,
    z_t: torch.Tensor,
    coef: torch.Tensor,
    weight: torch.Tensor | None,
    loss: str,
    delta: float,
) -> None:
    """Checks of types, shapes and devices (no values: these cost nothing, also under torch.compile)."""
    check_tensor(_OP, "pred", pred, FLOAT_DTYPES)
    if pred.dim() < 1:
        raise ValueError(f"{_OP}: pred must be [B, *latent], got a 0-dimensional tensor")
    check_tensor(_OP, "sample_offsets", sample_offsets, (torch.int64,), 1)
    if sample_offsets.shape[0] < 1:
        raise ValueError(f"{_OP}: sample_offsets must have S + 1 >= 1 entries, got none")
    check_tensor(_OP, "target", target, FLOAT_DTYPES)
    check_tensor(_OP, "z_t", z_t, (target.dtype,))
    check_tensor(_OP, "coef", coef, (torch.float32,), 2)
    rows, samples = pred.shape[0], sample_offsets.shape[0] - 1
    for name, t in (("target", target), ("z_t", z_t)):
        if t.dim() != pred.dim() or t.shape[1:] != pred.shape[1:]:
            raise ValueError(
                f"{_OP}: {name} has shape {list(t.shape)} but pred has shape {list(pred.shape)} "
                "(they must agree after the first dimension)"
            )
        check_rows(_OP, name, t, samples, "one per sample row: len(sample_offsets) - 1")
    if coef.shape != (rows, 3):
        raise ValueError(f"{_OP}: coef must have shape [{rows}, 3] (pred rows x 3), got {list(coef.shape)}")
    if weight is not None:
        check_tensor(_OP, "weight", weight, (torch.float32,), 1)
        check_rows(_OP, "weight", weight, rows, "one per row of pred")
    if math.prod(pred.shape[1:]) == 0:
        raise ValueError(f"{_OP}: pred has no elements per row (shape {list(pred.shape)})")
    if loss not in LOSSES:
        raise ValueError(f"{_OP}: loss must be one of {', '.join(LOSSES)}, got {loss!r}")
    if loss == "huber" and not (math.isfinite(delta) and delta > 0):
        raise ValueError(f"{_OP}: delta must be a positive finite number for the huber loss, got {delta}")
    check_same_device(
        _OP,
        {"pred": pred, "sample_offsets": sample_offsets, "target": target, "z_t": z_t, "coef": coef, "weight": weight},
    )


def _check_offsets(sample_offsets: torch.Tensor, rows: int) -> None:
    """Value checks of the offsets, done where they cost no device synchronisation (CPU) or on the reference path."""
    first, last = int(sample_offsets[0]), int(sample_offsets[-1])
    if first != 0:
        raise ValueError(f"{_OP}: sample_offsets[0] must be 0, got {first}")
    if last != rows:
        raise ValueError(f"{_OP}: sample_offsets must end at the number of pred rows {rows}, got {last}")
    steps = sample_offsets.diff()
    if steps.numel() and int(steps.min()) < 0:
        s = int(torch.nonzero(steps < 0)[0, 0])
        raise ValueError(
            f"{_OP}: sample_offsets must be non-decreasing, but sample_offsets[{s + 1}] = "
            f"{int(sample_offsets[s + 1])} < sample_offsets[{s}] = {int(sample_offsets[s])}"
        )


@torch.library.custom_op("genfast::error_reduce", mutates_args=())
def _error_reduce_op(
    pred: torch.Tensor,
    sample_offsets: torch.Tensor,
    target: torch.Tensor,
    z_t: torch.Tensor,
    coef: torch.Tensor,
    weight: torch.Tensor | None,
    loss: str,
    delta: float,
) -> torch.Tensor:
    """The op behind :func:`error_reduce`: native kernel, else the reference."""
    _check(pred, sample_offsets, target, z_t, coef, weight, loss, delta)
    module = native_for(pred.device)
    if module is None or pred.device.type == "cpu":
        _check_offsets(sample_offsets, pred.shape[0])
    if module is None:
        return error_reduce_reference(pred, sample_offsets, target, z_t, coef, weight, loss, delta)
    out = torch.empty(pred.shape[0], dtype=torch.float32, device=pred.device)
    v = functools.partial(to_view, module)
    module.error_reduce(
        v(pred), v(sample_offsets), v(target), v(z_t), v(coef), None if weight is None else v(weight), loss,
        float(delta), v(out), stream_of(pred.device),
    )
    return out


@_error_reduce_op.register_fake
def _(pred, sample_offsets, target, z_t, coef, weight, loss, delta):
    _check(pred, sample_offsets, target, z_t, coef, weight, loss, delta)
    return pred.new_empty((pred.shape[0],), dtype=torch.float32)


def error_reduce(
    pred: torch.Tensor,
    sample_offsets: torch.Tensor,
    target: torch.Tensor,
    z_t: torch.Tensor,
    coef: torch.Tensor,
    weight: torch.Tensor | None = None,
    loss: str = "l2",
    delta: float = 1.0,
) -> torch.Tensor:
    """Per-class-row error float32 [B] = weight * mean(loss(coef0 pred + coef1 z_t[s] - coef2 target[s])), the
    sample rows s given by ``sample_offsets`` [S+1]; pred [B, *latent], target and z_t [S, *latent]."""
    return torch.ops.genfast.error_reduce(pred, sample_offsets, target, z_t, coef, weight, loss, float(delta))
