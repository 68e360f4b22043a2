"""A diffusers ``UNet2DConditionModel`` run on sample rows and class rows, with the exact class-sharing savings.

- ``share_prefix``: everything before the first cross-attention (conv_in, the time embedding, the first ResNet of
  the first down block, the first transformer's norm/proj_in, its first block's self-attention, norm2 and the
  cross-attention query) runs once per sample row; the first cross-attention reads the shared query.
- ``cache_class_kv``: every cross-attention layer's keys/values are projected once per class by
  :meth:`ClassConditionedUNet.set_conditioning` and read by class index.

What the UNet derives from the class before its blocks is computed once per class by ``set_conditioning``, in
every mode but the plain one: the addition embedding (``addition_embed_type`` "text", as in DeepFloyd IF, or
"text_time", as in SDXL), added to each row's time embedding, and the text projection (``encoder_hid_proj``, IF's
"text_proj"), whose output is what cross-attention and the K/V cache read. A text attention mask becomes a
per-class bias on the text keys. Both Transformer2D blocks (SD, SDXL) and added-KV ``SimpleCrossAttn`` blocks (IF)
are class-indexed; the conv_in and time embedding, class-free, run once per sample row.

:meth:`ClassConditionedUNet.forward_plain` is the untouched diffusers forward with the conditioning repeated
per row (the baseline); :meth:`ClassConditionedUNet.forward` applies the options. Layers outside these block
families switch the savings off, with the reason logged and kept in ``disabled_reasons``.
"""
from __future__ import annotations

import logging
from typing import Any

import torch

from genfast.models.attention import (
    ClassAddedKVAttnProcessor,
    ClassCrossAttnProcessor,
    ClassFreeAttnProcessor,
    added_kv_unsupported_reason,
    resolve_attention,
    rows_of_samples,
    unsupported_reason,
)

logger = logging.getLogger("genfast.models")

_BLOCKS = {
    "CrossAttnDownBlock2D",
    "DownBlock2D",
    "UNetMidBlock2DCrossAttn",
    "UNetMidBlock2D",
    "CrossAttnUpBlock2D",
    "UpBlock2D",
    # the added-KV family of DeepFloyd IF
    "SimpleCrossAttnDownBlock2D",
    "ResnetDownsampleBlock2D",
    "UNetMidBlock2DSimpleCrossAttn",
    "SimpleCrossAttnUpBlock2D",
    "ResnetUpsampleBlock2D",
}
_ADDITION_EMBEDS = (None, "text", "text_time")
"""``addition_embed_type`` values computed from the class conditioning alone; the others need image embeddings."""


def _check_unet_supported(unet: Any, source: str) -> None:
    """Raise for UNet features that need inputs a class-conditioned classifier does not have."""
    if unet.class_embedding is not None:
        raise ValueError(
            f"{source}: UNet2DConditionModel with class embeddings (class_embed_type="
            f"{unet.config.class_embed_type!r}) is not supported"
        )
    if unet.config.addition_embed_type not in _ADDITION_EMBEDS:
        raise ValueError(f"{source}: addition_embed_type={unet.config.addition_embed_type!r} needs image embeddings, "
                         f"which a classifier does not have (supported: {_ADDITION_EMBEDS})")
    if unet.encoder_hid_proj is not None and unet.config.encoder_hid_dim_type != "text_proj":
        raise ValueError(f"{source}: encoder_hid_dim_type={unet.config.encoder_hid_dim_type!r} needs image "
                         "embeddings, which a classifier does not have (supported: 'text_proj')")


def _transformer_blocker(transformer: Any, block: str) -> str | None:
    """Why the cross-attention of a Transformer2DModel cannot be class-indexed, or None when it can."""
    from diffusers.models.attention import BasicTransformerBlock
    from diffusers.models.transformers.transformer_2d import Transformer2DModel

    if type(transformer) is not Transformer2DModel or not transformer.is_input_continuous:
        return f"{type(transformer).__name__} in {block} is not a continuous Transformer2DModel"
    for layer in transformer.transformer_blocks:
        if type(layer) is not BasicTransformerBlock or layer.norm_type != "layer_norm":
            return f"transformer block {type(layer).__name__} (norm_type {layer.norm_type!r}) is not supported"
        if layer.only_cross_attention or layer.pos_embed is not None or hasattr(layer, "fuser"):
            return "transformer blocks with only_cross_attention, positional embeddings or GLIGEN"
        if layer.attn2 is None:
            return "a transformer block without cross-attention"
        reason = unsupported_reason(layer.attn2)
        if reason is not None:
            return reason
    return None


