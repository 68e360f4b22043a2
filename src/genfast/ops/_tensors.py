"""Checks torch tensors at the boundary of the native core and turns them into ``_C.TensorView``.

Every check raises a TypeError (not a tensor, wrong dtype) or a ValueError (shape, device, contiguity, values)
whose message starts with the op and names the argument, e.g. ``error_reduce: pred must be contiguous``.
"""
from __future__ import annotations

import functools
from types import ModuleType
from typing import Iterable, Mapping

import torch

from genfast import _native

FLOAT_DTYPES: tuple[torch.dtype, ...] = (torch.float32, torch.float16, torch.bfloat16)
_DTYPE_NAMES = {
    torch.float32: "F32",
    torch.float16: "F16",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.int32: "I32",
    torch.uint8: "U8",
}
_UINT64 = 1 << 64


def check_tensor(
    op: str, name: str, value: object, dtypes: Iterable[torch.dtype], ndim: int | None = None
) -> torch.Tensor:
    """Checks that ``value`` is a contiguous tensor of one of ``dtypes`` (and ``ndim`` dimensions if given)."""
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{op}: {name} must be a torch.Tensor, got {type(value).__name__}")
    dtypes = tuple(dtypes)
    if value.dtype not in dtypes:
        allowed = "/".join(str(d).removeprefix("torch.") for d in dtypes)
        raise TypeError(f"{op}: {name} must be {allowed}, got {str(value.dtype).removeprefix('torch.')}")
    if ndim is not None and value.dim() != ndim:
        raise ValueError(f"{op}: {name} must have {ndim} dimension(s), got shape {list(value.shape)}")
    if not value.is_contiguous():
        raise ValueError(f"{op}: {name} must be contiguous")
    return value


def check_rows(op: str, name: str, value: torch.Tensor, rows: int, what: str) -> None:
    """Checks that the first dimension of ``value`` is ``rows``."""
    if value.shape[0] != rows:
        raise ValueError(f"{op}: {name} has shape {list(value.shape)}, its first dimension must be {rows} ({what})")


def check_same_device(op: str, tensors: Mapping[str, torch.Tensor | None]) -> torch.device:
    """Checks that all given tensors (None entries skipped) are on one device and returns it."""
    present = [(name, t) for name, t in tensors.items() if t is not None]
    first_name, first = present[0]
    for name, t in present[1:]:
        if t.device != first.device:
            raise ValueError(f"{op}: {name} is on {t.device} but {first_name} is on {first.device}")
    return first.device


def as_uint64(op: str, name: str, value: int) -> int:
    """A 64-bit seed or key as an unsigned number; accepts [-2**63, 2**64) (negative ints are int64 bits)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{op}: {name} must be an int, got {type(value).__name__}")
    if not -(1 << 63) <= value < _UINT64:
        raise ValueError(f"{op}: {name} = {value} does not fit in 64 bits")
    return value % _UINT64


def as_int64_bits(op: str, name: str, value: int) -> int:
    """A 64-bit seed or key as the signed int64 with the same bits (how int64 tensors and op schemas hold it)."""
    unsigned = as_uint64(op, name, value)
    return unsigned - _UINT64 if unsigned >= 1 << 63 else unsigned


@functools.lru_cache(maxsize=None)
def _cuda_usable() -> bool:
    module = _native.native()
    return bool(module.build_info["with_cuda"]) and module.cuda_status()[0] > 0


def native_for(device: torch.device) -> ModuleType | None:
    """The native module if its kernels can run on ``device``, else None (the ops then use their references)."""
    if not _native.available():
        return None
    if device.type == "cpu" or (device.type == "cuda" and _cuda_usable()):
        return _native.native()
    return None


def to_view(module: ModuleType, tensor: torch.Tensor) -> object:
    """The ``_C.TensorView`` of a checked tensor (the tensor must stay alive while the view is used)."""
    device = -1 if tensor.device.type == "cpu" else tensor.device.index
    dtype = getattr(module.DType, _DTYPE_NAMES[tensor.dtype])
    return module.TensorView(tensor.data_ptr(), list(tensor.shape), list(tensor.stride()), dtype, device)


def stream_of(device: torch.device) -> int:
    """The current CUDA stream of ``device`` as an integer (0 on CPU), for the native launchers."""
    return torch.cuda.current_stream(device).cuda_stream if device.type == "cuda" else 0
