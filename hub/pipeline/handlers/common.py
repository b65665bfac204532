"""What every source's rules use: the effects of an event, the identifiers it names, what a chunk needs loaded,
and the base of the handlers with the common path (an event about an offender, told to every victim of their
cases), the scheme-flag bookkeeping, the helpers that find a case or a victim, and the timers.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from connectors.avro import AvroCodec
from hub.errors import IdentifierKey, IdentityConflict, Unmatched
from hub.pipeline.catch_up import catch_up
from hub.pipeline.ingest import IngestedEvent
from hub.pipeline.notify import Cause, NotificationFactory
from hub.pipeline.outbound import OutboundFactory, case_in_scheme
from hub.settings import Settings
from hub.store.casefile import CaseFile, Needs
from hub.store.records import Case, Notification, Offender, OutboxRecord, Timer, Victim
from routing import content, requests
from routing.catalogue import rule_for
from routing.decisions import TASK, Kind, Priority, VictimChoices, decide
from routing.timers import TimerKind, end_of_day, first_contact_due, first_contact_task
from routing.units import UnitDirectory
from schemas import identifier_kinds
from schemas.models import AvroRecord
from schemas.validation import InvalidEvent, Problem

log = logging.getLogger(__name__)

IDENTIFIER_KINDS = identifier_kinds()


# Only these events may say that two offender records are one person.
LINKING_EVENTS = frozenset({"OffenderIdentifiersLinked"})


@dataclass
class Effects:
    new_keys: list[IdentifierKey] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)
    outbound: list[OutboxRecord] = field(
        default_factory=list
    )  # for other agencies (hub/pipeline/outbound.py)


E = TypeVar("E", bound=AvroRecord)


def of_type(ingested: IngestedEvent, kind: type[E]) -> E:
    """The event as the class its handler names (the handler table is keyed by event type)."""
    event = ingested.event
    if not isinstance(event, kind):
        raise TypeError(f"{ingested.event_type} reached the handler of {kind.__name__}")
    return event


def required(value: str | None, field: str) -> str:
    """An identifier the event type's contract rules require (schemas/validation.py): checked at ingest, so
    meeting None here means those rules and this handler disagree."""
    if value is None:
        raise InvalidEvent([Problem(field, "is required for this event type")])
    return value


def subject_keys(event: AvroRecord) -> list[IdentifierKey]:
    subject = event.envelope.subject
    return [(kind, str(value)) for kind in IDENTIFIER_KINDS if (value := getattr(subject, kind)) is not None]


def needs_of(events: list[IngestedEvent]) -> Needs:
    """What these events' rules will ask the case store about, for the load step to read at once."""
    identifiers: list[IdentifierKey] = []
    case_refs: list[str] = []
    parked: list[IdentifierKey] = []
    person_refs: list[str] = []
    acknowledged: list[str] = []
    cancelled: list[str] = []
    referred: list[str] = []
    for ingested in events:
        event = ingested.event
        keys = subject_keys(event)
        match ingested.event_type:
            case "SentenceImposed":
                keys += [
                    (kind, v) for kind in ("pnc", "cro") if (v := getattr(event.offender, kind)) is not None
                ]
            case "PrisonerRecordsMerged":
                keys.append(("noms_number", event.removed_noms_number))
            case "VictimReferred":
                parked.append(("person_ref", event.victim.person_ref))
                referred.append(event.envelope.subject.case_ref)
            case "PrisonerReleased":
                parked.append(("event_id", ingested.event_id))
            case "PrisonerReleaseCancelled":
                cancelled.append(str(event.cancels_event_id))
            case "VictimAddressChanged":
                person_refs.append(event.person_ref)
            case "NotificationAcknowledged":
                acknowledged.append(str(event.notification_id))
        identifiers += keys
        parked += keys
        if (case_ref := event.envelope.subject.case_ref) is not None:
            case_refs.append(case_ref)
    return Needs(
        identifiers=frozenset(identifiers),
        case_refs=frozenset(case_refs),
        person_refs=frozenset(person_refs),
        event_ids=frozenset(ingested.event_id for ingested in events),
        parked_keys=frozenset(parked),
        notification_ids=frozenset(acknowledged),
        cancelled_event_ids=frozenset(cancelled),
        referred_case_refs=frozenset(referred),
    )


