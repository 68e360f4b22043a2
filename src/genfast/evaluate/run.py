"""A resumable model-vs-human evaluation: classify every stimulus and write the toolbox's raw data.

Per (dataset, model) the run keeps a journal `<out>/journal/<ds>/<ds>_<model>.jsonl`: each image is appended
(and fsync'd) as soon as the classifier reports it, keyed by its path and a hash of its file's content, so a run
killed at any point loses at most the images in flight (SIGINT and SIGTERM wait for the journal line being
written, then stop with `Interrupted` saying how far the run got). A run started again continues a journal only
if every setting that changes a score is the same (`EvaluateConfig.settings`: the model and a hash of its files,
dtype, device type, the method with all its fields, seed, prompt, classes; the refusal names what differs). It
classifies what the journal does not hold, including any image whose file changed since it was journalled
(recomputed, and listed in `DatasetResult.replaced`), and once every image is in writes (atomically, in trial
order) `<out>/raw-data/<ds>/<ds>_<model>_session-1.csv` and the sidecar `<out>/sidecar/<ds>/<ds>_<model>.jsonl`
(one JSON object per image: scores, sample counts, probabilities, evaluations, seconds, content hash).

What a resumed run reproduces: the noise and timesteps of every image exactly, and so its decision, pruning and
sample counts (the raw-data CSV); its scores to about 1e-7 relative, not bit for bit, because the denoiser's
float arithmetic depends on which images share a batch (measured on the bundled model over batch sizes 7, 64 and
256: decisions and sample counts equal, scores up to 1.8e-7 apart). A class within that rounding of a pruning
threshold or of the winner could in principle go the other way. Trial numbers are positions in the dataset's
order, so a skipped image leaves a gap. Everything (datasets, method, device, dtype, and the model when an image
is still to be classified) is checked before the first byte of a journal is written.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
from tqdm import tqdm

from genfast.engine.methods import get_method
from genfast.evaluate.datasets import ON_ERROR, Dataset, Item, load_datasets
from genfast.evaluate.durable import Interrupted, Journal, atomic_write_text, interrupts_as_exceptions
from genfast.evaluate.rawdata import Row, raw_data_path, sanitise_name, write_raw_data
from genfast.models.base import check_class_names, format_prompt, resolve_device_dtype
from genfast.vocabulary import DEFAULT_PROMPT, MVH_CLASSES

SKIPPED_HEADER = ("dataset", "path", "reason")


class PredictionLike(Protocol):
    label: str
    index: int
    scores: np.ndarray
    n_samples: np.ndarray
    probabilities: np.ndarray
    evaluations: int
    key: int
    seconds: float


class ClassifierLike(Protocol):
    def classify(self, images: Sequence[Any], *, keys: Sequence[int] | None = None, return_details: bool = False,
                 progress: bool = False,
                 on_result: Callable[[int, PredictionLike], None] | None = None) -> list[PredictionLike]: ...


@dataclass(frozen=True)
class EvaluateConfig:
    """What `genfast evaluate` does. `model` goes to genfast.api.Classifier as is (a path or a name);
    `datasets` None means every dataset under `data` (or `data` itself when it is one image folder)."""

    model: str
    data: Path
    out: Path
    datasets: tuple[str, ...] | None = None
    model_name: str | None = None
    classes: tuple[str, ...] = MVH_CLASSES
    prompt: str = DEFAULT_PROMPT
    method: str = "genfast"
    seed: int = 0
    batch_size: int | None = None
    device: str | None = None
    dtype: str | None = None
    limit: int | None = None
    on_error: str = "raise"
    chunk_size: int = 64
    progress: bool = True
    model_options: tuple[tuple[str, Any], ...] = ()  # adapter options (e.g. resolution, guidance_scale)

    def __post_init__(self) -> None:
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}, got {self.on_error!r}")
        if self.chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")
        if len(check_class_names(self.classes)) < 2:
            raise ValueError(f"classes must name at least two classes to choose between, got {list(self.classes)}")
        format_prompt(self.prompt, self.classes[0])  # one placeholder for the class name, or a clear error
        get_method(self.method)  # these three are valid, or a clear error before anything is written
        resolve_device_dtype(self.device, self.dtype)

    @property
    def name(self) -> str:
        """The model's name in raw-data file names and the subj column."""
        return sanitise_name(self.model_name) if self.model_name else derive_model_name(self.model)

    def settings(self) -> dict[str, Any]:
        """Every setting that changes a score, as a journal records it: a journal is continued only by a run
        with the same settings. The batch and chunk sizes are not among them (they change no decision)."""
        method = get_method(self.method)
        device, dtype = resolve_device_dtype(self.device, self.dtype)
        return {"model": model_identity(self.model), "model_files": model_fingerprint(self.model),
                "model_name": self.name, "method": {"name": method.name, **dataclasses.asdict(method)},
                "seed": self.seed, "prompt": self.prompt, "classes": list(self.classes),
                "dtype": str(dtype).removeprefix("torch."), "device": device.type,
                "model_options": {name: repr(value) for name, value in self.model_options}}


