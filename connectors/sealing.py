"""Sealed records: a value that only the holder of one X25519 private key can read.

The hub seals every notification for its unit's newest key, and every retry and dead-letter record for the
operations key, so that a consumer of the raw topics (or of a copy of the broker's disks) reads nothing about a
victim. The scheme is the usual hybrid one: a random AES-256-GCM data key encrypts the value; the data key is
wrapped for the recipient with an ephemeral X25519 key agreement and HKDF-SHA256. A sealed value is
self-describing, so a reader needs only its private keys:

    magic "VCH\\x01" | key id length (1 byte) | key id (ASCII) | ephemeral public key (32) |
    wrapped data key (48) | nonce (12) | AES-GCM ciphertext and tag

Everything before the nonce is authenticated with the ciphertext. One data key serves many records for one
recipient (each with its own random nonce) for at most DATA_KEY_SECONDS or DATA_KEY_RECORDS, so sealing costs
one AES-GCM call per record, not a key agreement.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from dataclasses import dataclass

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

MAGIC = b"VCH\x01"
# The same key id as in the value, for people and tools that look at headers (a replay drops `hub.` headers).
KEY_ID_HEADER = "hub.sealed.key_id"
DATA_KEY_SECONDS = 300.0
DATA_KEY_RECORDS = 1_000_000  # far below AES-GCM's limit for random nonces under one key
_INFO = b"victim-contact-hub sealed record v1"
_NONCE = 12
_WRAPPED = 32 + 16
_ZERO_NONCE = bytes(_NONCE)  # the key-wrapping key is used once, for one data key


class SealedRecordError(ValueError):
    """A value that cannot be opened; the message names the key id, never the content."""


class NotSealed(SealedRecordError):
    pass


class KeyNotHeld(SealedRecordError):
    def __init__(self, key_id: str, held: list[str]) -> None:
        self.key_id = key_id
        self.held = held
        held_text = ", ".join(held) if held else "none"
        super().__init__(f"sealed for key {key_id}, which is not among the keys given (held: {held_text})")


def _raw(public_key: X25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _wrapping_key(shared: bytes, ephemeral: bytes, recipient: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=_INFO + ephemeral + recipient).derive(
        shared
    )


def is_sealed(value: bytes | None) -> bool:
    return value is not None and value.startswith(MAGIC)


def sealed_key_id(value: bytes) -> str:
    """The id of the key a value is sealed for."""
    if not is_sealed(value) or len(value) < len(MAGIC) + 1:
        raise NotSealed("not a sealed value")
    length = value[len(MAGIC)]
    return value[len(MAGIC) + 1 : len(MAGIC) + 1 + length].decode("ascii", "replace")


@dataclass
class _DataKey:
    aead: AESGCM
    prefix: bytes
    made_at: float
    used: int = 0


class Sealer:
    """Seals values for one recipient key."""

    def __init__(self, key_id: str, public_key: X25519PublicKey) -> None:
        if not key_id.isascii() or not 0 < len(key_id) < 256:
            raise ValueError("a key id is 1-255 ASCII characters")
        self.key_id = key_id
        self.public_key = public_key
        self._data_key: _DataKey | None = None

    def _current(self) -> _DataKey:
        data_key = self._data_key
        now = time.monotonic()
        if data_key is None or now - data_key.made_at > DATA_KEY_SECONDS or data_key.used >= DATA_KEY_RECORDS:
            secret = AESGCM.generate_key(bit_length=256)
            ephemeral = X25519PrivateKey.generate()
            ephemeral_raw = _raw(ephemeral.public_key())
            wrapping = _wrapping_key(
                ephemeral.exchange(self.public_key), ephemeral_raw, _raw(self.public_key)
            )
            header = MAGIC + bytes([len(self.key_id)]) + self.key_id.encode("ascii")
            wrapped = AESGCM(wrapping).encrypt(_ZERO_NONCE, secret, header)
            data_key = self._data_key = _DataKey(AESGCM(secret), header + ephemeral_raw + wrapped, now)
        data_key.used += 1
        return data_key

    def seal(self, value: bytes) -> bytes:
        data_key = self._current()
        nonce = os.urandom(_NONCE)
        return data_key.prefix + nonce + data_key.aead.encrypt(nonce, value, data_key.prefix)


class Opener:
    """Opens values sealed for any of its private keys (several: old keys still open what was sealed for them)."""

    def __init__(self, keys: Mapping[str, X25519PrivateKey]) -> None:
        self.keys = dict(keys)
        self._data_keys: dict[bytes, AESGCM] = {}

    def open(self, value: bytes) -> bytes:
        key_id = sealed_key_id(value)
        start = len(MAGIC) + 1 + len(key_id)
        prefix_end = start + 32 + _WRAPPED
        if len(value) < prefix_end + _NONCE + 16:
            raise SealedRecordError(f"sealed value for key {key_id} is truncated")
        prefix = value[:prefix_end]
        aead = self._data_keys.get(prefix)
        if aead is None:
            private = self.keys.get(key_id)
            if private is None:
                raise KeyNotHeld(key_id, sorted(self.keys))
            ephemeral = value[start : start + 32]
            wrapping = _wrapping_key(
                private.exchange(X25519PublicKey.from_public_bytes(ephemeral)),
                ephemeral,
                _raw(private.public_key()),
            )
            try:
                secret = AESGCM(wrapping).decrypt(_ZERO_NONCE, value[start + 32 : prefix_end], prefix[:start])
            except InvalidTag:
                raise SealedRecordError(
                    f"sealed value for key {key_id} was not sealed for that key"
                ) from None
            aead = self._data_keys[prefix] = AESGCM(secret)
            if len(self._data_keys) > 10_000:  # a long-running reader: forget the oldest
                del self._data_keys[next(iter(self._data_keys))]
        nonce = value[prefix_end : prefix_end + _NONCE]
        try:
            return aead.decrypt(nonce, value[prefix_end + _NONCE :], prefix)
        except InvalidTag:
            raise SealedRecordError(f"sealed value for key {key_id} has been altered") from None
