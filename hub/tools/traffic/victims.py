"""Simulated events about victims after their case is open: another family member referred or a victim declining
(witness care or youth justice), and the victim contact units' contacts, preferences and allocations."""

from __future__ import annotations

import random

from hub.tools.traffic.cases import SimulatedCase, fake_postcode, simulated_units, weighted
from hub.tools.traffic.making import VICTIM_CONDITIONS, EventMaker, SimulatedEvent
from routing.catalogue import VICTIM_CATEGORIES


class VictimEvents(EventMaker):
    """Follow-ups about victims: from witness care or youth justice, and from the victim contact units."""

    # witness care or youth justice
    def _victim_referred(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._referral(case, rng, member=rng.randint(2, 4))  # another member of a bereaved family

    def _victim_declined_scheme(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._event(
            case.referring_source,
            "VictimDeclinedScheme",
            case_ref=case.ids.case_ref,
            person_ref=case.person_ref(1),
            declined_date=self._day(-rng.randint(0, 3)),
            reason="Does not wish to hear about the offender (simulated)",
        )

    # victim contact units
    def _victim_preferences_updated(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        chosen = sorted(c.value for c in VICTIM_CATEGORIES if rng.random() < 0.6) or ["key_dates"]
        return self._vcs(
            case,
            "VictimPreferencesUpdated",
            categories=chosen,
            channel=weighted(rng, (("letter", 4), ("phone", 4), ("email", 2), ("in_person", 1))),
            language="cy" if case.welsh and rng.random() < 0.2 else "en",
            accessibility_needs=None,
        )

    def _victim_contacted(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._vcs(
            case,
            "VictimContacted",
            contacted_at=self._recent(rng),
            vlo_id=case.vlo_id,
            channel=weighted(rng, (("phone", 5), ("letter", 3), ("email", 2), ("in_person", 1))),
        )

    def _victim_opted_out(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._vcs(
            case,
            "VictimOptedOut",
            opted_out_date=self._day(-rng.randint(0, 3)),
            reason="Wants a break from updates (simulated)",
        )

    def _licence_conditions_requested(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        asked = rng.sample(VICTIM_CONDITIONS, rng.randint(1, 2))
        return self._vcs(
            case,
            "LicenceConditionsRequested",
            requested_at=self._recent(rng),
            conditions=[
                {"kind": "no_contact" if code == "NCV" else "exclusion_zone", "text": text, "code": code}
                for code, text in asked
            ],
        )

    def _victim_opted_in(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._vcs(case, "VictimOptedIn", opted_in_date=self._day(-rng.randint(0, 3)))

    def _victim_address_changed(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._vcs(
            case,
            "VictimAddressChanged",
            postcode=fake_postcode(rng, rng.choice(rng.choice(simulated_units()).areas)),
            address_lines=[f"{rng.randint(1, 199)} Simulation Avenue"],
            town="Exampleton",
            effective_date=self._day(rng.randint(0, 14)),
        )

    def _case_allocated(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        # The case moves to another VLO of the same unit (leave, workload).
        return self._event(
            "vcs",
            "CaseAllocated",
            case_ref=case.ids.case_ref,
            unit_code=case.victim_unit,
            vlo_id=f"vlo-{case.victim_unit.lower()}-{rng.randint(1, 40)}",
        )
