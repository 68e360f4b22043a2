"""`write_audit`: one self-contained HTML page (no script, no external resource, thumbnails embedded as data: URIs)
listing, per dataset and model, the images that cost the model most error consistency with the human subjects
(genfast.metrics.audit), each with its thumbnail, the model's decision and the subjects' decisions."""
from __future__ import annotations

import base64
import io
from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import Sequence

import pandas as pd
from PIL import Image

from genfast.evaluate.datasets import dataset_folder, list_items
from genfast.metrics.audit import image_costs
from genfast.metrics.benchmark import observers
from genfast.metrics.datasets import DATASETS, canonical_condition
from genfast.metrics.measure import select_models
from genfast.metrics.rawdata import image_id

THUMBNAIL = 128  # pixels of a thumbnail's longer side
_JPEG_QUALITY = 85
_STYLE = ("body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em}"
          "table{border-collapse:collapse;margin-bottom:2em}td,th{border:1px solid #ccc;padding:3px 8px;"
          "vertical-align:middle;text-align:left}td.num{text-align:right}.wrong{color:#b00020;font-weight:bold}"
          ".right{color:#1b5e20;font-weight:bold}.missing{color:#777;font-style:italic}"
          f"img{{display:block;max-width:{THUMBNAIL}px;max-height:{THUMBNAIL}px}}")
DEFINITION = (
    "Each image's <em>cost</em> is its share of the shortfall 1&nbsp;&minus;&nbsp;&kappa; of the model's error "
    "consistency &kappa; with the human subjects, as the model-vs-human toolbox defines it: per benchmark "
    "condition c and subject s, &kappa;<sub>cs</sub> = 1 &minus; (1 &minus; c<sub>obs</sub>) / "
    "(1 &minus; c<sub>exp</sub>), where 1 &minus; c<sub>obs</sub> is the fraction of the condition's "
    "n<sub>c</sub> images on which the model and the subject differ in correctness (one right, the other wrong) "
    "and c<sub>exp</sub> = p<sub>1</sub>p<sub>2</sub> + (1 &minus; p<sub>1</sub>)(1 &minus; p<sub>2</sub>) comes "
    "from their accuracies; &kappa; is the mean over the C conditions and S subjects. An image costs "
    "1 / (C S n<sub>c</sub>) &times; the sum, over the subjects whose correctness differs from the model's on it, "
    "of 1 / (1 &minus; c<sub>exp</sub>), and the costs of a dataset's images add up to 1 &minus; &kappa;. The "
    "most costly images come first: the model wrong where the subjects were right, or right where they were "
    "wrong. Images are matched across observers by condition and image id (the file-name suffix), as the "
    "error-consistency code matches them.")


class _Thumbnails:
    """The image files of each dataset under an images folder, found by the model's image name or by
    (condition, image id), as <img> tags (each encoded once), or why there is none."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self._folders: dict[str, tuple[dict[str, Path], dict[tuple[str, str], Path], str]] = {}
        self._tags: dict[Path, str] = {}

    def _index(self, dataset: str) -> tuple[dict[str, Path], dict[tuple[str, str], Path], str]:
        """(by file name, by (condition, image id), a note on the folder) of `dataset`'s images."""
        if dataset in self._folders:
            return self._folders[dataset]
        by_name: dict[str, Path] = {}
        by_key: dict[tuple[str, str], Path] = {}
        if self.root is None:
            note = "no images folder given (--images): images not shown"
        else:
            try:
                folder = dataset_folder(self.root, dataset)
                _, items, _ = list_items(folder)
                note = f"images from {folder}"
            except (ValueError, OSError) as exc:
                items, note = [], f"images not shown: {exc}"
            for item in items:
                by_name.setdefault(item.imagename, item.path)
                try:
                    condition = canonical_condition(dataset, item.condition)
                except ValueError:  # a condition the dataset does not have: no trial can show this file
                    continue
                by_key.setdefault((condition, image_id(item.imagename)), item.path)
        self._folders[dataset] = (by_name, by_key, note)
        return self._folders[dataset]

    def note(self, dataset: str) -> str:
        return self._index(dataset)[2]

    def tag(self, dataset: str, condition: str, imagename: str) -> str:
        """An <img> of the image's thumbnail, or why it is not shown (the table names the image below)."""
        by_name, by_key, _ = self._index(dataset)
        path = by_name.get(imagename) or by_key.get((condition, image_id(imagename)))
        if path is None:
            return "<span class='missing'>image not found</span>"
        if path not in self._tags:
            try:
                with Image.open(path) as image:
                    small = image.convert("RGB")
                    small.thumbnail((THUMBNAIL, THUMBNAIL))
                buffer = io.BytesIO()
                small.save(buffer, format="JPEG", quality=_JPEG_QUALITY)
                data = base64.b64encode(buffer.getvalue()).decode("ascii")
                self._tags[path] = f"<img alt='{escape(imagename)}' src='data:image/jpeg;base64,{data}'>"
            except Exception as exc:  # PIL raises many exception types for broken files
                self._tags[path] = (f"<span class='missing'>image unreadable: {escape(str(path))} "
                                    f"({escape(type(exc).__name__)})</span>")
        return self._tags[path]