class CommonHandlers:
    """The rules applied to one event at a time, on what the CaseFile holds; every change goes through it. The
    base of each source's handlers (hub/pipeline/handlers/): the state they share and the common path."""

    _handlers: dict[str, Callable[[IngestedEvent], Effects]]

    def __init__(
        self, store: CaseFile, units: UnitDirectory, settings: Settings, codec: AvroCodec, now: datetime
    ) -> None:
        self.store = store
        self.units = units
        self.settings = settings
        self.now = now
        self.factory = NotificationFactory(settings, codec, now)
        self.outbound = OutboundFactory(settings, codec, units, now)
        # Cases whose scheme flag the event being applied may have changed (docs/domain.md section 8.3).
        self._scheme_cases: dict[Case, None] = {}

    def apply(self, ingested: IngestedEvent) -> Effects:
        self._scheme_cases = {}
        handler = self._handlers.get(ingested.event_type)
        if handler is not None:
            effects = handler(ingested)
        elif ingested.event_type in content.BUILDERS:
            effects = self.offender_event(ingested)
        else:
            raise NotImplementedError(f"{ingested.event_type} has no handler")
        effects.outbound.extend(self._scheme_flags(ingested))
        return effects

    def _scheme_may_change(self, *cases: Case) -> None:
        self._scheme_cases.update(dict.fromkeys(cases))

    def _scheme_flags(self, ingested: IngestedEvent) -> list[OutboxRecord]:
        """The scheme flag of each case the event may have moved into or out of the scheme, where it did."""
        cases, self._scheme_cases = self._scheme_cases, {}
        made = []
        for case in cases:
            if case_in_scheme(case) != bool(case.in_scheme_published):
                identifiers = self.store.identifiers_of(case.offender)
                made.extend(self.outbound.scheme_flag(case, identifiers, ingested.event_id))
        return made

    # ---- the common path: an event about an offender, told to every victim of their cases
    def offender_event(self, ingested: IngestedEvent, *, release_after: datetime | None = None) -> Effects:
        offender, effects = self._offender(ingested)
        said = content.content_for(ingested.event_type, ingested.event)
        # A decision that sets conditions settles the victims' outstanding requests (docs/domain.md section 8.2).
        decided = requests.decided_by(ingested.event_type, ingested.event)
        if said is not None:
            for case in offender.cases:
                if case.notifiable:
                    outcomes = self._reconcile(ingested, case, decided) if decided is not None else {}
                    effects.notifications.extend(
                        self._notify_case(
                            ingested, case, said, release_after=release_after, outcomes=outcomes
                        )
                    )
                    effects.notifications.extend(self._escalate_unaddressed(ingested, case, outcomes))
        return effects

    def _reconcile(
        self, ingested: IngestedEvent, case: Case, decided: requests.Decided
    ) -> dict[str, list[requests.Reconciled]]:
        """Each outstanding request of the case set, omitted or not addressed by the decision, by victim."""
        rows = self.store.outstanding_requests(case)
        if not rows:
            return {}
        by_id = {row.request_id: row for row in rows}
        asked = [requests.Request(row.request_id, row.text or "", row.code) for row in rows]
        by_victim: dict[str, list[requests.Reconciled]] = {}
        for reconciled in requests.reconcile(asked, decided):
            row = by_id[reconciled.request.request_id]
            row.outcome = reconciled.outcome.value
            row.reason = reconciled.reason
            row.decided_by_event_id = ingested.event_id
            row.decided_at = self.now
            by_victim.setdefault(row.person_ref, []).append(reconciled)
        return by_victim

    def _escalate_unaddressed(
        self, ingested: IngestedEvent, case: Case, outcomes: Mapping[str, list[requests.Reconciled]]
    ) -> list[Notification]:
        """An escalation to each victim's VLO listing the requests the decision left unaddressed. The VLO made the
        requests and must chase them, so it goes to them rather than to triage, and whatever the victim chose:
        the conditions protect the victim."""
        made = []
        for person_ref, reconciled in outcomes.items():
            texts = [r.request.text for r in reconciled if r.outcome is requests.Outcome.NOT_ADDRESSED]
            victim = self._victim(case, person_ref)
            if not texts or victim is None:
                continue
            cause = Cause(
                Kind.ESCALATION,
                f"not_addressed:{ingested.event_id}",
                ingested.event_type,
                (ingested.event_id,),
            )
            said = requests.unaddressed_escalation(texts, ingested.event_type)
            made.append(self.factory.build(cause, case, victim, TASK, said, None))
        return made

    def identity_only(self, ingested: IngestedEvent) -> Effects:
        """Links identifiers (and merges offender records they prove to be one person)."""
        return self._offender(ingested)[1]

    def _offender(self, ingested: IngestedEvent) -> tuple[Offender, Effects]:
        keys = subject_keys(ingested.event)
        found = self._one_offender(ingested.event_type, keys)
        if found is None:
            raise Unmatched(keys)
        return found, Effects(new_keys=self.store.link(found, keys))

    def _one_offender(self, event_type: str, keys: list[IdentifierKey]) -> Offender | None:
        """The offender these identifiers name; two records are merged only on a linking event's word."""
        found = self.store.offenders_for(keys)
        if len(found) > 1 and event_type not in LINKING_EVENTS:
            owners = {key: self.store.owners.get(key) for key in keys}
            raise IdentityConflict(
                [kind for (kind, _), owner in owners.items() if owner is not None and owner is not found[0]]
            )
        for other in found[1:]:
            self.store.merge_offenders(keep=found[0], remove=other)
            log.info("merged two offender records linked by %s", event_type)
        return found[0] if found else None

    def _notify_case(
        self,
        ingested: IngestedEvent,
        case: Case,
        said: content.NotificationContent,
        *,
        kind: Kind = Kind.EVENT,
        release_after: datetime | None = None,
        outcomes: Mapping[str, list[requests.Reconciled]] | None = None,
    ) -> list[Notification]:
        """One notification per victim of the case; to the owning unit when nobody is referred yet. `outcomes`:
        what a decision did with each victim's requests, told to that victim's notification only."""
        rule = rule_for(ingested.event_type)
        cause = Cause(kind, ingested.event_id, ingested.event_type, (ingested.event_id,))
        category = rule.category.value if rule.category else None
        made = []
        victims: list[Victim | None] = list(case.victims)
        for victim in victims or [None]:
            if kind is Kind.TASK:
                if victim is not None and (victim.declined or victim.opted_out):
                    continue
                decision = TASK
            else:
                choices = VictimChoices(
                    categories=victim.categories if victim else None,
                    opted_out=(victim.opted_out or victim.declined) if victim else False,
                )
                decision = decide(rule, choices)
            theirs = (outcomes or {}).get(victim.person_ref, []) if victim is not None else []
            notification = self.factory.build(
                cause,
                case,
                victim,
                decision,
                requests.with_outcomes(said, requests.outcomes_for(theirs)),
                category,
                release_after=None if rule.urgent else release_after,
            )
            made.append(notification)
            self._await_acknowledgement(case, victim, notification)
        return made

    def _await_acknowledgement(self, case: Case, victim: Victim | None, notification: Notification) -> None:
        """An urgent notification escalates unless its unit acknowledges it in time."""
        if notification.priority == Priority.URGENT.value:
            self._start_timer(
                TimerKind.URGENT_UNACKNOWLEDGED,
                case,
                victim,
                self.now + timedelta(minutes=self.settings.urgent_ack_minutes),
                cause=notification.notification_id,
            )

    def _case(self, event: AvroRecord) -> Case:
        case_ref = event.envelope.subject.case_ref
        case = self.store.case_by_ref(case_ref)
        if case is None:
            raise Unmatched([("case_ref", case_ref)])
        return case

    def _catch_up(self, case: Case, victim: Victim, referral_published_at: datetime) -> list[Notification]:
        """Events published after the referral but applied before it reach the victim too (hub/pipeline/catch_up.py)."""
        made = catch_up(self.store, self.factory, case, victim, referral_published_at)
        for notification in made:
            self._await_acknowledgement(case, victim, notification)
        return made

    def _offer_first_contact(self, ingested: IngestedEvent, case: Case) -> list[Notification]:
        """Ask the VLO to offer the scheme to every victim not yet offered it, once the case is eligible.

        A victim referred while the case was out of the scheme is offered it when an appeal or the unit brings
        the case in: discretionary cases get exactly the same service."""
        if not case.notifiable or case.sentence_date is None:
            return []
        due = first_contact_due(case.sentence_date)
        made = []
        for victim in case.victims:
            if (
                victim.declined
                or victim.opted_out
                or self.store.has_timer(case, victim, TimerKind.FIRST_CONTACT)
            ):
                continue
            self._start_timer(TimerKind.FIRST_CONTACT, case, victim, end_of_day(due))
            cause = Cause(
                Kind.TASK, f"first_contact:{ingested.event_id}", ingested.event_type, (ingested.event_id,)
            )
            made.append(self.factory.build(cause, case, victim, TASK, first_contact_task(due), None))
        return made

    def case_closing_event(self, ingested: IngestedEvent) -> Effects:
        """PrisonerDied and LicenceEnded: tell the victims, then close the case and stop its timers."""
        effects = self.offender_event(ingested)
        offender = self.store.offenders_for(subject_keys(ingested.event))[0]
        for case in offender.cases:
            if case.status == "open":
                case.status = "closed"
                case.closed_reason = ingested.event_type
                case.closed_at = self.now  # the retention schedule's clock for its victims' data
                self._stop_timers(case, None, *TimerKind)
                self._scheme_may_change(case)
        return effects

    def with_task(self, ingested: IngestedEvent) -> Effects:
        """ParoleHearingListed and provisional release decisions: the event, plus a deadline task per victim."""
        effects = self.offender_event(ingested)
        said = content.content_for(ingested.event_type, ingested.event)
        if said is None or said.due_by is None:
            return effects
        task = content.NotificationContent(f"Deadline: {said.summary}", {**said.facts}, due_by=said.due_by)
        offender = self.store.offenders_for(subject_keys(ingested.event))[0]
        for case in offender.cases:
            if case.notifiable:
                effects.notifications.extend(
                    n for n in self._notify_case(ingested, case, task, kind=Kind.TASK) if n.person_ref
                )
        return effects

    def _victim(self, case: Case, person_ref: str) -> Victim | None:
        return next((v for v in case.victims if v.person_ref == person_ref), None)

    def _case_victim(self, event: AvroRecord) -> tuple[Case, Victim]:
        case = self._case(event)
        victim = self._victim(case, event.person_ref)
        if victim is None:
            # The unit knows of the victim before the referral reached the hub: wait for the referral.
            raise Unmatched([("person_ref", event.person_ref)])
        return case, victim

    # ---- timers
    def _start_timer(
        self, kind: TimerKind, case: Case, victim: Victim | None, due_at: datetime, cause: str = ""
    ) -> None:
        self.store.start_timer(
            Timer(kind=kind.value, case=case, victim=victim, cause=cause, due_at=due_at, started_at=self.now)
        )

    def _stop_timers(self, case: Case, victim: Victim | None, *kinds: TimerKind) -> None:
        self.store.stop_timers(case, victim, [k.value for k in kinds], self.now)