FAST_FORWARD_DIFFUSERS: tuple[str, ...] = ("0.42",)
"""The diffusers releases (major.minor) whose ``UNet2DConditionModel.forward`` :meth:`ClassConditionedUNet._forward_rows`
follows, as checked against the plain forward by tests/test_models_unet.py; under any other release the savings
are off, so a changed upstream forward can cost speed but never give a wrong answer."""


def fast_forward_blocker() -> str | None:
    """Why the class-sharing UNet forward cannot run with the installed diffusers, or None when it can."""
    import diffusers

    release = ".".join(diffusers.__version__.split(".")[:2])
    if release in FAST_FORWARD_DIFFUSERS:
        return None
    return (f"diffusers {diffusers.__version__} is installed, but the class-sharing UNet forward follows diffusers "
            f"{', '.join(FAST_FORWARD_DIFFUSERS)}: the plain diffusers forward runs instead (same results, without "
            f"the savings)")


def _optimisation_blocker(unet: Any) -> str | None:
    """Why class-indexed cross-attention cannot replace this UNet's cross-attention, or None when it can."""
    if (reason := fast_forward_blocker()) is not None:
        return reason
    blocks = [*unet.down_blocks, *([unet.mid_block] if unet.mid_block is not None else []), *unet.up_blocks]
    for block in blocks:
        name = type(block).__name__
        if name not in _BLOCKS:
            return f"block type {name} is outside the SD / SDXL / DeepFloyd IF block families"
        for layer in getattr(block, "attentions", []):
            simple = name.startswith(("SimpleCrossAttn", "UNetMidBlock2DSimpleCrossAttn"))
            reason = added_kv_unsupported_reason(layer) if simple else _transformer_blocker(layer, name)
            if reason is not None:
                return reason
    return None


def _prefix_blocker(unet: Any) -> str | None:
    """Why the first down block cannot be split at its first cross-attention, or None when it can."""
    if unet.config.addition_embed_type is not None:
        return (f"the class's text enters the time embedding (addition_embed_type="
                f"{unet.config.addition_embed_type!r}), so no layer before the first cross-attention is class-free")
    first = unet.down_blocks[0]
    if not getattr(first, "has_cross_attention", False) or type(first).__name__ != "CrossAttnDownBlock2D":
        return f"the first down block ({type(first).__name__}) has no cross-attention"
    if len(first.resnets) != len(first.attentions):
        return "the first down block pairs resnets and attentions unevenly"
    return None


def _original_processor(attn: Any) -> Any:
    """The processor diffusers gave ``attn``: the one genfast wrapped if a runner over this UNet came before."""
    processor = attn.processor
    return processor.original if isinstance(processor, ClassFreeAttnProcessor) else processor


