"""Resume safety of `genfast evaluate`: nothing is written before the run is validated, every score-changing
setting must match the journal, a replaced image is recomputed, undecodable images are skipped under
--on-error skip, and a signal during a journal write leaves the line whole."""
from __future__ import annotations

import io
import json
import os
import signal
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import genfast.evaluate.durable as durable
from genfast.cli import main
from genfast.interrupts import Interrupted
from genfast.evaluate.run import EvaluateConfig, evaluate, journal_path
from genfast.testing.fake import FakeClassifier, SimulatedCrash

CLASSES = ("bear", "cat", "dog", "knife")


def write_image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(((np.arange(48).reshape(4, 4, 3) * 5 + value) % 256).astype(np.uint8)).save(path)


@pytest.fixture
def data(tmp_path) -> Path:
    for n, (category, i) in enumerate([("cat", 1), ("cat", 2), ("dog", 1), ("bear", 1), ("bear", 2)]):
        write_image(tmp_path / "data" / "edge" / category / f"{category}{i}.png", n)
    return tmp_path / "data"


def config(data: Path, out: Path, **kw) -> EvaluateConfig:
    return EvaluateConfig(**{"model": "fake", "data": data, "out": out, "datasets": ("edge",), "model_name": "fake",
                             "classes": CLASSES, "chunk_size": 2, "progress": False, **kw})


def outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.relative_to(out).parts[0] in ("raw-data", "sidecar")}


def cli_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["evaluate", "--model-name", "fake", "--data", str(data), "--out", str(out), "--classes",
            ",".join(CLASSES), "--no-progress", *extra]


@pytest.mark.parametrize("mistake", [["--model", "fake:dleay=1"], ["--model", "fake", "--method", "genfsat"],
                                     ["--model", "fake", "--dtype", "bf17"], ["--model", "fake", "--device", "tpu0"],
                                     ["--model", "fake", "--prompt", "a {} or a {}"]])
def test_a_mistake_writes_nothing_so_the_corrected_command_runs(data, tmp_path, capsys, monkeypatch, mistake):
    monkeypatch.setenv("GENFAST_TESTING", "1")
    out = tmp_path / "out"
    assert main(cli_args(data, out, *mistake)) == 2
    assert "error:" in capsys.readouterr().err and not out.exists()
    assert main(cli_args(data, out, "--model", "fake")) == 0
    assert "edge: 5 rows (5 classified now)" in capsys.readouterr().err


@pytest.mark.parametrize("change, message", [
    ({"dtype": "bfloat16"}, r"dtype: 'float32' then, 'bfloat16' now"),
    ({"method": "genfast:p_value=1e-4"}, r"method.p_value: 0.01 then, 0.0001 now"),
    ({"method": "clark-jaini2023"}, r"method[.:].*'genfast'.* then, .*'clark-jaini2023'.* now"),
])
def test_every_score_changing_setting_must_match(data, tmp_path, change, message):
    first = {"dtype": "float32", "method": "genfast:p_value=0.01"}
    out = tmp_path / "out"
    with pytest.raises(SimulatedCrash):
        evaluate(config(data, out, **first), FakeClassifier(CLASSES, fail_after=2))
    fake = FakeClassifier(CLASSES)
    with pytest.raises(ValueError, match=rf"different settings \(.*{message}"):
        evaluate(config(data, out, **{**first, **change}), fake)
    assert fake.delivered == 0


def test_changed_model_files_are_refused(data, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "weights.bin").write_bytes(b"\x00" * 100)
    out = tmp_path / "out"
    with pytest.raises(SimulatedCrash):
        evaluate(config(data, out, model=str(model)), FakeClassifier(CLASSES, fail_after=2))
    evaluate(config(data, tmp_path / "same", model=str(model)), FakeClassifier(CLASSES))  # same files: continues
    (model / "weights.bin").write_bytes(b"\x01" * 100)
    with pytest.raises(ValueError, match=r"different settings \(model_files: '[0-9a-f]{32}' then, '[0-9a-f]{32}' "):
        evaluate(config(data, out, model=str(model)), FakeClassifier(CLASSES))


