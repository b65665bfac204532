"""What the agencies know about one simulated case (`SimulatedCase`), the units a case may belong to, and the
helpers for drawing its details: weighted choices, fake postcodes in real areas, the sentence's disposal."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date
from functools import cache
from typing import Any

from hub.tools.traffic.identifiers import CaseIdentifiers
from routing.units import DEFAULT_UNITS_FILE

YOUTH_CASES = 0.05  # share of cases sentenced as youths (referred by the youth offending team)
DISCRETIONARY_CASES = 0.03  # share of cases below the statutory test that a unit opens at its discretion


@dataclass(frozen=True)
class SimulatedUnit:
    code: str
    areas: tuple[str, ...]
    courts: tuple[str, ...]


@cache
def simulated_units() -> tuple[SimulatedUnit, ...]:
    data = json.loads(DEFAULT_UNITS_FILE.read_text(encoding="utf-8"))
    return tuple(
        SimulatedUnit(
            unit["code"], tuple(unit["postcode_areas"]), tuple(court["code"] for court in unit["courts"])
        )
        for region in data["regions"]
        for unit in region["units"]
    )


@dataclass(frozen=True)
class SimulatedCase:
    """What the agencies know about one simulated case; derived from (seed, number) alone."""

    number: int
    ids: CaseIdentifiers
    kind: str  # statutory, youth, discretionary
    court_code: str
    court_unit: str
    victim_unit: str
    victim_postcode: str
    sentence_date: date
    term_months: int | None  # None for life
    vlo_id: str
    welsh: bool

    @property
    def booking_id(self) -> int:
        return 50_000_000 + self.number

    @property
    def pb_case_ref(self) -> str:
        return f"PB-SIM-{self.number:07d}"

    @property
    def patient_ref(self) -> str:
        return f"MHCS-SIM-{self.number:07d}"

    @property
    def ho_ref(self) -> str:
        return f"H{self.number:07d}"

    def person_ref(self, member: int = 1) -> str:
        return f"{'YJ' if self.kind == 'youth' else 'WC'}-SIM{self.number:07d}-{member}"

    @property
    def referring_source(self) -> str:
        return "youth-justice" if self.kind == "youth" else "witness-care"


def weighted(rng: random.Random, choices: tuple[tuple[Any, float], ...]) -> Any:
    total = sum(weight for _, weight in choices)
    point = rng.random() * total
    for value, weight in choices:
        point -= weight
        if point < 0:
            return value
    return choices[-1][0]


def sentence_disposal(case: SimulatedCase, rng: random.Random) -> str:
    if case.kind == "youth":
        # A detention and training order runs to 24 months at most; longer youth terms are detention.
        return rng.choice(("detention", "dto")) if (case.term_months or 0) <= 24 else "detention"
    return "life" if case.term_months is None else "custody"


def fake_postcode(rng: random.Random, area: str) -> str:
    """A postcode in a real area (so it routes) with a 9ZZ inward code that no real address has."""
    return f"{area}{rng.randint(1, 9)} 9ZZ"
