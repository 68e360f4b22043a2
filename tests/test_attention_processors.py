"""Class-indexed cross-attention: backends against a plain softmax reference, and the diffusers processor."""
from __future__ import annotations

import pytest
import torch
from diffusers.models.attention_processor import Attention, AttnProcessor2_0

from genfast.models.attention import (
    ClassCrossAttnProcessor,
    ClassFreeAttnProcessor,
    triton_kernels,
    class_attention,
    resolve_attention,
    unsupported_reason,
)


def reference_attention(q, k, v, class_index, scale, sample_offsets=None):
    """softmax(scale q k^T) v per row, in float64, written out with einsum."""
    if sample_offsets is not None:
        q = q[torch.repeat_interleave(torch.arange(len(sample_offsets) - 1), sample_offsets.diff())]
    k, v = k[class_index].double(), v[class_index].double()
    scores = torch.einsum("bnhd,blhd->bhnl", q.double(), k) * scale
    return torch.einsum("bhnl,blhd->bnhd", scores.softmax(-1), v)


def make_inputs(seed=0, samples=4, classes=3, tokens=6, keys=5, heads=2, dim=8):
    generator = torch.Generator().manual_seed(seed)
    counts = torch.tensor([2, 0, 3, 1][:samples])
    offsets = torch.cat([torch.zeros(1, dtype=torch.int64), counts.cumsum(0)])
    rows = int(offsets[-1])
    return {
        "q_rows": torch.randn(rows, tokens, heads, dim, generator=generator),
        "q_samples": torch.randn(samples, tokens, heads, dim, generator=generator),
        "k": torch.randn(classes, keys, heads, dim, generator=generator),
        "v": torch.randn(classes, keys, heads, dim, generator=generator),
        "class_index": torch.randint(0, classes, (rows,), generator=generator),
        "offsets": offsets,
        "scale": dim**-0.5,
    }


def _backends():
    kernels, reason = triton_kernels()
    triton = pytest.param("triton", marks=pytest.mark.skipif(kernels is None, reason=f"triton backend: {reason}"))
    return ["sdpa", triton]


@pytest.mark.parametrize("backend", _backends())
@pytest.mark.parametrize("shared_query", [False, True])
def test_class_attention_matches_reference(backend, shared_query):
    x = make_inputs()
    q = x["q_samples"] if shared_query else x["q_rows"]
    offsets = x["offsets"] if shared_query else None
    out = class_attention(q, x["k"], x["v"], x["class_index"], x["scale"], backend, offsets)
    expected = reference_attention(q, x["k"], x["v"], x["class_index"], x["scale"], offsets)
    assert out.shape == expected.shape
    torch.testing.assert_close(out.double(), expected, rtol=1e-4, atol=1e-5)


def test_resolve_attention():
    assert resolve_attention("auto", torch.device("cpu")) == "sdpa"
    assert resolve_attention("sdpa", torch.device("cpu")) == "sdpa"
    with pytest.raises(ValueError, match="attention must be one of"):
        resolve_attention("flash", torch.device("cpu"))
    try:
        import xformers  # noqa: F401
    except ImportError:
        with pytest.raises(ValueError, match="attention='xformers' needs the xformers package"):
            resolve_attention("xformers", torch.device("cpu"))


def make_attention(**kwargs) -> Attention:
    torch.manual_seed(0)
    return Attention(query_dim=16, cross_attention_dim=12, heads=2, dim_head=8, **kwargs).eval()


@pytest.mark.parametrize("cached", [True, False])
def test_processor_matches_default_processor(cached):
    attn = make_attention()
    conditioning = torch.randn(3, 5, 12)  # three classes
    hidden = torch.randn(4, 7, 16)  # four class rows
    class_index = torch.tensor([2, 0, 2, 1])
    with torch.no_grad():
        expected = AttnProcessor2_0()(attn, hidden, conditioning[class_index])
        attn.set_processor(ClassCrossAttnProcessor(AttnProcessor2_0(), "sdpa"))
        if cached:
            attn.processor.cache(attn, conditioning)
        inactive = attn(hidden, encoder_hidden_states=conditioning[class_index])
        active = attn(hidden, encoder_hidden_states=None if cached else conditioning[class_index],
                      class_index=class_index)  # as diffusers passes cross_attention_kwargs
    torch.testing.assert_close(inactive, expected)  # no class index: the original processor, unchanged
    torch.testing.assert_close(active, expected, rtol=1e-5, atol=1e-6)


def test_class_free_processor_ignores_the_class_index(diffusers_warnings):
    """Self-attention gets the UNet's cross_attention_kwargs too: it takes class_index, silently, and ignores it."""
    torch.manual_seed(0)
    attn = Attention(query_dim=16, heads=2, dim_head=8).eval()
    hidden = torch.randn(4, 7, 16)
    with torch.no_grad():
        expected = AttnProcessor2_0()(attn, hidden)
        attn.set_processor(ClassFreeAttnProcessor(AttnProcessor2_0()))
        out = attn(hidden, class_index=torch.tensor([2, 0, 2, 1]))
        attn.set_processor(AttnProcessor2_0())
        attn(hidden, class_index=torch.tensor([0]))  # what the wrapper avoids
    torch.testing.assert_close(out, expected, rtol=0, atol=0)
    assert diffusers_warnings == ["cross_attention_kwargs ['class_index'] are not expected by AttnProcessor2_0 and "
                                  "will be ignored."]


def test_shared_query_attend_matches_expanded_rows():
    attn = make_attention()
    conditioning = torch.randn(3, 5, 12)
    samples = torch.randn(2, 7, 16)
    offsets = torch.tensor([0, 3, 5])
    class_index = torch.tensor([0, 1, 2, 2, 0])
    sample_of_row = torch.tensor([0, 0, 0, 1, 1])
    with torch.no_grad():
        expected = AttnProcessor2_0()(attn, samples[sample_of_row], conditioning[class_index])
        processor = ClassCrossAttnProcessor(AttnProcessor2_0(), "sdpa")
        processor.cache(attn, conditioning)
        shared = processor.attend(attn, attn.to_q(samples), None, class_index, offsets)
    torch.testing.assert_close(shared, expected, rtol=1e-5, atol=1e-6)


def test_processor_without_conditioning_is_a_clear_error():
    attn = make_attention()
    attn.set_processor(ClassCrossAttnProcessor(AttnProcessor2_0(), "sdpa"))
    with pytest.raises(RuntimeError, match="encode_classes"):
        attn(torch.randn(1, 7, 16), class_index=torch.tensor([0]))


def test_unsupported_reason():
    assert unsupported_reason(make_attention()) is None
    assert "residual_connection" in unsupported_reason(make_attention(residual_connection=True))
    assert "qk_norm" in unsupported_reason(make_attention(qk_norm="layer_norm"))
