"""Sealed records: a value that only the holder of one X25519 private key can read, and that only the holder of
another (the sender's) can have written.

The hub seals every notification for its unit's newest key, and every retry and dead-letter record for the
operations key, so that a consumer of the raw topics (or of a copy of the broker's disks) reads nothing about a
victim; and it seals with its own key as the sender, so that a reader can tell the hub's records from anyone's
who knows the reader's public key. The scheme is the usual hybrid one, in HPKE's authenticated mode: a random
AES-256-GCM data key encrypts the value; the data key is wrapped under HKDF-SHA256 of two X25519 agreements, an
ephemeral key's and the sender's static key's, each with the recipient's key. A sealed value is
self-describing, so a reader needs only its private keys and the sender's public keys:

    magic "VCH\\x01" | recipient key id length (1 byte) | recipient key id (ASCII) | sender key id length (1) |
    sender key id (ASCII) | ephemeral public key (32) | wrapped data key (48) | nonce (12) | ciphertext and tag

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


class UnknownSender(SealedRecordError):
    def __init__(self, key_id: str) -> None:
        self.key_id = key_id
        super().__init__(f"sealed by key {key_id}, which is not one of the senders trusted here")


def _raw(public_key: X25519PublicKey) -> bytes:
    return public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _wrapping_key(shared: bytes, ephemeral: bytes, recipient: bytes, sender: bytes) -> bytes:
    info = _INFO + ephemeral + recipient + sender
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(shared)


def _key_id_field(key_id: str) -> bytes:
    if not key_id.isascii() or not 0 < len(key_id) < 256:
        raise ValueError("a key id is 1-255 ASCII characters")
    return bytes([len(key_id)]) + key_id.encode("ascii")


def is_sealed(value: bytes | None) -> bool:
    return value is not None and value.startswith(MAGIC)


@dataclass(frozen=True)
class _Parts:
    recipient: str
    sender: str
    ephemeral: bytes
    wrapped: bytes
    prefix: bytes  # everything before the nonce


def _parts(value: bytes) -> _Parts:
    if not is_sealed(value):
        raise NotSealed("not a sealed value")
    at = len(MAGIC)
    ids = []
    for _ in range(2):
        if len(value) <= at:
            raise SealedRecordError("sealed value is truncated")
        length = value[at]
        ids.append(value[at + 1 : at + 1 + length].decode("ascii", "replace"))
        at += 1 + length
    end = at + 32 + _WRAPPED
    if len(value) < end + _NONCE + 16:
        raise SealedRecordError(f"sealed value for key {ids[0]} is truncated")
    return _Parts(ids[0], ids[1], value[at : at + 32], value[at + 32 : end], value[:end])


def sealed_key_id(value: bytes) -> str:
    """The id of the key a value is sealed for."""
    return _parts(value).recipient


@dataclass
class _DataKey:
    aead: AESGCM
    prefix: bytes
    made_at: float
    used: int = 0


class Sealer:
    """Seals values for one recipient key, as one sender."""

    def __init__(
        self, key_id: str, public_key: X25519PublicKey, sender_id: str, sender_key: X25519PrivateKey
    ) -> None:
        self.key_id = key_id
        self.public_key = public_key
        self.sender_id = sender_id
        self.sender_key = sender_key
        self._header = MAGIC + _key_id_field(key_id) + _key_id_field(sender_id)
        self._data_key: _DataKey | None = None

    def _current(self) -> _DataKey:
        data_key = self._data_key
        now = time.monotonic()
        if data_key is None or now - data_key.made_at > DATA_KEY_SECONDS or data_key.used >= DATA_KEY_RECORDS:
            secret = AESGCM.generate_key(bit_length=256)
            ephemeral = X25519PrivateKey.generate()
            ephemeral_raw = _raw(ephemeral.public_key())
            shared = ephemeral.exchange(self.public_key) + self.sender_key.exchange(self.public_key)
            wrapping = _wrapping_key(
                shared, ephemeral_raw, _raw(self.public_key), _raw(self.sender_key.public_key())
            )
            wrapped = AESGCM(wrapping).encrypt(_ZERO_NONCE, secret, self._header)
            data_key = self._data_key = _DataKey(AESGCM(secret), self._header + ephemeral_raw + wrapped, now)
        data_key.used += 1
        return data_key

    def seal(self, value: bytes) -> bytes:
        data_key = self._current()
        nonce = os.urandom(_NONCE)
        return data_key.prefix + nonce + data_key.aead.encrypt(nonce, value, data_key.prefix)


class Opener:
    """Opens values sealed for any of its private keys (several: old keys still open what was sealed for them) by
    any of its trusted senders."""

    def __init__(self, keys: Mapping[str, X25519PrivateKey], senders: Mapping[str, X25519PublicKey]) -> None:
        self.keys = dict(keys)
        self.senders = dict(senders)
        self._data_keys: dict[bytes, AESGCM] = {}

    def open(self, value: bytes) -> bytes:
        parts = _parts(value)
        aead = self._data_keys.get(parts.prefix)
        if aead is None:
            aead = self._data_keys[parts.prefix] = self._unwrap(parts)
            if len(self._data_keys) > 10_000:  # a long-running reader: forget the oldest
                del self._data_keys[next(iter(self._data_keys))]
        at = len(parts.prefix)
        try:
            return aead.decrypt(value[at : at + _NONCE], value[at + _NONCE :], parts.prefix)
        except InvalidTag:
            raise SealedRecordError(f"sealed value for key {parts.recipient} has been altered") from None

    def _unwrap(self, parts: _Parts) -> AESGCM:
        private = self.keys.get(parts.recipient)
        if private is None:
            raise KeyNotHeld(parts.recipient, sorted(self.keys))
        sender = self.senders.get(parts.sender)
        if sender is None:
            raise UnknownSender(parts.sender)
        shared = private.exchange(X25519PublicKey.from_public_bytes(parts.ephemeral)) + private.exchange(
            sender
        )
        wrapping = _wrapping_key(shared, parts.ephemeral, _raw(private.public_key()), _raw(sender))
        header = parts.prefix[: len(parts.prefix) - 32 - _WRAPPED]
        try:
            return AESGCM(AESGCM(wrapping).decrypt(_ZERO_NONCE, parts.wrapped, header))
        except InvalidTag:
            raise SealedRecordError(
                f"sealed value for key {parts.recipient} was not sealed for it by sender {parts.sender}"
            ) from None
