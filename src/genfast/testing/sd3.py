"""A tiny random Stable Diffusion 3 pipeline folder, written by ``StableDiffusion3Pipeline.save_pretrained``.

Sizes follow diffusers' own fast tests (``get_dummy_components``) with the structure of the real model kept where
it costs nothing: two CLIP encoders with projection of different widths (their hidden states are concatenated and
zero-padded to the T5 width, their pooled outputs concatenated), a T5 encoder (optional), patch size 2, a VAE
with SD3's shift and scaling factors and 2x downscaling, and SD3's flow scheduler (shift 3).
``tiny_clip_config`` and ``tiny_t5_config`` are shared with :mod:`genfast.testing.flux`.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import torch

from genfast.testing import tiny_clip_tokenizer, tiny_t5_tokenizer

TINY_SD3_TRANSFORMER: dict[str, Any] = {
    "sample_size": 8,
    "patch_size": 2,
    "in_channels": 4,
    "out_channels": 4,
    "num_layers": 2,
    "attention_head_dim": 8,
    "num_attention_heads": 2,
    "caption_projection_dim": 16,
    "joint_attention_dim": 64,
    "pooled_projection_dim": 48,
    "pos_embed_max_size": 8,
}
"""The tiny SD3 transformer: 16 channels inside, an 8x8 grid of 2x2 patches at most (latents up to 16x16);
``joint_attention_dim`` is the T5 width and ``pooled_projection_dim`` the two CLIP projections together."""

_CLIP_WIDTHS = (16, 32)
"""Hidden size (= projection size) of the two CLIP encoders (CLIP-L, CLIP-G)."""


def tiny_clip_config(tokenizer: Any, hidden_size: int, projection_dim: int | None = None) -> Any:
    """A 2-layer ``CLIPTextConfig`` over ``tokenizer``'s vocabulary and special tokens."""
    from transformers import CLIPTextConfig

    extra = {} if projection_dim is None else {"projection_dim": projection_dim}
    return CLIPTextConfig(vocab_size=len(tokenizer), hidden_size=hidden_size, intermediate_size=37,
                          num_attention_heads=4, num_hidden_layers=2, hidden_act="gelu",
                          max_position_embeddings=tokenizer.model_max_length, bos_token_id=tokenizer.bos_token_id,
                          eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, **extra)


def tiny_t5_config(tokenizer: Any, d_model: int) -> Any:
    """A 2-layer ``T5Config`` (encoder) over ``tokenizer``'s vocabulary."""
    from transformers import T5Config

    return T5Config(vocab_size=len(tokenizer), d_model=d_model, d_ff=37, d_kv=8, num_layers=2, num_heads=4,
                    relative_attention_num_buckets=8, pad_token_id=tokenizer.pad_token_id,
                    eos_token_id=tokenizer.eos_token_id, decoder_start_token_id=tokenizer.pad_token_id)


def make_tiny_sd3_pipeline(
    path: str | os.PathLike[str],
    *,
    seed: int = 0,
    with_t5: bool = True,
    transformer_config: Mapping[str, Any] | None = None,
    max_length: int = 77,
) -> Path:
    """Write a tiny random SD3 pipeline folder at ``path`` and return the path.

    ``with_t5=False`` leaves out ``text_encoder_3``/``tokenizer_3`` (the pipeline then feeds zeros for the T5
    tokens); ``transformer_config`` overrides entries of :data:`TINY_SD3_TRANSFORMER` (e.g. SD3.5's
    ``dual_attention_layers`` and ``qk_norm``); ``max_length`` is the CLIP tokenizers' length.
    """
    from diffusers import (AutoencoderKL, FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel,
                           StableDiffusion3Pipeline)
    from transformers import CLIPTextModelWithProjection, T5EncoderModel

    config = {**TINY_SD3_TRANSFORMER, **(transformer_config or {})}
    torch.manual_seed(seed)
    transformer = SD3Transformer2DModel(**config)
    tokenizer, tokenizer_2 = tiny_clip_tokenizer(max_length), tiny_clip_tokenizer(max_length)
    text_encoder = CLIPTextModelWithProjection(tiny_clip_config(tokenizer, _CLIP_WIDTHS[0], _CLIP_WIDTHS[0]))
    text_encoder_2 = CLIPTextModelWithProjection(tiny_clip_config(tokenizer_2, _CLIP_WIDTHS[1], _CLIP_WIDTHS[1]))
    tokenizer_3 = tiny_t5_tokenizer() if with_t5 else None
    text_encoder_3 = T5EncoderModel(tiny_t5_config(tokenizer_3, config["joint_attention_dim"])) if with_t5 else None
    vae = AutoencoderKL(in_channels=3, out_channels=3, down_block_types=("DownEncoderBlock2D",) * 2,
                        up_block_types=("UpDecoderBlock2D",) * 2, block_out_channels=(8, 16), layers_per_block=1,
                        latent_channels=config["in_channels"], norm_num_groups=8, sample_size=16,
                        use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609, scaling_factor=1.5035)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=vae,
        text_encoder=text_encoder, tokenizer=tokenizer, text_encoder_2=text_encoder_2, tokenizer_2=tokenizer_2,
        text_encoder_3=text_encoder_3, tokenizer_3=tokenizer_3,
    )
    out = Path(path)
    pipe.save_pretrained(out)
    return out
