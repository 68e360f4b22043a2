"""Counter-based noise and fused noising: native op against the PyTorch reference, invariance to batching and
order, statistics, antithetic pairs, CPU against CUDA, and clear errors on bad input."""
from __future__ import annotations

import functools
import math

import numpy as np
import pytest
import torch
from scipy import stats

import genfast
from genfast import _native
from genfast.ops import noise as noise_ops
from genfast.ops._tensors import native_for
from genfast.ops.noise import noise, noise_bits, noise_bits_reference, noise_noising, noise_noising_reference

DTYPES = [torch.float32, torch.float16, torch.bfloat16]
SEED = 20231101


def _rows(n_images: int, rows: int, latent: tuple[int, ...], dtype: torch.dtype, gen: torch.Generator):
    z0 = torch.randn((n_images, *latent), generator=gen).to(dtype)
    keys = torch.randint(-(2**63), 2**63 - 1, (n_images,), generator=gen, dtype=torch.int64)
    slot = torch.randint(0, n_images, (rows,), generator=gen)
    sample = torch.randint(0, 50, (rows,), generator=gen)
    alpha = torch.rand(rows, generator=gen)
    sigma = torch.rand(rows, generator=gen)
    return z0, keys, slot, sample, alpha, sigma


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("antithetic", [False, True])
@pytest.mark.parametrize("latent", [(4, 7, 9), (3,), (1, 5, 13)])
def test_noising_matches_reference(dtype, antithetic, latent):
    gen = torch.Generator().manual_seed(1)
    args = _rows(3, 7, latent, dtype, gen)
    eps, z_t = noise_noising(*args, seed=SEED, antithetic=antithetic)
    eps_ref, z_t_ref = noise_noising_reference(*args, SEED, antithetic)
    assert eps.dtype == z_t.dtype == dtype and eps.shape == z_t.shape == (7, *latent)
    torch.testing.assert_close(eps, eps_ref, rtol=1e-6, atol=1e-6)
    torch.testing.assert_close(z_t, z_t_ref, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_rounding_to_half_types_matches_torch(dtype):
    """z_t is rounded to z0's dtype exactly as torch rounds: ties to even, subnormals, overflow to inf."""
    gen = torch.Generator().manual_seed(10)
    info = torch.finfo(dtype)
    log2 = torch.empty(64, 257).uniform_(math.log2(info.tiny) - 12, math.log2(info.max) + 1, generator=gen)
    magnitude = torch.exp2(log2)
    z0 = (magnitude * torch.randn(64, 257, generator=gen).sign()).to(dtype)
    rows = 64
    slot = torch.arange(rows)
    alpha = torch.empty(rows).uniform_(0.3, 3.0, generator=gen)
    # ties: 1 + half an ulp rounds down to 1, 1 + 1.5 ulp rounds up to 1 + 2 ulp (to even)
    half_ulp = info.eps / 2
    z0[:2] = 1.0
    alpha[0], alpha[1] = 1 + half_ulp, 1 + 3 * half_ulp
    sigma = torch.zeros(rows)  # z_t = alpha z0: values across the whole range of the dtype
    args = (z0, torch.arange(rows), slot, torch.zeros(rows, dtype=torch.int64), alpha, sigma, 1)
    _, z_t = noise_noising(*args)
    _, z_t_ref = noise_noising_reference(*args)
    assert torch.isinf(z_t_ref).any() and (z_t_ref.abs() < info.tiny).any()  # the input reaches both ends
    assert torch.equal(z_t.view(torch.int16), z_t_ref.view(torch.int16))
    assert (z_t[0] == 1).all() and (z_t[1] == 1 + 2 * info.eps).all()


def test_noising_formula():
    """z_t = alpha z0[slot] + sigma eps, checked in float64 against the returned eps."""
    gen = torch.Generator().manual_seed(2)
    z0, keys, slot, sample, alpha, sigma = _rows(4, 9, (2, 5, 5), torch.float32, gen)
    eps, z_t = noise_noising(z0, keys, slot, sample, alpha, sigma, seed=3)
    expected = alpha.double()[:, None, None, None] * z0.double()[slot] + sigma.double()[:, None, None, None] * eps
    torch.testing.assert_close(z_t.double(), expected, rtol=1e-6, atol=1e-6)


def test_fallback_path_matches_native(monkeypatch):
    """With the native core unavailable the op uses the reference and returns the same numbers."""
    if not _native.available():
        pytest.skip(f"native core not loaded: {_native.LOAD_ERROR}")
    gen = torch.Generator().manual_seed(3)
    args = _rows(2, 5, (3, 11), torch.float32, gen)
    native = noise_noising(*args, seed=9, antithetic=True)
    monkeypatch.setattr(noise_ops, "native_for", lambda device: None)
    fallback = noise_noising(*args, seed=9, antithetic=True)
    for a, b in zip(native, fallback):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-6)


