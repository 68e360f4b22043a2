"""Class-indexed cross-attention: the text keys/values of every class are projected once, and each batch row
reads those of its class instead of carrying a copy of the prompt embeddings.

:class:`ClassCrossAttnProcessor` is a diffusers attention processor for the cross-attention (``attn2``) layers.
Called with the rows' ``class_index`` (which the UNet forward passes as ``cross_attention_kwargs``, and diffusers
hands on to every attention call), it computes ``out[b] = softmax(scale q[b] k[c(b)]^T) v[c(b)]`` with the chosen
backend; without one it hands the call to the processor it replaced, so the untouched diffusers forward stays
available as the baseline. No per-batch state is kept on the processors, so the forward is traceable
(``torch.compile(fullgraph=True)``).
:class:`ClassAddedKVAttnProcessor` does the same for diffusers' added-KV attention (the ``SimpleCrossAttn`` blocks
of DeepFloyd IF and UnCLIP): the class's text keys/values (``add_k_proj``/``add_v_proj``) are read by class index
and put before the row's own image keys/values, as ``AttnAddedKVProcessor2_0`` concatenates them.
:class:`ClassFreeAttnProcessor` wraps the self-attention (``attn1``) layers, which get the same kwargs, so that
they take the class index and ignore it.
A text attention mask becomes a per-class additive bias on the text keys (:attr:`ClassCrossAttnProcessor.key_bias`,
set once per class set), exactly as ``UNet2DConditionModel.forward`` turns ``encoder_attention_mask`` into one;
only the sdpa backend takes it.
"""
from __future__ import annotations

import functools
import importlib
from types import ModuleType
from typing import Any

import torch
import torch.nn.functional as F

ATTENTION_BACKENDS: tuple[str, ...] = ("auto", "sdpa", "xformers", "triton")
"""Values of the ``attention`` option: auto picks triton on CUDA when genfast.kernels can run, else sdpa."""


@functools.lru_cache(maxsize=1)
def triton_kernels() -> tuple[ModuleType | None, str | None]:
    """``(genfast.kernels, None)`` when its class cross-attention kernels can run here, else ``(None, reason)``;
    resolved once per process (the processors read it on every call), with the kernels' ops registered."""
    try:
        kernels = importlib.import_module("genfast.kernels")
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available", with its reason
        return None, f"genfast.kernels could not be imported ({exc})"
    missing = [n for n in ("class_cross_attention", "shared_query_cross_attention") if not hasattr(kernels, n)]
    if missing:
        return None, f"genfast.kernels does not provide {', '.join(missing)}"
    reason = kernels.unavailable_reason() if hasattr(kernels, "unavailable_reason") else None
    if reason:
        return None, reason
    kernels.ops()
    return kernels, None


def resolve_attention(attention: str, device: torch.device) -> str:
    """The concrete backend for the ``attention`` option on ``device``; a clear error when it cannot run."""
    if attention not in ATTENTION_BACKENDS:
        raise ValueError(f"attention must be one of {ATTENTION_BACKENDS}, got {attention!r}")
    if attention == "auto":
        return "triton" if device.type == "cuda" and triton_kernels()[0] is not None else "sdpa"
    if attention == "xformers":
        try:
            importlib.import_module("xformers.ops")
        except Exception as exc:  # noqa: BLE001
            raise ValueError(
                f"attention='xformers' needs the xformers package, which cannot be imported here ({exc}); "
                "install xformers or use attention='sdpa' or 'auto'"
            ) from exc
    if attention == "triton":
        kernels, reason = triton_kernels()
        if kernels is None:
            raise ValueError(f"attention='triton' cannot run here: {reason}; use attention='sdpa' or 'auto'")
    return attention


def rows_of_samples(sample_offsets: torch.Tensor, rows: int) -> torch.Tensor:
    """int64 ``[rows]``: the sample row of every class row (``s`` repeated ``offsets[s+1]-offsets[s]`` times)."""
    counts = sample_offsets[1:] - sample_offsets[:-1]
    samples = torch.arange(counts.shape[0], device=sample_offsets.device)
    return torch.repeat_interleave(samples, counts, output_size=rows)


