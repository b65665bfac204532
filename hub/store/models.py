"""The case store's tables: offenders and their identifiers, cases, victims, parked events, the outbox.

Offenders are linked on identifiers only (never names): one row per (kind, value), so a merge re-keys rows
instead of copying them. Victim contact details beyond what routing needs are not kept here, and what is kept of a
victim (name, postcode, language, channel, accessibility needs) and every stored event or notification is encrypted
at rest (hub/store/encryption.py). Routing searches on references only: case_ref, person_ref, identifiers and the
unit a postcode resolved to.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

from hub.store.encryption import EncryptedBytes, EncryptedText


class UtcDateTime(TypeDecorator[datetime]):
    """An instant, always timezone-aware UTC in Python, whatever the database keeps (SQLite keeps no zone)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime: the case store only keeps UTC instants")
        value = value.astimezone(UTC)
        # SQLite compares instants as text, so store them all in UTC without an offset.
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    pass


class ProcessedEvent(Base):
    """Every event the hub has applied, so a redelivered or republished one is not applied twice."""

    __tablename__ = "processed_events"
    event_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    event_type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    processed_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)  # retention prunes by it


class Offender(Base):
    __tablename__ = "offenders"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    identifiers: Mapped[list[OffenderIdentifier]] = relationship(back_populates="offender")
    cases: Mapped[list[Case]] = relationship(back_populates="offender")