def test_bits_match_reference():
    gen = torch.Generator().manual_seed(4)
    keys = torch.randint(-(2**63), 2**63 - 1, (6,), generator=gen, dtype=torch.int64)
    sample = torch.tensor([0, 1, 2, 7, 2**32 - 1, 12345])
    bits = noise_bits(keys, sample, seed=2**64 - 5, count=13)
    assert bits.dtype == torch.int64 and bits.shape == (6, 13)
    assert int(bits.min()) >= 0 and int(bits.max()) < 2**32
    assert torch.equal(bits, noise_bits_reference(keys, sample, -5, 13))


def test_noise_is_invariant_to_batching_and_order():
    """The same (seed, key, j) gives the same eps whatever rows share the call and in which order."""
    shape = (4, 6, 5)
    gen = torch.Generator().manual_seed(5)
    z0, keys, slot, sample, alpha, sigma = _rows(5, 12, shape, torch.float32, gen)
    eps, _ = noise_noising(z0, keys, slot, sample, alpha, sigma, seed=SEED)
    perm = torch.randperm(12, generator=gen)
    image_perm = torch.randperm(5, generator=gen)  # the images in another order, too
    inverse = torch.argsort(image_perm)
    eps_perm, _ = noise_noising(
        z0[image_perm], keys[image_perm], inverse[slot[perm]], sample[perm], alpha[perm], sigma[perm], seed=SEED
    )
    torch.testing.assert_close(eps_perm, eps[perm], rtol=0, atol=0)
    for r in (0, 5, 11):  # each row alone, through the public audit function
        alone = noise(SEED, int(keys[slot[r]]), [int(sample[r])], shape)
        torch.testing.assert_close(alone[0], eps[r], rtol=0, atol=0)


def test_noise_depends_on_seed_key_and_sample():
    base = noise(1, 2, [3], (64,))
    for other in (noise(2, 2, [3], (64,)), noise(1, 3, [3], (64,)), noise(1, 2, [4], (64,))):
        assert not torch.equal(base, other)


def test_noise_keys_as_unsigned_or_int64_bits():
    assert torch.equal(noise(7, 2**64 - 1, [0], (9,)), noise(7, -1, [0], (9,)))
    assert torch.equal(noise(2**64 - 1, 5, [0], (9,)), noise(-1, 5, [0], (9,)))


