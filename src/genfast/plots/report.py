"""`write_report`: every figure (PNG and PDF), the toolbox's LaTeX benchmark tables, and a one-page summary
(Markdown and self-contained HTML) with the benchmark tables and the figures embedded."""
from __future__ import annotations

import base64
from datetime import datetime, timezone
from pathlib import Path
from typing import Sequence

import pandas as pd

from genfast.metrics.measure import summarise_models
from genfast.metrics.tables import display_tables, latex_tables, to_html, to_markdown
from genfast.plots.definitions import PlotDefinitions
from genfast.plots.figures import draw
from genfast.plots.style import observer_styles, save_figure


def write_report(trials: pd.DataFrame, out_dir: str | Path, models: Sequence[str] | None = None,
                 source: str = "", imagenet: pd.DataFrame | None = None,
                 definitions: PlotDefinitions | None = None, figures: Sequence[str] | None = None,
                 audit: Path | None = None) -> list[Path]:
    """Draw the figures, write the LaTeX tables, summary.md and summary.html into `out_dir`; return every file
    written (summary.md and summary.html last).

    `imagenet` (RawData.imagenet) adds the models' ImageNet validation accuracy to the tables; `definitions`
    style the figures and name the models in the LaTeX tables (None: the toolbox's, see genfast.plots.definitions);
    `figures` are the families drawn (keys of genfast.plots.figures.FIGURES; None: all the data allow); `audit`, a
    per-image audit page written beside the summary, is linked from it.
    """
    out = Path(out_dir)
    summary = summarise_models(trials, imagenet, models)
    drawn = draw(summary, definitions, figures)
    saved = [(title, save_figure(figure, out, name)) for name, title, figure in drawn]
    labels = {name: style.label for name, style in observer_styles(summary.models, definitions).items()}
    latex = []
    for name, text in latex_tables(summary, labels).items():
        latex.append(out / name)
        latex[-1].write_text(text)
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
    if audit is not None:
        markdown += [f"Per-image audit (the images that cost each model most error consistency): [{audit.name}]"
                     f"({audit.name})", ""]
        html.append(f"<p>Per-image audit (the images that cost each model most error consistency): "
                    f"<a href='{audit.name}'>{audit.name}</a></p>")
    for title, table in benchmark:
        markdown += [to_markdown(title, table), ""]
        html.append(to_html(title, table))
    if latex:
        files = ", ".join(path.name for path in latex)
        markdown += [f"LaTeX benchmark tables, as the toolbox writes them: {files}", ""]
        html.append(f"<p>LaTeX benchmark tables, as the toolbox writes them: {files}</p>")
    for title, (png, pdf) in saved:
        markdown += [f"## {title}", "", f"![{title}]({png.name}) ([PDF]({pdf.name}))", ""]
        encoded = base64.b64encode(png.read_bytes()).decode("ascii")
        html += [f"<h2>{title}</h2>", f"<img alt='{title}' src='data:image/png;base64,{encoded}'>",
                 f"<p><a href='{pdf.name}'>PDF</a></p>"]
    for title, table in tables[len(benchmark):]:
        markdown += [to_markdown(title, table), ""]
        html.append(to_html(title, table))
    html.append("</body></html>")
    md_path, html_path = out / "summary.md", out / "summary.html"
    md_path.write_text("\n".join(markdown))
    html_path.write_text("\n".join(html))
    return [p for _, paths in saved for p in paths] + latex + [md_path, html_path]
