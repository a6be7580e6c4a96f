"""Masks from seeds: keystream PRGs and HKDF-SHA256 seed derivation.

A mask is a keystream read as little-endian uint32 words, of one of two PRGs
(every party of a round uses the round's):

- ``chacha20``: ChaCha20 (RFC 8439) under the 256-bit seed, zero nonce;
- ``aes128-ctr``: AES-128 in counter mode (NIST SP 800-38A) under the seed's
  first 16 bytes, counter block starting at zero and counting up as one
  big-endian 128-bit integer. Past its first two blocks it is read from
  AES-GCM's encryption of zeros under a zero 96-bit IV, whose counter blocks
  are the same (NIST SP 800-38D: block i is IV || i as a 32-bit big-endian
  counter, from 2), so OpenSSL's stitched GCM code makes it; with AES
  instructions that is about three times ChaCha20's speed
  (docs/privacy.md#cost).

Each seed is used for exactly one mask, so the fixed nonce or initial counter
is safe: pairwise seeds are bound by HKDF (RFC 5869) to the run, the round and
both party ids, and self-mask seeds are fresh random bytes.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from typing import Protocol

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from fednet.secagg.errors import SecAggError

U32 = npt.NDArray[np.uint32]
SEED_BYTES = 32
CHACHA20 = "chacha20"
AES128_CTR = "aes128-ctr"
PRGS = (CHACHA20, AES128_CTR)
"""The keystream PRGs a round can use; ChaCha20 is every release's default."""
# 2^16 words (256 KiB) per chunk stays in cache and measured fastest.
CHUNK = 1 << 16
# The 32-bit ChaCha20 block counter allows 2^32 blocks of 16 words; AES-CTR
# read from GCM allows its two blocks plus GCM's 2^32 - 2 blocks of 4 words.
MAX_LENGTH = 1 << 34
_HEAD = 32  # bytes: AES-CTR's counter blocks 0 and 1, before GCM's first
# cryptography before 43 wants room for one block (16 bytes) less a byte
# beyond the data in ``update_into``'s buffer, even in counter modes.
_SLACK = 4  # words
_ZEROS = memoryview(bytes(4 * CHUNK))
_DOMAIN = b"fednet-secagg-v1"
_BIG_ENDIAN = not np.little_endian


def expand_seed(seed: bytes, length: int, prg: str = CHACHA20) -> U32:
    """Expand a 32-byte seed into a uint32 mask of the given length.

    Raises:
        SecAggError: on a seed that is not 32 bytes, a bad length or PRG.
    """
    mask = np.zeros(_check_length(length), dtype=np.uint32)
    add_mask(mask, seed, 1, prg)
    return mask


def add_mask(acc: U32, seed: bytes, sign: int, prg: str = CHACHA20) -> None:
    """Add (sign 1) or subtract (sign -1) the mask of a seed into acc, mod 2^32.

    Raises:
        SecAggError: on a bad seed, sign, accumulator or PRG.
    """
    add_masks(acc, [(seed, sign)], prg)


def add_masks(
    acc: U32, masks: Sequence[tuple[bytes, int]], prg: str = CHACHA20
) -> None:
    """Add or subtract the masks of several seeds into acc, mod 2^32, in one pass.

    For each chunk of ``acc`` every seed's keystream is generated and folded
    in while the chunk is in cache, so ``acc`` is read and written once
    whatever the number of masks, and no mask-sized buffer is allocated.

    Args:
        acc: a flat, contiguous uint32 array, changed in place.
        masks: (seed, sign) pairs: 32-byte seeds, signs 1 (add) or -1 (subtract).
        prg: one of :data:`PRGS`.

    Raises:
        SecAggError: on a bad seed, sign, accumulator or PRG (before acc
            changes).
    """
    if not isinstance(acc, np.ndarray) or acc.dtype != np.uint32 or acc.ndim != 1:
        raise SecAggError("acc must be a flat uint32 array")
    _check_length(acc.size)
    streams = []
    for seed, sign in masks:
        if sign not in (1, -1):
            raise SecAggError(f"sign must be 1 or -1, got {sign!r}")
        streams.append((_encryptor(seed, prg), np.add if sign == 1 else np.subtract))
    words = np.empty(min(acc.size, CHUNK) + _SLACK, dtype=np.uint32)
    view = words.data.cast("B")
    for start in range(0, acc.size, CHUNK):
        part = acc[start : start + CHUNK]
        count = part.size
        for encryptor, op in streams:
            encryptor.update_into(_ZEROS[: 4 * count], view[: 4 * (count + _SLACK)])
            if _BIG_ENDIAN:
                words.byteswap(inplace=True)
            op(part, words[:count], out=part)


