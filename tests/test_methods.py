"""Method objects: names, parameters and their checks, Li et al.'s grid, weights, densities, engine configs."""
import dataclasses

import numpy as np
import pytest

from genfast._native import available
from genfast.engine.methods import (
    LI2023_DEFAULTS,
    METHODS,
    ClarkJaini2023,
    Elimination,
    Exhaustive,
    GenFast,
    Li2023,
    get_method,
    li_grid,
    li_stage_timesteps,
    timestep_weights,
)

needs_native = pytest.mark.skipif(not available(), reason="genfast._C is not built")


def test_get_method_names_and_objects():
    assert set(METHODS) == {"exhaustive", "li2023", "clark-jaini2023", "genfast"}
    for name, cls in METHODS.items():
        m = get_method(name)
        assert type(m) is cls and m.name == name
    custom = GenFast(round_size=4, min_samples=8)
    assert get_method(custom) is custom
    with pytest.raises(ValueError, match="exhaustive, li2023, clark-jaini2023, genfast"):
        get_method("li2024")
    with pytest.raises(ValueError, match="unknown method"):
        get_method(3)


def test_li2023_presets_are_their_published_commands():
    """Li et al.'s commands.md, e.g. CIFAR-10: --n_samples 50 500 --to_keep 5 1 --loss l1."""
    cifar = get_method("li2023-cifar10")
    assert type(cifar) is Li2023 and (cifar.n_samples, cifar.to_keep, cifar.loss) == ((50, 500), (5, 1), "l1")
    assert get_method("li2023-imagenet") == Li2023(n_samples=(50, 100, 500, 1000), to_keep=(500, 50, 10, 1))
    assert get_method("li2023-pets:loss=l2") == Li2023(n_samples=(25, 250), to_keep=(5, 1), loss="l2")
    with pytest.raises(ValueError, match="li2023-cifar10, li2023-pets"):
        get_method("li2023-mnist")


def test_li_grid_is_their_formula():
    for T, n in [(1000, 500), (1000, 50), (1000, 300), (1000, 7), (10, 10), (1000, 1)]:
        g = li_grid(T, n)
        assert len(g) == n
        assert g[0] == T // n // 2 and all(b - a == T // n for a, b in zip(g, g[1:]))
        assert all(0 <= t < T for t in g)
    with pytest.raises(ValueError, match="does not fit"):
        li_grid(100, 101)


