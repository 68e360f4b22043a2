#!/usr/bin/env python
"""Train genfast's bundled models: tiny class-conditioned diffusers UNets on sklearn's 8x8 digits or on glyphs.

The models let genfast run for real on a CPU with no download. Each is a ``UNet2DConditionModel`` whose first
down block has cross-attention on a learned per-class "prompt" embedding ``[K, L, D]``, so it exercises the code
paths of Stable Diffusion (prefix sharing, cached class keys/values), in pixel space (an image in [0, 1] is
used as ``z0 = 2 x - 1``), trained for epsilon prediction with a DDPM schedule. ``--dataset`` picks the data
(genfast.models.digits_data: 10 digits, 8x8; genfast.models.glyphs_data: 62 characters, 16x16) and the defaults.

Digits (the bundled weights):    python scripts/train_digits.py --out src/genfast/data/digits
Glyphs (the bundled weights):    python scripts/train_digits.py --dataset glyphs --out src/genfast/data/glyphs
Quick smoke run:                 python scripts/train_digits.py --out /tmp/digits --steps 5 --val-images 0

The script writes the bundle (genfast_model.json, unet/, scheduler/, class_embeddings.safetensors) and a
MODEL_CARD.md with the measured validation accuracy, cost of a forward pass and training time (and, with
``--li2023-images``, the held-out accuracy of genfast's li2023 method on the saved bundle).
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import shlex
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import diffusers
import numpy as np
import torch
import torch.nn.functional as F
from diffusers import DDPMScheduler, UNet2DConditionModel
from safetensors.torch import save_file
from torch.utils.flop_counter import FlopCounterMode

from genfast.models import digits_data, glyphs_data

BUNDLE_FORMAT = "genfast-class-embedding-unet"
BUNDLE_VERSION = 1
NUM_TRAIN_TIMESTEPS = 1000
SCHEDULES = {
    # name: (beta_schedule, beta_start, beta_end) of diffusers' DDPMScheduler
    "linear": ("linear", 1e-4, 0.02),
    "scaled_linear": ("scaled_linear", 0.00085, 0.012),
}


@dataclass(frozen=True)
class TrainConfig:
    """Everything that determines the trained weights (with the data split of the dataset's module)."""

    steps: int = 3000
    batch_size: int = 128
    lr: float = 2e-3
    warmup_steps: int = 200
    ema_decay: float = 0.999
    channels: tuple[int, ...] = (16,)
    mid_block: bool = False
    embed_len: int = 4
    embed_dim: int = 32
    head_dim: int = 8
    schedule: str = "linear"
    shift_prob: float = 0.5
    seed: int = 0
    dataset: str = "digits"
    attention_levels: int = 1  # the first (highest-resolution) levels whose down and up blocks cross-attend
    last_up_attention: bool = True  # False: the full-resolution up block has no attention (see build_unet)


@dataclass(frozen=True)
class Dataset:
    """A dataset a bundled model is trained on: its split loader, the model's defaults and its card's own text."""

    name: str
    class_names: list[str]
    image_size: int
    load_split: Callable[[str], tuple[np.ndarray, np.ndarray]]
    defaults: TrainConfig
    val_images: int | None  # test images the simple validation uses by default (None: all)
    val_timesteps: int
    li2023_images: int  # test images classified by genfast's li2023 by default (0: not measured)
    card: dict[str, str] = field(repr=False)  # intro, data, row, choices, limitations


def block_types(cfg: TrainConfig) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(down_block_types, up_block_types): cross-attention in the first ``attention_levels`` levels."""
    n = len(cfg.channels)
    if not 1 <= cfg.attention_levels <= n:
        raise ValueError(f"attention_levels must be in [1, {n}] (the number of levels), got {cfg.attention_levels}")
    attend = [level < cfg.attention_levels for level in range(n)]
    down = tuple("CrossAttnDownBlock2D" if a else "DownBlock2D" for a in attend)
    up_attend = attend[:]
    up_attend[0] = up_attend[0] and cfg.last_up_attention
    up = tuple("CrossAttnUpBlock2D" if a else "UpBlock2D" for a in reversed(up_attend))
    return down, up


def build_unet(cfg: TrainConfig) -> UNet2DConditionModel:
    """Return a fresh UNet for the dataset's image size, 1 pixel channel, cross-attention in the first block.

    Without ``last_up_attention`` the only full-resolution self-attention is the first down block's, which
    genfast's prefix sharing runs once per sample instead of once per class.
    """
    down, up = block_types(cfg)
    return UNet2DConditionModel(
        sample_size=DATASETS[cfg.dataset].image_size,
        in_channels=1,
        out_channels=1,
        down_block_types=down,
        up_block_types=up,
        mid_block_type="UNetMidBlock2DCrossAttn" if cfg.mid_block else None,
        block_out_channels=cfg.channels,
        layers_per_block=1,
        norm_num_groups=8,
        cross_attention_dim=cfg.embed_dim,
        attention_head_dim=cfg.head_dim,
    )


def build_scheduler(schedule: str) -> DDPMScheduler:
    """Return the DDPM training schedule named ``schedule`` (a key of SCHEDULES), T = 1000, epsilon target."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {sorted(SCHEDULES)}, got {schedule!r}")
    kind, start, end = SCHEDULES[schedule]
    return DDPMScheduler(
        num_train_timesteps=NUM_TRAIN_TIMESTEPS,
        beta_schedule=kind,
        beta_start=start,
        beta_end=end,
        prediction_type="epsilon",
        clip_sample=False,
    )


