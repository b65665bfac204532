"""What every simulated event is made with: the stream's state, its cases, the envelope, each agency's
identifiers, and licence conditions.

Names, addresses, phone numbers and e-mail addresses are obviously fake ("Simulated Victim 12-1",
"12 Simulation Street, Exampleton", postcodes ending "9ZZ", 07700 900xxx drama numbers, example.org), and the
clinical fields of hospital events say they are simulated. Identifiers are in the real formats and, in the
case numbering of `case_identifiers`, never collide with each other (so simulated cases are never merged).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from hub.tools.traffic.cases import (
    DISCRETIONARY_CASES,
    YOUTH_CASES,
    SimulatedCase,
    fake_postcode,
    simulated_units,
    weighted,
)
from hub.tools.traffic.identifiers import CASE_NUMBERS, case_identifiers
from routing.catalogue import rule_for

SYSTEM = "hub simulate"


@dataclass(frozen=True)
class SimulatedEvent:
    source: str  # agency source; its topic is Settings.inbound_topic(source)
    fields: dict[str, Any]  # JSON form accepted by connectors.publisher.event_from_json(fields, source, now)
    urgent: bool  # routing.catalogue says this event type is urgent


VICTIM_CONDITIONS = (
    (
        "NCV",
        "Not to approach or communicate with the victim without the prior approval of your supervising officer",
    ),
    ("EXCL", "Not to enter the simulated exclusion zone around Exampleton town centre, as shown on the map"),
    (
        "EXCL",
        "Not to enter Simulation Street, Exampleton, without the prior approval of your supervising officer",
    ),
)
_ORDINARY_CONDITIONS = (
    ("RSO", "Report to your supervising officer as directed"),
    ("RES", "Reside at an address approved by your supervising officer"),
    (None, "Return to the establishment by 19:00 on the day of release"),
)
_OMITTED = (
    (
        "Not to enter the whole of Exampleton",
        "Judged disproportionate; the exclusion zone covers the victim's home",
    ),
    ("Electronic monitoring of the exclusion zone", "Not available for this licence type"),
)

_LANGUAGES = (("en", 88), ("pl", 3), ("ur", 3), ("pa", 2), ("ro", 2), ("so", 2))


class EventMaker:
    """The state of a stream of simulated events and what every agency's events are made with; the agencies'
    events themselves are in the mixins `Traffic` is made of."""

    def __init__(
        self, seed: int = 1, today: date | None = None, first_case: int = 0, invalid_share: float = 0.0
    ) -> None:
        if not 0.0 <= invalid_share < 1.0:
            raise ValueError("invalid_share must be at least 0 and less than 1")
        self.seed = seed
        self.today = today or datetime.now(UTC).date()
        self.first_case = first_case
        self.invalid_share = invalid_share
        self._rng = random.Random(seed)
        self._opened = 0  # cases the stream has opened: first_case, first_case + 1, ...
        self._releases: dict[int, str] = {}  # case number -> event id of its last release (for cancellations)
        self._cases: dict[int, SimulatedCase] = {}

    # ---- cases
    def _known_case(self) -> int:
        return (self.first_case + self._rng.randrange(self._opened)) % CASE_NUMBERS

    def _case(self, number: int) -> SimulatedCase:
        case = self._cases.get(number)
        if case is None:
            if len(self._cases) > 100_000:  # a long stream: forget, they are cheap to derive again
                self._cases.clear()
            case = self._cases[number] = self._derive_case(number)
        return case

    def _derive_case(self, number: int) -> SimulatedCase:
        rng = random.Random(f"case:{self.seed}:{number}")
        units = simulated_units()
        # Bigger units (more postcode areas, more people) sentence more offenders.
        court_unit = weighted(rng, tuple((unit, len(unit.areas)) for unit in units))
        # Most victims live near the court; some have moved or were visiting.
        victim_unit = court_unit if rng.random() < 0.85 else rng.choice(units)
        roll = rng.random()
        kind = (
            "youth"
            if roll < YOUTH_CASES
            else "discretionary"
            if roll < YOUTH_CASES + DISCRETIONARY_CASES
            else "statutory"
        )
        if kind == "discretionary":
            term: int | None = rng.randint(6, 11)
        elif kind == "youth":
            term = rng.choice((12, 18, 24, 30, 36, 48))
        else:
            term = None if rng.random() < 0.06 else rng.choice((12, 18, 24, 30, 36, 48, 60, 72, 96, 120, 180))
        return SimulatedCase(
            number=number,
            ids=case_identifiers(number),
            kind=kind,
            court_code=rng.choice(court_unit.courts),
            court_unit=court_unit.code,
            victim_unit=victim_unit.code,
            victim_postcode=fake_postcode(rng, rng.choice(victim_unit.areas)),
            sentence_date=self.today - timedelta(days=rng.randint(0, 14)),
            term_months=term,
            vlo_id=f"vlo-{victim_unit.code.lower()}-{rng.randint(1, 40)}",
            welsh=victim_unit.code == "WAL",
        )

    def _event(self, source: str, event_type: str, **fields: Any) -> SimulatedEvent:
        # The envelope's publishing system says the event is simulated, wherever it ends up.
        return SimulatedEvent(
            source, {"event_type": event_type, "system": SYSTEM, **fields}, rule_for(event_type).urgent
        )

    def _day(self, offset: int) -> str:
        return (self.today + timedelta(days=offset)).isoformat()

    def _recent(self, rng: random.Random) -> str:
        """An instant a few minutes to hours before today began (never in the future, whatever the hour)."""
        at = datetime.combine(self.today, time(0, 0), UTC) - timedelta(minutes=rng.randint(5, 600))
        return at.isoformat().replace("+00:00", "Z")

    def _prison(self, case: SimulatedCase, event_type: str, **fields: Any) -> SimulatedEvent:
        return self._event(
            "prison", event_type, noms_number=case.ids.noms_number, booking_id=case.booking_id, **fields
        )

    def _probation(self, case: SimulatedCase, event_type: str, **fields: Any) -> SimulatedEvent:
        # Probation records carry the prison number too, so the hub can link the CRN on first sight.
        return self._event(
            "probation", event_type, crn=case.ids.crn, noms_number=case.ids.noms_number, **fields
        )

    def _parole(self, case: SimulatedCase, event_type: str, **fields: Any) -> SimulatedEvent:
        return self._event(
            "parole-board",
            event_type,
            pb_case_ref=case.pb_case_ref,
            noms_number=case.ids.noms_number,
            **fields,
        )

    def _hospital(self, case: SimulatedCase, event_type: str, **fields: Any) -> SimulatedEvent:
        return self._event(
            "hospital",
            event_type,
            patient_ref=case.patient_ref,
            noms_number=case.ids.noms_number,
            **fields,
            clinical_summary="Simulated clinical summary: not a real patient",
            diagnosis="Simulated diagnosis",
            treatment="Simulated treatment plan",
        )

    def _vcs(self, case: SimulatedCase, event_type: str, **fields: Any) -> SimulatedEvent:
        return self._event(
            "vcs", event_type, case_ref=case.ids.case_ref, person_ref=case.person_ref(1), **fields
        )

    @staticmethod
    def _conditions(rng: random.Random, victim_related: int = 1) -> list[dict[str, Any]]:
        chosen = [(*c, True) for c in rng.sample(VICTIM_CONDITIONS, victim_related)]
        chosen += [(*rng.choice(_ORDINARY_CONDITIONS), False)]
        return [
            {"code": code, "text": text, "victim_related": related, "requested_by_victim": related}
            for code, text, related in chosen
        ]

    @staticmethod
    def _omitted(rng: random.Random, chance: float = 0.3) -> list[dict[str, str]]:
        return (
            [{"text": text, "reason": reason} for text, reason in _OMITTED[:1]]
            if rng.random() < chance
            else []
        )

    def _referral(self, case: SimulatedCase, rng: random.Random, member: int) -> SimulatedEvent:
        first = member == 1
        relationship = (
            "victim"
            if first
            else weighted(rng, (("bereaved_relative", 5), ("parent_or_guardian", 3), ("nominee", 2)))
        )
        postcode = (
            case.victim_postcode
            if first or rng.random() < 0.7
            else fake_postcode(rng, rng.choice(rng.choice(simulated_units()).areas))
        )
        referred = min(self.today, case.sentence_date + timedelta(days=rng.randint(0, 5)))
        return self._event(
            case.referring_source,
            "VictimReferred",
            case_ref=case.ids.case_ref,
            victim={
                "person_ref": case.person_ref(member),
                "name": f"Simulated Victim {case.number}-{member}",
                "relationship": relationship,
                "date_of_birth": date(
                    self.today.year - rng.randint(12, 80), rng.randint(1, 12), rng.randint(1, 28)
                ).isoformat(),
                "address": {
                    "lines": [f"{rng.randint(1, 199)} Simulation Street"],
                    "town": "Exampleton",
                    "postcode": postcode,
                },
                "phone": f"07700 900{rng.randint(0, 999):03d}",
                "email": f"victim{case.number}-{member}@example.org",
                "language": "cy" if case.welsh and rng.random() < 0.2 else weighted(rng, _LANGUAGES),
                "accessibility_needs": "Large-print letters (simulated)" if rng.random() < 0.05 else None,
                "preferred_channel": weighted(
                    rng, (("letter", 4), ("phone", 4), ("email", 2), ("in_person", 1))
                ),
            },
            referral_date=referred.isoformat(),
        )
