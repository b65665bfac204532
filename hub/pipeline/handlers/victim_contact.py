"""The victim contact units' events (schemas/vcs/): what the VLOs record of a case and of its victims."""

from __future__ import annotations

from hub.errors import UnknownReference, Unmatched
from hub.pipeline.handlers.common import CommonHandlers, Effects, of_type
from hub.pipeline.ingest import IngestedEvent
from hub.pipeline.notify import Cause
from hub.pipeline.outbound import RequestedCondition
from hub.store.records import Allocation, LicenceRequest
from routing import content, eligibility
from routing.decisions import TASK, Kind
from routing.timers import TimerKind, annual_update_due, end_of_day, referral_due
from schemas.events import (
    CaseAllocated,
    DiscretionaryCaseOpened,
    LicenceConditionsRequested,
    NotificationAcknowledged,
    VictimAddressChanged,
    VictimContacted,
    VictimOptedIn,
    VictimOptedOut,
    VictimPreferencesUpdated,
)


class VictimContactHandlers(CommonHandlers):
    """DiscretionaryCaseOpened, CaseAllocated, VictimPreferencesUpdated, VictimOptedOut, VictimOptedIn,
    VictimAddressChanged, VictimContacted, NotificationAcknowledged, LicenceConditionsRequested."""

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
