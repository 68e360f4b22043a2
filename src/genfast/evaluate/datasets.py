"""model-vs-human stimulus folders as deterministic lists of (path, category, condition, imagename) items.

Two layouts are read, following the toolbox (bethgelab/model-vs-human):

- category layout `<dataset>/<category>/<file>` (edge, silhouette, cue-conflict, and any plain image folder with
  one sub-folder per class): condition is "NaN", items sorted by (category, file name);
- dnn layout `<dataset>/dnn/session-1/NNNN_<exp>_dnn_<condition>_<category>_<x>_<id>.png` (the parametric
  datasets): condition and category are fields 3 and 4 of the file name split on `_`, items sorted by name.

`imagename` is the file name, which is what the toolbox's raw data (and so genfast.metrics) matches images by.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

from PIL import Image

from genfast.models.base import check_class_names

# Folder names the texture-vs-shape repository (Geirhos et al. 2019) uses for the same stimuli.
ALIASES: dict[str, str] = {"edges": "edge", "filled-silhouettes": "silhouette"}
IMAGE_SUFFIXES: frozenset[str] = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp"})
NO_CONDITION = "NaN"  # the toolbox's condition value for datasets without conditions
ON_ERROR = ("raise", "skip")


@dataclass(frozen=True)
class Item:
    """One stimulus. `trial` is its 1-based position in the dataset's order (skipped images keep theirs);
    `relpath` (POSIX, relative to the dataset folder) identifies it in a run's journal."""

    path: Path
    category: str
    condition: str
    imagename: str
    relpath: str
    trial: int


@dataclass(frozen=True)
class Skipped:
    """A stimulus left out because it could not be read (only with on_error="skip")."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Dataset:
    """A dataset's items in the toolbox's trial order, plus the stimuli skipped as unreadable."""

    name: str
    root: Path
    layout: str  # "category" or "dnn"
    items: tuple[Item, ...]
    skipped: tuple[Skipped, ...] = ()

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def categories(self) -> tuple[str, ...]:
        return tuple(sorted({item.category for item in self.items}))


def canonical_name(folder_name: str) -> str:
    """The model-vs-human name of a dataset folder ("edges" -> "edge"); other names are kept."""
    return ALIASES.get(folder_name, folder_name)


def _is_image(path: Path) -> bool:
    return path.is_file() and not path.name.startswith(".") and path.suffix.lower() in IMAGE_SUFFIXES


def _subdirs(path: Path) -> list[Path]:
    return sorted((p for p in path.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)


def detect_layout(path: Path) -> str:
    """"dnn" or "category" for a dataset folder; ValueError naming the folder when it is neither."""
    if (path / "dnn").is_dir():
        if not (path / "dnn" / "session-1").is_dir():
            raise ValueError(f"dataset {path}: has dnn/ but no dnn/session-1/ (expected "
                             f"dnn/session-1/NNNN_<exp>_dnn_<condition>_<category>_<x>_<id>.png)")
        return "dnn"
    if _subdirs(path):
        return "category"
    raise ValueError(f"dataset {path}: unknown layout: expected one folder per category "
                     f"(<dataset>/<category>/*.png) or <dataset>/dnn/session-1/*.png")


def is_dataset(path: Path) -> bool:
    """Whether `path` looks like a dataset folder (dnn layout, or sub-folders holding images)."""
    if not path.is_dir():
        return False
    if (path / "dnn" / "session-1").is_dir():
        return True
    return any(_is_image(f) for d in _subdirs(path) for f in d.iterdir())


def find_datasets(root: str | Path) -> list[str]:
    """Names of the dataset folders directly under `root`, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist")
    return [d.name for d in _subdirs(root) if is_dataset(d)]


