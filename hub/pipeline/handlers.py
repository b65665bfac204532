"""Enrich and route: apply one event to the case store, then decide who is told what.

One handler per event type. A handler returns the identifiers it newly linked (they may unpark waiting
events) and the notifications it produced; it raises `Unmatched` when the event concerns no case yet.
Notifiable events about an offender (most of the catalogue) share one path: find the offender through any
identifier, then notify every victim of every open, eligible case, with content built by `routing.content`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TypeVar

from connectors.avro import AvroCodec
from hub import metrics
from hub.errors import IdentifierKey, IdentityConflict, UnknownReference, Unmatched
from hub.pipeline.catch_up import catch_up
from hub.pipeline.ingest import IngestedEvent
from hub.pipeline.notify import Cause, NotificationFactory
from hub.pipeline.outbound import OutboundFactory, RequestedCondition, case_in_scheme
from hub.settings import Settings
from hub.store.casefile import CaseFile, Needs
from hub.store.records import (
    Allocation,
    Case,
    LicenceRequest,
    Notification,
    Offender,
    OutboxRecord,
    Timer,
    Victim,
)
from routing import content, eligibility, requests
from routing.catalogue import Category, rule_for
from routing.decisions import TASK, Kind, Priority, VictimChoices, decide
from routing.timers import (
    TimerKind,
    annual_update_due,
    end_of_day,
    first_contact_due,
    first_contact_task,
    referral_due,
)
from routing.units import UnitDirectory
from schemas import identifier_kinds
from schemas.events import (
    AppealDetermined,
    AppealLodged,
    CaseAllocated,
    DiscretionaryCaseOpened,
    LicenceConditionsRequested,
    NotificationAcknowledged,
    PrisonerRecordsMerged,
    PrisonerReleaseCancelled,
    ReleaseDatesCalculated,
    SentenceImposed,
    VictimAddressChanged,
    VictimContacted,
    VictimDeclinedScheme,
    VictimOptedIn,
    VictimOptedOut,
    VictimPreferencesUpdated,
    VictimReferred,
)
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


def _sentence_of(
    disposal: str, term: int | None, offences: tuple[eligibility.Offence, ...], youth: bool
) -> eligibility.Sentence:
    return eligibility.Sentence(eligibility.Disposal(disposal), term, offences, youth)


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


class EventHandlers:
    """The rules applied to one event at a time, on what the CaseFile holds; every change goes through it."""

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
        # Events with a handler of their own; every other notifiable event takes `offender_event`.
        self._handlers: dict[str, Callable[[IngestedEvent], Effects]] = {
            "SentenceImposed": self.sentence_imposed,
            "AppealLodged": self.appeal_lodged,
            "AppealDetermined": self.appeal_determined,
            "VictimReferred": self.victim_referred,
            "VictimDeclinedScheme": self.victim_declined_scheme,
            "PrisonerReceived": self.identity_only,
            "OffenderIdentifiersLinked": self.identity_only,
            "PrisonerRecordsMerged": self.prisoner_records_merged,
            "ReleaseDatesCalculated": self.release_dates_calculated,
            "PrisonerReleased": self.prisoner_released,
            "PrisonerReleaseCancelled": self.prisoner_release_cancelled,
            "PrisonerDied": self.case_closing_event,
            "LicenceEnded": self.case_closing_event,
            "ParoleReviewStarted": self.parole_review_started,
            "ParoleHearingListed": self.with_task,
            "ParoleDecisionIssued": self.parole_decision_issued,
            "DiscretionaryCaseOpened": self.discretionary_case_opened,
            "CaseAllocated": self.case_allocated,
            "VictimPreferencesUpdated": self.victim_preferences_updated,
            "VictimOptedOut": self.victim_opted_out,
            "VictimOptedIn": self.victim_opted_in,
            "VictimAddressChanged": self.victim_address_changed,
            "VictimContacted": self.victim_contacted,
            "NotificationAcknowledged": self.notification_acknowledged,
            "LicenceConditionsRequested": self.licence_conditions_requested,
        }

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

    # ---- court
    def sentence_imposed(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, SentenceImposed)
        case_ref = required(event.envelope.subject.case_ref, "envelope.subject.case_ref")
        keys = subject_keys(event) + [
            (kind, value) for kind in ("pnc", "cro") if (value := getattr(event.offender, kind)) is not None
        ]
        keys = [key for key in keys if key[0] != "case_ref"] + [("case_ref", case_ref)]
        offences = tuple(
            eligibility.Offence(o.code, eligibility.Classification(o.classification), o.description)
            for o in event.offences
        )
        result = eligibility.assess(
            _sentence_of(event.disposal, event.custodial_term_months, offences, event.youth)
        )
        case = self.store.case_by_ref(case_ref)
        if case is None:
            offender = self._one_offender(ingested.event_type, keys) or self.store.new_offender()
            case = Case(
                case_ref=case_ref,
                offender=offender,
                opened_at=self.now,
                owning_unit_code=self.units.unit_for_court(event.court_code).code,
            )
            self.store.add_case(case)
        elif case.eligibility_status == "discretionary" and not result.eligible:
            result = eligibility.open_discretionary(result, case.owning_unit_code, "kept open by the unit")
        case.court_code = event.court_code
        case.sentence_date = event.sentence_date
        case.youth = event.youth
        case.offences = [
            {"code": o.code, "description": o.description, "classification": o.classification}
            for o in event.offences
        ]
        case.eligibility_status = result.status.value
        case.eligibility_rule = result.rule
        case.eligibility_basis = result.basis
        # Debug, not info: a line per sentence is a noticeable share of the applying thread's time, and the case
        # store keeps the outcome (cases.eligibility_status, eligibility_rule).
        log.debug("case %s: %s (%s)", case.case_ref, result.status.value, result.rule)
        effects = Effects(new_keys=self.store.link(case.offender, keys))
        self._scheme_may_change(case)
        if case.eligible:
            if not case.victims:
                self._start_timer(
                    TimerKind.REFERRAL_OVERDUE, case, None, end_of_day(referral_due(event.sentence_date))
                )
            if case.victims:  # the victims are told; the unit hears of a sentence through the referral timer
                said = content.sentence_imposed(event)
                effects.notifications.extend(
                    n for n in self._notify_case(ingested, case, said) if n.person_ref
                )
        return effects

    def _case(self, event: AvroRecord) -> Case:
        case_ref = event.envelope.subject.case_ref
        case = self.store.case_by_ref(case_ref)
        if case is None:
            raise Unmatched([("case_ref", case_ref)])
        return case

    def appeal_lodged(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, AppealLodged)
        case = self._case(event)
        if not case.notifiable:
            return Effects()
        return Effects(notifications=self._notify_case(ingested, case, content.appeal_lodged(event)))

    def appeal_determined(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, AppealDetermined)
        case = self._case(event)
        effects = Effects()
        if event.outcome == "sentence_varied" and event.new_disposal:
            previous = eligibility.Eligibility(
                eligibility.EligibilityStatus(case.eligibility_status),
                case.eligibility_rule,
                case.eligibility_basis,
                None,
            )
            # A sentence appeal changes the disposal, not the offences: re-run the test on the stored offences.
            offences = tuple(
                eligibility.Offence(
                    o["code"], eligibility.Classification(o["classification"]), o["description"]
                )
                for o in case.offences or []
            )
            new = _sentence_of(event.new_disposal, event.new_custodial_term_months, offences, case.youth)
            in_scheme = sum(1 for v in case.victims if not (v.opted_out or v.declined))
            reassessment = eligibility.reassess_on_appeal(previous, new, in_scheme)
            case.eligibility_status = reassessment.eligibility.status.value
            case.eligibility_rule = reassessment.eligibility.rule
            case.eligibility_basis = reassessment.eligibility.basis
            self._scheme_may_change(case)
            if reassessment.needs_unit_decision:
                case.needs_unit_decision = True
                decision_needed = content.NotificationContent(
                    "The appeal changed the sentence so that the case no longer meets the statutory test. The "
                    f"victims stay in the scheme until the unit decides: {reassessment.reason}",
                    {"new_disposal": event.new_disposal},
                )
                effects.notifications.extend(
                    self._notify_case(ingested, case, decision_needed, kind=Kind.TASK)
                )
        if case.notifiable or case.needs_unit_decision:
            effects.notifications.extend(self._notify_case(ingested, case, content.appeal_determined(event)))
        # An appeal that brings the case into the scheme offers it to victims already referred.
        effects.notifications.extend(self._offer_first_contact(ingested, case))
        return effects

    # ---- witness care and youth justice
    def victim_referred(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, VictimReferred)
        case = self._case(event)
        person = event.victim
        unit = self.units.resolve_unit(person.address.postcode)
        if unit == self.units.national_triage:
            metrics.UNMATCHED_POSTCODES.inc()
            log.warning(
                "case %s: a referred victim's postcode maps to no unit; sent to national triage",
                case.case_ref,
            )
        victim = self._victim(case, person.person_ref)
        is_new = victim is None
        if victim is None:
            victim = Victim(case=case, person_ref=person.person_ref)
            self.store.add_victim(victim)
        elif victim.anonymised_at is not None:
            if event.envelope.published_at <= victim.anonymised_at:
                # Sent before the victim's data was erased or anonymised (a replay, a late delivery): it must not
                # bring the data back.
                return Effects()
            # Referred again since: the victim rejoins, and their data is the hub's to keep again.
            victim.anonymised_at = None
            victim.anonymised_reason = None
        victim.name = person.name
        victim.relationship_to_offence = person.relationship
        victim.postcode = person.address.postcode
        victim.unit_code = unit.code
        victim.language = person.language
        victim.preferred_channel = person.preferred_channel
        victim.accessibility_needs = person.accessibility_needs
        self._stop_timers(case, None, TimerKind.REFERRAL_OVERDUE)
        self._scheme_may_change(case)
        # Preferences, opt-outs or contacts recorded before the referral reached the hub wait under person_ref.
        effects = Effects(new_keys=[("person_ref", person.person_ref)])
        if is_new:
            effects.notifications.extend(self._offer_first_contact(ingested, case))
            effects.notifications.extend(self._catch_up(case, victim, event.envelope.published_at))
        return effects

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

    def victim_declined_scheme(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, VictimDeclinedScheme)
        case = self._case(event)
        victim = self._victim(case, event.person_ref)
        if victim is None:
            raise Unmatched([("person_ref", event.person_ref), ("case_ref", case.case_ref)])
        victim.declined = True
        victim.opted_out = True
        self._stop_timers(case, victim, TimerKind.FIRST_CONTACT, TimerKind.ANNUAL_UPDATE)
        self._scheme_may_change(case)
        return Effects()

    # ---- prison
    def prisoner_records_merged(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, PrisonerRecordsMerged)
        kept = required(event.envelope.subject.noms_number, "envelope.subject.noms_number")
        removed = event.removed_noms_number
        kept_offenders = self.store.offenders_for([("noms_number", kept)])
        removed_offenders = self.store.offenders_for([("noms_number", removed)])
        if not kept_offenders and not removed_offenders:
            raise Unmatched([("noms_number", kept), ("noms_number", removed)])
        if kept_offenders and removed_offenders and kept_offenders[0] is not removed_offenders[0]:
            self.store.merge_offenders(keep=kept_offenders[0], remove=removed_offenders[0])
        offender = (kept_offenders or removed_offenders)[0]
        # The removed number stays as an alias, so a late event that still uses it finds the kept record.
        return Effects(new_keys=self.store.link(offender, [("noms_number", kept), ("noms_number", removed)]))

    def release_dates_calculated(self, ingested: IngestedEvent) -> Effects:
        offender, effects = self._offender(ingested)
        event = of_type(ingested, ReleaseDatesCalculated)
        expected = content.expected_release(event)
        month = f"{expected:%Y-%m}" if expected else None
        said = content.release_dates_calculated(event)
        for case in offender.cases:
            changed = month is not None and month != case.expected_release_month
            case.expected_release_month = month or case.expected_release_month
            case.key_dates = {**(case.key_dates or {}), **said.facts}
            if changed and case.notifiable:
                effects.notifications.extend(self._notify_case(ingested, case, said))
        return effects

    def prisoner_released(self, ingested: IngestedEvent) -> Effects:
        hold = self.settings.release_hold_seconds
        effects = self.offender_event(
            ingested, release_after=self.now + timedelta(seconds=hold) if hold else None
        )
        # A cancellation that arrived before this release waits under the release's event id.
        effects.new_keys.append(("event_id", ingested.event_id))
        return effects

    def prisoner_release_cancelled(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, PrisonerReleaseCancelled)
        cancelled = str(event.cancels_event_id)
        held = self.store.notifications_from(cancelled)
        if not held:
            raise Unmatched([("event_id", cancelled)])
        effects = Effects()
        for notification in held:
            if notification.published_at is None:
                notification.withdrawn_at = self.now  # out of the outbox: it will not go to its queue now
                held_back = notification.release_after is not None and notification.release_after > self.now
                if held_back or self.store.made_here(notification):
                    continue  # nobody was told of it: no correction either
                # Perhaps on its queue already: a worker that wrote it there may have stopped before it could
                # record that (it records it with its next transaction). A correction is safe either way.
            # Too late to withdraw: tell the same VLO the release was a mistake.
            case = notification.case or self.store.case_by_id(notification.case_id)  # type: ignore[arg-type]
            victim = self._victim(case, notification.person_ref) if notification.person_ref else None
            said = content.NotificationContent(
                "The release notified earlier was recorded in error and has been cancelled: the offender was not "
                "released.",
                {"cancels_event_id": cancelled},
            )
            cause = Cause(Kind.EVENT, ingested.event_id, ingested.event_type, (ingested.event_id, cancelled))
            decision = decide(
                rule_for("PrisonerReleased"),
                VictimChoices(
                    victim.categories if victim else None,
                    (victim.opted_out or victim.declined) if victim else False,
                ),
            )
            effects.notifications.append(
                self.factory.build(
                    cause,
                    case,
                    victim,
                    decision,
                    said,
                    Category.RELEASE.value,
                    unit_code=notification.unit_code,
                )
            )
        return effects

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

    def parole_review_started(self, ingested: IngestedEvent) -> Effects:
        """Told like any parole event; while the review is open a victim's licence condition requests go to the
        Parole Board too."""
        effects = self.offender_event(ingested)
        for case in self.store.offenders_for(subject_keys(ingested.event))[0].cases:
            if case.status == "open":
                case.parole_review_open = True
        return effects

    def parole_decision_issued(self, ingested: IngestedEvent) -> Effects:
        """The decision (and a provisional release's deadline task) closes the review."""
        effects = self.with_task(ingested)
        for case in self.store.offenders_for(subject_keys(ingested.event))[0].cases:
            case.parole_review_open = False
        return effects

    # ---- victim contact units
    def licence_conditions_requested(self, ingested: IngestedEvent) -> Effects:
        """Kept, to be reconciled against the next decision that sets conditions, and forwarded to whoever decides
        with the condition text and the case's identifiers only (docs/domain.md section 8.2)."""
        event = of_type(ingested, LicenceConditionsRequested)
        case, victim = self._case_victim(event)
        asked = [
            RequestedCondition(f"{ingested.event_id}:{index}", c.kind, c.text, c.code)
            for index, c in enumerate(event.conditions)
        ]
        if not asked:
            return Effects()
        self.store.add_licence_requests(
            case,
            [
                LicenceRequest(
                    case=case,
                    person_ref=victim.person_ref,
                    request_id=c.request_id,
                    kind=c.kind,
                    text=c.text,
                    code=c.code,
                    requested_at=event.requested_at,
                )
                for c in asked
            ],
        )
        forwarded = self.outbound.forwarded_request(
            case,
            self.store.identifiers_of(case.offender),
            ingested.event_id,
            victim.person_ref,
            event.requested_at,
            asked,
            case.parole_review_open,
        )
        return Effects(outbound=forwarded)

    def discretionary_case_opened(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, DiscretionaryCaseOpened)
        case = self._case(event)
        previous = eligibility.Eligibility(
            eligibility.EligibilityStatus(case.eligibility_status),
            case.eligibility_rule,
            case.eligibility_basis,
            None,
        )
        opened = eligibility.open_discretionary(previous, event.unit_code, event.reason)
        case.eligibility_status = opened.status.value
        case.eligibility_rule = opened.rule
        case.eligibility_basis = opened.basis
        case.needs_unit_decision = False
        self._scheme_may_change(case)
        if self.units.unit_by_code(event.unit_code) is not None:
            case.owning_unit_code = event.unit_code
        if opened.eligible and not case.victims and case.sentence_date is not None:
            self._start_timer(
                TimerKind.REFERRAL_OVERDUE, case, None, end_of_day(referral_due(case.sentence_date))
            )
        return Effects(notifications=self._offer_first_contact(ingested, case))

    def case_allocated(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, CaseAllocated)
        case = self._case(event)
        allocation = next((a for a in case.allocations if a.unit_code == event.unit_code), None)
        if allocation is None:
            allocation = Allocation(case=case, unit_code=event.unit_code, vlo_id=event.vlo_id)
            self.store.add_allocation(allocation)
        allocation.vlo_id = event.vlo_id
        return Effects()

    def _victim(self, case: Case, person_ref: str) -> Victim | None:
        return next((v for v in case.victims if v.person_ref == person_ref), None)

    def _case_victim(self, event: AvroRecord) -> tuple[Case, Victim]:
        case = self._case(event)
        victim = self._victim(case, event.person_ref)
        if victim is None:
            # The unit knows of the victim before the referral reached the hub: wait for the referral.
            raise Unmatched([("person_ref", event.person_ref)])
        return case, victim

    def victim_preferences_updated(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, VictimPreferencesUpdated)
        _, victim = self._case_victim(event)
        victim.categories = sorted(set(event.categories))
        if victim.anonymised_at is not None:
            return Effects()  # erased or anonymised: only a new referral brings personal data back
        if event.channel:
            victim.preferred_channel = event.channel
        if event.language:
            victim.language = event.language
        if event.accessibility_needs:
            victim.accessibility_needs = event.accessibility_needs
        return Effects()

    def victim_opted_out(self, ingested: IngestedEvent) -> Effects:
        case, victim = self._case_victim(of_type(ingested, VictimOptedOut))
        victim.opted_out = True
        self._stop_timers(case, victim, TimerKind.FIRST_CONTACT, TimerKind.ANNUAL_UPDATE)
        self._scheme_may_change(case)
        return Effects()

    def victim_opted_in(self, ingested: IngestedEvent) -> Effects:
        case, victim = self._case_victim(of_type(ingested, VictimOptedIn))
        victim.opted_out = False
        victim.declined = False
        self._scheme_may_change(case)
        return Effects()

    def victim_address_changed(self, ingested: IngestedEvent) -> Effects:
        """The victim moves unit at once (no gap); the old unit is told it has handed the victim over."""
        event = of_type(ingested, VictimAddressChanged)
        victims = self.store.victims_by_person(event.person_ref)
        if not victims:
            raise Unmatched([("person_ref", event.person_ref)])
        new_unit = self.units.resolve_unit(event.postcode)
        effects = Effects()
        for victim in victims:
            # Erased or anonymised: the victim still moves unit, but the postcode is not kept.
            if victim.anonymised_at is None:
                victim.postcode = event.postcode
            old_unit = victim.unit_code
            if old_unit == new_unit.code:
                continue
            victim.unit_code = new_unit.code
            case = victim.case
            cause = Cause(
                Kind.TASK, f"handover:{ingested.event_id}", ingested.event_type, (ingested.event_id,)
            )
            handed_over = content.NotificationContent(
                f"The victim has moved and is handed over to {new_unit.name} ({new_unit.code}). Pass on the case "
                "history; that unit's VLO now receives the notifications.",
                {"new_unit": new_unit.code},
            )
            taken_over = content.NotificationContent(
                f"The victim has moved into your area and is handed over from unit {old_unit}. Allocate a VLO and "
                "take over contact.",
                {"previous_unit": old_unit},
            )
            effects.notifications.append(
                self.factory.build(cause, case, victim, TASK, handed_over, None, unit_code=old_unit)
            )
            effects.notifications.append(
                self.factory.build(
                    Cause(
                        Kind.TASK, f"takeover:{ingested.event_id}", ingested.event_type, (ingested.event_id,)
                    ),
                    case,
                    victim,
                    TASK,
                    taken_over,
                    None,
                    unit_code=new_unit.code,
                )
            )
        return effects

    def victim_contacted(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, VictimContacted)
        case, victim = self._case_victim(event)
        victim.last_contacted_at = event.contacted_at
        self._stop_timers(case, victim, TimerKind.FIRST_CONTACT, TimerKind.ANNUAL_UPDATE)
        due = annual_update_due(event.contacted_at.date())
        self._start_timer(TimerKind.ANNUAL_UPDATE, case, victim, end_of_day(due), cause=ingested.event_id)
        return Effects()

    def notification_acknowledged(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, NotificationAcknowledged)
        notification_id = str(event.notification_id)
        notification = self.store.notification(notification_id)
        if notification is None:
            raise UnknownReference("notification_id: no notification with this id was sent")
        notification.acknowledged_at = self.now
        self.store.stop_timers_caused_by(notification_id, self.now)
        return Effects()

    # ---- timers
    def _start_timer(
        self, kind: TimerKind, case: Case, victim: Victim | None, due_at: datetime, cause: str = ""
    ) -> None:
        self.store.start_timer(
            Timer(kind=kind.value, case=case, victim=victim, cause=cause, due_at=due_at, started_at=self.now)
        )

    def _stop_timers(self, case: Case, victim: Victim | None, *kinds: TimerKind) -> None:
        self.store.stop_timers(case, victim, [k.value for k in kinds], self.now)
