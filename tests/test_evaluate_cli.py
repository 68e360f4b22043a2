"""`genfast evaluate` on the command line, including runs killed with SIGKILL, or stopped with SIGINT or SIGTERM
(mid-run, or while the command starts up), and started again."""
from __future__ import annotations

import shlex
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genfast.cli import main
from genfast.testing.fake import FakeClassifier
from genfast.evaluate.run import EvaluateConfig, evaluate, journal_path
from genfast.testing import cli_subprocess, kill_when_journalled, signal_when_journalled

CLASSES = ("cat", "dog", "knife")


def make_data(root: Path, per_class: int) -> Path:
    for c, category in enumerate(CLASSES):
        for i in range(per_class):
            path = root / "edge" / category / f"{category}{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            pixels = np.full((4, 4, 3), 0, dtype=np.uint8) + np.uint8(c * 80 + i)
            Image.fromarray(pixels).save(path)
    return root


def outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.parts[len(out.parts)] in ("raw-data", "sidecar")}


def reference_outputs(data: Path, out: Path) -> dict[str, bytes]:
    evaluate(EvaluateConfig(model="fake", data=data, out=out, datasets=("edge",), model_name="fake",
                            classes=CLASSES, progress=False), FakeClassifier(CLASSES))
    return outputs(out)


def args(data: Path, out: Path, model: str = "fake") -> list[str]:
    return ["evaluate", "--model", model, "--model-name", "fake", "--data", str(data), "--datasets", "edge",
            "--out", str(out), "--classes", ",".join(CLASSES), "--chunk-size", "4", "--no-progress"]


def test_cli_writes_the_same_files_as_the_api(tmp_path, monkeypatch, capsys):
    data = make_data(tmp_path / "data", 3)
    monkeypatch.setenv("GENFAST_TESTING", "1")
    assert main([a for a in args(data, tmp_path / "cli") if a != "--no-progress"]) == 0
    err = capsys.readouterr().err
    assert "edge: 9 rows (9 classified now)" in err and "9/9" in err and "eval/s" in err  # the progress bar
    assert outputs(tmp_path / "cli") == reference_outputs(data, tmp_path / "api")
    assert main(args(data, tmp_path / "cli") + ["--seed", "1"]) == 2
    assert "different settings (seed: 0 then, 1 now)" in capsys.readouterr().err
    assert main(args(data, tmp_path / "cli") + ["--datasets", "sketch"]) == 2
    assert "unknown dataset 'sketch'" in capsys.readouterr().err


@pytest.mark.slow
def test_sigkill_mid_run_then_resume(tmp_path):
    data = make_data(tmp_path / "data", 20)
    out = tmp_path / "killed"
    command, env = cli_subprocess(*args(data, out, "fake:delay=0.05"), GENFAST_TESTING="1")
    journal = journal_path(out, "edge", "fake")
    finished = kill_when_journalled(command, env, tmp_path, journal, 15, timeout=90)
    assert 15 <= finished < 60 and not (out / "raw-data").exists()

    resumed = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"edge: 60 rows ({60 - finished} classified now)" in resumed.stderr
    assert outputs(out) == reference_outputs(data, tmp_path / "reference")


@pytest.mark.slow
@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_sigint_or_sigterm_mid_run_then_resume(tmp_path, signum, code):
    data = make_data(tmp_path / "data", 20)
    out = tmp_path / "stopped"
    command, env = cli_subprocess(*args(data, out, "fake:delay=0.05"), GENFAST_TESTING="1")
    journal = journal_path(out, "edge", "fake")
    stopped = signal_when_journalled(command, env, tmp_path, journal, 10, timeout=90, signum=signum)
    assert stopped.returncode == code, stopped.stderr
    text = journal.read_bytes()
    assert text.endswith(b"\n")  # the image being journalled was finished, not cut short
    finished = text.count(b"\n") - 1
    assert 10 <= finished < 60 and not (out / "raw-data").exists()
    again = shlex.join(["genfast", *command[3:]])
    assert stopped.stderr.splitlines() == [
        f"genfast evaluate: interrupted by {signal.Signals(signum).name}: edge {finished} of 60 images journalled "
        f"({finished} by this run); to continue, run the same command again: {again}"]

    resumed = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    assert f"edge: 60 rows ({60 - finished} classified now)" in resumed.stderr
    assert outputs(out) == reference_outputs(data, tmp_path / "reference")


def handles(pid: int, signum: int) -> bool:
    """Whether process `pid` has a handler installed for `signum` (Linux: the SigCgt mask in /proc/PID/status)."""
    line = next(x for x in Path(f"/proc/{pid}/status").read_text().splitlines() if x.startswith("SigCgt:"))
    return bool(int(line.split()[1], 16) >> (signum - 1) & 1)


@pytest.mark.skipif(not Path("/proc/self/status").is_file(), reason="reads signal handlers from /proc (Linux only)")
def test_sigterm_while_starting_up_is_one_line(tmp_path):
    """A SIGTERM while the command still imports torch (before it has parsed its arguments) is reported too."""
    data = make_data(tmp_path / "data", 1)
    command, env = cli_subprocess(*args(data, tmp_path / "out"), GENFAST_TESTING="1")
    child = subprocess.Popen(command, env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    deadline = time.monotonic() + 60
    while not handles(child.pid, signal.SIGTERM):
        assert child.poll() is None and time.monotonic() < deadline, child.communicate()
        time.sleep(0.001)
    child.send_signal(signal.SIGTERM)
    _, err = child.communicate(timeout=120)
    assert child.returncode == 143, err
    assert err.splitlines() == ["genfast: interrupted by SIGTERM while starting up; nothing was done"]
    assert not (tmp_path / "out").exists()
