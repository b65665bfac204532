"""The three ways a simulated case comes in: the court's sentence, the victim's referral (witness care, or the
youth offending team for a youth case) and the unit's allocation; a case below the statutory test is opened at
the unit's discretion between sentence and referral."""

from __future__ import annotations

import random
from datetime import date

from hub.tools.traffic.cases import SimulatedCase, sentence_disposal, weighted
from hub.tools.traffic.making import EventMaker, SimulatedEvent

_OFFENCES = (
    (("OF61016", "Wounding with intent to do grievous bodily harm", "violent"), 30),
    (("OF61017", "Inflicting grievous bodily harm", "violent"), 20),
    (("TH68001", "Robbery", "violent"), 15),
    (("SX03001", "Rape", "sexual"), 12),
    (("SX03007", "Sexual assault", "sexual"), 10),
    (("OF61001", "Manslaughter", "violent"), 4),
    (("RT88001", "Causing death by dangerous driving", "violent"), 4),
    (("TR06001", "Preparation of terrorist acts", "terrorism"), 1),
)
_DISCRETIONARY_OFFENCES = (
    ("PH97003", "Stalking involving fear of violence", "other", "stalking"),
    ("PH97001", "Harassment", "other", "harassment"),
    ("SC15001", "Controlling or coercive behaviour", "other", "domestic abuse"),
)


class OpeningEvents(EventMaker):
    """The three ways in (the module's docstring)."""

    def opening_events(self, number: int) -> list[SimulatedEvent]:
        """What makes case `number` notifiable: sentence (court), victim referral (witness-care), allocation (vcs).

        A youth case's victim is referred by youth-justice instead; a case below the statutory test is opened
        at the unit's discretion (vcs) between sentence and referral."""
        case = self._case(number)
        rng = random.Random(f"opening:{self.seed}:{number}")
        events = [self._sentence(case, rng)]
        if case.kind == "discretionary":
            events.append(self._discretionary(case, rng))
        events.append(self._referral(case, rng, member=1))
        events.append(
            self._event(
                "vcs",
                "CaseAllocated",
                case_ref=case.ids.case_ref,
                unit_code=case.victim_unit,
                vlo_id=case.vlo_id,
            )
        )
        return events

    # ---- opening events
    def _sentence(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        ids = case.ids
        if case.kind == "discretionary":
            code, description, classification, _ = _DISCRETIONARY_OFFENCES[
                case.number % len(_DISCRETIONARY_OFFENCES)
            ]
            offences = [{"code": code, "description": description, "classification": classification}]
            disposal = "custody"
        else:
            picked = [weighted(rng, _OFFENCES)]
            if rng.random() < 0.3:
                picked.append(("CJ88116", "Possessing an offensive weapon in a public place", "other"))
            offences = [{"code": c, "description": d, "classification": k} for c, d, k in picked]
            disposal = sentence_disposal(case, rng)
        born = self.today.year - (rng.randint(15, 17) if case.kind == "youth" else rng.randint(19, 65))
        return self._event(
            "court",
            "SentenceImposed",
            case_ref=ids.case_ref,
            noms_number=ids.noms_number,
            pnc=ids.pnc,
            court_code=case.court_code,
            sentence_date=case.sentence_date.isoformat(),
            offender={
                "name": f"Simulated Offender {case.number}",
                "aliases": [],
                "date_of_birth": date(born, rng.randint(1, 12), rng.randint(1, 28)).isoformat(),
                "pnc": ids.pnc,
            },
            offences=offences,
            disposal=disposal,
            custodial_term_months=case.term_months,
            youth=case.kind == "youth",
        )

    def _discretionary(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._event(
            "vcs",
            "DiscretionaryCaseOpened",
            case_ref=case.ids.case_ref,
            unit_code=case.court_unit,
            reason=_DISCRETIONARY_OFFENCES[case.number % len(_DISCRETIONARY_OFFENCES)][3],
            opened_date=self.today.isoformat(),
            approved_by="Senior manager (simulated)",
        )
