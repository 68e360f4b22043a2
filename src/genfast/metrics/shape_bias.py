"""Shape bias on cue-conflict images (Geirhos et al. 2019): of the decisions that follow either cue, the
fraction that follow the shape.

An image `..._cat2-elephant1.png` has the shape of a cat (its `category`) and the texture of an elephant
(the last `-` token of the file name without digits); images whose shape and texture agree are left out.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd


@dataclass(frozen=True)
class ShapeBias:
    """Counts of shape and texture decisions on cue-conflict trials, and the shape bias they give."""

    shape_hits: int
    texture_hits: int
    trials: int  # cue-conflict trials counted (shape != texture)

    @property
    def shape_bias(self) -> float:
        """shape hits / (shape hits + texture hits); NaN when no decision followed either cue."""
        decided = self.shape_hits + self.texture_hits
        return self.shape_hits / decided if decided else math.nan

    @property
    def fraction_shape(self) -> float:
        return self.shape_hits / self.trials if self.trials else math.nan

    @property
    def fraction_texture(self) -> float:
        return self.texture_hits / self.trials if self.trials else math.nan


def texture_category(imagename: str) -> str:
    """Texture class of a cue-conflict image name: `0001_x_dog10-bird2.png` -> `bird`."""
    stem = imagename.split("_")[-1].split(".")[0]
    return "".join(ch for ch in stem.split("-")[-1] if not ch.isdigit())


def shape_bias(trials: pd.DataFrame) -> ShapeBias:
    """Shape bias of cue-conflict `trials` (any observers pooled), leaving out shape == texture images."""
    if len(trials) == 0:
        raise ValueError("shape bias: no cue-conflict trials")
    texture = trials["imagename"].astype(str).map(texture_category)
    shape = trials["category"].astype(str)
    response = trials["object_response"].astype(str)
    conflict = (shape != texture).to_numpy()
    return ShapeBias(shape_hits=int(((response == shape).to_numpy() & conflict).sum()),
                     texture_hits=int(((response == texture).to_numpy() & conflict).sum()),
                     trials=int(conflict.sum()))


def shape_bias_by_category(trials: pd.DataFrame) -> dict[str, float]:
    """Shape bias per shape category (the `category` column), sorted by category name."""
    if len(trials) == 0:
        raise ValueError("shape bias: no cue-conflict trials")
    category = trials["category"].astype(str)
    return {name: shape_bias(group).shape_bias for name, group in trials.groupby(category, sort=True)}
