"""The scoring loop between the engine and a model: plan a batch, noise, denoise, reduce errors, report.

The engine (C++) decides which (image, sample, class) rows come next; the adapter only denoises; this loop
is the short piece in between and does no per-row Python work. A token model (:class:`Scorer`) takes the place
of noise, denoiser and error reduction: it scores the planned rows itself.
"""
from __future__ import annotations

import collections
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
    written into one int64 block, copied with non_blocking and viewed on the device. On CUDA the block is one of
    two reused pinned ones, taken in turn: a plan is staged while at most one other is in flight, so the block it
    reuses belongs to a batch whose errors were read, and its copy is complete. On the CPU, a new block per batch
    used in place. With `fixed`, every plan is padded to batch_size samples and rows: the padding samples are
    image 0's first sample, with no rows but the last, which takes the padding rows (class 0)."""

    def __init__(self, device: torch.device, batch_size: int, fixed: bool) -> None:
        self.device, self.batch_size, self.fixed = device, batch_size, fixed
        capacity = 5 * batch_size + 1  # S <= B <= batch_size rows: 4 S + 1 + B
        self.host = [] if device.type == "cpu" else [
            torch.empty(capacity, dtype=torch.int64, pin_memory=device.type == "cuda") for _ in range(2)]
        self.turn = 0

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
        if not self.host:  # the CPU: a fresh block, so whoever keeps a batch's tensors keeps their values
            block = torch.from_numpy(np.concatenate(parts))
        else:
            staged = self.host[self.turn][:4 * samples + 1 + rows]
            self.turn ^= 1
            np.concatenate(parts, out=staged.numpy())
            block = staged.to(self.device, non_blocking=True)
        return block.split([samples, samples, samples, samples + 1, rows])


class _Launched:
    """A batch queued on the device: its plan and its errors, which on CUDA are being copied into pinned host
    memory behind an event, so that reading them waits for this batch only, not for one queued after it."""

    def __init__(self, plan, errors: torch.Tensor) -> None:
        self.plan = plan
        errors = errors[:len(plan.class_index)]  # the padding rows of a fixed-shape batch dropped
        if errors.device.type == "cuda":
            self.errors = torch.empty(errors.shape, dtype=errors.dtype, pin_memory=True)
            self.errors.copy_(errors, non_blocking=True)
            self.ready: torch.cuda.Event | None = torch.cuda.Event()
            self.ready.record()
        else:
            self.errors, self.ready = errors, None

    def read(self) -> np.ndarray:
        """The errors on the host: the batch's one wait for the device."""
        if self.ready is not None:
            self.ready.synchronize()
        return self.errors.cpu().numpy()


def score_images(adapter, method, z0: torch.Tensor, keys: np.ndarray, *, seed: int, batch_size: int,
                 on_finished: Callable[[int, object, float], None],
                 on_progress: Callable[[int], None] | None = None,
                 denoise: Callable[..., torch.Tensor] | None = None, lookahead: bool | None = None) -> None:
    """Run the engine to completion over the images whose clean latents are `z0` [N, *latent].

    `on_finished(i, result, seconds)` receives image `i`'s engine result as soon as it is decided, with its
    share of the wall time; `on_progress(rows)` is told how many denoiser rows each batch evaluated.
    Per batch the device receives one copy (the plan) and the host reads one array (the errors): the noise
    levels and error coefficients are looked up in [T] tables on the device, and the engine's rows are not
    checked again there (Adapter.trusting_rows). `denoise` (compiled_denoiser) replaces adapter.denoise and gets
    every batch padded to batch_size rows; the padding's errors are dropped. With `lookahead` (default: on any
    device but the CPU, where host and device are one) the next batch is planned and queued before the last
    one's errors are read, so the device never waits for the host; it holds only rows that need no report
    (Engine.can_plan), so every image's rows, and so every decision, are those of the plain loop.
    """
    z0 = z0.contiguous()
    scorer = isinstance(adapter, Scorer)
    if scorer and adapter.deterministic:
        method = Exhaustive(n_samples=1)  # every sample is the same exact score: one per class is the result
    n_classes = len(adapter.class_names)
    engine = Engine(method, n_classes=n_classes, num_train_timesteps=adapter.num_train_timesteps, seed=seed)
    first_id = int(engine.add_images(np.asarray(keys, dtype=np.uint64))[0])  # ids are consecutive
    device = z0.device
    ahead = device.type != "cpu" if lookahead is None else bool(lookahead)
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

    def launch(plan) -> _Launched:
        slot, sample, timestep, offsets, class_index = transfer(plan, first_id)
        if scorer:  # a token model scores its rows itself (models/base.py, Scorer)
            return _Launched(plan, adapter.score(z0.index_select(0, slot), timestep, offsets, class_index,
                                                 key_tensor.index_select(0, slot), sample, seed_i64))
        eps, z_t = noise_noising(z0, key_tensor, slot, sample, alpha_table.index_select(0, timestep),
                                 sigma_table.index_select(0, timestep), seed_i64, method.antithetic)
        pred = denoise(z_t.to(adapter.dtype), timestep, offsets, class_index, slot)
        coef = coef_table.index_select(0, timestep).repeat_interleave(
            offsets.diff(), dim=0, output_size=len(class_index))
        return _Launched(plan, error_reduce(pred, offsets, eps, z_t, coef, None, method.loss, method.huber_delta))

    queued: collections.deque[_Launched] = collections.deque()  # oldest first
    with adapter.trusting_rows():
        last = time.perf_counter()
        while not engine.done():
            queued.append(launch(engine.plan(batch_size)))
            if ahead and engine.can_plan():
                queued.append(launch(engine.plan(batch_size)))
            while queued:
                batch = queued.popleft()
                errors = _report(engine, batch.plan, batch.read(), first_id)
                # Share the wall time since the last report among this batch's images by their rows.
                now = time.perf_counter()
                rows_per_sample = np.diff(batch.plan.sample_offsets)
                np.add.at(seconds, batch.plan.image - first_id, (now - last) * rows_per_sample / max(len(errors), 1))
                last = now
                if on_progress is not None:
                    on_progress(len(errors))
                for result in engine.take_finished():
                    i = int(result.id) - first_id
                    on_finished(i, result, float(seconds[i]))
                if queued and engine.can_plan():  # keep one batch queued behind the one being read
                    queued.append(launch(engine.plan(batch_size)))


def _report(engine: Engine, plan, errors: np.ndarray, first_id: int) -> np.ndarray:
    """Hand a batch's errors (read on the host) to the engine and return them; ModelOutputError naming the image
    if any is not finite."""
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
