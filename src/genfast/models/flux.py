"""FLUX.1 (``FluxPipeline``): an MMDiT over 2x2-packed VAE latents, conditioned on T5 states and the pooled CLIP
output, trained with rectified flow (velocity ``eps - z0``), with a resolution-dependent schedule shift.

A class's conditioning is exactly what ``FluxPipeline.encode_prompt`` returns for its prompt (the same prompt to
both encoders): ``prompt_embeds`` (``max_sequence_length`` T5 states), ``pooled_prompt_embeds`` (CLIP's pooled
output) and the shared ``text_ids``. Latents stay unpacked ``[C, H/8, W/8]`` everywhere in genfast (noise,
``z_t``, errors): :meth:`FluxAdapter.denoise` packs each row's ``z_t`` with the pipeline's ``_pack_latents``,
runs the transformer on the packed tokens with the pipeline's ``_prepare_latent_image_ids`` positions, and
unpacks the prediction with ``_unpack_latents``; packing only reorders elements, so the error is the same in
either layout. The transformer takes ``timestep = sigma``: the pipeline passes the scheduler's timestep / 1000.
With ``use_dynamic_shifting`` (FLUX.1-dev) the sigmas are shifted by ``mu``, computed from the number of packed
image tokens by the pipeline's own ``calculate_shift``, as ``__call__`` does.
"""
from __future__ import annotations

import math
import os
from numbers import Real
from typing import Any

import torch

from genfast.models.flow_transformer import FlowTransformerAdapter


class FluxAdapter(FlowTransformerAdapter):
    """A diffusers FLUX.1 pipeline folder (or hub id) as a classifier.

    Options (the pipeline ``__call__`` defaults): ``max_sequence_length=512`` (T5 tokens); ``guidance_scale=3.5``,
    the guidance strength a guidance-distilled model (FLUX.1-dev, ``transformer.config.guidance_embeds``) takes
    as an input and was distilled to imitate: it is embedded like the timestep, there is no unconditional pass;
    a model without the guidance embedding (FLUX.1-schnell) ignores it, as the pipeline does, and ``describe()``
    reports None; ``resolution`` (default 1024, the pipeline's default; a multiple of 2x the VAE's downscaling).
    """

    pipeline_module = "diffusers.pipelines.flux.pipeline_flux"
    pipeline_class = "FluxPipeline"
    components = ("transformer", "vae", "text_encoder", "tokenizer", "text_encoder_2", "tokenizer_2", "scheduler")
    token_patch = 2  # the pipeline packs 2x2 latent pixels into one token

    def __init__(self, model: str | os.PathLike[str], *, device: str | torch.device | None = None,
                 dtype: torch.dtype | str | None = None, resolution: int | None = None,
                 max_sequence_length: int = 512, guidance_scale: float = 3.5) -> None:
        if isinstance(guidance_scale, bool) or not (isinstance(guidance_scale, Real) and math.isfinite(guidance_scale)):
            raise ValueError(f"guidance_scale must be a finite number, got {guidance_scale!r}")
        super().__init__(model, device=device, dtype=dtype, resolution=resolution,
                         max_sequence_length=max_sequence_length)
        self.guidance_scale = float(guidance_scale) if self.transformer.config.guidance_embeds else None
        self.guidance = (None if self.guidance_scale is None else
                         torch.full([1], self.guidance_scale, device=self.device, dtype=torch.float32))
        tokens = self.latent_shape[1] // self.token_patch
        self.img_ids = self.pipeline._prepare_latent_image_ids(1, tokens, tokens, self.device, self.dtype)
        self.text_ids: torch.Tensor | None = None

    @property
    def text_seq_len(self) -> int:
        """``max_sequence_length`` T5 tokens (CLIP enters only pooled)."""
        return self.max_sequence_length

    def _check_pipeline(self, location: str) -> None:
        config = self.transformer.config
        packed = 4 * self.latent_shape[0]
        if config.patch_size != 1 or config.in_channels != packed or (config.out_channels or packed) != packed:
            raise ValueError(f"{location}: the transformer (patch_size {config.patch_size}, in_channels "
                             f"{config.in_channels}, out_channels {config.out_channels}) does not take the 2x2-packed "
                             f"latents of this VAE ({self.latent_shape[0]} channels: patch_size 1, {packed} channels)")

    def _timestep_rule(self, num_train_timesteps: int) -> tuple[float, str]:
        scale = num_train_timesteps / 1000
        factor = "" if scale == 1 else f"{scale:g} * "
        return scale, f"timestep = {factor}sigma (FluxPipeline passes the scheduler's timestep / 1000)"

    def _encode_prompts(self, prompts: list[str]) -> dict[str, torch.Tensor]:
        """The pipeline's prompt embeddings; its ``text_ids`` (the same for every prompt) are kept once."""
        embeds, pooled, self.text_ids = self.pipeline.encode_prompt(
            prompt=prompts, prompt_2=None, device=self.device, max_sequence_length=self.max_sequence_length)
        return {"encoder_hidden_states": embeds, "pooled_projections": pooled}

    def _predict(self, z: torch.Tensor, timestep: torch.Tensor, conditioning: dict[str, torch.Tensor]) -> torch.Tensor:
        """Pack ``z``, run the transformer on the packed tokens, unpack its velocity to ``[B, *latent]``."""
        rows, channels, height, width = z.shape
        packed = self.pipeline._pack_latents(z, rows, channels, height, width)
        guidance = None if self.guidance is None else self.guidance.expand(rows)
        out = self.transformer(hidden_states=packed, timestep=timestep, guidance=guidance, txt_ids=self.text_ids,
                               img_ids=self.img_ids, return_dict=False, **conditioning)[0]
        return self.pipeline._unpack_latents(out, self.image_size, self.image_size, self.vae_scale_factor)

    def options(self) -> dict[str, Any]:
        """max_sequence_length and the guidance input (None for a model without guidance embedding)."""
        return {**super().options(), "guidance_scale": self.guidance_scale}