def to_z0(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Map square images ``[N, S, S]`` in [0, 1] to the model's ``z0 [N, 1, S, S]`` in [-1, 1] (the adapter's
    convention)."""
    x = torch.as_tensor(images, dtype=torch.float32)
    if x.ndim != 3 or x.shape[1] != x.shape[2]:
        raise ValueError(f"images must have shape [N, S, S], got {tuple(x.shape)}")
    return (x * 2 - 1).unsqueeze(1)


def random_shift(z0: torch.Tensor, prob: float, gen: torch.Generator) -> torch.Tensor:
    """Shift each image by -1, 0 or +1 pixel in x and y (with probability ``prob``), filling with background."""
    n, size = z0.shape[0], z0.shape[-1]
    padded = F.pad(z0, (1, 1, 1, 1), value=-1.0)
    offsets = torch.randint(0, 3, (n, 2), generator=gen)
    offsets[torch.rand(n, generator=gen) >= prob] = 1  # offset 1 = no shift
    ar = torch.arange(size)
    rows = (offsets[:, 0:1] + ar)[:, :, None]
    cols = (offsets[:, 1:2] + ar)[:, None, :]
    return padded[torch.arange(n)[:, None, None], 0, rows, cols].unsqueeze(1)


def noised(z0: torch.Tensor, eps: torch.Tensor, t: torch.Tensor, alphas_cumprod: torch.Tensor) -> torch.Tensor:
    """Variance-preserving noising ``z_t = sqrt(abar_t) z0 + sqrt(1 - abar_t) eps`` per row."""
    abar = alphas_cumprod[t].view(-1, 1, 1, 1)
    return abar.sqrt() * z0 + (1 - abar).sqrt() * eps


@torch.no_grad()
def class_errors(
    unet: UNet2DConditionModel,
    embeddings: torch.Tensor,
    z0: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    timesteps: torch.Tensor,
    seed: int,
    rows_per_batch: int = 520,
) -> torch.Tensor:
    """VALIDATION: mean epsilon-MSE of every class for every image, float32 ``[N, K]``.

    Every image gets one noise draw per timestep in ``timesteps``, shared by all K classes (paired samples).
    """
    k = embeddings.shape[0]
    n, g = z0.shape[0], timesteps.numel()
    gen = torch.Generator().manual_seed(seed)
    eps = torch.randn((n, g) + tuple(z0.shape[1:]), generator=gen)
    image_idx = torch.arange(n).repeat_interleave(g)
    time_idx = torch.arange(g).repeat(n)
    pairs_per_batch = max(1, rows_per_batch // k)
    errors = torch.zeros(n, k)
    for start in range(0, n * g, pairs_per_batch):
        img = image_idx[start : start + pairs_per_batch]
        tj = time_idx[start : start + pairs_per_batch]
        t = timesteps[tj]
        e = eps[img, tj]
        z_t = noised(z0[img], e, t, alphas_cumprod)
        p = img.numel()
        pred = unet(
            z_t.repeat_interleave(k, dim=0),
            t.repeat_interleave(k),
            encoder_hidden_states=embeddings.repeat(p, 1, 1),
        ).sample
        mse = (pred - e.repeat_interleave(k, dim=0)).pow(2).flatten(1).mean(1).view(p, k)
        errors.index_add_(0, img, mse)
    return errors / g


def validation_timesteps(count: int) -> torch.Tensor:
    """VALIDATION: the evenly spaced timestep grid ``range(T // count // 2, T, T // count)`` (Li et al.'s grid)."""
    if not 1 <= count <= NUM_TRAIN_TIMESTEPS:
        raise ValueError(f"validation timestep count must be in [1, {NUM_TRAIN_TIMESTEPS}], got {count}")
    stride = NUM_TRAIN_TIMESTEPS // count
    return torch.arange(stride // 2, NUM_TRAIN_TIMESTEPS, stride)[:count]


def validation_accuracy(
    unet: UNet2DConditionModel,
    embeddings: torch.Tensor,
    alphas_cumprod: torch.Tensor,
    num_images: int | None,
    num_timesteps: int,
    seed: int = 1234,
    dataset: str = "digits",
) -> float:
    """VALIDATION: test-split accuracy of argmin over classes of the mean epsilon-MSE (``num_images`` None = all)."""
    images, labels = DATASETS[dataset].load_split("test")
    if num_images is not None:
        images, labels = images[:num_images], labels[:num_images]
    errors = class_errors(unet, embeddings, to_z0(images), alphas_cumprod, validation_timesteps(num_timesteps), seed)
    return float((errors.argmin(1).numpy() == labels).mean())


def li2023_accuracy(folder: Path, data: Dataset, num_images: int) -> dict:
    """Test-split accuracy of genfast's li2023 method (Li et al.'s schedule for the class count) on the first
    ``num_images`` test images, classified through ``genfast.Classifier`` on the saved bundle on the CPU."""
    from genfast import Classifier
    from genfast.engine.methods import Li2023

    images, labels = data.load_split("test")
    images, labels = images[:num_images], labels[:num_images]
    classifier = Classifier(str(folder), data.class_names, method="li2023", device="cpu")
    start = time.perf_counter()
    predictions = classifier.classify(list(images))
    seconds = time.perf_counter() - start
    predicted = np.array([p.index for p in predictions])
    wrong = predicted != labels
    accuracy = float(1 - wrong.mean())
    n_samples, to_keep = Li2023().schedule(len(data.class_names))
    return dict(
        accuracy=accuracy,
        stderr=math.sqrt(accuracy * (1 - accuracy) / len(labels)),
        images=len(labels),
        evaluations=float(np.mean([p.evaluations for p in predictions])),
        seconds=seconds,
        n_samples=n_samples,
        to_keep=to_keep,
        confusions=Counter(
            (data.class_names[t], data.class_names[p]) for t, p in zip(labels[wrong], predicted[wrong])
        ).most_common(10),
    )


def forward_cost(unet: UNet2DConditionModel, embeddings: torch.Tensor, batch: int = 512) -> tuple[float, float]:
    """Return (FLOPs of one forward per image as counted by torch's FlopCounterMode, seconds of a ``batch`` forward)."""
    gen = torch.Generator().manual_seed(0)
    size = unet.config.sample_size
    z = torch.randn(batch, 1, size, size, generator=gen)
    t = torch.randint(0, NUM_TRAIN_TIMESTEPS, (batch,), generator=gen)
    c = embeddings[torch.randint(0, embeddings.shape[0], (batch,), generator=gen)]
    with torch.no_grad():
        with FlopCounterMode(display=False) as counter:
            unet(z[:1], t[:1], encoder_hidden_states=c[:1])
        unet(z, t, encoder_hidden_states=c)  # warm-up
        times = []
        for _ in range(5):
            start = time.perf_counter()
            unet(z, t, encoder_hidden_states=c)
            times.append(time.perf_counter() - start)
    return float(counter.get_total_flops()), float(np.median(times))


def lr_factor(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to zero."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    progress = (step - cfg.warmup_steps) / max(1, cfg.steps - cfg.warmup_steps)
    return 0.5 * (1 + math.cos(math.pi * progress))


def train(cfg: TrainConfig, log_every: int = 500) -> tuple[UNet2DConditionModel, torch.Tensor, DDPMScheduler]:
    """Train the UNet and class embeddings jointly on the dataset's train split; return the EMA weights and the
    schedule."""
    torch.manual_seed(cfg.seed)
    np.random.seed(cfg.seed)
    gen = torch.Generator().manual_seed(cfg.seed)
    scheduler = build_scheduler(cfg.schedule)
    alphas_cumprod = scheduler.alphas_cumprod.float()
    unet = build_unet(cfg)
    data = DATASETS[cfg.dataset]
    embeddings = torch.nn.Parameter(torch.randn(len(data.class_names), cfg.embed_len, cfg.embed_dim, generator=gen))
    ema_unet = copy.deepcopy(unet).requires_grad_(False)
    ema_embeddings = embeddings.detach().clone()
    params = list(unet.parameters()) + [embeddings]
    ema_params = list(ema_unet.parameters()) + [ema_embeddings]
    optimizer = torch.optim.AdamW(params, lr=cfg.lr, weight_decay=0.0)
    lr_schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, cfg))

    images, labels = data.load_split("train")
    z0_all, labels_all = to_z0(images), torch.from_numpy(labels)
    n = z0_all.shape[0]
    order, cursor = torch.randperm(n, generator=gen), 0
    start, running = time.perf_counter(), 0.0
    unet.train()
    for step in range(cfg.steps):
        if cursor + cfg.batch_size > n:
            order, cursor = torch.randperm(n, generator=gen), 0
        idx = order[cursor : cursor + cfg.batch_size]
        cursor += cfg.batch_size
        z0 = random_shift(z0_all[idx], cfg.shift_prob, gen)
        eps = torch.randn(z0.shape, generator=gen)
        t = torch.randint(0, NUM_TRAIN_TIMESTEPS, (z0.shape[0],), generator=gen)
        pred = unet(noised(z0, eps, t, alphas_cumprod), t, encoder_hidden_states=embeddings[labels_all[idx]]).sample
        loss = F.mse_loss(pred, eps)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_schedule.step()
        with torch.no_grad():
            decay = min(cfg.ema_decay, (step + 1) / (step + 10))
            torch._foreach_lerp_(ema_params, [p.detach() for p in params], 1 - decay)
        running += loss.item()
        if log_every and (step + 1) % log_every == 0:
            print(
                f"step {step + 1}/{cfg.steps}  loss {running / log_every:.4f}  "
                f"{time.perf_counter() - start:.0f}s",
                flush=True,
            )
            running = 0.0
    ema_unet.eval()
    return ema_unet, ema_embeddings, scheduler


def save_bundle(
    out: Path, unet: UNet2DConditionModel, embeddings: torch.Tensor, scheduler: DDPMScheduler, data: Dataset
) -> None:
    """Write the genfast class-embedding UNet bundle into ``out`` (the layout ClassEmbeddingUNetAdapter loads)."""
    out.mkdir(parents=True, exist_ok=True)
    meta = {
        "format": BUNDLE_FORMAT,
        "version": BUNDLE_VERSION,
        "class_names": data.class_names,
        "image_channels": 1,
        "image_size": data.image_size,
        "prediction_type": "epsilon",
    }
    (out / "genfast_model.json").write_text(json.dumps(meta, indent=2) + "\n")
    unet.save_pretrained(out / "unet")
    scheduler.save_pretrained(out / "scheduler")
    save_file({"embeddings": embeddings.detach().float().contiguous()}, str(out / "class_embeddings.safetensors"))


MODEL_CARD = """\
# genfast bundled {name} model

{intro}

## Data
{data}

## Model
- diffusers `UNet2DConditionModel`, 1 input/output channel, {size}x{size}, block_out_channels {channels},
  down blocks {down}, up blocks {up}, mid block {mid}, layers_per_block 1,
  norm_num_groups 8, attention_head_dim {head_dim}, cross_attention_dim {embed_dim}; {params:,} parameters.
  The first down block has cross-attention, so everything before it is shared by all classes.
- Class conditioning: a learned table `embeddings [{n_classes}, {embed_len}, {embed_dim}]`
  (`class_embeddings.safetensors`), trained jointly with the UNet; row k is the "encoded prompt" of {row}.
- Objective: epsilon prediction (MSE), t uniform in [0, 1000).
- Schedule: DDPM, T = 1000, `{schedule}` betas {beta_start:g}..{beta_end:g} (`scheduler/scheduler_config.json`).
- Cost of one forward: {mflops:.2f} MFLOP per image (torch FlopCounterMode: matmuls, convolutions, attention);
  a batch of 512 takes {forward_ms:.0f} ms on this machine's CPU with {threads} thread(s).

## Training
Command: `{command}`
Settings: {steps} steps of batch {batch_size}, AdamW lr {lr:g} (warm-up {warmup_steps} steps, cosine decay),
EMA decay {ema_decay:g} (the EMA weights are saved), random 1-pixel shifts with probability {shift_prob:g}, seed {seed}.
Wall time: {train_minutes:.1f} min on {threads} CPU thread(s) (torch {torch_version}, diffusers {diffusers_version}).

## Validation accuracy
{validation}
{li2023}
## How the defaults were chosen
{choices}

## Probability temperature
`Prediction.probabilities` uses `"temperature"` in genfast_model.json where it is set, fitted after training by
likelihood on the tune split under the default method, clean and distorted (`python benchmarks/efficiency.py
--section calibration --model {name}`; retraining does not write it). Without it genfast uses its package default,
which was fitted the same way on the digits model.

## Limitations
{limitations}
"""

LI2023_SECTION = """
## Accuracy under Li et al.'s schedule
**{accuracy:.2%}** (standard error {stderr:.1%}) on the first {images} test images with genfast's `li2023` method
(`genfast.Classifier("{name}", CLASS_NAMES, method="li2023", device="cpu")`, seed 0): Li et al.'s setting for
{n_classes} classes, n_samples {n_samples} / to_keep {to_keep}, {evaluations:.0f} denoiser evaluations per image
(mean), {seconds_per_image:.1f} s per image on {threads} CPU thread(s). Most frequent confusions (true -> predicted,
count): {confusions}.
"""


def write_model_card(out: Path, cfg: TrainConfig, facts: dict) -> None:
    """Write MODEL_CARD.md describing data, split, architecture, command, time and measured accuracy."""
    data = DATASETS[cfg.dataset]
    kind, start, end = SCHEDULES[cfg.schedule]
    down, up = block_types(cfg)
    text = MODEL_CARD.format(
        name=data.name,
        size=data.image_size,
        n_classes=len(data.class_names),
        channels=list(cfg.channels),
        down=list(down),
        up=list(up),
        mid="UNetMidBlock2DCrossAttn" if cfg.mid_block else "none",
        beta_start=start,
        beta_end=end,
        **data.card,
        **{k: v for k, v in vars(cfg).items() if k not in ("channels", "mid_block")},
        **facts,
    )
    (out / "MODEL_CARD.md").write_text(text)


DIGITS_CARD = dict(
    intro="""\
A tiny class-conditioned diffusion model that lets genfast classify for real on a CPU, with no download.
It is not a research model: it exists so that genfast's engine, adapters and optimisations (prefix sharing,
cached class keys/values) run end to end on a model with the structure of Stable Diffusion's UNet.""",
    data="""\
scikit-learn's 8x8 handwritten digits (`sklearn.datasets.load_digits`, 1,797 images, 10 classes, pixel values
0..16, from the UCI "Optical Recognition of Handwritten Digits" data). Split: `genfast.models.digits_data.load_split`
= `train_test_split(test_size=0.2, stratify=labels, random_state=0)`: 1,437 train, 360 test images.
Pixels: x = value / 16 in [0, 1]; the model sees z0 = 2x - 1 in [-1, 1] (no VAE, pixel space).""",
    row="digit k",
    choices="""\
On a shared 2-core CPU there was time for two full runs, both with this architecture (the smallest tried that
meets the ~5 MFLOP budget; 16/32-channel two-level variants cost 8-10 MFLOP): 2,000 steps gave 95.0%
(25 validation timesteps), 3,000 steps 98.9% (50 timesteps). On the 2,000-step model, single timesteps classify
best around t = 225..525 (about 70-75% each, with one noise draw), and poorly above t = 800 (under 30%).
Torch uses 1 thread by default: under CPU contention 2 threads were about 4x slower per step.""",
    limitations="""\
- 8x8 greyscale digits only: it knows nothing about natural images, and its accuracy says nothing about
  Stable Diffusion's. Its class "prompts" are learned vectors, not text.
- Hyperparameters were chosen on the test split (the only held-out data), so its accuracy is slightly optimistic.
- Accuracy through genfast's engine depends on the method (timesteps, number of samples, weighting);
  the number above is for the simple validation recipe stated there.""",
)

_GLYPH_SPLITS = {name: len(faces) * len(glyphs_data.CLASS_NAMES) * renders
                 for name, (faces, _, renders) in glyphs_data.SPLITS.items()}
GLYPHS_CARD = dict(
    intro="""\
genfast's second tiny class-conditioned diffusion model, with many classes: 62 characters, so that methods
that prune classes are measured where pruning matters, on a held-out font style. Like the digits model it runs
on a CPU with no download and is not a research model: it has the structure of Stable Diffusion's UNet so that
genfast's engine, adapters and optimisations (prefix sharing, cached class keys/values) run end to end.""",
    data=f"""\
62 classes, `A-Z`, `a-z`, `0-9` (the class name is the character), rendered by `genfast.models.glyphs_data` from
the DejaVu fonts matplotlib ships (`matplotlib.get_data_path()/fonts/ttf`) with Pillow: each glyph is drawn at
4x on a fixed baseline with em = 3/4 of the image (so case and descenders keep their size and place), eroded or
dilated by {min(glyphs_data.STROKES)}..+{max(glyphs_data.STROKES)} px at 4x (stroke width -0.25..+0.5 px), warped
by a random affine map (rotation +-{glyphs_data.ROTATION_DEG:g} deg, scale {glyphs_data.SCALE[0]:g}..\
{glyphs_data.SCALE[1]:g}, horizontal shear +-{glyphs_data.SHEAR:g}, translation +-{glyphs_data.TRANSLATION_PX:g} px),
box-downsampled to 16x16 and given Gaussian pixel noise (sigma uniform in 0..{glyphs_data.NOISE_SIGMA:g}, clipped).
White ink on black, x in [0, 1]; the model sees z0 = 2x - 1 (no VAE, pixel space). A render is a pure function of
(face, class, seed): `numpy.random.default_rng([seed, face index, class])` draws its parameters.
Splits (`glyphs_data.load_split`): **train** {_GLYPH_SPLITS["train"]:,} renders, the six upright faces (DejaVu
Sans, Serif and Sans Mono, Book and Bold), seeds 0..{glyphs_data.SPLITS["train"][2] - 1}; **tune** and **test**
{_GLYPH_SPLITS["test"]:,} renders each (12 per class), only the six held-out slanted faces (Sans Oblique, Sans
BoldOblique, Serif Italic, Serif BoldItalic, Sans Mono Oblique, Sans Mono BoldOblique), seeds from 1,000,000
(tune) and 2,000,000 (test): unseen in style and seed, and disjoint from each other. The slant (about 11 deg) lies
outside the training shear (+-{glyphs_data.SHEAR:g}, about 6 deg), and Serif Italic has its own letterforms
(single-storey a, descending f). Any prefix of 62 m glyphs of a split holds m renders of every class.""",
    row="character `CLASS_NAMES[k]`",
    choices="""\
Resolution, measured on the tune split before any diffusion training: a small CNN (two 3x3 conv layers, 1,500
steps of batch 128 on the train renders) reached 80.6% at 12x12, 89.7% at 16x16 and 93.1% at 20x20; pixel
logistic regression on 7,440 train renders 22% at 8x8, 46% at 12x12, 69% at 16x16 and 80% at 20x20. 16x16 is the
knee: +9 points over 12x12 for 1.8x the pixels, against +3 points for another 1.6x (and a 1.6x dearer forward);
at 8x8 letters are mostly unreadable.
Architecture, within ~15 MFLOP per forward: at 16x16 the self-attention over 256 positions dominates the CPU
time (73% of a forward of a two-level (8, 16) UNet with attention in all four blocks), so the full-resolution
level has 8 channels and one transformer only, the first down block's, which genfast's prefix sharing runs once
per sample rather than once per class; the class enters again at 8x8 and 4x4. Two 350-step pilots (otherwise
these settings), scored on 124 tune images with 8 timesteps in 50..470: cross-attention at 16x16 and 8x8 only
(12.8 MFLOP) 2.4%, i.e. chance; also at 4x4 (this model, 14.8 MFLOP) 12.1%: the class is picked up much sooner
with attention at the coarsest level.
Steps: as many as fit in 20-30 min of one CPU thread of the shared 2-core machine (1.0-1.4 s per step under
contention). The first full run with these settings (the same weights: training is deterministic) scored 83.1%
with li2023 on the first 124 test images, above the 80% asked for, so no further variant (more steps, a bigger
model, milder augmentation) was trained; that decision to stop is the only one that looked at test data.""",
    limitations="""\
- 16x16 greyscale glyphs of one font family only: it knows nothing about natural images, and its accuracy says
  nothing about Stable Diffusion's. Its class "prompts" are learned vectors, not text.
- Some classes are nearly the same shape at 16x16 in some faces (I / l / 1, O / 0 / o, case pairs such as c / C,
  s / S, v / V, w / W, x / X, z / Z that differ only in size): part of the error is irreducible.
- Resolution and architecture were chosen on the tune split (see above); tune is also the split for tuning
  genfast's methods, so report on test.""",
)

DATASETS: dict[str, Dataset] = {
    "digits": Dataset(
        name="digits",
        class_names=digits_data.CLASS_NAMES,
        image_size=8,
        load_split=digits_data.load_split,
        defaults=TrainConfig(),
        val_images=None,
        val_timesteps=50,
        li2023_images=0,
        card=DIGITS_CARD,
    ),
    "glyphs": Dataset(
        name="glyphs",
        class_names=glyphs_data.CLASS_NAMES,
        image_size=glyphs_data.IMAGE_SIZE,
        load_split=glyphs_data.load_split,
        defaults=TrainConfig(
            dataset="glyphs",
            steps=1200,
            channels=(8, 16, 32),
            attention_levels=3,
            last_up_attention=False,
            shift_prob=0.0,
        ),
        val_images=124,
        val_timesteps=10,
        li2023_images=186,
        card=GLYPHS_CARD,
    ),
}
"""The datasets this script trains on, by ``--dataset`` name."""


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Command-line options; the defaults are those of the bundled model of ``--dataset``."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--dataset", choices=sorted(DATASETS), default="digits")
    data = DATASETS[pre.parse_known_args(argv)[0].dataset]
    d = data.defaults
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], parents=[pre])
    p.add_argument("--out", type=Path, required=True, help="folder to write the bundle into")
    p.add_argument("--steps", type=int, default=d.steps, help="optimizer steps (default %(default)s)")
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="default %(default)s")
    p.add_argument("--lr", type=float, default=d.lr, help="peak AdamW learning rate (default %(default)s)")
    p.add_argument("--warmup-steps", type=int, default=d.warmup_steps, help="default %(default)s")
    p.add_argument("--ema-decay", type=float, default=d.ema_decay, help="0 saves the raw weights (default %(default)s)")
    p.add_argument("--channels", default=",".join(map(str, d.channels)), help="block_out_channels (default %(default)s)")
    p.add_argument("--attention-levels", type=int, default=d.attention_levels,
                   help="levels (full resolution first) whose blocks cross-attend (default %(default)s)")
    p.add_argument("--last-up-attention", action=argparse.BooleanOptionalAction, default=d.last_up_attention,
                   help="cross-attention in the full-resolution up block (default %(default)s)")
    p.add_argument("--mid-block", action=argparse.BooleanOptionalAction, default=d.mid_block,
                   help="add a cross-attention mid block (default %(default)s)")
    p.add_argument("--embed-len", type=int, default=d.embed_len, help="tokens per class embedding (default %(default)s)")
    p.add_argument("--embed-dim", type=int, default=d.embed_dim, help="cross_attention_dim (default %(default)s)")
    p.add_argument("--head-dim", type=int, default=d.head_dim, help="attention_head_dim (default %(default)s)")
    p.add_argument("--schedule", choices=sorted(SCHEDULES), default=d.schedule, help="default %(default)s")
    p.add_argument("--shift-prob", type=float, default=d.shift_prob, help="default %(default)s")
    p.add_argument("--seed", type=int, default=d.seed, help="default %(default)s")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default %(default)s)")
    p.add_argument("--val-images", type=int, default=data.val_images,
                   help="test images to validate on (default: %(default)s; None = all; 0 skips)")
    p.add_argument("--val-timesteps", type=int, default=data.val_timesteps,
                   help="validation timestep grid size (default %(default)s)")
    p.add_argument("--li2023-images", type=int, default=data.li2023_images,
                   help="test images to classify with genfast's li2023 on the saved bundle (default %(default)s)")
    p.add_argument("--log-every", type=int, default=500, help="default %(default)s")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    """Build and check the training configuration."""
    try:
        channels = tuple(int(c) for c in args.channels.split(","))
    except ValueError:
        raise ValueError(f"--channels must be comma-separated integers, got {args.channels!r}") from None
    if any(c <= 0 or c % 8 for c in channels):
        raise ValueError(f"--channels must be positive multiples of 8 (GroupNorm with 8 groups), got {channels}")
    if not 1 <= args.attention_levels <= len(channels):
        raise ValueError(f"--attention-levels must be in [1, {len(channels)}] (the levels of --channels), "
                         f"got {args.attention_levels}")
    if args.steps < 1 or args.batch_size < 1 or args.warmup_steps < 0:
        raise ValueError(
            f"--steps and --batch-size must be >= 1 and --warmup-steps >= 0, "
            f"got {args.steps}, {args.batch_size}, {args.warmup_steps}"
        )
    if not 0.0 <= args.shift_prob <= 1.0 or not 0.0 <= args.ema_decay < 1.0:
        raise ValueError(f"--shift-prob must be in [0, 1] and --ema-decay in [0, 1), got {args.shift_prob}, {args.ema_decay}")
    if args.li2023_images < 0:
        raise ValueError(f"--li2023-images must be >= 0, got {args.li2023_images}")
    return TrainConfig(
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=min(args.warmup_steps, args.steps),
        ema_decay=args.ema_decay,
        channels=channels,
        mid_block=args.mid_block,
        embed_len=args.embed_len,
        embed_dim=args.embed_dim,
        head_dim=args.head_dim,
        schedule=args.schedule,
        shift_prob=args.shift_prob,
        seed=args.seed,
        dataset=args.dataset,
        attention_levels=args.attention_levels,
        last_up_attention=args.last_up_attention,
    )


