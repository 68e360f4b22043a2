"""genfast against a baseline at equal work, measured in one run on the same model and images.

    python benchmarks/throughput.py                      # speed: digits, tiny-sd (+ sd15, sd2 on a GPU)
    python benchmarks/throughput.py --models sd15,sd2 --images 4 --json out.json
    python benchmarks/throughput.py --models digits,sd2 --images digits=8,sd2=1 --dtype bfloat16
    python benchmarks/throughput.py --models sdxl,sd3,flux,dit,if,amused,janus   # one row per model family
    python benchmarks/throughput.py --mode accuracy      # evaluations per image at Li et al.'s accuracy

Speed mode times, for each model, with Li et al.'s schedule (equal work on both sides):
  li-real   Li et al.'s own evaluation loop: `li_real_loop`, a statement-by-statement transcription of their
            eval_prob_adaptive and eval_error (LI_UPSTREAM): one image at a time, their torch.randn noise
            [max(n_samples), *latent] per image, the flattened (class, timestep) list in batches of 32 rows
            (their --batch_size default), the prompt embeddings gathered per row, the plain diffusers UNet
            forward with diffusers' attention processors, fp16 on GPU / fp32 on CPU. It is the headline ratio;
            it runs again at genfast's batch size (--li-batch-size), which their code allows too. It replaced an
            earlier rewrite of their loop (`li_baseline`), as fast as it at equal batch size and threads (within
            this machine's noise), whose 1.7-2.1x compared genfast's 256-row batches with 32-row ones
            (benchmarks/RESULTS.md). The baseline of digits, tiny-sd, sd15 and sd2.
  plain     the baseline of a family row (sdxl, sd3, flux, dit, if, amused, janus; FAMILIES): the family's own
            pipeline in a plain loop (`PlainPipeline`, `plain_li_loop`), as a researcher would write it: Li et
            al.'s staged loop over the flattened (class, sample) rows, one image at a time, in batches of 32 rows
            and of genfast's batch size, each row noised by the pipeline's own scheduler (add_noise /
            scale_noise), the pipeline's own prompt encoding gathered per row, its own denoiser, the error per
            row; a masked-token scorer (aMUSEd) masks each row with genfast.token_masks and takes the
            cross-entropy of the masked codes. Noise and masks are genfast's (`genfast.noise`,
            `genfast.token_masks`), so both sides score the same samples and must take the same decisions. A
            deterministic scorer (Janus) has one exact score per class, so Li et al.'s schedule does not apply:
            its baseline is the plain teacher-forced forward of every class, one class per forward, the image
            tokenised in each. A family row is timed from the prepared pixels (image encoding included, on both
            sides), on the tiny random pipelines of genfast.testing.
  genfast   the engine with continuous batching and every exact optimisation the model allows (shared UNet
            prefix, cached class keys/values, a scorer's shared prompt prefix and once-per-image tokenisation,
            fused noise and error kernels) at genfast's batch size; each row names the adapter's exact savings
            in effect and those that do not apply, with their reasons;
  floor     the denoiser's (or scorer's) own forward replayed on exactly genfast's batches: the engine's
            overhead is the genfast time over this.
The three are run interleaved --repeats times and the medians reported.
It reports evaluations/s, images/s, genfast / the baseline, the overhead over the floor, peak memory and whether
the two take the same decisions: the timed runs of their loop draw their own torch.randn noise, so one more
untimed run feeds it genfast's noise (`genfast.noise`, as their --noise_path feeds a tensor) for that check;
the plain loop of a family draws genfast's noise in every run. Each row's target is genfast >= the baseline at
every baseline batch size, >= 1.5x where an exact saving applies.
Each speed row also prints a roofline line: FLOPs of one plain evaluation (torch.utils.flop_counter) times
genfast's evaluations/s, the effective FLOP/s, against the GPU's dense fp16 peak where it is known (exact savings
make the effective rate exceed what the device computes).
On a GPU each speed row also runs genfast once more, untimed, under torch.profiler and reports how busy the device
was: the union of its kernel, memcpy and memset intervals (concurrent streams counted once) over genfast's timed
region as the host sees it (a record_function range from the start of the timed work to its final synchronize),
so host stalls before the first kernel, between kernels and after the last count as idle. The profiled run is a
bounded window (--profile-images): genfast's whole run on all the row's images for the bundled model and tiny SD,
on the first image for any other model (a Stable Diffusion architecture's image is 1,525 evaluations, ~24 batches
of 64 rows, ~5 x 10^5 trace events; PROFILE_IMAGES); the trace is read from the profiler's Kineto results
directly (trace_events: a few us an event, against ~100 us through prof.events()). The profiler slows the host,
so where the host is the bottleneck this reads lower than the unprofiled run would; the row keeps the profiled
window next to the timed seconds. Target (issue 13): busy >= 95% on the bundled model and tiny SD, judged there
only (elsewhere the fraction is reported, the target n/a). A CPU row has no busy fraction (n/a: no device).
The sd15 and sd2 rows are the real SD 1.5 and SD 2-base UNet architectures (LATENT_MODELS, from the published
configs, written out: nothing is downloaded) with random weights on random 64x64 latents (512x512 images; 16x16 on
a CPU, where neither is run by default) and random conditioning shaped as their text encoders' output, 16 classes.

Accuracy mode classifies the bundled digits' held-out split with Li et al.'s 10-class schedule (50,500 / 5,1:
2,750 evaluations per image) and with the other methods at several budgets, and reports how many evaluations
per image each needs to reach Li et al.'s accuracy.
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import math
import platform
import resource
import sys
import tempfile
import time
from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import date
from functools import partial
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch.profiler import ProfilerActivity, profile, record_function

import genfast
from genfast.api import Classifier, image_key
from genfast.engine import ClarkJaini2023, Exhaustive, GenFast, Li2023, Method
from genfast.engine.loop import COMPILE_MODES, compiled_denoiser, score_images
from genfast.vocabulary import MVH_CLASSES
from genfast.models import load_model
from genfast.models.base import Adapter, Scorer
from genfast.models.digits_data import CLASS_NAMES as DIGITS, load_split
from genfast.models.schedule import vp_schedule_from_config
from genfast.models.unet import ClassConditionedUNet
from genfast.models.unet_adapter import UNetAdapter
from genfast.testing import make_tiny_sd_pipeline
from genfast.testing.amused import make_tiny_amused_pipeline
from genfast.testing.deepfloyd_if import make_tiny_if_pipeline
from genfast.testing.dit import make_tiny_dit_pipeline
from genfast.testing.flux import make_tiny_flux_pipeline
from genfast.testing.janus import make_tiny_janus_model
from genfast.testing.sd3 import make_tiny_sd3_pipeline
from genfast.testing.sdxl import make_tiny_sdxl_pipeline

# The real Stable Diffusion architectures with random weights, built from their published configs (written out
# here: nothing is downloaded). The UNet configs name what the diffusers defaults do not already give (act_fn silu,
# norm_num_groups 32, norm_eps 1e-5, flip_sin_to_cos, freq_shift 0, downsample_padding 1, mid_block_scale_factor 1,
# as both published configs have); sample_size is the latent side, set per device. The text encoder is not built:
# its cost is once per class, and its config gives the conditioning's shape (hidden_size x max_position_embeddings
# tokens), which the random per-class conditioning takes.
SD15_UNET = dict(  # runwayml/stable-diffusion-v1-5 unet/config.json (the same as CompVis/stable-diffusion-v1-4's)
    in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    attention_head_dim=8, cross_attention_dim=768, use_linear_projection=False,
)
SD15_TEXT = dict(  # its text_encoder/config.json: CLIP ViT-L/14's text tower (openai/clip-vit-large-patch14)
    hidden_size=768, intermediate_size=3072, num_attention_heads=12, num_hidden_layers=12,
    max_position_embeddings=77, vocab_size=49408, hidden_act="quick_gelu",
)
SD2_UNET = dict(  # stabilityai/stable-diffusion-2-base unet/config.json
    in_channels=4, out_channels=4, layers_per_block=2, block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    attention_head_dim=(5, 10, 20, 20), cross_attention_dim=1024, use_linear_projection=True,
)
SD2_TEXT = dict(  # its text_encoder/config.json: OpenCLIP ViT-H/14's text tower, its last layer left out
    hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=23,
    max_position_embeddings=77, vocab_size=49408, hidden_act="gelu",
)
LATENT_MODELS = {"sd15": (SD15_UNET, SD15_TEXT), "sd2": (SD2_UNET, SD2_TEXT)}
"""The models whose rows run a real architecture on random latents (LatentUNetAdapter): name -> (UNet config,
text encoder config). 512x512 images (64x64 latents) on a GPU, 128x128 (16x16) on a CPU."""
LI_UPSTREAM = ("diffusion-classifier/diffusion-classifier, eval_prob_adaptive.py (eval_prob_adaptive, eval_error) as "
               "of commit e9f772d78b75976112d88a1002c496f6ef0cb27e (file last changed in a544da9c)")
LI_LOSSES = {"l2": F.mse_loss, "l1": F.l1_loss, "huber": F.huber_loss}  # their --loss choices
SD_SCHEDULE = {"beta_schedule": "scaled_linear", "beta_start": 0.00085, "beta_end": 0.012,
               "num_train_timesteps": 1000}


class LatentUNetAdapter(UNetAdapter):
    """A UNet with random weights and random per-class conditioning that takes latents directly: the denoising
    workload of a full model without its VAE and text encoder (whose cost is once per image or class)."""

    def __init__(self, unet, latent_size: int, n_classes: int, text_tokens: int, device, dtype,
                 name: str = "sd2", **options):
        self.name = f"{name}-unet-random"
        self.schedule = vp_schedule_from_config(SD_SCHEDULE, "SD schedule")
        self.latent_shape = (unet.config.in_channels, latent_size, latent_size)
        self.image_size, self.image_channels = latent_size, unet.config.in_channels
        self.device, self.dtype = torch.device(device), dtype
        self.unet = unet.to(self.device, dtype).eval()
        gen = torch.Generator().manual_seed(1)
        self.table = torch.randn(n_classes, text_tokens, unet.config.cross_attention_dim, generator=gen)
        self.class_names = []
        self.runner = ClassConditionedUNet(self.unet, source="benchmark", **options)

    def _conditioning(self, class_names, prompt):
        return self.table[: len(class_names)].to(self.device, self.dtype)

    def encode_images(self, pixels):
        return pixels.to(self.device, torch.float32)


PROMPT = "a bad photo of a {}"


@dataclass
class Case:
    """One benchmark row's model and images: `z0` the encoded images the engine scores (latents, or a scorer's
    VQ codes); a family row also has the prepared `pixels` (its timed work starts from them) and its `plain`
    baseline."""

    name: str
    adapter: Adapter
    z0: torch.Tensor
    keys: np.ndarray
    labels: np.ndarray | None
    pixels: torch.Tensor | None = None
    plain: PlainPipeline | None = None

    def head(self, n: int) -> Case:
        """The case on its first `n` images (for warm-up)."""
        return replace(self, z0=self.z0[:n], keys=self.keys[:n], labels=None,
                       pixels=None if self.pixels is None else self.pixels[:n])


def latent_unet(config: dict[str, Any], latent_size: int) -> torch.nn.Module:
    """diffusers' UNet2DConditionModel from a config of LATENT_MODELS, random weights (torch's default
    initialisation, on the current default device), for `latent_size` x `latent_size` latents."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(sample_size=latent_size, **config)


