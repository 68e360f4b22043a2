"""Counter-based Gaussian noise and fused noising (docs/ARCHITECTURE.md, "Noise" and "Fused noising").

``eps(seed, key, j)`` is a pure function of the 64-bit seed, the 64-bit image key and the sample index ``j``:
element ``i`` of the flattened noise is normal ``i % 4`` of Philox-4x32-10 word group ``i // 4`` (Box-Muller
in float64). The custom ops run the native kernels (csrc/cpu, csrc/cuda) and fall back to the pure-PyTorch
references below when the native core did not load or cannot run on the tensors' device.

Seeds and keys are unsigned 64-bit numbers; int64 tensors and the op schemas hold them as the same bits
(``key - 2**64`` for ``key >= 2**63``). Public functions accept either form.
"""
from __future__ import annotations

import functools
import math
from typing import Sequence

import torch

from genfast.ops._tensors import (
    FLOAT_DTYPES,
    as_int64_bits,
    as_uint64,
    check_rows,
    check_same_device,
    check_tensor,
    native_for,
    stream_of,
    to_view,
)

__all__ = [
    "noise",
    "noise_noising",
    "noise_noising_reference",
    "noise_bits",
    "noise_bits_reference",
    "philox4x32_10_reference",
]

_MASK32 = 0xFFFFFFFF
_PHILOX_M = (0xD2511F53, 0xCD9E8D57)
_PHILOX_W = (0x9E3779B9, 0xBB67AE85)
_MAX_SAMPLE = _MASK32


# ----------------------------------------------------------------------------------------------------------
# Pure-PyTorch reference: Philox-4x32-10 with int64 arithmetic, Box-Muller in float64.


