"""Simulated court events after sentence: appeals lodged against a minority of sentences, and determined."""

from __future__ import annotations

import random
from typing import Any

from hub.tools.traffic.cases import SimulatedCase, weighted
from hub.tools.traffic.making import EventMaker, SimulatedEvent


class CourtEvents(EventMaker):
    """The court's follow-ups: appeals."""

    def _appeal_lodged(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._event(
            "court",
            "AppealLodged",
            case_ref=case.ids.case_ref,
            appeal_type=weighted(rng, (("sentence", 70), ("conviction", 30))),
            lodged_date=self._day(-rng.randint(0, 5)),
            appeal_court="Court of Appeal (Criminal Division)",
            hearing_date=self._day(rng.randint(60, 200)),
        )

    def _appeal_determined(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        outcome = weighted(rng, (("dismissed", 70), ("sentence_varied", 20), ("allowed", 10)))
        fields: dict[str, Any] = {}
        if outcome == "sentence_varied":
            if case.term_months is None:
                fields = {"new_disposal": "life", "new_custodial_term_months": None}
            else:
                # Mostly a shorter term still above the statutory threshold.
                term = max(case.term_months - rng.choice((3, 6, 12)), 12)
                disposal = "detention" if case.kind == "youth" else "custody"
                fields = {"new_disposal": disposal, "new_custodial_term_months": term}
        return self._event(
            "court",
            "AppealDetermined",
            case_ref=case.ids.case_ref,
            appeal_type="sentence"
            if outcome == "sentence_varied"
            else weighted(rng, (("sentence", 70), ("conviction", 30))),
            outcome=outcome,
            determined_date=self._day(-rng.randint(0, 3)),
            appeal_court="Court of Appeal (Criminal Division)",
            **fields,
        )