@dataclass
class DatasetResult:
    """What one dataset's run produced."""

    dataset: str
    raw_data: Path
    sidecar: Path
    rows: int
    classified: int  # images classified by this run (the rest came from the journal)
    skipped: int
    replaced: tuple[str, ...] = ()  # journalled images whose file changed since: classified again


def derive_model_name(model: str) -> str:
    """A model's default name: the last path component of `model` (file name without suffix for a file),
    with '_' and other separators replaced by '-' ("runs/sd_v1.5/" -> "sd-v1.5", "org/model" -> "model")."""
    path = Path(model.rstrip("/\\"))
    base = path.stem if path.is_file() else path.name
    return sanitise_name(base or model)


def _model_path(model: str) -> Path | None:
    """The local file or folder `model` names (a bundled name first, as genfast.models.load_model reads it)."""
    from genfast.models import BUNDLED_MODELS

    path = BUNDLED_MODELS[model] if model in BUNDLED_MODELS else Path(model)
    return path if path.exists() else None


def model_identity(model: str) -> str:
    """`model` as recorded in a journal: an existing path made absolute, a bundled name or anything else as
    given."""
    path = _model_path(model)
    return str(path.resolve()) if path is not None and path == Path(model) else model


def _file_hash(path: Path, digest: Any = None) -> Any:
    digest = digest or hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest


def content_hash(path: Path) -> str:
    """The hex blake2b-128 hash of a file's bytes: a journal entry is keyed by its image's path and this."""
    return _file_hash(path).hexdigest()


def model_fingerprint(model: str) -> str | None:
    """A hash of the model's files (every non-hidden file of its folder, by relative path, size and content), so
    that a journal is continued only with the same weights and configs; None when `model` is no local path.
    Reads every file once per run (a few seconds for a multi-GB folder)."""
    path = _model_path(model)
    if path is None:
        return None
    files = [path] if path.is_file() else sorted(
        f for f in path.rglob("*") if f.is_file() and not any(p.startswith(".") for p in f.relative_to(path).parts))
    digest = hashlib.blake2b(digest_size=16)
    for f in files:
        name = f.name if f == path else f.relative_to(path).as_posix()
        digest.update(f"{name}\0{f.stat().st_size}\0".encode())
        _file_hash(f, digest)
    return digest.hexdigest()


def make_classifier(config: EvaluateConfig) -> ClassifierLike:
    """genfast.api.Classifier for the config (or the test-only fake for `--model fake...`)."""
    from genfast.testing.fake import fake_from_spec, is_fake_spec

    if is_fake_spec(config.model):
        return fake_from_spec(config.model, config.classes, seed=config.seed)
    from genfast.api import Classifier

    return Classifier(config.model, list(config.classes), prompt=config.prompt, method=config.method,
                      seed=config.seed, batch_size=config.batch_size, device=config.device, dtype=config.dtype,
                      **dict(config.model_options))