def class_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    class_index: torch.Tensor,
    scale: float,
    backend: str,
    sample_offsets: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``out[b] = softmax(scale q[s(b)] k[c(b)]^T + bias[b]) v[c(b)]`` as ``[B, Nq, H, D]``.

    q is ``[B, Nq, H, D]`` (one query per class row) or, with ``sample_offsets [S+1]``, ``[S, Nq, H, D]`` shared by
    the rows of each sample; k, v are ``[C, Lk, H, D]``; ``class_index int64 [B]`` picks c(b); ``bias`` is an
    optional additive ``[B, Lk]`` on the keys of every row (sdpa only).
    """
    if backend == "triton":
        if bias is not None:
            raise ValueError("the triton attention backend takes no attention bias; use sdpa")
        kernels, reason = triton_kernels()
        if kernels is None:
            raise RuntimeError(f"the triton attention backend is not available: {reason}")
        if sample_offsets is None:
            return kernels.class_cross_attention(q, k, v, class_index, scale, check_indices=False)
        return kernels.shared_query_cross_attention(q, k, v, sample_offsets, class_index, scale, check_indices=False)
    if sample_offsets is not None:
        q = q.index_select(0, rows_of_samples(sample_offsets, class_index.shape[0]))
    return row_attention(q, k.index_select(0, class_index), v.index_select(0, class_index), scale, backend, bias)


def row_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, scale: float, backend: str,
                  bias: torch.Tensor | None = None) -> torch.Tensor:
    """``out[b] = softmax(scale q[b] k[b]^T + bias[b]) v[b]`` as ``[B, Nq, H, D]`` (sdpa or xformers; a bias
    ``[B, Lk]``, sdpa only)."""
    if backend == "xformers":
        if bias is not None:
            raise ValueError("the xformers attention backend takes no attention bias here; use sdpa")
        import xformers.ops

        return xformers.ops.memory_efficient_attention(q, k, v, scale=scale)
    if backend != "sdpa":
        raise ValueError(f"unknown attention backend {backend!r} for per-row attention")
    mask = None if bias is None else bias[:, None, None, :].to(q.dtype)
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), attn_mask=mask,
                                         scale=scale)
    return out.transpose(1, 2)


def project_kv(
    attn: Any, encoder_hidden_states: torch.Tensor, added: bool = False
) -> tuple[torch.Tensor, torch.Tensor]:
    """The keys and values of a diffusers ``Attention`` for conditioning ``[R, L, Dc]``, as ``[R, L, H, D]``
    (``added``: the text projections ``add_k_proj``/``add_v_proj`` of an added-KV layer, not ``to_k``/``to_v``)."""
    if attn.norm_cross:
        encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
    to_k, to_v = (attn.add_k_proj, attn.add_v_proj) if added else (attn.to_k, attn.to_v)
    key, value = to_k(encoder_hidden_states), to_v(encoder_hidden_states)
    rows, length, inner = key.shape
    head_dim = inner // attn.heads
    return key.view(rows, length, attn.heads, head_dim), value.view(rows, length, attn.heads, head_dim)


def unsupported_reason(attn: Any) -> str | None:
    """Why a cross-attention layer cannot be computed by :class:`ClassCrossAttnProcessor`, or None."""
    features = {
        "spatial_norm": attn.spatial_norm is not None,
        "group_norm": attn.group_norm is not None,
        "qk_norm": getattr(attn, "norm_q", None) is not None or getattr(attn, "norm_k", None) is not None,
        "residual_connection": attn.residual_connection,
        "added_kv_proj": getattr(attn, "added_kv_proj_dim", None) is not None,
        "kv_heads": attn.to_k.out_features != attn.to_q.out_features,
    }
    used = [name for name, present in features.items() if present]
    return f"cross-attention uses {', '.join(used)}" if used else None


_ADDED_KV_PROCESSORS = ("AttnAddedKVProcessor", "AttnAddedKVProcessor2_0")


def added_kv_unsupported_reason(attn: Any) -> str | None:
    """Why an added-KV attention layer cannot be computed by :class:`ClassAddedKVAttnProcessor`, or None."""
    if getattr(attn, "added_kv_proj_dim", None) is None:
        return f"{type(attn).__name__} is neither a Transformer2DModel nor an added-KV attention layer"
    processor = attn.processor
    processor = processor.original if isinstance(processor, ClassFreeAttnProcessor) else processor
    if type(processor).__name__ not in _ADDED_KV_PROCESSORS:
        return f"added-KV attention with the processor {type(processor).__name__}"
    features = {
        "spatial_norm": attn.spatial_norm is not None,
        "qk_norm": getattr(attn, "norm_q", None) is not None or getattr(attn, "norm_k", None) is not None,
        "scale_qk=False": not attn.scale_qk,  # AttnAddedKVProcessor2_0 always scales by head_dim ** -0.5
        "kv_heads": attn.add_k_proj.out_features != attn.to_q.out_features,
    }
    used = [name for name, present in features.items() if present]
    return f"added-KV attention uses {', '.join(used)}" if used else None


class ClassFreeAttnProcessor:
    """The processor it replaced, taking and ignoring ``class_index``: what the self-attention (``attn1``) layers
    run, since diffusers hands them the UNet's ``cross_attention_kwargs`` too (and warns about unknown ones)."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def _original(self, attn: Any, hidden_states: torch.Tensor, encoder_hidden_states: torch.Tensor | None,
                  attention_mask: torch.Tensor | None, temb: torch.Tensor | None) -> torch.Tensor:
        extra = {} if temb is None else {"temb": temb}
        return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, **extra)

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        class_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return self._original(attn, hidden_states, encoder_hidden_states, attention_mask, temb)


