"""A tiny random Stable Diffusion XL pipeline folder, written by ``StableDiffusionXLPipeline.save_pretrained``.

The UNet has SDXL's layout in miniature (a plain first down block, cross-attention with two transformer layers
in the second, linear projections, the "text_time" addition embedding); the two CLIP text encoders (the second
with a projection, as SDXL's) feed a 32-wide cross-attention; the VAE has SDXL's scaling factor; the scheduler is
SDXL's Euler scheduler with scaled-linear betas. Deterministic in ``seed``; a 32-row forward takes milliseconds.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from genfast.testing import tiny_clip_tokenizer

_HIDDEN = 16  # each text encoder's width; the UNet's cross-attention takes both, concatenated
_TIME_IDS = 6  # original_size + crops_coords_top_left + target_size

TINY_SDXL_UNET: dict[str, Any] = {
    "sample_size": 8,
    "in_channels": 4,
    "out_channels": 4,
    "block_out_channels": (8, 16),
    "layers_per_block": 1,
    "down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
    "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D"),
    "transformer_layers_per_block": (1, 2),
    "attention_head_dim": (2, 4),
    "use_linear_projection": True,
    "cross_attention_dim": 2 * _HIDDEN,
    "addition_embed_type": "text_time",
    "addition_time_embed_dim": 8,
    "projection_class_embeddings_input_dim": _TIME_IDS * 8 + _HIDDEN,
    "norm_num_groups": 4,
}
"""The tiny SDXL UNet config (SDXL's structure, diffusers' test sizes scaled down)."""


def _text_encoder_config(tokenizer: Any, max_length: int) -> Any:
    from transformers import CLIPTextConfig

    return CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=_HIDDEN, intermediate_size=37, num_attention_heads=2,
                          num_hidden_layers=3, max_position_embeddings=max_length, projection_dim=_HIDDEN,
                          bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                          pad_token_id=tokenizer.pad_token_id)


def make_tiny_sdxl_pipeline(path: str | os.PathLike[str], *, seed: int = 0, prediction_type: str = "epsilon",
                            max_length: int = 77) -> Path:
    """Write a tiny random SDXL pipeline folder at ``path`` (tokenizers of ``max_length`` tokens; the second pads
    with "!", as SDXL's does) and return the path."""
    from diffusers import AutoencoderKL, EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer, tokenizer_2 = tiny_clip_tokenizer(max_length), tiny_clip_tokenizer(max_length)
    tokenizer_2.pad_token = "!"
    pipe = StableDiffusionXLPipeline(
        unet=UNet2DConditionModel(**TINY_SDXL_UNET),
        vae=AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                          up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), latent_channels=4,
                          norm_num_groups=8, layers_per_block=1, sample_size=16, scaling_factor=0.13025,
                          force_upcast=True),
        text_encoder=CLIPTextModel(_text_encoder_config(tokenizer, max_length)),
        text_encoder_2=CLIPTextModelWithProjection(_text_encoder_config(tokenizer_2, max_length)),
        tokenizer=tokenizer,
        tokenizer_2=tokenizer_2,
        scheduler=EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                         steps_offset=1, timestep_spacing="leading", prediction_type=prediction_type),
        add_watermarker=False,
    )
    pipe.save_pretrained(out)
    return out
