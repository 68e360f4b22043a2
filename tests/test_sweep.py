"""`genfast sweep`: one evaluation per value of a method field into one --out, then OOD accuracy and shape bias
per value (JSON, table, figure), with the test-only fake classifier on the shared cue-conflict stimuli."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from genfast.cli import main
from genfast.evaluate.sweep import method_with

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "texture-vs-shape"


def test_method_with_adds_or_extends_the_fields():
    assert method_with("genfast", "weight_rate", "3") == "genfast:weight_rate=3"
    assert method_with("genfast:p_value=0.01", "weight_rate", "3") == "genfast:p_value=0.01,weight_rate=3"


@pytest.mark.skipif(not SHARED.is_dir(), reason=f"the shared stimuli are not at {SHARED}")
def test_sweep_evaluates_each_value_and_measures_it(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("GENFAST_TESTING", "1")
    out = tmp_path / "out"
    args = ["sweep", "--model", "fake", "--model-name", "fake", "--data", str(SHARED), "--datasets", "cue-conflict",
            "--limit", "24", "--out", str(out), "--no-progress", "--sweep", "weight_rate=0,7"]
    assert main(args) == 0
    assert sorted(p.name for p in (out / "raw-data" / "cue-conflict").iterdir()) == [
        "cue-conflict_fake-weight-rate-0_session-1.csv", "cue-conflict_fake-weight-rate-7_session-1.csv"]
    result = json.loads((out / "sweep-weight_rate.json").read_text())
    assert [r["value"] for r in result["rows"]] == ["0", "7"]
    assert all(0 <= r["ood_accuracy"] <= 1 and 0 <= r["shape_bias"] <= 1 for r in result["rows"])
    assert (out / "sweep-weight_rate.png").is_file() and "| 7 | fake-weight-rate-7 |" in capsys.readouterr().out
    journal = next((out / "journal" / "cue-conflict").glob("*weight-rate-7*"))
    assert '"weight_rate": 7' in journal.read_text().splitlines()[0]  # the value is in the run's settings
    assert main(args[:-1] + ["weight_rate"]) == 2  # FIELD=V1,V2,... or a one-line usage error
    assert "expected FIELD=V1,V2,..." in capsys.readouterr().err
    assert main(args[:-1] + ["no_such_field=1,2"]) == 2
    assert "no_such_field" in capsys.readouterr().err
