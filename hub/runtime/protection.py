"""What the worker does with keys: it checks who published each agency record before reading it, and seals every
record it writes: notifications for their unit, records for another agency (`outbound.<agency>`) for that agency,
and retry and dead-letter records for operations.

Both happen at the worker's edge with the broker, so no code path between can skip them: a record reaches the
pipeline only once authenticated, and reaches the broker only once sealed (`seal` refuses a topic it has no
recipient for). Keys come from the keys directory (connectors/keys.py); a unit key added there is used within
LOOK_SECONDS, without a restart.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import replace
from pathlib import Path

from connectors.keys import KeysDirectory, changed_at
from connectors.sealing import KEY_ID_HEADER, KeyNotHeld, Sealer, UnknownSender
from connectors.signatures import AgencyVerifier, Unauthenticated
from hub.errors import MissingKeys
from hub.messages import InboundMessage, OutboundRecord
from hub.settings import AGENCY_SOURCES, Settings
from schemas import OUTBOUND_RECIPIENTS

# How often the worker looks whether a recipient's keys changed: one stat call per recipient.
LOOK_SECONDS = 1.0
OPERATIONS = "operations"


def embedded_keys(settings: Settings) -> list[str]:
    """The embedded default (no HUB_KEYS_DIR) keeps every party's keys in its data directory, made on first use by
    whichever command needs them, so `hub up`, `hub worker`, `hub publish` and `hub queue read` work from a fresh
    clone. A deployment names its provisioned keys directory, and nothing is ever made there: a missing key is an
    error, not a new key nobody holds. Returns what it made."""
    if settings.keys_dir is not None:
        return []
    from hub.reference import load_units

    units = [unit.code for unit in load_units(settings).units]
    return KeysDirectory(settings.resolved_keys_dir).create_missing(list(AGENCY_SOURCES), units)


class RecordProtection:
    def __init__(self, settings: Settings, unit_codes: Iterable[str], retry_topics: Iterable[str]) -> None:
        self.keys = KeysDirectory(settings.resolved_keys_dir)
        self.settings = settings
        self.verifier = AgencyVerifier(self.keys, list(AGENCY_SOURCES))
        # Every topic the worker writes, and whose key reads it: a unit's, an agency's or operations', each
        # known by what `missing` calls it.
        self._directories: dict[str, Path] = {OPERATIONS: self.keys.operations}
        self._recipient_of: dict[str, str] = {}
        for code in unit_codes:
            self._recipient_of[settings.unit_topic(code)] = f"unit {code}"
            self._directories[f"unit {code}"] = self.keys.unit(code)
        for agency in OUTBOUND_RECIPIENTS:
            self._recipient_of[settings.outbound_topic(agency)] = f"recipient {agency}"
            self._directories[f"recipient {agency}"] = self.keys.recipient(agency)
        for topic in (settings.dead_letter_topic, *retry_topics):
            self._recipient_of[topic] = OPERATIONS
        self._sealers: dict[str, Sealer] = {}
        # Change times of each recipient's directory and the hub's, when its sealer was made.
        self._read_at: dict[str, tuple[int | None, int | None]] = {}
        self._looked_at: float | None = None
        self.operations = self.keys.opener(self.keys.operations)

    def _directory(self, recipient: str) -> Path:
        return self._directories[recipient]

    def missing(self) -> list[str]:
        """What is missing for the worker to run: a public key for every unit, every outbound recipient and for
        operations, and the operations private key (retry records are sealed for it)."""
        problems = []
        for recipient in dict.fromkeys(self._recipient_of.values()):  # units, agencies, then operations
            if self.keys.newest_sealing_key(self._directory(recipient)) is None:
                problems.append(f"no public key for {recipient} in {self._directory(recipient)}")
        if not self.operations.keys:
            problems.append(
                f"no operations private key in {self.keys.operations} (retry records are sealed for it)"
            )
        if self.keys.newest_sender_key() is None:
            problems.append(f"no hub private key in {self.keys.hub} (the hub seals what it writes as it)")
        if not self.keys.data_keys():
            problems.append(f"no data key in {self.keys.data} (the case store is encrypted at rest)")
        return problems

    def agencies_without_keys(self) -> list[str]:
        return self.verifier.agencies_without_keys()

    def authenticate(self, message: InboundMessage) -> None:
        """Raises Unauthenticated unless the record is signed by a key of the agency whose topic it came on (a
        record on no agency's topic is left to ingest, which rejects it)."""
        source = self.settings.source_of_topic(message.topic)
        if source is None:
            return
        self.verifier.verify(source, message.topic, message.key, message.value, dict(message.headers))

    def _sealer(self, recipient: str) -> Sealer:
        now = time.monotonic()
        if self._looked_at is None or now - self._looked_at >= LOOK_SECONDS:
            self._looked_at = now
            for known in set(self._recipient_of.values()):
                directory = self._directory(known)
                changed = (changed_at(directory), changed_at(self.keys.hub))
                if changed != self._read_at.get(known):
                    self._read_at[known] = changed
                    sealer = self.keys.sealer(directory)
                    if sealer is not None:
                        self._sealers[known] = sealer
                    else:
                        self._sealers.pop(known, None)
        sealer = self._sealers.get(recipient)
        if sealer is None:
            raise MissingKeys(
                f"no key to seal for {recipient} in {self._directory(recipient)}, or no hub key in {self.keys.hub}"
            )
        return sealer

    def seal(self, records: list[OutboundRecord]) -> list[OutboundRecord]:
        """Each record with its value sealed for the key that reads its topic."""
        sealed = []
        for record in records:
            recipient = self._recipient_of.get(record.topic)
            if recipient is None:
                raise MissingKeys(f"the worker has no recipient to seal records on {record.topic} for")
            if record.value is None:
                sealed.append(record)
                continue
            sealer = self._sealer(recipient)
            headers = [(name, value) for name, value in record.headers if name != KEY_ID_HEADER]
            headers.append((KEY_ID_HEADER, sealer.key_id.encode()))
            sealed.append(replace(record, value=sealer.seal(record.value), headers=headers))
        return sealed

    def open_for_operations(self, message: InboundMessage) -> InboundMessage:
        """A retry record as it was before it was sealed (SealedRecordError if it cannot be opened)."""
        if message.value is None:
            return message
        try:
            value = self.operations.open(message.value)
        except (KeyNotHeld, UnknownSender):  # perhaps a key added since the worker started
            self.operations = self.keys.opener(self.keys.operations)
            value = self.operations.open(message.value)
        headers = [(name, value) for name, value in message.headers if name != KEY_ID_HEADER]
        return replace(message, value=value, headers=headers)


__all__ = ["MissingKeys", "RecordProtection", "Unauthenticated"]
