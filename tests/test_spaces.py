"""Error-space coefficients: a perfect prediction of any type has zero error in every space, and a
perturbed one has the error the definitions give."""
import pytest
import torch

from genfast.engine.spaces import error_coefficients
from genfast.models.base import Schedule
from genfast.models.schedule import flow_sigmas_from_config

TYPES = ("epsilon", "v_prediction", "sample", "flow")


def _setup(prediction_type, n=5, d=7, seed=0):
    g = torch.Generator().manual_seed(seed)
    x0 = torch.randn(n, d, generator=g, dtype=torch.float64)
    eps = torch.randn(n, d, generator=g, dtype=torch.float64)
    t = torch.tensor([0, 100, 400, 700, 999])
    abar = torch.linspace(0.9999, 0.005, 1000, dtype=torch.float64)
    if prediction_type == "flow":  # a shifted flow schedule, as SD3 uses
        schedule = Schedule.flow(flow_sigmas_from_config({"shift": 3.0}), 1000.0, "timestep = 1000 * sigma")
    else:
        schedule = Schedule.variance_preserving(abar, prediction_type)
    a, s, _ = schedule.at(t)
    a, s = a[:, None], s[:, None]
    z_t = a * x0 + s * eps
    exact = {
        "epsilon": eps,
        "v_prediction": a * eps - s * x0,
        "sample": x0,
        "flow": eps - x0,
    }[prediction_type]
    return x0, eps, z_t, a, s, exact


def _residual(coef, pred, z_t, eps):
    coef = coef.to(torch.float64)
    return coef[:, :1] * pred + coef[:, 1:2] * z_t - coef[:, 2:3] * eps


@pytest.mark.parametrize("prediction_type", TYPES)
@pytest.mark.parametrize("space", ["epsilon", "x0"])
def test_perfect_prediction_has_zero_error(prediction_type, space):
    x0, eps, z_t, a, s, exact = _setup(prediction_type)
    coef = error_coefficients(prediction_type, space, a[:, 0], s[:, 0])
    r = _residual(coef, exact, z_t, eps)
    assert r.abs().max() < 1e-4 * (1 + z_t.abs().max())


@pytest.mark.parametrize("prediction_type", TYPES)
def test_error_matches_definition(prediction_type):
    x0, eps, z_t, a, s, _ = _setup(prediction_type)
    eps_hat = eps + 0.1 * torch.randn_like(eps)
    x0_hat = (z_t - s * eps_hat) / a
    # the prediction of this type that implies eps_hat (and hence x0_hat)
    pred = {"epsilon": eps_hat, "v_prediction": a * eps_hat - s * x0_hat, "sample": x0_hat,
            "flow": eps_hat - x0_hat}[prediction_type]
    r_eps = _residual(error_coefficients(prediction_type, "epsilon", a[:, 0], s[:, 0]), pred, z_t, eps)
    r_x0 = _residual(error_coefficients(prediction_type, "x0", a[:, 0], s[:, 0]), pred, z_t, eps)
    torch.testing.assert_close(r_eps, eps_hat - eps, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(r_x0, x0_hat - x0, rtol=1e-4, atol=1e-5)
    # the familiar identity for epsilon models: ||x0 - x0_hat|| = sigma/alpha ||eps - eps_hat||
    torch.testing.assert_close(r_x0.norm(dim=1), (s / a)[:, 0] * (eps_hat - eps).norm(dim=1), rtol=1e-4, atol=1e-6)


def test_bad_names():
    a = torch.ones(2)
    with pytest.raises(ValueError, match="prediction_type"):
        error_coefficients("noise", "epsilon", a, a)
    with pytest.raises(ValueError, match="error_space"):
        error_coefficients("epsilon", "latent", a, a)
