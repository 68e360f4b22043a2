"""Readable tables of a Summary, shared by `genfast metrics` (plain text) and `genfast report` (Markdown, HTML)."""
from __future__ import annotations

import math
from typing import Callable, Mapping

import pandas as pd

from genfast.metrics.benchmark import HUMANS
from genfast.metrics.summary import Summary


PARTIAL = " (partial)"
"""Appended to a partial model's name in every table and in every figure of means over datasets."""


def display_tables(summary: Summary) -> list[tuple[str, pd.DataFrame]]:
    """(title, table) pairs: benchmark rankings (complete models, then partial ones ranked apart), per-dataset
    accuracy, shape bias, ImageNet validation, per-subject numbers. Partial models are marked PARTIAL."""
    tables: list[tuple[str, pd.DataFrame]] = []
    reference = [HUMANS] if summary.humans else []
    n = len(summary.datasets)
    for partial in (False, True):
        ranking = summary.accuracy_table(partial)
        if ranking.empty:
            continue
        rows = ranking.assign(datasets=summary.ood_accuracy_by_dataset.loc[ranking.index].notna().sum(axis=1))
        if partial:
            rows["lacks"] = [", ".join(summary.missing_datasets[m]) for m in rows.index]
        if reference:
            rows.loc[HUMANS] = [summary.ood_accuracy[HUMANS], math.nan, n] + ([""] if partial else [])
        title = (f"Benchmark: OOD accuracy of partial models (ranked apart: mean over the datasets each has, "
                 f"of {n}; benchmark conditions)") if partial else \
            f"Benchmark: OOD accuracy (mean over {n} dataset(s), benchmark conditions)"
        tables.append((title,
                       rows.rename(columns={"ood_accuracy": "OOD accuracy", "rank": "rank"})))
    for partial in (False, True):
        ranked = summary.humanlike_table(partial)
        if ranked.empty:
            continue
        ranked = ranked[["accuracy_difference", "observed_consistency", "error_consistency", "mean_rank"]]
        if reference:
            ranked.loc[HUMANS] = [*summary.humanlike.loc[HUMANS].tolist(), math.nan]
        which = " of partial models (ranked apart" if partial else " (vs. human subjects"
        tables.append((f"Benchmark: most human-like{which}; mean over conditions, subjects, datasets)",
                       ranked.rename(columns={"accuracy_difference": "accuracy diff. (lower better)",
                                              "observed_consistency": "observed consistency",
                                              "error_consistency": "error consistency",
                                              "mean_rank": "mean rank"})))
    shown = summary.models + reference
    tables.append(("Accuracy per dataset (benchmark conditions)", summary.ood_accuracy_by_dataset.loc[shown].T))
    if summary.shape_bias:
        names = [name for name in shown if name in summary.shape_bias]
        shape = pd.DataFrame({"shape bias": [summary.shape_bias[n].shape_bias for n in names],
                              "shape decisions": [summary.shape_bias[n].shape_hits for n in names],
                              "texture decisions": [summary.shape_bias[n].texture_hits for n in names]},
                             index=names)
        tables.append(("Shape bias (cue-conflict: shape / (shape + texture) decisions)", shape))
        tables.append(("Shape bias per shape category", summary.shape_bias_by_category.loc[names].T))
    if len(summary.imagenet_accuracy):
        tables.append(("ImageNet validation (the toolbox's imagenet_validation: clean images, 1000 classes; not "
                       "part of the benchmark)", summary.imagenet_accuracy.to_frame("top-1 accuracy")))
    if summary.humans:
        subjects = pd.DataFrame({"OOD accuracy": summary.ood_accuracy.reindex(summary.humans)}, index=summary.humans)
        if len(summary.humanlike):
            subjects = subjects.join(summary.humanlike.reindex(summary.humans).rename(columns={
                "accuracy_difference": "accuracy diff.", "observed_consistency": "observed consistency",
                "error_consistency": "error consistency"}))
        if summary.shape_bias:
            subjects["shape bias"] = [summary.shape_bias[h].shape_bias if h in summary.shape_bias else math.nan
                                      for h in summary.humans]
        subjects["datasets"] = summary.ood_accuracy_by_dataset.reindex(summary.humans).notna().sum(axis=1)
        tables.append(("Human subjects individually (consistency against the other subjects)", subjects))
    labels = {m: m + PARTIAL for m in summary.partial_models}
    return [(title, table.rename(index=labels, columns=labels)) for title, table in tables]


