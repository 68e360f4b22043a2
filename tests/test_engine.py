"""The scoring engine driven by a deterministic fake "model": decisions are independent of batching, order and
grouping; Li et al.'s loop and successive elimination match independent re-implementations; timesteps follow
the declared density; bad input gets clear errors."""
import dataclasses

import numpy as np
import pytest

from genfast._native import available
from genfast.engine import ClarkJaini2023, Engine, Exhaustive, GenFast, Li2023

pytestmark = pytest.mark.skipif(not available(), reason="genfast._C is not built")
scipy_stats = pytest.importorskip("scipy.stats")

T = 1000
_M1, _M2, _M3 = np.uint64(0xBF58476D1CE4E5B9), np.uint64(0x94D049BB133111EB), np.uint64(0x9E3779B97F4A7C15)


def _unit(x):
    """splitmix64 finaliser of uint64 values -> uniform floats in [0, 1)."""
    x = np.asarray(x, dtype=np.uint64)
    x = (x ^ (x >> np.uint64(30))) * _M1
    x = (x ^ (x >> np.uint64(27))) * _M2
    x = x ^ (x >> np.uint64(31))
    return (x >> np.uint64(11)).astype(np.float64) / 2.0**53


def fake_error(key, sample, timestep, cls, n_classes):
    """error(key, j, t, k): the true class (key % K) is lowest on average, wrong classes by a key- and
    class-dependent gap; a noise term shared by the classes of one sample (paired) plus one per class."""
    key = np.asarray(key, dtype=np.uint64)
    sample = np.asarray(sample, dtype=np.uint64)
    cls = np.asarray(cls, dtype=np.uint64)
    t = np.asarray(timestep, dtype=np.float64) / T
    true = key % np.uint64(n_classes)
    gap = 0.015 * (1 + (cls * np.uint64(7) + key) % np.uint64(6)).astype(np.float64)
    mean = 1.0 + np.where(cls == true, 0.0, gap)
    shared = _unit(key * _M3 + sample * _M1 + np.uint64(1))
    own = _unit((key * _M3 + sample * _M1) ^ ((cls + np.uint64(1)) * _M2))
    return (mean * (0.6 + t) + 0.8 * shared + 0.3 * (own - 0.5)).astype(np.float32)


def plan_rows(plan):
    """Per class row: key, sample, timestep of its sample row."""
    rep = np.diff(plan.sample_offsets)
    return (np.repeat(plan.key, rep), np.repeat(plan.sample, rep), np.repeat(plan.timestep, rep),
            np.repeat(plan.image, rep))


def drive(engine, batch_size, n_classes, log=None):
    """Run the engine to the end on the fake model; returns results by key; `log` collects every plan with
    the number of images in flight when it was made."""
    out = {}
    while not engine.done():
        plan = engine.plan(batch_size)
        keys, samples, ts, _ = plan_rows(plan)
        if log is not None:
            log.append((plan, engine.n_in_flight))
        engine.report(fake_error(keys, samples, ts, plan.class_index, n_classes))
        for r in engine.take_finished():
            out[r.key] = r
    return out


def run(method, keys, batch_size, n_classes, seed=3, log=None):
    engine = Engine(method, n_classes=n_classes, num_train_timesteps=T, seed=seed)
    ids = engine.add_images(np.asarray(keys, dtype=np.uint64))
    assert list(ids) == list(range(len(keys)))
    return drive(engine, batch_size, n_classes, log)


def assert_same_results(a, b):
    assert a.keys() == b.keys()
    for key in a:
        x, y = a[key], b[key]
        assert x.prediction == y.prediction and x.evaluations == y.evaluations
        np.testing.assert_array_equal(x.scores, y.scores)
        np.testing.assert_array_equal(x.n_samples, y.n_samples)
        np.testing.assert_array_equal(x.timesteps, y.timesteps)
        np.testing.assert_array_equal(x.weights, y.weights)
        np.testing.assert_array_equal(x.errors, y.errors)