def baseline_dtype(device: torch.device) -> torch.dtype:
    """The baselines' dtype: fp16 on a GPU, fp32 on a CPU, as Li et al.'s code runs."""
    return torch.float16 if device.type == "cuda" else torch.float32


def build_case(name: str, n_images: int, device: torch.device, dtype: torch.dtype, tmp: Path,
               classes: list[str] | None = None) -> Case:
    """The model, its encoded images and image keys for one benchmark row (a family row: also its pixels and
    plain baseline); `classes` default to the digits for digits, else the 16 model-vs-human classes."""
    rng = np.random.default_rng(0)
    labels, family = None, FAMILIES.get(name)
    random_images = [rng.integers(0, 256, (64, 64, 3), dtype=np.uint8) for _ in range(n_images)]
    if name == "digits":
        adapter = load_model("digits", device=device, dtype=dtype)
        x, y = load_split("test")
        images, labels = list(x[:n_images]), y[:n_images]
    elif name == "tiny-sd":
        adapter = load_model(make_tiny_sd_pipeline(tmp / "tiny-sd"), device=device, dtype=dtype)
        images = random_images
    elif name in LATENT_MODELS:
        unet_config, text_config = LATENT_MODELS[name]
        latent = 64 if device.type == "cuda" else 16  # 512x512 images on a GPU, 128x128 on a CPU
        torch.manual_seed(0)
        with torch.device(device):  # initialised where it runs: on a GPU, seconds less than on its host's CPU
            unet = latent_unet(unet_config, latent)
        adapter = LatentUNetAdapter(unet, latent, 16, text_config["max_position_embeddings"], device, dtype, name)
        images = list(torch.randn(n_images, 4, latent, latent, generator=torch.Generator().manual_seed(0)))
    elif family is not None:
        path = family.build(tmp / name)
        adapter = load_model(path, device=device, dtype=dtype, **family.options)
        images = random_images
    else:
        raise ValueError(f"unknown model {name!r}; choose from digits, tiny-sd, {', '.join(LATENT_MODELS)}, "
                         f"{', '.join(FAMILIES)}")
    classes = list(classes or (DIGITS if name == "digits" else MVH_CLASSES))
    adapter.encode_classes(classes, PROMPT)
    pixels = torch.stack(images) if name in LATENT_MODELS else adapter.prepare_images(images)
    keys = np.array([image_key(p) for p in pixels], dtype=np.uint64)
    z0 = adapter.encode_images(pixels).contiguous()
    if family is None:
        return Case(name, adapter, z0, keys, labels)
    return Case(name, adapter, z0, keys, labels, pixels,
                family.plain(path, classes, PROMPT, adapter, device, baseline_dtype(device)))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_reset(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)


def _peak_mib(device: torch.device) -> float:
    """Peak device memory of the phase on CUDA; on CPU the process's peak resident size so far."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# Dense fp16/bf16 tensor-core peaks (TFLOP/s) from NVIDIA's datasheets, for the roofline line; by device name.
PEAK_TFLOPS = {"H200": 989.0, "H100": 989.0, "A100": 312.0, "L40S": 362.0, "A10G": 125.0, "L4": 121.0}


def flops_per_evaluation(case: Case, rows: tuple) -> float:
    """FLOPs of one plain evaluation (one class row, nothing shared), counted by torch.utils.flop_counter: a
    family's plain pipeline on one row (its image encoded first, uncounted), else the plain forward of one of
    genfast's batches `rows`, per row."""
    from torch.utils.flop_counter import FlopCounterMode

    if case.plain is None:
        evaluate, n_rows = partial(case.adapter.denoise_plain, *rows), max(int(rows[3].shape[0]), 1)
    else:
        plain, t = case.plain, torch.zeros(1, dtype=torch.int64)
        with torch.no_grad():
            latent = plain.encode(case.pixels[:1])
            evaluate, n_rows = partial(plain.errors, latent, plain.draw(0, int(case.keys[0]), t, latent), t, t), 1
    with FlopCounterMode(display=False) as counter, torch.no_grad():
        evaluate()
    return counter.get_total_flops() / n_rows


def peak_tflops(device: torch.device) -> float | None:
    """The device's dense fp16 peak when it is in PEAK_TFLOPS, else None (and always on a CPU)."""
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((peak for key, peak in PEAK_TFLOPS.items() if key in name), None)


TIMED_REGION = "throughput.genfast_timed"
"""The record_function range around genfast's timed work: the window the device's busy fraction is taken over."""
DEVICE_WORK = frozenset({"kernel", "gpu_memcpy", "gpu_memset"})
"""Kineto's activity types of work executing on the device (the work torch.cuda._annotate_cuda_graph_trace counts);
the device-side copies of record_function ranges ("gpu_user_annotation") and synchronisation records are not."""
BUSY_TARGET = 0.95  # issue 13: the device busy >= 95% of the run on the bundled model and tiny SD
BUSY_TARGET_MODELS = ("digits", "tiny-sd")
"""The rows the busy target is judged on (issue 13 sets it for the bundled model and tiny SD); elsewhere the
fraction is reported and the target is n/a."""
BUSY_TARGET_NA = "n/a (target set for digits and tiny-sd)"


def covered_length(intervals: Iterable[tuple[float, float]], window: tuple[float, float]) -> float:
    """The length of the union of the (start, end) `intervals` inside `window`: overlapping ones (kernels on
    concurrent streams) counted once, whatever lies outside the window left out."""
    low, high = window
    total, reach = 0.0, low
    for start, end in sorted(intervals):
        start, end = max(start, reach), min(end, high)
        if end > start:  # sorted by start, so whatever of [start, end] precedes `reach` is already counted
            total, reach = total + end - start, end
    return total


@dataclass(frozen=True)
class TraceEvent:
    """One event of a profiler trace as device_busy reads it: its name, Kineto activity type ("kernel",
    "gpu_memcpy", "user_annotation", "cpu_op", ...) and its start and end in microseconds."""

    name: str
    kind: str
    start: float
    end: float


def trace_events(prof: profile) -> list[TraceEvent]:
    """The events of a finished torch.profiler run, read straight from its Kineto results (about 2-4 us an event
    on the development CPU), not through prof.events(), which builds the FunctionEvent tree (parents, children,
    CPU children) device_busy does not need, at 50-320 us an event there: a GPU run of a few hundred batches traces
    hundreds of thousands of events."""
    raw = list(prof.profiler.kineto_results.events())
    host = {e.name() for e in raw if e.device_type() == torch.autograd.DeviceType.CPU}
    return [TraceEvent(e.name(), event_kind(e, host), e.start_ns() / 1e3, (e.start_ns() + e.duration_ns()) / 1e3)
            for e in raw]


