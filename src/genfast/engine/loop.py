"""The scoring loop between the engine and a model: plan a batch, noise, denoise, reduce errors, report.

The engine (C++) decides which (image, sample, class) rows come next; the adapter only denoises; this loop
is the short piece in between and does no per-row Python work. A token model (:class:`Scorer`) takes the place
of noise, denoiser and error reduction: it scores the planned rows itself.
"""
from __future__ import annotations

import time
from typing import Callable

import numpy as np
import torch

from genfast.engine import Engine, Exhaustive
from genfast.engine.spaces import error_coefficients
from genfast.models.base import Scorer
from genfast.ops.error_reduce import error_reduce
from genfast.ops.noise import noise_noising


class ModelOutputError(ValueError):
    """The denoiser produced NaN or inf for an image (e.g. fp16 overflow); `image` is its position."""

    def __init__(self, image: int, message: str) -> None:
        super().__init__(message)
        self.image = image


def score_images(adapter, method, z0: torch.Tensor, keys: np.ndarray, *, seed: int, batch_size: int,
                 on_finished: Callable[[int, object, float], None],
                 on_progress: Callable[[int], None] | None = None) -> None:
    """Run the engine to completion over the images whose clean latents are `z0` [N, *latent].

    `on_finished(i, result, seconds)` receives image `i`'s engine result as soon as it is decided, with its
    share of the wall time; `on_progress(rows)` is told how many denoiser rows each batch evaluated.
    """
    z0 = z0.contiguous()
    scorer = isinstance(adapter, Scorer)
    if scorer and adapter.deterministic:
        method = Exhaustive(n_samples=1)  # every sample is the same exact score: one per class is the result
    n_classes = len(adapter.class_names)
    engine = Engine(method, n_classes=n_classes, num_train_timesteps=adapter.num_train_timesteps, seed=seed)
    first_id = int(engine.add_images(np.asarray(keys, dtype=np.uint64))[0])  # ids are consecutive
    key_tensor = torch.from_numpy(np.asarray(keys, dtype=np.uint64).view(np.int64)).to(z0.device)
    seed_i64 = int(np.uint64(seed).view(np.int64))
    seconds = np.zeros(len(keys))
    device = z0.device
    while not engine.done():
        start = time.perf_counter()
        plan = engine.plan(batch_size)
        slot = torch.from_numpy(plan.image - first_id)
        timesteps = torch.from_numpy(plan.timestep)
        offsets = torch.from_numpy(plan.sample_offsets)
        rows_per_sample = offsets[1:] - offsets[:-1]
        class_index = torch.from_numpy(plan.class_index).to(device)
        if scorer:  # a token model scores its rows itself (models/base.py, Scorer)
            slot_d = slot.to(device)
            errors = adapter.score(z0.index_select(0, slot_d), timesteps.to(device), offsets.to(device), class_index,
                                   key_tensor.index_select(0, slot_d), torch.from_numpy(plan.sample).to(device),
                                   seed_i64)
        else:
            schedule = adapter.schedule
            alpha, sigma, _ = schedule.at(timesteps)
            eps, z_t = noise_noising(z0, key_tensor, slot.to(device), torch.from_numpy(plan.sample).to(device),
                                     alpha.to(device, torch.float32), sigma.to(device, torch.float32),
                                     seed_i64, method.antithetic)
            pred = adapter.denoise(z_t.to(adapter.dtype), timesteps.to(device), offsets.to(device), class_index,
                                   slot.to(device))
            coef = error_coefficients(schedule.prediction_type, method.error_space, alpha, sigma)
            coef = coef.repeat_interleave(rows_per_sample, dim=0).to(device)
            errors = error_reduce(pred, offsets.to(device), eps, z_t, coef, None, method.loss, method.huber_delta)
        errors = errors.cpu().numpy()
        bad = ~np.isfinite(errors)
        if bad.any():
            row = int(np.argmax(bad))
            sample_row = int(np.searchsorted(plan.sample_offsets, row, side="right") - 1)
            image = int(plan.image[sample_row]) - first_id
            raise ModelOutputError(image,
                f"the model produced a non-finite error for image {image} "
                f"(class {int(plan.class_index[row])}, timestep {int(plan.timestep[sample_row])}); with float16 "
                "this is usually an overflow: try dtype=torch.float32 or bfloat16")
        engine.report(errors)
        # Share this batch's time among its images by their rows.
        elapsed = time.perf_counter() - start
        slots = slot.numpy()
        np.add.at(seconds, slots, elapsed * rows_per_sample.numpy() / max(len(errors), 1))
        if on_progress is not None:
            on_progress(len(errors))
        for result in engine.take_finished():
            i = int(result.id) - first_id
            on_finished(i, result, float(seconds[i]))