METHODS = {
    "li2023": Li2023(n_samples=(10, 40), to_keep=(3, 1)),
    "exhaustive": Exhaustive(n_samples=12),
    "clark-jaini2023": ClarkJaini2023(max_samples=150),
    "genfast": GenFast(round_size=4, min_samples=8, max_samples=120),
    "genfast-antithetic-stratified": GenFast(round_size=6, min_samples=6, max_samples=96, antithetic=True,
                                             sampling="stratified", weighting="exp"),
    "genfast-variance-cs": GenFast(round_size=4, min_samples=8, max_samples=120, proposal="variance",
                                   stopping="confidence-sequence", p_value=0.01),
}
KEYS = [11, 2**64 - 5, 12345678901, 7, 99, 2**40 + 3]


@pytest.mark.parametrize("name", list(METHODS))
def test_decisions_do_not_depend_on_batch_size(name):
    K = 6
    ref = run(METHODS[name], KEYS, 1000, K)
    assert all(r.evaluations > 0 for r in ref.values())
    assert len({r.prediction for r in ref.values()}) > 1  # the fake model is not degenerate
    for bs in (1, 7, 64):
        assert_same_results(ref, run(METHODS[name], KEYS, bs, K))


@pytest.mark.parametrize("name", ["li2023", "genfast", "genfast-antithetic-stratified"])
def test_decisions_do_not_depend_on_order_or_grouping(name):
    K = 6
    ref = run(METHODS[name], KEYS, 64, K)
    assert_same_results(ref, run(METHODS[name], KEYS[::-1], 64, K))
    # two engine runs, and images added while others are in flight
    split = {**run(METHODS[name], KEYS[:2], 13, K), **run(METHODS[name], KEYS[2:], 13, K)}
    assert_same_results(ref, split)
    engine = Engine(METHODS[name], n_classes=K, num_train_timesteps=T, seed=3)
    engine.add_images(KEYS[:3])
    plan = engine.plan(17)
    engine.report(fake_error(*plan_rows(plan)[:3], plan.class_index, K))
    first = {r.key: r for r in engine.take_finished()}
    engine.add_images(KEYS[3:])
    assert_same_results(ref, {**first, **drive(engine, 17, K)})
    # a different seed changes the timesteps of sampled methods
    if name != "li2023":
        other = run(METHODS[name], KEYS, 64, K, seed=4)
        assert any(not np.array_equal(other[k].timesteps[:4], ref[k].timesteps[:4]) for k in KEYS)


@pytest.mark.parametrize("name", list(METHODS))
def test_plans_are_consistent_and_pruned_classes_get_nothing(name):
    K, bs = 6, 16
    log = []
    results = run(METHODS[name], KEYS, bs, K, log=log)
    received = {(key, k): [] for key in KEYS for k in range(K)}
    rows_per_key = {key: 0 for key in KEYS}
    plans_of_sample = {}
    for plan, in_flight in log:
        B = plan.n_rows
        assert 1 <= B <= bs
        off = plan.sample_offsets
        assert off[0] == 0 and off[-1] == B and np.all(np.diff(off) >= 1)
        assert np.all((plan.timestep >= 0) & (plan.timestep < T))
        if B < bs:  # a partly filled plan took every in-flight image's remaining rows
            assert len(set(plan.image.tolist())) == in_flight
        for s in range(len(plan.sample)):
            cls = plan.class_index[off[s]:off[s + 1]]
            assert np.all(np.diff(cls) > 0)
            key = int(plan.key[s])
            assert plan.timestep[s] == results[key].timesteps[plan.sample[s]]
            plans_of_sample[(key, int(plan.sample[s]))] = plans_of_sample.get((key, int(plan.sample[s])), 0) + 1
            for k in cls:
                received[(key, int(k))].append(int(plan.sample[s]))
            rows_per_key[key] += len(cls)
    assert max(plans_of_sample.values()) >= 2  # some samples' class rows were split across plans
    for key, r in results.items():
        assert r.evaluations == rows_per_key[key] == r.n_samples.sum()
        assert len(r.timesteps) == r.n_samples.max() == r.errors.shape[1]
        np.testing.assert_array_equal(r.sample_indices, np.arange(len(r.timesteps)))
        for k in range(K):
            got = received[(key, k)]
            # class k got samples 0..n_k-1 exactly once each, in order; nothing after it was pruned
            assert got == list(range(r.n_samples[k]))
            assert np.all(np.isfinite(r.errors[k, :r.n_samples[k]])) and np.all(np.isnan(r.errors[k, r.n_samples[k]:]))
            n = r.n_samples[k]
            e = fake_error(np.full(n, key), np.arange(n), r.timesteps[:n], np.full(n, k), K)
            np.testing.assert_array_equal(r.errors[k, :n], e)
            v = r.weights[:n]
            assert r.scores[k] == pytest.approx(np.sum(v * e) / np.sum(v), rel=1e-12)
        alive = np.flatnonzero(r.n_samples == r.n_samples.max())
        assert r.prediction == alive[np.argmin(r.scores[alive])]