def _mulhilo(m: int, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """High and low 32 bits of m * c (c holds uint32 values in int64), exactly, via 16-bit halves."""
    m_hi, m_lo = m >> 16, m & 0xFFFF
    c_hi, c_lo = c >> 16, c & 0xFFFF
    low = ((m_hi * c_lo + m_lo * c_hi) << 16) + m_lo * c_lo  # < 2**50: no overflow
    return m_hi * c_hi + (low >> 32), low & _MASK32


def philox4x32_10_reference(
    counter: Sequence[torch.Tensor], key: tuple[int, int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Philox-4x32-10 on four broadcastable int64 tensors of uint32 counter words and a 2-word key."""
    c0, c1, c2, c3 = counter
    k0, k1 = key
    for _ in range(10):
        hi0, lo0 = _mulhilo(_PHILOX_M[0], c0)
        hi1, lo1 = _mulhilo(_PHILOX_M[1], c2)
        c0, c1, c2, c3 = hi1 ^ c1 ^ k0, lo1, hi0 ^ c3 ^ k1, lo0
        k0, k1 = (k0 + _PHILOX_W[0]) & _MASK32, (k1 + _PHILOX_W[1]) & _MASK32
    return c0, c1, c2, c3


def _bits_reference(seed: int, keys: torch.Tensor, draw: torch.Tensor, count: int) -> torch.Tensor:
    """int64 [R, count]: word i % 4 of Philox(counter=(i // 4, draw, key lo, key hi), key=seed) per row."""
    seed = as_uint64("noise", "seed", seed)
    words = torch.arange((count + 3) // 4, dtype=torch.int64, device=keys.device).unsqueeze(0)
    c1 = draw.unsqueeze(1)
    c2 = (keys & _MASK32).unsqueeze(1)
    c3 = ((keys >> 32) & _MASK32).unsqueeze(1)
    out = philox4x32_10_reference((words, c1, c2, c3), (seed & _MASK32, seed >> 32))
    out = torch.stack(torch.broadcast_tensors(*out), dim=-1)  # [R, W, 4]
    return out.reshape(keys.shape[0], 4 * words.shape[1])[:, :count].contiguous()


def _normals_reference(bits: torch.Tensor) -> torch.Tensor:
    """Box-Muller in float64 on consecutive word pairs of int64 [R, 4W] bits -> float32 [R, 4W]."""
    uniform = ((bits >> 8).to(torch.float64) + 0.5) * (1.0 / 16777216.0)
    u1, u2 = uniform[:, 0::2], uniform[:, 1::2]
    radius = torch.sqrt(-2.0 * torch.log(u1))
    theta = (2.0 * math.pi) * u2
    return torch.stack((radius * torch.cos(theta), radius * torch.sin(theta)), dim=-1).reshape(bits.shape).float()


def noise_bits_reference(keys: torch.Tensor, sample: torch.Tensor, seed: int, count: int) -> torch.Tensor:
    """Reference of :func:`noise_bits`: the raw Philox words, computed in PyTorch."""
    return _bits_reference(seed, keys, sample, count)


def noise_noising_reference(
    z0: torch.Tensor,
    keys: torch.Tensor,
    slot: torch.Tensor,
    sample: torch.Tensor,
    alpha: torch.Tensor,
    sigma: torch.Tensor,
    seed: int,
    antithetic: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Reference of :func:`noise_noising` in PyTorch: eps in z0's dtype, z_t = alpha z0 + sigma eps in float32."""
    rows, latent = slot.shape[0], math.prod(z0.shape[1:])
    draw = torch.div(sample, 2, rounding_mode="floor") if antithetic else sample
    words = 4 * ((latent + 3) // 4)
    normal = _normals_reference(_bits_reference(seed, keys[slot], draw, words))[:, :latent].contiguous()
    if antithetic:
        normal = torch.where((sample % 2 == 1).unsqueeze(1), -normal, normal)
    eps = normal.to(z0.dtype)
    z0_rows = z0.reshape(z0.shape[0], latent)[slot].float()
    z_t = alpha.unsqueeze(1) * z0_rows + sigma.unsqueeze(1) * eps.float()
    shape = (rows, *z0.shape[1:])
    return eps.reshape(shape), z_t.to(z0.dtype).reshape(shape)


# ----------------------------------------------------------------------------------------------------------
# Checks shared by the real and the fake implementations.


def _check_noising(
    z0: torch.Tensor,
    keys: torch.Tensor,
    slot: torch.Tensor,
    sample: torch.Tensor,
    alpha: torch.Tensor,
    sigma: torch.Tensor,
) -> None:
    """Checks of types, shapes and devices (no values: these cost nothing, also under torch.compile)."""
    op = "noise_noising"
    check_tensor(op, "z0", z0, FLOAT_DTYPES)
    if z0.dim() < 1:
        raise ValueError(f"{op}: z0 must be [N, *latent], got a 0-dimensional tensor")
    check_tensor(op, "keys", keys, (torch.int64,), 1)
    check_tensor(op, "slot", slot, (torch.int64,), 1)
    check_tensor(op, "sample", sample, (torch.int64,), 1)
    check_tensor(op, "alpha", alpha, (torch.float32,), 1)
    check_tensor(op, "sigma", sigma, (torch.float32,), 1)
    check_rows(op, "keys", keys, z0.shape[0], "one key per row of z0")
    rows = slot.shape[0]
    for name, t in (("sample", sample), ("alpha", alpha), ("sigma", sigma)):
        check_rows(op, name, t, rows, "one per row of slot")
    check_same_device(
        op, {"z0": z0, "keys": keys, "slot": slot, "sample": sample, "alpha": alpha, "sigma": sigma}
    )


def _check_sample_values(op: str, sample: torch.Tensor) -> None:
    if sample.numel() and (int(sample.min()) < 0 or int(sample.max()) > _MAX_SAMPLE):
        low, high = int(sample.min()), int(sample.max())
        raise ValueError(f"{op}: sample indices must be in [0, 2**32), got min {low}, max {high}")


def _check_noising_values(slot: torch.Tensor, sample: torch.Tensor, images: int) -> None:
    """Value checks, done where they cost no device synchronisation (CPU) or on the reference path."""
    if slot.numel() and (int(slot.min()) < 0 or int(slot.max()) >= images):
        raise ValueError(
            f"noise_noising: slot must index rows of z0 (0 <= slot < {images}), "
            f"got min {int(slot.min())}, max {int(slot.max())}"
        )
    _check_sample_values("noise_noising", sample)


# ----------------------------------------------------------------------------------------------------------
# Custom ops.


@torch.library.custom_op("genfast::noise_noising", mutates_args=())
def _noise_noising_op(
    z0: torch.Tensor,
    keys: torch.Tensor,
    slot: torch.Tensor,
    sample: torch.Tensor,
    alpha: torch.Tensor,
    sigma: torch.Tensor,
    seed: int,
    antithetic: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """The op behind :func:`noise_noising` (seed as int64 bits): native kernel, else the reference."""
    _check_noising(z0, keys, slot, sample, alpha, sigma)
    module = native_for(z0.device)
    if module is None or z0.device.type == "cpu":
        _check_noising_values(slot, sample, z0.shape[0])
    if module is None:
        return noise_noising_reference(z0, keys, slot, sample, alpha, sigma, seed, antithetic)
    shape = (slot.shape[0], *z0.shape[1:])
    eps = torch.empty(shape, dtype=z0.dtype, device=z0.device)
    z_t = torch.empty_like(eps)
    v = functools.partial(to_view, module)
    module.noise_noising(
        v(z0), v(keys), v(slot), v(sample), v(alpha), v(sigma), as_uint64("noise_noising", "seed", seed),
        antithetic, v(eps), v(z_t), stream_of(z0.device),
    )
    return eps, z_t


@_noise_noising_op.register_fake
def _(z0, keys, slot, sample, alpha, sigma, seed, antithetic):
    _check_noising(z0, keys, slot, sample, alpha, sigma)
    eps = z0.new_empty((slot.shape[0], *z0.shape[1:]))
    return eps, torch.empty_like(eps)


def _check_bits(keys: torch.Tensor, sample: torch.Tensor, count: int) -> None:
    """Checks of types, shapes and devices of the bits op."""
    op = "noise_bits"
    check_tensor(op, "keys", keys, (torch.int64,), 1)
    check_tensor(op, "sample", sample, (torch.int64,), 1)
    check_rows(op, "sample", sample, keys.shape[0], "one per key")
    check_same_device(op, {"keys": keys, "sample": sample})
    if count < 0:
        raise ValueError(f"{op}: count must be >= 0, got {count}")


@torch.library.custom_op("genfast::noise_bits", mutates_args=())
def _noise_bits_op(keys: torch.Tensor, sample: torch.Tensor, seed: int, count: int) -> torch.Tensor:
    """The op behind :func:`noise_bits` (seed as int64 bits): native kernel, else the reference."""
    _check_bits(keys, sample, count)
    module = native_for(keys.device)
    if module is None or keys.device.type == "cpu":
        _check_sample_values("noise_bits", sample)
    if module is None:
        return noise_bits_reference(keys, sample, seed, count)
    out = torch.empty((keys.shape[0], count), dtype=torch.int64, device=keys.device)
    module.noise_bits(
        to_view(module, keys), to_view(module, sample), as_uint64("noise_bits", "seed", seed), to_view(module, out),
        stream_of(keys.device),
    )
    return out


@_noise_bits_op.register_fake
def _(keys, sample, seed, count):
    _check_bits(keys, sample, count)
    return keys.new_empty((keys.shape[0], count))


# ----------------------------------------------------------------------------------------------------------
# Public functions.


def noise_noising(
    z0: torch.Tensor,
    keys: torch.Tensor,
    slot: torch.Tensor,
    sample: torch.Tensor,
    alpha: torch.Tensor,
    sigma: torch.Tensor,
    seed: int,
    antithetic: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Noise and noised latents for R rows: ``eps[r] = eps(seed, keys[slot[r]], sample[r])`` (antithetic:
    ``(-1)**j eps(.., j // 2)``) and ``z_t[r] = alpha[r] z0[slot[r]] + sigma[r] eps[r]``, both [R, *latent] in
    z0's dtype (z_t computed in float32 from the returned eps). ``seed`` is any 64-bit number."""
    seed = as_int64_bits("noise_noising", "seed", seed)
    return torch.ops.genfast.noise_noising(z0, keys, slot, sample, alpha, sigma, seed, antithetic)


def noise_bits(keys: torch.Tensor, sample: torch.Tensor, seed: int, count: int) -> torch.Tensor:
    """The raw Philox words behind the noise: int64 [R, count] with values in [0, 2**32), word ``i`` of row
    ``r`` feeding element ``i`` of ``eps(seed, keys[r], sample[r])``. For exact CPU/CUDA comparisons."""
    seed = as_int64_bits("noise_bits", "seed", seed)
    return torch.ops.genfast.noise_bits(keys, sample, seed, count)


def noise(
    seed: int,
    key: int,
    samples: Sequence[int] | torch.Tensor,
    shape: Sequence[int],
    *,
    antithetic: bool = False,
    device: torch.device | str | None = None,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """The noise genfast uses for samples ``samples`` of the image with 64-bit ``key`` under ``seed``:
    [len(samples), *shape]. Lets anyone audit a run: the same numbers whatever batching produced them."""
    op = "noise"
    key_bits = as_int64_bits(op, "key", key)
    if dtype not in FLOAT_DTYPES:
        raise TypeError(f"{op}: dtype must be float32/float16/bfloat16, got {dtype}")
    shape = tuple(int(s) for s in shape)
    if any(s < 0 for s in shape):
        raise ValueError(f"{op}: shape must not have negative sizes, got {list(shape)}")
    if isinstance(samples, torch.Tensor):
        if samples.dim() != 1 or samples.dtype.is_floating_point or samples.dtype.is_complex:
            raise TypeError(f"{op}: samples must be a 1-d integer tensor, got {samples.dtype} {list(samples.shape)}")
        sample = samples.to(device=device if device is not None else samples.device, dtype=torch.int64)
    else:
        sample = torch.tensor([int(j) for j in samples], dtype=torch.int64, device=device)
    device = sample.device
    rows = sample.shape[0]
    z0 = torch.zeros((1, *shape), dtype=dtype, device=device)
    keys = torch.tensor([key_bits], dtype=torch.int64, device=device)
    slot = torch.zeros(rows, dtype=torch.int64, device=device)
    alpha = torch.zeros(rows, dtype=torch.float32, device=device)
    sigma = torch.ones(rows, dtype=torch.float32, device=device)
    eps, _ = noise_noising(z0, keys, slot, sample, alpha, sigma, seed=seed, antithetic=antithetic)
    return eps
