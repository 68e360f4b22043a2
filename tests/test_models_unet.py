"""The optimised denoise (prefix sharing, cached class K/V, attention backends) against the plain diffusers forward."""
from __future__ import annotations

import functools
import logging
from pathlib import Path

import pytest
import torch

from genfast.models import load_model
from genfast.models.attention import triton_kernels
from genfast.testing import make_tiny_embedding_unet, make_tiny_sd_pipeline

CLASSES = ["cat", "dog", "photo", "car", "truck"]
PROMPT = "a photo of a {class}"
COUNTS = [1, 3, 0, 4, 2, 5]  # several classes per sample, uneven, one sample with none


@pytest.fixture(scope="module")
def sd_eps(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_sd_pipeline(tmp_path_factory.mktemp("sd_eps"), seed=1)


@pytest.fixture(scope="module")
def sd_v(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_sd_pipeline(tmp_path_factory.mktemp("sd_v"), prediction_type="v_prediction", seed=2)


def make_rows(latent_shape: tuple[int, ...], n_classes: int, counts: list[int] = COUNTS, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    samples = len(counts)
    offsets = torch.zeros(samples + 1, dtype=torch.int64)
    offsets[1:] = torch.tensor(counts).cumsum(0)
    z_t = torch.randn(samples, *latent_shape, generator=generator)
    t = torch.randint(0, 1000, (samples,), generator=generator)
    class_index = torch.randint(0, n_classes, (int(offsets[-1]),), generator=generator)
    return z_t, t, offsets, class_index


@functools.lru_cache(maxsize=None)
def diffusers_reference(path: Path, seed: int = 0) -> torch.Tensor:
    """Plain diffusers, written here independently of genfast: CLIP embeddings repeated per class row."""
    from diffusers import UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTokenizer

    z_t, t, offsets, class_index = make_rows((4, 8, 8), len(CLASSES), seed=seed)
    unet = UNet2DConditionModel.from_pretrained(path, subfolder="unet", low_cpu_mem_usage=False).eval()
    tokenizer = CLIPTokenizer.from_pretrained(path, subfolder="tokenizer")
    text_encoder = CLIPTextModel.from_pretrained(path, subfolder="text_encoder").eval()
    prompts = [f"a photo of a {name}" for name in CLASSES]
    ids = tokenizer(prompts, padding="max_length", max_length=tokenizer.model_max_length, truncation=True,
                    return_tensors="pt").input_ids
    with torch.no_grad():
        embeddings = text_encoder(ids)[0]
        rows = torch.repeat_interleave(torch.arange(len(offsets) - 1), offsets.diff())
        return unet(z_t[rows], t[rows], embeddings[class_index]).sample


def relative_error(out: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
    diff = (out.float() - ref.float()).abs().max().item()
    return diff, diff / ref.float().abs().max().item()


@pytest.mark.parametrize(
    ("fixture", "share_prefix", "cache_class_kv"),
    [("sd_eps", True, True), ("sd_eps", True, False), ("sd_eps", False, True), ("sd_eps", False, False),
     ("sd_v", True, True)],
)
def test_denoise_equals_plain_diffusers(request, fixture, share_prefix, cache_class_kv):
    path = request.getfixturevalue(fixture)
    adapter = load_model(path, device="cpu", dtype=torch.float32, share_prefix=share_prefix,
                         cache_class_kv=cache_class_kv, attention="sdpa")
    assert adapter.prediction_type == ("v_prediction" if fixture == "sd_v" else "epsilon")
    assert adapter.options()["share_prefix"] is share_prefix and adapter.options()["cache_class_kv"] is cache_class_kv
    adapter.encode_classes(CLASSES, PROMPT)
    rows = make_rows(adapter.latent_shape, len(CLASSES))
    reference = diffusers_reference(path)
    assert reference.std() > 0.05  # a real signal, not zeros
    plain = adapter.denoise_plain(*rows)
    fast = adapter.denoise(*rows)
    assert fast.shape == (int(rows[2][-1]), *adapter.latent_shape)
    abs_err, rel_err = relative_error(fast, reference)
    print(f"{fixture} share_prefix={share_prefix} cache={cache_class_kv}: max abs {abs_err:.3g} rel {rel_err:.3g}")
    torch.testing.assert_close(plain, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast, reference, rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # the Triton interpreter on CPU: about 30 s
@pytest.mark.skipif(triton_kernels()[0] is None, reason=f"triton backend: {triton_kernels()[1]}")
def test_triton_backend_equals_plain(tmp_path):
    """Both kernels: shared-query attention in the first cross-attention, class attention in the others."""
    path = make_tiny_sd_pipeline(tmp_path / "sd", max_length=8, seed=4)
    adapter = load_model(path, device="cpu", dtype=torch.float32, attention="triton")
    assert adapter.options()["attention"] == "triton" and adapter.options()["share_prefix"]
    adapter.encode_classes(CLASSES, PROMPT)
    rows = make_rows(adapter.latent_shape, len(CLASSES), seed=8)
    fast, plain = adapter.denoise(*rows), adapter.denoise_plain(*rows)
    print("triton: max abs %.3g rel %.3g" % relative_error(fast, plain))
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)


def test_bf16_on_cpu_matches_plain_and_fp32(sd_eps):
    fp32 = load_model(sd_eps, device="cpu", dtype=torch.float32, attention="sdpa")
    bf16 = load_model(sd_eps, device="cpu", dtype="bf16", attention="sdpa")
    assert bf16.dtype == torch.bfloat16 and bf16.options()["share_prefix"] and bf16.options()["cache_class_kv"]
    for adapter in (fp32, bf16):
        adapter.encode_classes(CLASSES, PROMPT)
    rows = make_rows(bf16.latent_shape, len(CLASSES), seed=3)
    fast, plain, exact = bf16.denoise(*rows), bf16.denoise_plain(*rows), fp32.denoise_plain(*rows)
    assert fast.dtype == torch.bfloat16
    print("bf16 fast vs bf16 plain: max abs %.3g rel %.3g" % relative_error(fast, plain))
    print("bf16 fast vs fp32 plain: max abs %.3g rel %.3g" % relative_error(fast, exact))
    torch.testing.assert_close(fast.float(), plain.float(), rtol=0.05, atol=0.05)
    torch.testing.assert_close(fast.float(), exact, rtol=0.05, atol=0.05)


class _BatchRecorder:
    def __init__(self, module: torch.nn.Module) -> None:
        self.batches: list[int] = []
        module.register_forward_hook(lambda _m, args, _out: self.batches.append(args[0].shape[0]))


@pytest.mark.parametrize("share_prefix", [True, False])
def test_prefix_runs_once_per_sample_row(sd_eps, share_prefix):
    adapter = load_model(sd_eps, device="cpu", dtype=torch.float32, share_prefix=share_prefix, attention="sdpa")
    adapter.encode_classes(CLASSES, PROMPT)
    first = adapter.unet.down_blocks[0]
    prefix, after = _BatchRecorder(first.resnets[0]), _BatchRecorder(first.resnets[1])
    z_t, t, offsets, class_index = make_rows(adapter.latent_shape, len(CLASSES))
    adapter.denoise(z_t, t, offsets, class_index)
    rows = class_index.shape[0]
    assert prefix.batches == [len(z_t) if share_prefix else rows]
    assert after.batches == [rows]


@pytest.mark.parametrize("cache_class_kv", [True, False])
def test_cached_kv_skips_text_projections(sd_eps, cache_class_kv):
    adapter = load_model(sd_eps, device="cpu", dtype=torch.float32, cache_class_kv=cache_class_kv, attention="sdpa")
    adapter.encode_classes(CLASSES, PROMPT)
    attn2 = [m.attn2 for m in adapter.unet.modules() if hasattr(m, "attn2") and m.attn2 is not None]
    recorders = [_BatchRecorder(a.to_k) for a in attn2]
    adapter.denoise(*make_rows(adapter.latent_shape, len(CLASSES)))
    calls = sum(len(r.batches) for r in recorders)
    assert calls == (0 if cache_class_kv else len(attn2))


@pytest.mark.parametrize(
    "unet_config",
    [
        {"use_linear_projection": True},
        {"attention_head_dim": (2, 4), "upcast_attention": True},
        {"transformer_layers_per_block": 2, "layers_per_block": 1},
        {"center_input_sample": True},
    ],
    ids=["linear_projection", "head_dims_upcast", "two_transformer_layers", "center_input"],
)
def test_unet_config_variants(tmp_path, unet_config):
    path = make_tiny_sd_pipeline(tmp_path / "sd", unet_config=unet_config, max_length=8)
    adapter = load_model(path, device="cpu", dtype=torch.float32, attention="sdpa")
    assert adapter.options()["disabled"] == {}
    adapter.encode_classes(CLASSES, PROMPT)
    rows = make_rows(adapter.latent_shape, len(CLASSES), seed=5)
    fast, plain = adapter.denoise(*rows), adapter.denoise_plain(*rows)
    print(unet_config, "max abs %.3g rel %.3g" % relative_error(fast, plain))
    torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5)


def test_no_cross_attention_in_first_block_falls_back_with_reason(tmp_path, caplog):
    config = {"down_block_types": ("DownBlock2D", "CrossAttnDownBlock2D"),
              "up_block_types": ("CrossAttnUpBlock2D", "UpBlock2D")}
    path = make_tiny_sd_pipeline(tmp_path / "sd", unet_config=config, max_length=8)
    with caplog.at_level(logging.WARNING, logger="genfast.models"):
        adapter = load_model(path, device="cpu", dtype=torch.float32, attention="sdpa")
    options = adapter.options()
    assert options["share_prefix"] is False and options["cache_class_kv"] is True
    assert "no cross-attention" in options["disabled"]["share_prefix"]
    assert "share_prefix" in caplog.text
    adapter.encode_classes(CLASSES, PROMPT)
    rows = make_rows(adapter.latent_shape, len(CLASSES), seed=6)
    torch.testing.assert_close(adapter.denoise(*rows), adapter.denoise_plain(*rows), rtol=1e-4, atol=1e-5)


@pytest.mark.slow  # tracing the UNet: about 10-20 s on a 2-core CPU
def test_fast_forward_compiles_as_one_graph(sd_eps):
    """torch.compile(fullgraph=True) traces the class-sharing forward (prefix sharing, cached class K/V, the
    class index the processors read) without a graph break, and the compiled forward gives the same result.
    aot_eager traces through AOTAutograd as inductor does, without spending minutes generating C++."""
    adapter = load_model(sd_eps, device="cpu", dtype=torch.float32, attention="sdpa")
    adapter.encode_classes(CLASSES, PROMPT)
    z_t, t, offsets, class_index = make_rows(adapter.latent_shape, len(CLASSES))
    timesteps = adapter.model_timesteps(t)
    compiled = torch.compile(adapter.runner.forward, fullgraph=True, backend="aot_eager")
    torch.testing.assert_close(compiled(z_t, timesteps, offsets, class_index),
                               adapter.runner.forward(z_t, timesteps, offsets, class_index), rtol=1e-5, atol=1e-6)


def test_another_diffusers_release_runs_the_plain_forward_with_reason(sd_eps, monkeypatch):
    """The class-sharing forward follows one diffusers release: under another, the savings are off and say why
    (in the adapter's options and in genfast.info), and the denoiser is the plain diffusers forward."""
    import diffusers

    from genfast.info import collect

    monkeypatch.setattr(diffusers, "__version__", "0.99.0")
    adapter = load_model(sd_eps, device="cpu", dtype=torch.float32, attention="sdpa")
    options = adapter.options()
    assert options["share_prefix"] is False and options["cache_class_kv"] is False
    assert "diffusers 0.99.0 is installed" in options["disabled"]["share_prefix"]
    assert adapter.runner.uses_plain_forward
    facts = collect()["unet_fast_forward"]
    assert facts["usable"] is False and "plain diffusers forward runs instead" in facts["reason"]
    adapter.encode_classes(CLASSES, PROMPT)
    rows = make_rows(adapter.latent_shape, len(CLASSES))
    torch.testing.assert_close(adapter.denoise(*rows), diffusers_reference(sd_eps), rtol=1e-5, atol=1e-5)


def test_unsupported_unet_features_are_clear_errors(tmp_path):
    path = make_tiny_sd_pipeline(tmp_path / "sd", unet_config={"class_embed_type": "timestep"}, max_length=8)
    with pytest.raises(ValueError, match="class_embed_type"):
        load_model(path, device="cpu")


def test_class_embedding_unet_equivalence(tmp_path):
    path = make_tiny_embedding_unet(tmp_path / "emb", n_classes=6, class_names=list("abcdef"))
    adapter = load_model(path, device="cpu", dtype=torch.float32, attention="sdpa")
    names = ["f", "a", "c", "d"]
    adapter.encode_classes(names, prompt="ignored")
    assert adapter.class_names == names
    rows = make_rows(adapter.latent_shape, len(names), seed=7)
    fast, plain = adapter.denoise(*rows), adapter.denoise_plain(*rows)
    # independent reference: diffusers UNet with the table rows looked up by name
    from diffusers import UNet2DConditionModel
    from safetensors.torch import load_file

    unet = UNet2DConditionModel.from_pretrained(path / "unet").eval()
    table = load_file(path / "class_embeddings.safetensors")["embeddings"][torch.tensor([5, 0, 2, 3])]
    z_t, t, offsets, class_index = rows
    sample_rows = torch.repeat_interleave(torch.arange(len(z_t)), offsets.diff())
    with torch.no_grad():
        reference = unet(z_t[sample_rows], t[sample_rows], table[class_index]).sample
    print("class-embedding UNet: max abs %.3g rel %.3g" % relative_error(fast, reference))
    torch.testing.assert_close(plain, reference, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(fast, reference, rtol=1e-4, atol=1e-5)


def test_denoise_checks_its_inputs(sd_eps):
    adapter = load_model(sd_eps, device="cpu", dtype=torch.float32, attention="sdpa")
    rows = make_rows(adapter.latent_shape, len(CLASSES))
    with pytest.raises(RuntimeError, match="encode_classes"):
        adapter.denoise(*rows)
    adapter.encode_classes(CLASSES, PROMPT)
    z_t, t, offsets, class_index = rows
    with pytest.raises(ValueError, match="z_t must have shape"):
        adapter.denoise(z_t[:, :2], t, offsets, class_index)
    with pytest.raises(ValueError, match="t must have shape"):
        adapter.denoise(z_t, t[:-1], offsets, class_index)
    with pytest.raises(ValueError, match="sample_offsets must be int64"):
        adapter.denoise(z_t, t, offsets.int(), class_index)
    bad = offsets.clone()
    bad[-1] += 1
    with pytest.raises(ValueError, match="sample_offsets must rise"):
        adapter.denoise(z_t, t, bad, class_index)
    with pytest.raises(ValueError, match=r"class_index values must be in \[0, 5\)"):
        adapter.denoise(z_t, t, offsets, torch.full_like(class_index, 5))
    with pytest.raises(ValueError, match="placeholder"):
        adapter.encode_classes(CLASSES, "a photo")
    with pytest.raises(ValueError, match="duplicates"):
        adapter.encode_classes(["cat", "cat"], PROMPT)
