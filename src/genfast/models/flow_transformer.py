"""What the flow-matching MMDiT families (SD3, FLUX) share: loading their diffusers pipeline, the resolution and
latent checks, the shifted flow schedule, VAE latents, text conditioning through the pipeline's own
``encode_prompt`` (once per class) and the per-row transformer call.

The exact savings of the UNet families do not apply: MMDiT joint attention mixes the text and image tokens in
every block, and the pooled text enters every block's adaptive norm, so no layer is class-free and the text
keys/values of a class change with the image and the timestep (:attr:`FlowTransformerAdapter.disabled_reasons`).
"""
from __future__ import annotations

import os
from abc import abstractmethod
from importlib import import_module
from pathlib import Path
from typing import Any, ClassVar, Sequence

import torch

from genfast.models.base import (Adapter, Schedule, check_class_names, format_prompt, index_rows,
                                 resolve_device_dtype, vae_latents)
from genfast.models.schedule import flow_sigmas_from_config

_TEXT_BATCH = 64
_MAX_SEQUENCE_LENGTH = 512  # both pipelines' check_inputs refuse longer T5 sequences


TOKENS_PER_BATCH = 2**15
"""Tokens per default batch: 24 rows of SD3 at 512 px (1,024 image + 333 text tokens), 93 of the tiny test models."""


