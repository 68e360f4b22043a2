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

Several processes (torchrun, genfast.distributed): rank r journals to `<ds>_<model>.rank-<r>.jsonl` (rank 0 to
the file above), chunks of the images no journal holds are handed out one at a time by an atomic counter in the
job's store, and rank 0 writes the outputs from every rank's journal once all ranks are done. A run reads the
journals of every earlier run, whatever its world size, so the outputs do not depend on how many ranks wrote
them; `merge_only` writes them from the journals alone.
"""
from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import json
import math
import re
import threading
import time
from contextlib import suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

import numpy as np
from tqdm import tqdm

from genfast.distributed import DEFAULT_TIMEOUT, World, join
from genfast.engine.methods import get_method
from genfast.evaluate.datasets import ON_ERROR, Dataset, Item, load_datasets
from genfast.evaluate.durable import Journal, atomic_write_text, read_journal
from genfast.evaluate.rawdata import Row, raw_data_path, sanitise_name, write_raw_data
from genfast.interrupts import Interrupted, interrupts_as_exceptions
from genfast.models.base import check_class_names, format_prompt, resolve_device_dtype
from genfast.vocabulary import AGGREGATES, DEFAULT_PROMPT, MVH_CLASSES

SKIPPED_HEADER = ("dataset", "path", "reason")
KEY_FIELDS = ("path", "content")  # a journal entry is the image at this path with this content


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
                 progress: bool = False, on_result: Callable[[int, PredictionLike], None] | None = None,
                 distributed: bool | None = None) -> list[PredictionLike]: ...


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
    chunk_size: int | None = None  # images per classify call and per handed-out chunk; None: chunk_size_for()
    progress: bool = True
    model_options: tuple[tuple[str, Any], ...] = ()  # adapter options (e.g. resolution, guidance_scale)
    compile: str = "off"  # genfast.Classifier's compile= (not a setting: it changes no decision)
    class_members: tuple[tuple[str, tuple[str, ...]], ...] = ()  # classes scored through several conditionings
    aggregate: str = "best"  # how such a class is decided (genfast.vocabulary.AGGREGATES)
    merge_only: bool = False  # write the outputs from the journals, classify nothing
    timeout: float = DEFAULT_TIMEOUT  # seconds a rank waits for the others (start, any image finished)
    verbose: bool = False  # every rank shows its progress bar, not only rank 0

    def __post_init__(self) -> None:
        if not self.timeout > 0:
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if self.on_error not in ON_ERROR:
            raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}, got {self.on_error!r}")
        if self.chunk_size is not None and self.chunk_size < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {self.chunk_size!r}")
        if len(check_class_names(self.classes)) < 2:
            raise ValueError(f"classes must name at least two classes to choose between, got {list(self.classes)}")
        format_prompt(self.prompt, self.classes[0])  # one placeholder for the class name, or a clear error
        if self.aggregate not in AGGREGATES:
            raise ValueError(f"aggregate must be one of {', '.join(AGGREGATES)}, got {self.aggregate!r}")
        unknown = [name for name, _ in self.class_members if name not in self.classes]
        if unknown:
            raise ValueError(f"class members are given for {unknown[0]!r}, which is not one of the classes")
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
                "model_options": {name: repr(value) for name, value in self.model_options},
                # recorded only when set, so that journals written before these options existed continue
                **({"class_members": {n: list(m) for n, m in self.class_members}} if self.class_members else {}),
                **({"aggregate": self.aggregate} if self.aggregate != "best" else {})}


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

    members = dict(config.class_members)
    return Classifier(config.model, {c: members.get(c) for c in config.classes}, prompt=config.prompt,
                      method=config.method, seed=config.seed, batch_size=config.batch_size, device=config.device,
                      dtype=config.dtype, aggregate=config.aggregate, compile=config.compile,
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


def journal_path(out: Path, dataset: str, model: str, rank: int = 0) -> Path:
    """The journal rank `rank` appends to: `<ds>_<model>.jsonl` for rank 0 (and a run of one process),
    `<ds>_<model>.rank-<r>.jsonl` for rank r of a torchrun job."""
    suffix = "" if rank == 0 else f".rank-{rank}"
    return Path(out) / "journal" / dataset / f"{dataset}_{model}{suffix}.jsonl"


def journal_files(out: Path, dataset: str, model: str) -> dict[int, Path]:
    """Every rank's journal of (dataset, model) that exists, by rank (runs of any world size leave them)."""
    folder = Path(out) / "journal" / dataset
    pattern = re.compile(re.escape(f"{dataset}_{model}") + r"(?:\.rank-([1-9][0-9]*))?\.jsonl")
    matches = (pattern.fullmatch(p.name) for p in folder.iterdir()) if folder.is_dir() else ()
    return dict(sorted((int(m.group(1) or 0), folder / m.group(0)) for m in matches if m))


