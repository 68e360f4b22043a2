"""The model adapter protocol: what the scoring loop needs from a generative model, and nothing about scheduling.

An adapter owns every fact of its model family: its :class:`Schedule` (how a timestep index becomes a noise
level and the value its denoiser takes as ``timestep``), its per-class conditioning (whatever tensors the
family needs, read by class index), and its denoiser. The loop only asks: ``adapter.schedule.at(index)`` for
noising, ``adapter.denoise(...)`` for predictions; a token model is a :class:`Scorer` instead, which returns
the error of every class row itself (``adapter.score(...)``). Helpers every adapter needs (device and dtype
defaults, class-name and prompt checks, row checks, image preparation) live here once.
"""
from __future__ import annotations

import contextlib
import os
from abc import ABC, abstractmethod
from collections import Counter
from dataclasses import dataclass
from typing import Any, Iterator, Sequence, Union

import numpy as np
import torch
from PIL import Image

PREDICTION_TYPES: tuple[str, ...] = ("epsilon", "v_prediction", "sample", "flow")
"""What a denoiser predicts: the noise, the velocity ``alpha eps - sigma z0``, the clean sample, or the flow
velocity ``eps - z0``."""

ImageInput = Union[Image.Image, np.ndarray, torch.Tensor, str, "os.PathLike[str]"]
"""One image as :meth:`Adapter.prepare_images` accepts it (see :mod:`genfast.models.images` for conventions)."""