def event_kind(event: Any, host_names: set[str]) -> str:
    """A Kineto event's activity type: its own where torch exposes it (`activity_type()`), else read from its
    device and name (older torch): on the host, a range named TIMED_REGION is the region's user_annotation, the
    rest cpu_op; on the device, one named as a host event is a range's gpu_user_annotation copy, Kineto's
    "Event Sync" / "Stream Sync" / "Context Sync" / "Stream Wait Event" records are cuda_sync, "Memcpy ..." and
    "Memset ..." are copies and sets, and the rest kernels."""
    kind = getattr(event, "activity_type", None)
    if kind is not None:
        return kind()
    name = event.name()
    if event.device_type() == torch.autograd.DeviceType.CPU:
        return "user_annotation" if name == TIMED_REGION else "cpu_op"
    if name in host_names:
        return "gpu_user_annotation"
    if "Sync" in name or "Wait" in name:
        return "cuda_sync"
    return "gpu_memcpy" if name.startswith("Memcpy") else "gpu_memset" if name.startswith("Memset") else "kernel"


@dataclass(frozen=True)
class DeviceBusy:
    """How busy the device was in a profiled run: `device_s` seconds of work (the union of its kernels, copies and
    sets) within the `window_s` seconds of the host's timed region, from `events` device-work events in it, on
    the first `images` images of the row (the profiled window)."""

    device_s: float
    window_s: float
    events: int
    images: int | None = None

    @property
    def fraction(self) -> float:
        return self.device_s / self.window_s


def device_busy(events: Iterable[TraceEvent], region: str = TIMED_REGION) -> DeviceBusy:
    """The device's busy time within the host-side range `region` of a torch.profiler trace (trace_events). The
    window is the range as the host recorded it, not the first to the last kernel, so host stalls before the
    first kernel and after the last count as idle."""
    events = list(events)
    ranges = [(e.start, e.end) for e in events if e.name == region and e.kind == "user_annotation"]
    if len(ranges) != 1:
        raise ValueError(f"expected one host-side {region!r} range in the trace, found {len(ranges)}")
    low, high = ranges[0]
    work = [(e.start, e.end) for e in events if e.kind in DEVICE_WORK]
    inside = sum(1 for start, end in work if end > low and start < high)
    return DeviceBusy(covered_length(work, (low, high)) / 1e6, (high - low) / 1e6, inside)


def busy_fields(busy: DeviceBusy | None, model: str, images: int | None = None) -> dict[str, Any]:
    """A speed row's busy columns: the fraction and its parts, the profiled window, the 95% target where it is
    set (BUSY_TARGET_MODELS; None elsewhere), and a note where there is no fraction (a CPU row: no device; a trace
    without device work: the profiler did not trace the device)."""
    target = BUSY_TARGET if model in BUSY_TARGET_MODELS else None
    fields = {"device_busy": None, "device_busy_s": None, "profiled_s": None, "profiled_images": None,
              "busy_target": target, "busy_target_met": None, "busy_note": "no device"}
    if busy is None:
        return fields
    fields.update(device_busy_s=busy.device_s, profiled_s=busy.window_s, profiled_images=busy.images)
    if busy.events == 0:
        return fields | {"busy_note": "the profiler recorded no device work (is CUPTI available?)"}
    window = "" if busy.images is None or busy.images == images else f", on the first {busy.images} of {images} images"
    return fields | {"device_busy": busy.fraction,
                     "busy_target_met": None if target is None else busy.fraction >= target,
                     "busy_note": f"genfast run once more, untimed, under torch.profiler{window}"}


def busy_text(row: dict[str, Any]) -> str:
    """A row's busy fraction against its target (n/a where none is set), or n/a and why there is no fraction."""
    if row["device_busy"] is None:
        return f"n/a ({row['busy_note']})"
    if row["busy_target"] is None:
        return f"{100 * row['device_busy']:.1f}% (target: {BUSY_TARGET_NA})"
    met = "met" if row["busy_target_met"] else "not met"
    return f"{100 * row['device_busy']:.1f}% (>= {100 * row['busy_target']:g}%: {met})"


def their_unet(adapter: UNetAdapter, dtype: torch.dtype) -> torch.nn.Module:
    """The adapter's UNet as Li et al.'s code holds it: a copy in `dtype` with diffusers' own attention
    processors (genfast's class-indexed ones removed), plus xformers on CUDA where it is installed (their
    get_sd_model calls enable_xformers_memory_efficient_attention)."""
    unet = copy.deepcopy(adapter.unet)
    if unet.dtype != dtype:
        unet = unet.to(dtype)
    unet.set_attn_processor({name: getattr(p, "original", p) for name, p in unet.attn_processors.items()})
    if unet.device.type == "cuda" and importlib.util.find_spec("xformers") is not None:
        unet.enable_xformers_memory_efficient_attention()
    return unet


