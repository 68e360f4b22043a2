"""The resumable evaluation run (genfast.evaluate.run) with the deterministic fake classifier."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genfast.vocabulary import MVH_CLASSES
from genfast.evaluate.durable import Journal
from genfast.testing.fake import FakeClassifier, SimulatedCrash, fake_from_spec
from genfast.evaluate.run import (EvaluateConfig, derive_model_name, evaluate, journal_path, sidecar_path)

CLASSES = ("bear", "cat", "dog", "knife")


def write_image(path: Path, value: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    pixels = (np.arange(48).reshape(4, 4, 3) * 5 + value) % 256
    Image.fromarray(pixels.astype(np.uint8)).save(path)


def make_data(root: Path) -> Path:
    """A cue-conflict-style dataset (7 images) and a dnn-style one (5 images)."""
    n = 0
    for category, count in (("cat", 3), ("dog", 2), ("bear", 2)):
        for i in range(1, count + 1):
            write_image(root / "cue-conflict" / category / f"{category}{i}-knife{i}.png", n)
            n += 1
    for i, (cond, category) in enumerate([("c30", "dog"), ("c05", "cat"), ("c100", "knife"), ("c30", "bear"),
                                          ("c01", "cat")], start=1):
        write_image(root / "contrast" / "dnn" / "session-1" / f"{i:04d}_cop_dnn_{cond}_{category}_10_n0{i}_{i}.png", n)
        n += 1
    return root


@pytest.fixture
def data(tmp_path):
    return make_data(tmp_path / "data")


def config(data: Path, out: Path, **kw) -> EvaluateConfig:
    kw = {"datasets": ("cue-conflict", "contrast"), "model_name": "fake", "classes": CLASSES, "chunk_size": 3,
          "progress": False, **kw}
    return EvaluateConfig(model="fake", data=data, out=out, **kw)


def outputs(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted(out.rglob("*"))
            if p.is_file() and p.parts[len(out.parts)] in ("raw-data", "sidecar")}


def test_raw_data_and_sidecar_content(data, tmp_path):
    out = tmp_path / "out"
    fake = FakeClassifier(CLASSES, seed=0)
    results = evaluate(config(data, out), fake)
    assert [(r.dataset, r.rows, r.classified, r.skipped) for r in results] == [("cue-conflict", 7, 7, 0),
                                                                               ("contrast", 5, 5, 0)]
    assert fake.calls == [3, 3, 3, 3]  # chunks of chunk_size images over all datasets (one may span two)

    reference = FakeClassifier(CLASSES, seed=0)
    cc = sorted((data / "cue-conflict").glob("*/*.png"), key=lambda p: (p.parent.name, p.name))
    expected = "subj,session,trial,rt,object_response,category,condition,imagename\r\n" + "".join(
        f"fake,1,{t},NaN,{reference._predict(p, None).label},{p.parent.name},NaN,{p.name}\r\n"
        for t, p in enumerate(cc, start=1))
    csv_path = out / "raw-data" / "cue-conflict" / "cue-conflict_fake_session-1.csv"
    assert results[0].raw_data == csv_path and csv_path.read_bytes() == expected.encode()

    dnn = sorted((data / "contrast" / "dnn" / "session-1").iterdir())
    text = (out / "raw-data" / "contrast" / "contrast_fake_session-1.csv").read_bytes().decode()
    lines = text.split("\r\n")
    assert lines[-1] == "" and len(lines) == 7
    for t, (line, p) in enumerate(zip(lines[1:], dnn), start=1):
        fields = p.name.split("_")
        assert line == f"fake,1,{t},NaN,{reference._predict(p, None).label},{fields[4]},{fields[3]},{p.name}"

    sidecar = [json.loads(line) for line in sidecar_path(out, "contrast", "fake").read_text().splitlines()]
    assert [s["trial"] for s in sidecar] == [1, 2, 3, 4, 5]
    for s, p in zip(sidecar, dnn):
        pred = reference._predict(p, None)
        assert s["imagename"] == p.name and s["path"] == f"dnn/session-1/{p.name}"
        assert s["prediction"] == pred.label and s["index"] == pred.index and s["key"] == pred.key
        assert s["scores"] == dict(zip(CLASSES, pred.scores.tolist()))
        assert s["n_samples"] == dict(zip(CLASSES, pred.n_samples.tolist()))
        assert s["probabilities"] == dict(zip(CLASSES, pred.probabilities.tolist()))
        assert s["evaluations"] == pred.evaluations and s["seconds"] == pred.seconds
        assert s["condition"] == p.name.split("_")[3]


def test_resume_after_crash_matches_uninterrupted_run(data, tmp_path):
    evaluate(config(data, tmp_path / "full"), FakeClassifier(CLASSES))
    out = tmp_path / "resumed"
    with pytest.raises(SimulatedCrash):
        evaluate(config(data, out), FakeClassifier(CLASSES, fail_after=5))
    assert not (out / "raw-data").exists()
    journal = journal_path(out, "cue-conflict", "fake").read_text().splitlines()
    assert len(journal) == 1 + 5  # header + the images finished before the crash
    with pytest.raises(SimulatedCrash):  # crash again, in the second dataset
        evaluate(config(data, out), FakeClassifier(CLASSES, fail_after=4))
    second = FakeClassifier(CLASSES)
    results = evaluate(config(data, out), second)
    assert second.delivered == 12 - 5 - 4 and [r.classified for r in results] == [0, 3]
    assert outputs(out) == outputs(tmp_path / "full") and len(outputs(out)) == 4


def test_truncated_journal_line_is_discarded(data, tmp_path):
    evaluate(config(data, tmp_path / "full"), FakeClassifier(CLASSES))
    out = tmp_path / "cut"
    with pytest.raises(SimulatedCrash):
        evaluate(config(data, out), FakeClassifier(CLASSES, fail_after=6))
    path = journal_path(out, "cue-conflict", "fake")
    raw = path.read_bytes()
    path.write_bytes(raw[:-25])  # the last entry is cut short, as by a crash mid-write
    again = FakeClassifier(CLASSES)
    evaluate(config(data, out), again)
    assert again.delivered == 12 - 5
    assert outputs(out) == outputs(tmp_path / "full")
    # The cut bytes were removed from the file, so the journal reads back whole (header + 7 images).
    assert [json.loads(line)["path"] for line in path.read_text().splitlines()[1:]] == [
        f"{c}/{c}{i}-knife{i}.png" for c, i in [("cat", 1), ("bear", 2), ("bear", 1), ("dog", 1), ("cat", 3),
                                                ("dog", 2), ("cat", 2)]]  # finishing order: chunks reversed


def test_corrupt_journal_line_in_the_middle_is_refused(data, tmp_path):
    out = tmp_path / "out"
    evaluate(config(data, out, datasets=("contrast",)), FakeClassifier(CLASSES))
    path = journal_path(out, "contrast", "fake")
    lines = path.read_bytes().split(b"\n")
    lines[2] = lines[2][:10]
    path.write_bytes(b"\n".join(lines))
    with pytest.raises(ValueError, match="line 3 is corrupt"):
        evaluate(config(data, out, datasets=("contrast",)), FakeClassifier(CLASSES))


@pytest.mark.parametrize("change", [{"seed": 1}, {"prompt": "a photo of a {}"}, {"method": "li2023"},
                                    {"classes": CLASSES[::-1]}])
def test_settings_mismatch_is_refused(data, tmp_path, change):
    out = tmp_path / "out"
    with pytest.raises(SimulatedCrash):
        evaluate(config(data, out), FakeClassifier(CLASSES, fail_after=2))
    fake = FakeClassifier(CLASSES)
    field = next(iter(change))
    with pytest.raises(ValueError, match=rf"different settings \({field}: .* then, .* now\)"):
        evaluate(config(data, out, **change), fake)
    assert fake.delivered == 0


def test_classifier_without_callback_and_finished_run_builds_no_classifier(data, tmp_path):
    class NoCallback(FakeClassifier):
        def classify(self, images, *, on_result=None, **kw):
            return super().classify(images, **kw)

    out = tmp_path / "out"
    evaluate(config(data, out), NoCallback(CLASSES))
    evaluate(config(data, tmp_path / "full"), FakeClassifier(CLASSES))
    assert outputs(out) == outputs(tmp_path / "full")
    # Everything is journalled: the run rewrites the outputs without building a classifier (building the
    # fake without GENFAST_TESTING=1 would raise).
    (out / "raw-data" / "contrast" / "contrast_fake_session-1.csv").unlink()
    results = evaluate(config(data, out))
    assert [r.classified for r in results] == [0, 0] and outputs(out) == outputs(tmp_path / "full")


def test_skipped_image_is_recorded(data, tmp_path):
    broken = data / "cue-conflict" / "dog" / "dog1-knife1.png"
    broken.write_bytes(b"\x89PNG broken")
    out = tmp_path / "out"
    with pytest.raises(ValueError, match="dog1-knife1.png: unreadable"):
        evaluate(config(data, out), FakeClassifier(CLASSES))
    [result, _] = evaluate(config(data, out, on_error="skip"), FakeClassifier(CLASSES))
    assert result.rows == 6 and result.skipped == 1
    skipped = (out / "skipped.csv").read_text().splitlines()
    assert skipped[0] == "dataset,path,reason" and len(skipped) == 2
    assert skipped[1].startswith(f"cue-conflict,{broken},unreadable image")
    trials = [line.split(",")[2] for line in result.raw_data.read_text().splitlines()[1:]]
    assert trials == ["1", "2", "3", "4", "5", "7"]  # bear1, bear2, cat1-3, dog1 (trial 6), dog2


def test_limit_then_full_run(data, tmp_path):
    out = tmp_path / "out"
    [first] = evaluate(config(data, out, datasets=("contrast",), limit=2), FakeClassifier(CLASSES))
    assert first.rows == 2
    fake = FakeClassifier(CLASSES)
    evaluate(config(data, out, datasets=("contrast",)), fake)
    evaluate(config(data, tmp_path / "full", datasets=("contrast",)), FakeClassifier(CLASSES))
    assert fake.delivered == 3 and outputs(out) == outputs(tmp_path / "full")


def test_journal_is_locked_against_a_second_writer(tmp_path):
    with Journal(tmp_path / "j.jsonl", {"seed": 0}) as journal:
        journal.append({"path": "a.png"})
        with pytest.raises(ValueError, match="being written by another process"):
            Journal(tmp_path / "j.jsonl", {"seed": 0})
        with pytest.raises(ValueError, match="already recorded"):
            journal.append({"path": "a.png"})
    assert Journal(tmp_path / "j.jsonl", {"seed": 0}).entries == {("a.png",): {"path": "a.png"}}


def test_model_names(tmp_path):
    assert derive_model_name("digits") == "digits"
    assert derive_model_name("stabilityai/stable-diffusion-2-1-base") == "stable-diffusion-2-1-base"
    folder = tmp_path / "sd_v1.5"
    folder.mkdir()
    assert derive_model_name(f"{folder}/") == "sd-v1.5"
    weights = tmp_path / "my_model.safetensors"
    weights.write_bytes(b"")
    assert derive_model_name(str(weights)) == "my-model"
    assert EvaluateConfig(model="x", data=tmp_path, out=tmp_path, model_name="a_b").name == "a-b"


def test_bad_config_and_fake_spec(tmp_path, monkeypatch):
    with pytest.raises(ValueError, match="on_error"):
        EvaluateConfig(model="x", data=tmp_path, out=tmp_path, on_error="ignore")
    with pytest.raises(ValueError, match="has no '{class}' or '{}' placeholder"):
        EvaluateConfig(model="x", data=tmp_path, out=tmp_path, prompt="a photo")
    monkeypatch.delenv("GENFAST_TESTING", raising=False)
    with pytest.raises(ValueError, match="GENFAST_TESTING=1"):
        fake_from_spec("fake", MVH_CLASSES)
    monkeypatch.setenv("GENFAST_TESTING", "1")
    fake = fake_from_spec("fake:delay=0.5,fail_after=3", MVH_CLASSES, seed=2)
    assert (fake.delay, fake.fail_after, fake.seed) == (0.5, 3, 2)
    with pytest.raises(ValueError, match="bad fake option 'speed=1'"):
        fake_from_spec("fake:speed=1", MVH_CLASSES)


def test_journal_with_unfinished_header_starts_over(tmp_path):
    path = tmp_path / "j.jsonl"
    path.write_bytes(b'{"format": "genfast-evaluate-jou')  # killed while writing the header
    with Journal(path, {"seed": 0}) as journal:
        assert journal.entries == {}
    assert not path.exists()  # a journal that received nothing is removed
    path.write_bytes(b'{"format": "genfast-evaluate-jou')
    with Journal(path, {"seed": 0}) as journal:
        journal.append({"path": "a.png"})  # the header goes in with the first entry
    header, entry = map(json.loads, path.read_text().splitlines())
    assert header["settings"] == {"seed": 0} and entry == {"path": "a.png"}
    path.write_text('{"format": "something else"}\n')
    with pytest.raises(ValueError, match="is not a version-2 genfast evaluate journal"):
        Journal(path, {"seed": 0})


def test_plain_folder_dataset_name_is_sanitised(tmp_path):
    for i, category in enumerate(CLASSES):
        write_image(tmp_path / "my_photos" / category / f"{i}.png", i)
    [result] = evaluate(EvaluateConfig(model="fake", data=tmp_path / "my_photos", out=tmp_path / "out",
                                       model_name="fake", classes=CLASSES, progress=False), FakeClassifier(CLASSES))
    assert result.raw_data == tmp_path / "out" / "raw-data" / "my-photos" / "my-photos_fake_session-1.csv"
    assert result.rows == 4


def test_two_folders_with_one_name_are_refused(tmp_path):
    for folder in ("edge", "edges"):
        write_image(tmp_path / "data" / folder / "cat" / "cat1.png", 0)
    with pytest.raises(ValueError, match="would both be written as 'edge'"):
        evaluate(EvaluateConfig(model="fake", data=tmp_path / "data", out=tmp_path / "out", classes=CLASSES,
                                progress=False), FakeClassifier(CLASSES))
