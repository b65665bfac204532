"""Enrich and route: apply one event to the case store, then decide who is told what.

One handler per event type. A handler returns the identifiers it newly linked (they may unpark waiting
events) and the notifications it produced; it raises `Unmatched` when the event concerns no case yet.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from connectors.avro import AvroCodec
from hub.ingest import IngestedEvent
from hub.settings import Settings
from hub.store.models import Case, CaseAllocation, Notification, Victim
from hub.store.repository import CaseStore, IdentifierKey
from routing import content, eligibility
from routing.catalogue import rule_for
from routing.decisions import Kind, VictimChoices, decide, notification_id
from routing.units import UnitDirectory
from schemas import notification_schema
from schemas.models import AvroRecord

log = logging.getLogger(__name__)

IDENTIFIER_KINDS = (
    "noms_number",
    "booking_id",
    "crn",
    "pnc",
    "cro",
    "case_ref",
    "patient_ref",
    "pb_case_ref",
    "ho_ref",
)


class Unmatched(Exception):
    """The event concerns no case the hub knows yet: park it under these identifiers."""

    def __init__(self, keys: list[IdentifierKey]) -> None:
        self.keys = keys
        super().__init__("no case matches the event's identifiers")


@dataclass
class Effects:
    new_keys: list[IdentifierKey] = field(default_factory=list)
    notifications: list[Notification] = field(default_factory=list)


def subject_keys(event: AvroRecord) -> list[IdentifierKey]:
    subject = event.envelope.subject
    return [(kind, str(value)) for kind in IDENTIFIER_KINDS if (value := getattr(subject, kind)) is not None]


class EventHandlers:
    def __init__(
        self, store: CaseStore, units: UnitDirectory, settings: Settings, codec: AvroCodec, now: datetime
    ) -> None:
        self.store = store
        self.units = units
        self.settings = settings
        self.codec = codec
        self.now = now
        self._handlers: dict[str, Callable[[IngestedEvent], Effects]] = {
            "SentenceImposed": self.sentence_imposed,
            "VictimReferred": self.victim_referred,
            "CaseAllocated": self.case_allocated,
            "PrisonerReleased": self.prisoner_released,
        }

    def apply(self, ingested: IngestedEvent) -> Effects:
        handler = self._handlers.get(ingested.event_type)
        if handler is None:
            raise NotImplementedError(f"{ingested.event_type} is not handled yet")
        return handler(ingested)

    # court
    def sentence_imposed(self, ingested: IngestedEvent) -> Effects:
        event = ingested.event
        keys = subject_keys(event) + [
            (kind, value) for kind in ("pnc", "cro") if (value := getattr(event.offender, kind)) is not None
        ]
        result = eligibility.assess(
            eligibility.Sentence(
                disposal=eligibility.Disposal(event.disposal),
                custodial_term_months=event.custodial_term_months,
                offences=tuple(
                    eligibility.Offence(o.code, eligibility.Classification(o.classification), o.description)
                    for o in event.offences
                ),
                youth=event.youth,
            )
        )
        case = self.store.case_by_ref(event.envelope.subject.case_ref)
        if case is None:
            offender = self.store.find_offender(keys) or self.store.new_offender()
            case = Case(
                case_ref=event.envelope.subject.case_ref,
                offender=offender,
                opened_at=self.now,
                owning_unit_code=self.units.unit_for_court(event.court_code).code,
            )
            self.store.session.add(case)
        case.court_code = event.court_code
        case.sentence_date = event.sentence_date
        case.eligibility_status = result.status.value
        case.eligibility_rule = result.rule
        case.eligibility_basis = result.basis
        log.info("case %s opened: %s (%s)", case.case_ref, result.status.value, result.rule)
        return Effects(new_keys=self.store.link(case.offender, keys))

    # witness care and youth justice
    def victim_referred(self, ingested: IngestedEvent) -> Effects:
        event = ingested.event
        case = self._case(event)
        person = event.victim
        unit = self.units.resolve_unit(person.address.postcode)
        if unit == self.units.national_triage:
            log.warning(
                "case %s: a referred victim's postcode maps to no unit; sent to national triage",
                case.case_ref,
            )
        victim = next((v for v in case.victims if v.person_ref == person.person_ref), None)
        if victim is None:
            victim = Victim(case=case, person_ref=person.person_ref)
            self.store.session.add(victim)
        victim.name = person.name
        victim.relationship_to_offence = person.relationship
        victim.postcode = person.address.postcode
        victim.unit_code = unit.code
        victim.language = person.language
        victim.preferred_channel = person.preferred_channel
        return Effects()

    # victim contact units
    def case_allocated(self, ingested: IngestedEvent) -> Effects:
        event = ingested.event
        case = self._case(event)
        allocation = next((a for a in case.allocations if a.unit_code == event.unit_code), None)
        if allocation is None:
            allocation = CaseAllocation(case=case, unit_code=event.unit_code, vlo_id=event.vlo_id)
            self.store.session.add(allocation)
        allocation.vlo_id = event.vlo_id
        return Effects()

    # prison
    def prisoner_released(self, ingested: IngestedEvent) -> Effects:
        event = ingested.event
        said = content.prisoner_released(
            event.release_type,
            event.release_date,
            [content.Condition(c.text, c.victim_related) for c in event.licence_conditions],
        )
        return self._notify_offender_cases(ingested, said)

    # shared steps
    def _case(self, event: AvroRecord) -> Case:
        case_ref = event.envelope.subject.case_ref
        case = self.store.case_by_ref(case_ref)
        if case is None:
            raise Unmatched([("case_ref", case_ref)])
        return case

    def _notify_offender_cases(self, ingested: IngestedEvent, said: content.NotificationContent) -> Effects:
        keys = subject_keys(ingested.event)
        offender = self.store.find_offender(keys)
        if offender is None:
            raise Unmatched(keys)
        effects = Effects(new_keys=self.store.link(offender, keys))
        for case in offender.cases:
            if case.eligible:
                effects.notifications.extend(self._notify_case(ingested, case, said))
        return effects

    def _notify_case(
        self, ingested: IngestedEvent, case: Case, said: content.NotificationContent
    ) -> list[Notification]:
        """One notification per victim of the case; to the owning unit when nobody is referred yet."""
        rule = rule_for(ingested.event_type)
        members: list[Victim | None] = list(case.victims) or [None]
        made = []
        for victim in members:
            choices = VictimChoices(
                categories=victim.categories if victim else None,
                opted_out=victim.opted_out if victim else False,
            )
            decision = decide(rule, choices)
            unit_code = victim.unit_code if victim else case.owning_unit_code
            person_ref = victim.person_ref if victim else None
            record: dict[str, Any] = {
                "notification_id": notification_id(Kind.EVENT, ingested.event_id, case.case_ref, person_ref),
                "kind": Kind.EVENT.value,
                "case_ref": case.case_ref,
                "unit_code": unit_code,
                "vlo_id": case.vlo_for(unit_code),
                "person_ref": person_ref,
                "victim_name": victim.name if victim else None,
                "event_type": ingested.event_type,
                "category": rule.category.value if rule.category else None,
                "priority": decision.priority.value,
                "action": decision.action.value,
                "summary": said.summary,
                "facts": dict(said.facts),
                "victim_conditions": list(said.victim_conditions),
                "omitted_requests": [{"text": o.text, "reason": o.reason} for o in said.omitted_requests],
                "due_by": said.due_by,
                "preferred_channel": victim.preferred_channel if victim else None,
                "language": victim.language if victim else None,
                "source_event_ids": [ingested.event_id],
                "created_at": self.now,
            }
            made.append(
                Notification(
                    notification_id=record["notification_id"],
                    kind=record["kind"],
                    case_id=case.id,
                    unit_code=unit_code,
                    event_type=ingested.event_type,
                    action=record["action"],
                    priority=record["priority"],
                    topic=self.settings.unit_topic(unit_code),
                    key=case.case_ref.encode(),
                    payload=self.codec.encode(notification_schema(), record),
                    created_at=self.now,
                )
            )
        return made
