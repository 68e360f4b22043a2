"""Stable Diffusion 3 / 3.5 (``StableDiffusion3Pipeline``): an MMDiT over VAE latents, conditioned on two CLIP
encoders and T5, trained with rectified flow (velocity ``eps - z0``).

A class's conditioning is exactly what ``StableDiffusion3Pipeline.encode_prompt`` returns for its prompt (the
same prompt to all three encoders): ``prompt_embeds`` (the penultimate CLIP-L and CLIP-G hidden states side by
side, zero-padded to the T5 width, followed by ``max_sequence_length`` T5 states, or zeros without T5) and
``pooled_prompt_embeds`` (both CLIP projections). The transformer takes ``timestep = 1000 * sigma``: the
pipeline passes the scheduler's timesteps, ``sigma * num_train_timesteps``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from genfast.models.flow_transformer import FlowTransformerAdapter

_T5 = ("text_encoder_3", "tokenizer_3")


class StableDiffusion3Adapter(FlowTransformerAdapter):
    """A diffusers SD3/3.5 pipeline folder (or hub id) as a classifier.

    Options (the pipeline ``__call__`` defaults): ``max_sequence_length=256`` (T5 tokens), ``clip_skip=None``
    (CLIP layers skipped before the penultimate one), ``use_t5=None`` (use T5 when the folder has it; False drops
    it, as diffusers' ``text_encoder_3=None`` does, and the pipeline feeds zeros in its place; True requires it);
    ``resolution`` (default: the transformer's sample_size times the VAE's downscaling; a multiple of VAE
    downscaling x patch size, within the transformer's ``pos_embed_max_size``). The pipeline's
    ``guidance_scale`` is classifier-free guidance, which classification does not use.
    """

    pipeline_module = "diffusers.pipelines.stable_diffusion_3.pipeline_stable_diffusion_3"
    pipeline_class = "StableDiffusion3Pipeline"
    components = ("transformer", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", *_T5,
                  "scheduler")

    def __init__(self, model: str | os.PathLike[str], *, device: str | torch.device | None = None,
                 dtype: torch.dtype | str | None = None, resolution: int | None = None,
                 max_sequence_length: int = 256, clip_skip: int | None = None, use_t5: bool | None = None) -> None:
        if clip_skip is not None and (isinstance(clip_skip, bool) or not isinstance(clip_skip, int) or clip_skip < 0):
            raise ValueError(f"clip_skip must be None or a non-negative integer, got {clip_skip!r}")
        if use_t5 not in (None, True, False):
            raise ValueError(f"use_t5 must be None, True or False, got {use_t5!r}")
        self.clip_skip, self.use_t5 = clip_skip, use_t5
        super().__init__(model, device=device, dtype=dtype, resolution=resolution,
                         max_sequence_length=max_sequence_length)
        self.use_t5 = self.pipeline.text_encoder_3 is not None

    def _absent_components(self, location: str, index: dict[str, Any]) -> tuple[str, ...]:
        """T5 is left out when ``use_t5=False`` or when model_index.json has no T5 (and ``use_t5`` is not True)."""
        listed = all(isinstance(index.get(c), list) and index[c][0] is not None for c in _T5)
        if self.use_t5 is False or (self.use_t5 is None and not listed):
            return _T5
        if not listed:
            raise ValueError(f"{location}: use_t5=True, but model_index.json has no T5 encoder (text_encoder_3)")
        missing = [c for c in _T5 if not (Path(location) / c).is_dir()]
        if Path(location).is_dir() and missing:
            raise ValueError(f"{location}: model_index.json names a T5 encoder but {', '.join(missing)} is missing; "
                             "pass use_t5=False to run without T5 (zeros in its place, as diffusers does)")
        return ()

    @property
    def text_seq_len(self) -> int:
        """77 CLIP tokens, then ``max_sequence_length`` T5 tokens (zeros without T5)."""
        return 77 + self.max_sequence_length

    @property
    def token_patch(self) -> int:
        """The transformer's patch size (latent pixels per image token side)."""
        return int(self.transformer.config.patch_size)

    def _check_pipeline(self, location: str) -> None:
        config = self.transformer.config
        channels = self.latent_shape[0]
        if config.in_channels != channels or config.out_channels != channels:
            raise ValueError(f"{location}: the VAE has {channels} latent channels but the transformer takes "
                             f"{config.in_channels} and predicts {config.out_channels}")
        patches = self.latent_shape[1] // self.token_patch
        if config.pos_embed_max_size is not None and patches > config.pos_embed_max_size:
            largest = config.pos_embed_max_size * self.token_patch * self.vae_scale_factor
            raise ValueError(f"resolution {self.image_size} gives {patches}x{patches} patches, more than this "
                             f"transformer's pos_embed_max_size {config.pos_embed_max_size} (at most {largest})")

    def _timestep_rule(self, num_train_timesteps: int) -> tuple[float, str]:
        return float(num_train_timesteps), (f"timestep = {num_train_timesteps} * sigma (StableDiffusion3Pipeline "
                                            "passes the scheduler's timesteps, sigma * num_train_timesteps)")

    def _encode_prompts(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        embeds, _, pooled, _ = self.pipeline.encode_prompt(
            prompt=prompts, prompt_2=None, prompt_3=None, device=self.device, do_classifier_free_guidance=False,
            clip_skip=self.clip_skip, max_sequence_length=self.max_sequence_length)
        return {"encoder_hidden_states": embeds, "pooled_projections": pooled}

    def _predict(self, z: torch.Tensor, timestep: torch.Tensor, conditioning: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.transformer(hidden_states=z, timestep=timestep, return_dict=False, **conditioning)[0]

    def options(self) -> dict[str, Any]:
        """max_sequence_length, clip_skip and whether T5 is used."""
        return {**super().options(), "clip_skip": self.clip_skip, "use_t5": self.use_t5}
