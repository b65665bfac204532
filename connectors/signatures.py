"""Agency record signatures: who published a record, checked by the hub on any broker.

An agency signs each record it publishes with its Ed25519 key, over the topic, the key and the value, and sends
two headers: the key id and the signature. The hub accepts a record only if the key id is one of the keys
configured for the agency whose topic it came on, and the signature holds: so a record cannot be published as
another agency, moved to another agency's topic, or changed on the way. The topic is signed with its
deployment prefix: a record is valid where it was published, and where a dead-letter replay puts it back.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from connectors.keys import KeyFileError, KeysDirectory, PublicKey, changed_at

KEY_ID_HEADER = "signature.key_id"
SIGNATURE_HEADER = "signature.ed25519"
LOOK_SECONDS = 1.0
_DOMAIN = b"victim-contact-hub agency record v1\0"

Headers = list[tuple[str, bytes]]


class Unauthenticated(ValueError):
    """A record whose publisher is not proved: no signature, a key not the agency's, or a signature that fails.
    The message names the key id and the rule, never the record's content."""


def signed_content(topic: str, key: bytes | None, value: bytes | None) -> bytes:
    """What is signed: each part length-prefixed, so that no two records sign the same bytes."""
    parts = [topic.encode(), b"" if key is None else key, b"" if value is None else value]
    flags = bytes([key is None, value is None])
    return _DOMAIN + flags + b"".join(struct.pack(">I", len(part)) + part for part in parts)


@dataclass(frozen=True)
class RecordSigner:
    """One agency's signing key."""

    agency: str
    key_id: str
    key: Ed25519PrivateKey

    def headers(self, topic: str, key: bytes | None, value: bytes | None) -> Headers:
        signature = self.key.sign(signed_content(topic, key, value))
        return [(KEY_ID_HEADER, self.key_id.encode()), (SIGNATURE_HEADER, signature)]


def signer_for(keys: KeysDirectory, agency: str) -> RecordSigner:
    """The agency's newest signing key in a keys directory; KeyFileError says what to do when there is none."""
    newest = keys.newest_signing_key(agency)
    if newest is None:
        raise KeyFileError(
            f"no signing key for agency {agency} in {keys.agency(agency)}: "
            f"create one with `hub keys new --agency {agency}` or set HUB_SIGNING_KEY_FILE"
        )
    return RecordSigner(agency, *newest)


def signers_for(keys: KeysDirectory, agencies: list[str]) -> dict[str, RecordSigner]:
    """Every agency's signer that the directory holds a private key for (the embedded hub's demo keys)."""
    found = {}
    for agency in agencies:
        newest = keys.newest_signing_key(agency)
        if newest is not None:
            found[agency] = RecordSigner(agency, *newest)
    return found


@dataclass
class AgencyVerifier:
    """The public keys of every agency, by key id, from a keys directory. Whether an agency's directory changed is
    looked at (one stat call) for a key id it does not know, and at most every LOOK_SECONDS otherwise: a new key
    is accepted from its first record, a removed one refused within a second, and a flood of forgeries costs no
    key reading."""

    keys: KeysDirectory
    agencies: list[str]
    clock: Callable[[], float] = time.monotonic
    _by_agency: dict[str, dict[str, PublicKey]] = field(default_factory=dict)
    _read_at: dict[str, int | None] = field(default_factory=dict)  # each directory's change time when read
    _looked_at: dict[str, float] = field(default_factory=dict)

    def _current(self, agency: str, look: bool) -> dict[str, PublicKey]:
        known = self._by_agency.get(agency)
        now = self.clock()
        if known is None or look or now - self._looked_at[agency] >= LOOK_SECONDS:
            self._looked_at[agency] = now
            changed = changed_at(self.keys.agency(agency))
            if known is None or changed != self._read_at[agency]:
                self._read_at[agency] = changed
                known = self._by_agency[agency] = self.keys.agency_public_keys(agency)
        return known

    def agencies_without_keys(self) -> list[str]:
        return [agency for agency in self.agencies if not self._current(agency, look=True)]

    def _key(self, agency: str, key_id: str) -> PublicKey | None:
        key = self._current(agency, look=False).get(key_id)
        return key if key is not None else self._current(agency, look=True).get(key_id)

    def verify(
        self, agency: str, topic: str, key: bytes | None, value: bytes | None, headers: Mapping[str, bytes]
    ) -> None:
        """Raises Unauthenticated unless the record was signed by one of `agency`'s keys."""
        key_id_bytes, signature = headers.get(KEY_ID_HEADER), headers.get(SIGNATURE_HEADER)
        if key_id_bytes is None or signature is None:
            raise Unauthenticated(f"not signed: no {KEY_ID_HEADER} and {SIGNATURE_HEADER} headers")
        key_id = key_id_bytes.decode("ascii", "replace")[:80]
        public = self._key(agency, key_id)
        if public is None:
            raise Unauthenticated(f"signed with key {key_id!r}, which is not a key of agency {agency}")
        assert isinstance(public, Ed25519PublicKey)
        try:
            public.verify(signature, signed_content(topic, key, value))
        except InvalidSignature:
            raise Unauthenticated(
                f"the signature by key {key_id!r} of agency {agency} does not match the record's topic, key and value"
            ) from None
