"""Counter-based token masks: the mask pattern of sample ``j`` of an image is a pure function of the 64-bit seed,
the 64-bit image key and ``j``, like the noise of :func:`genfast.noise`, so masked-token scorers stay paired
across classes and reproducible whatever the batching, the device or the order of images.

Sample ``j`` at masking ratio ``r`` masks exactly ``n = clamp(round(r * n_tokens), 1, n_tokens)`` tokens: the
``n`` positions with the smallest Philox words of the stream ``(seed, key, j)`` (word ``i`` belongs to token
``i``, raster order; equal words go to the lower position). That is a uniformly random ``n``-subset, as aMUSEd's
training recipe draws it (``rand(n_tokens).argsort() < round(r * n_tokens)``, at least one token); a fixed count,
rather than independent coin flips, never leaves a sample with nothing masked to score.
"""
from __future__ import annotations

from typing import Sequence

import torch

from genfast.ops._tensors import as_int64_bits, check_rows, check_same_device, check_tensor
from genfast.ops.noise import noise_bits

__all__ = ["masked_counts", "token_masks", "token_masks_rows"]


def masked_counts(ratios: torch.Tensor, n_tokens: int) -> torch.Tensor:
    """int64: how many of ``n_tokens`` tokens a masking ratio masks, ``clamp(round(ratio * n_tokens), 1, n_tokens)``
    (ratios are rounded in float64, half to even)."""
    return torch.round(ratios.to(torch.float64) * n_tokens).clamp(1, n_tokens).to(torch.int64)


def token_masks_rows(keys: torch.Tensor, samples: torch.Tensor, seed: int, n_tokens: int,
                     counts: torch.Tensor) -> torch.Tensor:
    """bool ``[R, n_tokens]`` (True = masked): row ``r`` masks ``counts[r]`` tokens of sample ``samples[r]`` of the
    image with key ``keys[r]`` (int64 bits). All tensors int64 ``[R]`` on one device."""
    op = "token_masks"
    for name, value in (("keys", keys), ("samples", samples), ("counts", counts)):
        check_tensor(op, name, value, (torch.int64,), 1)
        check_rows(op, name, value, keys.shape[0], "one per row")
    check_same_device(op, {"keys": keys, "samples": samples, "counts": counts})
    if isinstance(n_tokens, bool) or not isinstance(n_tokens, int) or not 1 <= n_tokens <= 2**20:
        raise ValueError(f"{op}: n_tokens must be an int in [1, 2**20], got {n_tokens!r}")
    if counts.numel() and bool(((counts < 1) | (counts > n_tokens)).any()):
        raise ValueError(f"{op}: counts must be in [1, n_tokens={n_tokens}]")
    words = noise_bits(keys, samples, seed, n_tokens)  # [R, n_tokens], uint32 values in int64
    order = words * n_tokens + torch.arange(n_tokens, device=keys.device)  # distinct: ties go to the lower position
    cutoff = order.sort(dim=1).values.gather(1, (counts - 1).unsqueeze(1))
    return order <= cutoff


def token_masks(
    seed: int,
    key: int,
    samples: Sequence[int] | torch.Tensor,
    n_tokens: int,
    ratios: float | Sequence[float] | torch.Tensor,
    *,
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """The masks genfast uses for samples ``samples`` of the image with 64-bit ``key`` under ``seed``, at masking
    ratio ``ratios`` (one for all samples, or one per sample): bool ``[len(samples), n_tokens]``, raster order,
    True = masked. Lets anyone audit a masked-token run, as :func:`genfast.noise` does a diffusion run."""
    key_bits = as_int64_bits("token_masks", "key", key)
    if isinstance(samples, torch.Tensor):
        if samples.dim() != 1 or samples.dtype.is_floating_point or samples.dtype.is_complex:
            raise TypeError(f"token_masks: samples must be a 1-d integer tensor, got {samples.dtype} "
                            f"{list(samples.shape)}")
        sample = samples.to(device=device if device is not None else samples.device, dtype=torch.int64)
    else:
        sample = torch.tensor([int(j) for j in samples], dtype=torch.int64, device=device)
    ratio = torch.as_tensor(ratios, dtype=torch.float64, device=sample.device).reshape(-1)
    if ratio.numel() == 1:
        ratio = ratio.expand(sample.shape[0])
    if ratio.shape != sample.shape:
        raise ValueError(f"token_masks: ratios must be one number or one per sample ({sample.shape[0]}), "
                         f"got {ratio.numel()}")
    if ratio.numel() and not bool(((ratio >= 0) & (ratio <= 1)).all()):
        raise ValueError("token_masks: ratios must be in [0, 1]")
    keys = torch.full_like(sample, key_bits)
    return token_masks_rows(keys, sample, seed, n_tokens, masked_counts(ratio, n_tokens))