def journalled(out: Path, dataset: str, model: str, settings: dict[str, Any],
               live: range = range(0)) -> dict[tuple[Any, ...], dict[str, Any]]:
    """The finished images of (dataset, model) in all ranks' journals, checked against `settings`; a journal of
    a rank outside `live` (this job's ranks) must not be held open by another process."""
    entries: dict[tuple[Any, ...], dict[str, Any]] = {}
    for rank, path in journal_files(out, dataset, model).items():
        with suppress(FileNotFoundError):  # an empty journal removed by its rank as it closed it
            for key, entry in read_journal(path, settings, KEY_FIELDS, unlocked=rank not in live).items():
                entries.setdefault(key, entry)
    return entries


def sidecar_path(out: Path, dataset: str, model: str) -> Path:
    return Path(out) / "sidecar" / dataset / f"{dataset}_{model}.jsonl"


def _write_outputs(dataset: Dataset, name: str, entries: dict[tuple[Any, ...], dict[str, Any]], model: str,
                   out: Path, classified: int, hashes: dict[str, str], replaced: tuple[str, ...]) -> DatasetResult:
    missing = [item.relpath for item in dataset.items if (item.relpath, hashes[item.relpath]) not in entries]
    if missing:
        raise ValueError(f"{name}: {len(missing)} of {len(dataset.items)} images are not journalled (first: "
                         f"{missing[0]}); run without --merge-only to classify them")
    rows, lines = [], []
    for item in dataset.items:
        entry = entries[item.relpath, hashes[item.relpath]]
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
    """The job's tqdm bar: on rank 0 the images finished by all ranks (counted in the job's store) with their
    evaluations per second; on another rank (shown with --verbose) the images that rank finished."""

    def __init__(self, world: World, desc: str, total: int, done: int, enabled: bool) -> None:
        self.world, self.main = world, world.rank == 0
        self.bar = tqdm(total=total if self.main else None, initial=done if self.main else 0, unit="img",
                        desc=desc if self.main else f"{desc} ({world.label})", disable=not enabled,
                        dynamic_ncols=True)
        self.start = time.perf_counter()
        self.done = done
        self.seen = self.images = self.evaluations = 0

    def finished(self, evaluations: int) -> None:
        """This rank journalled an image that took `evaluations`."""
        self.world.add("evaluations", evaluations)
        self.world.add("images")
        self.images += 1
        self.evaluations += evaluations
        self.refresh()

    def refresh(self) -> bool:
        """Update the bar; True if some rank finished an image since the last refresh."""
        images = self.world.add("images", 0)
        moved, self.seen = images != self.seen, images
        shown = self.done + images if self.main else self.images
        if shown != self.bar.n and not self.bar.disable:
            evaluations = self.world.add("evaluations", 0) if self.main else self.evaluations
            rate = evaluations / max(time.perf_counter() - self.start, 1e-9)
            ranks = f" on {self.world.size} ranks" if self.main and self.world.size > 1 else ""
            self.bar.set_postfix_str(f"{rate:.1f} eval/s{ranks}", refresh=False)
            self.bar.update(shown - self.bar.n)
        return moved

    def close(self) -> None:
        self.bar.close()


def _classify_chunk(classifier: ClassifierLike, chunk: list[Item], contents: list[str], journals: list[Journal],
                    classes: Sequence[str], progress: _Progress, world: World) -> None:
    """Classify one chunk and journal each image as it is reported (the items, their content hashes and their
    datasets' journals in step: a chunk may span datasets)."""
    lock = threading.Lock()  # on_result may come from a classifier's worker thread
    recorded = [False] * len(chunk)

    def record(i: int, prediction: PredictionLike) -> None:
        with lock:
            if not recorded[i]:
                journals[i].append(journal_entry(chunk[i], prediction, classes, contents[i]))
                recorded[i] = True
                progress.finished(int(prediction.evaluations))
                world.check_failures()

    predictions = classifier.classify([str(item.path) for item in chunk], on_result=record, distributed=False)
    if len(predictions) != len(chunk):
        raise ValueError(f"classifier returned {len(predictions)} predictions for {len(chunk)} images")
    for i, prediction in enumerate(predictions):  # for classifiers that did not call on_result
        record(i, prediction)


def chunk_size_for(images: int, ranks: int) -> int:
    """The default chunk: 64 images, or with several ranks small enough that each gets about four chunks of a
    small job (so that all of them work and the last chunks end close together)."""
    return 64 if ranks == 1 else max(1, min(64, math.ceil(images / (4 * ranks))))


def _count(dataset: Dataset, hashes: dict[str, str], entries: dict[tuple[Any, ...], Any]) -> int:
    """How many of the dataset's images (as they are now) the entries hold."""
    return sum((item.relpath, hashes[item.relpath]) in entries for item in dataset.items)