def _per_class(classes: Sequence[str], values: np.ndarray, kind: type, what: str) -> dict[str, Any]:
    values = np.asarray(values)
    if values.shape != (len(classes),):
        raise ValueError(f"prediction {what} has shape {values.shape}, expected ({len(classes)},) for the classes")
    if kind is float:
        return {c: (float(v) if math.isfinite(v) else None) for c, v in zip(classes, values.tolist())}
    return {c: int(v) for c, v in zip(classes, values.tolist())}


def journal_entry(item: Item, prediction: PredictionLike, classes: Sequence[str], content: str) -> dict[str, Any]:
    """One finished image as a journal line (JSON-ready; non-finite floats become null); `content` is the
    content hash of the image's file."""
    if prediction.label not in classes or classes[int(prediction.index)] != prediction.label:
        raise ValueError(f"{item.path}: prediction {prediction.label!r} (index {prediction.index}) is not one of "
                         f"the classes")
    return {"path": item.relpath, "content": content, "imagename": item.imagename, "key": int(prediction.key),
            "prediction": prediction.label, "index": int(prediction.index),
            "evaluations": int(prediction.evaluations), "seconds": float(prediction.seconds),
            "scores": _per_class(classes, prediction.scores, float, "scores"),
            "n_samples": _per_class(classes, prediction.n_samples, int, "n_samples"),
            "probabilities": _per_class(classes, prediction.probabilities, float, "probabilities")}


def journal_path(out: Path, dataset: str, model: str) -> Path:
    return Path(out) / "journal" / dataset / f"{dataset}_{model}.jsonl"


def sidecar_path(out: Path, dataset: str, model: str) -> Path:
    return Path(out) / "sidecar" / dataset / f"{dataset}_{model}.jsonl"


def _write_outputs(dataset: Dataset, name: str, journal: Journal, model: str, out: Path, classified: int,
                   hashes: dict[str, str], replaced: tuple[str, ...]) -> DatasetResult:
    rows, lines = [], []
    for item in dataset.items:
        entry = journal.entries[item.relpath, hashes[item.relpath]]
        rows.append(Row(item.trial, entry["prediction"], item.category, item.condition, item.imagename))
        lines.append(json.dumps({"trial": item.trial, "category": item.category, "condition": item.condition,
                                 **entry}, allow_nan=False))
    csv_path = raw_data_path(out, name, model)
    side_path = sidecar_path(out, name, model)
    atomic_write_text(side_path, "".join(line + "\n" for line in lines))
    write_raw_data(csv_path, model, rows)
    return DatasetResult(name, csv_path, side_path, len(rows), classified, len(dataset.skipped), replaced)


def _write_skipped(out: Path, datasets: Sequence[Dataset]) -> None:
    """Merge this run's skipped images into `<out>/skipped.csv` (one row per image, replacing older rows of
    the same datasets)."""
    path = Path(out) / "skipped.csv"
    names = {d.name for d in datasets}
    rows: list[tuple[str, str, str]] = []
    if path.exists():
        with open(path, newline="", encoding="utf-8") as f:
            rows = [tuple(r) for r in list(csv.reader(f))[1:] if r and r[0] not in names]  # type: ignore[misc]
    rows += [(d.name, str(s.path), s.reason) for d in datasets for s in d.skipped]
    if not rows and not path.exists():
        return
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SKIPPED_HEADER)
    writer.writerows(sorted(rows))
    atomic_write_text(path, buffer.getvalue())


class _Progress:
    """A tqdm bar over images with evaluations per second."""

    def __init__(self, dataset: str, total: int, done: int, enabled: bool) -> None:
        self.bar = tqdm(total=total, initial=done, desc=dataset, unit="img", disable=not enabled,
                        dynamic_ncols=True)
        self.start = time.perf_counter()
        self.evaluations = 0

    def update(self, evaluations: int) -> None:
        self.evaluations += evaluations
        rate = self.evaluations / max(time.perf_counter() - self.start, 1e-9)
        self.bar.set_postfix_str(f"{rate:.1f} eval/s", refresh=False)
        self.bar.update(1)

    def close(self) -> None:
        self.bar.close()