def main(argv: list[str] | None = None) -> None:
    """Train, validate, measure and write the bundle and its model card."""
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    cfg = config_from_args(args)
    data = DATASETS[cfg.dataset]
    torch.set_num_threads(args.threads)
    start = time.perf_counter()
    unet, embeddings, scheduler = train(cfg, log_every=args.log_every)
    train_minutes = (time.perf_counter() - start) / 60
    print(f"trained in {train_minutes:.1f} min", flush=True)
    flops, forward_s = forward_cost(unet, embeddings)
    print(f"forward: {flops / 1e6:.2f} MFLOP/image, batch 512 in {forward_s * 1e3:.0f} ms", flush=True)
    if args.val_images == 0:
        validation = "Not measured (run with --val-images 0)."
    else:
        acc = validation_accuracy(
            unet, embeddings, scheduler.alphas_cumprod.float(), args.val_images, args.val_timesteps,
            dataset=cfg.dataset,
        )
        total = len(data.load_split("test")[1])
        every = args.val_images is None or args.val_images >= total
        count = f"all {total}" if every else f"the first {args.val_images}"
        validation = (
            f"**{acc:.2%}** on {count} test images: argmin over classes of the mean epsilon-MSE over the "
            f"{args.val_timesteps} timesteps `range(T // {args.val_timesteps} // 2, T, T // {args.val_timesteps})`, "
            "one noise draw per (image, timestep) shared by all classes, fixed seed "
            "(`validation_accuracy` in scripts/train_digits.py)."
        )
        print(f"validation accuracy {acc:.4f}", flush=True)
    save_bundle(args.out, unet, embeddings, scheduler, data)
    li2023 = ""
    if args.li2023_images:
        measured = li2023_accuracy(args.out, data, args.li2023_images)
        print(f"li2023 accuracy {measured['accuracy']:.4f} on {measured['images']} test images, "
              f"{measured['evaluations']:.0f} evaluations per image, {measured['seconds']:.0f} s", flush=True)
        li2023 = LI2023_SECTION.format(
            name=data.name,
            n_classes=len(data.class_names),
            threads=args.threads,
            seconds_per_image=measured["seconds"] / measured["images"],
            confusions=", ".join(f"{t} -> {p} ({n})" for (t, p), n in measured.pop("confusions")) or "none",
            **measured,
        )
    write_model_card(
        args.out,
        cfg,
        dict(
            params=sum(p.numel() for p in unet.parameters()),
            mflops=flops / 1e6,
            forward_ms=forward_s * 1e3,
            threads=args.threads,
            command=shlex.join(["python", "scripts/train_digits.py", *argv]),
            train_minutes=train_minutes,
            torch_version=torch.__version__,
            diffusers_version=diffusers.__version__,
            validation=validation,
            li2023=li2023,
        ),
    )
    print(f"wrote {args.out}", flush=True)


if __name__ == "__main__":
    main()
