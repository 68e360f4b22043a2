"""Write a model's responses as a model-vs-human raw-data CSV, byte for byte in the toolbox's format.

`<out>/raw-data/<dataset>/<dataset>_<model>_session-1.csv`, header
`subj,session,trial,rt,object_response,category,condition,imagename`, CRLF line ends (Python's csv default, as
in the toolbox's files); model rows have subj = the model name, session 1 and rt NaN.
"""
from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from genfast.evaluate.durable import atomic_write_text

HEADER: tuple[str, ...] = ("subj", "session", "trial", "rt", "object_response", "category", "condition",
                           "imagename")
MODEL_RT = "NaN"
SESSION = 1
_UNSAFE = re.compile(r"[^A-Za-z0-9.+-]+")


@dataclass(frozen=True)
class Row:
    """One trial of a model observer."""

    trial: int
    object_response: str
    category: str
    condition: str
    imagename: str


def sanitise_name(name: str) -> str:
    """A model or dataset name safe for the toolbox's `_`-separated file names: every run of characters other
    than letters, digits, '.', '+' and '-' becomes '-' ("my_model v2" -> "my-model-v2")."""
    clean = _UNSAFE.sub("-", name).strip("-")
    if not clean:
        raise ValueError(f"name {name!r} has no letters or digits to name the raw-data file by")
    return clean


def raw_data_path(out: str | Path, dataset: str, model: str) -> Path:
    """Where the toolbox expects the raw data of `model` on `dataset` below the output folder `out`."""
    for label, value in (("dataset", dataset), ("model", model)):
        if value != sanitise_name(value):
            raise ValueError(f"{label} name {value!r} must not contain '_' or other separators "
                             f"(use {sanitise_name(value)!r})")
    return Path(out) / "raw-data" / dataset / f"{dataset}_{model}_session-{SESSION}.csv"


def format_raw_data(model: str, rows: Iterable[Row]) -> str:
    """The CSV text (header and one line per row, in the order given)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(HEADER)
    for row in rows:
        writer.writerow((model, SESSION, row.trial, MODEL_RT, row.object_response, row.category, row.condition,
                         row.imagename))
    return buffer.getvalue()


def write_raw_data(path: str | Path, model: str, rows: Iterable[Row]) -> None:
    """Write (atomically replace) one raw-data CSV."""
    atomic_write_text(path, format_raw_data(model, rows))
