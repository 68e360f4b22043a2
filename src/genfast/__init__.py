"""genfast: fast, reproducible zero-shot classification with diffusion models, measured against human vision.

Importing genfast never fails because an optional piece (the compiled core's CUDA kernels, Triton, xFormers)
is missing; `python -m genfast.info` says what is available and why anything is not. The public names load on
first use, so that `import genfast` (and the `genfast` command, before it knows what it will run) is quick.
"""
from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from genfast.api import Classifier, Prediction, classify
    from genfast.engine import methods
    from genfast.explanation import Explanation, explain
    from genfast.ops.noise import noise
    from genfast.ops.token_masks import token_masks

__version__ = "0.1.0"
_EXPORTS: dict[str, tuple[str, str | None]] = {  # public name: (module, attribute; None: the module itself)
    "Classifier": ("genfast.api", "Classifier"),
    "Prediction": ("genfast.api", "Prediction"),
    "classify": ("genfast.api", "classify"),
    "Explanation": ("genfast.explanation", "Explanation"),
    "explain": ("genfast.explanation", "explain"),
    "methods": ("genfast.engine.methods", None),
    "noise": ("genfast.ops.noise", "noise"),
    "token_masks": ("genfast.ops.token_masks", "token_masks"),
}
__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    """Import a public name's module on first use (PEP 562)."""
    if name not in _EXPORTS:
        raise AttributeError(f"module 'genfast' has no attribute {name!r}")
    module, attribute = _EXPORTS[name]
    value = importlib.import_module(module)
    value = value if attribute is None else getattr(value, attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *_EXPORTS})
