"""Witness care's and youth justice's events (schemas/witness-care/): a victim referred to the scheme, or
declining it.
"""

from __future__ import annotations

import logging

from hub import metrics
from hub.errors import Unmatched
from hub.pipeline.handlers.common import CommonHandlers, Effects, of_type
from hub.pipeline.ingest import IngestedEvent
from hub.store.records import Victim
from routing.timers import TimerKind
from schemas.events import VictimDeclinedScheme, VictimReferred

log = logging.getLogger(__name__)


class WitnessCareHandlers(CommonHandlers):
    """VictimReferred, VictimDeclinedScheme."""

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
