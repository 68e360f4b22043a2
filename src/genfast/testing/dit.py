"""A tiny random DiT pipeline folder (``DiTPipeline``: DiTTransformer2DModel, VAE, DPMSolver scheduler), written by
``DiTPipeline.save_pretrained`` with the ``id2label`` the published DiT folders keep in ``model_index.json``.

The transformer has DiT's structure in miniature: 2x2 patches of 4 latent channels, adaLN-Zero label conditioning
(one embedding per label) and learned sigmas (8 output channels); the VAE downscales by 2. Deterministic in ``seed``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Mapping

import torch

TINY_DIT_LABELS: dict[int, str] = {0: "tabby, tabby cat", 1: "golden retriever", 2: "sports car, sport car",
                                   3: "airliner"}
"""The default ``id2label``: ImageNet-style labels, comma-separated synonyms included."""


def make_tiny_dit_pipeline(path: str | os.PathLike[str], *, seed: int = 0,
                           id2label: Mapping[int, str] = TINY_DIT_LABELS) -> Path:
    """Write a tiny random DiT pipeline folder with one label embedding per ``id2label`` entry at ``path`` and
    return the path."""
    from diffusers import AutoencoderKL, DiTPipeline, DiTTransformer2DModel, DPMSolverMultistepScheduler

    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    transformer = DiTTransformer2DModel(sample_size=8, num_layers=2, patch_size=2, attention_head_dim=8,
                                        num_attention_heads=2, in_channels=4, out_channels=8,
                                        num_embeds_ada_norm=len(id2label))
    vae = AutoencoderKL(block_out_channels=(8, 16), latent_channels=4, norm_num_groups=8,
                        down_block_types=("DownEncoderBlock2D",) * 2, up_block_types=("UpDecoderBlock2D",) * 2)
    labels = {int(k): v for k, v in id2label.items()}
    DiTPipeline(transformer=transformer, vae=vae, scheduler=DPMSolverMultistepScheduler(),
                id2label=labels).save_pretrained(out)
    # save_pretrained does not write id2label; the published DiT folders keep it in model_index.json
    index = json.loads((out / "model_index.json").read_text())
    (out / "model_index.json").write_text(json.dumps({**index, "id2label": {str(k): v for k, v in labels.items()}}))
    return out
