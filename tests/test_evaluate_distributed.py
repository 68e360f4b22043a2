"""One evaluation over several processes (torchrun, gloo on the CPU): the outputs are byte-identical whatever the
world size, a rank killed mid-run loses only its unfinished images (on a plain rerun or an elastic restart), a
rank that fails stops the job with its message, and Classifier.classify shares its images under a process group.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genfast.distributed import RankError, World
from genfast.evaluate.run import EvaluateConfig, evaluate, journal_files
from genfast.testing import cli_subprocess, torchrun_subprocess
from genfast.testing.fake import FakeClassifier

DIGITS = tuple("0123456789")
FAKE_CLASSES = ("cat", "dog", "knife")


def digit_folder(root: Path, n: int) -> Path:
    """The first `n` held-out digits as 8x8 PNGs in `root/digits/<label>/`."""
    from genfast.models.digits_data import load_split

    images, labels = load_split("test")
    for i in range(n):
        path = root / "digits" / str(labels[i]) / f"{i:03d}.png"
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(np.round(images[i] * 255).astype(np.uint8)).save(path)
    return root


def fake_folder(root: Path, per_class: int) -> Path:
    for c, category in enumerate(FAKE_CLASSES):
        for i in range(per_class):
            for dataset in ("edge", "sketch"):
                path = root / dataset / category / f"{category}{i}.png"
                path.parent.mkdir(parents=True, exist_ok=True)
                Image.fromarray(np.full((4, 4, 3), c * 80 + i + (dataset == "sketch"), dtype=np.uint8)).save(path)
    return root


def raw_data(out: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out)): p.read_bytes() for p in sorted((out / "raw-data").rglob("*.csv"))}


def predictions(out: Path) -> list[tuple[str, str, int]]:
    return [(row["path"], row["prediction"], row["evaluations"]) for side in sorted((out / "sidecar").rglob("*.jsonl"))
            for row in map(json.loads, side.read_text().splitlines())]


def journal_lines(out: Path, datasets: tuple[str, ...], model: str) -> tuple[int, dict[int, int]]:
    """(entries in all journals, entries by rank): every finished image is one line after a header."""
    by_rank: dict[int, int] = {}
    for dataset in datasets:
        for rank, path in journal_files(out, dataset, model).items():
            lines = path.read_bytes().count(b"\n")
            by_rank[rank] = by_rank.get(rank, 0) + max(lines - 1, 0)
    return sum(by_rank.values()), by_rank


def fake_config(data: Path, out: Path, **options) -> EvaluateConfig:
    return EvaluateConfig(model="fake", data=data, out=out, model_name="fake", classes=FAKE_CLASSES,
                          chunk_size=2, progress=False, **options)


def test_world_of_one_and_its_waits():
    world = World.alone(timeout=0.2).job()
    world.barrier("start")
    assert world.share("x", b"value") == b"value" and world.add("n", 2) == 2 and world.add("n", 0) == 2
    world.fail("out of memory")
    with pytest.raises(RankError, match="rank 0 of 1 failed: out of memory"):
        world.check_failures()
    other = World.alone(timeout=0.2)
    with pytest.raises(RankError, match=r"waited 0.2 s for nothing; is a rank stuck or gone"):
        other.wait(lambda: False, "nothing")


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_in_threads_write_the_files_of_one_process(tmp_path, ranks):
    """Several ranks on one store (threads here, processes under torchrun) hand out chunks dynamically and
    rank 0 merges: raw data and sidecars equal a one-process run's, byte for byte."""
    data = fake_folder(tmp_path / "data", 5)
    evaluate(fake_config(data, tmp_path / "one"), FakeClassifier(FAKE_CLASSES))
    store = __import__("torch").distributed.HashStore()
    fakes = [FakeClassifier(FAKE_CLASSES, delay=0.002) for _ in range(ranks)]
    results: dict[int, list] = {}

    def rank(r: int) -> None:
        results[r] = evaluate(fake_config(data, tmp_path / "many"), fakes[r], World(r, ranks, r, store, 30.0))

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(ranks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert [(r.dataset, r.rows, r.classified) for r in results[0]] == [("edge", 15, 15), ("sketch", 15, 15)]
    assert all(results[r] == [] for r in range(1, ranks))
    one, many = (
        {str(p.relative_to(o)): p.read_bytes() for p in sorted(o.rglob("*")) if p.parts[len(o.parts)] != "journal"
         and p.is_file()} for o in (tmp_path / "one", tmp_path / "many"))
    assert many == one
    total, by_rank = journal_lines(tmp_path / "many", ("edge", "sketch"), "fake")
    assert total == 30 and sum(f.delivered for f in fakes) == 30  # every image classified exactly once
    assert len(by_rank) > 1  # the work was shared

    (tmp_path / "many" / "raw-data" / "edge" / "edge_fake_session-1.csv").unlink()
    merged = evaluate(fake_config(data, tmp_path / "many", merge_only=True), FakeClassifier(FAKE_CLASSES))
    assert [r.classified for r in merged] == [0, 0] and raw_data(tmp_path / "many") == raw_data(tmp_path / "one")


def test_a_rerun_with_fewer_ranks_continues_every_ranks_journal(tmp_path):
    """Journals of an earlier run with more ranks count: nothing is classified again, whatever the world size
    (the torchrun tests below check that both ranks' journals hold images)."""
    data = fake_folder(tmp_path / "data", 4)
    out = tmp_path / "out"
    store = __import__("torch").distributed.HashStore()
    crashing = [FakeClassifier(FAKE_CLASSES, fail_after=3) for _ in range(2)]
    errors: list[BaseException] = []

    def rank(r: int) -> None:
        try:
            evaluate(fake_config(data, out), crashing[r], World(r, 2, r, store, 30.0))
        except Exception as exc:  # noqa: BLE001 - the simulated crash, or the other rank's report of it
            errors.append(exc)

    threads = [threading.Thread(target=rank, args=(r,)) for r in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(errors) == 2 and any(isinstance(e, RankError) and "simulated crash" in str(e) for e in errors)
    journalled, by_rank = journal_lines(out, ("edge", "sketch"), "fake")
    assert 0 < journalled < 24 and set(by_rank) <= {0, 1}

    fake = FakeClassifier(FAKE_CLASSES)
    results = evaluate(fake_config(data, out), fake)
    assert sum(r.classified for r in results) == 24 - journalled == fake.delivered
    evaluate(fake_config(data, tmp_path / "reference"), FakeClassifier(FAKE_CLASSES))
    assert raw_data(out) == raw_data(tmp_path / "reference")


def test_merge_only_names_what_is_missing(tmp_path):
    data = fake_folder(tmp_path / "data", 2)
    with pytest.raises(ValueError, match=r"edge: 6 of 6 images are not journalled \(first: cat/cat0.png\); run "
                                         r"without --merge-only"):
        evaluate(fake_config(data, tmp_path / "out", merge_only=True), FakeClassifier(FAKE_CLASSES))


# torchrun: real processes, the bundled model, real signals.
DIGIT_ARGS = ("evaluate", "--model", "digits", "--classes", ",".join(DIGITS), "--prompt", "{}", "--chunk-size", "2",
              "--no-progress")


@pytest.fixture(scope="module")
def digits_reference(tmp_path_factory):
    """The bundled model on 12 held-out digits in one process, and the folder they came from."""
    root = tmp_path_factory.mktemp("digits")
    data = digit_folder(root / "data", 12)
    command, env = cli_subprocess(*DIGIT_ARGS, "--data", str(data), "--out", str(root / "one"))
    done = subprocess.run(command, env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return data, root / "one"


@pytest.mark.slow
@pytest.mark.parametrize("ranks", [2, 3])
def test_torchrun_gives_the_csvs_of_one_process(tmp_path, digits_reference, ranks):
    data, one = digits_reference
    out = tmp_path / "out"
    command, env = torchrun_subprocess(ranks, *DIGIT_ARGS, "--data", str(data), "--out", str(out))
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "digits: 12 rows (12 classified now)" in done.stderr
    assert raw_data(out) == raw_data(one) and predictions(out) == predictions(one)
    total, by_rank = journal_lines(out, ("digits",), "digits")
    assert total == 12 and len(by_rank) > 1

    command, env = torchrun_subprocess(ranks, *DIGIT_ARGS, "--data", str(data), "--out", str(out), "--merge-only")
    before = raw_data(out)
    again = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert "digits: 12 rows (0 classified now)" in again.stderr and raw_data(out) == before


def _worker(launcher: int, rank: int) -> int | None:
    """The pid of the torchrun worker with RANK=rank among the launcher's descendants."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            environ = (entry / "environ").read_bytes().split(b"\0")
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        if f"RANK={rank}".encode() in environ and any(v.startswith(b"TORCHELASTIC_RUN_ID=") for v in environ):
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            while ppid > 1 and ppid != launcher:
                try:
                    ppid = int((Path("/proc") / str(ppid) / "stat").read_text().rsplit(")", 1)[1].split()[1])
                except OSError:
                    break
            if ppid == launcher:
                return int(entry.name)
    return None


def kill_rank(command: list[str], env: dict[str, str], cwd: Path, out: Path, datasets: tuple[str, ...],
              rank: int, after: int, timeout: float = 120) -> tuple[subprocess.CompletedProcess, int]:
    """Run torchrun, SIGKILL the worker of `rank` once all journals hold `after` images, and return the finished
    launcher and how many images were journalled when the worker was killed."""
    process = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + timeout
        while (journalled := journal_lines(out, datasets, "fake")[0]) < after:
            assert process.poll() is None, f"torchrun ended before the kill: {process.communicate()}"
            assert time.monotonic() < deadline, f"only {journalled} images journalled in {timeout} s"
            time.sleep(0.02)
        worker = _worker(process.pid, rank)
        assert worker is not None, "no worker of that rank"
        os.kill(worker, signal.SIGKILL)
        stdout, stderr = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(60)
    return subprocess.CompletedProcess(command, process.returncode, stdout, stderr), journalled


def fake_args(data: Path, out: Path, model: str = "fake:delay=0.05") -> list[str]:
    return ["evaluate", "--model", model, "--model-name", "fake", "--data", str(data), "--out", str(out),
            "--classes", ",".join(FAKE_CLASSES), "--chunk-size", "3", "--no-progress"]


def classified_now(stderr: str) -> int:
    """The images a run says it classified ("<ds>: N rows (M classified now) ..."), over its datasets."""
    return sum(int(line.split("(")[1].split()[0]) for line in stderr.splitlines() if "rows (" in line)


def assert_one_process_outputs(data: Path, out: Path, tmp_path: Path) -> None:
    """Every image journalled exactly once, and the raw data of an uninterrupted one-process run."""
    assert journal_lines(out, ("edge", "sketch"), "fake")[0] == 48
    reference, env = cli_subprocess(*fake_args(data, tmp_path / "reference", "fake"), GENFAST_TESTING="1")
    assert subprocess.run(reference, env=env, cwd=tmp_path, capture_output=True, timeout=120).returncode == 0
    assert raw_data(out) == raw_data(tmp_path / "reference")


@pytest.mark.slow
def test_a_killed_rank_loses_only_its_unfinished_images(tmp_path):
    data = fake_folder(tmp_path / "data", 8)
    out = tmp_path / "out"
    command, env = torchrun_subprocess(2, *fake_args(data, out), GENFAST_TESTING="1")
    killed, _ = kill_rank(command, env, tmp_path, out, ("edge", "sketch"), rank=1, after=10)
    assert killed.returncode != 0 and not (out / "raw-data").exists()
    journalled, by_rank = journal_lines(out, ("edge", "sketch"), "fake")
    assert 10 <= journalled < 48 and set(by_rank) == {0, 1}

    rerun, env = cli_subprocess(*fake_args(data, out), GENFAST_TESTING="1")  # any world size continues
    done = subprocess.run(rerun, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert classified_now(done.stderr) == 48 - journalled  # no finished image is classified again
    assert_one_process_outputs(data, out, tmp_path)


@pytest.mark.slow
def test_an_elastic_restart_finishes_the_job(tmp_path):
    data = fake_folder(tmp_path / "data", 8)
    out = tmp_path / "out"
    command, env = torchrun_subprocess(2, *fake_args(data, out), max_restarts=1, GENFAST_TESTING="1")
    done, journalled = kill_rank(command, env, tmp_path, out, ("edge", "sketch"), rank=1, after=10)
    assert done.returncode == 0, done.stderr
    assert classified_now(done.stderr) <= 48 - journalled  # the restarted attempt: only what was not journalled
    assert_one_process_outputs(data, out, tmp_path)


@pytest.mark.slow
def test_a_failing_rank_stops_the_job_with_its_message(tmp_path):
    data = fake_folder(tmp_path / "data", 8)
    out = tmp_path / "out"
    command, env = torchrun_subprocess(2, *fake_args(data, out, "fake:delay=0.05,fail_after=2,fail_rank=1"),
                                       GENFAST_TESTING="1")
    start = time.monotonic()
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and time.monotonic() - start < 60
    assert ("genfast evaluate (rank 1 of 2): internal error: SimulatedCrash: fake classifier: simulated crash "
            "after 2 images") in done.stderr


CLASSIFY_SCRIPT = """
import json, sys
import torch.distributed as dist
import genfast
dist.init_process_group("gloo")
paths = sys.argv[2:]
clf = genfast.Classifier("digits", list("0123456789"), prompt="{}")
mine = clf.classify(paths)
everything = clf.classify(paths, gather=True)
rows = lambda ps: [[p.label, p.evaluations, p.key] for p in ps]
json.dump({"mine": rows(mine), "all": None if everything is None else rows(everything)},
          open(f"{sys.argv[1]}.{dist.get_rank()}.json", "w"))
dist.barrier()  # both ranks are done with gloo before either tears it down
dist.destroy_process_group()
"""


@pytest.mark.slow
def test_classify_under_a_process_group_shares_and_gathers(tmp_path):
    data = digit_folder(tmp_path / "data", 7)
    paths = [str(p) for p in sorted(data.rglob("*.png"))]
    import genfast

    alone = [[p.label, p.evaluations, p.key] for p in
             genfast.Classifier("digits", list(DIGITS), prompt="{}").classify(paths)]
    script = tmp_path / "classify.py"
    script.write_text(CLASSIFY_SCRIPT)
    command, env = cli_subprocess()
    command = [command[0], "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2", str(script),
               str(tmp_path / "result"), *paths]
    done = subprocess.run(command, env=env, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rank0, rank1 = (json.loads((tmp_path / f"result.{r}.json").read_text()) for r in (0, 1))
    assert rank0["mine"] == alone[0::2] and rank1["mine"] == alone[1::2]
    assert rank0["all"] == alone and rank1["all"] is None
