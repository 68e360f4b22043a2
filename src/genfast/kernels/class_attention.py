"""Triton kernel and launcher: cross-attention of each row's queries to its class's cached keys and values.

out[b] = softmax(scale * q[b] @ k[class_index[b]]^T) @ v[class_index[b]], per head. The per-class text keys
and values are projected once per run and read here by class index, never repeated per batch row.
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
def _class_attention_kernel(
    q_ptr, k_ptr, v_ptr, class_index_ptr, out_ptr,
    stride_qb, stride_qm, stride_qh, stride_qd,
    stride_kc, stride_kn, stride_kh, stride_kd,
    stride_vc, stride_vn, stride_vh, stride_vd,
    stride_ob, stride_om, stride_oh, stride_od,
    Nq, Lk, H, D, qk_scale,
    BLOCK_M: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr, DOT_PRECISION: tl.constexpr,
):
    # Grid: (rows * heads, query tiles). 64-bit row offsets: rows * Nq * H * D can pass 2**31 elements.
    row_head = tl.program_id(0).to(tl.int64)
    b = row_head // H
    h = row_head % H
    c = tl.load(class_index_ptr + b)
    offs_m = tl.program_id(1) * BLOCK_M + tl.arange(0, BLOCK_M)
    offs_d = tl.arange(0, BLOCK_D)
    q = load_query_tile(q_ptr + b * stride_qb + h * stride_qh, offs_m, offs_d, stride_qm, stride_qd, Nq, D)
    out = attend_one_class(q, k_ptr + c * stride_kc + h * stride_kh, v_ptr + c * stride_vc + h * stride_vh,
                           stride_kn, stride_kd, stride_vn, stride_vd, Lk, D, qk_scale,
                           BLOCK_M, BLOCK_N, BLOCK_D, DOT_PRECISION)
    store_output_tile(out_ptr + b * stride_ob + h * stride_oh, out, offs_m, offs_d, stride_om, stride_od, Nq, D)


_launchers = autotuned(_class_attention_kernel)


def _launch_into(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, class_index: torch.Tensor, scale: float,
                 out: torch.Tensor) -> None:
    rows, nq, heads, head_dim = q.shape
    if out.numel() == 0:
        return
    args = (
        q, k, v, class_index.contiguous(), out,
        *q.stride(), *k.stride(), *v.stride(), *out.stride(),
        nq, k.shape[1], heads, head_dim, scale * LOG2_E,
    )
    launch(_class_attention_kernel, _launchers, rows * heads, nq, args, head_dim, q.dtype)


@triton_op("genfast::class_cross_attention", mutates_args=())
def class_cross_attention_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, class_index: torch.Tensor,
                             scale: float) -> torch.Tensor:
    """The kernel on validated inputs (genfast.kernels.class_cross_attention checks them) into a new contiguous
    [B, Nq, H, D] tensor."""
    out = q.new_empty(q.shape)
    _launch_into(q, k, v, class_index, scale, out)
    return out


@triton_op("genfast::class_cross_attention_out", mutates_args={"out"})
def class_cross_attention_out_op(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, class_index: torch.Tensor,
                                 scale: float, out: torch.Tensor) -> None:
    """The kernel on validated inputs into `out` (any strides)."""
    _launch_into(q, k, v, class_index, scale, out)


# Shape-only fakes: the Triton interpreter's kernels cannot be traced, so FakeTensor and meta runs use these
# on every device (on a GPU, torch.compile still traces the launch itself through wrap_triton).
@class_cross_attention_op.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, class_index: torch.Tensor, scale: float) -> torch.Tensor:
    return q.new_empty(q.shape)


@class_cross_attention_out_op.register_fake
def _(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, class_index: torch.Tensor, scale: float,
      out: torch.Tensor) -> None:
    return None
