"""aMUSEd (``AmusedPipeline``: VQModel, UVit2DModel, CLIPTextModelWithProjection) as a masked-token scorer.

This is the MUSE-class classifier, the non-autoregressive sibling of Parti: a sample of an image masks some of
its VQ codes, and class ``k``'s error is the cross-entropy of the masked codes given the rest and the class
prompt, in nats per masked token, from the transformer's conditional logits (no guidance). All classes see the
same masks (paired), so successive elimination prunes classes as it does for diffusion.

A sample is a masking ratio from the model's own masking schedule plus a mask pattern. The engine's timestep
index ``i`` (of ``num_levels``) is the level ``s = (i + 0.5) / num_levels``, and the masking ratio is the
scheduler's ``masking_schedule`` there, rising with ``s`` as masking rises with AmusedScheduler's timestep:
``cos(pi/2 (1 - s))`` for "cosine", ``s`` for "linear". A uniform level is the training recipe's ratio
(train_amused.py draws ``t ~ U(0, 1)`` and masks ``cos(pi/2 t)``), and low levels mask little, as low timesteps
noise little in diffusion, so the methods' timestep grids and weights keep their meaning. The pattern follows
the training recipe too: exactly ``round(ratio * n_tokens)`` tokens (at least one), a uniformly random subset
drawn by :func:`genfast.token_masks` from ``(seed, image key, sample index)``, rather than AmusedScheduler's
independent coin flips in ``add_noise``, which can mask nothing and leave a sample without an error.

Conditioning follows ``AmusedPipeline.__call__``: the CLIP tokenizer pads to its ``model_max_length``; the text
encoder's ``text_embeds`` (pooled and projected) are ``pooled_text_emb`` and its penultimate hidden states
(``hidden_states[-2]``) are ``encoder_hidden_states``; ``micro_conds`` are ``[width, height, crop_coord[0],
crop_coord[1], aesthetic_score]`` with width = height = ``resolution``, crop ``(0, 0)`` and aesthetic score 6 by
default; masked codes are the scheduler's ``mask_token_id``. Unlike the pipeline, a prompt longer than the
tokenizer's context is an error, not cut: cutting it could drop the class name. Images go to the VQ tokenizer in
[0, 1], as the pipeline's image processor (``do_normalize=False``) and the training script feed it, and it runs
in float32 whatever ``dtype`` (a code is an argmin that half precision can flip); the codes are
``vqvae.quantize(vqvae.encode(x).latents)`` indices, as the img2img pipeline and the training script take them.
"""
from __future__ import annotations

import math
import os
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from genfast.models.base import Scorer, check_class_names, format_prompt, resolve_device_dtype
from genfast.ops.token_masks import masked_counts, token_masks, token_masks_rows

_COMPONENTS = ("vqvae", "tokenizer", "text_encoder", "transformer", "scheduler")
_TEXT_BATCH = 64
_IMAGE_BATCH = 16