def li_real_eval_error(unet, alphas_cumprod: torch.Tensor, latent: torch.Tensor, all_noise: torch.Tensor,
                       ts: list[int], noise_idxs: list[int], text_embeds: torch.Tensor, text_embed_idxs: list[int],
                       batch_size: int, dtype: str, loss: str) -> torch.Tensor:
    """Their eval_error, statement by statement (the tqdm progress bar left out): one error per (t, noise,
    prompt) entry, float32 on the CPU."""
    device = latent.device
    pred_errors = torch.zeros(len(ts), device="cpu")
    idx = 0
    with torch.inference_mode():
        for _ in range(len(ts) // batch_size + int(len(ts) % batch_size != 0)):
            batch_ts = torch.tensor(ts[idx: idx + batch_size])
            noise = all_noise[noise_idxs[idx: idx + batch_size]]
            noised_latent = latent * (alphas_cumprod[batch_ts] ** 0.5).view(-1, 1, 1, 1).to(device) + \
                noise * ((1 - alphas_cumprod[batch_ts]) ** 0.5).view(-1, 1, 1, 1).to(device)
            t_input = batch_ts.to(device).half() if dtype == "float16" else batch_ts.to(device)
            text_input = text_embeds[text_embed_idxs[idx: idx + batch_size]]
            noise_pred = unet(noised_latent, t_input, encoder_hidden_states=text_input).sample
            error = LI_LOSSES[loss](noise, noise_pred, reduction="none").mean(dim=(1, 2, 3))
            pred_errors[idx: idx + len(batch_ts)] = error.detach().cpu()
            idx += len(batch_ts)
    return pred_errors


def li_real_loop(unet, latent: torch.Tensor, text_embeds: torch.Tensor, alphas_cumprod: torch.Tensor,
                 n_samples: tuple[int, ...], to_keep: tuple[int, ...], *, batch_size: int = 32,
                 dtype: str = "float32", loss: str = "l2",
                 all_noise: torch.Tensor | None = None) -> tuple[int, dict[int, dict[str, torch.Tensor]]]:
    """Their eval_prob_adaptive with n_trials=1 (LI_UPSTREAM), statement by statement: (prediction, data) where
    data[class] holds the evaluated timesteps `t` and `pred_errors` in evaluation order (entry j used noise j).

    `latent` is [1, *latent] in the model dtype, `alphas_cumprod` float32 [T] on the CPU (their scheduler's);
    `all_noise` None draws their torch.randn([max(n_samples), *latent]) from torch's global generator, or pass
    the noise to use (as their --noise_path does; e.g. genfast.noise, to compare decisions with genfast).
    """
    T = alphas_cumprod.shape[0]
    max_n_samples = max(n_samples)
    if all_noise is None:
        all_noise = torch.randn((max_n_samples, *latent.shape[1:]), device=latent.device)
    if dtype == "float16":
        all_noise = all_noise.half()
        alphas_cumprod = alphas_cumprod.half()
    data: dict[int, dict[str, torch.Tensor]] = {}
    t_evaluated: set[int] = set()
    remaining_prmpt_idxs = list(range(len(text_embeds)))
    start = T // max_n_samples // 2
    t_to_eval = list(range(start, T, T // max_n_samples))[:max_n_samples]
    for n, n_to_keep in zip(n_samples, to_keep):
        ts, noise_idxs, text_embed_idxs = [], [], []
        curr_t_to_eval = t_to_eval[len(t_to_eval) // n // 2::len(t_to_eval) // n][:n]
        curr_t_to_eval = [t for t in curr_t_to_eval if t not in t_evaluated]
        for prompt_i in remaining_prmpt_idxs:
            for t_idx, t in enumerate(curr_t_to_eval, start=len(t_evaluated)):  # n_trials=1: extends of one
                ts.append(t)
                noise_idxs.append(t_idx)
                text_embed_idxs.append(prompt_i)
        t_evaluated.update(curr_t_to_eval)
        pred_errors = li_real_eval_error(unet, alphas_cumprod, latent, all_noise, ts, noise_idxs, text_embeds,
                                         text_embed_idxs, batch_size, dtype, loss)
        for prompt_i in remaining_prmpt_idxs:
            mask = torch.tensor(text_embed_idxs) == prompt_i
            prompt_ts = torch.tensor(ts)[mask]
            prompt_pred_errors = pred_errors[mask]
            if prompt_i not in data:
                data[prompt_i] = dict(t=prompt_ts, pred_errors=prompt_pred_errors)
            else:
                data[prompt_i]["t"] = torch.cat([data[prompt_i]["t"], prompt_ts])
                data[prompt_i]["pred_errors"] = torch.cat([data[prompt_i]["pred_errors"], prompt_pred_errors])
        errors = [-data[prompt_i]["pred_errors"].mean() for prompt_i in remaining_prmpt_idxs]
        best_idxs = torch.topk(torch.tensor(errors), k=n_to_keep, dim=0).indices.tolist()
        remaining_prmpt_idxs = [remaining_prmpt_idxs[i] for i in best_idxs]
    assert len(remaining_prmpt_idxs) == 1
    return remaining_prmpt_idxs[0], data


def run_li_real(case: Case, method: Li2023, seed: int, unet, batch_size: int = 32,
                genfast_noise: bool = False) -> tuple[list[int], int, float, list[dict]]:
    """li_real_loop over the images one at a time, as their main() does (latents already encoded):
    (predictions, evaluations, seconds, per-image data). Noise: their torch.randn after torch.manual_seed(seed)
    (their main seeds nothing), or with `genfast_noise` genfast's own noise for each image. Their scheduler's
    alphas_cumprod is the adapter's alpha**2 in float32; the prompt embeddings are the adapter's conditioning."""
    adapter = case.adapter
    n_samples, to_keep = method.schedule(len(adapter.class_names))
    dtype = "float16" if unet.dtype == torch.float16 else "float32"
    text_embeds = adapter.runner.conditioning.to(unet.dtype)
    alphas_cumprod = adapter.schedule.alpha.square().to(torch.float32)
    torch.manual_seed(seed)
    cudnn_benchmark, torch.backends.cudnn.benchmark = torch.backends.cudnn.benchmark, True  # as their main() sets
    predictions, evaluations, datas = [], 0, []
    try:
        _sync(adapter.device)
        start = time.perf_counter()
        for latent, key in zip(case.z0, case.keys):
            noise = genfast.noise(seed, int(key), range(max(n_samples)), latent.shape, device=latent.device) \
                if genfast_noise else None
            pred, data = li_real_loop(unet, latent[None].to(unet.dtype), text_embeds, alphas_cumprod, n_samples,
                                      to_keep, batch_size=batch_size, dtype=dtype, loss=method.loss, all_noise=noise)
            predictions.append(pred)
            evaluations += sum(len(d["t"]) for d in data.values())
            datas.append(data)
        _sync(adapter.device)
        elapsed = time.perf_counter() - start
    finally:
        torch.backends.cudnn.benchmark = cudnn_benchmark
    return predictions, evaluations, elapsed, datas


class PlainPipeline(ABC):
    """A model family's own pipeline as a researcher would classify with it: the baseline of a family row.

    Loaded from the folder by the pipeline class's from_pretrained in the baseline's device and dtype; the class
    prompts (or label ids) are encoded once by the pipeline's own code and gathered per row, and nothing else is
    shared between classes. `adapter` (genfast's, on the same folder) is read only for settings both sides share:
    its image size (and a scorer's number of levels). Subclasses score one batch of (sample, class) rows."""

    num_train_timesteps: int

    def __init__(self, classes: list[str], adapter: Adapter, device: torch.device, dtype: torch.dtype) -> None:
        self.n_classes, self.image_size = len(classes), adapter.image_size
        self.device, self.dtype = device, dtype

    def _pipeline(self, pipeline_class: Any, path: Path, **components: Any) -> Any:
        """The family's diffusers pipeline from `path` on the baseline's device and dtype (`components`: those
        left out)."""
        return pipeline_class.from_pretrained(path, dtype=self.dtype, **components).to(self.device, self.dtype)

    @abstractmethod
    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """One prepared image [1, 3, H, W] in [-1, 1] as the rows take it: its latent, pixels or VQ codes."""

    @abstractmethod
    def draw(self, seed: int, key: int, timesteps: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """The randomness of samples 0..len(timesteps)-1 of the image with `key` (noise, masks): one row each."""

    @abstractmethod
    def errors(self, latent: torch.Tensor, drawn: torch.Tensor, timesteps: torch.Tensor,
               classes: torch.Tensor) -> torch.Tensor:
        """The error of every row of one batch (its sample's randomness and timestep index, its class): [B]."""


class PlainDiffusion(PlainPipeline):
    """A denoising family: genfast.noise per sample (as Li et al.'s --noise_path feeds a tensor), each row noised by
    the pipeline's scheduler, the denoiser's epsilon, the mean squared error per row (their L2)."""

    vae: Any  # None: the model denoises the pixels

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """The VAE posterior mean, shifted and scaled as the pipeline decodes it; a pixel model's pixels."""
        if self.vae is None:
            return pixels.to(self.device, torch.float32)
        shift = getattr(self.vae.config, "shift_factor", None) or 0.0
        mean = self.vae.encode(pixels.to(self.device, self.vae.dtype)).latent_dist.mean
        return ((mean - shift) * self.vae.config.scaling_factor).float()

    def draw(self, seed: int, key: int, timesteps: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        return genfast.noise(seed, key, range(len(timesteps)), latent.shape[1:], device=self.device)

    def errors(self, latent: torch.Tensor, drawn: torch.Tensor, timesteps: torch.Tensor,
               classes: torch.Tensor) -> torch.Tensor:
        z_t = self.noised(latent, drawn, timesteps)
        return (self.epsilon(z_t, timesteps, classes) - drawn).square().mean(dim=tuple(range(1, drawn.ndim)))

    @abstractmethod
    def noised(self, latent: torch.Tensor, eps: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        """`latent` [1, ...] noised by the pipeline's scheduler at each row's timestep index: float32 [B, ...]."""

    @abstractmethod
    def epsilon(self, z_t: torch.Tensor, timesteps: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """The model's noise prediction for every row, float32 [B, ...]."""


class PlainDDPM(PlainDiffusion):
    """A variance-preserving family: rows noised by DDPMScheduler.add_noise on the pipeline scheduler's config (the
    training-time forward process, as diffusers' training scripts noise); the model takes the index itself."""

    def _schedule(self, config: Any) -> None:
        from diffusers import DDPMScheduler

        self.scheduler = DDPMScheduler.from_config(config)
        self.num_train_timesteps = int(self.scheduler.config.num_train_timesteps)

    def noised(self, latent: torch.Tensor, eps: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self.scheduler.add_noise(latent, eps, timesteps.to(self.device))


class PlainFlow(PlainDiffusion):
    """A flow-matching family: the scheduler's own table (set_timesteps at the unshifted levels (i + 1) / T of
    the indices i, with the pipeline's mu where it shifts by resolution; index T - 1 is on none of Li et al.'s
    grids below 1000 samples), rows noised by scale_noise, epsilon from the predicted velocity
    (z_t = (1 - sigma) z0 + sigma eps and v = eps - z0, so eps = z_t + (1 - sigma) v)."""

    def _schedule(self, config: Any, mu: float | None = None) -> None:
        from diffusers import FlowMatchEulerDiscreteScheduler

        self.scheduler = FlowMatchEulerDiscreteScheduler.from_config(config)
        steps = self.num_train_timesteps = int(config["num_train_timesteps"])
        self.scheduler.set_timesteps(sigmas=(torch.arange(steps, 0, -1) / steps).tolist(), mu=mu)
        self.timesteps, self.sigmas = self.scheduler.timesteps.flip(0), self.scheduler.sigmas[:-1].flip(0)

    def noised(self, latent: torch.Tensor, eps: torch.Tensor, timesteps: torch.Tensor) -> torch.Tensor:
        return self.scheduler.scale_noise(latent, self.timesteps[timesteps], eps)

    def epsilon(self, z_t: torch.Tensor, timesteps: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        sigma = self.sigmas[timesteps].to(self.device).view(-1, *[1] * (z_t.ndim - 1))
        return z_t + (1 - sigma) * self.velocity(z_t, self.timesteps[timesteps].to(self.device), classes)

    @abstractmethod
    def velocity(self, z_t: torch.Tensor, timestep: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        """The transformer's velocity for every row at the scheduler's `timestep`, float32 [B, ...]."""


class PlainSDXL(PlainDDPM):
    """StableDiffusionXLPipeline's own components: encode_prompt's hidden states and pooled embeddings, the
    size ids of _get_add_time_ids for the image size (crop (0, 0)), the UNet's noise prediction."""

    def __init__(self, path: Path, classes: list[str], prompt: str, adapter: Adapter, device: torch.device,
                 dtype: torch.dtype) -> None:
        from diffusers import StableDiffusionXLPipeline

        super().__init__(classes, adapter, device, dtype)
        pipe = self._pipeline(StableDiffusionXLPipeline, path)
        if pipe.vae.config.force_upcast:  # the SDXL VAE overflows in float16: its pipelines encode in float32
            pipe.vae.to(torch.float32)
        self.vae, self.unet = pipe.vae, pipe.unet
        self._schedule(pipe.scheduler.config)
        with torch.inference_mode():
            self.embeds, _, self.pooled, _ = pipe.encode_prompt([prompt.format(c) for c in classes], device=device,
                                                                do_classifier_free_guidance=False)
        size = (self.image_size, self.image_size)
        self.time_ids = pipe._get_add_time_ids(size, (0, 0), size, dtype=dtype, text_encoder_projection_dim=
                                               pipe.text_encoder_2.config.projection_dim).to(device)

    def epsilon(self, z_t: torch.Tensor, timesteps: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        added = {"text_embeds": self.pooled[classes], "time_ids": self.time_ids.expand(len(classes), -1)}
        return self.unet(z_t.to(self.dtype), timesteps.to(self.device), encoder_hidden_states=self.embeds[classes],
                         added_cond_kwargs=added).sample.float()


class PlainSD3(PlainFlow):
    """StableDiffusion3Pipeline's own components: encode_prompt's embeddings (T5 at its default
    max_sequence_length, 256) and pooled projections, the transformer at timestep = the scheduler's (1000 sigma)."""

    def __init__(self, path: Path, classes: list[str], prompt: str, adapter: Adapter, device: torch.device,
                 dtype: torch.dtype) -> None:
        from diffusers import StableDiffusion3Pipeline

        super().__init__(classes, adapter, device, dtype)
        pipe = self._pipeline(StableDiffusion3Pipeline, path)
        self.vae, self.transformer = pipe.vae, pipe.transformer
        self._schedule(pipe.scheduler.config)
        with torch.inference_mode():
            self.embeds, _, self.pooled, _ = pipe.encode_prompt([prompt.format(c) for c in classes], None, None,
                                                                device=device, do_classifier_free_guidance=False)

    def velocity(self, z_t: torch.Tensor, timestep: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        return self.transformer(hidden_states=z_t.to(self.dtype), timestep=timestep,
                                encoder_hidden_states=self.embeds[classes],
                                pooled_projections=self.pooled[classes]).sample.float()


class PlainFlux(PlainFlow):
    """FluxPipeline's own components: encode_prompt's embeddings (T5 at its default max_sequence_length, 512),
    pooled embeddings and text ids, the rows packed by _pack_latents at _prepare_latent_image_ids positions, the
    guidance input of __call__'s default 3.5 (a guidance-distilled model), timestep = the scheduler's / 1000, mu
    by the pipeline's calculate_shift of the packed token count."""

    def __init__(self, path: Path, classes: list[str], prompt: str, adapter: Adapter, device: torch.device,
                 dtype: torch.dtype) -> None:
        from diffusers import FluxPipeline
        from diffusers.pipelines.flux.pipeline_flux import calculate_shift

        super().__init__(classes, adapter, device, dtype)
        pipe = self.pipe = self._pipeline(FluxPipeline, path)
        self.vae, self.transformer = pipe.vae, pipe.transformer
        tokens, config = self.image_size // pipe.vae_scale_factor // 2, pipe.scheduler.config
        mu = calculate_shift(tokens**2, config.base_image_seq_len, config.max_image_seq_len, config.base_shift,
                             config.max_shift) if config.use_dynamic_shifting else None
        self._schedule(config, mu)
        self.img_ids = pipe._prepare_latent_image_ids(1, tokens, tokens, device, dtype)
        self.guidance = (torch.full([1], 3.5, device=device, dtype=torch.float32)
                         if pipe.transformer.config.guidance_embeds else None)
        with torch.inference_mode():
            self.embeds, self.pooled, self.text_ids = pipe.encode_prompt([prompt.format(c) for c in classes], None,
                                                                         device=device)

    def velocity(self, z_t: torch.Tensor, timestep: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        rows, channels, height, width = z_t.shape
        packed = self.pipe._pack_latents(z_t.to(self.dtype), rows, channels, height, width)
        out = self.transformer(hidden_states=packed, timestep=timestep / 1000,
                               guidance=None if self.guidance is None else self.guidance.expand(rows),
                               pooled_projections=self.pooled[classes], encoder_hidden_states=self.embeds[classes],
                               txt_ids=self.text_ids, img_ids=self.img_ids).sample
        return self.pipe._unpack_latents(out, self.image_size, self.image_size, self.pipe.vae_scale_factor).float()


class PlainDiT(PlainDDPM):
    """DiTPipeline's own components: get_label_ids of the class names, the transformer's noise prediction (its
    learned-sigma channels dropped)."""

    def __init__(self, path: Path, classes: list[str], prompt: str, adapter: Adapter, device: torch.device,
                 dtype: torch.dtype) -> None:
        from diffusers import DiTPipeline

        super().__init__(classes, adapter, device, dtype)
        pipe = self._pipeline(DiTPipeline, path)
        self.vae, self.transformer = pipe.vae, pipe.transformer
        self._schedule(pipe.scheduler.config)
        self.labels = torch.tensor(pipe.get_label_ids(classes), device=device)

    def epsilon(self, z_t: torch.Tensor, timesteps: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        out = self.transformer(z_t.to(self.dtype), timestep=timesteps.to(self.device),
                               class_labels=self.labels[classes]).sample
        return out[:, : z_t.shape[1]].float()


class PlainIF(PlainDDPM):
    """IFPipeline's own components (stage I, on the pixels): encode_prompt's T5 states (clean_caption off, as the
    genfast row runs), the UNet's noise prediction (the first 3 of its 6 output channels)."""

    def __init__(self, path: Path, classes: list[str], prompt: str, adapter: Adapter, device: torch.device,
                 dtype: torch.dtype) -> None:
        from diffusers import IFPipeline

        super().__init__(classes, adapter, device, dtype)
        pipe = self._pipeline(IFPipeline, path, safety_checker=None, feature_extractor=None, watermarker=None)
        self.vae, self.unet = None, pipe.unet
        self._schedule(pipe.scheduler.config)
        with torch.inference_mode():
            self.embeds, _ = pipe.encode_prompt([prompt.format(c) for c in classes], do_classifier_free_guidance=False,
                                                device=device, clean_caption=False)

    def epsilon(self, z_t: torch.Tensor, timesteps: torch.Tensor, classes: torch.Tensor) -> torch.Tensor:
        out = self.unet(z_t.to(self.dtype), timesteps.to(self.device), encoder_hidden_states=self.embeds[classes])
        return out.sample[:, : z_t.shape[1]].float()


class PlainAmused(PlainPipeline):
    """AmusedPipeline's own components: the image's VQ codes (once per image, as Li et al.'s loop encodes its
    latent), each sample's mask from genfast.token_masks at the scheduler's masking schedule, the transformer's
    masked forward with __call__'s conditioning (text_embeds, the penultimate hidden states, micro_conds of the
    image size, crop (0, 0), aesthetic score 6), the cross-entropy of the masked codes per row."""

    def __init__(self, path: Path, classes: list[str], prompt: str, adapter: Adapter, device: torch.device,
                 dtype: torch.dtype) -> None:
        from diffusers import AmusedPipeline

        super().__init__(classes, adapter, device, dtype)
        pipe = self._pipeline(AmusedPipeline, path)
        self.vqvae, self.transformer = pipe.vqvae.to(torch.float32), pipe.transformer  # codes: argmins, in fp32
        self.mask_token_id = pipe.scheduler.config.mask_token_id
        self.cosine = pipe.scheduler.config.masking_schedule == "cosine"
        self.num_train_timesteps = adapter.num_levels
        tokenizer = pipe.tokenizer
        with torch.inference_mode():
            ids = tokenizer([prompt.format(c) for c in classes], return_tensors="pt", padding="max_length",
                            truncation=True, max_length=tokenizer.model_max_length).input_ids.to(device)
            out = pipe.text_encoder(ids, return_dict=True, output_hidden_states=True)
        self.pooled, self.states = out.text_embeds, out.hidden_states[-2]
        self.micro_conds = torch.tensor([[self.image_size, self.image_size, 0, 0, 6]], device=device, dtype=dtype)

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """The VQ codes [1, n_tokens] of the image in [0, 1], as the pipeline's image processor feeds it."""
        x = (pixels.to(self.device, torch.float32) + 1) / 2
        return self.vqvae.quantize(self.vqvae.encode(x).latents)[2][2].reshape(1, -1)

    def draw(self, seed: int, key: int, timesteps: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """Each sample's mask at the masking ratio of its level s = (i + 0.5) / levels: cos(pi/2 (1 - s)) or s."""
        level = (timesteps.to(torch.float64) + 0.5) / self.num_train_timesteps
        ratios = torch.cos(math.pi / 2 * (1 - level)) if self.cosine else level
        return genfast.token_masks(seed, key, range(len(timesteps)), latent.shape[1], ratios, device=self.device)

    def errors(self, latent: torch.Tensor, drawn: torch.Tensor, timesteps: torch.Tensor,
               classes: torch.Tensor) -> torch.Tensor:
        rows, n = drawn.shape
        grid = math.isqrt(n)
        masked = torch.where(drawn, self.mask_token_id, latent).reshape(rows, grid, grid)
        logits = self.transformer(masked, micro_conds=self.micro_conds.expand(rows, -1),
                                  pooled_text_emb=self.pooled[classes], encoder_hidden_states=self.states[classes])
        log_p = torch.log_softmax(logits.reshape(rows, -1, n).float(), dim=1)
        nll = -log_p.gather(1, latent.expand(rows, -1).unsqueeze(1)).squeeze(1)
        return (nll * drawn).sum(dim=1) / drawn.sum(dim=1)


class PlainJanus(PlainPipeline):
    """JanusForConditionalGeneration, one plain teacher-forced forward per class as a per-class scoring function
    runs it: the image tokenised by the VQ model (for every class), the processor's image-generation ids of the
    chat-wrapped prompt, the codes embedded by prepare_embeddings_for_image_generation, the language model on the
    whole sequence (no cache), the mean NLL per image token from the generation head's log-softmax."""

    num_train_timesteps = 1

    def __init__(self, path: Path, classes: list[str], prompt: str, adapter: Adapter, device: torch.device,
                 dtype: torch.dtype) -> None:
        from transformers import JanusForConditionalGeneration, JanusProcessor

        super().__init__(classes, adapter, device, dtype)
        self.model = JanusForConditionalGeneration.from_pretrained(path, dtype=dtype).to(device).eval()
        self.model.model.vqmodel.to(torch.float32)  # codes: argmins, in fp32
        processor = JanusProcessor.from_pretrained(path)
        turns = [[{"role": "user", "content": [{"type": "text", "text": prompt.format(c)}]}] for c in classes]
        chats = [processor.apply_chat_template(turn, add_generation_prompt=True) for turn in turns]
        self.ids = [processor(text=chat, generation_mode="image")["input_ids"].to(device) for chat in chats]

    def encode(self, pixels: torch.Tensor) -> torch.Tensor:
        """The pixels: every class's forward tokenises the image itself."""
        return pixels.to(self.device, torch.float32)

    def draw(self, seed: int, key: int, timesteps: torch.Tensor, latent: torch.Tensor) -> torch.Tensor:
        """Nothing: the likelihood is exact."""
        return torch.empty(len(timesteps), 0)

    def errors(self, latent: torch.Tensor, drawn: torch.Tensor, timesteps: torch.Tensor,
               classes: torch.Tensor) -> torch.Tensor:
        return torch.stack([self.nll(latent, k) for k in classes.tolist()])

    def nll(self, pixels: torch.Tensor, k: int) -> torch.Tensor:
        """The mean NLL per image token of the image's codes under class k's prompt: one forward."""
        model = self.model
        codes = model.model.vqmodel.encode(pixels).image_tokens.reshape(1, -1)
        ids = self.ids[k]
        embeds = torch.cat([model.get_input_embeddings()(ids),
                            model.prepare_embeddings_for_image_generation(codes[:, :-1])], dim=1)
        hidden = model.model.language_model(inputs_embeds=embeds).last_hidden_state
        logits = model.model.generation_head(hidden[:, ids.shape[1] - 1 :]).float()
        return -torch.log_softmax(logits, dim=-1).gather(-1, codes.unsqueeze(-1)).mean()


@dataclass(frozen=True)
class Family:
    """One model family's benchmark row: its tiny random pipeline (genfast.testing), genfast's options for it and
    its plain baseline."""

    build: Callable[[Path], Path]
    plain: type[PlainPipeline]
    options: dict[str, Any] = field(default_factory=dict)


FAMILIES: dict[str, Family] = {
    "sdxl": Family(make_tiny_sdxl_pipeline, PlainSDXL),
    "sd3": Family(make_tiny_sd3_pipeline, PlainSD3),
    "flux": Family(make_tiny_flux_pipeline, PlainFlux, {"resolution": 16}),  # the pipeline's default is 1024
    "dit": Family(partial(make_tiny_dit_pipeline, id2label=dict(enumerate(MVH_CLASSES))), PlainDiT),
    "if": Family(make_tiny_if_pipeline, PlainIF, {"clean_caption": False}),  # cleaning needs bs4 and ftfy
    "amused": Family(make_tiny_amused_pipeline, PlainAmused),
    "janus": Family(make_tiny_janus_model, PlainJanus),
}
"""The family rows (--models), each on its tiny random pipeline with genfast's defaults but where noted."""

EXACT_ONCE = Li2023(n_samples=(1,), to_keep=(1,))
"""The work of a deterministic scorer's row: one exact score per class (genfast runs it as Exhaustive(n_samples=1))."""


def is_deterministic(adapter: Adapter) -> bool:
    """Whether the model is a scorer with one exact score per class (Li et al.'s schedule does not apply)."""
    return isinstance(adapter, Scorer) and adapter.deterministic


def exact_savings(adapter: Adapter) -> dict[str, Any]:
    """The adapter's exact class-sharing savings in effect (`on`, from its options) and those that do not apply,
    with their reasons (`off`, its disabled_reasons)."""
    options, off = adapter.describe().get("options", {}), dict(adapter.disabled_reasons)
    on = [name for name in ("share_prefix", "cache_class_kv") if options.get(name) is True and name not in off]
    return {"on": on, "off": off}


def plain_li_loop(plain: PlainPipeline, latent: torch.Tensor, key: int, seed: int, method: Li2023,
                  batch_size: int) -> tuple[int, dict[int, dict[str, torch.Tensor]]]:
    """Li et al.'s eval_prob_adaptive, in the order li_real_loop runs it, on a family's plain pipeline:
    (prediction, data), data[class] holding the evaluated timesteps `t` and `pred_errors` in evaluation order.

    Stage by stage, the (class, sample) rows of the classes still in, class by class, in batches of
    `batch_size`; after each stage the `to_keep` classes of lowest mean error stay (ties: the lower class index,
    as genfast ranks them). Sample j has the j-th timestep of method.stages and the randomness plain.draw gives
    it, the same for every class."""
    stages = method.stages(plain.num_train_timesteps, plain.n_classes)
    timesteps = torch.tensor([t for ts, _ in stages for t in ts])
    drawn = plain.draw(seed, key, timesteps, latent)
    errors: dict[int, list[torch.Tensor]] = {k: [] for k in range(plain.n_classes)}
    alive, done = list(range(plain.n_classes)), 0
    for ts, keep in stages:
        samples = torch.arange(done, done + len(ts)).repeat(len(alive))
        classes = torch.tensor(alive).repeat_interleave(len(ts))
        batches = zip(samples.split(batch_size), classes.split(batch_size))
        out = torch.cat([plain.errors(latent, drawn[js], timesteps[js], ks).float().cpu() for js, ks in batches])
        for k, part in zip(alive, out.split(len(ts))):
            errors[k].append(part)
        done += len(ts)
        means = [float(torch.cat(errors[k]).double().mean()) for k in alive]
        alive = [alive[i] for i in np.argsort(means, kind="stable")[:keep]]
    data = {k: {"t": timesteps[: sum(map(len, parts))], "pred_errors": torch.cat(parts)}
            for k, parts in errors.items()}
    return alive[0], data


def run_plain(case: Case, method: Li2023, seed: int, batch_size: int = 32) -> tuple[list[int], int, float, list[dict]]:
    """plain_li_loop over the images one at a time, each encoded by the plain pipeline first (timed, as genfast's
    encoding is on a family row): (predictions, evaluations, seconds, per-image data)."""
    predictions, evaluations, datas = [], 0, []
    _sync(case.adapter.device)
    start = time.perf_counter()
    with torch.inference_mode():
        for pixels, key in zip(case.pixels, case.keys):
            pred, data = plain_li_loop(case.plain, case.plain.encode(pixels[None]), int(key), seed, method, batch_size)
            predictions.append(pred)
            evaluations += sum(len(d["t"]) for d in data.values())
            datas.append(data)
    _sync(case.adapter.device)
    return predictions, evaluations, time.perf_counter() - start, datas


def run_genfast(case: Case, method: Method, seed: int, batch_size: int,
                denoise=None) -> tuple[list[int], int, float, list]:
    """The engine loop on all images at once (with `denoise`, a compiled denoiser on padded batches), from the
    prepared pixels on a family row; also returns genfast's denoiser (or scorer) calls for the floor."""
    adapter = case.adapter
    hook = "score" if isinstance(adapter, Scorer) else "denoise"
    calls, real = [], denoise or getattr(adapter, hook)

    def recording(*rows):
        # the float inputs by reference (fresh every batch); the plan's integer tensors copied, since on a CPU
        # they are views of the one block the loop reuses for every batch
        calls.append(tuple(r.clone() if isinstance(r, torch.Tensor) and not r.is_floating_point() else r
                           for r in rows))
        return real(*rows)

    predictions = [0] * len(case.keys)
    evaluations = 0

    def finished(i, result, seconds):
        nonlocal evaluations
        predictions[i] = int(result.prediction)
        evaluations += int(result.evaluations)

    if denoise is None:
        setattr(adapter, hook, recording)
    try:
        _sync(adapter.device)
        start = time.perf_counter()
        with record_function(TIMED_REGION):
            z0 = case.z0 if case.pixels is None else adapter.encode_images(case.pixels)
            score_images(adapter, method, z0, case.keys, seed=seed, batch_size=batch_size, on_finished=finished,
                         denoise=None if denoise is None else recording)
            _sync(adapter.device)
        elapsed = time.perf_counter() - start
    finally:
        if denoise is None:
            delattr(adapter, hook)
    return predictions, evaluations, elapsed, calls


PROFILE_IMAGES = 1
"""Images in the profiled window of a row not in BUSY_TARGET_MODELS (--profile-images): a Stable Diffusion
architecture's image is 1,525 evaluations (Li et al.'s 16-class schedule), some 24 batches of 64 rows, and each
plain UNet forward records about 18,000 host op events (counted on the meta device for sd15 and sd2) besides its
kernels and launches: one image traces some 5 x 10^5 events. The target rows, whose traces are small (the bundled
model: ~2,000 events a batch), profile all their images."""


def profile_images(name: str, n_images: int, requested: int | None) -> int:
    """The images of the row's profiled window: `requested` (--profile-images; 0: all), else all of a target
    row's (BUSY_TARGET_MODELS) and PROFILE_IMAGES of any other; never more than the row has."""
    if requested is None:
        requested = 0 if name in BUSY_TARGET_MODELS else PROFILE_IMAGES
    return n_images if requested <= 0 else min(requested, n_images)


def profiled_busy(case: Case, method: Method, seed: int, batch_size: int, denoise=None,
                  images: int | None = None) -> DeviceBusy:
    """genfast's run once more under torch.profiler (untimed: the profiler slows the host, so the timed runs go
    without it) on the first `images` images (None: all), and how busy the device was in its timed region."""
    window = case if images is None or images >= len(case.keys) else case.head(images)
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        run_genfast(window, method, seed, batch_size, denoise)
    return replace(device_busy(trace_events(prof)), images=len(window.keys))


def replay_floor(case: Case, calls: list, denoise=None) -> float:
    """The denoiser (`denoise`, or the adapter's; a scorer's score) alone on genfast's exact batches, back to back,
    after encoding the images where genfast's timed run does (a family row)."""
    adapter = case.adapter
    run = denoise or (adapter.score if isinstance(adapter, Scorer) else adapter.denoise)
    _sync(adapter.device)
    start = time.perf_counter()
    if case.pixels is not None:
        adapter.encode_images(case.pixels)
    with adapter.trusting_rows():  # the engine's rows, as the loop runs them
        for rows in calls:
            run(*rows)
    _sync(adapter.device)
    return time.perf_counter() - start


DEFAULT_IMAGES = {"digits": 8, "tiny-sd": 4, "sd15": 4, "sd2": 4}
"""Images per speed row on a GPU when --images does not say (a family row: 2); on a CPU a Stable Diffusion
architecture's row takes 1."""


def per_model(text: str) -> dict[str | None, int]:
    """--images and --repeats: "N" (every model), "model=N,..." (those models) or both ("2,sd2=1"); key None is
    every model."""
    counts: dict[str | None, int] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, count = item.rpartition("=")
        if not count.isdigit() or int(count) < 1:
            raise argparse.ArgumentTypeError(f"takes N or model=N with N >= 1, got {item!r}")
        counts[name or None] = int(count)
    return counts


def for_model(name: str, requested: dict[str | None, int] | None, default: int) -> int:
    """Model `name`'s count from a per_model option: its own, else every model's, else `default`."""
    requested = requested or {}
    return requested.get(name, requested.get(None, default))


def images_for(name: str, requested: dict[str | None, int] | None, device: torch.device) -> int:
    """The images of model `name`'s row: --images (`requested`) for it, else for every model, else the default
    (DEFAULT_IMAGES; a latent model's 1 on a CPU)."""
    default = 1 if name in LATENT_MODELS and device.type == "cpu" else DEFAULT_IMAGES.get(name, 2)
    return for_model(name, requested, default)


def speed(args, device: torch.device, tmp: Path, on_row: Callable[[list[dict]], None] | None = None) -> list[dict]:
    """The speed rows: the baseline (their real loop, or a family's plain loop) at each of its batch sizes,
    genfast and the floor, interleaved repeats; `on_row` sees the rows so far after each (to write them as they
    come)."""
    results = []
    base_dtype = baseline_dtype(device)
    for name in args.models:
        n_images = images_for(name, args.images, device)
        case = build_case(name, n_images, device, args.dtype or base_dtype, tmp)
        n_classes = len(case.adapter.class_names)
        method = Li2023(n_samples=tuple(args.li_samples), to_keep=tuple(args.li_keep)) if args.li_samples else Li2023()
        if name in LATENT_MODELS and device.type == "cpu" and not args.li_samples:
            method = Li2023(n_samples=(4, 16), to_keep=(4, 1))  # a CPU-sized schedule; equal work on both sides
        exact = is_deterministic(case.adapter)
        batch_size = args.batch_size or case.adapter.default_batch_size
        li_batch_sizes = args.li_batch_size or list(dict.fromkeys([32, batch_size]))
        if exact:  # one exact score per class; the baseline's plain forward takes one class at a time
            method, li_batch_sizes = EXACT_ONCE, [1]
        unet = their_unet(case.adapter, base_dtype) if case.plain is None else None
        baseline = run_plain if unet is None else partial(run_li_real, unet=unet)
        label = "plain" if unet is None else "li-real"
        described = LI_UPSTREAM if unet is not None else " ".join(type(case.plain).__doc__.split())
        schedule = ("one exact score per class (deterministic: Li et al.'s schedule does not apply)" if exact else
                    f"Li et al. {method.schedule(n_classes)}")
        savings = exact_savings(case.adapter)
        target = 1.5 if savings["on"] else 1.0
        print(f"\n== {name}: {n_images} images, {n_classes} classes, {schedule}, "
              f"{case.adapter.describe().get('options', {})}\nbaseline: {described}\nexact savings on: "
              f"{', '.join(savings['on']) or 'none'}; not applicable: {savings['off'] or 'none'}", flush=True)
        # warm-up: kernels, autotuning, allocator, and with --compile the compilation (timed apart)
        compiled = compiled_denoiser(case.adapter, args.compile)
        first = case.head(1)
        start = time.perf_counter()
        run_genfast(first, method, args.seed, batch_size, compiled)
        warm_s = time.perf_counter() - start
        if compiled is not None:
            print(f"compile={args.compile}: first batch (compilation) {warm_s:.1f} s", flush=True)
        for b in li_batch_sizes:
            baseline(first, method, args.seed, batch_size=b)
        # interleaved repeats, medians: this machine's timings drift between runs
        base_times: dict[int, list[float]] = {b: [] for b in li_batch_sizes}
        gen_times, floor_times, flops = [], [], None
        repeats = for_model(name, args.repeats, 3)
        for _ in range(repeats):
            _peak_reset(device)
            for b in li_batch_sizes:
                base_pred, base_evals, base_s, _ = baseline(case, method, args.seed, batch_size=b)
                base_times[b].append(base_s)
            base_peak = _peak_mib(device)
            _peak_reset(device)
            gen_pred, gen_evals, gen_s, calls = run_genfast(case, method, args.seed, batch_size, compiled)
            gen_peak = _peak_mib(device)
            floor_times.append(replay_floor(case, calls, compiled))
            gen_times.append(gen_s)
            if flops is None:  # the same batches every repeat
                flops = flops_per_evaluation(case, calls[0])
            del calls
        profiled = profile_images(name, n_images, args.profile_images)
        busy = (profiled_busy(case, method, args.seed, batch_size, compiled, profiled) if device.type == "cuda"
                else None)
        # decisions: the plain loop draws genfast's noise itself; their loop once more (untimed) on genfast's noise
        if unet is not None:
            base_pred = run_li_real(case, method, args.seed, unet, li_batch_sizes[0], genfast_noise=True)[0]
        gen_s, floor_s = float(np.median(gen_times)), float(np.median(floor_times))
        base_rows = [{"batch_size": b, "seconds": float(np.median(t)), "seconds_all": t,
                      "evals_per_s": base_evals / float(np.median(t)), "speedup": float(np.median(t)) / gen_s}
                     for b, t in base_times.items()]
        head = base_rows[0]
        row = {
            "model": name, "images": n_images, "classes": n_classes, "device": str(device),
            "dtype": str(case.adapter.dtype).removeprefix("torch."), "baseline": described, "baseline_label": label,
            "baseline_dtype": str(base_dtype).removeprefix("torch."),
            "schedule": [list(x) for x in method.schedule(n_classes)], "schedule_note": schedule,
            "batch_size": batch_size, "evaluations": gen_evals, "baseline_evaluations": base_evals,
            "baseline_batch_size": head["batch_size"],
            "baseline_s": head["seconds"], "genfast_s": gen_s, "floor_s": floor_s, "repeats": repeats,
            "baseline_s_all": head["seconds_all"], "genfast_s_all": gen_times, "floor_s_all": floor_times,
            "baseline_evals_per_s": head["evals_per_s"], "genfast_evals_per_s": gen_evals / gen_s,
            "baseline_images_per_s": n_images / head["seconds"], "genfast_images_per_s": n_images / gen_s,
            "speedup": head["speedup"], "baseline_runs": base_rows, "overhead_over_floor": gen_s / floor_s - 1,
            "baseline_peak_mib": base_peak, "genfast_peak_mib": gen_peak,
            "decisions_agree": float(np.mean(np.array(base_pred) == np.array(gen_pred))),
            "options": case.adapter.describe().get("options", {}), "exact_savings": savings,
            "target_speedup": target, "target_met": min(r["speedup"] for r in base_rows) >= target,
            "timed_from": "latents" if case.pixels is None else "pixels", "compile": args.compile,
            "warm_up_s": warm_s, "flops_per_evaluation": flops, "effective_tflops": flops * gen_evals / gen_s / 1e12,
            "peak_tflops": peak_tflops(device), **busy_fields(busy, name, n_images),
        }
        row["busy_text"] = busy_text(row)
        results.append(row)
        if on_row is not None:
            on_row(results)
        for r in base_rows:
            print(f"{label}@{r['batch_size']:<4d} {r['seconds']:8.2f} s  {r['evals_per_s']:9.1f} evals/s  "
                  f"(genfast x{r['speedup']:.2f})")
        mode = "" if args.compile == "off" else f" (compile={args.compile})"
        peak = row["peak_tflops"]
        print(f"roofline     {flops / 1e9:.3f} GFLOP per plain evaluation x {row['genfast_evals_per_s']:.1f} evals/s = "
              f"{row['effective_tflops']:.4f} effective TFLOP/s"
              + (f" = {100 * row['effective_tflops'] / peak:.1f}% of the device's {peak:g} TFLOP/s dense peak" if peak
                 else " (no peak known for this device)"), flush=True)
        decided = "their loop on genfast's noise" if unet is not None else "both on genfast's noise"
        print(f"genfast@{batch_size:<4d} {gen_s:8.2f} s  {row['genfast_evals_per_s']:9.1f} evals/s{mode}\n"
              f"floor        {floor_s:8.2f} s  overhead {100 * row['overhead_over_floor']:.1f}%  "
              f"decisions agree {100 * row['decisions_agree']:.0f}% ({decided})", flush=True)
        window = (f": device {row['device_busy_s']:.3f} s of the profiled run's {row['profiled_s']:.3f} s on "
                  f"{row['profiled_images']} of {n_images} images (timed unprofiled, all images: {gen_s:.3f} s)"
                  if row["device_busy"] is not None else "")
        print(f"busy         {busy_text(row)}{window}", flush=True)
        del case, unet, baseline
    print("\n| model | baseline | device | dtype | images | evals | baseline evals/s (batch) | "
          "genfast evals/s (batch) | genfast / baseline | overhead vs floor | peak MiB (base / genfast) | "
          "same decisions | exact savings (not applicable) | target | device busy |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        base = ", ".join(f"{x['evals_per_s']:.1f} ({x['batch_size']})" for x in r["baseline_runs"])
        ratio = ", ".join(f"{x['speedup']:.2f}x" for x in r["baseline_runs"])
        savings = (f"{', '.join(r['exact_savings']['on']) or 'none'}"
                   f" ({', '.join(r['exact_savings']['off']) or 'none'})")
        target = f">= {r['target_speedup']:g}x: {'met' if r['target_met'] else 'not met'}"
        print(f"| {r['model']} | {r['baseline_label']} | {r['device']} | {r['dtype']} | {r['images']} | "
              f"{r['evaluations']} | {base} | {r['genfast_evals_per_s']:.1f} ({r['batch_size']}) | {ratio} | "
              f"{100 * r['overhead_over_floor']:.1f}% | {r['baseline_peak_mib']:.0f} / {r['genfast_peak_mib']:.0f} | "
              f"{100 * r['decisions_agree']:.0f}% | {savings} | {target} | {busy_text(r)} |")
    return results


ACCURACY_METHODS: list[tuple[str, Method]] = [
    ("li2023 50,500/5,1", Li2023(n_samples=(50, 500), to_keep=(5, 1))),
    *[(f"exhaustive n={n}", Exhaustive(n_samples=n)) for n in (25, 50)],
    ("clark-jaini2023", ClarkJaini2023()),
    ("genfast (default)", GenFast()),
    *[(f"genfast p={p:g}", GenFast(p_value=p)) for p in (1e-2, 1e-4)],
    ("genfast uniform weight", GenFast(weighting="uniform")),
    ("genfast antithetic", GenFast(antithetic=True)),
]


def accuracy(args, device: torch.device) -> list[dict]:
    x, y = load_split("test")
    n_images = (args.images or {}).get("digits", (args.images or {}).get(None))  # default: the whole split
    if n_images:
        x, y = x[:n_images], y[:n_images]
    results = []
    for label, method in ACCURACY_METHODS:
        clf = Classifier("digits", DIGITS, method=method, seed=args.seed, device=device, batch_size=args.batch_size)
        start = time.perf_counter()
        preds = clf.classify(list(x), progress=True)
        elapsed = time.perf_counter() - start
        acc = float(np.mean([p.index for p in preds] == y))
        evals = float(np.mean([p.evaluations for p in preds]))
        results.append({"method": label, "accuracy": acc, "evaluations_per_image": evals, "seconds": elapsed,
                        "images": len(y)})
        print(f"{label:28s} accuracy {100 * acc:6.2f}%  {evals:8.1f} evals/image  {elapsed:7.1f} s", flush=True)
    li = results[0]
    print(f"\nLi et al. reach {100 * li['accuracy']:.2f}% with {li['evaluations_per_image']:.0f} evaluations per image.")
    print("| method | accuracy | evals/image | fewer evals than Li et al. | reaches Li's accuracy |")
    print("|---|---|---|---|---|")
    for r in results:
        r["reduction_vs_li"] = li["evaluations_per_image"] / r["evaluations_per_image"]
        r["reaches_li_accuracy"] = r["accuracy"] >= li["accuracy"]
        print(f"| {r['method']} | {100 * r['accuracy']:.2f}% | {r['evaluations_per_image']:.1f} | "
              f"{r['reduction_vs_li']:.1f}x | {'yes' if r['reaches_li_accuracy'] else 'no'} |")
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", choices=("speed", "accuracy"), default="speed")
    parser.add_argument("--models", type=lambda s: s.split(","), default=None,
                        help="comma-separated: digits, tiny-sd, sd15, sd2 (the SD 1.5 and SD 2-base architectures with "
                             "random weights) and the families sdxl, sd3, flux, dit, if, amused, janus (default: "
                             "digits,tiny-sd, plus sd15,sd2 on a GPU)")
    parser.add_argument("--images", type=per_model, default=None,
                        help="images per model: N, or model=N,... (default: digits 8, tiny-sd 4, sd15 and sd2 4 on "
                             "a GPU and 1 on a CPU, a family 2)")
    parser.add_argument("--profile-images", type=int, default=None,
                        help="images of the profiled run that measures the device's busy fraction on CUDA (0: all; "
                             f"default: all for {', '.join(BUSY_TARGET_MODELS)}, {PROFILE_IMAGES} for other models)")
    parser.add_argument("--device", default=None,
                        help="cuda or cpu (default: cuda when available); on cuda each speed row also reports the "
                             "fraction of genfast's timed run the device was busy, from torch.profiler (target "
                             ">= 95%% on digits and tiny-sd)")
    parser.add_argument("--dtype", default=None, choices=("float32", "float16", "bfloat16"),
                        help="genfast's dtype (default: the adapter's; their loop runs fp16 on GPU, fp32 on CPU)")
    parser.add_argument("--batch-size", type=int, default=None, help="genfast's rows per denoiser call")
    parser.add_argument("--li-samples", type=int, nargs="+", default=None, help="override Li et al.'s n_samples")
    parser.add_argument("--li-keep", type=int, nargs="+", default=None, help="override Li et al.'s to_keep")
    parser.add_argument("--li-batch-size", type=int, nargs="+", default=None,
                        help="batch sizes to run the baseline at (their --batch_size); the first gives the headline "
                             "ratio (default: their 32, then genfast's batch size; a deterministic scorer's "
                             "baseline runs one class per forward)")
    parser.add_argument("--compile", choices=COMPILE_MODES, default="off",
                        help="genfast's compile= (default: off); the first batch, which compiles, is timed apart")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=per_model, default=None,
                        help="timed repeats per side, N or model=N,... (default 3); medians are reported")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's)")
    parser.add_argument("--json", type=Path, default=None, help="write the results as JSON here")
    args = parser.parse_args(argv)
    if (args.li_samples is None) != (args.li_keep is None):
        parser.error("--li-samples and --li-keep go together")
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    args.dtype = getattr(torch, args.dtype) if args.dtype else None
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.models is None:
        args.models = ["digits", "tiny-sd"] + (["sd15", "sd2"] if device.type == "cuda" else [])
    for option in ("images", "repeats"):  # a misspelt model would silently take the default
        unknown = sorted(set(getattr(args, option) or {}) - {None} - set(args.models))
        if unknown:
            parser.error(f"--{option} names {', '.join(unknown)}, not among --models {','.join(args.models)}")
    meta = {"date": date.today().isoformat(), "command": " ".join(sys.argv if argv is None else ["throughput.py",
                                                                                                  *argv]),
            "device": str(device), "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else
            platform.processor() or platform.machine(), "cpu_threads": torch.get_num_threads(),
            "torch": torch.__version__, "genfast": genfast.__version__}

    def write(rows: list[dict], complete: bool) -> None:
        """The JSON so far: after every speed row (complete false), so a run cut short keeps its rows."""
        if args.json:
            args.json.write_text(json.dumps({"meta": meta, "mode": args.mode, "complete": complete, "results": rows},
                                            indent=2))

    with tempfile.TemporaryDirectory() as tmp:
        rows = (speed(args, device, Path(tmp), partial(write, complete=False)) if args.mode == "speed" else
                accuracy(args, device))
    write(rows, complete=True)
    if args.json:
        print(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
