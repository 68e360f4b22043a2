"""`genfast metrics`: prints every observer's numbers; --json writes them keyed by observer; bad input is an
error (exit code 2) that names the file."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from genfast.cli import main

FIXTURES = Path(__file__).parent / "fixtures" / "metrics" / "raw-data"


def test_metrics_prints_tables_and_writes_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "sub" / "metrics.json"
    assert main(["metrics", "--raw-data", str(FIXTURES), "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    for text in ("Benchmark: OOD accuracy", "Benchmark: most human-like", "Shape bias per shape category",
                 "Human subjects individually", "subject-02", "humans"):
        assert text in printed
    toy_line = next(line for line in printed.splitlines() if line.startswith("toy ") and "1" in line)
    assert "0.438" in toy_line  # OOD accuracy (3/8 + 1/2) / 2 = .4375
    data = json.loads(out.read_text())
    assert set(data["observers"]) == {"toy", "subject-01", "subject-02", "humans"}
    assert data["observers"]["toy"]["ood_accuracy"] == pytest.approx(0.4375)
    assert data["observers"]["humans"]["error_consistency"] == pytest.approx(0.05)


def test_metrics_dataset_selection(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "m.json"
    assert main(["metrics", "--raw-data", str(FIXTURES), "--datasets", "contrast", "--json", str(out)]) == 0
    data = json.loads(out.read_text())
    assert data["datasets"] == ["contrast"]
    assert "shape_bias" not in data["observers"]["toy"]
    assert "Shape bias" not in capsys.readouterr().out


def test_metrics_bad_csv_names_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "edge" / "edge_m_session-1.csv"
    bad.parent.mkdir()
    bad.write_text("subj,session,trial,rt,object_response,category\nm,1,1,NaN,cat,cat\n")
    assert main(["metrics", "--raw-data", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "missing column" in err
