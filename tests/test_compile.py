"""compile= (fixed-shape batches under torch.compile) against the eager loop: the same decisions and evaluations,
scores at float rounding; every batch the compiled denoiser sees has batch_size rows. The class-sharing UNet
forward traces as one graph (the class index reaches the processors as an argument, not as stored state)."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from genfast import Classifier
from genfast.engine import GenFast
from genfast.engine.loop import score_images
from genfast.models import load_model
from genfast.models.digits_data import load_split
from genfast.models.unet import ClassConditionedUNet
from genfast.testing.deepfloyd_if import make_tiny_if_pipeline

DIGITS = [str(d) for d in range(10)]
METHOD = GenFast(round_size=2, min_samples=4, max_samples=12)


RUNNERS = {  # the bundled UNet with each saving, and DeepFloyd IF's added-KV layers under a text mask
    "digits shared prefix, cached K/V": ("digits", {"share_prefix": True, "cache_class_kv": True}),
    "digits shared prefix, per-row K/V": ("digits", {"share_prefix": True, "cache_class_kv": False}),
    "digits cached K/V": ("digits", {"share_prefix": False, "cache_class_kv": True}),
    "IF masked text": ("if", {"cache_class_kv": True}),  # IF has no class-free prefix
}


@pytest.fixture(scope="module")
def if_path(tmp_path_factory):
    return make_tiny_if_pipeline(tmp_path_factory.mktemp("if"), seed=5)


def fast_runner(request, case: str) -> tuple[ClassConditionedUNet, tuple[torch.Tensor, ...]]:
    """A runner of the class-sharing forward with the savings of ``case`` (uses_plain_forward is False), and rows."""
    model, options = RUNNERS[case]
    if model == "digits":
        adapter = load_model("digits", device="cpu", attention="sdpa", **options)
        adapter.encode_classes(DIGITS, "")
        runner = adapter.runner
    else:
        adapter = load_model(request.getfixturevalue("if_path"), device="cpu", attention="sdpa", clean_caption=False)
        states = adapter._conditioning(["cat", "dog", "car"], "a photo of a {}")
        mask = torch.ones(3, states.shape[1], dtype=torch.int64)
        mask[:, 9:] = 0
        mask[1, 4:] = 0
        runner = ClassConditionedUNet(adapter.unet, attention="sdpa", **options)
        runner.set_conditioning({"encoder_hidden_states": states, "encoder_attention_mask": mask})
    assert not runner.uses_plain_forward and runner.processors
    generator = torch.Generator().manual_seed(0)
    z_t = torch.randn(3, *adapter.latent_shape, generator=generator)
    rows = z_t, torch.tensor([10, 500, 900]), torch.tensor([0, 2, 2, 5]), torch.tensor([0, 2, 1, 1, 0])
    return runner, rows


@pytest.mark.parametrize("case", RUNNERS)
def test_fast_unet_forward_is_one_graph(request, case, diffusers_warnings):
    """torch.compile(fullgraph=True) traces the class-sharing forward without a break and computes the eager
    result; no attention processor is handed a keyword it does not take."""
    runner, rows = fast_runner(request, case)
    eager = runner.forward(*rows)
    compiled = torch.compile(runner.forward, fullgraph=True, backend="aot_eager", dynamic=False)(*rows)
    torch.testing.assert_close(compiled, eager, rtol=1e-6, atol=1e-6)
    assert not diffusers_warnings


def attribute_state(obj: object) -> dict[str, object]:
    """The attributes of ``obj`` and of the plain objects it holds (not tensors or modules), by dotted name."""
    state = {}
    for name, value in vars(obj).items():
        state[name] = value
        if hasattr(value, "__dict__") and not isinstance(value, (torch.Tensor, torch.nn.Module)):
            state.update({f"{name}.{inner}": v for inner, v in vars(value).items()})
    return state


def assert_same_state(before: dict[str, object], now: dict[str, object]) -> None:
    assert before.keys() == now.keys()
    assert [name for name in before if before[name] is not now[name]] == []


@pytest.mark.parametrize("case", RUNNERS)
def test_forward_stores_no_per_batch_state(request, case):
    """Neither the runner nor any attention processor holds anything of a batch, during the forward or after:
    the class index is an argument, so what a processor keeps is per class set (K/V cache, text-key bias)."""
    runner, rows = fast_runner(request, case)
    layers = [m for m in runner.unet.modules() if hasattr(m, "processor")]
    before = [attribute_state(m.processor) for m in layers], attribute_state(runner)
    seen = []

    def check(layer, args, output) -> None:
        assert_same_state(before[0][layers.index(layer)], attribute_state(layer.processor))
        assert_same_state(before[1], attribute_state(runner))
        seen.append(layer)

    hooks = [layer.register_forward_hook(check) for layer in layers]
    try:
        runner.forward(*rows)
    finally:
        for hook in hooks:
            hook.remove()
    unseen = {id(layer) for layer in layers} - {id(layer) for layer in seen}
    # every layer was checked during the forward but the prefix's first cross-attention, whose processor it calls
    prefix = runner.unet.down_blocks[0].attentions[0].transformer_blocks[0].attn2 if runner.share_prefix else None
    assert unseen <= {id(prefix)}
    for layer, state in zip(layers, before[0]):
        assert_same_state(state, attribute_state(layer.processor))
    assert_same_state(before[1], attribute_state(runner))


def run(clf: Classifier, denoise, images: np.ndarray, batch_size: int = 48):
    z0 = clf.adapter.encode_images(clf.adapter.prepare_images(list(images)))
    results = {}
    score_images(clf.adapter, clf.method, z0, np.arange(1, len(images) + 1, dtype=np.uint64), seed=0,
                 batch_size=batch_size, on_finished=lambda i, r, s: results.__setitem__(i, r), denoise=denoise)
    return [results[i] for i in range(len(images))]


def test_fixed_shapes_give_the_eager_decisions():
    clf = Classifier("digits", DIGITS, method=METHOD)
    images = load_split("test")[0][:5]
    shapes = []

    def recording(z_t, t, offsets, class_index, image_index):
        shapes.append((z_t.shape[0], class_index.shape[0], int(offsets[-1])))
        return clf.adapter.denoise(z_t, t, offsets, class_index, image_index)

    padded, plain = run(clf, recording, images), run(clf, None, images)
    assert len(shapes) > 3 and set(shapes) == {(48, 48, 48)}  # every batch padded to batch_size
    compiled = run(clf, torch.compile(clf.adapter.denoise, backend="aot_eager", dynamic=False), images)
    for a, b, c in zip(padded, plain, compiled):
        assert a.prediction == b.prediction == c.prediction and a.evaluations == b.evaluations == c.evaluations
        np.testing.assert_array_equal(a.n_samples, b.n_samples)
        np.testing.assert_allclose(a.scores, b.scores, rtol=1e-5)
        np.testing.assert_allclose(c.scores, b.scores, rtol=1e-5)


@pytest.mark.slow  # inductor generates and compiles C++ for the bundled UNet: about a minute on 2 cores
def test_inductor_gives_the_eager_decisions():
    images = list(load_split("test")[0][:4])
    eager = Classifier("digits", DIGITS, method=METHOD, batch_size=64).classify(images)
    compiled = Classifier("digits", DIGITS, method=METHOD, batch_size=64, compile="inductor").classify(images)
    assert [p.index for p in compiled] == [p.index for p in eager]
    assert [p.evaluations for p in compiled] == [p.evaluations for p in eager]
    np.testing.assert_allclose([p.scores for p in compiled], [p.scores for p in eager], rtol=1e-4)


def test_bad_compile_modes_are_clear_errors(tmp_path):
    with pytest.raises(ValueError, match="compile must be one of off, inductor, graphs, got 'jit'"):
        Classifier("digits", DIGITS, compile="jit")
    from genfast.testing.amused import make_tiny_amused_pipeline

    path = make_tiny_amused_pipeline(tmp_path / "amused")
    with pytest.raises(ValueError, match="compiles a denoiser; AmusedAdapter scores tokens itself"):
        Classifier(path, ["cat", "dog"], compile="inductor", device="cpu")
