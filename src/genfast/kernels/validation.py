"""Input checks for the attention kernels' public functions (torch only, so they run without Triton)."""
from __future__ import annotations

import math
import numbers

import torch

SUPPORTED_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
MAX_HEAD_DIM = 256


def _check_4d(name: str, x: object, layout: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor {layout}, got {type(x).__name__}")
    if x.dim() != 4:
        raise ValueError(f"{name} must be 4-D {layout}, got shape {tuple(x.shape)}")
    if x.dtype not in SUPPORTED_DTYPES:
        raise TypeError(f"{name} must be float32, float16 or bfloat16, got {x.dtype}")


def check_qkv(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, q_layout: str) -> None:
    """Check q [rows, Nq, H, D] against the per-class keys and values k, v [C, Lk, H, D]."""
    _check_4d("q", q, q_layout)
    _check_4d("k", k, "[classes, Lk, heads, head_dim]")
    _check_4d("v", v, "[classes, Lk, heads, head_dim]")
    if k.dtype != q.dtype or v.dtype != q.dtype:
        raise TypeError(f"q, k and v must have the same dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    if k.shape != v.shape:
        raise ValueError(f"k and v must have the same shape, got {tuple(k.shape)} and {tuple(v.shape)}")
    if q.shape[2:] != k.shape[2:]:
        raise ValueError(
            f"q and k must have the same heads and head_dim (dims 2, 3), got {tuple(q.shape)} and {tuple(k.shape)}"
        )
    if k.shape[0] == 0 or k.shape[1] == 0:
        raise ValueError(f"k and v need at least one class and one key token, got shape {tuple(k.shape)}")
    if q.shape[2] == 0 or not 1 <= q.shape[3] <= MAX_HEAD_DIM:
        raise ValueError(f"q needs heads >= 1 and 1 <= head_dim <= {MAX_HEAD_DIM}, got shape {tuple(q.shape)}")
    if k.device != q.device or v.device != q.device:
        raise ValueError(f"q, k and v must be on the same device, got {q.device}, {k.device}, {v.device}")


def _check_index_tensor(name: str, x: object, length: int | None, device: torch.device, meaning: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor ({meaning}), got {type(x).__name__}")
    if x.dtype != torch.int64:
        raise TypeError(f"{name} must be int64, got {x.dtype}")
    if x.dim() != 1 or (length is not None and x.shape[0] != length):
        expected = "1-D" if length is None else f"shape [{length}]"
        raise ValueError(f"{name} must have {expected} ({meaning}), got shape {tuple(x.shape)}")
    if x.device != device:
        raise ValueError(f"{name} must be on {device} like q, got {x.device}")


def check_class_index(class_index: torch.Tensor, rows: int | None, num_classes: int, device: torch.device,
                      check_values: bool) -> None:
    """Check class_index int64 [rows] (any length if rows is None); with check_values also that every entry
    is in [0, num_classes)."""
    _check_index_tensor("class_index", class_index, rows, device, "one class per output row")
    if check_values and class_index.numel() > 0:
        # One small device-to-host copy (a sync on GPU); check_indices=False skips it.
        low, high = torch.stack(torch.aminmax(class_index)).tolist()
        if low < 0 or high >= num_classes:
            raise ValueError(
                f"class_index must be in [0, {num_classes}) (the classes of k and v), got values in [{low}, {high}]"
            )


def check_sample_offsets(sample_offsets: torch.Tensor, samples: int, rows: int, device: torch.device,
                         check_values: bool) -> None:
    """Check sample_offsets int64 [samples + 1]; with check_values also 0 = first <= ... <= last = rows."""
    _check_index_tensor("sample_offsets", sample_offsets, samples + 1, device,
                        "rows of sample s are sample_offsets[s]:sample_offsets[s+1]")
    if check_values:
        offsets = sample_offsets.cpu()
        if int(offsets[0]) != 0 or int(offsets[-1]) != rows:
            raise ValueError(
                f"sample_offsets must start at 0 and end at the number of rows {rows}, "
                f"got {int(offsets[0])} and {int(offsets[-1])}"
            )
        if samples > 0 and bool((offsets[1:] < offsets[:-1]).any()):
            raise ValueError(f"sample_offsets must be non-decreasing, got {offsets.tolist()}")


def check_out(out: object, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device) -> None:
    """Check a caller-provided output: a tensor of the result's shape, q's dtype and q's device (any strides)."""
    if not isinstance(out, torch.Tensor):
        raise TypeError(f"out must be a torch.Tensor or None, got {type(out).__name__}")
    if out.dtype != dtype:
        raise TypeError(f"out must have q's dtype {dtype}, got {out.dtype}")
    if tuple(out.shape) != shape:
        raise ValueError(f"out must have shape {shape} [rows, Nq, heads, head_dim], got {tuple(out.shape)}")
    if out.device != device:
        raise ValueError(f"out must be on {device} like q, got {out.device}")


def check_scale(scale: object) -> float:
    """The softmax scale as a finite Python float."""
    if isinstance(scale, bool) or not isinstance(scale, numbers.Real):
        raise TypeError(f"scale must be a real number, got {type(scale).__name__}")
    value = float(scale)
    if not math.isfinite(value):
        raise ValueError(f"scale must be finite, got {value}")
    return value


def check_runnable_device(device: torch.device, interpreting: bool) -> None:
    """The kernels run on CUDA tensors, or on CPU tensors under Triton's interpreter."""
    if device.type != "cuda" and not (interpreting and device.type == "cpu"):
        raise ValueError(
            f"the tensors are on {device}; the Triton kernels need CUDA tensors "
            "(or CPU tensors with TRITON_INTERPRET=1, Triton's CPU interpreter)"
        )
