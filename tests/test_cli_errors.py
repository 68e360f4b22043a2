"""Every `genfast` command reports a failure as one line on stderr with a documented exit code (genfast.cli):
file-system errors name the path and what to do, bad arguments say what is wrong, --debug shows the traceback."""
from __future__ import annotations

import errno
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import genfast.cli as cli
from genfast.cli import EXIT_CODES, main

FIXTURE_RAW_DATA = Path(__file__).parent / "fixtures" / "metrics" / "raw-data"
CLASSES = ("cat", "dog", "knife")


@pytest.fixture
def data(tmp_path) -> Path:
    for c, category in enumerate(CLASSES):
        for i in range(2):
            path = tmp_path / "data" / "edge" / category / f"{category}{i}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(np.full((4, 4, 3), c * 80 + i, dtype=np.uint8)).save(path)
    return tmp_path / "data"


def evaluate_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["evaluate", "--model", "fake", "--model-name", "fake", "--data", str(data), "--out", str(out),
            "--classes", ",".join(CLASSES), "--no-progress", *extra]


def error_line(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert len(lines) == 1, err  # one line, no traceback
    return lines[0]


def test_help_documents_the_exit_codes(capsys):
    commands = ["demo", "evaluate", "metrics", "report", "distort", "explain"]
    for argv in [["--help"]] + [[command, "--help"] for command in commands]:
        assert main(argv) == 0
        out = capsys.readouterr().out
        assert "exit codes:" in out and "--debug" in out and "GENFAST_DEBUG=1" in out
        for code, _ in EXIT_CODES:
            assert f"\n  {code} " in out


def test_bad_argument_is_one_line_with_exit_code_2(data, tmp_path, capsys):
    assert main(evaluate_args(data, tmp_path / "out", "--batch-size", "zero")) == 2
    line = error_line(capsys)
    assert line.startswith("genfast evaluate: error: argument --batch-size: expected a positive integer")
    assert main(["evaluate", "--no-such-option"]) == 2
    assert "the following arguments are required: --model, --data, --out" in error_line(capsys)
    assert main(["metrics", "--raw-data", "x", "--bogus"]) == 2
    assert error_line(capsys) == "genfast: error: unrecognized arguments: --bogus (see genfast --help)"
    assert main(["no-such-command"]) == 2
    assert "invalid choice" in error_line(capsys)


def test_evaluate_out_that_is_a_file(data, tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("GENFAST_TESTING", "1")
    out = tmp_path / "out.txt"
    out.write_text("not a folder")
    assert main(evaluate_args(data, out)) == 3
    line = error_line(capsys)
    assert line.startswith(f"genfast evaluate: error: cannot use {out}/") and "is a file, not a folder" in line


@pytest.mark.parametrize("code, advice", [(errno.EROFS, "writable disk"), (errno.EACCES, "permissions")])
def test_evaluate_out_on_a_read_only_or_forbidden_folder(data, tmp_path, capsys, monkeypatch, code, advice):
    monkeypatch.setenv("GENFAST_TESTING", "1")
    out = tmp_path / "locked"
    real_mkdir = os.mkdir

    def refuse(path, *args, **kwargs):  # what a read-only mount or a folder without write permission does
        if str(path).startswith(str(out)):
            raise OSError(code, os.strerror(code), str(path))
        return real_mkdir(path, *args, **kwargs)

    monkeypatch.setattr(os, "mkdir", refuse)
    assert main(evaluate_args(data, out)) == 3
    line = error_line(capsys)
    assert f"cannot use {out}" in line and os.strerror(code) in line and advice in line


def test_evaluate_full_disk_then_resume(data, tmp_path, capsys, monkeypatch):
    """ENOSPC while journalling: one line naming the journal and saying to run again; the rerun finishes with
    the files of an uninterrupted run."""
    import genfast.evaluate.durable as durable

    monkeypatch.setenv("GENFAST_TESTING", "1")
    assert main(evaluate_args(data, tmp_path / "reference")) == 0
    capsys.readouterr()
    real_write, writes = os.write, []

    def full_after_three(fd, data_):
        writes.append(fd)
        if len(writes) > 3:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data_)

    monkeypatch.setattr(durable.os, "write", full_after_three)
    out = tmp_path / "out"
    assert main(evaluate_args(data, out)) == 3
    journal = out / "journal" / "edge" / "edge_fake.jsonl"
    line = error_line(capsys)
    assert f"cannot use {journal}: No space left on device" in line and "run the command again" in line
    monkeypatch.setattr(durable.os, "write", real_write)
    assert main(evaluate_args(data, out)) == 0
    assert "(3 classified now)" in capsys.readouterr().err
    for name in ("raw-data/edge/edge_fake_session-1.csv", "sidecar/edge/edge_fake.jsonl"):
        assert (out / name).read_bytes() == (tmp_path / "reference" / name).read_bytes()


def test_metrics_json_on_a_full_disk_or_a_folder(tmp_path, capsys):
    assert Path("/dev/full").exists()  # Linux: every write to it fails with ENOSPC
    assert main(["metrics", "--raw-data", str(FIXTURE_RAW_DATA), "--json", "/dev/full"]) == 3
    line = capsys.readouterr().err.strip()
    assert line == ("genfast metrics: error: cannot use /dev/full: No space left on device; free some space or "
                    "write to another disk, then run the command again")
    assert main(["metrics", "--raw-data", str(FIXTURE_RAW_DATA), "--json", str(tmp_path)]) == 3
    assert f"cannot use {tmp_path}: Is a directory; a file name is needed here" in capsys.readouterr().err


def test_report_and_distort_out_that_is_a_file(data, tmp_path, capsys):
    blocker = tmp_path / "blocker"
    blocker.write_text("")
    assert main(["report", "--raw-data", str(FIXTURE_RAW_DATA), "--out", str(blocker)]) == 3
    assert f"cannot use {blocker}" in error_line(capsys)
    assert main(["distort", "--in", str(data / "edge"), "--out", str(blocker), "--distortion", "contrast",
                 "--levels", "0.5"]) == 3
    assert f"cannot use {blocker}/" in error_line(capsys)


def test_debug_shows_the_traceback(data, tmp_path, capsys, monkeypatch):
    args = evaluate_args(data, tmp_path / "out", "--method", "genfast:p_value=2")
    assert main(args) == 2
    assert "Traceback" not in capsys.readouterr().err
    for argv, env in ((["--debug", *args], None), ([*args, "--debug"], None), (args, "1")):
        if env:
            monkeypatch.setenv("GENFAST_DEBUG", env)
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert "Traceback (most recent call last)" in err
        assert err.splitlines()[-1] == "genfast evaluate: error: p_value must be a number in (0, 1), got 2"


def test_internal_error_and_long_message(capsys, monkeypatch):
    import genfast.metrics.cli as metrics_cli

    monkeypatch.setattr(metrics_cli, "load_raw_data", lambda *a: (_ for _ in ()).throw(KeyError("boom")))
    assert main(["metrics", "--raw-data", "x"]) == 1
    assert error_line(capsys) == ("genfast metrics: internal error: KeyError: 'boom' (rerun with --debug for the "
                                  "traceback)")
    monkeypatch.setattr(metrics_cli, "load_raw_data", lambda *a: (_ for _ in ()).throw(ValueError("x\n" * 5000)))
    assert main(["metrics", "--raw-data", "x"]) == 2
    line = error_line(capsys)
    assert len(line) < cli.MESSAGE_LIMIT + 200 and line.endswith("more characters; --debug shows all)")
