"""Key files: who holds which key, where the hub and its users find them, and the ids that name them.

A keys directory is laid out by owner, one key pair per file pair:

    agencies/<agency>/<key id>.pub   Ed25519: the hub verifies the agency's records with every one of these
    agencies/<agency>/<key id>.key   the agency's signing key (kept only where that agency publishes)
    units/<unit>/<key id>.pub        X25519: the hub seals the unit's notifications for the newest one
    units/<unit>/<key id>.key        the unit's private key (kept only where that unit reads its queue)
    recipients/<agency>/<key id>.pub X25519: the hub seals what it writes on `outbound.<agency>` for the newest
    recipients/<agency>/<key id>.key the agency's private key (kept only where that agency reads)
    operations/<key id>.pub|.key     X25519: retry and dead-letter records, which the hub and operators open
    hub/<key id>.pub|.key            X25519: the hub seals as this sender; readers trust its public keys
    data/<key id>.key                AES-256: the case store's encryption at rest (the hub's processes only)

Key ids sort by creation (`<UTC time>-<8 hex of the public key's SHA-256>`), so "the newest key" is the
largest id, and rotation is: add a new pair, keep the old private key until what was sealed for it has aged
off the topics. Files are PEM (PKCS#8 private keys, SubjectPublicKeyInfo public keys); private files are
written readable by their owner only.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TypeVar

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey

from connectors.sealing import Opener, Sealer
from schemas import OUTBOUND_RECIPIENTS

K = TypeVar("K")
PUBLIC_SUFFIX = ".pub"
PRIVATE_SUFFIX = ".key"
Purpose = Literal["signing", "sealing"]  # Ed25519 for agencies' signatures, X25519 for sealed records
PrivateKey = Ed25519PrivateKey | X25519PrivateKey
PublicKey = Ed25519PublicKey | X25519PublicKey


class KeyFileError(ValueError):
    """A key file that is missing, unreadable, or of the wrong kind; the message names the file, never a key."""


def key_id_of(public_key: PublicKey, created: datetime) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return f"{created.astimezone(UTC):%Y%m%dT%H%M%S%f}Z-{hashlib.sha256(raw).hexdigest()[:8]}"


def write_key_pair(directory: Path, purpose: Purpose, now: datetime | None = None) -> str:
    """Make a new key pair in `directory`; returns its key id."""
    private: PrivateKey = (
        Ed25519PrivateKey.generate() if purpose == "signing" else X25519PrivateKey.generate()
    )
    public = private.public_key()
    key_id = key_id_of(public, now or datetime.now(UTC))
    directory.mkdir(parents=True, exist_ok=True)
    private_pem = private.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    private_path = directory / f"{key_id}{PRIVATE_SUFFIX}"
    descriptor = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(private_pem)
    public_pem = public.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (directory / f"{key_id}{PUBLIC_SUFFIX}").write_bytes(public_pem)
    return key_id


def write_data_key(directory: Path, now: datetime | None = None) -> str:
    """Make a new data key (32 random bytes, base64 in its file) in `directory`; returns its key id."""
    key = os.urandom(32)
    # The id names the key without revealing it: a hash under a label used for nothing else.
    digest = hashlib.sha256(b"hub data key id\x00" + key).hexdigest()[:8]
    key_id = f"{(now or datetime.now(UTC)).astimezone(UTC):%Y%m%dT%H%M%S%f}Z-{digest}"
    directory.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(directory / f"{key_id}{PRIVATE_SUFFIX}", os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "wb") as file:
        file.write(base64.b64encode(key) + b"\n")
    return key_id


def read_data_keys(directory: Path) -> dict[str, bytes]:
    """Every data key in a directory, by key id (none if the directory does not exist)."""
    if not directory.is_dir():
        return {}
    keys = {}
    for path in sorted(directory.glob(f"*{PRIVATE_SUFFIX}")):
        try:
            key = base64.b64decode(path.read_bytes().strip(), validate=True)
        except (OSError, binascii.Error) as error:
            raise KeyFileError(f"cannot read the data key {path} ({type(error).__name__})") from None
        if len(key) != 32:
            raise KeyFileError(f"{path} is not a 32-byte data key")
        keys[key_id_from_path(path)] = key
    return keys


def changed_at(directory: Path) -> int | None:
    """When a key was last added to or removed from a directory (None: no directory): one stat call, so a
    reader of keys can notice a rotation without reading the keys again."""
    try:
        return directory.stat().st_mtime_ns
    except FileNotFoundError:
        return None


def key_id_from_path(path: Path) -> str:
    return path.name.removesuffix(PRIVATE_SUFFIX).removesuffix(PUBLIC_SUFFIX)


def _read_key(path: Path, purpose: Purpose, private: bool) -> PrivateKey | PublicKey:
    half = "private" if private else "public"
    try:
        data = path.read_bytes()
        key = (
            serialization.load_pem_private_key(data, None)
            if private
            else serialization.load_pem_public_key(data)
        )
    except (OSError, ValueError, TypeError) as error:
        raise KeyFileError(f"cannot read the {half} key {path} ({type(error).__name__})") from None
    kinds = {
        ("signing", True): Ed25519PrivateKey,
        ("signing", False): Ed25519PublicKey,
        ("sealing", True): X25519PrivateKey,
        ("sealing", False): X25519PublicKey,
    }
    if not isinstance(key, kinds[purpose, private]):
        raise KeyFileError(f"{path} is not an {'Ed25519' if purpose == 'signing' else 'X25519'} {half} key")
    return key  # type: ignore[return-value]


def read_private_key(path: Path, purpose: Purpose) -> PrivateKey:
    return _read_key(path, purpose, private=True)  # type: ignore[return-value]


def read_public_key(path: Path, purpose: Purpose) -> PublicKey:
    return _read_key(path, purpose, private=False)  # type: ignore[return-value]


def public_keys(directory: Path, purpose: Purpose) -> dict[str, PublicKey]:
    """Every public key in a directory, by key id (none if the directory does not exist)."""
    if not directory.is_dir():
        return {}
    return {
        key_id_from_path(p): read_public_key(p, purpose) for p in sorted(directory.glob(f"*{PUBLIC_SUFFIX}"))
    }


def private_keys(directory: Path, purpose: Purpose) -> dict[str, PrivateKey]:
    """Every private key in a directory, by key id (none if the directory does not exist)."""
    if not directory.is_dir():
        return {}
    return {
        key_id_from_path(p): read_private_key(p, purpose)
        for p in sorted(directory.glob(f"*{PRIVATE_SUFFIX}"))
    }


def _newest(keys: Mapping[str, K]) -> tuple[str, K] | None:
    """The newest key by id (ids sort by creation), with its id; None when there is none."""
    return (max(keys), keys[max(keys)]) if keys else None


@dataclass(frozen=True)
class KeysDirectory:
    """Where each owner's keys are, under one root (HUB_KEYS_DIR)."""

    root: Path

    def agency(self, agency: str) -> Path:
        return self.root / "agencies" / agency

    def unit(self, unit_code: str) -> Path:
        return self.root / "units" / unit_code

    def recipient(self, agency: str) -> Path:
        """An agency that reads what the hub writes for it (`outbound.<agency>`)."""
        return self.root / "recipients" / agency

    @property
    def operations(self) -> Path:
        return self.root / "operations"

    @property
    def hub(self) -> Path:
        return self.root / "hub"

    @property
    def data(self) -> Path:
        return self.root / "data"

    def data_keys(self) -> dict[str, bytes]:
        return read_data_keys(self.data)

    def agency_public_keys(self, agency: str) -> dict[str, PublicKey]:
        return public_keys(self.agency(agency), "signing")

    def newest_signing_key(self, agency: str) -> tuple[str, Ed25519PrivateKey] | None:
        keys = private_keys(self.agency(agency), "signing")  # each one Ed25519 (else KeyFileError)
        return _newest({k: v for k, v in keys.items() if isinstance(v, Ed25519PrivateKey)})

    def newest_sealing_key(self, directory: Path) -> tuple[str, X25519PublicKey] | None:
        keys = public_keys(directory, "sealing")  # each one X25519 (else KeyFileError)
        return _newest({k: v for k, v in keys.items() if isinstance(v, X25519PublicKey)})

    def opening_keys(self, directory: Path) -> dict[str, X25519PrivateKey]:
        return {
            k: v for k, v in private_keys(directory, "sealing").items() if isinstance(v, X25519PrivateKey)
        }

    def senders(self) -> dict[str, X25519PublicKey]:
        """The hub's public keys: what a reader trusts a sealed record to come from."""
        return {k: v for k, v in public_keys(self.hub, "sealing").items() if isinstance(v, X25519PublicKey)}

    def newest_sender_key(self) -> tuple[str, X25519PrivateKey] | None:
        return _newest(self.opening_keys(self.hub))

    def opener(self, directory: Path, extra: Mapping[str, X25519PrivateKey] | None = None) -> Opener:
        """Opens what the hub sealed for the owner of `directory` (and for `extra` keys given apart)."""
        return Opener({**self.opening_keys(directory), **(extra or {})}, self.senders())

    def sealer(self, directory: Path) -> Sealer | None:
        """Seals for the newest key in `directory`, as the hub's newest key; None when either is missing."""
        recipient, sender = self.newest_sealing_key(directory), self.newest_sender_key()
        return Sealer(*recipient, *sender) if recipient and sender else None

    def create_missing(
        self, agencies: list[str], units: list[str], recipients: Sequence[str] = OUTBOUND_RECIPIENTS
    ) -> list[str]:
        """A key pair for every agency, unit, outbound recipient, the operations team and the hub that has none:
        the embedded hub's demo keys, all in one place (a real deployment hands each private key to its owner
        only). Returns what it made."""
        made = []
        for agency in agencies:
            if not any(self.agency(agency).glob(f"*{PUBLIC_SUFFIX}")):
                made.append(f"agency {agency}: {write_key_pair(self.agency(agency), 'signing')}")
        for unit in units:
            if not any(self.unit(unit).glob(f"*{PUBLIC_SUFFIX}")):
                made.append(f"unit {unit}: {write_key_pair(self.unit(unit), 'sealing')}")
        for recipient in recipients:
            if not any(self.recipient(recipient).glob(f"*{PUBLIC_SUFFIX}")):
                made.append(f"recipient {recipient}: {write_key_pair(self.recipient(recipient), 'sealing')}")
        if not any(self.operations.glob(f"*{PUBLIC_SUFFIX}")):
            made.append(f"operations: {write_key_pair(self.operations, 'sealing')}")
        if not any(self.hub.glob(f"*{PUBLIC_SUFFIX}")):
            made.append(f"hub: {write_key_pair(self.hub, 'sealing')}")
        if not self.data_keys():
            made.append(f"data: {write_data_key(self.data)}")
        return made
