"""Class-indexed cross-attention: the text keys/values of every class are projected once, and each batch row
reads those of its class instead of carrying a copy of the prompt embeddings.

:class:`ClassCrossAttnProcessor` is a diffusers attention processor for the cross-attention (``attn2``) layers.
While class rows are active (:meth:`ClassRows.active`) it computes
``out[b] = softmax(scale q[b] k[c(b)]^T) v[c(b)]`` with the chosen backend; otherwise it hands the call to the
processor it replaced, so the untouched diffusers forward stays available as the baseline.
"""
from __future__ import annotations

import contextlib
import importlib
from types import ModuleType
from typing import Any, Iterator

import torch
import torch.nn.functional as F

ATTENTION_BACKENDS: tuple[str, ...] = ("auto", "sdpa", "xformers", "triton")
"""Values of the ``attention`` option: auto picks triton on CUDA when genfast.kernels can run, else sdpa."""


def triton_kernels() -> tuple[ModuleType | None, str | None]:
    """``(genfast.kernels, None)`` when its class cross-attention kernels can run here, else ``(None, reason)``."""
    try:
        kernels = importlib.import_module("genfast.kernels")
    except Exception as exc:  # noqa: BLE001 - any import failure means "not available", with its reason
        return None, f"genfast.kernels could not be imported ({exc})"
    missing = [n for n in ("class_cross_attention", "shared_query_cross_attention") if not hasattr(kernels, n)]
    if missing:
        return None, f"genfast.kernels does not provide {', '.join(missing)}"
    reason = kernels.unavailable_reason() if hasattr(kernels, "unavailable_reason") else None
    return (None, reason) if reason else (kernels, None)


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
) -> torch.Tensor:
    """``out[b] = softmax(scale q[s(b)] k[c(b)]^T) v[c(b)]`` as ``[B, Nq, H, D]``.

    q is ``[B, Nq, H, D]`` (one query per class row) or, with ``sample_offsets [S+1]``, ``[S, Nq, H, D]`` shared by
    the rows of each sample; k, v are ``[C, Lk, H, D]``; ``class_index int64 [B]`` picks c(b).
    """
    if backend == "triton":
        kernels, reason = triton_kernels()
        if kernels is None:
            raise RuntimeError(f"the triton attention backend is not available: {reason}")
        if sample_offsets is None:
            return kernels.class_cross_attention(q, k, v, class_index, scale, check_indices=False)
        return kernels.shared_query_cross_attention(q, k, v, sample_offsets, class_index, scale, check_indices=False)
    if sample_offsets is not None:
        q = q.index_select(0, rows_of_samples(sample_offsets, class_index.shape[0]))
    k, v = k.index_select(0, class_index), v.index_select(0, class_index)
    if backend == "xformers":
        import xformers.ops

        return xformers.ops.memory_efficient_attention(q, k, v, scale=scale)
    if backend != "sdpa":
        raise ValueError(f"unknown attention backend {backend!r}")
    out = F.scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2), scale=scale)
    return out.transpose(1, 2)


def project_kv(attn: Any, encoder_hidden_states: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The keys and values of a diffusers ``Attention`` for conditioning ``[R, L, Dc]``, as ``[R, L, H, D]``."""
    if attn.norm_cross:
        encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
    key, value = attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states)
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


class ClassRows:
    """The class index of every batch row during one denoiser call, shared by all cross-attention processors."""

    def __init__(self) -> None:
        self.class_index: torch.Tensor | None = None

    @contextlib.contextmanager
    def active(self, class_index: torch.Tensor) -> Iterator[None]:
        """Within the block, processors read keys/values by ``class_index [B]``."""
        self.class_index = class_index
        try:
            yield
        finally:
            self.class_index = None


class ClassCrossAttnProcessor:
    """Cross-attention by class index (cached per-class K/V, or per-row conditioning) with a chosen backend."""

    def __init__(self, original: Any, rows: ClassRows, backend: str) -> None:
        self.original = original
        self.rows = rows
        self.backend = backend
        self.kv: tuple[torch.Tensor, torch.Tensor] | None = None

    def cache(self, attn: Any, conditioning: torch.Tensor) -> None:
        """Project and keep the keys/values of every class: conditioning ``[C, L, Dc]``."""
        self.kv = project_kv(attn, conditioning)

    def __call__(
        self,
        attn: Any,
        hidden_states: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        temb: torch.Tensor | None = None,
    ) -> torch.Tensor:
        if self.rows.class_index is None:
            extra = {} if temb is None else {"temb": temb}
            return self.original(attn, hidden_states, encoder_hidden_states, attention_mask, **extra)
        if attention_mask is not None or hidden_states.ndim != 3:
            raise ValueError("class-indexed cross-attention takes [B, N, C] hidden states and no attention mask")
        return self.attend(attn, attn.to_q(hidden_states), encoder_hidden_states)

    def attend(
        self,
        attn: Any,
        query: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None,
        sample_offsets: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Output ``[B, N, out]`` from projected queries ``[B or S, N, inner]`` (S: shared per sample row)."""
        class_index = self.rows.class_index
        if class_index is None:
            raise RuntimeError("ClassCrossAttnProcessor.attend needs active class rows")
        if self.kv is not None:
            key, value = self.kv
        elif encoder_hidden_states is not None:
            key, value = project_kv(attn, encoder_hidden_states)
            class_index = torch.arange(key.shape[0], device=key.device)
        else:
            raise RuntimeError("no cached class keys/values and no conditioning passed; call encode_classes first")
        rows, tokens, _ = query.shape
        heads, head_dim = key.shape[2], key.shape[3]
        q = query.view(rows, tokens, heads, head_dim)
        out = class_attention(q, key, value, class_index, attn.scale, self.backend, sample_offsets)
        out = out.reshape(class_index.shape[0], tokens, heads * head_dim).to(query.dtype)
        out = attn.to_out[1](attn.to_out[0](out))
        return out / attn.rescale_output_factor if attn.rescale_output_factor != 1.0 else out
