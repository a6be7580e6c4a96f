"""The mask PRGs (ChaCha20, AES-128-CTR) and HKDF seed derivation."""

from __future__ import annotations

import numpy as np
import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from fednet.secagg import prg as prg_module
from fednet.secagg.errors import SecAggError
from fednet.secagg.context import RoundContext
from fednet.secagg.prg import (
    AES128_CTR,
    CHUNK,
    PRGS,
    add_mask,
    add_masks,
    derive_key,
    derive_mask_seed,
    expand_seed,
)

SEED = bytes(range(32))


def test_expand_seed_is_the_chacha20_keystream_as_little_endian_words() -> None:
    """The mask equals ChaCha20(seed, zero nonce) over zeros, read as <u4."""
    length = 2 * CHUNK + 7
    encryptor = Cipher(algorithms.ChaCha20(SEED, bytes(16)), mode=None).encryptor()
    expected = np.frombuffer(encryptor.update(bytes(4 * length)), "<u4")
    np.testing.assert_array_equal(expand_seed(SEED, length), expected)


def test_aes_ctr_mask_is_aes_of_a_big_endian_counter_from_zero() -> None:
    """Block i of the mask is AES-128 (the seed's first 16 bytes) of i, as <u4.

    Built from single-block AES, so it checks the counter, its byte order
    across a chunk boundary and the key half, not a second CTR mode.
    """
    length = CHUNK + 12  # past a chunk of the one-pass loop
    encrypt = Cipher(algorithms.AES(SEED[:16]), modes.ECB()).encryptor()
    blocks = (i.to_bytes(16, "big") for i in range(length // 4))
    expected = np.frombuffer(b"".join(encrypt.update(b) for b in blocks), "<u4")
    np.testing.assert_array_equal(expand_seed(SEED, length, AES128_CTR), expected)
    chacha = expand_seed(SEED, length)
    assert np.count_nonzero(chacha == expected) < 5


@pytest.mark.parametrize("length", [1, 3, 7, 8, 9, 13, CHUNK - 1])
def test_aes_ctr_mask_of_any_length_starts_at_counter_zero(length: int) -> None:
    """Short masks too: ending inside, at and just past the first two blocks.

    Those two blocks come from CTR and the rest from GCM's counter blocks
    (which start at 2), so each length meets that seam differently.
    """
    encrypt = Cipher(algorithms.AES(SEED[:16]), modes.ECB()).encryptor()
    blocks = (i.to_bytes(16, "big") for i in range(length // 4 + 1))
    stream = b"".join(encrypt.update(b) for b in blocks)
    expected = np.frombuffer(stream[: 4 * length], "<u4")
    np.testing.assert_array_equal(expand_seed(SEED, length, AES128_CTR), expected)


@pytest.mark.parametrize("prg", PRGS)
def test_keystream_buffers_leave_room_for_a_block(
    prg: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every ``update_into`` gets a buffer 15 bytes longer than its data.

    cryptography before 43 (``>=42`` is allowed) refuses a shorter one, even
    in counter modes; later versions accept either.
    """
    made = prg_module._encryptor

    class Strict:
        def __init__(self, seed: bytes, name: str) -> None:
            self.inner = made(seed, name)

        def update_into(self, data: memoryview, buf: memoryview) -> int:
            assert len(buf) >= len(data) + 15
            return self.inner.update_into(data, buf)

    monkeypatch.setattr(prg_module, "_encryptor", Strict)
    length = CHUNK + 5
    acc = np.zeros(length, dtype=np.uint32)
    add_masks(acc, [(SEED, 1)], prg)
    monkeypatch.undo()
    np.testing.assert_array_equal(acc, expand_seed(SEED, length, prg))


def test_same_seed_same_mask_and_prefix_property() -> None:
    """One seed always gives the same words; a shorter mask is a prefix."""
    np.testing.assert_array_equal(expand_seed(SEED, 1000), expand_seed(SEED, 1000))
    np.testing.assert_array_equal(expand_seed(SEED, 10), expand_seed(SEED, 1000)[:10])
    assert expand_seed(SEED, 0).shape == (0,)


def test_different_seeds_give_independent_masks() -> None:
    """Seeds one bit apart share about 2^-32 of their words, i.e. none."""
    other = bytes([SEED[0] ^ 1]) + SEED[1:]
    a, b = expand_seed(SEED, 100_000), expand_seed(other, 100_000)
    assert np.count_nonzero(a == b) <= 1
    assert abs(np.corrcoef(a.astype(np.float64), b.astype(np.float64))[0, 1]) < 0.02


def test_mask_bytes_look_uniform() -> None:
    """A chi-square test over 256 byte values and the mean of the words pass."""
    words = expand_seed(SEED, 1 << 18)
    counts = np.bincount(words.view(np.uint8), minlength=256)
    expected = words.nbytes / 256
    chi2 = float(np.sum((counts - expected) ** 2 / expected))
    # 255 degrees of freedom: P(chi2 > 341) ~ 2.5e-4.
    assert chi2 < 341
    assert abs(words.mean() / 2**32 - 0.5) < 0.005


def test_add_then_subtract_the_same_mask_restores_the_input() -> None:
    """Masks cancel exactly in Z_{2^32}, across chunk boundaries."""
    acc = np.arange(CHUNK + 99, dtype=np.uint32)
    add_mask(acc, SEED, 1)
    assert not np.array_equal(acc, np.arange(CHUNK + 99, dtype=np.uint32))
    add_mask(acc, SEED, -1)
    np.testing.assert_array_equal(acc, np.arange(CHUNK + 99, dtype=np.uint32))


def test_add_masks_in_one_pass_equals_one_mask_at_a_time() -> None:
    """Folding several keystreams chunk by chunk gives each mask's sum, exactly."""
    seeds = [bytes([i]) * 32 for i in range(1, 6)]
    signs = [1, -1, 1, 1, -1]
    size = 2 * CHUNK + 7
    one_by_one = np.arange(size, dtype=np.uint32)
    for seed, sign in zip(seeds, signs):
        add_mask(one_by_one, seed, sign)
    fused = np.arange(size, dtype=np.uint32)
    add_masks(fused, list(zip(seeds, signs)))
    np.testing.assert_array_equal(fused, one_by_one)
    expected = np.arange(size, dtype=np.uint32)
    for seed, sign in zip(seeds, signs):
        mask = expand_seed(seed, size)
        expected = expected + mask if sign == 1 else expected - mask
    np.testing.assert_array_equal(fused, expected)


def test_add_masks_checks_every_seed_before_changing_anything() -> None:
    """A bad seed or sign late in the list leaves the accumulator as it was."""
    acc = np.arange(1000, dtype=np.uint32)
    for bad in ([(SEED, 1), (b"short", 1)], [(SEED, 1), (SEED, 2)]):
        with pytest.raises(SecAggError):
            add_masks(acc, bad)
        np.testing.assert_array_equal(acc, np.arange(1000, dtype=np.uint32))


def test_mask_seed_is_symmetric_and_bound_to_its_context() -> None:
    """Both parties derive the same seed; another round or run derives another."""
    secret = bytes(32)
    ab = derive_mask_seed(secret, run_id="r", server_round=1, party_a="a", party_b="b")
    ba = derive_mask_seed(secret, run_id="r", server_round=1, party_a="b", party_b="a")
    other_round = derive_mask_seed(
        secret, run_id="r", server_round=2, party_a="a", party_b="b"
    )
    other_run = derive_mask_seed(
        secret, run_id="s", server_round=1, party_a="a", party_b="b"
    )
    assert ab == ba and len(ab) == 32
    assert len({ab, other_round, other_run}) == 3


def test_derive_key_fields_are_length_prefixed() -> None:
    """("ab", "c") and ("a", "bc") do not collide."""
    keys = {
        derive_key(b"s", label="x", run_id="r", server_round=0, first=f, second=s)
        for f, s in (("ab", "c"), ("a", "bc"), ("c", "ab"))
    }
    assert len(keys) == 3


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: expand_seed(b"short", 4), "seed must be 32 bytes"),
        (lambda: expand_seed(SEED, -1), "length must be in"),
        (lambda: expand_seed(SEED, 2.0), "length must be an int"),  # type: ignore
        (lambda: add_mask(np.zeros(3, np.int64), SEED, 1), "flat uint32"),
        (lambda: add_mask(np.zeros(3, np.uint32), SEED, 0), "sign must be"),
        (lambda: expand_seed(SEED, 4, "rc4"), "unknown PRG 'rc4'"),
        (lambda: RoundContext("r", 1, ("a", "b"), 2, "rc4"), "unknown PRG 'rc4'"),
    ],
)
def test_bad_prg_input_raises(call: object, message: str) -> None:
    """Each kind of bad input raises SecAggError naming it."""
    with pytest.raises(SecAggError, match=message):
        call()  # type: ignore[operator]


@pytest.mark.parametrize("prg", PRGS)
def test_masks_of_either_prg_cancel(prg: str) -> None:
    """Adding then subtracting masks of one PRG restores the input exactly."""
    acc = np.arange(CHUNK + 3, dtype=np.uint32)
    other = bytes(reversed(SEED))
    add_masks(acc, [(SEED, 1), (other, -1)], prg)
    assert not np.array_equal(acc, np.arange(CHUNK + 3, dtype=np.uint32))
    add_masks(acc, [(other, 1), (SEED, -1)], prg)
    np.testing.assert_array_equal(acc, np.arange(CHUNK + 3, dtype=np.uint32))
