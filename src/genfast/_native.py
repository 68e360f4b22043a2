"""Loads the compiled core ``genfast._C`` if it is there, and says why not otherwise.

Nothing here raises on import: callers ask :func:`native` for the module and get a clear error that carries
the reason when it is missing; ``python -m genfast.info`` prints the same reason.
"""
from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType

try:
    _module: ModuleType | None = importlib.import_module("genfast._C")
    LOAD_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - depends on how genfast was installed
    _module = None
    _source = Path(__file__).resolve().parent.parent
    LOAD_ERROR = f"genfast._C could not be imported ({exc}); reinstall with `pip install .`"
    if (_source / "pyproject.toml").is_file() and (_source / "csrc").is_dir():
        LOAD_ERROR += (f"; note: this genfast was imported from the source tree {_source}, which has no compiled "
                       "core (run from another folder to use the installed package, or build in-tree with "
                       "scripts/dev-build.sh)")


def available() -> bool:
    """True when the compiled core loaded."""
    return _module is not None


def native() -> ModuleType:
    """The compiled module ``genfast._C``; raises RuntimeError with the reason when it did not load."""
    if _module is None:
        raise RuntimeError(LOAD_ERROR)
    return _module
