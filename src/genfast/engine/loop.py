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


COMPILE_MODES: tuple[str, ...] = ("off", "inductor", "graphs")
"""`compile=` of genfast.Classifier: the plain eager denoiser; torch.compile with inductor; or torch.compile's
"reduce-overhead" mode, which replays CUDA graphs on a GPU (inductor alone on a CPU). Compiled modes pad every
batch to batch_size rows, so one graph serves the whole run."""


def compiled_denoiser(adapter, mode: str) -> Callable[..., torch.Tensor] | None:
    """adapter.denoise under torch.compile for `mode` (COMPILE_MODES; None for "off"), for fixed-shape batches."""
    if mode not in COMPILE_MODES:
        raise ValueError(f"compile must be one of {', '.join(COMPILE_MODES)}, got {mode!r}")
    if mode == "off":
        return None
    if isinstance(adapter, Scorer):
        raise ValueError(f"compile={mode!r} compiles a denoiser; {type(adapter).__name__} scores tokens itself, "
                         f"use compile='off'")
    return torch.compile(adapter.denoise, dynamic=False, mode="reduce-overhead" if mode == "graphs" else None)


class _PlanTransfer:
    """Moves each plan to the device in one copy: slot, sample, timestep, sample offsets and class index
    written into one int64 block (a reused pinned one on CUDA, whose previous copy is complete by then, since
    that batch's errors were read), copied with non_blocking and viewed on the device; on the CPU, a new block
    per batch used in place. With `fixed`, every plan is padded to batch_size samples and rows: the padding
    samples are image 0's first sample, with no rows but the last, which takes the padding rows (class 0)."""

    def __init__(self, device: torch.device, batch_size: int, fixed: bool) -> None:
        self.device, self.batch_size, self.fixed = device, batch_size, fixed
        capacity = 5 * batch_size + 1  # S <= B <= batch_size rows: 4 S + 1 + B
        self.host = None if device.type == "cpu" else torch.empty(capacity, dtype=torch.int64,
                                                                  pin_memory=device.type == "cuda")

    def __call__(self, plan, first_id: int) -> tuple[torch.Tensor, ...]:
        """(slot, sample, timestep, sample_offsets, class_index) on the device."""
        parts = [plan.image - first_id, plan.sample, plan.timestep, plan.sample_offsets, plan.class_index]
        samples, rows = len(plan.image), len(plan.class_index)
        if rows > self.batch_size:
            raise ValueError(f"a plan of {rows} rows exceeds the batch size it was planned for")
        if self.fixed and samples < self.batch_size:  # (S <= B <= batch_size: S is full only if B is)
            pad = self.batch_size - samples
            parts[:3] = [np.pad(part, (0, pad)) for part in parts[:3]]
            offsets = np.pad(parts[3], (0, pad), constant_values=rows)
            offsets[-1] = self.batch_size
            parts[3], parts[4] = offsets, np.pad(parts[4], (0, self.batch_size - rows))
            samples = rows = self.batch_size
        if self.host is None:  # the CPU: a fresh block, so whoever keeps a batch's tensors keeps their values
            block = torch.from_numpy(np.concatenate(parts))
        else:
            staged = self.host[:4 * samples + 1 + rows]
            np.concatenate(parts, out=staged.numpy())
            block = staged.to(self.device, non_blocking=True)
        return block.split([samples, samples, samples, samples + 1, rows])


def score_images(adapter, method, z0: torch.Tensor, keys: np.ndarray, *, seed: int, batch_size: int,
                 on_finished: Callable[[int, object, float], None],
                 on_progress: Callable[[int], None] | None = None,
                 denoise: Callable[..., torch.Tensor] | None = None) -> None:
    """Run the engine to completion over the images whose clean latents are `z0` [N, *latent].

    `on_finished(i, result, seconds)` receives image `i`'s engine result as soon as it is decided, with its
    share of the wall time; `on_progress(rows)` is told how many denoiser rows each batch evaluated.
    Per batch the device receives one copy (the plan) and the host reads one array (the errors): the noise
    levels and error coefficients are looked up in [T] tables on the device, and the engine's rows are not
    checked again there (Adapter.trusting_rows). `denoise` (compiled_denoiser) replaces adapter.denoise and gets
    every batch padded to batch_size rows; the padding's errors are dropped.
    """
    z0 = z0.contiguous()
    scorer = isinstance(adapter, Scorer)
    if scorer and adapter.deterministic:
        method = Exhaustive(n_samples=1)  # every sample is the same exact score: one per class is the result
    n_classes = len(adapter.class_names)
    engine = Engine(method, n_classes=n_classes, num_train_timesteps=adapter.num_train_timesteps, seed=seed)
    first_id = int(engine.add_images(np.asarray(keys, dtype=np.uint64))[0])  # ids are consecutive
    device = z0.device
    key_tensor = torch.from_numpy(np.asarray(keys, dtype=np.uint64).view(np.int64)).to(device)
    seed_i64 = int(np.uint64(seed).view(np.int64))
    seconds = np.zeros(len(keys))
    transfer = _PlanTransfer(device, batch_size, fixed=denoise is not None)
    denoise = denoise or adapter.denoise
    if not scorer:  # alpha, sigma and the error coefficients of every timestep index, looked up per sample
        schedule = adapter.schedule
        alpha, sigma, _ = schedule.at(torch.arange(adapter.num_train_timesteps))
        coef_table = error_coefficients(schedule.prediction_type, method.error_space, alpha, sigma).to(device)
        alpha_table, sigma_table = alpha.to(device, torch.float32), sigma.to(device, torch.float32)
    with adapter.trusting_rows():
        while not engine.done():
            start = time.perf_counter()
            plan = engine.plan(batch_size)
            slot, sample, timestep, offsets, class_index = transfer(plan, first_id)
            if scorer:  # a token model scores its rows itself (models/base.py, Scorer)
                errors = adapter.score(z0.index_select(0, slot), timestep, offsets, class_index,
                                       key_tensor.index_select(0, slot), sample, seed_i64)
            else:
                eps, z_t = noise_noising(z0, key_tensor, slot, sample, alpha_table.index_select(0, timestep),
                                         sigma_table.index_select(0, timestep), seed_i64, method.antithetic)
                pred = denoise(z_t.to(adapter.dtype), timestep, offsets, class_index, slot)
                coef = coef_table.index_select(0, timestep).repeat_interleave(
                    offsets.diff(), dim=0, output_size=len(class_index))
                errors = error_reduce(pred, offsets, eps, z_t, coef, None, method.loss, method.huber_delta)
            errors = _report(engine, plan, errors, first_id)
            # Share this batch's time among its images by their rows.
            elapsed = time.perf_counter() - start
            rows_per_sample = np.diff(plan.sample_offsets)
            np.add.at(seconds, plan.image - first_id, elapsed * rows_per_sample / max(len(errors), 1))
            if on_progress is not None:
                on_progress(len(errors))
            for result in engine.take_finished():
                i = int(result.id) - first_id
                on_finished(i, result, float(seconds[i]))


def _report(engine: Engine, plan, device_errors: torch.Tensor, first_id: int) -> np.ndarray:
    """Read a batch's errors (the batch's one device-to-host read; padding rows dropped), hand them to the engine
    and return them; ModelOutputError naming the image if any is not finite."""
    errors = device_errors[:len(plan.class_index)].cpu().numpy()
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
    return errors
