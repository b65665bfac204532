"""The case store's rows as plain data: what the pipeline loads, decides on and writes, and what leaves a
transaction for delivery (notifications, outbound records).

No session and no lazy loading: a relation (a case's victims, a timer's case) is a plain attribute that
`hub.store.load` fills, and `hub.store.write` turns the new and changed records back into rows. A record read
from the database has an `id`; one made in this transaction has none until it is written. Records compare by
identity, so they can be kept in sets and as dictionary keys.

Each record type names the columns a transaction may change (`CHANGEABLE`): the write step compares them with
what was read and updates only those that differ, so a column another process changed meanwhile (erasure, the
console) is never written back with what this transaction read. A JSON value (a list, a dict) is replaced, never
changed in place, so that the comparison sees it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import NamedTuple

from hub.errors import IdentifierKey


@dataclass(eq=False)
class Offender:
    id: int | None = None
    cases: list[Case] = field(default_factory=list)
    # Identifiers written before this transaction, oldest first; those linked in it are kept by the CaseFile.
    identifiers: list[IdentifierKey] = field(default_factory=list)


@dataclass(eq=False)
class Case:
    case_ref: str
    offender: Offender
    opened_at: datetime
    owning_unit_code: str
    eligibility_status: str = "not_eligible"
    eligibility_rule: str = ""
    eligibility_basis: str = ""
    status: str = "open"
    court_code: str | None = None
    sentence_date: date | None = None
    youth: bool = False
    offences: list[dict[str, str]] | None = None
    closed_reason: str | None = None
    closed_at: datetime | None = None
    needs_unit_decision: bool = False
    expected_release_month: str | None = None
    key_dates: dict[str, str] | None = None
    parole_review_open: bool = False
    in_scheme_published: bool | None = None
    id: int | None = None
    victims: list[Victim] = field(default_factory=list)
    allocations: list[Allocation] = field(default_factory=list)

    CHANGEABLE = (
        "offender",  # written as offender_id: a merge moves a case to the kept record
        "court_code",
        "sentence_date",
        "youth",
        "offences",
        "eligibility_status",
        "eligibility_rule",
        "eligibility_basis",
        "owning_unit_code",
        "status",
        "closed_reason",
        "closed_at",
        "needs_unit_decision",
        "expected_release_month",
        "key_dates",
        "parole_review_open",
        "in_scheme_published",
    )

    def vlo_for(self, unit_code: str) -> str | None:
        """The VLO a unit allocated this case to; None sends the unit's notifications to its triage."""
        return next((a.vlo_id for a in self.allocations if a.unit_code == unit_code), None)

    @property
    def eligible(self) -> bool:
        return self.eligibility_status in ("statutory", "discretionary")

    @property
    def notifiable(self) -> bool:
        return self.eligible and self.status == "open"


@dataclass(eq=False)
class Allocation:
    """The VLO of one unit for one case."""

    case: Case
    unit_code: str
    vlo_id: str
    id: int | None = None

    CHANGEABLE = ("vlo_id",)


@dataclass(eq=False)
class Victim:
    case: Case
    person_ref: str
    relationship_to_offence: str = ""
    unit_code: str = ""
    name: str | None = None
    postcode: str | None = None
    language: str | None = None
    preferred_channel: str | None = None
    categories: list[str] | None = None
    opted_out: bool = False
    declined: bool = False
    accessibility_needs: str | None = None
    last_contacted_at: datetime | None = None
    anonymised_at: datetime | None = None
    anonymised_reason: str | None = None
    id: int | None = None

    CHANGEABLE = (
        "name",
        "relationship_to_offence",
        "postcode",
        "unit_code",
        "language",
        "preferred_channel",
        "categories",
        "opted_out",
        "declined",
        "accessibility_needs",
        "last_contacted_at",
        "anonymised_at",
        "anonymised_reason",
    )


@dataclass(eq=False)
class Timer:
    kind: str
    case: Case
    victim: Victim | None
    due_at: datetime
    started_at: datetime
    cause: str = ""
    stopped_at: datetime | None = None
    fired_at: datetime | None = None
    id: int | None = None

    CHANGEABLE = ("due_at", "stopped_at", "fired_at")

    @property
    def running(self) -> bool:
        return self.stopped_at is None and self.fired_at is None


@dataclass(eq=False)
class Notification:
    """A notification for one victim's VLO (or a unit's triage): the audit record, and the outbox until it is on
    its queue."""

    notification_id: str
    kind: str
    case: Case | None
    unit_code: str
    event_type: str
    action: str
    priority: str
    topic: str
    key: bytes
    payload: bytes | None
    created_at: datetime
    source_event_id: str | None = None
    person_ref: str | None = None
    event_published_at: datetime | None = None
    release_after: datetime | None = None
    published_at: datetime | None = None
    withdrawn_at: datetime | None = None
    acknowledged_at: datetime | None = None
    case_id: int | None = None  # of a notification read back; one made here takes its case's id when written

    CHANGEABLE = ("withdrawn_at", "acknowledged_at")


@dataclass(eq=False)
class OutboxRecord:
    """A record for another agency's topic, published after its transaction commits like a notification."""

    topic: str
    key: bytes
    payload: bytes | None
    record_type: str
    case: Case | None
    created_at: datetime
    person_ref: str | None = None
    published_at: datetime | None = None
    id: int | None = None


@dataclass(eq=False)
class LicenceRequest:
    """One condition a victim asked for, outstanding while `outcome` is None."""

    case: Case
    person_ref: str
    request_id: str
    kind: str
    text: str | None
    code: str | None
    requested_at: datetime
    outcome: str | None = None
    reason: str | None = None
    decided_by_event_id: str | None = None
    decided_at: datetime | None = None
    id: int | None = None

    CHANGEABLE = ("outcome", "reason", "decided_by_event_id", "decided_at")


class ParkedKey(NamedTuple):
    """An identifier a parked event waits under; equal to the plain (kind, value) pair."""

    kind: str
    value: str


@dataclass(eq=False)
class ParkedEvent:
    """An event about an offender the hub does not know yet, kept until a case or a link matches it."""

    event_id: str
    event_type: str
    source: str
    topic: str
    payload: bytes
    key: bytes | None
    headers: list[list[str]] | None
    published_at: datetime
    parked_at: datetime
    keys: list[ParkedKey] = field(default_factory=list)
    id: int | None = None
