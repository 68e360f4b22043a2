"""Names the library, the evaluation harness and the command line share, defined once here: the default class
prompt and the 16 model-vs-human classes (method names are the keys of `genfast.engine.methods.METHODS`).

Nothing here imports anything, so `import genfast` does not load the evaluation harness for a constant.
"""
from __future__ import annotations

MVH_CLASSES: tuple[str, ...] = ("airplane", "bear", "bicycle", "bird", "boat", "bottle", "car", "cat", "chair",
                                "clock", "dog", "elephant", "keyboard", "knife", "oven", "truck")
"""The 16 model-vs-human classes (bethgelab/model-vs-human), in the toolbox's order."""

DEFAULT_PROMPT = "a bad photo of a {}"
"""The class prompt template: ``{}`` is where the class name goes."""
