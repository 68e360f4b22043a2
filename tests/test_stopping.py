"""The anytime-valid stopping rule: its boundary is the normal-mixture confidence sequence, and on synthetic
errors with known means it drops the true best class at most at the stated rate however many looks it takes,
where the per-look t-test, looking as often, does not."""
import math

import numpy as np
import pytest

from genfast._native import available
from genfast.engine import Engine, GenFast

pytestmark = pytest.mark.skipif(not available(), reason="genfast._C is not built")


def _boundary(n, sd, alpha, n_star):
    """The mixture boundary written from its definition: the martingale
    (1 + n rho^2)^(-1/2) exp(rho^2 S^2 / (2 sd^2 (1 + n rho^2))) reaches 1/alpha at |S| = n * boundary."""
    log_term = -2 * math.log(alpha)
    rho2 = (log_term + math.log(log_term + 1)) / n_star
    # solve (1 + n rho2)^(-1/2) exp(rho2 s^2 / (2 (1 + n rho2))) = 1/alpha for s (in units of sd)
    v = 1 + n * rho2
    s = math.sqrt(2 * v / rho2 * (math.log(1 / alpha) + 0.5 * math.log(v)))
    return sd * s / n


@pytest.mark.parametrize("n", [2, 10, 64, 1000])
def test_boundary_is_the_mixture_martingale_level(n):
    from genfast import _C

    assert _C.mixture_boundary(n, 0.7, 0.01, 64) == pytest.approx(_boundary(n, 0.7, 0.01, 64), rel=1e-12)
    # wider than the fixed-n normal quantile: the price of looking at every n
    assert _C.mixture_boundary(n, 1.0, 0.01, 64) > 2.326 / math.sqrt(n)


def _run(method, means, images, seed):
    """Engine results on Gaussian errors: class k has mean error 10 + means[k], plus a term shared by the
    classes of a sample (paired) and an independent one per row, both of unit variance."""
    rng = np.random.default_rng(seed)
    engine = Engine(method, n_classes=len(means), num_train_timesteps=1000, seed=seed)
    engine.add_images(np.arange(images, dtype=np.uint64))
    means = np.asarray(means, dtype=np.float64)
    results = []
    while not engine.done():
        plan = engine.plan(4096)
        shared = np.repeat(rng.normal(size=len(plan.sample)), np.diff(plan.sample_offsets))
        engine.report(10.0 + shared + means[plan.class_index] + rng.normal(size=plan.n_rows))
        results.extend(engine.take_finished())
    return results


LOOK_EVERY_SAMPLE = dict(weighting="uniform", proposal="uniform", sampling="iid", round_size=1, min_samples=8,
                         max_samples=300, p_value=0.05)


def test_confidence_sequence_drops_a_best_class_at_most_at_the_stated_level():
    """Three classes of equal mean (each is a best class) and a look after every sample from 8 to 300: the
    confidence sequence drops class 0 on at most p_value of the images; the per-look t-test on several times more."""
    images = 500

    def drop_rate(stopping):
        results = _run(GenFast(stopping=stopping, **LOOK_EVERY_SAMPLE), [0.0, 0.0, 0.0], images, seed=1)
        return np.mean([r.n_samples[0] < r.n_samples.max() for r in results])

    assert drop_rate("confidence-sequence") <= 0.05 + 3 * math.sqrt(0.05 * 0.95 / images)
    assert drop_rate("t-test") > 3 * 0.05


def test_confidence_sequence_still_prunes_clear_losers():
    method = GenFast(stopping="confidence-sequence", **{**LOOK_EVERY_SAMPLE, "max_samples": 2000})
    results = _run(method, [0.0, 1.0, 2.0, 3.0], 100, seed=2)
    assert all(r.prediction == 0 for r in results)
    assert np.mean([r.evaluations for r in results]) < 0.2 * 4 * 2000


def test_stopping_is_validated():
    with pytest.raises(ValueError, match="stopping must be one of"):
        GenFast(stopping="e-values")
    with pytest.raises(ValueError, match=r"boundary_samples must be an integer in \[1, 2\*\*63\)"):
        GenFast(stopping="confidence-sequence", boundary_samples=0)
    with pytest.raises(ValueError, match="needs min_samples >= 8"):
        GenFast(stopping="confidence-sequence", min_samples=4)


def test_variance_proposal_moves_samples_to_where_the_classes_differ():
    """Classes that differ only at t < 100 (the first of ten bins): after the first round the image's own
    proposal puts most samples there, each weighted by w(t) / (its density), and the decision is unchanged."""
    method = GenFast(proposal="variance", weighting="uniform", sampling="lattice", round_size=8, min_samples=16,
                     max_samples=96, p_value=1e-9)  # never eliminates: every image runs all 96 samples
    rng = np.random.default_rng(4)
    engine = Engine(method, n_classes=2, num_train_timesteps=1000, seed=4)
    engine.add_images(np.arange(20, dtype=np.uint64))
    results = []
    while not engine.done():
        plan = engine.plan(512)
        t = np.repeat(plan.timestep, np.diff(plan.sample_offsets))
        gap = np.where(t < 100, 1.0, 0.0) * (plan.class_index == 1)
        engine.report(1.0 + gap + 0.02 * rng.normal(size=plan.n_rows))
        results.extend(engine.take_finished())
    for r in results:
        late = r.timesteps[16:]
        assert np.all(r.weights[:16] == 1.0)  # uniform w over the uniform start: v = 1
        assert np.mean(late < 100) > 0.5  # 10% under the uniform start; q(t) also counts the noise
        # the weights are w / p: small where the proposal is dense; the weighted mass of the first bin is about
        # its share of w (10%), as an unbiased estimate must be
        assert r.weights[16:][late < 100].max() < 1.0
        assert r.prediction == 0
    share = np.mean([r.weights[16:][r.timesteps[16:] < 100].sum() / r.weights[16:].sum() for r in results])
    assert share == pytest.approx(0.1, abs=0.03)


def test_variance_proposal_needs_sampled_timesteps():
    with pytest.raises(ValueError, match="proposal must be one of"):
        GenFast(proposal="adaptive")
