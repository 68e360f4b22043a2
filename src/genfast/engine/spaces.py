"""Noise schedules and error spaces: per-row coefficients that turn any prediction type into the error that
a method scores, in the form `r = a * pred + b * z_t - c * eps` read by the `error_reduce` op."""
from __future__ import annotations

import torch

PREDICTION_TYPES = ("epsilon", "v_prediction", "sample", "flow")
ERROR_SPACES = ("epsilon", "x0")


def alpha_sigma(alphas_cumprod: torch.Tensor | None, timesteps: torch.Tensor, num_train_timesteps: int,
                prediction_type: str) -> tuple[torch.Tensor, torch.Tensor]:
    """`(alpha, sigma)` in float64 for integer timesteps: VP `sqrt(abar), sqrt(1-abar)`; flow `1-t, t` with `t = (i+0.5)/T`."""
    if prediction_type == "flow":
        t = (timesteps.to(torch.float64) + 0.5) / num_train_timesteps  # strictly inside (0, 1)
        return 1.0 - t, t
    if alphas_cumprod is None:
        raise ValueError(f"prediction type {prediction_type!r} needs the model's alphas_cumprod")
    abar = alphas_cumprod.to(torch.float64).cpu()[timesteps.cpu()]
    return abar.sqrt(), (1.0 - abar).sqrt()


def error_coefficients(prediction_type: str, error_space: str, alpha: torch.Tensor,
                       sigma: torch.Tensor) -> torch.Tensor:
    """float32 [S, 3] coefficients `(a, b, c)` so that `a*pred + b*z_t - c*eps` is the error in `error_space`.

    With `z_t = alpha*x0 + sigma*eps`: epsilon space compares the implied noise with `eps`; x0 space compares
    the implied clean image with `x0 = (z_t - sigma*eps)/alpha`. Flow models use `alpha = 1-t, sigma = t` and
    predict the velocity `eps - x0`.
    """
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {prediction_type!r}")
    if error_space not in ERROR_SPACES:
        raise ValueError(f"error_space must be one of {ERROR_SPACES}, got {error_space!r}")
    a, s = alpha.to(torch.float64), sigma.to(torch.float64)
    one, zero = torch.ones_like(a), torch.zeros_like(a)
    if error_space == "epsilon":
        coef = {
            "epsilon": (one, zero, one),
            "v_prediction": (a, s, one),  # eps_hat = sigma*z_t + alpha*v
            "sample": (-a / s, 1.0 / s, one),  # eps_hat = (z_t - alpha*x0_hat)/sigma
            "flow": (a, one, one),  # eps_hat = z_t + (1-t)*u
        }[prediction_type]
    else:
        c = -s / a  # -x0 = -(z_t - sigma*eps)/alpha contributes +sigma/alpha*eps and -z_t/alpha
        coef = {
            "epsilon": (-s / a, zero, c),  # x0_hat = (z_t - sigma*eps_hat)/alpha
            "v_prediction": (-s, a - 1.0 / a, c),  # x0_hat = alpha*z_t - sigma*v
            "sample": (one, -1.0 / a, c),
            "flow": (-s, one - 1.0 / a, c),  # x0_hat = z_t - t*u
        }[prediction_type]
    return torch.stack(coef, dim=1).to(torch.float32)