def _classify_pending(classifier: ClassifierLike, pending: list[Item], journal: Journal, classes: Sequence[str],
                      chunk_size: int, progress: _Progress, hashes: dict[str, str]) -> None:
    lock = threading.Lock()  # on_result may come from a classifier's worker thread
    for start in range(0, len(pending), chunk_size):
        chunk = pending[start:start + chunk_size]
        recorded = [False] * len(chunk)

        def record(i: int, prediction: PredictionLike) -> None:
            with lock:
                if not recorded[i]:
                    journal.append(journal_entry(chunk[i], prediction, classes, hashes[chunk[i].relpath]))
                    recorded[i] = True
                    progress.update(int(prediction.evaluations))

        predictions = classifier.classify([str(item.path) for item in chunk], on_result=record)
        if len(predictions) != len(chunk):
            raise ValueError(f"classifier returned {len(predictions)} predictions for {len(chunk)} images")
        for i, prediction in enumerate(predictions):  # for classifiers that did not call on_result
            record(i, prediction)


def _done(dataset: Dataset, journal: Journal, hashes: dict[str, str]) -> int:
    return sum((item.relpath, hashes[item.relpath]) in journal.entries for item in dataset.items)


def evaluate(config: EvaluateConfig, classifier: ClassifierLike | None = None) -> list[DatasetResult]:
    """Run (or continue) the evaluation; returns one result per dataset. The classifier is built from the
    config (make_classifier) only if some image is still to be classified, before anything is journalled.
    A SIGINT or SIGTERM (in the main thread) raises `Interrupted` saying how many images each dataset has
    journalled; running again continues from there."""
    model = config.name
    datasets = load_datasets(config.data, config.datasets, classes=config.classes, limit=config.limit,
                             on_error=config.on_error)
    names = [sanitise_name(d.name) for d in datasets]  # a plain folder's name may hold '_'
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ValueError(f"datasets {datasets[names.index(name)].root} and {datasets[i].root} would both "
                             f"be written as {name!r}; choose one with --datasets")
    settings = config.settings()
    hashes = [{item.relpath: content_hash(item.path) for item in d.items} for d in datasets]
    journals: list[Journal] = []
    at_start: list[int] = []
    if classifier is None and not all(journal_path(config.out, name, model).exists() for name in names):
        classifier = make_classifier(config)  # a new journal: check the model before anything is created
    with interrupts_as_exceptions():
        try:
            for name in names:  # open (and check) every journal before the first image is classified
                journals.append(Journal(journal_path(config.out, name, model), settings, ("path", "content")))
            at_start = [_done(d, j, h) for d, j, h in zip(datasets, journals, hashes)]
            if classifier is None and any(done < len(d.items) for d, done in zip(datasets, at_start)):
                classifier = make_classifier(config)  # an existing journal still lacks images
            _write_skipped(config.out, datasets)
            results = []
            for dataset, name, journal, h in zip(datasets, names, journals, hashes):
                pending = [item for item in dataset.items if (item.relpath, h[item.relpath]) not in journal.entries]
                journalled = {path for path, _ in journal.entries}
                replaced = tuple(item.relpath for item in pending if item.relpath in journalled)
                if pending:
                    progress = _Progress(name, len(dataset.items), len(dataset.items) - len(pending),
                                         config.progress)
                    try:
                        _classify_pending(classifier, pending, journal, config.classes, config.chunk_size,
                                          progress, h)
                    finally:
                        progress.close()
                results.append(_write_outputs(dataset, name, journal, model, config.out, len(pending), h,
                                              replaced))
            return results
        except Interrupted as exc:
            done = [_done(d, j, h) for d, j, h in zip(datasets, journals, hashes)]
            state = "; ".join(f"{name} {n} of {len(d.items)} images journalled ({n - before} by this run)"
                              for d, name, n, before in zip(datasets, names, done, at_start))
            raise Interrupted(exc.signum, f"{exc}: {state or 'nothing journalled yet'}") from None
        finally:
            for journal in journals:
                journal.close()
