"""The parametric image distortions of model-vs-human (Geirhos et al. 2018, 2021).

`apply(image, name, level, rng=None, reference_size=None, reference_spectrum=None)` distorts one float
image in [0, 1] (HxW or HxWx3); `DISTORTIONS` maps each dataset name to its `Distortion` (default
`levels`, `description`, condition strings and file-name fields). `genfast distort` writes a whole folder
as a model-vs-human dataset (`genfast.distort.dataset`).
"""
from .eidolon import partially_coherent_disarray
from .registry import DISTORTIONS, Distortion, apply, get
from .spectral import mean_amplitude_spectrum, one_over_f_amplitude

__all__ = [
    "DISTORTIONS",
    "Distortion",
    "apply",
    "get",
    "mean_amplitude_spectrum",
    "one_over_f_amplitude",
    "partially_coherent_disarray",
]
