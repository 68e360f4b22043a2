"""Philox-4x32-10: the native binding and the PyTorch reference against Random123's known-answer vectors, and
genfast's counter layout (seed -> key, (word, sample, image key) -> counter)."""
from __future__ import annotations

import pytest
import torch

from genfast import _native
from genfast.ops.noise import noise_bits, philox4x32_10_reference

# (counter, key, expected output) from Random123's kat_vectors for philox4x32_10.
KNOWN_ANSWERS = [
    ((0, 0, 0, 0), (0, 0), (0x6627E8D5, 0xE169C58D, 0xBC57AC4C, 0x9B00DBD8)),
    ((0xFFFFFFFF,) * 4, (0xFFFFFFFF,) * 2, (0x408F276D, 0x41C83B0E, 0xA20BC7C6, 0x6D5451FD)),
    (
        (0x243F6A88, 0x85A308D3, 0x13198A2E, 0x03707344),
        (0xA4093822, 0x299F31D0),
        (0xD16CFE09, 0x94FDCCEB, 0x5001E420, 0x24126EA1),
    ),
]

needs_native = pytest.mark.skipif(not _native.available(), reason=f"native core not loaded: {_native.LOAD_ERROR}")


@needs_native
@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_native_philox_known_answers(counter, key, expected):
    assert tuple(_native.native().philox4x32_10(counter, key)) == expected


@pytest.mark.parametrize("counter,key,expected", KNOWN_ANSWERS)
def test_reference_philox_known_answers(counter, key, expected):
    out = philox4x32_10_reference([torch.tensor([c], dtype=torch.int64) for c in counter], key)
    assert tuple(int(w) for w in out) == expected


@needs_native
def test_native_philox_rejects_words_out_of_range():
    with pytest.raises(TypeError):
        _native.native().philox4x32_10((1 << 32, 0, 0, 0), (0, 0))


@pytest.mark.parametrize("seed,key", [(0, 0), (123456789, 42), (2**64 - 1, -(2**63)), (0xDEADBEEFCAFEF00D, 2**62 + 7)])
def test_counter_layout(seed, key):
    """noise_bits(seed, key, j)[i] is word i % 4 of Philox((i // 4, j, key lo, key hi), (seed lo, seed hi))."""
    key_u = key % 2**64
    samples = [0, 1, 5, 2**32 - 1]
    keys = torch.full((len(samples),), key if key < 2**63 else key - 2**64, dtype=torch.int64)
    bits = noise_bits(keys, torch.tensor(samples), seed=seed, count=10)
    for row, j in enumerate(samples):
        for word in range(3):
            counter = [torch.tensor([c]) for c in (word, j, key_u & 0xFFFFFFFF, key_u >> 32)]
            expected = philox4x32_10_reference(counter, (seed & 0xFFFFFFFF, seed >> 32))
            for q in range(4):
                if 4 * word + q < 10:
                    assert int(bits[row, 4 * word + q]) == int(expected[q]), (row, word, q)
