"""Stable Diffusion XL (``StableDiffusionXLPipeline``): two CLIP text encoders, size conditioning, VAE latents.

The conditioning is what ``StableDiffusionXLPipeline.encode_prompt`` and ``__call__`` build: the penultimate hidden
states of both text encoders, concatenated, for cross-attention, and through ``added_cond_kwargs`` the pooled,
projected output of ``text_encoder_2`` (``text_embeds``) with the size ids ``time_ids`` =
``original_size + crops_coords_top_left + target_size``. Cross-attention K/V are cached per class; ``share_prefix``
does not apply, since the pooled text enters the time embedding (``addition_embed_type="text_time"``).
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import torch

from genfast.models.base import format_prompt, resolve_device_dtype, vae_latents
from genfast.models.schedule import vp_schedule_from_config
from genfast.models.unet_adapter import UNetAdapter, check_components, loading, pipeline_scheduler_config

_COMPONENTS = ("unet", "vae", "text_encoder", "text_encoder_2", "tokenizer", "tokenizer_2", "scheduler")
_TEXT_BATCH = 64


def _size_pair(value: Any, name: str, minimum: int) -> tuple[int, int]:
    """``value`` as an ``(int, int)`` pair of integers >= ``minimum``, or a clear error naming the option."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else ()
    if len(pair) != 2 or any(isinstance(v, bool) or not isinstance(v, int) or v < minimum for v in pair):
        raise ValueError(f"{name} must be a pair of integers >= {minimum}, got {value!r}")
    return (int(pair[0]), int(pair[1]))


