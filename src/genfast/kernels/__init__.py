"""Triton kernels for the attention that is specific to generative classification.

Rows of a denoiser batch are (sample, class) pairs: the classes of one sample share the noisy input, and each
class has text keys and values projected once per run. Two cross-attention ops exploit that:

- :func:`class_cross_attention`: each row attends to its class's cached keys/values, read by class index.
- :func:`shared_query_cross_attention`: one query per sample, attended to the keys/values of each of the
  sample's classes (the UNet's first cross-attention, where the query is still shared by all classes).

Each kernel is a ``torch.library.triton_op`` (``torch.ops.genfast.class_cross_attention`` and the others in
:data:`OPS`, with fake implementations), registered when first used, so torch.compile and FakeTensor tracing
see them as operators. Importing this package never fails: without Triton, or without a CUDA device and without the interpreter
(TRITON_INTERPRET=1, which must be set before Triton is imported), :func:`available` is False,
:func:`unavailable_reason` says why and the ops raise RuntimeError with that reason.

Layouts: ``q`` is ``[rows, Nq, H, D]`` (a view of a diffusers ``[rows, Nq, H*D]`` projection),
``k``/``v`` are ``[C, Lk, H, D]``; any strides are accepted (no copies are made). The result is ``out`` when
given, else a new contiguous ``[B, Nq, H, D]`` tensor in q's dtype, so ``result.view(B, Nq, H * D)`` is free.
Softmax and accumulation are in float32; float32 inputs use 3xTF32 dots on NVIDIA GPUs (float32 accuracy,
unlike plain TF32) and exact float32 dots elsewhere.
"""
from __future__ import annotations

import importlib

import torch

from genfast.kernels.availability import available, interpreting, require_available, unavailable_reason
from genfast.kernels.validation import (
    check_class_index,
    check_out,
    check_qkv,
    check_runnable_device,
    check_sample_offsets,
    check_scale,
)

__all__ = ["available", "unavailable_reason", "class_cross_attention", "shared_query_cross_attention", "ops"]

OPS: tuple[str, ...] = ("class_cross_attention", "class_cross_attention_out", "shared_query_cross_attention",
                        "shared_query_cross_attention_out")
"""The torch.library triton_ops (namespace genfast) behind the public functions, registered by :func:`ops`."""


def ops() -> tuple[torch._ops.OpOverloadPacket, ...]:
    """Register the Triton kernels as ``torch.ops.genfast`` ops (once: on the first call) and return them;
    RuntimeError with the reason where the kernels cannot run."""
    require_available()
    for module in ("class_attention", "shared_query_attention"):  # importing a kernel module registers its ops
        importlib.import_module(f"genfast.kernels.{module}")
    return tuple(getattr(torch.ops.genfast, name) for name in OPS)


def class_cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, class_index: torch.Tensor,
                          scale: float, *, out: torch.Tensor | None = None,
                          check_indices: bool = True) -> torch.Tensor:
    """Per row b and head: ``softmax(scale * q[b] @ k[class_index[b]]^T) @ v[class_index[b]]``.

    q: [B, Nq, H, D]; k, v: [C, Lk, H, D] (same dtype: float32, float16 or bfloat16; D <= 256);
    class_index: int64 [B] in [0, C). Returns [B, Nq, H, D] in q's dtype: ``out`` if given (any strides, must
    not overlap the inputs), else a new contiguous tensor. ``check_indices=False`` skips the range check of
    class_index (a device-to-host copy, i.e. a sync, on GPU); out-of-range indices then read out of bounds,
    so only skip it for indices already checked (e.g. once per denoiser call).
    """
    require_available()
    check_qkv(q, k, v, "[rows, Nq, heads, head_dim]")
    check_runnable_device(q.device, interpreting())
    check_class_index(class_index, q.shape[0], k.shape[0], q.device, check_indices)
    scale = check_scale(scale)
    if out is not None:
        check_out(out, tuple(q.shape), q.dtype, q.device)
    ops()
    if out is None:
        return torch.ops.genfast.class_cross_attention(q, k, v, class_index, scale)
    torch.ops.genfast.class_cross_attention_out(q, k, v, class_index, scale, out)
    return out


def shared_query_cross_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sample_offsets: torch.Tensor,
                                 class_index: torch.Tensor, scale: float, *, out: torch.Tensor | None = None,
                                 check_indices: bool = True) -> torch.Tensor:
    """Like :func:`class_cross_attention` with the query shared by each sample's rows: rows
    ``b in sample_offsets[s]:sample_offsets[s+1]`` use ``q[s]``.

    q: [S, Nq, H, D]; k, v: [C, Lk, H, D]; sample_offsets: int64 [S+1], non-decreasing from 0 to B;
    class_index: int64 [B] in [0, C). Returns [B, Nq, H, D] in q's dtype, in ``out`` if given (as for
    :func:`class_cross_attention`). ``check_indices=False`` skips the value checks of sample_offsets and
    class_index (a sync on GPU); invalid values then read out of bounds or leave rows unwritten, so only
    skip them for indices already checked.
    """
    require_available()
    check_qkv(q, k, v, "[samples, Nq, heads, head_dim]")
    check_runnable_device(q.device, interpreting())
    check_class_index(class_index, None, k.shape[0], q.device, check_indices)
    check_sample_offsets(sample_offsets, q.shape[0], class_index.shape[0], q.device, check_indices)
    scale = check_scale(scale)
    if out is not None:
        check_out(out, (class_index.shape[0], *q.shape[1:]), q.dtype, q.device)
    ops()
    if out is None:
        return torch.ops.genfast.shared_query_cross_attention(q, k, v, sample_offsets, class_index, scale)
    torch.ops.genfast.shared_query_cross_attention_out(q, k, v, sample_offsets, class_index, scale, out)
    return out
