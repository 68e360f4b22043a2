"""A tiny random FLUX.1 pipeline folder, written by ``FluxPipeline.save_pretrained``.

Sizes follow diffusers' own fast tests (``get_dummy_components``) with the structure of FLUX.1-dev kept where it
costs nothing: a CLIP encoder (pooled output only), a T5 encoder, a transformer over 2x2-packed latents (its
``in_channels`` is 4x the VAE's latent channels) with a guidance embedding, a VAE with FLUX's shift and scaling
factors and 2x downscaling, and FLUX.1-dev's scheduler (resolution-dependent shift).
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from genfast.testing import tiny_clip_tokenizer, tiny_t5_tokenizer
from genfast.testing.sd3 import tiny_clip_config, tiny_t5_config

TINY_FLUX_TRANSFORMER: dict[str, Any] = {
    "patch_size": 1,
    "in_channels": 16,
    "num_layers": 1,
    "num_single_layers": 1,
    "attention_head_dim": 16,
    "num_attention_heads": 2,
    "joint_attention_dim": 32,
    "pooled_projection_dim": 32,
    "axes_dims_rope": (4, 4, 8),
}
"""The tiny FLUX transformer: 2x2 patches of 4 latent channels, ``joint_attention_dim`` the T5 width and
``pooled_projection_dim`` the CLIP width."""


def make_tiny_flux_pipeline(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    guidance_embeds: bool = True,
    use_dynamic_shifting: bool = True,
    transformer_config: Mapping[str, Any] | None = None,
    max_length: int = 77,
) -> Path:
    """Write a tiny random FLUX.1 pipeline folder at ``path`` and return the path.

    The defaults are FLUX.1-dev's structure (guidance-distilled, resolution-dependent shift); FLUX.1-schnell's is
    ``guidance_embeds=False, use_dynamic_shifting=False`` (shift 1). ``transformer_config`` overrides entries of
    :data:`TINY_FLUX_TRANSFORMER`; ``max_length`` is the CLIP tokenizer's length.
    """
    from diffusers import AutoencoderKL, FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel, T5EncoderModel

    config = {**TINY_FLUX_TRANSFORMER, "guidance_embeds": guidance_embeds, **(transformer_config or {})}
    torch.manual_seed(seed)
    transformer = FluxTransformer2DModel(**config)
    tokenizer, tokenizer_2 = tiny_clip_tokenizer(max_length), tiny_t5_tokenizer()
    text_encoder = CLIPTextModel(tiny_clip_config(tokenizer, config["pooled_projection_dim"]))
    text_encoder_2 = T5EncoderModel(tiny_t5_config(tokenizer_2, config["joint_attention_dim"]))
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                        latent_channels=config["in_channels"] // 4, norm_num_groups=8, sample_size=16,
                        use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.1159, scaling_factor=0.3611)
    if use_dynamic_shifting:
        scheduler = FlowMatchEulerDiscreteScheduler(shift=3.0, use_dynamic_shifting=True, base_shift=0.5,
                                                    max_shift=1.15, base_image_seq_len=256, max_image_seq_len=4096)
    else:
        scheduler = FlowMatchEulerDiscreteScheduler(shift=1.0)
    pipe = FluxPipeline(scheduler=scheduler, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                        text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2, transformer=transformer)
    out = Path(path)
    pipe.save_pretrained(out)
    return out
