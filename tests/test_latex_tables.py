"""The toolbox's LaTeX benchmark tables (print_benchmark_table_*_to_latex) from random raw data written here: its
layout (booktabs, every column padded to its widest cell), its column headers, '_' escaped, three decimals, the
best value of each column in bold, its ranking; partial models in tables of their own. That the text is the
toolbox's byte for byte on its own three models: test_metrics_published.py."""
from __future__ import annotations

import pytest

from genfast.metrics import Summary, load_raw_data, summarise
from genfast.metrics.tables import latex_tables
from genfast.testing.rawdata import write_fake_raw_data

HEADERS = {"benchmark_table_accuracy.tex": ["model", "OOD accuracy $\\uparrow$", "rank $\\downarrow$"],
           "benchmark_table_humanlike.tex": ["model", "accuracy diff. $\\downarrow$", "obs. consistency $\\uparrow$",
                                             "error consistency $\\uparrow$", "mean rank $\\downarrow$"]}


@pytest.fixture(scope="module")
def summary(tmp_path_factory: pytest.TempPathFactory) -> Summary:
    root = tmp_path_factory.mktemp("raw-data")
    write_fake_raw_data(root, ["alpha_x", "beta", "gamma-long-name"], subjects=2, datasets=("contrast", "edge"))
    write_fake_raw_data(root, ["delta"], subjects=0, datasets=("edge",), seed=1)  # partial: lacks contrast
    return summarise(load_raw_data(root).trials)


def _rows(text: str) -> list[list[str]]:
    lines = text.split("\n")
    assert lines[:2] == [f"\\begin{{tabular}}{{l{'r' * (len(lines[2].split(' & ')) - 1)}}}", "\\toprule"]
    assert lines[3] == "\\midrule" and lines[-4:] == ["\\bottomrule", "\\end{tabular}", "", ""]
    body = [lines[2], *lines[4:-4]]
    assert len({len(line) for line in body}) == 1  # every column padded to its widest cell, right-aligned
    assert all(line.endswith(" \\\\") for line in body)
    return [[cell.strip() for cell in line[:-3].split(" & ")] for line in body]


def test_layout_values_and_bold(summary: Summary) -> None:
    tables = latex_tables(summary, {"beta": "Beta net"})
    assert sorted(tables) == sorted([*HEADERS, "benchmark_table_accuracy_partial.tex",
                                     "benchmark_table_humanlike_partial.tex"])
    ranked = {"benchmark_table_accuracy.tex": summary.accuracy_table(),
              "benchmark_table_humanlike.tex": summary.humanlike_table()}
    columns = {"benchmark_table_accuracy.tex": ["ood_accuracy", "rank"],
               "benchmark_table_humanlike.tex": ["accuracy_difference", "observed_consistency", "error_consistency",
                                                 "mean_rank"]}
    best = {"ood_accuracy": max, "rank": min, "accuracy_difference": min, "observed_consistency": max,
            "error_consistency": max, "mean_rank": min}
    for name, header in HEADERS.items():
        header_row, *rows = _rows(tables[name])
        assert header_row == header
        table = ranked[name]
        assert [row[0] for row in rows] == [{"alpha_x": "alpha\\_x", "beta": "Beta net"}.get(m, m) for m in table.index]
        for j, column in enumerate(columns[name], start=1):
            top = best[column](table[column])
            expected = [f"\\textbf{{{v:.3f}}}" if v == top else f"{v:.3f}" for v in table[column]]
            assert [row[j] for row in rows] == expected, (name, column)
    partial = _rows(tables["benchmark_table_accuracy_partial.tex"])
    assert [row[0] for row in partial[1:]] == ["delta"] and partial[1][2] == "\\textbf{1.000}"
