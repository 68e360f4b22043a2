"""The scoring engine (C++ core in csrc/engine) and the methods it executes."""
from genfast.engine.engine import Engine, ImageResult, Plan
from genfast.engine.methods import (
    METHODS,
    ClarkJaini2023,
    Elimination,
    Exhaustive,
    GenFast,
    Li2023,
    Method,
    get_method,
)

__all__ = ["METHODS", "ClarkJaini2023", "Elimination", "Engine", "Exhaustive", "GenFast", "ImageResult", "Li2023",
           "Method", "Plan", "get_method"]
