"""Stable Diffusion 1.x/2.x (a diffusers folder or hub id): CLIP text conditioning, VAE latents, UNet denoiser."""
from __future__ import annotations

import os

import torch

from genfast.models.base import format_prompt, resolve_device_dtype, vae_latents
from genfast.models.schedule import vp_schedule_from_config
from genfast.models.unet_adapter import UNetAdapter, check_components, loading, pipeline_scheduler_config

_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
_TEXT_BATCH = 64


class StableDiffusionAdapter(UNetAdapter):
    """A diffusers Stable Diffusion 1.x/2.x pipeline (epsilon or v-prediction) as a classifier's denoiser.

    ``resolution`` overrides the image size (default: the UNet's sample_size times the VAE's downscaling).
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
    ) -> None:
        from diffusers import AutoencoderKL, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        location = os.fspath(model)
        self.name = location
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        check_components(location, _COMPONENTS, "Stable Diffusion")
        with loading(location, "Stable Diffusion"):
            scheduler_config = pipeline_scheduler_config(location)
            load = {"torch_dtype": self.dtype, "low_cpu_mem_usage": False}
            unet = UNet2DConditionModel.from_pretrained(location, subfolder="unet", **load)
            vae = AutoencoderKL.from_pretrained(location, subfolder="vae", **load)
            text_encoder = CLIPTextModel.from_pretrained(location, subfolder="text_encoder", dtype=self.dtype)
            self.tokenizer = CLIPTokenizer.from_pretrained(location, subfolder="tokenizer")
        self.unet = unet.to(self.device).eval()
        self.vae = vae.to(self.device).eval()
        self.text_encoder = text_encoder.to(self.device).eval()

        self.schedule = vp_schedule_from_config(scheduler_config, f"{location}/scheduler")
        if unet.config.addition_embed_type is not None or unet.encoder_hid_proj is not None:
            raise ValueError(
                f"{location}: this UNet takes added text embeddings (addition_embed_type="
                f"{unet.config.addition_embed_type!r}), which Stable Diffusion 1.x/2.x does not have; is "
                "model_index.json's _class_name right?"
            )
        self._set_vae_geometry(vae, resolution, location)
        self._start_runner(location, share_prefix, cache_class_kv, attention)

    @torch.no_grad()
    def _conditioning(self, class_names: list[str], prompt: str) -> torch.Tensor:
        """CLIP last hidden states of each class's prompt, padded to the tokenizer's max length (as SD does)."""
        prompts = [format_prompt(prompt, name) for name in class_names]
        use_mask = bool(getattr(self.text_encoder.config, "use_attention_mask", False))
        chunks = []
        for start in range(0, len(prompts), _TEXT_BATCH):
            tokens = self.tokenizer(
                prompts[start : start + _TEXT_BATCH],
                padding="max_length",
                max_length=self.tokenizer.model_max_length,
                truncation=True,
                return_tensors="pt",
            )
            mask = tokens.attention_mask.to(self.device) if use_mask else None
            chunks.append(self.text_encoder(tokens.input_ids.to(self.device), attention_mask=mask)[0])
        return torch.cat(chunks).to(self.dtype)

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """VAE posterior mean times the VAE scaling factor: float32 ``[N, *latent_shape]``."""
        self.check_pixels(pixels)
        return vae_latents(self.vae, pixels, self.latent_shape, self.device, self.dtype)

