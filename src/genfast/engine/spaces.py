"""Error spaces: per-row coefficients that turn any prediction type into the error that a method scores, in the
form `r = a * pred + b * z_t - c * eps` read by the `error_reduce` op (the schedule itself is the adapter's)."""
from __future__ import annotations

import torch

from genfast.models.base import PREDICTION_TYPES

ERROR_SPACES = ("epsilon", "x0")


def error_coefficients(prediction_type: str, error_space: str, alpha: torch.Tensor,
                       sigma: torch.Tensor) -> torch.Tensor:
    """float32 [S, 3] coefficients `(a, b, c)` so that `a*pred + b*z_t - c*eps` is the error in `error_space` (see
    `_coefficients`), as the error_reduce op reads them."""
    return _coefficients(prediction_type, error_space, alpha, sigma).to(torch.float32)


def _coefficients(prediction_type: str, error_space: str, alpha: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """float64 [S, 3] coefficients `(a, b, c)` so that `a*pred + b*z_t - c*eps` is the error in `error_space`.

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
    return torch.stack(coef, dim=1)


def clean_estimate(prediction_type: str, pred: torch.Tensor, z_t: torch.Tensor, alpha: torch.Tensor,
                   sigma: torch.Tensor) -> torch.Tensor:
    """The one-step estimate of the clean image implied by `pred` [B, *latent] at `z_t` [B, *latent], float32, with
    the per-row `alpha`, `sigma` [B] of the model's schedule: the x0 error space's `a*pred + b*z_t - c*eps` is
    `x0_hat - x0`, and `x0 = (z_t - sigma*eps)/alpha`, so `x0_hat = a*pred + (b + 1/alpha)*z_t` (the eps terms
    cancel), the same estimate the x0 error measures."""
    coef = _coefficients(prediction_type, "x0", alpha, sigma)
    shape = (-1,) + (1,) * (pred.dim() - 1)
    pred_weight = coef[:, 0].to(pred.device, torch.float32).reshape(shape)
    z_weight = (coef[:, 1] + 1.0 / alpha.to(torch.float64)).to(pred.device, torch.float32).reshape(shape)
    return pred_weight * pred.float() + z_weight * z_t.float()
