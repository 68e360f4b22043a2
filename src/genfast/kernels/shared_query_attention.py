"""Triton kernel and launcher: cross-attention where the classes of one sample share its query.

Rows b in sample_offsets[s]:sample_offsets[s+1] all use q[s]. Each program loads one query tile of sample s
once and attends to the cached keys and values of every class of that sample, so the query (and the UNet
prefix that produced it) is computed and read once per sample instead of once per class.
"""
from __future__ import annotations

import torch
import triton
import triton.language as tl
from torch.library import triton_op

from genfast.kernels.attention_core import (
    LOG2_E,
    attend_one_class,
    autotuned,
    launch,
    load_query_tile,
    store_output_tile,
)


@triton.jit
def _shared_query_attention_kernel(
    q_ptr, k_ptr, v_ptr, sample_offsets_ptr, class_index_ptr, out_ptr,
    stride_qs, stride_qm, stride_qh, stride_qd,
    stride_kc, stride_kn, stride_kh, stride_kd,
    stride_vc, stride_vn, stride_vh, stride_vd,
    stride_ob, stride_om, stride_oh, stride_od,
    Nq, Lk, H, D, qk_scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    # Grid: (samples * heads, query tiles); the program loops over the rows (classes) of its sample.
    sample_head = tl.program_id(0).to(tl.int64)
    s = sample_head // H
    h = sample_head % H
    offs_m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    q = load_query_tile(q_ptr + s * stride_qs + h * stride_qh, offs_m, offs_d, stride_qm, stride_qd, Nq, D)
    row_start = tl.load(sample_offsets_ptr + s)
    row_end = tl.load(sample_offsets_ptr + s + 1)
    for b in range(row_start, row_end):
        c = tl.load(class_index_ptr + b)
        out = attend_one_class(q, k_ptr + c * stride_kc + h * stride_kh, v_ptr + c * stride_vc + h * stride_vh,
                               stride_kn, stride_kd, stride_vn, stride_vd, Lk, D, qk_scale,
                               BLOCK_M, BLOCK_N, BLOCK_D, DOT_PRECISION)
        store_output_tile(out_ptr + b * stride_ob + h * stride_oh, out, offs_m, offs_d, stride_om, stride_od,
                          Nq, D)


_launchers = autotuned(_shared_query_attention_kernel)


def _launch_into(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sample_offsets: torch.Tensor,
                 class_index: torch.Tensor, scale: float, out: torch.Tensor) -> None:
    samples, nq, heads, head_dim = q.shape
    if out.numel() == 0:
        return
    args = (
        q, k, v, sample_offsets.contiguous(), class_index.contiguous(), out,
        *q.stride(), *k.stride(), *v.stride(), *out.stride(),
        nq, k.shape[1], heads, head_dim, scale * LOG2_E,
    )
    launch(_shared_query_attention_kernel, _launchers, samples * heads, nq, args, head_dim, q.dtype)


@triton_op("genfast::shared_query_cross_attention", mutates_args=())
def shared_query_cross_attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sample_offsets: torch.Tensor,
                                    class_index: torch.Tensor, scale: float) -> torch.Tensor:
    """The kernel on validated inputs (genfast.kernels.shared_query_cross_attention checks them) into a new
    contiguous [B, Nq, H, D] tensor."""
    out = q.new_empty((class_index.shape[0], *q.shape[1:]))
    _launch_into(q, k, v, sample_offsets, class_index, scale, out)
    return out


@triton_op("genfast::shared_query_cross_attention_out", mutates_args={"out"})
def shared_query_cross_attention_out_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor,
                                        sample_offsets: torch.Tensor, class_index: torch.Tensor, scale: float,
                                        out: torch.Tensor) -> None:
    """The kernel on validated inputs into `out` (any strides)."""
    _launch_into(q, k, v, sample_offsets, class_index, scale, out)


# Shape-only fakes, as in class_attention.py.
@shared_query_cross_attention_op.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sample_offsets: torch.Tensor, class_index: torch.Tensor,
      scale: float) -> torch.Tensor:
    return q.new_empty((class_index.shape[0], *q.shape[1:]))


@shared_query_cross_attention_out_op.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, sample_offsets: torch.Tensor, class_index: torch.Tensor,
      scale: float, out: torch.Tensor) -> None:
    return None