@dataclass(frozen=True, eq=False)
class Schedule:
    """A model's noise schedule over its ``T`` timestep indices, as float64 tables on the CPU.

    ``z_t = alpha[i] z0 + sigma[i] eps`` at index ``i``; the denoiser is called with ``timestep[i]``
    (``rule`` says how that value follows from the noise level). ``kind`` is ``"vp"`` (variance-preserving,
    ``alpha^2 + sigma^2 = 1``) or ``"flow"`` (rectified flow, ``alpha = 1 - sigma``). ``training_density`` is the
    distribution of indices the model was trained on, where the family defines one (None: uniform).
    """

    kind: str
    prediction_type: str
    alpha: torch.Tensor
    sigma: torch.Tensor
    timestep: torch.Tensor
    rule: str
    training_density: torch.Tensor | None = None

    def __post_init__(self) -> None:
        if self.kind not in ("vp", "flow"):
            raise ValueError(f"schedule kind must be 'vp' or 'flow', got {self.kind!r}")
        if self.prediction_type not in PREDICTION_TYPES:
            raise ValueError(f"prediction_type must be one of {PREDICTION_TYPES}, got {self.prediction_type!r}")
        shape = self.alpha.shape
        if len(shape) != 1 or shape[0] < 1 or self.sigma.shape != shape or self.timestep.shape != shape:
            raise ValueError("a schedule needs alpha, sigma and timestep tables of one length T >= 1")
        if not bool(((self.sigma > 0) & (self.alpha > 0)).all()):
            raise ValueError("every schedule index needs alpha > 0 and sigma > 0 (neither clean nor pure noise)")

    @property
    def num_train_timesteps(self) -> int:
        """``T``: the number of timestep indices methods choose from."""
        return int(self.alpha.shape[0])

    @classmethod
    def variance_preserving(cls, alphas_cumprod: torch.Tensor, prediction_type: str,
                            timestep: torch.Tensor | None = None) -> Schedule:
        """DDPM-style: ``alpha = sqrt(abar)``, ``sigma = sqrt(1 - abar)``, the model takes the index itself."""
        abar = alphas_cumprod.to(torch.float64).cpu()
        steps = torch.arange(abar.shape[0], dtype=torch.float64) if timestep is None else timestep
        return cls("vp", prediction_type, abar.sqrt(), (1.0 - abar).sqrt(), steps.to(torch.float64),
                   "timestep = index (the DDPM training step)")

    @classmethod
    def flow(cls, sigmas: torch.Tensor, timestep_scale: float, rule: str) -> Schedule:
        """Rectified flow: ``z_t = (1 - sigma) z0 + sigma eps``; the model takes ``timestep_scale * sigma``."""
        sigma = sigmas.to(torch.float64).cpu()
        return cls("flow", "flow", 1.0 - sigma, sigma, sigma * float(timestep_scale), rule)

    def at(self, index: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(alpha, sigma, timestep)`` float64 on the CPU for int64 indices ``[S]``."""
        i = index.cpu()
        return self.alpha[i], self.sigma[i], self.timestep[i]

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary: kind, prediction type, T, the timestep rule and the sigma range."""
        return {"kind": self.kind, "prediction_type": self.prediction_type,
                "num_train_timesteps": self.num_train_timesteps, "timestep_rule": self.rule,
                "sigma_range": [float(self.sigma.min()), float(self.sigma.max())]}


def resolve_device_dtype(
    device: str | torch.device | None, dtype: torch.dtype | str | None
) -> tuple[torch.device, torch.dtype]:
    """Defaults: CUDA when available, else CPU; float16 on CUDA, float32 on CPU. Strings like "bf16" are accepted.
    A device that is not a torch device, or not on this machine, is a ValueError listing the devices here."""
    try:
        resolved = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
    except (RuntimeError, TypeError):
        resolved = None
    cuda = [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    if resolved is None or (resolved.type == "cuda" and (resolved.index or 0) >= len(cuda)):
        here = ", ".join(["cpu", *cuda] + (["mps"] if torch.backends.mps.is_available() else []))
        raise ValueError(f"device {device!r} is not a device on this machine; devices here: {here}")
    if dtype is None:
        return resolved, torch.float16 if resolved.type == "cuda" else torch.float32
    if isinstance(dtype, str):
        names = {"fp32": torch.float32, "float32": torch.float32, "fp16": torch.float16, "float16": torch.float16,
                 "half": torch.float16, "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
        if dtype not in names:
            raise ValueError(f"dtype must be one of {sorted(names)} or a torch dtype, got {dtype!r}")
        dtype = names[dtype]
    if dtype not in (torch.float32, torch.float16, torch.bfloat16):
        raise ValueError(f"dtype must be float32, float16 or bfloat16, got {dtype}")
    return resolved, dtype


def check_class_names(class_names: Sequence[str], known: Sequence[str] | None = None) -> list[str]:
    """The class names as a list; a clear error for an empty list, non-strings, duplicates or, given `known`,
    a name not in `known` (with the nearest known names). Messages list at most a few names and the count."""
    import difflib

    def listed(values: Sequence[str], limit: int = 5) -> str:
        more = f" and {len(values) - limit:,} more ({len(values):,} in all)" if len(values) > limit else ""
        return ", ".join(map(repr, values[:limit])) + more

    if isinstance(class_names, str):
        raise TypeError("class_names must be a sequence of strings, not a single string")
    names = list(class_names)
    if not names:
        raise ValueError("class_names is empty")
    bad = [name for name in names if not isinstance(name, str) or not name]
    if bad:
        raise ValueError(f"class_names must be non-empty strings, got {listed(bad)}")
    duplicates = sorted(name for name, count in Counter(names).items() if count > 1)
    if duplicates:
        raise ValueError(f"class_names has duplicates: {listed(duplicates)}")
    if known is not None:
        valid = set(known)
        unknown = [name for name in names if name not in valid]
        if unknown:
            near = difflib.get_close_matches(unknown[0], list(known), n=3)
            hint = f"; nearest to {unknown[0]!r}: {listed(near)}" if near else ""
            raise ValueError(f"{listed(unknown)} {'is' if len(unknown) == 1 else 'are'} not among the "
                             f"{len(valid):,} known class names ({listed(list(known), 10)}){hint}")
    return names


def format_prompt(template: str, class_name: str) -> str:
    """The prompt of one class: ``template`` with its one ``{class}`` or ``{}`` replaced by the class name."""
    if not isinstance(template, str):
        raise TypeError(f"prompt must be a string, got {type(template).__name__}")
    placeholders = template.count("{class}") + template.count("{}")
    if placeholders > 1:
        raise ValueError(f"prompt {template!r} has {placeholders} placeholders; it needs exactly one '{{}}' (or "
                         f"'{{class}}') where the class name goes")
    if "{class}" in template:
        return template.replace("{class}", class_name)
    if "{}" in template:
        return template.replace("{}", class_name)
    raise ValueError(f"prompt {template!r} has no '{{class}}' or '{{}}' placeholder for the class name")


@torch.no_grad()
def vae_latents(vae: Any, pixels: torch.Tensor, latent_shape: Sequence[int], device: torch.device,
                dtype: torch.dtype, batch: int = 32) -> torch.Tensor:
    """``(posterior mean - shift_factor) * scaling_factor`` of a diffusers VAE, in batches: float32
    ``[N, *latent_shape]`` on ``device``; the latent every latent-diffusion pipeline denoises."""
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    chunks = [((vae.encode(pixels[i : i + batch].to(device, dtype)).latent_dist.mean - shift)
               * vae.config.scaling_factor).float() for i in range(0, pixels.shape[0], batch)]
    return torch.cat(chunks) if chunks else torch.empty(0, *latent_shape, device=device)


@torch.no_grad()
def vae_pixels(vae: Any, latents: torch.Tensor, batch: int = 32) -> torch.Tensor:
    """The inverse of :func:`vae_latents`: ``vae.decode(latents / scaling_factor + shift_factor)`` in batches, float32
    pixels ``[N, C, H, W]`` in about [-1, 1] on the CPU."""
    shift = getattr(vae.config, "shift_factor", None) or 0.0
    chunks = [vae.decode((latents[i : i + batch].float() / vae.config.scaling_factor + shift).to(vae.device, vae.dtype)
                         ).sample.float().cpu() for i in range(0, latents.shape[0], batch)]
    return torch.cat(chunks) if chunks else torch.empty(0, vae.config.out_channels, 0, 0)


def index_rows(conditioning: dict[str, torch.Tensor], class_index: torch.Tensor) -> dict[str, torch.Tensor]:
    """Every per-class tensor of a conditioning structure, read at ``class_index [B]`` (one row per class row)."""
    return {name: value.index_select(0, class_index) for name, value in conditioning.items()}


class Adapter(ABC):
    """One generative model as the classifier sees it: encode images, encode classes, denoise class rows.

    Attributes every adapter sets: ``name``, ``schedule`` (a :class:`Schedule`), ``latent_shape`` (shape of one
    encoded image), ``image_size`` and ``image_channels`` (what :meth:`prepare_images` produces), ``device`` and
    ``dtype`` (of the denoiser), and ``class_names`` (the classes of the last :meth:`encode_classes`, empty
    before). :attr:`default_batch_size` is the number of class rows per denoiser call a caller uses when it
    does not choose. ``disabled_reasons`` names every exact saving that does not apply to this model, and why.
    """

    name: str
    schedule: Schedule
    latent_shape: tuple[int, ...]
    image_size: int
    image_channels: int
    device: torch.device
    dtype: torch.dtype
    class_names: list[str]

    @property
    def prediction_type(self) -> str:
        """What the denoiser predicts (from the schedule)."""
        return self.schedule.prediction_type

    @property
    def num_train_timesteps(self) -> int:
        """The number of timestep indices (from the schedule)."""
        return self.schedule.num_train_timesteps

    def prepare_images(self, images: Sequence[ImageInput]) -> torch.Tensor:
        """Load, colour-convert, resize and centre-crop images to float32 ``[N, C, H, W]`` in [-1, 1] on CPU."""
        from genfast.models.images import prepare_images

        return prepare_images(images, self.image_size, self.image_channels)

    @abstractmethod
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """Encode prepared pixels to the denoiser's space: float32 ``[N, *latent_shape]`` on ``device``."""

    def decode_images(self, latents: torch.Tensor) -> torch.Tensor:
        """Denoiser-space tensors ``[N, *latent_shape]`` as pixels, float32 ``[N, C, H, W]`` in about [-1, 1] on the
        CPU, to show what the model sees (:func:`genfast.explain`): through the VAE decoder for a latent model (an
        adapter whose ``vae`` is a diffusers autoencoder, which :func:`vae_latents` encoded with), unchanged for a
        pixel-space model; a TypeError for a model with neither."""
        vae = getattr(self, "vae", None)
        if vae is not None:
            return vae_pixels(vae, latents)
        if tuple(self.latent_shape) == (self.image_channels, self.image_size, self.image_size):
            return latents.detach().to("cpu", torch.float32)
        raise TypeError(f"{type(self).__name__} has no decoder from its {list(self.latent_shape)} latents to pixels")

    _rows_trusted = False  # set by trusting_rows()

    @contextlib.contextmanager
    def trusting_rows(self) -> Iterator[None]:
        """Within the block, :meth:`check_rows` checks shapes and dtypes but not index values, which would read
        the device (a sync per denoiser call): for rows the scoring engine planned, valid by construction."""
        self._rows_trusted = True
        try:
            yield
        finally:
            self._rows_trusted = False

    def class_members(self, name: str) -> list[str]:
        """The conditionings a class name stands for when the user gives none: the name itself (a label model
        may map a category onto several of its labels)."""
        return [name]

    @abstractmethod
    def encode_classes(self, class_names: Sequence[str], prompt: str) -> None:
        """Compute and cache the conditioning of every class (once per run); class index k is class_names[k]."""

    @abstractmethod
    def denoise(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        sample_offsets: torch.Tensor,
        class_index: torch.Tensor,
        image_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Predict for every class row: ``z_t [S, *latent]``, timestep indices ``t int64 [S]`` (the adapter maps
        them through its schedule), ``sample_offsets int64 [S+1]`` (rows of sample s are
        ``offsets[s]:offsets[s+1]``), ``class_index int64 [B]``, and ``image_index int64 [S]`` (the position of
        each sample's image among the encoded images, for per-image inputs) -> ``[B, *latent]``."""

    calibrated_temperature: float | None = None
    """The temperature of `Prediction.probabilities` fitted for this model on data of its own (a bundled model's
    tuning split); None: the package default, genfast.api.DEFAULT_TEMPERATURE."""

    @property
    def disabled_reasons(self) -> dict[str, str]:
        """Exact savings that do not apply to this model, each with its reason (none by default)."""
        return {}

    @property
    def default_batch_size(self) -> int:
        """Rows per denoiser call when the caller does not choose: about a million latent elements per batch
        (64 rows of Stable Diffusion's 4x64x64 latents), at most 256 rows (small models), at least 8.

        Measured on a 2-core CPU (benchmarks/RESULTS.md): the tiny SD-architecture model ran 1.9x faster than Li
        et al.'s batches of 32 at 256 rows, but only 1.06x at 32."""
        return int(max(8, min(256, 2**20 // int(np.prod(self.latent_shape)))))

    def model_timesteps(self, t: torch.Tensor) -> torch.Tensor:
        """The value the denoiser takes as ``timestep`` for indices ``t [S]``, on ``device`` (float32)."""
        return self.schedule.timestep[t.cpu()].to(self.device, torch.float32)

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary of the model and the options in effect (for logs and benchmark reports)."""
        return {
            "name": self.name,
            "class": type(self).__name__,
            "prediction_type": self.prediction_type,
            "num_train_timesteps": self.num_train_timesteps,
            "schedule": self.schedule.describe(),
            "latent_shape": list(self.latent_shape),
            "image_size": self.image_size,
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "disabled": dict(self.disabled_reasons),
        }

    def check_pixels(self, pixels: torch.Tensor) -> None:
        """A clear error unless ``pixels`` is a tensor ``[N, image_channels, image_size, image_size]``."""
        expected = (self.image_channels, self.image_size, self.image_size)
        if not isinstance(pixels, torch.Tensor) or pixels.ndim != 4 or tuple(pixels.shape[1:]) != expected:
            shape = tuple(pixels.shape) if isinstance(pixels, torch.Tensor) else type(pixels).__name__
            raise ValueError(f"pixels must be a tensor [N, {', '.join(map(str, expected))}], got {shape}")

    def _no_rows(self) -> torch.Tensor:
        return torch.empty(0, *self.latent_shape, device=self.device, dtype=self.dtype)

    def expand_rows(self, z_t: torch.Tensor, t: torch.Tensor, sample_offsets: torch.Tensor, class_index: torch.Tensor,
                    image_index: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None:
        """For denoisers with no class-free part: :meth:`check_rows`, then every class row's own ``z_t`` and model
        timestep, and the class indices; None when there are no rows."""
        from genfast.models.attention import rows_of_samples

        z, t, offsets, classes, _ = self.check_rows(z_t, t, sample_offsets, class_index, image_index)
        if not classes.numel():
            return None
        rows = rows_of_samples(offsets, classes.shape[0])
        return z.index_select(0, rows), self.model_timesteps(t).index_select(0, rows), classes

    def check_rows(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        sample_offsets: torch.Tensor,
        class_index: torch.Tensor,
        image_index: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Validate shapes, dtypes and index values (one sync on GPU) and move everything to the model.

        Returns ``(z_t, t, sample_offsets, class_index, image_index)``; a missing ``image_index`` is zeros."""
        for name, value in (("z_t", z_t), ("t", t), ("sample_offsets", sample_offsets), ("class_index", class_index)):
            if not isinstance(value, torch.Tensor):
                raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
        if not self.class_names:
            raise RuntimeError("no classes encoded: call encode_classes first")
        samples = z_t.shape[0]
        if tuple(z_t.shape[1:]) != tuple(self.latent_shape):
            latent = ", ".join(map(str, self.latent_shape))
            raise ValueError(f"z_t must have shape [S, {latent}], got {tuple(z_t.shape)}")
        if not z_t.is_floating_point():
            raise TypeError(f"z_t must be floating point, got {z_t.dtype}")
        if t.shape != (samples,) or t.dtype != torch.int64:
            raise ValueError(f"t must have shape [{samples}] and dtype int64 (one timestep index per z_t row), got {t.dtype} "
                             f"{tuple(t.shape)}")
        if sample_offsets.shape != (samples + 1,) or sample_offsets.dtype != torch.int64:
            got = f"{sample_offsets.dtype} {tuple(sample_offsets.shape)}"
            raise ValueError(f"sample_offsets must be int64 [{samples + 1}], got {got}")
        if class_index.ndim != 1 or class_index.dtype != torch.int64:
            raise ValueError(f"class_index must be int64 [B], got {class_index.dtype} {tuple(class_index.shape)}")
        if image_index is None:
            image_index = torch.zeros(samples, dtype=torch.int64)
        elif image_index.shape != (samples,) or image_index.dtype != torch.int64:
            raise ValueError(f"image_index must be int64 [{samples}], got {image_index.dtype} {tuple(image_index.shape)}")
        rows = class_index.shape[0]
        device = self.device
        sample_offsets, class_index = sample_offsets.to(device), class_index.to(device)
        t_device = t.to(device)
        if self._rows_trusted:  # rows the engine planned: valid by construction, and checking reads the device
            return z_t.to(device=device, dtype=self.dtype), t_device, sample_offsets, class_index, image_index.to(device)
        # one combined check, so at most one device-to-host sync per call
        bad_offsets = (sample_offsets[0] != 0) | (sample_offsets[-1] != rows) | (sample_offsets.diff() < 0).any()
        bad_classes = ((class_index < 0) | (class_index >= len(self.class_names))).any()
        bad_t = ((t_device < 0) | (t_device >= self.num_train_timesteps)).any()
        if bool(bad_offsets | bad_classes | bad_t):
            if bool(bad_offsets):
                raise ValueError(
                    f"sample_offsets must rise from 0 to len(class_index)={rows}, got {sample_offsets.tolist()[:8]}..."
                )
            if bool(bad_t):
                raise ValueError(f"t values must be timestep indices in [0, {self.num_train_timesteps})")
            raise ValueError(f"class_index values must be in [0, {len(self.class_names)}) (the encoded classes)")
        return z_t.to(device=device, dtype=self.dtype), t_device, sample_offsets, class_index, image_index.to(device)


class Scorer(Adapter):
    """A token model that scores class rows itself, beside the denoiser protocol of :class:`Adapter`.

    Autoregressive (Parti-class) and masked-token (MUSE-class) text-to-image models have no Gaussian noise to
    predict: the loop hands :meth:`score` each sample row's VQ codes and gets one error per class row back, a
    negative log-likelihood in nats (lower is better), where a denoiser's prediction would go to ``error_reduce``.
    The engine, methods, journal, probabilities and metrics work on those errors unchanged; a method's
    ``error_space``, ``loss`` and ``huber_delta`` do not apply. The engine's timestep index is the scorer's
    corruption level (``num_levels`` of them; ``level_rule`` says what one is); whatever else is random in a row
    (a mask pattern) is drawn from the counter-based generator keyed by ``(seed, image key, sample index)``
    (:func:`genfast.token_masks`), so rows stay paired across classes and reproducible across batch sizes.

    A ``deterministic`` scorer (an exact likelihood, nothing random) gives every sample of an image the same
    error, so the loop spends one sample per class whatever the method (it runs ``Exhaustive(n_samples=1)``):
    more samples would only repeat it, and elimination could not tell classes apart by a zero-variance test.

    A scorer has every :class:`Adapter` attribute except ``schedule``; ``latent_shape`` is ``(n_tokens,)``,
    :meth:`encode_images` returns int64 codes in ``[0, codebook_size)``, raster order.
    """

    num_levels: int
    level_rule: str
    codebook_size: int
    deterministic: bool = False

    @property
    def num_train_timesteps(self) -> int:
        """The number of corruption levels the engine's timestep indices choose from."""
        return self.num_levels

    @property
    def prediction_type(self) -> str:
        """A scorer predicts no noise: its errors are negative log-likelihoods."""
        return "nll"

    @property
    def default_batch_size(self) -> int:
        """Rows per scorer call when the caller does not choose: about 2**15 token positions (the logits over the
        codebook at every position dominate memory), between 1 and 256 rows."""
        return int(max(1, min(256, 2**15 // int(np.prod(self.latent_shape)))))

    def denoise(self, z_t: torch.Tensor, t: torch.Tensor, sample_offsets: torch.Tensor, class_index: torch.Tensor,
                image_index: torch.Tensor | None = None) -> torch.Tensor:
        """A scorer has no denoiser: the loop calls :meth:`score`."""
        raise TypeError(f"{type(self).__name__} is a scorer (a token model): it has no denoiser, call score()")

    @abstractmethod
    def score(self, codes: torch.Tensor, t: torch.Tensor, sample_offsets: torch.Tensor, class_index: torch.Tensor,
              keys: torch.Tensor, samples: torch.Tensor, seed: int) -> torch.Tensor:
        """The error of every class row, float32 ``[B]``: ``codes int64 [S, n_tokens]`` (the VQ codes of each
        sample row's image), levels ``t int64 [S]``, ``sample_offsets int64 [S+1]``, ``class_index int64 [B]``,
        and where each sample row's randomness comes from: ``keys int64 [S]`` (its image's key, as int64 bits),
        ``samples int64 [S]`` (its sample index) and the run's ``seed``."""

    def sample_details(self, seed: int, key: int, samples: np.ndarray, levels: np.ndarray) -> dict[str, np.ndarray]:
        """What :class:`genfast.api.Details` reports about these samples of one image beyond their errors (e.g. the
        masks); nothing by default."""
        return {}

    def check_score_rows(self, codes: torch.Tensor, t: torch.Tensor, sample_offsets: torch.Tensor,
                         class_index: torch.Tensor, keys: torch.Tensor, samples: torch.Tensor
                         ) -> tuple[torch.Tensor, ...]:
        """Validate shapes, dtypes and values (one sync on GPU) and move everything to ``device``, in order."""
        if not self.class_names:
            raise RuntimeError("no classes encoded: call encode_classes first")
        named = {"codes": codes, "t": t, "sample_offsets": sample_offsets, "class_index": class_index, "keys": keys,
                 "samples": samples}
        for name, value in named.items():
            if not isinstance(value, torch.Tensor) or value.dtype != torch.int64:
                got = f"{value.dtype} {tuple(value.shape)}" if isinstance(value, torch.Tensor) else type(value).__name__
                raise TypeError(f"{name} must be an int64 tensor, got {got}")
        rows = codes.shape[0]
        shapes = {"codes": (rows, *self.latent_shape), "t": (rows,), "sample_offsets": (rows + 1,), "keys": (rows,),
                  "samples": (rows,), "class_index": (class_index.shape[0],)}
        for name, shape in shapes.items():
            if tuple(named[name].shape) != shape:
                raise ValueError(f"{name} must have shape {list(shape)}, got {list(named[name].shape)}")
        moved = [value.to(self.device) for value in named.values()]
        codes, t, offsets, classes = moved[:4]
        bad_offsets = (offsets[0] != 0) | (offsets[-1] != classes.shape[0]) | (offsets.diff() < 0).any()
        bad = [bad_offsets, ((classes < 0) | (classes >= len(self.class_names))).any(),
               ((t < 0) | (t >= self.num_levels)).any(), ((codes < 0) | (codes >= self.codebook_size)).any()]
        flags = torch.stack(bad).tolist()  # one device-to-host sync
        messages = [f"sample_offsets must rise from 0 to len(class_index)={classes.shape[0]}",
                    f"class_index values must be in [0, {len(self.class_names)}) (the encoded classes)",
                    f"t values must be levels in [0, {self.num_levels})",
                    f"codes must be in [0, {self.codebook_size}) (the VQ codebook)"]
        for flag, message in zip(flags, messages):
            if flag:
                raise ValueError(message)
        return tuple(moved)

    def describe(self) -> dict[str, Any]:
        """A JSON-friendly summary: the model, its levels, token grid and codebook, device and dtype."""
        return {"name": self.name, "class": type(self).__name__, "kind": "scorer", "errors": "nll (nats per token)",
                "deterministic": self.deterministic, "num_levels": self.num_levels, "level_rule": self.level_rule,
                "latent_shape": list(self.latent_shape), "codebook_size": self.codebook_size,
                "image_size": self.image_size, "device": str(self.device),
                "dtype": str(self.dtype).removeprefix("torch."), "disabled": dict(self.disabled_reasons)}
