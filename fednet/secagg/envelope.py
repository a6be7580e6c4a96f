"""X25519 key agreement and AES-GCM encryption of the shares one party sends another.

The AES-256-GCM key is derived with HKDF from the c-key agreement and bound to
the direction (sender, receiver), the run and the round, so each key seals one
message; the associated data binds the same fields again.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.asymmetric.x25519 import (
    X25519PrivateKey,
    X25519PublicKey,
)
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from fednet.secagg.context import CIPHERTEXT_BYTES, KEY_BYTES, NONCE_BYTES
from fednet.secagg.context import RoundContext
from fednet.secagg.errors import SecAggError
from fednet.secagg.prg import derive_key
from fednet.secagg.shamir import RandomBytes, draw_bytes


def generate_key(rng_bytes: RandomBytes) -> X25519PrivateKey:
    """Make an X25519 private key from 32 bytes of the injected randomness."""
    return X25519PrivateKey.from_private_bytes(draw_bytes(rng_bytes, KEY_BYTES))


def public_bytes(key: X25519PrivateKey) -> bytes:
    """Return the raw 32-byte public key of a private key."""
    return key.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)


def agree(key: X25519PrivateKey, peer_public: bytes, peer: str) -> bytes:
    """Compute the X25519 shared secret with a peer's raw public key.

    Raises:
        SecAggError: on a key that is not 32 bytes or a low-order point.
    """
    if not isinstance(peer_public, bytes) or len(peer_public) != KEY_BYTES:
        raise SecAggError(f"public key of {peer} must be {KEY_BYTES} bytes")
    try:
        return key.exchange(X25519PublicKey.from_public_bytes(peer_public))
    except ValueError as e:
        raise SecAggError(f"bad public key from {peer}") from e


def encrypt_shares(
    secret: bytes,
    context: RoundContext,
    sender: str,
    receiver: str,
    plaintext: bytes,
    nonce: bytes,
) -> bytes:
    """Seal the share pair for one receiver: nonce || ciphertext || tag.

    Args:
        secret: the c-key agreement of sender and receiver.
        context: the round.
        sender: who encrypts.
        receiver: who may decrypt.
        plaintext: the two 66-byte share values.
        nonce: 12 fresh random bytes.
    """
    aead, associated = _aead(secret, context, sender, receiver)
    sealed = nonce + aead.encrypt(nonce, plaintext, associated)
    assert len(sealed) == CIPHERTEXT_BYTES
    return sealed


def decrypt_shares(
    secret: bytes, context: RoundContext, sender: str, receiver: str, sealed: bytes
) -> bytes:
    """Open the share pair a sender sealed for this receiver.

    Raises:
        SecAggError: on a wrong size or a failed authentication (tampering,
            a wrong sender, receiver, run or round).
    """
    if not isinstance(sealed, bytes) or len(sealed) != CIPHERTEXT_BYTES:
        raise SecAggError(f"ciphertext from {sender} must be {CIPHERTEXT_BYTES} bytes")
    aead, associated = _aead(secret, context, sender, receiver)
    try:
        return aead.decrypt(sealed[:NONCE_BYTES], sealed[NONCE_BYTES:], associated)
    except InvalidTag as e:
        raise SecAggError(f"shares from {sender} failed authentication") from e


def _aead(
    secret: bytes, context: RoundContext, sender: str, receiver: str
) -> tuple[AESGCM, bytes]:
    """Return the directional AES-GCM key and the associated data."""
    key = derive_key(
        secret,
        label="shares",
        run_id=context.run_id,
        server_round=context.server_round,
        first=sender,
        second=receiver,
    )
    fields = ("fednet-secagg-v1 shares", sender, receiver, context.run_id)
    associated = b"".join(
        len(f.encode()).to_bytes(4, "big") + f.encode() for f in fields
    ) + context.server_round.to_bytes(8, "big")
    return AESGCM(key), associated