def _responses(counts: dict[str, int]) -> str:
    return ", ".join(f"{escape(response)} {count}" for response, count in counts.items())


def _table(dataset: str, model: str, costs: pd.DataFrame, top: int, thumbnails: _Thumbnails) -> list[str]:
    """The heading and table of `model`'s `top` most costly images of `dataset`."""
    shown = costs.loc[costs["cost"] > 0].head(top)
    subjects, shortfall = int(costs["humans"].iloc[0]), costs["cost"].sum()
    lines = [f"<h3>{escape(model)} on {escape(dataset)}</h3>",
             f"<p>Error consistency with {subjects} subject(s) over {len(costs)} image(s) of the benchmark "
             f"conditions: &kappa; = {1 - shortfall:.3f} (1 &minus; &kappa; = {shortfall:.3f}); the model "
             f"differs from at least one subject on {int((costs['cost'] > 0).sum())} image(s); the "
             f"{len(shown)} below cost {shown['cost'].sum():.3f}.</p>"]
    if shown.empty:
        return lines
    lines.append("<table><thead><tr><th>rank</th><th>image</th><th>condition</th><th>true category</th>"
                 "<th>model's decision</th><th>subjects right</th><th>subjects' decisions</th><th>cost</th>"
                 "</tr></thead><tbody>")
    for rank, row in enumerate(shown.itertuples(index=False), start=1):
        verdict = "<span class='right'>right</span>" if row.correct else "<span class='wrong'>wrong</span>"
        lines.append(
            f"<tr><td class='num'>{rank}</td><td>{thumbnails.tag(dataset, row.condition, row.imagename)}"
            f"<br><small>{escape(row.imagename)}</small></td><td>{escape(row.condition)}</td>"
            f"<td>{escape(row.category)}</td><td>{escape(row.response)} ({verdict})</td>"
            f"<td class='num'>{row.humans_right}/{row.humans}</td><td>{_responses(row.human_responses)}</td>"
            f"<td class='num'>{row.cost:.4f}</td></tr>")
    lines.append("</tbody></table>")
    return lines


def write_audit(trials: pd.DataFrame, path: str | Path, top: int, images: str | Path | None = None,
                models: Sequence[str] | None = None, source: str = "") -> Path:
    """Write the audit page to `path`: per dataset with human subjects and per model (`models`, None: all), its
    `top` most costly images (genfast.metrics.audit.image_costs) with thumbnails from the dataset folders under
    `images` (laid out as `genfast evaluate --data` reads them; a missing file is named, not fatal). Return
    `path`; ValueError when `top` is not positive or no dataset has both models and human subjects,
    FileNotFoundError when `images` is not a folder."""
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValueError(f"audit: the number of images per table must be a positive integer, got {top!r}")
    if images is not None and not Path(images).is_dir():
        raise FileNotFoundError(f"images folder {images} does not exist")
    chosen = select_models(trials, models)
    thumbnails = _Thumbnails(None if images is None else Path(images))
    present = set(chosen["dataset"].astype(str).unique())
    body: list[str] = []
    tables = 0
    for dataset in (d for d in DATASETS if d in present):
        in_dataset = chosen.loc[chosen["dataset"].astype(str) == dataset]
        names, subjects = observers(in_dataset)
        body.append(f"<h2>{escape(dataset)}</h2>")
        if not subjects or not names:
            body.append(f"<p class='missing'>no {'human subjects' if names else 'models'}: nothing to compare</p>")
            continue
        body.append(f"<p>{escape(thumbnails.note(dataset))}</p>")
        for model in names:
            body += _table(dataset, model, image_costs(in_dataset, model, dataset), top, thumbnails)
            tables += 1
    if not tables:
        raise ValueError(f"audit: no dataset of {source or 'the trials'} has both models and human subjects")
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    intro = (f"Raw data: {escape(source or 'given trials')}. Per dataset and model, the {top} images that cost "
             f"the model most error consistency with the human subjects. Written {stamp} by "
             f"<code>genfast report --audit</code>.")
    page = ["<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'>",
            "<title>model-vs-human per-image audit</title>", f"<style>{_STYLE}</style></head><body>",
            "<h1>model-vs-human per-image audit</h1>", f"<p>{intro}</p>", f"<p>{DEFINITION}</p>", *body,
            "</body></html>"]
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text("\n".join(page), encoding="utf-8")
    return out
