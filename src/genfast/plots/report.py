"""`write_report`: every figure (PNG and PDF) and a one-page summary (Markdown and self-contained HTML) with the
benchmark tables and the figures embedded."""
from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path

from matplotlib.figure import Figure
import pandas as pd

from genfast.metrics.datasets import DATASETS
from genfast.metrics.summary import Summary, summarise
from genfast.metrics.tables import display_tables, to_html, to_markdown
from genfast.plots.accuracy import plot_accuracy_by_condition
from genfast.plots.consistency import plot_consistency
from genfast.plots.definitions import PlotDefinitions
from genfast.plots.shape_bias import plot_shape_bias
from genfast.plots.style import save_figure

_FIGURE_TITLES = {"shape-bias": "Shape bias per category",
                  "accuracy-by-condition": "Accuracy against distortion level",
                  "consistency": "Consistency with human subjects"}


def select_models(trials: pd.DataFrame, models: list[str] | None) -> pd.DataFrame:
    """`trials` with only the named models (and every human); ValueError naming unknown models."""
    if models is None:
        return trials
    names = trials["observer"].astype(str)
    found = set(names.unique())
    unknown = [m for m in models if m not in found]
    if unknown:
        available = sorted(n for n in found if not n.startswith("subject-"))
        raise ValueError(f"--models: no raw data for {', '.join(unknown)}; available: {', '.join(available)}")
    return trials.loc[names.isin(models) | names.str.startswith("subject-")]


def make_figures(summary: Summary, definitions: PlotDefinitions | None = None) -> dict[str, Figure]:
    """Every figure the data allow, keyed by name: shape bias (cue-conflict), accuracy by condition
    (parametric datasets), consistency (human subjects present); styles from `definitions` (None: the toolbox's)."""
    figures = {}
    if summary.shape_bias:
        figures["shape-bias"] = plot_shape_bias(summary, definitions=definitions)
    if any(DATASETS[d].parametric for d in summary.datasets):
        figures["accuracy-by-condition"] = plot_accuracy_by_condition(summary, definitions=definitions)
    if not summary.humanlike.empty and summary.models:
        figures["consistency"] = plot_consistency(summary, definitions=definitions)
    return figures


def draw_figures(summary: Summary, out_dir: Path, definitions: PlotDefinitions | None = None) -> dict[str, list[Path]]:
    """make_figures, each saved as PNG and PDF into `out_dir`: the paths, keyed by figure name."""
    return {name: save_figure(figure, out_dir, name) for name, figure in make_figures(summary, definitions).items()}


def write_report(trials: pd.DataFrame, out_dir: str | Path, models: list[str] | None = None,
                 source: str = "", imagenet: pd.DataFrame | None = None,
                 definitions: PlotDefinitions | None = None) -> list[Path]:
    """Draw the figures and write summary.md and summary.html into `out_dir`; return every file written.

    `imagenet` (RawData.imagenet) adds the models' ImageNet validation accuracy to the tables; `definitions`
    style the figures (None: the toolbox's, see genfast.plots.definitions).
    """
    out = Path(out_dir)
    if imagenet is not None and models is not None:
        imagenet = imagenet.loc[imagenet["observer"].isin(models)]
    summary = summarise(select_models(trials, models), imagenet)
    figures = draw_figures(summary, out, definitions)
    tables = display_tables(summary)
    benchmark = [table for table in tables if table[0].startswith("Benchmark")]
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    intro = (f"Raw data: {source or 'given trials'}; {len(summary.datasets)} dataset(s); "
             f"models: {', '.join(summary.models) or 'none'}; {len(summary.humans)} human subject(s). "
             f"Written {stamp} by `genfast report`.")

    markdown = ["# model-vs-human summary", "", intro, ""]
    html = ["<!DOCTYPE html><html><head><meta charset='utf-8'><title>model-vs-human summary</title>",
            "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;padding:0 1em}"
            "table{border-collapse:collapse;margin-bottom:1.5em}td,th{border:1px solid #ccc;padding:3px 8px}"
            "td{text-align:right}td:first-child{text-align:left}img{max-width:100%}</style></head><body>",
            "<h1>model-vs-human summary</h1>", f"<p>{intro}</p>"]
    for title, table in benchmark:
        markdown += [to_markdown(title, table), ""]
        html.append(to_html(title, table))
    for name, paths in figures.items():
        png = paths[0]
        markdown += [f"## {_FIGURE_TITLES[name]}", "", f"![{_FIGURE_TITLES[name]}]({png.name}) "
                     f"([PDF]({paths[1].name}))", ""]
        encoded = base64.b64encode(png.read_bytes()).decode("ascii")
        html += [f"<h2>{_FIGURE_TITLES[name]}</h2>",
                 f"<img alt='{_FIGURE_TITLES[name]}' src='data:image/png;base64,{encoded}'>",
                 f"<p><a href='{paths[1].name}'>PDF</a></p>"]
    for title, table in tables[len(benchmark):]:
        markdown += [to_markdown(title, table), ""]
        html.append(to_html(title, table))
    html.append("</body></html>")
    md_path, html_path = out / "summary.md", out / "summary.html"
    md_path.write_text("\n".join(markdown))
    html_path.write_text("\n".join(html))
    return [p for paths in figures.values() for p in paths] + [md_path, html_path]
