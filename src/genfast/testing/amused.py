"""A tiny random aMUSEd pipeline folder (``AmusedPipeline``: VQModel, UVit2DModel, CLIP text encoder with projection,
AmusedScheduler), written by the pipeline's own ``save_pretrained`` without a download.

The shapes follow diffusers' own aMUSEd test components, a little larger so that classes are told apart: a VQ
tokenizer that halves the resolution (16 pixels -> an 8x8 grid of codes from a 16-code book), a UViT that
down- and upsamples the grid around one transformer layer, a 2-layer CLIP text encoder over
:func:`genfast.testing.tiny_clip_tokenizer`, and the mask token as the transformer's last vocabulary entry, as
aMUSEd's training script and published folders have it.
"""
from __future__ import annotations

import os
from pathlib import Path

import torch

from genfast.testing import tiny_clip_tokenizer


def make_tiny_amused_pipeline(path: str | os.PathLike[str], *, seed: int = 0, masking_schedule: str = "cosine",
                              max_length: int = 77) -> Path:
    """Write a tiny random aMUSEd pipeline folder at ``path`` and return the path."""
    from diffusers import AmusedPipeline, AmusedScheduler, UVit2DModel, VQModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    codebook, vocab, text_hidden = 16, 24, 16
    transformer = UVit2DModel(hidden_size=16, cond_embed_dim=text_hidden, micro_cond_encode_dim=2,
                              micro_cond_embed_dim=10, encoder_hidden_size=text_hidden, vocab_size=vocab,
                              codebook_size=codebook, in_channels=8, block_out_channels=8, num_res_blocks=1,
                              downsample=True, upsample=True, block_num_heads=1, num_hidden_layers=1,
                              num_attention_heads=2, intermediate_size=16, sample_size=8)
    vqvae = VQModel(block_out_channels=[8, 8], down_block_types=["DownEncoderBlock2D"] * 2,
                    up_block_types=["UpDecoderBlock2D"] * 2, latent_channels=8, layers_per_block=1, norm_num_groups=8,
                    num_vq_embeddings=codebook, sample_size=16, mid_block_add_attention=False,
                    lookup_from_codebook=True)
    tokenizer = tiny_clip_tokenizer(max_length)
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=text_hidden, intermediate_size=32, num_attention_heads=2,
        num_hidden_layers=2, projection_dim=text_hidden, max_position_embeddings=max_length,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id))
    scheduler = AmusedScheduler(mask_token_id=vocab - 1, masking_schedule=masking_schedule)
    AmusedPipeline(vqvae=vqvae, tokenizer=tokenizer, text_encoder=text_encoder, transformer=transformer,
                   scheduler=scheduler).save_pretrained(out)
    return out
