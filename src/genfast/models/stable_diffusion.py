"""Stable Diffusion 1.x/2.x (a diffusers folder or hub id): CLIP text conditioning, VAE latents, UNet denoiser."""
from __future__ import annotations

import os
from pathlib import Path
import torch

from genfast.models.base import format_prompt, resolve_device_dtype
from genfast.models.schedule import read_scheduler_config, vp_schedule_from_config
from genfast.models.unet import ClassConditionedUNet
from genfast.models.unet_adapter import UNetAdapter

_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
_TEXT_BATCH = 64
_IMAGE_BATCH = 32


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
        from diffusers import AutoencoderKL, DDPMScheduler, UNet2DConditionModel
        from transformers import CLIPTextModel, CLIPTokenizer

        location = os.fspath(model)
        self.name = location
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        local = Path(location)
        if local.is_dir():
            missing = [c for c in _COMPONENTS if not (local / c).is_dir()]
            if missing:
                raise ValueError(f"{location}: not a Stable Diffusion pipeline folder (missing {', '.join(missing)})")
        try:
            if local.is_dir():
                scheduler_config = read_scheduler_config(local / "scheduler" / "scheduler_config.json")
            else:
                scheduler_config = dict(DDPMScheduler.load_config(location, subfolder="scheduler"))
            load = {"torch_dtype": self.dtype, "low_cpu_mem_usage": False}
            unet = UNet2DConditionModel.from_pretrained(location, subfolder="unet", **load)
            vae = AutoencoderKL.from_pretrained(location, subfolder="vae", **load)
            text_encoder = CLIPTextModel.from_pretrained(location, subfolder="text_encoder", dtype=self.dtype)
            self.tokenizer = CLIPTokenizer.from_pretrained(location, subfolder="tokenizer")
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            raise ValueError(f"{location}: cannot load the Stable Diffusion pipeline ({exc})") from exc
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

        if vae.config.latent_channels != unet.config.in_channels:
            raise ValueError(
                f"{location}: the VAE has {vae.config.latent_channels} latent channels but the UNet takes "
                f"{unet.config.in_channels}"
            )
        self.vae_scale_factor = 2 ** (len(vae.config.block_out_channels) - 1)
        size = resolution if resolution is not None else unet.config.sample_size * self.vae_scale_factor
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % self.vae_scale_factor:
            raise ValueError(f"resolution must be a positive multiple of {self.vae_scale_factor}, got {size!r}")
        self.image_size = size
        self.image_channels = 3
        latent = size // self.vae_scale_factor
        self.latent_shape = (unet.config.in_channels, latent, latent)
        self.class_names = []
        self.runner = ClassConditionedUNet(
            self.unet,
            share_prefix=share_prefix,
            cache_class_kv=cache_class_kv,
            attention=attention,
            source=location,
        )

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
        config = self.vae.config
        shift = getattr(config, "shift_factor", None) or 0.0
        latents = []
        for start in range(0, pixels.shape[0], _IMAGE_BATCH):
            batch = pixels[start : start + _IMAGE_BATCH].to(device=self.device, dtype=self.dtype)
            mean = self.vae.encode(batch).latent_dist.mean
            latents.append(((mean - shift) * config.scaling_factor).float())
        return torch.cat(latents) if latents else torch.empty(0, *self.latent_shape, device=self.device)