def _cell(value: object, column: str) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            return "-"
        return f"{value:.3g}" if "rank" in column or column == "datasets" else f"{value:.3f}"
    return str(value)


def _cells(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    header = [str(table.index.name or "")] + [str(c) for c in table.columns]
    rows = [[str(index)] + [_cell(v, c) for v, c in zip(row, header[1:])]
            for index, row in zip(table.index, table.itertuples(index=False))]
    return header, rows


def to_text(title: str, table: pd.DataFrame) -> str:
    """A titled, column-aligned plain-text table (three decimals, '-' for missing)."""
    header, rows = _cells(table)
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    lines = [title, "-" * len(title)]
    for row in [header, *rows]:
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths))))
    return "\n".join(lines)


def to_markdown(title: str, table: pd.DataFrame) -> str:
    """A titled GitHub-flavoured Markdown table."""
    header, rows = _cells(table)
    lines = [f"### {title}", "", "| " + " | ".join(header) + " |",
             "|" + "|".join([":---"] + ["---:"] * (len(header) - 1)) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def to_html(title: str, table: pd.DataFrame) -> str:
    """A titled HTML table."""
    header, rows = _cells(table)
    head = "".join(f"<th>{_escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{_escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<h3>{_escape(title)}</h3>\n<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


LATEX_ACCURACY = "benchmark_table_accuracy.tex"
LATEX_HUMANLIKE = "benchmark_table_humanlike.tex"
# The toolbox's columns: (column of the ranked table, LaTeX header, which value is bold)
_LATEX_COLUMNS: dict[str, tuple[tuple[str, str, Callable[[pd.Series], float]], ...]] = {
    LATEX_ACCURACY: (("ood_accuracy", "OOD accuracy $\\uparrow$", max), ("rank", "rank $\\downarrow$", min)),
    LATEX_HUMANLIKE: (("accuracy_difference", "accuracy diff. $\\downarrow$", min),
                      ("observed_consistency", "obs. consistency $\\uparrow$", max),
                      ("error_consistency", "error consistency $\\uparrow$", max),
                      ("mean_rank", "mean rank $\\downarrow$", min)),
}
LATEX_PARTIAL_SUFFIX = "_partial"
"""Added to the file names of the tables of partial models (ranked apart)."""


def latex_tables(summary: Summary, labels: Mapping[str, str] | None = None) -> dict[str, str]:
    """The toolbox's two benchmark tables, as its print_benchmark_table_*_to_latex write them (booktabs tabular,
    models by their `labels`, '_' escaped, three decimals, the best value of each column in bold, every column
    padded to its widest cell), keyed by its file names; partial models (ranked apart) in files of their own."""
    labels = labels or {}
    tables = {}
    for partial in (False, True):
        suffix = LATEX_PARTIAL_SUFFIX if partial else ""
        for name, ranked in ((LATEX_ACCURACY, summary.accuracy_table(partial)),
                             (LATEX_HUMANLIKE, summary.humanlike_table(partial))):
            if len(ranked):
                stem, extension = name.rsplit(".", 1)
                tables[f"{stem}{suffix}.{extension}"] = _latex(ranked, _LATEX_COLUMNS[name], labels)
    return tables


def _latex(ranked: pd.DataFrame, columns: tuple[tuple[str, str, Callable[[pd.Series], float]], ...],
           labels: Mapping[str, str]) -> str:
    """`ranked` (rows in order) as pandas 1.x's DataFrame.to_latex(index=False, escape=False) wrote it."""
    cells = [["model", *(header for _, header, _ in columns)]]
    for model in ranked.index:
        cells.append([labels.get(model, model).replace("_", "\\_")])
    for column, _, best in columns:
        values = ranked[column]
        top = best(values)
        for row, value in zip(cells[1:], values):
            row.append(f"\\textbf{{{value:.3f}}}" if value == top else f"{value:.3f}")
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    lines = [" & ".join(cell.rjust(width) for cell, width in zip(row, widths)) + " \\\\" for row in cells]
    return "\n".join([f"\\begin{{tabular}}{{l{'r' * len(columns)}}}", "\\toprule", lines[0], "\\midrule",
                      *lines[1:], "\\bottomrule", "\\end{tabular}", "", ""])