class ClassCrossAttnProcessor(ClassFreeAttnProcessor):
    """Cross-attention by class index (cached per-class K/V, or per-row conditioning) with a chosen backend; called
    without ``class_index``, the processor it replaced."""

    added = False  # which projections make the text keys/values (see project_kv)

    def __init__(self, original: Any, backend: str) -> None:
        super().__init__(original)
        self.backend = backend
        self.kv: tuple[torch.Tensor, torch.Tensor] | None = None
        self.key_bias: torch.Tensor | None = None  # [C, L], from the class set's text mask (set_conditioning)

    def cache(self, attn: Any, conditioning: torch.Tensor) -> None:
        """Project and keep the keys/values of every class: conditioning ``[C, L, Dc]``."""
        self.kv = project_kv(attn, conditioning, self.added)

    def row_bias(self, class_index: torch.Tensor) -> torch.Tensor | None:
        """The text-key bias of every class row ``[B, L]``, or None without a mask."""
        return None if self.key_bias is None else self.key_bias.index_select(0, class_index)

    def class_keys_values(
        self, attn: Any, encoder_hidden_states: torch.Tensor | None, class_index: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(keys, values, index)``: the cached class K/V read at ``class_index``, or the K/V of the per-row
        conditioning read at ``arange(B)``."""
        if self.kv is not None:
            return self.kv[0], self.kv[1], class_index
        if encoder_hidden_states is None:
            raise RuntimeError("no cached class keys/values and no conditioning passed; call encode_classes first")
        key, value = project_kv(attn, encoder_hidden_states, self.added)
        return key, value, torch.arange(key.shape[0], device=key.device)

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        class_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if class_index is None:
            return self._original(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        if attention_mask is not None or hidden_states.ndim != 3:
            raise ValueError("class-indexed cross-attention takes [B, N, C] hidden states and no attention mask")
        return self.attend(attn, attn.to_q(hidden_states), encoder_hidden_states, class_index)

    def attend(
        self,
        attn: Any,
        query: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None,
        class_index: torch.Tensor,
        sample_offsets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Output ``[B, N, out]`` from projected queries ``[B or S, N, inner]`` (S: shared per sample row) for
        the class rows ``class_index [B]``."""
        key, value, kv_index = self.class_keys_values(attn, encoder_hidden_states, class_index)
        rows, tokens, _ = query.shape
        heads, head_dim = key.shape[2], key.shape[3]
        q = query.view(rows, tokens, heads, head_dim)
        out = class_attention(q, key, value, kv_index, attn.scale, self.backend, sample_offsets,
                              self.row_bias(class_index))
        out = out.reshape(class_index.shape[0], tokens, heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        return out / attn.rescale_output_factor if attn.rescale_output_factor != 1.0 else out


class ClassAddedKVAttnProcessor(ClassCrossAttnProcessor):
    """``AttnAddedKVProcessor2_0`` by class index: the class's text K/V (cached, or from per-row conditioning)
    followed by the row's own image K/V (unless ``only_cross_attention``), one softmax over both, plus the residual.
    Runs on sdpa or xformers (the triton kernels attend to class keys only)."""

    added = True

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
        class_index: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if class_index is None:
            return self._original(attn, hidden_states, encoder_hidden_states, attention_mask, temb)
        if attention_mask is not None or hidden_states.ndim != 4:
            raise ValueError("class-indexed added-KV attention takes [B, C, H, W] hidden states and no attention mask")
        residual = hidden_states
        batch, channels = hidden_states.shape[:2]
        hidden = hidden_states.view(batch, channels, -1).transpose(1, 2)
        if attn.group_norm is not None:
            hidden = attn.group_norm(hidden.transpose(1, 2)).transpose(1, 2)
        key, value, kv_index = self.class_keys_values(attn, encoder_hidden_states, class_index)
        tokens, heads, head_dim = hidden.shape[1], key.shape[2], key.shape[3]
        query = attn.to_q(hidden)
        key, value, bias = key.index_select(0, kv_index), value.index_select(0, kv_index), self.row_bias(class_index)
        if not attn.only_cross_attention:
            key = torch.cat([key, attn.to_k(hidden).view(batch, tokens, heads, head_dim)], dim=1)
            value = torch.cat([value, attn.to_v(hidden).view(batch, tokens, heads, head_dim)], dim=1)
            if bias is not None:  # the image's own keys are never masked (diffusers pads the mask with zeros)
                bias = F.pad(bias, (0, tokens))
        out = row_attention(query.view(batch, tokens, heads, head_dim), key, value, attn.scale, self.backend, bias)
        out = attn.to_out[1](attn.to_out[0](out.reshape(batch, tokens, heads * head_dim).to(query.dtype)))
        return out.transpose(-1, -2).reshape(residual.shape) + residual
