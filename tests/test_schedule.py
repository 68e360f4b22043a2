"""Adapter schedules: the variance-preserving and flow tables follow diffusers' own schedulers."""
import pytest
import torch
from diffusers import DDPMScheduler, FlowMatchEulerDiscreteScheduler

from genfast.models.base import Schedule
from genfast.models.schedule import flow_sigmas_from_config, vp_schedule_from_config


def test_vp_schedule_matches_add_noise():
    config = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012, "num_train_timesteps": 1000}
    schedule = vp_schedule_from_config(config)
    scheduler = DDPMScheduler(**config)
    z0, eps = torch.randn(3, 4, dtype=torch.float64), torch.randn(3, 4, dtype=torch.float64)
    t = torch.tensor([0, 411, 999])
    alpha, sigma, timestep = schedule.at(t)
    ours = alpha[:, None] * z0 + sigma[:, None] * eps
    theirs = scheduler.add_noise(z0.float(), eps.float(), t)
    torch.testing.assert_close(ours.float(), theirs, rtol=1e-5, atol=1e-6)
    assert timestep.tolist() == [0, 411, 999] and schedule.kind == "vp"
    torch.testing.assert_close(alpha**2 + sigma**2, torch.ones(3, dtype=torch.float64))


@pytest.mark.parametrize("shift", [1.0, 3.0])
def test_flow_schedule_matches_scale_noise(shift):
    scheduler = FlowMatchEulerDiscreteScheduler(num_train_timesteps=1000, shift=shift)
    schedule = Schedule.flow(flow_sigmas_from_config(dict(scheduler.config)), 1000.0, "timestep = 1000 * sigma")
    index = torch.tensor([0, 137, 500, 998])
    alpha, sigma, timestep = schedule.at(index)
    # diffusers' table runs from pure noise down; index i is its entry T-1-i
    model_t = scheduler.timesteps[999 - index]
    torch.testing.assert_close(timestep.float(), model_t, rtol=1e-6, atol=1e-4)
    z0, eps = torch.randn(4, 1, 3, 3), torch.randn(4, 1, 3, 3)
    theirs = torch.stack([scheduler.scale_noise(z0[i : i + 1], model_t[i : i + 1], eps[i : i + 1])[0] for i in range(4)])
    ours = alpha.float()[:, None, None, None] * z0 + sigma.float()[:, None, None, None] * eps
    torch.testing.assert_close(ours, theirs, rtol=1e-5, atol=1e-5)
    assert bool((sigma < 1).all()) and schedule.kind == "flow" and schedule.prediction_type == "flow"


def test_flow_dynamic_shift_needs_mu_and_matches_time_shift():
    config = {"use_dynamic_shifting": True, "num_train_timesteps": 1000}
    with pytest.raises(ValueError, match="needs mu"):
        flow_sigmas_from_config(config)
    sigmas = flow_sigmas_from_config(config, mu=0.8)
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True)
    u = torch.tensor([0.25, 0.5])
    torch.testing.assert_close(sigmas[[249, 499]].float(), scheduler.time_shift(0.8, 1.0, u).float())


def test_schedule_rejects_bad_tables():
    with pytest.raises(ValueError, match="alpha > 0 and sigma > 0"):
        Schedule.variance_preserving(torch.tensor([1.0, 0.5]), "epsilon")
    with pytest.raises(ValueError, match="prediction_type"):
        Schedule.variance_preserving(torch.tensor([0.9, 0.5]), "x0")


def test_a_scheduler_without_betas_is_refused():
    from genfast.models.schedule import vp_schedule_from_config

    with pytest.raises(ValueError, match="EDMEulerScheduler has no DDPM beta schedule"):
        vp_schedule_from_config({"_class_name": "EDMEulerScheduler", "sigma_min": 0.002}, "model/scheduler")