class StableDiffusionXLAdapter(UNetAdapter):
    """A diffusers SDXL pipeline folder (or hub id) as a classifier's denoiser (epsilon or v-prediction).

    Conditioning options, with ``StableDiffusionXLPipeline.__call__``'s defaults: ``original_size`` and
    ``target_size`` (height, width; default: the image size), ``crops_coords_top_left`` (default ``(0, 0)``) and
    ``clip_skip`` (default None: the penultimate layer of both encoders; k skips k more). ``resolution``
    overrides the image size (default: the UNet's sample_size times the VAE's downscaling). With float16 a VAE
    whose config asks for ``force_upcast`` (SDXL's own does: it overflows in float16) encodes in float32, as the
    pipeline does.
    """

    def __init__(
        self,
        model: str | os.PathLike[str],
        *,
        device: str | torch.device | None = None,
        dtype: torch.dtype | str | None = None,
        share_prefix: bool = True,
        cache_class_kv: bool = True,
        attention: str = "auto",
        resolution: int | None = None,
        original_size: Sequence[int] | None = None,
        crops_coords_top_left: Sequence[int] = (0, 0),
        target_size: Sequence[int] | None = None,
        clip_skip: int | None = None,
    ) -> None:
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTextModelWithProjection, CLIPTokenizer

        location = os.fspath(model)
        self.name = location
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        if clip_skip is not None and (isinstance(clip_skip, bool) or not isinstance(clip_skip, int) or clip_skip < 0):
            raise ValueError(f"clip_skip must be None or a non-negative integer, got {clip_skip!r}")
        check_components(location, _COMPONENTS, "Stable Diffusion XL")
        with loading(location, "Stable Diffusion XL"):
            scheduler_config = pipeline_scheduler_config(location)
            unet = UNet2DConditionModel.from_pretrained(location, subfolder="unet", torch_dtype=self.dtype,
                                                        low_cpu_mem_usage=False)
            upcast = AutoencoderKL.load_config(location, subfolder="vae").get("force_upcast", True)
            vae_dtype = torch.float32 if upcast and self.dtype == torch.float16 else self.dtype
            vae = AutoencoderKL.from_pretrained(location, subfolder="vae", torch_dtype=vae_dtype,
                                                low_cpu_mem_usage=False)
            text_encoder = CLIPTextModel.from_pretrained(location, subfolder="text_encoder", dtype=self.dtype)
            text_encoder_2 = CLIPTextModelWithProjection.from_pretrained(location, subfolder="text_encoder_2",
                                                                         dtype=self.dtype)
            self.tokenizers = (CLIPTokenizer.from_pretrained(location, subfolder="tokenizer"),
                               CLIPTokenizer.from_pretrained(location, subfolder="tokenizer_2"))
        self.unet = unet.to(self.device).eval()
        self.vae = vae.to(self.device).eval()
        self.text_encoders = (text_encoder.to(self.device).eval(), text_encoder_2.to(self.device).eval())
        self.schedule = vp_schedule_from_config(scheduler_config, f"{location}/scheduler")
        if unet.config.addition_embed_type != "text_time":
            raise ValueError(f"{location}: an SDXL UNet takes addition_embed_type='text_time', this one "
                             f"{unet.config.addition_embed_type!r}; is model_index.json's _class_name right?")
        self._set_vae_geometry(vae, resolution, location)
        size = (self.image_size, self.image_size)
        self.original_size = _size_pair(size if original_size is None else original_size, "original_size", 1)
        self.crops_coords_top_left = _size_pair(crops_coords_top_left, "crops_coords_top_left", 0)
        self.target_size = _size_pair(size if target_size is None else target_size, "target_size", 1)
        layers = min(encoder.config.num_hidden_layers for encoder in self.text_encoders)
        if clip_skip is not None and clip_skip > layers - 1:
            raise ValueError(f"clip_skip must be at most {layers - 1} for these {layers}-layer text encoders, "
                             f"got {clip_skip}")
        self.clip_skip = clip_skip
        self.time_ids = torch.tensor([[*self.original_size, *self.crops_coords_top_left, *self.target_size]],
                                     dtype=self.dtype)
        passed = unet.config.addition_time_embed_dim * self.time_ids.shape[1] + text_encoder_2.config.projection_dim
        expected = unet.add_embedding.linear_1.in_features
        if passed != expected:
            raise ValueError(f"{location}: the UNet's added embedding takes {expected} features, but its time ids and "
                             f"text_encoder_2's projection give {passed}")
        self._start_runner(location, share_prefix, cache_class_kv, attention)

    @torch.no_grad()
    def _conditioning(self, class_names: list[str], prompt: str) -> dict[str, Any]:
        """Both encoders' hidden states (penultimate, or ``clip_skip`` more), concatenated, and the pooled output
        of ``text_encoder_2`` with the size ids, per class (as ``encode_prompt`` and ``__call__`` build them)."""
        prompts = [format_prompt(prompt, name) for name in class_names]
        layer = -2 if self.clip_skip is None else -(self.clip_skip + 2)
        states, pooled = [], []
        for start in range(0, len(prompts), _TEXT_BATCH):
            outputs = []
            for tokenizer, encoder in zip(self.tokenizers, self.text_encoders):
                ids = tokenizer(prompts[start : start + _TEXT_BATCH], padding="max_length", truncation=True,
                                max_length=tokenizer.model_max_length, return_tensors="pt").input_ids
                outputs.append(encoder(ids.to(self.device), output_hidden_states=True))
            states.append(torch.cat([out.hidden_states[layer] for out in outputs], dim=-1))
            pooled.append(outputs[1].text_embeds)  # text_encoder_2's projected pooled output
        text_embeds = torch.cat(pooled)
        time_ids = self.time_ids.to(self.device).expand(len(prompts), -1)
        return {"encoder_hidden_states": torch.cat(states).to(self.dtype),
                "added_cond_kwargs": {"text_embeds": text_embeds.to(self.dtype), "time_ids": time_ids}}

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """VAE posterior mean times the VAE scaling factor: float32 ``[N, *latent_shape]``."""
        self.check_pixels(pixels)
        return vae_latents(self.vae, pixels, self.latent_shape, self.device, self.vae.dtype)

    def describe(self) -> dict[str, Any]:
        """Model summary, the options in effect and the conditioning options."""
        conditioning = {"original_size": list(self.original_size), "crops_coords_top_left":
                        list(self.crops_coords_top_left), "target_size": list(self.target_size),
                        "clip_skip": self.clip_skip}
        return {**super().describe(), "conditioning": conditioning}