class OffenderIdentifier(Base):
    __tablename__ = "offender_identifiers"
    __table_args__ = (UniqueConstraint("kind", "value", name="uq_identifier"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    offender_id: Mapped[int] = mapped_column(ForeignKey("offenders.id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # noms_number, crn, pnc, cro, case_ref, ...
    value: Mapped[str] = mapped_column(String(64))
    offender: Mapped[Offender] = relationship(back_populates="identifiers")


class Case(Base):
    __tablename__ = "cases"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_ref: Mapped[str] = mapped_column(String(64), unique=True)
    offender_id: Mapped[int] = mapped_column(ForeignKey("offenders.id"), index=True)
    court_code: Mapped[str | None] = mapped_column(String(200))
    sentence_date: Mapped[date | None] = mapped_column(Date)
    youth: Mapped[bool] = mapped_column(Boolean, default=False)
    # [{code, description, classification}]: kept so an appeal can re-run eligibility on the same offences.
    offences: Mapped[list[dict] | None] = mapped_column(JSON)
    eligibility_status: Mapped[str] = mapped_column(String(16))  # statutory, not_eligible, discretionary
    eligibility_rule: Mapped[str] = mapped_column(String(64))
    eligibility_basis: Mapped[str] = mapped_column(Text)
    owning_unit_code: Mapped[str] = mapped_column(String(8))  # the sentencing court's unit, until referral
    status: Mapped[str] = mapped_column(String(16), default="open")  # open, closed
    closed_reason: Mapped[str | None] = mapped_column(String(200))
    # When it closed: the retention schedule's clock for its victims' personal data (hub/store/retention.py).
    closed_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    # An appeal made the case non-statutory while victims are in the scheme: the unit must decide.
    needs_unit_decision: Mapped[bool] = mapped_column(Boolean, default=False)
    expected_release_month: Mapped[str | None] = mapped_column(String(7))  # YYYY-MM, to spot a change
    # The latest sentence dates from the prison (conditional release, parole eligibility, ...), ISO days.
    key_dates: Mapped[dict[str, str] | None] = mapped_column(JSON)
    opened_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # Between ParoleReviewStarted and ParoleDecisionIssued: a licence condition request goes to the Parole Board too.
    parole_review_open: Mapped[bool] = mapped_column(Boolean, default=False, server_default=text("false"))
    # The scheme flag last published for offender-facing systems (docs/domain.md section 8.3); None: never.
    in_scheme_published: Mapped[bool | None] = mapped_column(Boolean)
    offender: Mapped[Offender] = relationship(back_populates="cases")
    victims: Mapped[list[Victim]] = relationship(back_populates="case", order_by="Victim.id")
    allocations: Mapped[list[CaseAllocation]] = relationship(back_populates="case")

    def vlo_for(self, unit_code: str) -> str | None:
        """The VLO a unit allocated this case to; None sends the unit's notifications to its triage."""
        return next((a.vlo_id for a in self.allocations if a.unit_code == unit_code), None)

    @property
    def eligible(self) -> bool:
        return self.eligibility_status in ("statutory", "discretionary")

    @property
    def notifiable(self) -> bool:
        return self.eligible and self.status == "open"


class CaseAllocation(Base):
    """The VLO of one unit for one case: a bereaved family split across units has one VLO in each."""

    __tablename__ = "case_allocations"
    __table_args__ = (UniqueConstraint("case_id", "unit_code", name="uq_case_unit"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    unit_code: Mapped[str] = mapped_column(String(8))
    vlo_id: Mapped[str] = mapped_column(String(64))
    case: Mapped[Case] = relationship(back_populates="allocations")


class Victim(Base):
    """A member of a case: a victim or bereaved relative, routed separately from the others."""

    __tablename__ = "victims"
    __table_args__ = (UniqueConstraint("case_id", "person_ref", name="uq_case_member"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    person_ref: Mapped[str] = mapped_column(String(64), index=True)
    # None once anonymised (retention) or erased: see anonymised_at.
    name: Mapped[str | None] = mapped_column(EncryptedText("victims.name"))
    relationship_to_offence: Mapped[str] = mapped_column(String(32))
    postcode: Mapped[str | None] = mapped_column(EncryptedText("victims.postcode"))
    unit_code: Mapped[str] = mapped_column(String(8))
    language: Mapped[str | None] = mapped_column(EncryptedText("victims.language"))
    preferred_channel: Mapped[str | None] = mapped_column(EncryptedText("victims.preferred_channel"))
    # None until the victim chooses: the VLO then records events without informing the victim.
    categories: Mapped[list[str] | None] = mapped_column(JSON)
    opted_out: Mapped[bool] = mapped_column(Boolean, default=False)
    declined: Mapped[bool] = mapped_column(Boolean, default=False)  # declined the scheme at referral
    accessibility_needs: Mapped[str | None] = mapped_column(EncryptedText("victims.accessibility_needs"))
    last_contacted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # When the personal fields were removed, and why: "retention" (the schedule) or "erasure" (on request).
    anonymised_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    anonymised_reason: Mapped[str | None] = mapped_column(String(16))
    case: Mapped[Case] = relationship(back_populates="victims")


class ParkedEvent(Base):
    """An event about an offender the hub does not know yet, kept until a case or link matches it."""

    __tablename__ = "parked_events"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    event_id: Mapped[str] = mapped_column(String(36), unique=True)
    event_type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(String(32))
    topic: Mapped[str] = mapped_column(String(200))
    payload: Mapped[bytes] = mapped_column(EncryptedBytes("parked_events.payload"))
    # The record's key and headers as they came (headers: [name, base64 value] pairs): an event no case claims
    # becomes a dead letter (hub/store/retention.py) whose replay must carry the agency's signature again.
    key: Mapped[bytes | None] = mapped_column(LargeBinary)
    headers: Mapped[list[list[str]] | None] = mapped_column(JSON)
    published_at: Mapped[datetime] = mapped_column(UtcDateTime())  # replay order when unparked
    parked_at: Mapped[datetime] = mapped_column(UtcDateTime())
    keys: Mapped[list[ParkedEventKey]] = relationship(cascade="all, delete-orphan")


class ParkedEventKey(Base):
    __tablename__ = "parked_event_keys"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    parked_event_id: Mapped[int] = mapped_column(
        ForeignKey("parked_events.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    value: Mapped[str] = mapped_column(String(64), index=True)


class Timer(Base):
    """A deadline (docs/domain.md section 6.2): raises a task or escalation when due unless an event stops it."""

    __tablename__ = "timers"
    __table_args__ = (
        UniqueConstraint("kind", "case_id", "victim_id", "cause", name="uq_timer"),
        # Running timers only: the store keeps every timer ever started, but the timer check and the watched
        # counts ask only about these, and must not read a million finished ones every few seconds.
        Index(
            "ix_timers_running",
            "due_at",
            "kind",
            sqlite_where=text("fired_at IS NULL AND stopped_at IS NULL"),
            postgresql_where=text("fired_at IS NULL AND stopped_at IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    victim_id: Mapped[int | None] = mapped_column(ForeignKey("victims.id"), index=True)
    cause: Mapped[str] = mapped_column(String(64), default="")  # what started it: an event or notification id
    due_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime())
    stopped_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    fired_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    case: Mapped[Case] = relationship()
    victim: Mapped[Victim | None] = relationship()


# A timer still running: neither fired nor stopped. What ix_timers_running covers, so queries about running timers
# say it this way.
TIMER_RUNNING = (Timer.fired_at.is_(None), Timer.stopped_at.is_(None))


class Notification(Base):
    """Every notification produced: the audit record, and the outbox until it is on its queue."""

    __tablename__ = "notifications"
    __table_args__ = (
        # The outbox and the unanswered urgent notifications are a handful among every notification ever made.
        Index(
            "ix_notifications_outbox",
            "created_at",
            sqlite_where=text("published_at IS NULL AND withdrawn_at IS NULL"),
            postgresql_where=text("published_at IS NULL AND withdrawn_at IS NULL"),
        ),
        Index(
            "ix_notifications_urgent_open",
            "created_at",
            sqlite_where=text("priority = 'urgent' AND acknowledged_at IS NULL AND withdrawn_at IS NULL"),
            postgresql_where=text("priority = 'urgent' AND acknowledged_at IS NULL AND withdrawn_at IS NULL"),
        ),
        # The payloads still kept, about a queue retention's worth: the retention schedule finds those due here
        # instead of walking every notification whose payload it already dropped.
        Index(
            "ix_notifications_payload_kept",
            "published_at",
            "withdrawn_at",
            sqlite_where=text("payload IS NOT NULL"),
            postgresql_where=text("payload IS NOT NULL"),
        ),
    )
    notification_id: Mapped[str] = mapped_column(String(36), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    unit_code: Mapped[str] = mapped_column(String(8))
    event_type: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(16))
    priority: Mapped[str] = mapped_column(String(8))
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[bytes] = mapped_column(LargeBinary)
    # None once the retention schedule dropped it (it is on the unit's queue, and past that queue's retention).
    payload: Mapped[bytes | None] = mapped_column(EncryptedBytes("notifications.payload"))
    source_event_id: Mapped[str | None] = mapped_column(String(36), index=True)
    person_ref: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    # When the agency published the event behind it: a victim referred after the event was applied, but
    # published before it, is caught up (hub/pipeline/catch_up.py).
    event_published_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # A release is held until then, so a correction can withdraw it before any VLO acts on it.
    release_after: Mapped[datetime | None] = mapped_column(UtcDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime(), index=True)
    withdrawn_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    acknowledged_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Set when it is built, so a notification about a case opened in the same transaction needs no early write
    # of the case to learn its id: the unit of work fills case_id.
    case: Mapped[Case | None] = relationship()


class OperatorAction(Base):
    """The audit of what operators did: who, when, what, and how many records it touched."""

    __tablename__ = "operator_actions"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(32))  # dlq.list, dlq.show, dlq.replay, dlq.purge
    target: Mapped[str] = mapped_column(Text)  # ids or the filter
    count: Mapped[int] = mapped_column(Integer)


class PurgedDeadLetter(Base):
    """A dead letter an operator purged: hidden from later listings (the topic itself keeps it until retention)."""

    __tablename__ = "purged_dead_letters"
    partition: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    offset: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    purged_at: Mapped[datetime] = mapped_column(UtcDateTime())


class Operator(Base):
    """Someone who may sign in to the operations console; admins may also replay and purge dead letters."""

    __tablename__ = "operators"
    username: Mapped[str] = mapped_column(String(64), primary_key=True)
    # scrypt$n$r$p$salt$hash (base64): only the hash of a password is ever kept.
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[str] = mapped_column(String(16))  # viewer, admin
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())


class ConsoleSignOut(Base):
    """A console session signed out before it expired: refused by every worker, and after a restart."""

    __tablename__ = "console_sign_outs"
    nonce: Mapped[str] = mapped_column(String(64), primary_key=True)
    until: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)  # when it would have expired anyway


class FailedSignIn(Base):
    """A failed console sign-in, counted for the lockout by every worker (kept only for the lockout window)."""

    __tablename__ = "console_failed_sign_ins"
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    username: Mapped[str] = mapped_column(String(64), index=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class ReaderProgress(Base):
    """How far a unit queue's reader has read each partition, by the last notification it read there: what lets
    the hub put a reader's progress back on a broker that lost its topics (hub/runtime/queues.py)."""

    __tablename__ = "reader_progress"
    reader_group: Mapped[str] = mapped_column(String(200), primary_key=True)
    topic: Mapped[str] = mapped_column(String(200), primary_key=True)
    partition: Mapped[int] = mapped_column(Integer, primary_key=True)
    notification_id: Mapped[str] = mapped_column(String(36))
    at: Mapped[datetime] = mapped_column(UtcDateTime())


class DeadLetterCopy(Base):
    """A dead letter as the worker wrote it to `hub.dlq` (its value sealed for the operations key), kept so a
    broker that loses its topics can be given the dead-letter list back (hub/runtime/queues.py)."""

    __tablename__ = "dead_letter_copies"
    __table_args__ = (UniqueConstraint("partition", "offset"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(Integer)
    key: Mapped[bytes | None] = mapped_column(LargeBinary)
    value: Mapped[bytes | None] = mapped_column(LargeBinary)
    headers: Mapped[list[list[str]]] = mapped_column(JSON)  # [name, base64 value] pairs, in order
    written_at: Mapped[datetime] = mapped_column(UtcDateTime())


class RetryCopy(Base):
    """A record waiting in the retry ladder as the worker wrote it (its value sealed for the operations key), kept
    until the ladder has taken it again, so a broker that loses its topics can be given the ladder back
    (hub/runtime/queues.py)."""

    __tablename__ = "retry_copies"
    __table_args__ = (UniqueConstraint("topic", "partition", "offset"),)
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    partition: Mapped[int] = mapped_column(Integer)
    offset: Mapped[int] = mapped_column(Integer)
    key: Mapped[bytes | None] = mapped_column(LargeBinary)
    value: Mapped[bytes | None] = mapped_column(LargeBinary)
    headers: Mapped[list[list[str]]] = mapped_column(JSON)  # [name, base64 value] pairs, in order
    written_at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)


class LicenceRequest(Base):
    """One condition a victim asked for (`LicenceConditionsRequested`), and what a later decision did with it
    (docs/domain.md section 8.2): outstanding while `outcome` is None."""

    __tablename__ = "licence_requests"
    __table_args__ = (
        # The requests still outstanding: what a decision reconciles, a few among every request ever made.
        Index(
            "ix_licence_requests_outstanding",
            "case_id",
            sqlite_where=text("outcome IS NULL"),
            postgresql_where=text("outcome IS NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id"), index=True)
    person_ref: Mapped[str] = mapped_column(String(64))
    request_id: Mapped[str] = mapped_column(String(48), unique=True)  # "<event id>:<index>"
    kind: Mapped[str] = mapped_column(String(16))  # no_contact, exclusion_zone, other
    # The VLO's words may name people and places. None once erased or past retention: no longer reconciled.
    text: Mapped[str | None] = mapped_column(EncryptedText("licence_requests.text"))
    code: Mapped[str | None] = mapped_column(String(64))
    requested_at: Mapped[datetime] = mapped_column(UtcDateTime())
    outcome: Mapped[str | None] = mapped_column(String(16))  # set, omitted, not_addressed
    reason: Mapped[str | None] = mapped_column(EncryptedText("licence_requests.reason"))
    decided_by_event_id: Mapped[str | None] = mapped_column(String(36))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    case: Mapped[Case] = relationship()


class OutboxRecord(Base):
    """A record for another agency's topic (`outbound.<agency>`), written in the transaction of the change it
    follows from and published after it, like a notification: the outbox until it is on its topic."""

    __tablename__ = "outbound_records"
    __table_args__ = (
        Index(
            "ix_outbound_records_outbox",
            "created_at",
            sqlite_where=text("published_at IS NULL AND payload IS NOT NULL"),
            postgresql_where=text("published_at IS NULL AND payload IS NOT NULL"),
        ),
        Index(
            "ix_outbound_records_payload_kept",
            "published_at",
            sqlite_where=text("payload IS NOT NULL"),
            postgresql_where=text("payload IS NOT NULL"),
        ),
    )
    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    topic: Mapped[str] = mapped_column(String(200))
    key: Mapped[bytes] = mapped_column(LargeBinary)
    # None once the retention schedule or an erasure dropped it: nothing left to publish.
    payload: Mapped[bytes | None] = mapped_column(EncryptedBytes("outbound_records.payload"))
    record_type: Mapped[str] = mapped_column(String(64))
    # What erasure and retention find the record by: its case, and the victim whose words it carries (if any).
    case_id: Mapped[int | None] = mapped_column(ForeignKey("cases.id"), index=True)
    person_ref: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime())
    published_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    case: Mapped[Case | None] = relationship()


def _table(model: type[Base]) -> Table:
    return model.__table__  # type: ignore[return-value]


# The tables as Core sees them: what the pipeline's load and write steps (hub/store/load.py, write.py) use.
OFFENDERS = _table(Offender)
IDENTIFIERS = _table(OffenderIdentifier)
CASES = _table(Case)
VICTIMS = _table(Victim)
ALLOCATIONS = _table(CaseAllocation)
TIMERS = _table(Timer)
NOTIFICATIONS = _table(Notification)
OUTBOUND = _table(OutboxRecord)
REQUESTS = _table(LicenceRequest)
PARKED = _table(ParkedEvent)
PARKED_KEYS = _table(ParkedEventKey)
PROCESSED = _table(ProcessedEvent)
