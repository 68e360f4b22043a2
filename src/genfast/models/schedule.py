"""The noise schedule and parameterisation of a model, read from its diffusers scheduler config.

``alphas_cumprod`` is computed in float64 from the same formulas diffusers uses (which computes in float32), so
that ``alpha = sqrt(alphas_cumprod[t])`` and ``sigma = sqrt(1 - alphas_cumprod[t])`` are as exact as possible.
Flow-matching schedules follow ``FlowMatchEulerDiscreteScheduler``'s training table.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Mapping

import torch

from genfast.models.base import PREDICTION_TYPES, Schedule


def alphas_cumprod_from_config(config: Mapping[str, Any], source: str = "scheduler config") -> torch.Tensor:
    """float64 ``[T]`` cumulative products of ``1 - beta`` for a DDPM-style scheduler config."""
    steps = int(config.get("num_train_timesteps", 1000))
    if steps < 1:
        raise ValueError(f"{source}: num_train_timesteps must be positive, got {steps}")
    if config.get("rescale_betas_zero_snr", False):
        raise ValueError(f"{source}: rescale_betas_zero_snr=True is not supported")
    trained = config.get("trained_betas")
    schedule = config.get("beta_schedule", "linear")
    start, end = float(config.get("beta_start", 0.0001)), float(config.get("beta_end", 0.02))
    if trained is not None:
        betas = torch.tensor(trained, dtype=torch.float64)
        if betas.shape != (steps,):
            raise ValueError(f"{source}: trained_betas has {betas.numel()} values, expected {steps}")
    elif schedule == "linear":
        betas = torch.linspace(start, end, steps, dtype=torch.float64)
    elif schedule == "scaled_linear":
        betas = torch.linspace(start**0.5, end**0.5, steps, dtype=torch.float64) ** 2
    elif schedule == "squaredcos_cap_v2":
        def alpha_bar(x: float) -> float:
            return math.cos((x + 0.008) / 1.008 * math.pi / 2) ** 2

        betas = torch.tensor(
            [min(1 - alpha_bar((i + 1) / steps) / alpha_bar(i / steps), 0.999) for i in range(steps)],
            dtype=torch.float64,
        )
    else:
        raise ValueError(
            f"{source}: beta_schedule {schedule!r} is not supported "
            "(supported: 'linear', 'scaled_linear', 'squaredcos_cap_v2', or trained_betas)"
        )
    return torch.cumprod(1.0 - betas, dim=0)


def prediction_type_from_config(config: Mapping[str, Any], source: str = "scheduler config") -> str:
    """The scheduler's ``prediction_type`` (default "epsilon"), checked against the supported ones."""
    prediction_type = config.get("prediction_type", "epsilon")
    if prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"{source}: prediction_type {prediction_type!r} is not one of {PREDICTION_TYPES}")
    return prediction_type


def read_scheduler_config(path: Path) -> dict[str, Any]:
    """Read ``scheduler_config.json`` from a local file, with errors that name the file."""
    if not path.is_file():
        raise ValueError(f"{path}: scheduler config not found")
    try:
        config = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ValueError(f"{path}: cannot read the scheduler config ({exc})") from exc
    if not isinstance(config, dict):
        raise ValueError(f"{path}: the scheduler config must be a JSON object")
    return config


def vp_schedule_from_config(config: Mapping[str, Any], source: str = "scheduler config") -> Schedule:
    """The variance-preserving :class:`Schedule` of a DDPM-style scheduler config (index = model timestep)."""
    kind = str(config.get("_class_name", ""))
    if kind.startswith(("EDM", "FlowMatch")):
        raise ValueError(f"{source}: {kind} has no DDPM beta schedule (an EDM or flow-matching model), which this "
                         "model family's adapter reads")
    return Schedule.variance_preserving(alphas_cumprod_from_config(config, source),
                                        prediction_type_from_config(config, source))


def flow_sigmas_from_config(config: Mapping[str, Any], source: str = "scheduler config",
                            mu: float | None = None) -> torch.Tensor:
    """float64 ``[T]`` flow sigmas by index, rising with the index, as ``FlowMatchEulerDiscreteScheduler`` trains.

    Index ``i`` has the unshifted level ``u = (i + 1) / T`` (the scheduler's table, reversed), shifted by
    ``shift * u / (1 + (shift - 1) * u)``; a scheduler with ``use_dynamic_shifting`` (FLUX) is shifted by
    ``exp(mu) / (exp(mu) + 1/u - 1)`` instead, with ``mu`` from the image size (required then). The last index,
    pure noise (``u = 1``), where the clean image is not defined, is moved half a step in (``u = 1 - 1/(2T)``).
    """
    steps = int(config.get("num_train_timesteps", 1000))
    if steps < 2:
        raise ValueError(f"{source}: num_train_timesteps must be at least 2, got {steps}")
    u = torch.arange(1, steps + 1, dtype=torch.float64) / steps
    u[-1] = 1.0 - 0.5 / steps
    if config.get("use_dynamic_shifting", False):
        if mu is None:
            raise ValueError(f"{source}: use_dynamic_shifting needs mu (computed from the image size)")
        if config.get("time_shift_type", "exponential") == "linear":
            return mu / (mu + (1.0 / u - 1.0))
        return math.exp(mu) / (math.exp(mu) + (1.0 / u - 1.0))
    shift = float(config.get("shift", 1.0))
    if not shift > 0:
        raise ValueError(f"{source}: shift must be positive, got {shift}")
    return shift * u / (1.0 + (shift - 1.0) * u)
