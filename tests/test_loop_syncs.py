"""The scoring loop never makes the host wait inside a batch: no tensor value is read on the host (`.item()`,
`bool(tensor)`, `nonzero`), in the loop or in any adapter, except the one error array per batch. On the CPU the
reads are counted with a dispatch mode; on a GPU, torch's sync debug mode also fails on any synchronising call."""
from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from genfast import Classifier
from genfast.engine import GenFast
from genfast.models.digits_data import load_split

HOST_READS = ("aten._local_scalar_dense", "aten.nonzero", "aten.is_nonzero", "aten.equal")
METHOD = GenFast(round_size=2, min_samples=2, max_samples=6)


class HostReads(TorchDispatchMode):
    """Counts the ops that read a tensor's value on the host (a device-to-host sync on a GPU)."""

    def __init__(self) -> None:
        super().__init__()
        self.counts: collections.Counter[str] = collections.Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = str(func.overloadpacket)
        if name in HOST_READS:
            self.counts[name] += 1
        return func(*args, **(kwargs or {}))


def count_reads(clf: Classifier, images: list, lookahead: bool = False) -> tuple[dict[str, int], int]:
    """(host reads inside the engine's batches, number of batches) for classifying `images`."""
    import genfast.engine.loop as loop

    mode, batches = HostReads(), [0]
    plan = loop.Engine.plan

    def counted_plan(self, batch_size):
        batches[0] += 1
        return plan(self, batch_size)

    pixels = clf.adapter.prepare_images(images)
    z0 = clf.adapter.encode_images(pixels)
    keys = np.arange(1, len(images) + 1, dtype=np.uint64)
    loop.Engine.plan = counted_plan
    try:
        with mode, torch.no_grad():
            loop.score_images(clf.adapter, clf.method, z0, keys, seed=0, batch_size=16,
                              on_finished=lambda *a: None, lookahead=lookahead)
    finally:
        loop.Engine.plan = plan
    return dict(mode.counts), batches[0]


def digits(n: int) -> list:
    return list(load_split("test")[0][:n])


@pytest.mark.parametrize("lookahead", [False, True])
def test_bundled_model_batches_read_nothing_on_the_host(lookahead):
    clf = Classifier("digits", [str(d) for d in range(10)], method=METHOD)
    reads, batches = count_reads(clf, digits(5), lookahead)
    assert batches > 3 and reads == {}


def test_stable_diffusion_batches_read_nothing_on_the_host(tmp_path):
    from genfast.testing import make_tiny_sd_pipeline

    path = make_tiny_sd_pipeline(tmp_path / "sd", max_length=8)
    clf = Classifier(path, ["cat", "dog", "car"], method=METHOD, device="cpu", attention="sdpa")
    assert clf.adapter.options()["share_prefix"] and clf.adapter.options()["cache_class_kv"]
    rng = np.random.default_rng(0)
    reads, batches = count_reads(clf, [rng.integers(0, 256, (16, 16, 3), dtype=np.uint8) for _ in range(3)])
    assert batches > 1 and reads == {}


def test_the_check_that_the_engine_skips_is_still_made_for_other_callers():
    """Rows from anyone but the engine are checked (one read of the device), and a bad one is refused."""
    clf = Classifier("digits", [str(d) for d in range(10)])
    z = torch.zeros(2, *clf.adapter.latent_shape)
    t, offsets = torch.tensor([3, 4]), torch.tensor([0, 1, 2])
    with HostReads() as mode:
        clf.adapter.denoise(z, t, offsets, torch.tensor([0, 9]))
    assert mode.counts["aten._local_scalar_dense"] == 1
    with pytest.raises(ValueError, match=r"class_index values must be in \[0, 10\)"):
        clf.adapter.denoise(z, t, offsets, torch.tensor([0, 10]))


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device for torch's sync debug mode")
def test_cuda_batches_do_not_synchronise():
    clf = Classifier("digits", [str(d) for d in range(10)], method=METHOD, device="cuda")
    import genfast.engine.loop as loop

    read = loop._Launched.read

    def checked(self):  # the error read is the one allowed wait
        torch.cuda.set_sync_debug_mode(0)
        try:
            return read(self)
        finally:
            torch.cuda.set_sync_debug_mode("error")

    loop._Launched.read = checked
    try:
        z0 = clf.adapter.encode_images(clf.adapter.prepare_images(digits(4)))
        torch.cuda.set_sync_debug_mode("error")
        loop.score_images(clf.adapter, clf.method, z0, np.arange(1, 5, dtype=np.uint64), seed=0, batch_size=16,
                          on_finished=lambda *a: None)
    finally:
        torch.cuda.set_sync_debug_mode(0)
        loop._Launched.read = read


def test_lookahead_plans_the_next_batch_before_reading_the_last_and_changes_no_result():
    """With lookahead the next batch is queued before the last one's errors are read, and every image gets the
    same rows (timesteps, samples, classes) and decision as without; scores agree to float rounding."""
    import genfast.engine.loop as loop

    clf = Classifier("digits", [str(d) for d in range(10)], method=GenFast(round_size=2, min_samples=4,
                                                                          max_samples=12, p_value=0.2))
    z0 = clf.adapter.encode_images(clf.adapter.prepare_images(digits(6)))
    keys = np.arange(1, 7, dtype=np.uint64)
    events: list[str] = []
    launch, read = loop._Launched.__init__, loop._Launched.read

    def launched(self, plan, errors):
        events.append("launch")
        launch(self, plan, errors)

    def reading(self):
        events.append("read")
        return read(self)

    def run(lookahead: bool) -> dict:
        results: dict = {}
        events.clear()
        loop._Launched.__init__, loop._Launched.read = launched, reading
        try:
            with torch.no_grad():
                loop.score_images(clf.adapter, clf.method, z0, keys, seed=0, batch_size=24, lookahead=lookahead,
                                  on_finished=lambda i, r, s: results.__setitem__(i, r))
        finally:
            loop._Launched.__init__, loop._Launched.read = launch, read
        return results

    plain, plain_events = run(False), list(events)
    ahead, ahead_events = run(True), list(events)
    def queued_behind(events: list[str]) -> list[int]:  # at each read: batches launched and not yet read, - 1
        out, outstanding = [], 0
        for event in events:
            outstanding += 1 if event == "launch" else -1
            if event == "read":
                out.append(outstanding)
        return out

    plain_queue, ahead_queue = queued_behind(plain_events), queued_behind(ahead_events)
    assert set(plain_queue) == {0} and max(ahead_queue) == 1 and min(ahead_queue) >= 0
    assert sum(ahead_queue) > len(ahead_queue) / 2  # most reads wait with the next batch queued behind them
    assert ahead_events.count("launch") == ahead_events.count("read")
    assert sorted(plain) == sorted(ahead) == list(range(6))
    for i in plain:
        a, b = plain[i], ahead[i]
        assert a.prediction == b.prediction and a.evaluations == b.evaluations
        np.testing.assert_array_equal(a.n_samples, b.n_samples)
        np.testing.assert_array_equal(a.timesteps, b.timesteps)
        np.testing.assert_allclose(a.errors, b.errors, rtol=1e-5)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)