class AmusedAdapter(Scorer):
    """A diffusers aMUSEd pipeline folder (or hub id) as a masked-token likelihood scorer.

    Options: ``resolution`` (default: the transformer's sample_size times the VQ downscaling, as the pipeline's
    default height), ``micro_conditioning_aesthetic_score`` (6) and ``micro_conditioning_crop_coord`` ((0, 0)),
    the pipeline's defaults; ``num_levels`` (1000), how finely the masking ratio is resolved; ``device`` and
    ``dtype``.
    """

    def __init__(self, model: str | os.PathLike[str], *, device: str | torch.device | None = None,
                 dtype: torch.dtype | str | None = None, resolution: int | None = None,
                 micro_conditioning_aesthetic_score: int = 6,
                 micro_conditioning_crop_coord: tuple[int, int] = (0, 0), num_levels: int = 1000) -> None:
        from diffusers import AmusedScheduler, UVit2DModel, VQModel
        from transformers import CLIPTextModelWithProjection, CLIPTokenizer

        location = os.fspath(model)
        self.name = location
        self.device, self.dtype = resolve_device_dtype(device, dtype)
        local = Path(location)
        if local.is_dir():
            missing = [c for c in _COMPONENTS if not (local / c).is_dir()]
            if missing:
                raise ValueError(f"{location}: not an aMUSEd pipeline folder (missing {', '.join(missing)})")
        try:
            load = {"torch_dtype": self.dtype, "low_cpu_mem_usage": False}
            transformer = UVit2DModel.from_pretrained(location, subfolder="transformer", **load)
            vqvae = VQModel.from_pretrained(location, subfolder="vqvae", torch_dtype=torch.float32,
                                            low_cpu_mem_usage=False)
            text_encoder = CLIPTextModelWithProjection.from_pretrained(location, subfolder="text_encoder",
                                                                       dtype=self.dtype)
            self.tokenizer = CLIPTokenizer.from_pretrained(location, subfolder="tokenizer")
            scheduler = AmusedScheduler.from_pretrained(location, subfolder="scheduler")
        except (OSError, ValueError, KeyError, RuntimeError, TypeError) as exc:
            raise ValueError(f"{location}: cannot load the aMUSEd pipeline ({exc})") from exc
        self.transformer = transformer.to(self.device).eval()
        self.vqvae = vqvae.to(self.device).eval()
        self.text_encoder = text_encoder.to(self.device).eval()
        self.masking_schedule = scheduler.config.masking_schedule
        if self.masking_schedule not in ("cosine", "linear"):
            raise ValueError(f"{location}/scheduler: masking_schedule must be 'cosine' or 'linear', got "
                             f"{self.masking_schedule!r}")
        self.mask_token_id = int(scheduler.config.mask_token_id)
        self.codebook_size = int(transformer.config.codebook_size)
        if int(vqvae.config.num_vq_embeddings) != self.codebook_size:
            raise ValueError(f"{location}: the VQ model has {vqvae.config.num_vq_embeddings} codes but the "
                             f"transformer predicts {self.codebook_size}")
        if not self.codebook_size <= self.mask_token_id < transformer.config.vocab_size:
            raise ValueError(f"{location}/scheduler: mask_token_id {self.mask_token_id} must be outside the codebook "
                             f"and inside the transformer's vocabulary [{self.codebook_size}, "
                             f"{transformer.config.vocab_size})")
        if isinstance(num_levels, bool) or not isinstance(num_levels, int) or num_levels < 1:
            raise ValueError(f"num_levels must be a positive int, got {num_levels!r}")
        self.vae_scale_factor = 2 ** (len(vqvae.config.block_out_channels) - 1)
        multiple = self.vae_scale_factor * (2 if transformer.config.downsample else 1)
        size = resolution if resolution is not None else transformer.config.sample_size * self.vae_scale_factor
        if isinstance(size, bool) or not isinstance(size, int) or size <= 0 or size % multiple:
            halves = ", and the transformer halves the code grid" if transformer.config.downsample else ""
            raise ValueError(f"resolution must be a positive multiple of {multiple} (the VQ tokenizer downsamples by "
                             f"{self.vae_scale_factor}{halves}), got {size!r}")
        self.image_size, self.image_channels = size, 3
        self.grid = size // self.vae_scale_factor
        self.latent_shape = (self.grid * self.grid,)
        crop = tuple(micro_conditioning_crop_coord)
        if len(crop) != 2:
            raise ValueError(f"micro_conditioning_crop_coord must be two numbers, got {crop!r}")
        self.micro = {"aesthetic_score": micro_conditioning_aesthetic_score, "crop_coord": crop}
        # [width, height, crop_coord[0], crop_coord[1], aesthetic_score], in the pipeline's order
        self.micro_conds = torch.tensor([[size, size, crop[0], crop[1], micro_conditioning_aesthetic_score]],
                                        device=self.device, dtype=self.dtype)
        self.num_levels = num_levels
        formula = "cos(pi/2 (1 - s))" if self.masking_schedule == "cosine" else "s"
        self.level_rule = (f"level i masks round(r * n_tokens) tokens (at least one), r = {formula}, "
                           f"s = (i + 0.5) / {num_levels} (the scheduler's {self.masking_schedule} masking schedule)")
        self.class_names = []
        self.pooled = torch.empty(0)
        self.text_states = torch.empty(0)

    def mask_ratios(self, levels: torch.Tensor) -> torch.Tensor:
        """The masking ratio of levels (int64), float64 on their device."""
        s = (levels.to(torch.float64) + 0.5) / self.num_levels
        return torch.cos(math.pi / 2 * (1.0 - s)) if self.masking_schedule == "cosine" else s

    @torch.no_grad()
    def encode_classes(self, class_names: Sequence[str], prompt: str) -> None:
        """The pooled projected text embedding and the penultimate hidden states of every class prompt."""
        names = check_class_names(class_names)
        prompts = [format_prompt(prompt, name) for name in names]
        limit = self.tokenizer.model_max_length
        for name, text in zip(names, prompts):
            length = len(self.tokenizer(text).input_ids)
            if length > limit:
                raise ValueError(f"class {name!r}: the prompt takes {length} tokens, more than the text encoder's "
                                 f"{limit}")
        pooled, states = [], []
        for start in range(0, len(prompts), _TEXT_BATCH):
            ids = self.tokenizer(prompts[start : start + _TEXT_BATCH], padding="max_length", max_length=limit,
                                 truncation=True, return_tensors="pt").input_ids.to(self.device)
            out = self.text_encoder(ids, return_dict=True, output_hidden_states=True)
            pooled.append(out.text_embeds)
            states.append(out.hidden_states[-2])
        self.pooled, self.text_states = torch.cat(pooled), torch.cat(states)
        self.class_names = names

    @torch.no_grad()
    def encode_images(self, pixels: torch.Tensor) -> torch.Tensor:
        """The VQ codes of every image, int64 ``[N, n_tokens]`` in raster order."""
        self.check_pixels(pixels)
        chunks = []
        for i in range(0, pixels.shape[0], _IMAGE_BATCH):
            x = (pixels[i : i + _IMAGE_BATCH].to(self.device, torch.float32) + 1.0) / 2.0
            chunks.append(self.vqvae.quantize(self.vqvae.encode(x).latents)[2][2].reshape(x.shape[0], -1))
        if not chunks:
            return torch.empty(0, *self.latent_shape, dtype=torch.int64, device=self.device)
        return torch.cat(chunks)

    @torch.no_grad()
    def score(self, codes: torch.Tensor, t: torch.Tensor, sample_offsets: torch.Tensor, class_index: torch.Tensor,
              keys: torch.Tensor, samples: torch.Tensor, seed: int) -> torch.Tensor:
        """Cross-entropy (nats per masked token) of every class row's masked codes, float32 ``[B]``; the masks
        are drawn once per sample row and shared by its classes."""
        from genfast.models.attention import rows_of_samples

        codes, t, offsets, classes, keys, samples = self.check_score_rows(codes, t, sample_offsets, class_index, keys,
                                                                         samples)
        rows, n = classes.shape[0], codes.shape[1]
        if not rows:
            return torch.empty(0, device=self.device)
        masks = token_masks_rows(keys, samples, seed, n, masked_counts(self.mask_ratios(t), n))
        sample_of_row = rows_of_samples(offsets, rows)
        inputs = torch.where(masks, self.mask_token_id, codes).index_select(0, sample_of_row)
        logits = self.transformer(inputs.reshape(rows, self.grid, self.grid),
                                  encoder_hidden_states=self.text_states.index_select(0, classes),
                                  pooled_text_emb=self.pooled.index_select(0, classes),
                                  micro_conds=self.micro_conds.expand(rows, -1)).float().reshape(rows, -1, n)
        targets = codes.index_select(0, sample_of_row).unsqueeze(1)
        nll = torch.logsumexp(logits, dim=1) - logits.gather(1, targets).squeeze(1)  # [rows, n]
        masked = masks.index_select(0, sample_of_row)
        return (nll * masked).sum(dim=1) / masked.sum(dim=1)

    def sample_details(self, seed: int, key: int, samples: np.ndarray, levels: np.ndarray) -> dict[str, np.ndarray]:
        """Each sample's mask (bool ``[n, n_tokens]``, True = masked) and masking ratio (float64 ``[n]``)."""
        ratios = self.mask_ratios(torch.from_numpy(np.asarray(levels, dtype=np.int64)))
        masks = token_masks(seed, key, torch.from_numpy(np.asarray(samples, dtype=np.int64)), self.latent_shape[0],
                            ratios)
        return {"masks": masks.numpy(), "mask_ratios": ratios.numpy()}

    @property
    def disabled_reasons(self) -> dict[str, str]:
        """Why the class-sharing savings of the UNet adapters do not apply to aMUSEd's transformer."""
        return {"share_prefix": "the pooled text embedding scales and shifts the first ConvNeXt block, so only the "
                                "code embedding is class-free",
                "cache_class_kv": "not implemented: UVit2DModel projects the text states inside its forward"}

    def options(self) -> dict[str, Any]:
        """The conditioning and masking options in effect."""
        return {"resolution": self.image_size, "micro_conditioning_aesthetic_score": self.micro["aesthetic_score"],
                "micro_conditioning_crop_coord": list(self.micro["crop_coord"]),
                "masking_schedule": self.masking_schedule, "mask_token_id": self.mask_token_id}

    def describe(self) -> dict[str, Any]:
        """Model summary plus the options in effect."""
        return {**super().describe(), "options": self.options()}