def evaluate(config: EvaluateConfig, classifier: ClassifierLike | None = None,
             world: World | None = None) -> list[DatasetResult]:
    """Run (or continue) the evaluation; returns one result per dataset (on rank 0; [] on the other ranks).

    Under torchrun every rank calls it: chunks of the images not yet journalled are handed out one at a time
    through the job's store, each rank journals to its own file, and rank 0 writes the outputs from all journals
    once every rank is done. The classifier is built from the config (make_classifier) only if some image is
    still to be classified, before anything is journalled. A SIGINT or SIGTERM (in the main thread) raises
    `Interrupted` saying how many images each dataset has journalled; running again continues from there."""
    world = (world or join(config.timeout)).job()
    try:
        return _evaluate(config, classifier, world)
    except Exception as exc:  # the other ranks stop with this rank's message
        world.fail(str(exc))
        raise


def _evaluate(config: EvaluateConfig, classifier: ClassifierLike | None, world: World) -> list[DatasetResult]:
    model = config.name
    datasets = load_datasets(config.data, config.datasets, classes=config.classes, limit=config.limit,
                             on_error=config.on_error)
    names = [sanitise_name(d.name) for d in datasets]  # a plain folder's name may hold '_'
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ValueError(f"datasets {datasets[names.index(name)].root} and {datasets[i].root} would both "
                             f"be written as {name!r}; choose one with --datasets")
    # rank 0 reads the model's files for their hash (seconds for a large model): once per job, not per rank
    shared = world.share("settings", json.dumps(config.settings()).encode() if world.rank == 0 else None)
    settings = json.loads(shared)
    hashes = [{item.relpath: content_hash(item.path) for item in d.items} for d in datasets]
    if config.merge_only:
        if world.rank != 0:
            return []
        return [_write_outputs(d, name, journalled(config.out, name, model, settings), model, config.out, 0, h, ())
                for d, name, h in zip(datasets, names, hashes)]
    own = [journal_path(config.out, name, model, world.rank) for name in names]
    if classifier is None and not all(path.exists() for path in own):
        classifier = make_classifier(config)  # a new journal: check the model before anything is created
    journals: list[Journal] = []
    pending: list[list[int]] | None = None
    live = range(world.size)
    with interrupts_as_exceptions():
        try:
            for path in own:  # open (and check) this rank's journals before the first image is classified
                journals.append(Journal(path, settings, KEY_FIELDS))
            world.barrier("journals open")
            if world.rank == 0:
                done = [journalled(config.out, name, model, settings, live) for name in names]
                pending = [[i for i, item in enumerate(d.items) if (item.relpath, h[item.relpath]) not in entries]
                           for d, h, entries in zip(datasets, hashes, done)]
                replaced = [tuple(d.items[i].relpath for i in items if d.items[i].relpath in {p for p, _ in entries})
                            for d, items, entries in zip(datasets, pending, done)]
                world.share("pending", json.dumps(pending).encode())
                _write_skipped(config.out, datasets)
            else:
                pending = json.loads(world.share("pending"))
            work = [(d, i) for d, items in enumerate(pending) for i in items]
            size = config.chunk_size or chunk_size_for(len(work), world.size)
            chunks = [work[s:s + size] for s in range(0, len(work), size)]
            if chunks and classifier is None:
                classifier = make_classifier(config)  # an existing journal still lacks images
            total = sum(len(d.items) for d in datasets)
            progress = _Progress(world, model, total, total - len(work),
                                 config.progress and (world.rank == 0 or config.verbose) and bool(work))
            try:
                while (c := world.add("chunks handed out") - 1) < len(chunks):
                    world.check_failures()
                    items = [datasets[d].items[i] for d, i in chunks[c]]
                    _classify_chunk(classifier, items, [hashes[d][item.relpath] for (d, _), item in
                                                        zip(chunks[c], items)],
                                    [journals[d] for d, _ in chunks[c]], config.classes, progress, world)
                for journal in journals:  # closed (an empty one removed) before rank 0 reads them all
                    journal.close()
                world.add("ranks finished")
                if world.rank != 0:
                    return []
                world.wait(lambda: world.add("ranks finished", 0) == world.size, "the other ranks to finish",
                           progress=progress.refresh)
                progress.refresh()  # the last images of the other ranks
            finally:
                progress.close()
            return [_write_outputs(d, name, journalled(config.out, name, model, settings, live), model, config.out,
                                   len(items), h, r)
                    for d, name, h, items, r in zip(datasets, names, hashes, pending, replaced)]
        except Interrupted as exc:
            state = ""
            if pending is not None:
                state = "; ".join(
                    f"{name} {n} of {len(d.items)} images journalled ({n - len(d.items) + len(items)} by this run)"
                    for d, name, h, items in zip(datasets, names, hashes, pending)
                    for n in [_count(d, h, journalled(config.out, name, model, settings, live))])
            raise Interrupted(exc.signum, f"{exc}: {state or 'nothing journalled yet'}") from None
        finally:
            for journal in journals:
                journal.close()