def dataset_folder(root: str | Path, name: str) -> Path:
    """The folder of dataset `name` under `root`, accepting the texture-vs-shape folder names for edge and
    silhouette; ValueError listing the datasets found when there is none."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"data folder {root} does not exist")
    candidates = [name] + [folder for folder, canonical in ALIASES.items() if canonical == name]
    for candidate in candidates:
        if (root / candidate).is_dir():
            return root / candidate
    found = [n if canonical_name(n) == n else f"{canonical_name(n)} (folder {n})" for n in find_datasets(root)]
    raise ValueError(f"unknown dataset {name!r}: no folder {root / name}; datasets found in {root}: "
                     f"{', '.join(found) if found else 'none'}")


def _check_readable(path: Path) -> str | None:
    """None if the file passes PIL's checks (chunk checksums) and decodes and converts as the classifier will
    read it (genfast.models.images.prepare_images), else why not: a truncated JPEG or a PNG with valid
    checksums but corrupt data fails here, where on_error="skip" covers it, and not in the middle of a run."""
    from genfast.models.images import prepare_images

    try:
        with Image.open(path) as image:
            image.verify()
        prepare_images([path], 8, 3)
    except Exception as exc:  # PIL raises many exception types for broken files
        return f"{type(exc).__name__}: {exc}"
    return None


def _category_items(path: Path) -> list[Item]:
    items = []
    for folder in _subdirs(path):
        files = sorted((f for f in folder.iterdir() if _is_image(f)), key=lambda f: f.name)
        if not files:
            raise ValueError(f"dataset {path}: empty folder {folder} (no {'/'.join(sorted(IMAGE_SUFFIXES))} "
                             f"images)")
        items += [Item(f, folder.name, NO_CONDITION, f.name, f"{folder.name}/{f.name}", len(items) + i + 1)
                  for i, f in enumerate(files)]
    return items


def _dnn_files(path: Path) -> list[Path]:
    folder = path / "dnn" / "session-1"
    files = sorted((f for f in folder.iterdir() if _is_image(f)), key=lambda f: f.name)
    if not files:
        raise ValueError(f"dataset {path}: empty folder {folder} (no images)")
    return files


def list_items(path: str | Path) -> tuple[str, list[Item], list[tuple[Path, str]]]:
    """(layout, items in trial order, (file, why) for each dnn file whose name lacks the condition and category
    fields) of the dataset folder `path`, from the file names alone: no image is opened."""
    path = Path(path)
    if not path.is_dir():
        raise FileNotFoundError(f"dataset folder {path} does not exist")
    layout = detect_layout(path)
    if layout == "category":
        return layout, _category_items(path), []
    items, problems = [], []
    for trial, file in enumerate(_dnn_files(path), start=1):
        fields = file.name.split("_")
        if len(fields) < 6:
            problems.append((file, "file name does not split on '_' into "
                                   "NNNN_<exp>_dnn_<condition>_<category>_<x>_<id>"))
            continue
        items.append(Item(file, fields[4], fields[3], file.name, f"dnn/session-1/{file.name}", trial))
    return layout, items, problems


def load_dataset(path: str | Path, name: str | None = None, *, classes: Sequence[str] | None = None,
                 limit: int | None = None, on_error: str = "raise") -> Dataset:
    """Read the dataset in folder `path` (named `name`, default: the folder's canonical name).

    `classes`: every category must be one of them (ValueError otherwise). `limit`: keep the first `limit` items
    in trial order. Each kept image is checked with PIL; an unreadable one (or a dnn file name without
    condition and category fields) raises ValueError naming it, or with on_error="skip" is left out and listed
    in `Dataset.skipped`.
    """
    path = Path(path)
    if on_error not in ON_ERROR:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR)}, got {on_error!r}")
    if limit is not None and (not isinstance(limit, int) or limit < 1):
        raise ValueError(f"limit must be a positive integer or None, got {limit!r}")
    layout, items, problems = list_items(path)
    if classes is not None:
        known = set(classes)
        for item in items:
            if item.category not in known:
                try:
                    check_class_names(sorted({i.category for i in items}), known=classes)
                except ValueError as exc:  # the message lists a few names, with the count and the nearest
                    raise ValueError(f"dataset {path}: category {item.category!r} of {item.path} is not one of "
                                     f"the classes; of its categories, {exc}") from None
    if limit is not None:
        items = items[:limit]
    kept = []
    for item in items:
        reason = _check_readable(item.path)
        if reason is None:
            kept.append(item)
        else:
            problems.append((item.path, f"unreadable image: {reason}"))
    if problems and on_error == "raise":
        file, reason = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ValueError(f"dataset {path}: {file}: {reason}{more}; pass on_error='skip' to leave such files out")
    if not kept:
        raise ValueError(f"dataset {path}: no readable images")
    return Dataset(name or canonical_name(path.name), path, layout, tuple(kept),
                   tuple(Skipped(f, r) for f, r in problems))


def load_datasets(data: str | Path, names: Sequence[str] | None = None, *, classes: Sequence[str] | None = None,
                  limit: int | None = None, on_error: str = "raise") -> list[Dataset]:
    """Datasets `names` under the folder `data`; with no names, every dataset found there, or `data` itself
    when it is a single dataset (a plain image folder with one sub-folder per class)."""
    data = Path(data)
    if not data.is_dir():
        raise FileNotFoundError(f"data folder {data} does not exist")
    if names is None:
        found = find_datasets(data)
        if found:
            folders = [data / n for n in found]
        elif is_dataset(data):
            folders = [data]
        else:
            detect_layout(data)  # raises the layout error
            raise ValueError(f"data folder {data} holds no datasets")
    else:
        if len(set(names)) != len(names):
            raise ValueError(f"datasets lists a name twice: {', '.join(names)}")
        folders = [dataset_folder(data, n) for n in names]
    return [load_dataset(f, canonical_name(f.name), classes=classes, limit=limit, on_error=on_error)
            for f in folders]
