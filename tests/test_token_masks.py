"""Counter-based token masks: exact counts, the n smallest Philox words of (seed, key, sample), invariance to
batching and order, uniform positions, CPU against CUDA, and clear errors on bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

import genfast
from genfast.ops.noise import noise_bits_reference
from genfast.ops.token_masks import masked_counts, token_masks, token_masks_rows

SEED = 20231101
KEY = 2**64 - 12345  # above 2**63: keys are unsigned


def test_public_export():
    assert genfast.token_masks is token_masks


@pytest.mark.parametrize("n_tokens,ratio,expected", [(64, 0.5, 32), (64, 0.0, 1), (64, 1.0, 64), (10, 0.25, 2),
                                                     (10, 0.36, 4), (256, 0.001, 1)])
def test_counts_follow_the_training_recipe(n_tokens, ratio, expected):
    """clamp(round(ratio * n), 1, n), rounding half to even as torch.round does (0.25 * 10 = 2.5 -> 2)."""
    assert int(masked_counts(torch.tensor([ratio]), n_tokens)) == expected
    masks = token_masks(SEED, KEY, range(5), n_tokens, ratio)
    assert masks.dtype == torch.bool and masks.shape == (5, n_tokens)
    assert masks.sum(dim=1).tolist() == [expected] * 5


def test_masks_are_the_smallest_philox_words():
    """Written from the definition: sample j masks the n positions with the smallest words of its noise stream,
    equal words going to the lower position."""
    samples, n_tokens, ratios = [0, 7, 2**32 - 1], 37, [0.2, 0.5, 0.9]
    masks = token_masks(SEED, KEY, samples, n_tokens, ratios)
    key_bits = torch.tensor([KEY - 2**64])
    for row, (j, ratio) in enumerate(zip(samples, ratios)):
        words = noise_bits_reference(key_bits, torch.tensor([j]), SEED, n_tokens)[0]
        n = max(1, round(ratio * n_tokens))
        chosen = sorted(range(n_tokens), key=lambda i: (int(words[i]), i))[:n]
        expected = torch.zeros(n_tokens, dtype=torch.bool)
        expected[chosen] = True
        assert torch.equal(masks[row], expected)


def test_masks_do_not_depend_on_batching_or_order():
    ratios = np.linspace(0.05, 0.95, 12)
    whole = token_masks(SEED, KEY, range(12), 50, ratios)
    for j in (0, 5, 11):
        assert torch.equal(token_masks(SEED, KEY, [j], 50, ratios[j])[0], whole[j])
    order = [11, 3, 0, 7]
    assert torch.equal(token_masks(SEED, KEY, order, 50, ratios[order]), whole[order])
    keys = torch.tensor([KEY - 2**64, 5, KEY - 2**64])
    rows = token_masks_rows(keys, torch.tensor([4, 4, 9]), SEED, 50, masked_counts(torch.tensor([0.3] * 3), 50))
    assert torch.equal(rows[0], token_masks(SEED, KEY, [4], 50, 0.3)[0])
    assert torch.equal(rows[1], token_masks(SEED, 5, [4], 50, 0.3)[0])
    assert torch.equal(rows[2], token_masks(SEED, KEY, [9], 50, 0.3)[0])


def test_masks_depend_on_seed_key_and_sample():
    base = token_masks(SEED, KEY, [3], 64, 0.5)
    for other in (token_masks(SEED + 1, KEY, [3], 64, 0.5), token_masks(SEED, KEY + 1, [3], 64, 0.5),
                  token_masks(SEED, KEY, [4], 64, 0.5)):
        assert not torch.equal(other, base)


def test_a_larger_ratio_masks_a_superset():
    """The order of positions is fixed by the sample's words, so masks grow with the ratio (nested)."""
    small, large = token_masks(SEED, KEY, [6, 6], 40, [0.2, 0.7])
    assert bool((small <= large).all()) and int(small.sum()) < int(large.sum())


def test_positions_are_uniform():
    masks = token_masks(SEED, KEY, range(4000), 16, 0.25)  # 4 of 16 per sample
    counts = masks.sum(dim=0).numpy()
    assert stats.chisquare(counts).pvalue > 1e-3
    pairs = (masks[:, 0] & masks[:, 1]).float().mean().item()  # P(both) = 4/16 * 3/15 without replacement
    assert pairs == pytest.approx(0.25 * 3 / 15, abs=0.02)


@pytest.mark.parametrize("kwargs,error,match", [
    ({"ratios": [0.5, 0.5]}, ValueError, r"ratios must be one number or one per sample \(3\), got 2"),
    ({"ratios": 1.5}, ValueError, r"ratios must be in \[0, 1\]"),
    ({"n_tokens": 0}, ValueError, r"n_tokens must be an int in \[1, 2\*\*20\], got 0"),
    ({"samples": torch.tensor([0.5, 1.0, 2.0])}, TypeError, "samples must be a 1-d integer tensor"),
    ({"samples": [0, -1, 2]}, ValueError, r"sample indices must be in \[0, 2\*\*32\)"),
    ({"key": 2**64}, ValueError, "key = 18446744073709551616 does not fit in 64 bits"),
])
def test_bad_inputs_raise_clear_errors(kwargs, error, match):
    args = {"seed": SEED, "key": KEY, "samples": [0, 1, 2], "n_tokens": 8, "ratios": 0.5, **kwargs}
    with pytest.raises(error, match=match):
        token_masks(**args)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_masks_equal_cpu_masks():
    ratios = np.linspace(0.01, 1.0, 33)
    cpu = token_masks(SEED, KEY, range(33), 1024, ratios)
    gpu = token_masks(SEED, KEY, range(33), 1024, ratios, device="cuda")
    assert gpu.device.type == "cuda" and torch.equal(gpu.cpu(), cpu)