def test_noise_elements_follow_philox_words():
    """Element i of a sample is normal i % 4 of word i // 4: a longer shape extends a shorter one."""
    long = noise(11, 12, [0, 1], (10,))
    short = noise(11, 12, [0, 1], (7,))
    torch.testing.assert_close(long[:, :7], short, rtol=0, atol=0)
    reshaped = noise(11, 12, [0, 1], (2, 5))
    torch.testing.assert_close(reshaped.reshape(2, 10), long, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", DTYPES)
def test_antithetic_pairs_are_exact_negatives(dtype):
    eps = noise(5, 99, list(range(8)), (3, 17), antithetic=True, dtype=dtype)
    plain = noise(5, 99, list(range(4)), (3, 17), dtype=dtype)
    assert torch.equal(eps[0::2], plain)
    assert torch.equal(eps[1::2], -plain)


def test_noise_statistics():
    eps = noise(SEED, 123, list(range(64)), (4096,)).double()
    flat = eps.flatten().numpy()
    assert abs(flat.mean()) < 4 / math.sqrt(flat.size)
    assert abs(flat.var() - 1) < 4 * math.sqrt(2 / flat.size)
    assert stats.kstest(flat, "norm").pvalue > 1e-3
    assert stats.normaltest(flat).pvalue > 1e-3
    # samples of one image are uncorrelated with each other
    corr = np.corrcoef(eps.numpy())
    off_diagonal = corr[~np.eye(64, dtype=bool)]
    assert np.abs(off_diagonal).max() < 5 / math.sqrt(4096)
    # element positions (e.g. neighbours, the two outputs of one Box-Muller pair) are uncorrelated
    by_position = np.corrcoef(noise(SEED, 1, list(range(4096)), (8,)).T.numpy())
    assert np.abs(by_position[~np.eye(8, dtype=bool)]).max() < 5 / math.sqrt(4096)
    # different keys are uncorrelated
    other = noise(SEED, 124, list(range(64)), (4096,)).double()
    assert abs(np.corrcoef(flat, other.flatten().numpy())[0, 1]) < 5 / math.sqrt(flat.size)


def test_noise_accepts_tensor_samples_and_dtype():
    eps = noise(1, 2, torch.tensor([3, 0], dtype=torch.int32), (5,), dtype=torch.bfloat16)
    assert eps.dtype == torch.bfloat16 and eps.shape == (2, 5)
    torch.testing.assert_close(eps.float(), noise(1, 2, [3, 0], (5,)).bfloat16().float(), rtol=0, atol=0)
    assert noise(1, 2, [], (3,)).shape == (0, 3)


def test_empty_reference():
    z0, keys, _, _, _, _ = _rows(2, 1, (3,), torch.float32, torch.Generator().manual_seed(0))
    empty_i, empty_f = torch.empty(0, dtype=torch.int64), torch.empty(0)
    eps, z_t = noise_noising_reference(z0, keys, empty_i, empty_i, empty_f, empty_f, 1)
    assert eps.shape == z_t.shape == (0, 3)


def test_public_export():
    assert genfast.noise is noise


def test_opcheck():
    gen = torch.Generator().manual_seed(6)
    z0, keys, slot, sample, alpha, sigma = _rows(3, 4, (2, 3, 5), torch.float16, gen)
    torch.library.opcheck(torch.ops.genfast.noise_noising.default, (z0, keys, slot, sample, alpha, sigma, -7, True))
    torch.library.opcheck(torch.ops.genfast.noise_bits.default, (keys[slot], sample, 7, 9))


# ---------------------------------------------------------------------------------------------------- errors


def _good():
    return _rows(3, 4, (2, 5), torch.float32, torch.Generator().manual_seed(7))


@pytest.mark.parametrize(
    "index,bad,error,match",
    [
        (0, lambda t: t.double(), TypeError, "z0 must be float32/float16/bfloat16"),
        (0, lambda t: t.transpose(0, 1), ValueError, "z0 must be contiguous"),
        (1, lambda t: t.int(), TypeError, "keys must be int64"),
        (1, lambda t: t[:2], ValueError, "keys has shape"),
        (2, lambda t: t.float(), TypeError, "slot must be int64"),
        (2, lambda t: t + 3, ValueError, "slot must index rows of z0"),
        (3, lambda t: t - 100, ValueError, r"sample indices must be in \[0, 2\*\*32\)"),
        (3, lambda t: t[:3], ValueError, "sample has shape"),
        (4, lambda t: t.double(), TypeError, "alpha must be float32"),
        (5, lambda t: t.reshape(2, 2), ValueError, "sigma must have 1 dimension"),
        (5, lambda t: t.to("meta"), ValueError, "sigma is on meta but z0 is on cpu"),
    ],
)
def test_bad_inputs_raise_clear_errors(index, bad, error, match):
    args = list(_good())
    args[index] = bad(args[index])
    with pytest.raises(error, match=match):
        noise_noising(*args, seed=1)


def test_bad_seed_and_key():
    with pytest.raises(ValueError, match="seed = .* does not fit in 64 bits"):
        noise_noising(*_good(), seed=2**64)
    with pytest.raises(TypeError, match="key must be an int"):
        noise(1, 2.5, [0], (3,))
    with pytest.raises(TypeError, match="dtype must be"):
        noise(1, 2, [0], (3,), dtype=torch.int32)


def test_native_binding_checks_views():
    """The native entry point checks its views too (it can be called directly) and raises ValueError."""
    module = native_for(torch.device("cpu"))
    if module is None:
        pytest.skip(f"native core not loaded: {_native.LOAD_ERROR}")
    z0, keys, slot, sample, alpha, sigma = _good()
    eps = torch.empty(4, 2, 5)
    short = torch.empty(3, 2, 5)
    v = functools.partial(noise_ops.to_view, module)
    with pytest.raises(ValueError, match="noise_noising: z_t has shape"):
        module.noise_noising(v(z0), v(keys), v(slot), v(sample), v(alpha), v(sigma), 1, False, v(eps), v(short))
    with pytest.raises(ValueError, match="slot"):
        module.noise_noising(v(z0), v(keys), v(slot + 5), v(sample), v(alpha), v(sigma), 1, False, v(eps), v(eps))


# ------------------------------------------------------------------------------------------------------ CUDA


def _cuda_reason() -> str | None:
    if not torch.cuda.is_available():
        return "no CUDA device visible to torch"
    if native_for(torch.device("cuda")) is None:
        return "the native core has no usable CUDA kernels here (see python -m genfast.info)"
    return None


cuda = pytest.mark.skipif(_cuda_reason() is not None, reason=str(_cuda_reason()))


@pytest.mark.cuda
@cuda
def test_cuda_bits_equal_cpu_bits():
    gen = torch.Generator().manual_seed(8)
    keys = torch.randint(-(2**63), 2**63 - 1, (5,), generator=gen, dtype=torch.int64)
    sample = torch.tensor([0, 3, 2**31, 2**32 - 1, 17])
    cpu = noise_bits(keys, sample, seed=SEED, count=4099)
    gpu = noise_bits(keys.cuda(), sample.cuda(), seed=SEED, count=4099)
    assert torch.equal(gpu.cpu(), cpu)


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("dtype", DTYPES)
def test_cuda_noising_matches_cpu(dtype):
    gen = torch.Generator().manual_seed(9)
    args = _rows(4, 9, (4, 13, 11), dtype, gen)
    cpu = noise_noising(*args, seed=SEED, antithetic=True)
    gpu = noise_noising(*(a.cuda() for a in args), seed=SEED, antithetic=True)
    tol = 1e-6 if dtype == torch.float32 else 1e-2
    for c, g in zip(cpu, gpu):
        torch.testing.assert_close(g.cpu(), c, rtol=tol, atol=tol)
    ref = noise_noising_reference(*(a.cuda() for a in args), SEED, True)
    for r, g in zip(ref, gpu):
        torch.testing.assert_close(g, r, rtol=tol, atol=tol)