def li_reference(key, K, n_samples, to_keep):
    """Li et al.'s eval_prob_adaptive (n_trials=1), restated on the fake errors."""
    import torch

    max_n_samples = max(n_samples)
    data = {}
    t_evaluated = set()
    remaining = list(range(K))
    start = T // max_n_samples // 2
    t_to_eval = list(range(start, T, T // max_n_samples))[:max_n_samples]
    for n, n_to_keep in zip(n_samples, to_keep):
        ts, noise_idxs, text_idxs = [], [], []
        curr = t_to_eval[len(t_to_eval) // n // 2::len(t_to_eval) // n][:n]
        curr = [t for t in curr if t not in t_evaluated]
        for prompt_i in remaining:
            for t_idx, t in enumerate(curr, start=len(t_evaluated)):
                ts.append(t)
                noise_idxs.append(t_idx)
                text_idxs.append(prompt_i)
        t_evaluated.update(curr)
        errs = torch.from_numpy(fake_error(np.full(len(ts), key), noise_idxs, ts, text_idxs, K).astype(np.float64))
        for prompt_i in remaining:
            mask = torch.tensor(text_idxs) == prompt_i
            entry = dict(t=torch.tensor(ts)[mask], j=torch.tensor(noise_idxs)[mask], pred_errors=errs[mask])
            if prompt_i in data:
                entry = {f: torch.cat([data[prompt_i][f], entry[f]]) for f in entry}
            data[prompt_i] = entry
        errors = [-data[p]["pred_errors"].mean() for p in remaining]
        best = torch.topk(torch.tensor(errors), k=n_to_keep, dim=0).indices.tolist()
        remaining = [remaining[i] for i in best]
    assert len(remaining) == 1
    return remaining[0], data


@pytest.mark.parametrize("K, n_samples, to_keep", [
    (10, (50, 500), (5, 1)),
    (16, (25, 250), (5, 1)),
    (30, (20, 50, 100, 500), (20, 10, 5, 1)),
])
def test_li2023_matches_their_loop(K, n_samples, to_keep):
    method = Li2023() if K == 10 else Li2023(n_samples=n_samples, to_keep=to_keep)
    assert method.schedule(K) == (n_samples, to_keep)
    keys = [5, 2**63 + 17, 123456789, 42]
    results = run(method, keys, 256, K)
    for key in keys:
        pred, data = li_reference(key, K, n_samples, to_keep)
        r = results[key]
        assert r.prediction == pred
        assert r.evaluations == sum(len(d["t"]) for d in data.values())
        for k in range(K):
            n = r.n_samples[k]
            assert n == len(data[k]["t"])
            np.testing.assert_array_equal(data[k]["j"].numpy(), np.arange(n))  # same noise index j
            np.testing.assert_array_equal(data[k]["t"].numpy(), r.timesteps[:n])
            assert r.scores[k] == pytest.approx(data[k]["pred_errors"].mean().item(), rel=1e-12)


def test_li2023_cifar10_costs_2750_evaluations():
    results = run("li2023", [1, 2, 3], 1000, 10)
    assert [r.evaluations for r in results.values()] == [10 * 50 + 5 * 450] * 3


def test_li2023_keeps_every_class_when_to_keep_exceeds_them():
    results = run("li2023", [1, 2], 1000, 3)  # (50, 500) / (5, 1): the first stage keeps all 3
    for r in results.values():
        np.testing.assert_array_equal(r.n_samples, [500, 500, 500])
        assert r.evaluations == 1500 and r.prediction == np.argmin(r.scores)


def elimination_reference(r, method, K):
    """Successive elimination with scipy's paired t-test on the engine's timesteps: (n_samples, prediction)."""
    n_total = len(r.timesteps)
    v = method.score_weights(T)[r.timesteps]
    np.testing.assert_array_equal(v, r.weights)
    E = np.stack([fake_error(np.full(n_total, r.key), np.arange(n_total), r.timesteps, np.full(n_total, k), K)
                  for k in range(K)]).astype(np.float64)
    alive, n, n_k = list(range(K)), 0, np.zeros(K, dtype=np.int64)

    def score(k):
        return np.sum(v[:n] * E[k, :n]) / np.sum(v[:n])

    while True:
        n = min(n + method.round_size, method.max_samples)
        n_k[alive] = n
        if n >= method.min_samples and len(alive) > 1:
            best = min(alive, key=lambda k: (score(k), k))
            alive = [k for k in alive if k == best or scipy_stats.ttest_rel(
                v[:n] * E[k, :n], v[:n] * E[best, :n], alternative="greater").pvalue >= method.p_value]
        if len(alive) == 1 or n >= method.max_samples:
            return n_k, min(alive, key=lambda k: (score(k), k))


@pytest.mark.parametrize("method", [
    ClarkJaini2023(max_samples=120),
    GenFast(round_size=5, min_samples=10, max_samples=200, p_value=1e-2, weighting="exp", proposal="uniform"),
])
def test_elimination_matches_scipy_reference(method):
    K = 5
    keys = list(range(100, 106))
    results = run(method, keys, 300, K)
    pruned_early = 0
    for key in keys:
        n_k, pred = elimination_reference(results[key], method, K)
        np.testing.assert_array_equal(results[key].n_samples, n_k)
        assert results[key].prediction == pred
        pruned_early += int(n_k.min() < n_k.max())
    assert pruned_early > 0  # the comparison exercised elimination


def _timesteps_of(method, n_images, n_samples, K=2):
    """Timesteps of n_samples samples of n_images images; constant errors so no class is ever dropped."""
    method = dataclasses.replace(method, max_samples=n_samples, min_samples=2)
    engine = Engine(method, n_classes=K, num_train_timesteps=T, seed=11)
    engine.add_images(np.arange(n_images, dtype=np.uint64) * np.uint64(0x9E3779B1))
    out = []
    while not engine.done():
        engine.report(np.ones(engine.plan(4096).n_rows, dtype=np.float32))
        out += engine.take_finished()
    assert all(r.n_samples.min() == n_samples for r in out)
    return np.stack([r.timesteps for r in out])


@pytest.mark.parametrize("sampling", ["iid", "lattice", "stratified"])
@pytest.mark.parametrize("weighting, proposal", [("exp", "weight"), ("uniform", "weight"), ("exp", "uniform")])
def test_timesteps_follow_the_density(sampling, weighting, proposal):
    method = GenFast(sampling=sampling, weighting=weighting, proposal=proposal, round_size=8)
    ts = _timesteps_of(method, 300, 32)
    edges = np.linspace(0, T, 21).astype(int)
    p = method.density(T)
    expected_share = np.array([p[a:b].sum() for a, b in zip(edges, edges[1:])])
    for cols in (slice(None), slice(5, 6), slice(31, 32)):  # all samples, and single sample indices j
        t = ts[:, cols].ravel()
        observed = np.histogram(t, bins=edges)[0]
        assert scipy_stats.chisquare(observed, expected_share * len(t)).pvalue > 1e-4


def test_lattice_and_stratified_spread_each_image():
    """Every image's first n timesteps cover [0, T) evenly (uniform density): a lattice has low discrepancy
    for every prefix; stratified rounds take every stratum once; iid draws do not."""
    def worst_gap(ts, n_bins):
        counts = np.stack([np.bincount(row * n_bins // T, minlength=n_bins) for row in ts])
        return np.abs(counts - ts.shape[1] / n_bins).max()

    lattice = _timesteps_of(GenFast(sampling="lattice", round_size=8, weighting="uniform"), 50, 64)
    assert worst_gap(lattice, 8) <= 2 and worst_gap(lattice[:, :21], 7) <= 2
    strat = _timesteps_of(GenFast(sampling="stratified", round_size=8, weighting="uniform"), 50, 64)
    for r in range(8):
        np.testing.assert_array_equal(np.sort(strat[:, 8 * r:8 * r + 8] * 8 // T, axis=1),
                                      np.tile(np.arange(8), (50, 1)))
    iid = _timesteps_of(GenFast(sampling="iid", round_size=8, weighting="uniform"), 50, 64)
    assert worst_gap(iid, 8) > 2


@pytest.mark.parametrize("sampling", ["iid", "lattice", "stratified"])
def test_antithetic_pairs_share_their_timestep(sampling):
    ts = _timesteps_of(GenFast(sampling=sampling, antithetic=True, round_size=8), 20, 32)
    np.testing.assert_array_equal(ts[:, 0::2], ts[:, 1::2])
    assert len(np.unique(ts[:, 0::2])) > 100


def test_clear_errors():
    K = 4
    with pytest.raises(ValueError, match="n_classes must be at least 2"):
        Engine("genfast", n_classes=1, num_train_timesteps=T)
    with pytest.raises(ValueError, match="unknown method"):
        Engine("fastest", n_classes=K, num_train_timesteps=T)
    with pytest.raises(ValueError, match="seed"):
        Engine("genfast", n_classes=K, num_train_timesteps=T, seed=-1)
    engine = Engine("genfast", n_classes=K, num_train_timesteps=T)
    with pytest.raises(RuntimeError, match="no image is in flight"):
        engine.plan(8)
    with pytest.raises(ValueError, match="keys must be integers"):
        engine.add_images([1, -2])
    with pytest.raises(ValueError, match="keys must be non-negative"):
        engine.add_images(np.array([3, -1]))
    with pytest.raises(TypeError, match="integer array"):
        engine.add_images(np.array([1.5]))
    engine.add_images([2**64 - 1, 0])
    with pytest.raises(RuntimeError, match="no outstanding plan"):
        engine.report(np.ones(3, dtype=np.float32))
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        engine.plan(0)
    with pytest.raises(TypeError, match="batch_size"):
        engine.plan(2.0)
    plan = engine.plan(10)
    assert engine.can_plan()  # two plans may be outstanding
    ahead = engine.plan(10)
    assert not engine.can_plan()
    with pytest.raises(RuntimeError, match="2 plans await their reports"):
        engine.plan(10)
    with pytest.raises(ValueError, match=f"expected {plan.n_rows} errors"):
        engine.report(np.ones(plan.n_rows + 1, dtype=np.float32))
    with pytest.raises(ValueError, match="one-dimensional"):
        engine.report(np.ones((plan.n_rows, 1), dtype=np.float32))
    bad = np.ones(plan.n_rows, dtype=np.float32)
    bad[5] = np.nan
    s = int(np.searchsorted(plan.sample_offsets, 5, side="right") - 1)
    msg = (f"image id {plan.image[s]} \\(key {plan.key[s]}\\), sample {plan.sample[s]}, "
           f"class {plan.class_index[5]}")
    with pytest.raises(ValueError, match=msg):
        engine.report(bad)
    bad[5] = np.inf
    with pytest.raises(ValueError, match="not finite"):
        engine.report(bad)
    engine.report(np.ones(plan.n_rows, dtype=np.float32))  # the plan stayed outstanding and is accepted now
    engine.plan(10)
    with pytest.raises(ValueError, match=f"expected {ahead.n_rows} errors"):  # the oldest is reported first
        engine.report(np.ones(ahead.n_rows + 1, dtype=np.float32))
