"""A tiny random DeepFloyd IF stage I pipeline folder, written by ``IFPipeline.save_pretrained``.

The UNet has IF's layout in miniature (a ResNet first block, added-KV ``SimpleCrossAttn`` blocks with group-normed
text, scale-shift ResNets, a "text_proj" projection of the T5 states, the "text" addition embedding, 6 output
channels for the learned variance), a 2-layer T5 encoder over a locally built tokenizer, and IF's DDPM scheduler
(squaredcos_cap_v2, learned_range). No safety checker, feature extractor or watermarker. Deterministic in ``seed``.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from genfast.testing import tiny_t5_tokenizer

_T5_WIDTH = 24  # != cross_attention_dim, so the text projection is a real change of width

TINY_IF_UNET: dict[str, Any] = {
    "sample_size": 16,
    "in_channels": 3,
    "out_channels": 6,
    "block_out_channels": (16, 32),
    "layers_per_block": 1,
    "down_block_types": ("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
    "mid_block_type": "UNetMidBlock2DSimpleCrossAttn",
    "up_block_types": ("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
    "cross_attention_dim": 32,  # a multiple of the cross-attention group norm's 32 groups
    "encoder_hid_dim": _T5_WIDTH,
    "encoder_hid_dim_type": "text_proj",
    "attention_head_dim": 8,
    "addition_embed_type": "text",
    "addition_embed_type_num_heads": 2,
    "cross_attention_norm": "group_norm",
    "resnet_time_scale_shift": "scale_shift",
    "act_fn": "gelu",
    "norm_num_groups": 8,
}
"""The tiny IF stage I UNet config (IF's structure, diffusers' test sizes scaled down)."""


def make_tiny_if_pipeline(path: str | os.PathLike[str], *, seed: int = 0) -> Path:
    """Write a tiny random IF stage I pipeline folder at ``path`` and return the path."""
    from diffusers import DDPMScheduler, IFPipeline, UNet2DConditionModel
    from transformers import T5Config, T5EncoderModel

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    tokenizer = tiny_t5_tokenizer()
    text_encoder = T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=_T5_WIDTH, d_kv=6, d_ff=37, num_layers=2,
                                           num_heads=4, relative_attention_num_buckets=8, dropout_rate=0.0,
                                           pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id))
    scheduler = DDPMScheduler(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", beta_start=0.0001,
                              beta_end=0.02, thresholding=True, dynamic_thresholding_ratio=0.95, sample_max_value=1.0,
                              prediction_type="epsilon", variance_type="learned_range")
    pipe = IFPipeline(tokenizer=tokenizer, text_encoder=text_encoder, unet=UNet2DConditionModel(**TINY_IF_UNET),
                      scheduler=scheduler, safety_checker=None, feature_extractor=None, watermarker=None,
                      requires_safety_checker=False)
    pipe.save_pretrained(out)
    return out