class ClassConditionedUNet:
    """Runs a UNet2DConditionModel on ``(z_t [S], t [S], sample_offsets [S+1], class_index [B])`` rows."""

    def __init__(
        self,
        unet: Any,
        *,
        share_prefix: bool = True,
        cache_class_kv: bool = True,
        attention: str = "auto",
        source: str = "model",
    ) -> None:
        _check_unet_supported(unet, source)
        self.unet = unet
        self.disabled_reasons: dict[str, str] = {}
        self.backend = resolve_attention(attention, unet.device)
        blocker = _optimisation_blocker(unet)
        if blocker is not None:
            for option, enabled in (("share_prefix", share_prefix), ("cache_class_kv", cache_class_kv)):
                if enabled:
                    self._disable(option, blocker)
            if self.backend != "sdpa":
                self._disable("attention", f"{blocker}; using the diffusers attention processors")
            share_prefix = cache_class_kv = False
            self.backend = "sdpa"
        if share_prefix and (reason := _prefix_blocker(unet)) is not None:
            self._disable("share_prefix", reason)
            share_prefix = False
        self.share_prefix = share_prefix
        self.cache_class_kv = cache_class_kv
        self.processors: list[ClassCrossAttnProcessor] = []
        self._attention_layers: list[Any] = []
        if blocker is None:
            self._install_processors()
        self.conditioning: torch.Tensor | None = None  # the states as the UNet takes them (plain forward)
        self.states: torch.Tensor | None = None  # after encoder_hid_proj: what cross-attention reads
        self.aug: torch.Tensor | None = None  # the addition embedding of every class [C, time_embed_dim]
        self.per_class: dict[str, torch.Tensor] = {}
        self.added: dict[str, torch.Tensor] = {}

    def _disable(self, option: str, reason: str) -> None:
        self.disabled_reasons[option] = reason
        logger.warning("%s is off for this model: %s", option, reason)

    def _install_processors(self) -> None:
        from diffusers.models.attention import BasicTransformerBlock

        layers = [(m.attn2, ClassCrossAttnProcessor) for m in self.unet.modules()
                  if isinstance(m, BasicTransformerBlock)]
        for block in (*self.unet.down_blocks, self.unet.mid_block, *self.unet.up_blocks):
            if type(block).__name__ in ("SimpleCrossAttnDownBlock2D", "UNetMidBlock2DSimpleCrossAttn",
                                        "SimpleCrossAttnUpBlock2D"):
                layers += [(attn, ClassAddedKVAttnProcessor) for attn in block.attentions]
        added_kv = any(kind is ClassAddedKVAttnProcessor for _, kind in layers)
        if added_kv and self.backend == "triton":
            self._disable("attention", "the added-KV attention layers (class text keys followed by the image's own "
                          "keys) run on sdpa: the triton kernels attend to class keys only")
            if all(kind is ClassAddedKVAttnProcessor for _, kind in layers):
                self.backend = "sdpa"
        for attn, kind in layers:
            backend = "sdpa" if kind is ClassAddedKVAttnProcessor and self.backend == "triton" else self.backend
            processor = kind(_original_processor(attn), backend)
            attn.set_processor(processor)
            self.processors.append(processor)
            self._attention_layers.append(attn)
        from diffusers.models.attention_processor import XFormersAttnProcessor

        for module in self.unet.modules():  # self-attention gets the class index too, and ignores it
            if isinstance(module, BasicTransformerBlock):
                original = XFormersAttnProcessor() if self.backend == "xformers" else _original_processor(module.attn1)
                module.attn1.set_processor(ClassFreeAttnProcessor(original))

    @property
    def uses_plain_forward(self) -> bool:
        """True when :meth:`forward` is the plain diffusers forward (no saving on, default attention)."""
        return not self.share_prefix and not self.cache_class_kv and self.backend == "sdpa"

    def options(self) -> dict[str, Any]:
        """The options in effect and why any requested one is off."""
        return {
            "share_prefix": self.share_prefix,
            "cache_class_kv": self.cache_class_kv,
            "attention": self.backend,
            "disabled": dict(self.disabled_reasons),
        }

    @torch.no_grad()
    def set_conditioning(self, conditioning: torch.Tensor | dict[str, Any]) -> None:
        """Keep the per-class conditioning, what the UNet derives from it before its blocks and, with
        ``cache_class_kv``, every layer's K/V.

        ``conditioning`` is the cross-attention states ``[C, L, Dc]``, or a dict with those as
        ``encoder_hidden_states``, an optional ``encoder_attention_mask [C, L]`` (1 keep, 0 drop) and optional
        ``added_cond_kwargs`` (name -> per-class ``[C, ...]`` tensors, e.g. SDXL's ``text_embeds`` and ``time_ids``).
        The addition embedding and the ``encoder_hid_proj`` text projection are computed here once per class; the
        mask becomes the bias ``(1 - mask) * -10000`` on every class's text keys, as the diffusers forward makes it.
        """
        structure = conditioning if isinstance(conditioning, dict) else {"encoder_hidden_states": conditioning}
        unknown = set(structure) - {"encoder_hidden_states", "encoder_attention_mask", "added_cond_kwargs"}
        if unknown or "encoder_hidden_states" not in structure:
            raise ValueError(f"conditioning needs encoder_hidden_states and may not have {sorted(unknown)}")
        unet = self.unet
        device, dtype = unet.device, unet.dtype
        self.conditioning = structure["encoder_hidden_states"].to(device=device, dtype=dtype)
        mask = structure.get("encoder_attention_mask")
        self.per_class = {} if mask is None else {"encoder_attention_mask": mask.to(device)}
        self.added = {name: value.to(device=device, dtype=dtype if value.is_floating_point() else value.dtype)
                      for name, value in (structure.get("added_cond_kwargs") or {}).items()}
        # the time embedding's dtype is the UNet's: get_aug_embed only reads it from `emb`
        self.aug = unet.get_aug_embed(emb=torch.empty(0, device=device, dtype=dtype),
                                      encoder_hidden_states=self.conditioning, added_cond_kwargs=self.added)
        self.states = unet.process_encoder_hidden_states(self.conditioning, self.added)
        key_bias = None if mask is None else (1 - mask.to(device, dtype)) * -10000.0
        if mask is not None and self.backend != "sdpa":
            self._disable("attention", f"the text has an attention mask, which the {self.backend} backend does not "
                          "take; using sdpa")
            self.backend = "sdpa"
        for processor, attn in zip(self.processors, self._attention_layers):
            processor.key_bias = key_bias
            if mask is not None:
                processor.backend = "sdpa"
            if self.cache_class_kv:
                processor.cache(attn, self.states)
            else:
                processor.kv = None

    def _row_inputs(self, class_index: torch.Tensor) -> dict[str, Any]:
        """The diffusers UNet's keyword inputs for class rows: the states, the mask and the added inputs."""
        if self.conditioning is None:
            raise RuntimeError("no class conditioning: call encode_classes first")
        inputs: dict[str, Any] = {"encoder_hidden_states": self.conditioning.index_select(0, class_index)}
        inputs.update({name: value.index_select(0, class_index) for name, value in self.per_class.items()})
        if self.added:
            inputs["added_cond_kwargs"] = {n: v.index_select(0, class_index) for n, v in self.added.items()}
        return inputs

    @torch.no_grad()
    def forward_plain(
        self, z_t: torch.Tensor, t: torch.Tensor, sample_offsets: torch.Tensor, class_index: torch.Tensor
    ) -> torch.Tensor:
        """The diffusers forward on every class row, the conditioning repeated per row: ``[B, *latent]``."""
        rows = rows_of_samples(sample_offsets, class_index.shape[0])
        return self.unet(z_t.index_select(0, rows), t.index_select(0, rows), **self._row_inputs(class_index)).sample

    @torch.no_grad()
    def forward(
        self, z_t: torch.Tensor, t: torch.Tensor, sample_offsets: torch.Tensor, class_index: torch.Tensor
    ) -> torch.Tensor:
        """The same prediction as :meth:`forward_plain`, computed with the options in effect."""
        if self.uses_plain_forward:
            return self.forward_plain(z_t, t, sample_offsets, class_index)
        if self.states is None:
            raise RuntimeError("no class conditioning: call encode_classes first")
        states = None if self.cache_class_kv else self.states.index_select(0, class_index)
        return self._forward_rows(z_t, t, sample_offsets, class_index, states)

    def _forward_rows(
        self,
        z_t: torch.Tensor,
        t: torch.Tensor,
        sample_offsets: torch.Tensor,
        class_index: torch.Tensor,
        conditioning: torch.Tensor | None,
    ) -> torch.Tensor:
        """UNet2DConditionModel.forward (diffusers 0.42) on class rows: conv_in and the time embedding once per
        sample row, the per-class addition embedding added per class row, cross-attention by class index (passed
        to every processor as ``cross_attention_kwargs``), and with ``share_prefix`` the first down block up to its
        first cross-attention once per sample row.
        ``conditioning`` is the projected states per class row, or None when the K/V are cached."""
        unet = self.unet
        by_class = {"class_index": class_index}
        rows = rows_of_samples(sample_offsets, class_index.shape[0])
        up_factor = 2**unet.num_upsamplers
        forward_upsample_size = any(dim % up_factor != 0 for dim in z_t.shape[-2:])
        sample = 2 * z_t - 1.0 if unet.config.center_input_sample else z_t

        emb = unet.time_embedding(unet.get_time_embed(sample=sample, timestep=t), None)
        hidden = unet.conv_in(sample)
        down_blocks = list(unet.down_blocks)
        if self.share_prefix:  # no addition embedding then (_prefix_blocker)
            if unet.time_embed_act is not None:
                emb = unet.time_embed_act(emb)
            residuals: list[torch.Tensor] = [hidden.index_select(0, rows)]
            first = down_blocks.pop(0)
            hidden = first.resnets[0](hidden, emb)
            emb = emb.index_select(0, rows)
            hidden = self._first_transformer(first.attentions[0], hidden, rows, sample_offsets, class_index,
                                             conditioning)
            residuals.append(hidden)
            for resnet, transformer in zip(first.resnets[1:], first.attentions[1:]):
                hidden = resnet(hidden, emb)
                hidden = transformer(hidden, encoder_hidden_states=conditioning, cross_attention_kwargs=by_class,
                                     return_dict=False)[0]
                residuals.append(hidden)
            if first.downsamplers is not None:
                for downsampler in first.downsamplers:
                    hidden = downsampler(hidden)
                residuals.append(hidden)
        else:
            emb = emb.index_select(0, rows)
            if self.aug is not None:
                emb = emb + self.aug.index_select(0, class_index)
            if unet.time_embed_act is not None:
                emb = unet.time_embed_act(emb)
            hidden = hidden.index_select(0, rows)
            residuals = [hidden]

        for block in down_blocks:
            if getattr(block, "has_cross_attention", False):
                hidden, block_residuals = block(hidden_states=hidden, temb=emb, encoder_hidden_states=conditioning,
                                                cross_attention_kwargs=by_class)
            else:
                hidden, block_residuals = block(hidden_states=hidden, temb=emb)
            residuals.extend(block_residuals)

        if unet.mid_block is not None:
            if getattr(unet.mid_block, "has_cross_attention", False):
                hidden = unet.mid_block(hidden, emb, encoder_hidden_states=conditioning,
                                        cross_attention_kwargs=by_class)
            else:
                hidden = unet.mid_block(hidden, emb)

        upsample_size = None
        for i, block in enumerate(unet.up_blocks):
            is_final_block = i == len(unet.up_blocks) - 1
            block_residuals = tuple(residuals[-len(block.resnets) :])
            residuals = residuals[: -len(block.resnets)]
            if not is_final_block and forward_upsample_size:
                upsample_size = residuals[-1].shape[2:]
            kwargs: dict[str, Any] = (
                {"encoder_hidden_states": conditioning, "cross_attention_kwargs": by_class}
                if getattr(block, "has_cross_attention", False) else {}
            )
            hidden = block(
                hidden_states=hidden,
                temb=emb,
                res_hidden_states_tuple=block_residuals,
                upsample_size=upsample_size,
                **kwargs,
            )

        if unet.conv_norm_out:
            hidden = unet.conv_act(unet.conv_norm_out(hidden))
        return unet.conv_out(hidden)

    def _first_transformer(
        self,
        transformer: Any,
        hidden: torch.Tensor,
        rows: torch.Tensor,
        sample_offsets: torch.Tensor,
        class_index: torch.Tensor,
        conditioning: torch.Tensor | None,
    ) -> torch.Tensor:
        """Transformer2DModel.forward whose first block runs per sample row up to the cross-attention query."""
        samples, _, height, width = hidden.shape
        residual = hidden
        hidden = transformer.norm(hidden)
        if not transformer.use_linear_projection:
            hidden = transformer.proj_in(hidden)
            inner_dim = hidden.shape[1]
            hidden = hidden.permute(0, 2, 3, 1).reshape(samples, height * width, inner_dim)
        else:
            inner_dim = hidden.shape[1]
            hidden = transformer.proj_in(hidden.permute(0, 2, 3, 1).reshape(samples, height * width, inner_dim))

        block = transformer.transformer_blocks[0]
        hidden = block.attn1(block.norm1(hidden), encoder_hidden_states=None, attention_mask=None) + hidden
        query = block.attn2.to_q(block.norm2(hidden))
        processor = block.attn2.processor
        shared = processor.attend(block.attn2, query, conditioning, class_index, sample_offsets)
        hidden = shared + hidden.index_select(0, rows)
        hidden = block.ff(block.norm3(hidden)) + hidden
        for block in transformer.transformer_blocks[1:]:
            hidden = block(hidden, encoder_hidden_states=conditioning,
                           cross_attention_kwargs={"class_index": class_index})

        batch = hidden.shape[0]
        if not transformer.use_linear_projection:
            hidden = hidden.reshape(batch, height, width, inner_dim).permute(0, 3, 1, 2).contiguous()
            hidden = transformer.proj_out(hidden)
        else:
            hidden = transformer.proj_out(hidden)
            hidden = hidden.reshape(batch, height, width, inner_dim).permute(0, 3, 1, 2).contiguous()
        return hidden + residual.index_select(0, rows)