class FlowTransformerAdapter(Adapter):
    """A diffusers flow-matching transformer pipeline as a classifier; the prediction is the velocity ``eps - z0``.

    Subclasses name their pipeline (``pipeline_module``, ``pipeline_class``), the component folders they need
    (``components``) and their token patch (``token_patch``: the latent pixels per image token side), and
    implement :attr:`text_seq_len`, :meth:`_timestep_rule`, :meth:`_encode_prompts` and :meth:`_predict`.
    Classification uses the conditional prediction only (no classifier-free guidance), as the other families do.
    """

    pipeline_module: ClassVar[str]
    pipeline_class: ClassVar[str]
    components: ClassVar[tuple[str, ...]]
    token_patch: int

    def __init__(self, model: str | os.PathLike[str], *, device: str | torch.device | None,
                 dtype: torch.dtype | str | None, resolution: int | None, max_sequence_length: int) -> None:
        from diffusers import DiffusionPipeline, FlowMatchEulerDiscreteScheduler

        location = os.fspath(model)
        self.name = location
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        if isinstance(max_sequence_length, bool) or not isinstance(max_sequence_length, int) or not (
                0 < max_sequence_length <= _MAX_SEQUENCE_LENGTH):
            raise ValueError(f"max_sequence_length must be an integer in [1, {_MAX_SEQUENCE_LENGTH}], "
                             f"got {max_sequence_length!r}")
        self.max_sequence_length = max_sequence_length
        try:
            index = dict(DiffusionPipeline.load_config(location))
        except (OSError, ValueError) as exc:
            raise ValueError(f"{location}: cannot read the pipeline's model_index.json ({exc})") from exc
        absent = self._absent_components(location, index)
        local = Path(location)
        missing = [c for c in self.components if c not in absent and not (local / c).is_dir()]
        if local.is_dir() and missing:
            raise ValueError(f"{location}: not a {self.pipeline_class} folder (missing {', '.join(missing)})")
        module = import_module(self.pipeline_module)
        try:
            pipe = getattr(module, self.pipeline_class).from_pretrained(
                location, torch_dtype=self.dtype, low_cpu_mem_usage=False, **{c: None for c in absent})
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise ValueError(f"{location}: cannot load the {self.pipeline_class} ({exc})") from exc
        if not isinstance(pipe.scheduler, FlowMatchEulerDiscreteScheduler):
            raise ValueError(f"{location}: the scheduler is {type(pipe.scheduler).__name__}, but genfast reads the "
                             "flow schedule of a FlowMatchEulerDiscreteScheduler")
        self.pipeline = pipe.to(self.device)
        if pipe.transformer.dtype != self.dtype:
            # diffusers (0.42, without accelerate) assigns the stored weights as they are when the first state-dict
            # entry has the stored dtype, as SD3's float32 pos_embed buffer does: cast them
            pipe.transformer.to(dtype=self.dtype)
        self.transformer, self.vae = pipe.transformer.eval(), pipe.vae.eval()
        self.vae_scale_factor = int(pipe.vae_scale_factor)

        multiple = self.vae_scale_factor * self.token_patch
        size = resolution if resolution is not None else pipe.default_sample_size * self.vae_scale_factor
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % multiple:
            raise ValueError(f"resolution must be a positive multiple of {multiple} (VAE downscaling "
                             f"{self.vae_scale_factor} x token patch {self.token_patch}), got {size!r}")
        self.image_size, self.image_channels = size, 3
        latent = size // self.vae_scale_factor
        self.latent_shape = (int(self.vae.config.latent_channels), latent, latent)
        self._check_pipeline(location)

        config = dict(pipe.scheduler.config)
        self.image_seq_len = (latent // self.token_patch) ** 2
        self.mu: float | None = None
        if config.get("use_dynamic_shifting", False):
            self.mu = float(module.calculate_shift(self.image_seq_len, config["base_image_seq_len"],
                                                   config["max_image_seq_len"], config["base_shift"],
                                                   config["max_shift"]))
            shifted = f"sigma shifted with mu={self.mu:.6g} ({self.image_seq_len} image tokens, use_dynamic_shifting)"
        else:
            shifted = f"sigma shifted with shift={float(config.get('shift', 1.0)):g}"
        sigmas = flow_sigmas_from_config(config, f"{location}/scheduler", mu=self.mu)
        scale, rule = self._timestep_rule(int(config["num_train_timesteps"]))
        self.schedule = Schedule.flow(sigmas, timestep_scale=scale, rule=f"{rule}; {shifted}")
        self.class_names = []
        self.conditioning: dict[str, torch.Tensor] = {}

    def _absent_components(self, location: str, index: dict[str, Any]) -> tuple[str, ...]:
        """Components to load as None (the pipeline then does without them); none by default."""
        return ()

    def _check_pipeline(self, location: str) -> None:
        """Family checks of the loaded components against each other and the latent shape (none by default)."""

    @property
    @abstractmethod
    def text_seq_len(self) -> int:
        """The text tokens each row carries into the joint attention (the length of ``prompt_embeds``)."""

    @property
    def default_batch_size(self) -> int:
        """Rows per transformer call when the caller does not choose: about ``TOKENS_PER_BATCH`` tokens, counting
        each row's image and text tokens (the joint attention runs over both, and at small resolutions the text
        tokens are most of a row), at most 256 rows, at least 8."""
        return int(max(8, min(256, TOKENS_PER_BATCH // (self.image_seq_len + self.text_seq_len))))

    @abstractmethod
    def _timestep_rule(self, num_train_timesteps: int) -> tuple[float, str]:
        """``(scale, rule)``: the denoiser takes ``timestep = scale * sigma``, as its pipeline passes it."""

    @abstractmethod
    def _encode_prompts(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """Per-prompt tensors (first dimension = prompt) from the pipeline's ``encode_prompt``."""

    @abstractmethod
    def _predict(self, z: torch.Tensor, timestep: torch.Tensor, conditioning: dict[str, torch.Tensor]) -> torch.Tensor:
        """The transformer's velocity for rows ``z [B, *latent]`` at ``timestep [B]`` under per-row conditioning."""

    @property
    def disabled_reasons(self) -> dict[str, str]:
        """Why the class-sharing savings do not apply to an MMDiT."""
        return {
            "share_prefix": "MMDiT joint attention mixes text and image tokens in every block (and the pooled text "
                            "enters every block's adaptive norm), so no layer is class-free",
            "cache_class_kv": "the text tokens' keys and values are recomputed in every block from a text stream "
                              "that attends to the image and is modulated by the timestep, so they are not fixed "
                              "per class",
        }

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """``(VAE posterior mean - shift_factor) * scaling_factor``: float32 ``[N, *latent_shape]``."""
        self.check_pixels(pixels)
        return vae_latents(self.vae, pixels, self.latent_shape, self.device, self.dtype)

    @torch.no_grad()
    def encode_classes(self, class_names: Sequence[str], prompt: str) -> None:
        """Encode every class's prompt once with the pipeline's ``encode_prompt`` and keep the tensors by class."""
        names = check_class_names(class_names)
        if not isinstance(prompt, str):
            raise TypeError(f"prompt must be a string, got {type(prompt).__name__}")
        prompts = [format_prompt(prompt, name) for name in names]
        parts = [self._encode_prompts(prompts[i : i + _TEXT_BATCH]) for i in range(0, len(prompts), _TEXT_BATCH)]
        self.conditioning = {key: torch.cat([part[key] for part in parts]).to(self.dtype) for key in parts[0]}
        self.class_names = names

    @torch.no_grad()
    def denoise(self, z_t: torch.Tensor, t: torch.Tensor, sample_offsets: torch.Tensor, class_index: torch.Tensor,
                image_index: torch.Tensor | None = None) -> torch.Tensor:
        """The velocity prediction of every class row: ``[B, *latent]``."""
        expanded = self.expand_rows(z_t, t, sample_offsets, class_index, image_index)
        if expanded is None:
            return self._no_rows()
        z, timestep, classes = expanded
        return self._predict(z, timestep, index_rows(self.conditioning, classes))

    def options(self) -> dict[str, Any]:
        """The conditioning options in effect."""
        return {"max_sequence_length": self.max_sequence_length}

    def describe(self) -> dict[str, Any]:
        """Model summary, the conditioning options and the resolution-dependent shift ``mu`` (None without)."""
        return {**super().describe(), "options": self.options(), "mu": self.mu, "image_seq_len": self.image_seq_len}