@pytest.mark.parametrize("n_samples", [(50, 500), (25, 250), (20, 50, 100, 500), (50, 100, 500, 1000), (100, 500)])
def test_li_stages_partition_the_grid(n_samples):
    T = 1000
    stages = li_stage_timesteps(T, n_samples)
    flat = [t for s in stages for t in s]
    assert len(flat) == len(set(flat))  # each timestep is evaluated once
    grid = li_grid(T, max(n_samples))
    for n, new, upto in zip(n_samples, stages, range(len(stages))):
        subset = grid[len(grid) // n // 2 :: len(grid) // n][:n]
        assert len(subset) == n
        earlier = {t for s in stages[:upto] for t in s}
        assert new == [t for t in subset if t not in earlier]  # in grid order, minus the evaluated
    if max(n_samples) == n_samples[-1]:
        assert sorted(flat) == grid  # the last stage completes the grid


def test_li2023_defaults_by_class_count():
    m = Li2023()
    assert m.schedule(10) == ((50, 500), (5, 1))  # CIFAR-10
    assert m.schedule(16) == ((25, 250), (5, 1))  # model-vs-human's 16 classes: Pets' setting
    assert m.schedule(101) == ((20, 50, 100, 500), (20, 10, 5, 1))
    assert m.schedule(1000) == ((50, 100, 500, 1000), (500, 50, 10, 1))
    assert [row[0] for row in LI2023_DEFAULTS] == sorted(row[0] for row in LI2023_DEFAULTS)
    explicit = Li2023(n_samples=[10, 40], to_keep=[3, 1])
    assert explicit.schedule(1000) == ((10, 40), (3, 1))
    assert dataclasses.replace(explicit, n_samples=(8, 16)).n_samples == (8, 16)


def test_exhaustive_timesteps():
    assert Exhaustive(n_samples=100).timesteps(1000, 5) == list(range(5, 1000, 10))


def test_weights_density_and_score_weights():
    T = 1000
    t = np.arange(T) / T
    cj = ClarkJaini2023()
    np.testing.assert_allclose(cj.weights(T), np.exp(-7 * t))
    np.testing.assert_allclose(cj.density(T), np.full(T, 1 / T))
    v = cj.score_weights(T)
    np.testing.assert_allclose(v / v[0], np.exp(-7 * t), rtol=1e-12)  # v = w / p with p uniform
    assert np.sum(cj.density(T) * v) == pytest.approx(1.0)
    gf = GenFast(weighting="exp", weight_rate=3.0, proposal="weight")
    np.testing.assert_allclose(gf.density(T), np.exp(-3 * t) / np.exp(-3 * t).sum())
    np.testing.assert_allclose(gf.score_weights(T), 1.0)  # sampling in proportion to w: equal weights
    assert Li2023().density(T) is None and np.all(Li2023().score_weights(T) == 1.0)
    np.testing.assert_allclose(timestep_weights("uniform", 7.0, 4), 1.0)


def test_published_parameters():
    cj = ClarkJaini2023()
    assert (cj.error_space, cj.loss, cj.sampling, cj.proposal, cj.weighting, cj.weight_rate) == \
        ("x0", "l2", "iid", "uniform", "exp", 7.0)
    assert (cj.round_size, cj.min_samples, cj.max_samples, cj.p_value) == (1, 20, 2000, 2e-3)
    li = Li2023()
    assert (li.error_space, li.loss, li.antithetic) == ("epsilon", "l2", False)
    gf = GenFast()
    assert (gf.error_space, gf.weighting, gf.weight_rate, gf.proposal, gf.sampling) == ("x0", "exp", 9.0, "uniform",
                                                                                       "lattice")
    assert (gf.round_size, gf.min_samples, gf.max_samples, gf.p_value, gf.stopping) == (4, 8, 48, 0.05, "t-test")


@pytest.mark.parametrize("make, match", [
    (lambda: GenFast(error_space="v"), "error_space"),
    (lambda: GenFast(loss="l3"), "loss"),
    (lambda: GenFast(loss="huber", huber_delta=0.0), "huber_delta"),
    (lambda: GenFast(p_value=0.0), "p_value"),
    (lambda: GenFast(p_value=1.5), "p_value"),
    (lambda: GenFast(min_samples=1), "min_samples"),
    (lambda: GenFast(min_samples=40, max_samples=20), "max_samples"),
    (lambda: GenFast(round_size=0), "round_size"),
    (lambda: GenFast(round_size=2.5), "round_size"),
    (lambda: GenFast(antithetic=True, round_size=3), "even"),
    (lambda: GenFast(sampling="sobol"), "sampling"),
    (lambda: GenFast(proposal="other"), "proposal"),
    (lambda: GenFast(weighting="cosine"), "weighting"),
    (lambda: Elimination(antithetic=1), "antithetic"),
    (lambda: Exhaustive(n_samples=0), "n_samples"),
    (lambda: Exhaustive(antithetic=True), "antithetic"),
    (lambda: Li2023(n_samples=(10, 20)), "both"),
    (lambda: Li2023(n_samples=(10, 20), to_keep=(1,)), "equal length"),
    (lambda: Li2023(n_samples=(10, 20), to_keep=(2, 2)), "strictly decreasing"),
    (lambda: Li2023(n_samples=(10, 20), to_keep=(3, 2)), "end with 1"),
    (lambda: Li2023(n_samples=(10, -20), to_keep=(3, 1)), "n_samples"),
])
def test_bad_parameters(make, match):
    with pytest.raises(ValueError, match=match):
        make()


@needs_native
def test_to_config():
    cfg = Li2023(n_samples=(10, 40), to_keep=(3, 1)).to_config(5, 1000, 7)
    assert cfg.timesteps == "sequence" and cfg.rule == "stages"
    assert cfg.sequence == Li2023(n_samples=(10, 40), to_keep=(3, 1)).timesteps(1000, 5)
    assert cfg.stage_ends == [10, 40] and cfg.stage_keep == [3, 1] and cfg.seed == 7 and cfg.n_classes == 5
    cfg = GenFast(sampling="stratified", antithetic=True).to_config(16, 1000, 0)
    assert cfg.timesteps == "stratified" and cfg.rule == "elimination" and cfg.antithetic
    assert len(cfg.density) == 1000 and len(cfg.score_weight) == 1000
    ex = Exhaustive(n_samples=20).to_config(4, 1000, 0)
    assert ex.stage_ends == [20] and ex.stage_keep == [4]


@needs_native
def test_to_config_checks_against_the_model():
    with pytest.raises(ValueError, match="n_classes must be at least 2"):
        GenFast().to_config(1, 1000, 0)
    with pytest.raises(ValueError, match="num_train_timesteps"):
        GenFast().to_config(4, 0, 0)
    with pytest.raises(ValueError, match="does not fit"):
        Exhaustive(n_samples=200).to_config(4, 100, 0)
    with pytest.raises(ValueError, match="adds no timestep"):
        Li2023(n_samples=(50, 50), to_keep=(3, 1)).to_config(4, 1000, 0)


@needs_native
def test_native_config_validation():
    from genfast._native import native

    cfg = GenFast().to_config(4, 1000, 0)
    cfg.density = [0.0] * 1000
    with pytest.raises(ValueError, match="density sums to zero"):
        cfg.validate()
    cfg = Li2023(n_samples=(10, 40), to_keep=(3, 1)).to_config(5, 1000, 0)
    cfg.sequence = cfg.sequence[:20]
    with pytest.raises(ValueError, match="sequence"):
        native().Engine(cfg)
    cfg = GenFast().to_config(4, 1000, 0)
    cfg.timesteps = "halton"
    with pytest.raises(ValueError, match="timesteps must be one of"):
        cfg.validate()


def test_get_method_parses_command_line_parameters():
    from genfast.engine import Exhaustive, GenFast, Li2023, get_method

    assert get_method("exhaustive:n_samples=4") == Exhaustive(n_samples=4)
    assert get_method("genfast:p_value=1e-4,sampling=iid") == GenFast(p_value=1e-4, sampling="iid")
    assert get_method("li2023:n_samples=(10,40),to_keep=(3,1)") == Li2023(n_samples=(10, 40), to_keep=(3, 1))
    for bad, match in [("genfast:no_such_field=1", "no_such_field"), ("genfast:p_value", "field=value"),
                       ("genfast:p_value=2", "p_value")]:
        with pytest.raises(ValueError, match=match):
            get_method(bad)
