"""The 17 model-vs-human datasets: their conditions, plotting labels and the benchmark's condition exclusions.

Condition keys are the toolbox's (bethgelab/model-vs-human, datasets/experiments.py), so that exclusions and
aggregates match the published numbers; `canonical_condition` maps a raw CSV value ("0.90", "true") onto them.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Condition:
    """One level of a parametric distortion: its key in the raw data, its axis label and numeric level."""

    key: str
    label: str
    level: float


@dataclass(frozen=True)
class DatasetInfo:
    """A dataset's conditions in order of increasing distortion (empty for non-parametric datasets)."""

    name: str
    conditions: tuple[Condition, ...] = ()
    xlabel: str = ""
    excluded: frozenset[str] = frozenset()

    @property
    def parametric(self) -> bool:
        return bool(self.conditions)

    @property
    def condition_keys(self) -> tuple[str, ...]:
        return tuple(c.key for c in self.conditions)

    @property
    def benchmark_conditions(self) -> tuple[str, ...]:
        """Conditions that count for the benchmark: all but the clean ones and those humans fail at."""
        return tuple(k for k in self.condition_keys if k not in self.excluded)


def _conditions(keys: list[str], labels: list[str], levels: list[float]) -> tuple[Condition, ...]:
    return tuple(Condition(k, lab, lev) for k, lab, lev in zip(keys, labels, levels, strict=True))


def _eidolon(name: str, coherence: str, excluded: list[str]) -> DatasetInfo:
    reaches = [1, 2, 4, 8, 16, 32, 64, 128]
    keys = [f"{r}-{coherence}-10" for r in reaches]
    return DatasetInfo(name, _conditions(keys, [str(r) for r in reaches], [float(r) for r in reaches]),
                       "Eidolon reach", frozenset(f"{r}-{coherence}-10" for r in excluded))


_DATASETS: tuple[DatasetInfo, ...] = (
    DatasetInfo("colour", _conditions(["cr", "bw"], ["colour", "greyscale"], [0, 1]), "Colour", frozenset({"cr"})),
    DatasetInfo("contrast",
                _conditions(["c100", "c50", "c30", "c15", "c10", "c05", "c03", "c01"],
                            ["100", "50", "30", "15", "10", "5", "3", "1"], [100, 50, 30, 15, 10, 5, 3, 1]),
                "Contrast (%)", frozenset({"c100", "c03", "c01"})),
    DatasetInfo("high-pass",
                _conditions(["inf", "3.0", "1.5", "1.0", "0.7", "0.55", "0.45", "0.4"],
                            ["inf", "3", "1.5", "1", ".7", ".55", ".45", ".4"],
                            [float("inf"), 3.0, 1.5, 1.0, 0.7, 0.55, 0.45, 0.4]),
                "Filter std. dev.", frozenset({"inf", "0.55", "0.45", "0.4"})),
    DatasetInfo("low-pass",
                _conditions(["0", "1", "3", "5", "7", "10", "15", "40"], ["0", "1", "3", "5", "7", "10", "15", "40"],
                            [0, 1, 3, 5, 7, 10, 15, 40]),
                "Filter std. dev.", frozenset({"0", "15", "40"})),
    DatasetInfo("phase-scrambling",
                _conditions(["0", "30", "60", "90", "120", "150", "180"],
                            ["0", "30", "60", "90", "120", "150", "180"], [0, 30, 60, 90, 120, 150, 180]),
                "Phase noise width (deg)", frozenset({"0", "150", "180"})),
    DatasetInfo("power-equalisation", _conditions(["0", "pow"], ["original", "equalised"], [0, 1]),
                "Power spectrum", frozenset({"0"})),
    DatasetInfo("false-colour", _conditions(["True", "False"], ["true", "opponent"], [0, 1]), "Colour",
                frozenset({"True"})),
    DatasetInfo("rotation", _conditions(["0", "90", "180", "270"], ["0", "90", "180", "270"], [0, 90, 180, 270]),
                "Rotation angle (deg)", frozenset({"0"})),
    _eidolon("eidolonI", "10", [1, 64, 128]),
    _eidolon("eidolonII", "3", [1, 32, 64, 128]),
    _eidolon("eidolonIII", "0", [1, 16, 32, 64, 128]),
    DatasetInfo("uniform-noise",
                _conditions(["0.0", "0.03", "0.05", "0.1", "0.2", "0.35", "0.6", "0.9"],
                            ["0", ".03", ".05", ".1", ".2", ".35", ".6", ".9"],
                            [0.0, 0.03, 0.05, 0.1, 0.2, 0.35, 0.6, 0.9]),
                "Uniform noise width", frozenset({"0.0", "0.6", "0.9"})),
    DatasetInfo("sketch"),
    DatasetInfo("stylized"),
    DatasetInfo("edge"),
    DatasetInfo("silhouette"),
    DatasetInfo("cue-conflict"),
)

DATASETS: dict[str, DatasetInfo] = {d.name: d for d in _DATASETS}
"""All 17 datasets by name; every one counts for the OOD-accuracy and most-human-like benchmark tables."""

PARAMETRIC_DATASETS: tuple[str, ...] = tuple(d.name for d in _DATASETS if d.parametric)
SHAPE_BIAS_DATASET = "cue-conflict"
SINGLE_CONDITION = "all"


def dataset_info(name: str) -> DatasetInfo:
    """The dataset called `name`; ValueError naming the known ones otherwise."""
    try:
        return DATASETS[name]
    except KeyError:
        raise ValueError(f"unknown model-vs-human dataset {name!r}; known: {', '.join(DATASETS)}") from None


def _as_float(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None


def canonical_condition(dataset: str, raw: str) -> str:
    """The toolbox's key for condition `raw` of `dataset` ("0.90" -> "0.9", "true" -> "True").

    Non-parametric datasets have one condition, SINGLE_CONDITION, whatever the file says (the toolbox's
    model files write NaN, its human files 0); an unknown condition of a parametric dataset is a ValueError.
    """
    info = dataset_info(dataset)
    if not info.parametric:
        return SINGLE_CONDITION
    text = raw.strip()
    number = _as_float(text)
    for key in info.condition_keys:
        if text.lower() == key.lower():
            return key
        key_number = _as_float(key)
        if number is not None and key_number is not None and number == key_number:
            return key
    raise ValueError(f"unknown condition {raw!r} for dataset {dataset!r}; expected one of "
                     f"{', '.join(info.condition_keys)}")
