"""genfast: fast, reproducible zero-shot classification with diffusion models, measured against human vision.

Importing genfast never fails because an optional piece (the compiled core's CUDA kernels, Triton, xFormers)
is missing; `python -m genfast.info` says what is available and why anything is not.
"""
from __future__ import annotations

from genfast.api import Classifier, Prediction, classify
from genfast.engine import methods
from genfast.explanation import Explanation, explain
from genfast.ops.noise import noise
from genfast.ops.token_masks import token_masks

__version__ = "0.1.0"
__all__ = ["Classifier", "Explanation", "Prediction", "classify", "explain", "methods", "noise", "token_masks"]
