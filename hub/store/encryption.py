"""Encryption at rest: victims' personal fields and every stored payload are kept AES-GCM encrypted.

Columns declared `EncryptedText` or `EncryptedBytes` are encrypted when written and decrypted when read, by
SQLAlchemy itself (ORM and Core alike), so no code path can write them in clear. The data keys come from the keys
directory (`data/<key id>.key`, connectors/keys.py): new values are encrypted under the newest, every key still
present decrypts, and `hub keys rotate-data` moves what older keys hold onto the newest.

A stored value is `hv1` + one byte (length of the key id) + the key id + a 12-byte nonce + the AES-GCM ciphertext,
whose associated data is the column it belongs to (`victims.name`, ...), so a value copied into another column
does not decrypt. A value without the prefix is one written before encryption at rest: it is read as it is, and
`hub keys rotate-data` encrypts it.
"""

from __future__ import annotations

import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from sqlalchemy import Engine, LargeBinary, TypeDecorator
from sqlalchemy.engine import Dialect

from connectors.keys import changed_at, read_data_keys
from hub.errors import DataKeysMissing, UnreadableValue

PREFIX = b"hv1"
NONCE_BYTES = 12
KEY_BYTES = 32
LOOK_SECONDS = 1.0  # how often the keys directory is looked at for a new data key: one stat call
# Where an engine keeps its data keys: on its dialect, the one object every bind and result processor is given.
_DIALECT_ATTRIBUTE = "hub_data_keys"


class DataKeys:
    """The data keys by id; the newest (largest id: ids sort by creation) encrypts. Read from a keys directory,
    they follow it: a key added there is used within LOOK_SECONDS, so `hub keys new --data` and then
    `hub keys rotate-data` need no restart of the worker."""

    def __init__(self, keys: Mapping[str, bytes], directory: Path | None = None) -> None:
        self.directory = directory
        self._use(keys)
        self._changed = changed_at(directory) if directory is not None else None
        self._looked = time.monotonic()

    def _use(self, keys: Mapping[str, bytes]) -> None:
        if not keys:
            raise ValueError("at least one data key is needed")
        for key_id, key in keys.items():
            if len(key) != KEY_BYTES:
                raise ValueError(f"data key {key_id} is not {KEY_BYTES} bytes")
            if not key_id.isascii() or not 0 < len(key_id) < 256:
                raise ValueError(f"data key id {key_id!r} is not a short ASCII id")
        newest = max(keys)
        # One assignment, so a thread encrypting meanwhile sees the old keys or the new ones, never half of each.
        self._state = (
            {key_id: AESGCM(key) for key_id, key in keys.items()},
            newest,
            PREFIX + bytes([len(newest)]) + newest.encode(),
        )

    def _look(self) -> None:
        if self.directory is None or time.monotonic() - self._looked < LOOK_SECONDS:
            return
        self._looked = time.monotonic()
        changed = changed_at(self.directory)
        if changed != self._changed:
            self._changed = changed
            found = read_data_keys(self.directory)
            if found:  # a directory emptied by mistake does not stop the hub reading what it holds
                self._use(found)

    @property
    def newest_id(self) -> str:
        self._look()
        return self._state[1]

    @property
    def ids(self) -> list[str]:
        self._look()
        return sorted(self._state[0])

    def encrypt(self, plaintext: bytes, column: str) -> bytes:
        self._look()
        ciphers, newest, prefix = self._state
        nonce = os.urandom(NONCE_BYTES)
        return prefix + nonce + ciphers[newest].encrypt(nonce, plaintext, column.encode())

    def decrypt(self, stored: bytes, column: str) -> bytes:
        key_id = key_id_of(stored)
        if key_id is None:
            return stored  # written before encryption at rest; rotate-data encrypts it
        cipher = self._state[0].get(key_id)
        if cipher is None:
            self._look()
            cipher = self._state[0].get(key_id)
        if cipher is None:
            raise UnreadableValue(
                f"a value in {column} is under data key {key_id}, which is not in the keys directory"
            )
        start = len(PREFIX) + 1 + len(key_id)
        try:
            return cipher.decrypt(
                stored[start : start + NONCE_BYTES], stored[start + NONCE_BYTES :], column.encode()
            )
        except InvalidTag:
            raise UnreadableValue(f"a value in {column} does not decrypt under data key {key_id}") from None


def key_id_of(stored: bytes) -> str | None:
    """The id of the data key a stored value is under; None for a value stored in clear."""
    if not stored.startswith(PREFIX) or len(stored) < len(PREFIX) + 1:
        return None
    length = stored[len(PREFIX)]
    return stored[len(PREFIX) + 1 : len(PREFIX) + 1 + length].decode("ascii", errors="replace")


def attach(engine: Engine, keys: DataKeys | None) -> Engine:
    """Gives an engine the data keys its encrypted columns use (None: it reads and writes none of them)."""
    setattr(engine.dialect, _DIALECT_ATTRIBUTE, keys)
    return engine


def keys_of(dialect: Dialect, column: str) -> DataKeys:
    keys: DataKeys | None = getattr(dialect, _DIALECT_ATTRIBUTE, None)
    if keys is None:
        raise DataKeysMissing(
            f"{column} is encrypted at rest and this process opened the case store without data keys "
            "(open it with hub.store.engine.open_store)"
        )
    return keys


class EncryptedBytes(TypeDecorator[bytes]):
    """Bytes encrypted at rest under the engine's newest data key."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = (
            column  # "table.column": the associated data, so a value only decrypts where it was written
        )

    def process_bind_param(self, value: bytes | None, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return keys_of(dialect, self.column).encrypt(bytes(value), self.column)

    def process_result_value(self, value: Any, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite hands back text written before the column held bytes
            return value.encode()
        return keys_of(dialect, self.column).decrypt(bytes(value), self.column)


class EncryptedText(TypeDecorator[str]):
    """Text encrypted at rest (as UTF-8) under the engine's newest data key."""

    impl = LargeBinary
    cache_ok = True

    def __init__(self, column: str) -> None:
        super().__init__()
        self.column = column

    def process_bind_param(self, value: str | None, dialect: Dialect) -> bytes | None:
        if value is None:
            return None
        return keys_of(dialect, self.column).encrypt(value.encode(), self.column)

    def process_result_value(self, value: Any, dialect: Dialect) -> str | None:
        if value is None:
            return None
        if isinstance(value, str):
            return value
        return keys_of(dialect, self.column).decrypt(bytes(value), self.column).decode()