def test_a_replaced_image_is_classified_again(data, tmp_path):
    out = tmp_path / "out"
    evaluate(config(data, out), FakeClassifier(CLASSES))
    write_image(data / "edge" / "dog" / "dog1.png", 200)  # same name, other content
    again = FakeClassifier(CLASSES)
    [result] = evaluate(config(data, out), again)
    assert again.delivered == 1 and result.classified == 1 and result.replaced == ("dog/dog1.png",)
    evaluate(config(data, tmp_path / "fresh"), FakeClassifier(CLASSES))
    assert outputs(out) == outputs(tmp_path / "fresh")
    entries = [json.loads(line) for line in journal_path(out, "edge", "fake").read_text().splitlines()[1:]]
    assert [e["path"] for e in entries].count("dog/dog1.png") == 2  # the old result is kept, not used
    [result] = evaluate(config(data, out), FakeClassifier(CLASSES))
    assert result.classified == 0 and result.replaced == ()


def corrupt_png(path: Path) -> None:
    """A PNG whose chunk checksums are valid but whose compressed pixel data is not."""
    buffer = io.BytesIO()
    Image.fromarray((np.arange(32 * 32 * 3).reshape(32, 32, 3) % 251).astype(np.uint8)).save(buffer, "PNG")
    raw = bytearray(buffer.getvalue())
    i = raw.index(b"IDAT")
    n = struct.unpack(">I", raw[i - 4:i])[0]
    raw[i + 4 + n // 2:i + 4 + n // 2 + 8] = b"\xff" * 8
    raw[i + 4 + n:i + 8 + n] = struct.pack(">I", zlib.crc32(bytes(raw[i:i + 4 + n])))
    path.write_bytes(bytes(raw))


def truncated_jpeg(path: Path) -> None:
    buffer = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (32, 32, 3)).astype(np.uint8)).save(buffer, "JPEG")
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])


def test_on_error_skip_covers_images_that_fail_to_decode(data, tmp_path):
    corrupt_png(data / "edge" / "cat" / "cat3.png")
    truncated_jpeg(data / "edge" / "dog" / "dog2.jpg")
    for broken in ("cat/cat3.png", "dog/dog2.jpg"):  # both pass PIL's verify(), which reads no pixel data
        with Image.open(data / "edge" / broken) as image:
            image.verify()
    with pytest.raises(ValueError, match=r"cat3\.png: unreadable image: .*\(and 1 more\)"):
        evaluate(config(data, tmp_path / "raise"), FakeClassifier(CLASSES))
    [result] = evaluate(config(data, tmp_path / "skip", on_error="skip"), FakeClassifier(CLASSES))
    assert result.rows == 5 and result.skipped == 2
    rows = (tmp_path / "skip" / "skipped.csv").read_text().splitlines()[1:]
    assert [r.split(",")[1] for r in rows] == [str(data / "edge" / "cat" / "cat3.png"),
                                               str(data / "edge" / "dog" / "dog2.jpg")]
    assert "cannot read the image" in rows[0] and "image file is truncated" in rows[1]


def test_a_signal_during_a_journal_write_lets_the_line_finish(data, tmp_path, monkeypatch):
    real_fsync, calls = os.fsync, []

    def signal_on_third(fd):  # SIGINT arrives while the third image's line is being made durable
        calls.append(fd)
        if len(calls) == 4:  # the first append also syncs the folder: its file and folder, then one per image
            os.kill(os.getpid(), signal.SIGINT)
        real_fsync(fd)

    monkeypatch.setattr(durable.os, "fsync", signal_on_third)
    out = tmp_path / "out"
    with pytest.raises(Interrupted) as stopped:
        evaluate(config(data, out), FakeClassifier(CLASSES))
    assert str(stopped.value) == "interrupted by SIGINT: edge 3 of 5 images journalled (3 by this run)"
    assert stopped.value.exit_code == 130
    monkeypatch.setattr(durable.os, "fsync", real_fsync)
    lines = journal_path(out, "edge", "fake").read_bytes().split(b"\n")
    assert len(lines) == 1 + 3 + 1 and lines[-1] == b""  # header, three whole entries
    again = FakeClassifier(CLASSES)
    evaluate(config(data, out), again)
    evaluate(config(data, tmp_path / "full"), FakeClassifier(CLASSES))
    assert again.delivered == 2 and outputs(out) == outputs(tmp_path / "full")