def derive_key(
    secret: bytes,
    *,
    label: str,
    run_id: str,
    server_round: int,
    first: str,
    second: str,
) -> bytes:
    """Derive a 32-byte key from a shared secret, bound to its whole context.

    Fields are length-prefixed, so no two contexts encode alike; the order of
    ``first`` and ``second`` matters.

    Raises:
        SecAggError: on a secret that is not bytes or a bad server_round.
    """
    if not isinstance(secret, bytes) or not secret:
        raise SecAggError("secret must be non-empty bytes")
    if not isinstance(server_round, int) or not 0 <= server_round < 1 << 64:
        raise SecAggError(f"server_round out of range: {server_round!r}")
    fields = [label.encode(), run_id.encode(), struct.pack(">Q", server_round)]
    fields += [first.encode(), second.encode()]
    info = _DOMAIN + b"".join(struct.pack(">I", len(f)) + f for f in fields)
    hkdf = HKDF(algorithm=hashes.SHA256(), length=SEED_BYTES, salt=None, info=info)
    return hkdf.derive(secret)


def derive_mask_seed(
    secret: bytes, *, run_id: str, server_round: int, party_a: str, party_b: str
) -> bytes:
    """Derive the pairwise mask seed of two parties from their X25519 secret.

    The party ids are put in canonical (sorted) order, so both ends agree.

    Raises:
        SecAggError: on a secret that is not bytes.
    """
    first, second = sorted((party_a, party_b))
    return derive_key(
        secret,
        label="mask",
        run_id=run_id,
        server_round=server_round,
        first=first,
        second=second,
    )


class _Keystream(Protocol):
    """XOR a PRG's next keystream bytes into a buffer (a cipher context's API)."""

    def update_into(self, data: memoryview, buf: memoryview) -> int: ...


class _AesCtr:
    """AES-128-CTR from counter 0: two blocks of CTR, then GCM's keystream.

    GCM encrypts block i (i >= 2) of a message under a 96-bit IV with the
    counter block IV || i, so under a zero IV its ciphertext of zeros is
    CTR's keystream from block 2 for as long as i fits 32 bits, which
    :data:`MAX_LENGTH` keeps. Its tag is never computed.
    """

    def __init__(self, key: bytes) -> None:
        ctr = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        self._head = memoryview(ctr.update(bytes(_HEAD)))
        self._body = Cipher(algorithms.AES(key), modes.GCM(bytes(12))).encryptor()

    def update_into(self, data: memoryview, buf: memoryview) -> int:
        """Write ``data`` XOR the next keystream bytes into ``buf`` (a block longer)."""
        size = len(data)
        first = min(size, len(self._head))
        if first:
            head = np.frombuffer(self._head[:first], dtype=np.uint8)
            np.bitwise_xor(np.frombuffer(data[:first], dtype=np.uint8), head,
                           out=np.frombuffer(buf[:first], dtype=np.uint8))
            self._head = self._head[first:]
        if size > first:
            self._body.update_into(data[first:], buf[first:])
        return size


def _encryptor(seed: bytes, prg: str) -> _Keystream:
    """Return a keystream generator of the PRG keyed by the seed."""
    if not isinstance(seed, bytes) or len(seed) != SEED_BYTES:
        raise SecAggError(f"seed must be {SEED_BYTES} bytes")
    if prg == CHACHA20:
        return Cipher(algorithms.ChaCha20(seed, bytes(16)), mode=None).encryptor()
    if prg == AES128_CTR:
        return _AesCtr(seed[:16])
    raise SecAggError(f"unknown PRG {prg!r:.40}")


def _check_length(length: int) -> int:
    """Return the length after checking it is an int in [0, MAX_LENGTH]."""
    if isinstance(length, bool) or not isinstance(length, int):
        raise SecAggError(f"length must be an int, got {length!r}")
    if not 0 <= length <= MAX_LENGTH:
        raise SecAggError(f"length must be in [0, {MAX_LENGTH}], got {length}")
    return length
