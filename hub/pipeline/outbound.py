"""What the hub writes for other agencies (docs/domain.md section 8): licence condition requests forwarded to
whoever decides, and the scheme flag for offender-facing systems.

Each record is a row of the outbound outbox (`outbound_records`), added in the transaction of the change it
follows from and put on `outbound.<agency>` after it commits, sealed for that agency's key (hub/runtime/protection.py),
exactly as notifications are. What a record may say is fixed here: the case's and the offender's identifiers,
the condition text as the VLO wrote it, the scheme flag and the unit to contact; never a victim's name,
reference, contact details or address.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.avro import AvroCodec
from hub.settings import Settings
from hub.store.records import Case, OutboxRecord, Victim
from routing.units import UnitDirectory
from schemas import outbound_schemas

# The header that names the record type, so a reader can tell the records apart before opening them.
RECORD_TYPE_HEADER = "hub.record_type"
FORWARDED = "LicenceConditionsRequestForwarded"
SCHEME_FLAG = "SchemeFlagChanged"
# The decision-makers a request goes to, and who is told of the scheme flag.
PROBATION = "probation"
PAROLE_BOARD = "parole-board"
SCHEME_FLAG_RECIPIENTS = ("prison", "probation")
# The offender's identifiers an outbound record carries, when the hub knows them.
OFFENDER_IDENTIFIERS = ("noms_number", "crn", "pnc")
# Fixed forever: changing it would give every record a new id and defeat readers' de-duplication.
RECORD_NAMESPACE = uuid.UUID("0c7b6a52-3f1e-4d2a-9b8e-5e4f1a6d2c93")


def record_id(record_type: str, cause: str, case_ref: str) -> str:
    """The same inputs always give the same id, so a record published twice is dropped by its reader."""
    return str(uuid.uuid5(RECORD_NAMESPACE, f"{record_type}|{cause}|{case_ref}"))


def in_the_scheme(victim: Victim) -> bool:
    """A victim the scheme still serves: neither opted out, declined nor erased or anonymised."""
    return not (victim.opted_out or victim.declined) and victim.anonymised_at is None


def case_in_scheme(case: Case) -> bool:
    """The scheme flag: the case is notifiable (eligible and open) and has a victim in the scheme."""
    return case.notifiable and any(in_the_scheme(victim) for victim in case.victims)


def unit_to_contact(case: Case) -> str:
    """The victims' unit when they share one (those in the scheme, else all); otherwise, or with no victim, the
    case's owning unit, which answers for the case as a whole."""
    units = {v.unit_code for v in case.victims if in_the_scheme(v)} or {v.unit_code for v in case.victims}
    return next(iter(units)) if len(units) == 1 else case.owning_unit_code


@dataclass(frozen=True)
class RequestedCondition:
    request_id: str
    kind: str
    text: str
    code: str | None


class OutboundFactory:
    """Builds outbound outbox rows, one per receiving agency's topic."""

    def __init__(self, settings: Settings, codec: AvroCodec, units: UnitDirectory, now: datetime) -> None:
        self.settings = settings
        self.codec = codec
        self.units = units
        self.now = now

    def _rows(
        self,
        record_type: str,
        case: Case,
        record: dict[str, Any],
        agencies: Iterable[str],
        person_ref: str | None,
    ) -> list[OutboxRecord]:
        payload = self.codec.encode(outbound_schemas()[record_type], record)
        return [
            OutboxRecord(
                topic=self.settings.outbound_topic(agency),
                key=case.case_ref.encode(),
                payload=payload,
                record_type=record_type,
                case=case,  # case_id follows when written, also for a case opened in this transaction
                person_ref=person_ref,
                created_at=self.now,
            )
            for agency in agencies
        ]

    def forwarded_request(
        self,
        case: Case,
        identifiers: Mapping[str, str],
        event_id: str,
        person_ref: str,
        requested_at: datetime,
        conditions: list[RequestedCondition],
        parole_review_open: bool,
    ) -> list[OutboxRecord]:
        """A victim's request, to the offender's probation practitioner and, while a parole review is open, to the
        Parole Board. `person_ref` is kept on the rows (erasure finds them by it), never in the record."""
        agencies = [PROBATION, PAROLE_BOARD] if parole_review_open else [PROBATION]
        record = {
            "record_id": record_id(FORWARDED, event_id, case.case_ref),
            "request_id": event_id,
            "case_ref": case.case_ref,
            **{kind: identifiers.get(kind) for kind in OFFENDER_IDENTIFIERS},
            "requested_at": requested_at,
            "conditions": [
                {"request_id": c.request_id, "kind": c.kind, "text": c.text, "code": c.code}
                for c in conditions
            ],
            "forwarded_to": agencies,
            "parole_review_open": parole_review_open,
            "forwarded_at": self.now,
        }
        return self._rows(FORWARDED, case, record, agencies, person_ref)

    def scheme_flag(self, case: Case, identifiers: Mapping[str, str], cause: str) -> list[OutboxRecord]:
        """The case's scheme flag when it differs from the one last published (none yet counts as out of the
        scheme), marked as published on the case; no rows when it has not changed."""
        in_scheme = case_in_scheme(case)
        if in_scheme == bool(case.in_scheme_published):
            return []
        case.in_scheme_published = in_scheme
        code = unit_to_contact(case)
        unit = self.units.unit_by_code(code) or self.units.national_triage
        record = {
            "record_id": record_id(SCHEME_FLAG, f"{cause}|{in_scheme}", case.case_ref),
            "case_ref": case.case_ref,
            **{kind: identifiers.get(kind) for kind in OFFENDER_IDENTIFIERS},
            "in_scheme": in_scheme,
            "unit_code": unit.code,
            "unit_name": unit.name,
            "changed_at": self.now,
        }
        return self._rows(SCHEME_FLAG, case, record, SCHEME_FLAG_RECIPIENTS, None)
