"""`genfast evaluate` end to end with a real (tiny) diffusion model on the shared edge stimuli: a run killed
with SIGKILL mid-way and started again writes exactly the files of an uninterrupted run."""
from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from genfast.evaluate.run import journal_path
from genfast.testing import cli_subprocess, kill_when_journalled, make_tiny_sd_pipeline

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "texture-vs-shape"
pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not SHARED.is_dir(), reason=f"the shared stimuli are not at {SHARED}")]
LIMIT = 12


def _outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.relative_to(out).parts[0] == "raw-data"}


def _sidecar_predictions(out: Path) -> list[str]:
    import json

    lines = next((out / "sidecar").rglob("*.jsonl")).read_text().splitlines()
    return [(row["imagename"], row["prediction"]) for row in map(json.loads, lines)]


def test_real_model_killed_and_resumed(tmp_path):
    model = make_tiny_sd_pipeline(tmp_path / "tiny-sd")
    common = ["evaluate", "--model", str(model), "--model-name", "tiny-sd", "--data", str(SHARED),
              "--datasets", "edge", "--limit", str(LIMIT), "--method", "exhaustive:n_samples=2",
              "--chunk-size", "2", "--no-progress"]
    reference, env = cli_subprocess(*common, "--out", str(tmp_path / "reference"))
    done = subprocess.run(reference, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr

    out = tmp_path / "killed"
    command, env = cli_subprocess(*common, "--out", str(out))
    journal = journal_path(out, "edge", "tiny-sd")
    assert kill_when_journalled(command, env, tmp_path, journal, 3, timeout=300) >= 3
    assert not (out / "raw-data").exists()

    resumed = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr
    assert _outputs(out) == _outputs(tmp_path / "reference")
    assert _sidecar_predictions(out) == _sidecar_predictions(tmp_path / "reference")
    csv = next((out / "raw-data").rglob("*.csv")).read_text().splitlines()
    assert csv[0].startswith("subj,session,trial,rt,object_response,category,condition,imagename")
    assert len(csv) == 1 + LIMIT
