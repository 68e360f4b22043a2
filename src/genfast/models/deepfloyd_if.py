"""DeepFloyd IF stage I (``IFPipeline``): a pixel-space UNet conditioned on T5 text, with a learned variance.

The denoised space is the image itself in [-1, 1] (no VAE). The conditioning is what ``IFPipeline.encode_prompt``
builds: the caption lower-cased and stripped (with ``clean_caption``, cleaned twice by the pipeline's own caption
cleaner), T5 tokens padded to 77 with their attention mask, and the T5 encoder's last hidden states; as in
``IFPipeline.__call__``, the UNet gets those states without the mask (its cross-attention sees all 77 tokens). The
UNet predicts the noise in its first 3 channels and the variance (``learned_range``) in the other 3.

Exact savings: the text projection (``encoder_hid_proj``) and the text's addition embedding run once per class, and
every added-KV attention layer's text keys/values are cached per class; ``share_prefix`` does not apply, since the
pooled text enters the time embedding (``addition_embed_type="text"``).
"""
from __future__ import annotations

import os
from typing import Any

import torch

from genfast.models.base import format_prompt, resolve_device_dtype
from genfast.models.schedule import vp_schedule_from_config
from genfast.models.unet_adapter import (
    UNetAdapter,
    check_components,
    checked_resolution,
    loading,
    pipeline_scheduler_config,
)

_COMPONENTS = ("unet", "text_encoder", "tokenizer", "scheduler")
_MAX_LENGTH = 77  # IFPipeline.encode_prompt: T5 was trained with 77 tokens for IF
_TEXT_BATCH = 64


class IFAdapter(UNetAdapter):
    """A diffusers DeepFloyd IF stage I pipeline folder (or hub id) as a classifier's denoiser.

    ``clean_caption`` (default True, as ``IFPipeline.__call__``) runs the pipeline's caption cleaner, which needs
    the ``beautifulsoup4`` and ``ftfy`` packages: without them the adapter raises (the pipeline itself would
    silently skip the cleaning); pass ``clean_caption=False`` to only lower-case and strip the prompt.
    ``resolution`` overrides the image size (default: the UNet's sample_size, 64 for IF-I). The safety checker,
    feature extractor and watermarker of the pipeline folder are not loaded: a classifier generates no image.
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
        clean_caption: bool = True,
    ) -> None:
        from diffusers import DDPMScheduler, IFPipeline, UNet2DConditionModel
        from diffusers.utils import is_bs4_available, is_ftfy_available
        from transformers import T5EncoderModel, T5Tokenizer

        location = os.fspath(model)
        self.name = location
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        if not isinstance(clean_caption, bool):
            raise ValueError(f"clean_caption must be True or False, got {clean_caption!r}")
        if clean_caption and not (is_bs4_available() and is_ftfy_available()):
            raise ValueError("clean_caption=True (IFPipeline's default) needs the beautifulsoup4 and ftfy packages, "
                             "which cannot be imported here; install them or pass clean_caption=False")
        check_components(location, _COMPONENTS, "DeepFloyd IF")
        with loading(location, "DeepFloyd IF"):
            scheduler_config = pipeline_scheduler_config(location)
            unet = UNet2DConditionModel.from_pretrained(location, subfolder="unet", torch_dtype=self.dtype,
                                                        low_cpu_mem_usage=False)
            text_encoder = T5EncoderModel.from_pretrained(location, subfolder="text_encoder", dtype=self.dtype)
            tokenizer = T5Tokenizer.from_pretrained(location, subfolder="tokenizer")
        self.unet = unet.to(self.device).eval()
        self.text_encoder = text_encoder.to(self.device).eval()
        self.tokenizer = tokenizer
        self.clean_caption = clean_caption
        self.schedule = vp_schedule_from_config(scheduler_config, f"{location}/scheduler")
        # the pipeline's own caption preprocessing (private in diffusers), on a pipeline of the loaded components
        self._captions = IFPipeline(tokenizer=tokenizer, text_encoder=self.text_encoder, unet=self.unet,
                                    scheduler=DDPMScheduler.from_config(scheduler_config), safety_checker=None,
                                    feature_extractor=None, watermarker=None, requires_safety_checker=False)

        channels = unet.config.in_channels
        learned = scheduler_config.get("variance_type") in ("learned", "learned_range")
        expected = 2 * channels if learned else channels
        if channels != 3 or unet.config.out_channels != expected:
            raise ValueError(
                f"{location}: an IF stage I UNet takes the 3 image channels and returns {expected} (variance_type "
                f"{scheduler_config.get('variance_type')!r}); this one takes {channels} and returns "
                f"{unet.config.out_channels}"
            )
        default = unet.config.sample_size
        self.image_size = checked_resolution(default if resolution is None else resolution, 1)
        self.image_channels = 3
        self.latent_shape = (channels, self.image_size, self.image_size)
        self._start_runner(location, share_prefix, cache_class_kv, attention)

    @torch.no_grad()
    def _conditioning(self, class_names: list[str], prompt: str) -> torch.Tensor:
        """T5 last hidden states of each class's preprocessed prompt, 77 tokens, encoded with their attention mask."""
        prompts = self._captions._text_preprocessing([format_prompt(prompt, n) for n in class_names],
                                                     clean_caption=self.clean_caption)
        chunks = []
        for start in range(0, len(prompts), _TEXT_BATCH):
            tokens = self.tokenizer(prompts[start : start + _TEXT_BATCH], padding="max_length", max_length=_MAX_LENGTH,
                                    truncation=True, add_special_tokens=True, return_tensors="pt")
            chunks.append(self.text_encoder(tokens.input_ids.to(self.device),
                                            attention_mask=tokens.attention_mask.to(self.device))[0])
        return torch.cat(chunks).to(self.dtype)

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """The pixels themselves (IF denoises images in [-1, 1]): float32 ``[N, 3, size, size]``."""
        self.check_pixels(pixels)
        return pixels.to(self.device, torch.float32)

    def describe(self) -> dict[str, Any]:
        """Model summary, the options in effect and the conditioning options."""
        return {**super().describe(), "conditioning": {"clean_caption": self.clean_caption, "max_length": _MAX_LENGTH}}
