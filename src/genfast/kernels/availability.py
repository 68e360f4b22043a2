"""Whether the Triton kernels can run here, and why not.

Importing this module never fails: a missing or broken Triton is recorded as a reason, and callers get a
RuntimeError that carries it.
"""
from __future__ import annotations

import os
from types import ModuleType

_triton: ModuleType | None
try:
    import triton as _triton

    _IMPORT_ERROR: str | None = None
except Exception as exc:  # noqa: BLE001 - a broken install can raise more than ImportError; record, never raise
    _triton = None
    _IMPORT_ERROR = f"triton could not be imported ({exc}); install it with `pip install 'genfast[triton]'`"


def interpreting() -> bool:
    """True when Triton runs kernels in its CPU interpreter (TRITON_INTERPRET=1, read when kernels are defined)."""
    knobs = getattr(_triton, "knobs", None)
    if knobs is not None:
        return bool(knobs.runtime.interpret)
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


def unavailable_reason() -> str | None:
    """Why the kernels cannot run here (no Triton; no CUDA device and no interpreter), or None when they can."""
    if _IMPORT_ERROR is not None:
        return _IMPORT_ERROR
    import torch

    if not torch.cuda.is_available() and not interpreting():
        return "no CUDA device is available and TRITON_INTERPRET=1 is not set (set it to run the kernels on CPU)"
    return None


def available() -> bool:
    """True when the Triton kernels can run here (Triton imports and there is a CUDA device or the interpreter)."""
    return unavailable_reason() is None


def require_available() -> None:
    """Raise RuntimeError naming the reason when the kernels cannot run here."""
    reason = unavailable_reason()
    if reason is not None:
        raise RuntimeError(f"genfast.kernels cannot run the Triton kernels: {reason}")
