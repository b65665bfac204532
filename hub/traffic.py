"""Simulated agency traffic: every source, in realistic proportions, about cases that hang together.

`hub simulate`, `hub up --demo`, the benchmark and the browser tests all draw from `Traffic`. A case is
opened the way a real one is (a sentence from the court, the victim's referral from witness care or the youth
offending team, the unit's allocation) and then collects follow-up events from every agency, each naming the
identifiers that agency would know, so the hub links and routes them instead of parking them.

Shares of the stream by source, measured over 100,000 events of `iter(Traffic())` (about one new case per ten
follow-ups), and why:

| Source | Share | Why |
|---|---|---|
| prison | 44% | The busiest system: every reception, transfer (mostly closed to closed, not notifiable), recategorisation, release-date recalculation, ROTL board and release of every prisoner in the scheme |
| vcs | 16% | Units allocate every case, then record contacts and preference changes for each victim |
| probation | 13% | Identity links, licences set and varied, MAPPA reviews, recalls; fewer than prison because most of a sentence is served in custody |
| court | 10% | One sentence per case, then appeals against a minority of them |
| witness-care | 8% | One referral per case (bereaved families add more members), the odd victim declining the scheme |
| parole-board | 5% | Only indeterminate, extended and recalled prisoners come before the Board: reviews, listings, decisions |
| hospital | 2% | Rare: prisoners transferred to secure hospitals and restricted patients (tribunals, leave, recalls) |
| home-office | 1% | Rare: deportation decisions and removals of foreign national offenders |
| youth-justice | 0.5% | Youth cases are about one in twenty; the youth offending team refers their victims instead of witness care |

Urgent events (escapes, failures to return from ROTL, recalls, serious further offences, absconds from
approved premises and hospital, patient recalls) are about 2% of the stream, as routing/catalogue.py marks
them. `NotificationAcknowledged` is never generated: it must name a notification the hub actually sent, which
a generator cannot know; acknowledging is the VLO's job, not an agency's.

Names, addresses, phone numbers and e-mail addresses are obviously fake ("Simulated Victim 12-1",
"12 Simulation Street, Exampleton", postcodes ending "9ZZ", 07700 900xxx drama numbers, example.org), and the
clinical fields of hospital events say they are simulated. Identifiers are in the real formats and, in the
case numbering of `case_identifiers`, never collide with each other (so simulated cases are never merged).
"""

from __future__ import annotations

import bisect
import json
import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from itertools import accumulate
from typing import Any

from routing.catalogue import VICTIM_CATEGORIES, rule_for
from routing.units import DEFAULT_UNITS_FILE
from schemas import event_schemas

CASE_NUMBERS = 10_000_000  # case_identifiers is unique below this; the stream wraps around after it
NEW_CASE_CHANCE = 1 / 11  # one new case for every ten follow-ups about cases already open
YOUTH_CASES = 0.05  # share of cases sentenced as youths (referred by the youth offending team)
DISCRETIONARY_CASES = 0.03  # share of cases below the statutory test that a unit opens at its discretion
SYSTEM = "hub simulate"
_LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
_PNC_CHECK = "ZABCDEFGHJKLMNPQRTUVWXY"


@dataclass(frozen=True)
class SimulatedEvent:
    source: str  # agency source; its topic is Settings.inbound_topic(source)
    fields: dict[str, Any]  # JSON form accepted by connectors.publisher.event_from_json(fields, source, now)
    urgent: bool  # routing.catalogue says this event type is urgent


@dataclass(frozen=True)
class CaseIdentifiers:
    case_ref: str
    noms_number: str
    crn: str
    pnc: str


def case_identifiers(number: int) -> CaseIdentifiers:
    """The identifiers of simulated case `number`: real formats, unique for 0 <= number < 10,000,000.

    Each identifier encodes the whole number (the case reference's serial and year, the NOMS number's digits
    and letters, ...), so two numbers never share one. The letters mark them as simulated: "SM" in the case
    reference, S or T leading the NOMS number."""
    if not 0 <= number < CASE_NUMBERS:
        raise ValueError(f"case number must be between 0 and {CASE_NUMBERS - 1}")
    serial, year = number % 100_000, number // 100_000
    force = 1 + number % 43  # one of the 43 police forces of England and Wales: decoration only
    rest, digits = divmod(number, 10_000)  # rest < 1,000
    noms = f"{'ST'[rest // 676]}{digits:04d}{_LETTERS[rest % 676 // 26]}{_LETTERS[rest % 26]}"
    pnc_year = 1990 + number % 10
    pnc_check = _PNC_CHECK[int(f"{pnc_year % 100:02d}{number:07d}") % 23]
    return CaseIdentifiers(
        case_ref=f"{force:02d}SM{serial:05d}{year:02d}",
        noms_number=noms,
        crn=f"{'STUVWXYZQR'[number // 1_000_000]}{number % 1_000_000:06d}",
        pnc=f"{pnc_year}/{number:07d}{pnc_check}",
    )


def _removed_noms_number(number: int) -> str:
    """A duplicate prison record's number for case `number` (X or Y first: never a case's own number)."""
    rest, digits = divmod(number, 10_000)
    return f"{'XY'[rest // 676]}{digits:04d}{_LETTERS[rest % 676 // 26]}{_LETTERS[rest % 26]}"


@dataclass(frozen=True)
class _Unit:
    code: str
    areas: tuple[str, ...]
    courts: tuple[str, ...]


@cache
def _units() -> tuple[_Unit, ...]:
    data = json.loads(DEFAULT_UNITS_FILE.read_text(encoding="utf-8"))
    return tuple(
        _Unit(unit["code"], tuple(unit["postcode_areas"]), tuple(court["code"] for court in unit["courts"]))
        for region in data["regions"]
        for unit in region["units"]
    )


@dataclass(frozen=True)
class _Case:
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


def _weighted(rng: random.Random, choices: tuple[tuple[Any, float], ...]) -> Any:
    total = sum(weight for _, weight in choices)
    point = rng.random() * total
    for value, weight in choices:
        point -= weight
        if point < 0:
            return value
    return choices[-1][0]


# Follow-up events per thousand follow-ups. The reasons are in the module docstring; within a source, the
# routine events (transfers, date recalculations, contacts) outnumber the notifiable and the urgent ones.
FOLLOW_UPS: tuple[tuple[str, int], ...] = (
    # prison: routine custody administration dominates
    ("PrisonerReceived", 80),
    ("PrisonerTransferred", 130),
    ("PrisonerRecategorised", 60),
    ("ReleaseDatesCalculated", 110),
    ("TemporaryReleaseDecided", 70),
    ("TemporaryReleaseFailedToReturn", 6),
    ("HomeDetentionCurfewDecided", 25),
    ("CompassionateReleaseDecided", 2),
    ("PrisonerReleased", 60),
    ("PrisonerReleaseCancelled", 3),
    ("PrisonerEscaped", 1),
    ("PrisonerDied", 2),
    ("PrisonerRecordsMerged", 5),
    # probation
    ("OffenderIdentifiersLinked", 30),
    ("LicenceConditionsSet", 40),
    ("LicenceVaried", 20),
    ("OffenderRecalled", 12),
    ("MappaManagementChanged", 45),
    ("SeriousFurtherOffenceCharged", 1),
    ("ApprovedPremisesAbsconded", 3),
    ("LicenceEnded", 15),
    # Parole Board
    ("ParoleReviewStarted", 18),
    ("ParoleHearingListed", 18),
    ("ParoleHearingDeferred", 7),
    ("ParoleDecisionIssued", 20),
    ("ReconsiderationDecided", 4),
    # hospital casework
    ("PatientTransferredToHospital", 6),
    ("RestrictedPatientDecision", 6),
    ("TribunalHearingListed", 5),
    ("TribunalDecisionIssued", 4),
    ("PatientRecalledToHospital", 2),
    ("PatientAbsconded", 1),
    # Home Office
    ("DeportationDecided", 9),
    ("OffenderRemovedFromUk", 3),
    # court
    ("AppealLodged", 18),
    ("AppealDetermined", 12),
    # witness care or youth justice (by the case): another family member referred, a victim declining
    ("VictimReferred", 11),
    ("VictimDeclinedScheme", 4),
    # victim contact units
    ("VictimPreferencesUpdated", 40),
    ("VictimContacted", 50),
    ("VictimOptedOut", 5),
    ("VictimOptedIn", 3),
    ("VictimAddressChanged", 7),
    ("CaseAllocated", 5),
    ("LicenceConditionsRequested", 6),
)
_FOLLOW_UP_TYPES = tuple(event_type for event_type, _ in FOLLOW_UPS)
_FOLLOW_UP_CUMULATIVE = tuple(accumulate(weight for _, weight in FOLLOW_UPS))

_CLOSED_PRISONS = ("LEI", "WDI", "DMI", "MRI", "BMI", "PVI", "BLI", "CFI", "NMI", "LPI", "EXI", "HMI")
_OPEN_PRISONS = ("HDI", "NSI", "FDI", "LYI")
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
_VICTIM_CONDITIONS = (
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


class Traffic:
    """An endless, realistic stream of agency events; the same seed gives the same events (ids aside)."""

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
        self._cases: dict[int, _Case] = {}

    # ---- the three ways in
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

    def follow_up(self, number: int) -> SimulatedEvent:
        """One later event about an existing case `number` from any source, in realistic proportions
        (prison transfers/ROTL/release dates/releases, probation licence/recall, parole board, youth, hospital,
        home office...), valid for that case."""
        return self._follow_up(number, remember=True)

    def __iter__(self) -> Iterator[SimulatedEvent]:
        """An endless realistic stream: new cases opened now and then, follow-ups about cases already opened,
        and, with invalid_share > 0, that share of invalid events (wrong identifier format, a date in the future,
        a missing field) so operators see dead letters."""
        rng = self._rng
        while True:
            if self._opened == 0 or rng.random() < NEW_CASE_CHANCE:
                number = (self.first_case + self._opened) % CASE_NUMBERS
                self._opened += 1
                events = self.opening_events(number)
            else:
                events = [self.follow_up(self._known_case())]
            for event in events:
                # Each place in the stream is invalid with probability invalid_share, so that share of the
                # stream is invalid; the valid event waits behind it rather than being lost.
                while self.invalid_share and rng.random() < self.invalid_share:
                    yield self._invalid()
                yield event

    # ---- cases
    def _known_case(self) -> int:
        return (self.first_case + self._rng.randrange(self._opened)) % CASE_NUMBERS

    def _case(self, number: int) -> _Case:
        case = self._cases.get(number)
        if case is None:
            if len(self._cases) > 100_000:  # a long stream: forget, they are cheap to derive again
                self._cases.clear()
            case = self._cases[number] = self._derive_case(number)
        return case

    def _derive_case(self, number: int) -> _Case:
        rng = random.Random(f"case:{self.seed}:{number}")
        units = _units()
        # Bigger units (more postcode areas, more people) sentence more offenders.
        court_unit = _weighted(rng, tuple((unit, len(unit.areas)) for unit in units))
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
        return _Case(
            number=number,
            ids=case_identifiers(number),
            kind=kind,
            court_code=rng.choice(court_unit.courts),
            court_unit=court_unit.code,
            victim_unit=victim_unit.code,
            victim_postcode=_postcode(rng, rng.choice(victim_unit.areas)),
            sentence_date=self.today - timedelta(days=rng.randint(0, 14)),
            term_months=term,
            vlo_id=f"vlo-{victim_unit.code.lower()}-{rng.randint(1, 40)}",
            welsh=victim_unit.code == "WAL",
        )

    # ---- opening events
    def _sentence(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        ids = case.ids
        if case.kind == "discretionary":
            code, description, classification, _ = _DISCRETIONARY_OFFENCES[
                case.number % len(_DISCRETIONARY_OFFENCES)
            ]
            offences = [{"code": code, "description": description, "classification": classification}]
            disposal = "custody"
        else:
            picked = [_weighted(rng, _OFFENCES)]
            if rng.random() < 0.3:
                picked.append(("CJ88116", "Possessing an offensive weapon in a public place", "other"))
            offences = [{"code": c, "description": d, "classification": k} for c, d, k in picked]
            disposal = _disposal(case, rng)
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

    def _discretionary(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._event(
            "vcs",
            "DiscretionaryCaseOpened",
            case_ref=case.ids.case_ref,
            unit_code=case.court_unit,
            reason=_DISCRETIONARY_OFFENCES[case.number % len(_DISCRETIONARY_OFFENCES)][3],
            opened_date=self.today.isoformat(),
            approved_by="Senior manager (simulated)",
        )

    def _referral(self, case: _Case, rng: random.Random, member: int) -> SimulatedEvent:
        first = member == 1
        relationship = (
            "victim"
            if first
            else _weighted(rng, (("bereaved_relative", 5), ("parent_or_guardian", 3), ("nominee", 2)))
        )
        postcode = (
            case.victim_postcode
            if first or rng.random() < 0.7
            else _postcode(rng, rng.choice(rng.choice(_units()).areas))
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
                "language": "cy" if case.welsh and rng.random() < 0.2 else _weighted(rng, _LANGUAGES),
                "accessibility_needs": "Large-print letters (simulated)" if rng.random() < 0.05 else None,
                "preferred_channel": _weighted(
                    rng, (("letter", 4), ("phone", 4), ("email", 2), ("in_person", 1))
                ),
            },
            referral_date=referred.isoformat(),
        )

    # ---- follow-ups
    def _follow_up(self, number: int, remember: bool) -> SimulatedEvent:
        case = self._case(number)
        rng = self._rng
        index = bisect.bisect_right(_FOLLOW_UP_CUMULATIVE, rng.random() * _FOLLOW_UP_CUMULATIVE[-1])
        event_type = _FOLLOW_UP_TYPES[min(index, len(_FOLLOW_UP_TYPES) - 1)]
        if event_type == "PrisonerReleaseCancelled" and number not in self._releases:
            event_type = "PrisonerReleased"  # nothing to cancel yet: the release comes first
        event = _BUILDERS[event_type](self, case, rng)
        if remember and event_type == "PrisonerReleased":
            self._releases[number] = event.fields["event_id"]
        elif remember and event_type == "PrisonerReleaseCancelled":
            self._releases.pop(number, None)
        return event

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

    def _prison(self, case: _Case, event_type: str, **fields: Any) -> SimulatedEvent:
        return self._event(
            "prison", event_type, noms_number=case.ids.noms_number, booking_id=case.booking_id, **fields
        )

    def _probation(self, case: _Case, event_type: str, **fields: Any) -> SimulatedEvent:
        # Probation records carry the prison number too, so the hub can link the CRN on first sight.
        return self._event(
            "probation", event_type, crn=case.ids.crn, noms_number=case.ids.noms_number, **fields
        )

    def _parole(self, case: _Case, event_type: str, **fields: Any) -> SimulatedEvent:
        return self._event(
            "parole-board",
            event_type,
            pb_case_ref=case.pb_case_ref,
            noms_number=case.ids.noms_number,
            **fields,
        )

    def _hospital(self, case: _Case, event_type: str, **fields: Any) -> SimulatedEvent:
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

    def _vcs(self, case: _Case, event_type: str, **fields: Any) -> SimulatedEvent:
        return self._event(
            "vcs", event_type, case_ref=case.ids.case_ref, person_ref=case.person_ref(1), **fields
        )

    @staticmethod
    def _conditions(rng: random.Random, victim_related: int = 1) -> list[dict[str, Any]]:
        chosen = [(*c, True) for c in rng.sample(_VICTIM_CONDITIONS, victim_related)]
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

    # prison
    def _prisoner_received(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        reason = _weighted(
            rng,
            (
                ("transfer_in", 55),
                ("return_from_court", 20),
                ("return_from_temporary_release", 15),
                ("recall", 7),
                ("new_admission", 3),
            ),
        )
        return self._prison(
            case,
            "PrisonerReceived",
            prison_code=rng.choice(_CLOSED_PRISONS),
            reason=reason,
            received_at=self._recent(rng),
        )

    def _prisoner_transferred(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        moves = _weighted(
            rng, ((("closed", "closed"), 85), (("closed", "open"), 10), (("open", "closed"), 5))
        )
        prisons = {"closed": _CLOSED_PRISONS, "open": _OPEN_PRISONS}
        origin = rng.choice(prisons[moves[0]])
        destination = rng.choice([p for p in prisons[moves[1]] if p != origin])
        return self._prison(
            case,
            "PrisonerTransferred",
            from_prison=origin,
            to_prison=destination,
            from_conditions=moves[0],
            to_conditions=moves[1],
            transferred_at=self._recent(rng),
        )

    def _prisoner_recategorised(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        before, after = _weighted(
            rng, ((("B", "C"), 60), (("C", "D"), 25), (("C", "B"), 10), (("D", "C"), 5))
        )
        return self._prison(
            case,
            "PrisonerRecategorised",
            from_category=before,
            to_category=after,
            from_conditions="open" if before == "D" else "closed",
            to_conditions="open" if after == "D" else "closed",
            effective_date=self._day(-rng.randint(0, 3)),
            next_review_date=self._day(rng.randint(150, 210)),
        )

    def _release_dates_calculated(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        start = case.sentence_date
        if case.term_months is None:  # life: a tariff, then the Parole Board
            tariff = start + timedelta(days=365 * rng.randint(8, 20) + rng.randint(-30, 30))
            dates: dict[str, Any] = {
                "tariff_expiry_date": tariff.isoformat(),
                "parole_eligibility_date": None,
            }
        else:
            days = case.term_months * 30
            # Recalculations move the date a little (remand credited, added days): sometimes into another month.
            release = start + timedelta(days=days // 2 + rng.randint(-20, 20))
            dates = {
                "conditional_release_date": release.isoformat(),
                "hdc_eligibility_date": (release - timedelta(days=min(180, days // 4))).isoformat(),
                "licence_expiry_date": (start + timedelta(days=days)).isoformat(),
                "sentence_expiry_date": (start + timedelta(days=days)).isoformat(),
            }
        return self._prison(
            case, "ReleaseDatesCalculated", calculation_date=self._day(-rng.randint(0, 2)), **dates
        )

    def _temporary_release_decided(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        granted = rng.random() < 0.7
        return self._prison(
            case,
            "TemporaryReleaseDecided",
            decision="granted" if granted else "refused",
            rotl_type=_weighted(
                rng,
                (
                    ("resettlement_day_release", 60),
                    ("resettlement_overnight_release", 25),
                    ("special_purpose_licence", 10),
                    ("childcare_resettlement_licence", 5),
                ),
            ),
            decision_date=self._day(-rng.randint(0, 3)),
            first_release_date=self._day(rng.randint(7, 30)) if granted else None,
            conditions=self._conditions(rng) if granted else [],
        )

    def _temporary_release_failed_to_return(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._prison(
            case, "TemporaryReleaseFailedToReturn", due_back_at=self._recent(rng), police_informed=True
        )

    def _home_detention_curfew_decided(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        granted = rng.random() < 0.6
        return self._prison(
            case,
            "HomeDetentionCurfewDecided",
            decision="granted" if granted else "refused",
            decision_date=self._day(-rng.randint(0, 3)),
            release_date=self._day(rng.randint(14, 42)) if granted else None,
            conditions=self._conditions(rng) if granted else [],
            curfew_address={
                "lines": ["Flat 1", "2 Simulation Street"],
                "town": "Exampleton",
                "postcode": case.victim_postcode[:-3] + "8ZZ",
            }
            if granted
            else None,
        )

    def _compassionate_release_decided(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        granted = rng.random() < 0.2
        return self._prison(
            case,
            "CompassionateReleaseDecided",
            decision="granted" if granted else "refused",
            decision_date=self._day(-rng.randint(0, 3)),
            release_date=self._day(rng.randint(3, 14)) if granted else None,
        )

    def _prisoner_released(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        event = self._prison(
            case,
            "PrisonerReleased",
            release_type=_weighted(
                rng,
                (
                    ("automatic", 60),
                    ("hdc", 15),
                    ("parole", 12),
                    ("end_of_sentence", 8),
                    ("other", 2),
                    ("on_appeal", 2),
                    ("compassionate", 1),
                ),
            ),
            release_date=self.today.isoformat(),
            licence_conditions=self._conditions(rng, victim_related=rng.randint(1, 2)),
            release_address={
                "lines": ["Approved Premises (simulated)", "7 Simulation Road"],
                "town": "Exampleton",
                "postcode": "LS1 9ZZ",
            },
        )
        # Its own id, so that a later PrisonerReleaseCancelled can name it.
        event.fields["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        return event

    def _prisoner_release_cancelled(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._prison(
            case,
            "PrisonerReleaseCancelled",
            cancels_event_id=self._releases[case.number],
            reason=rng.choice(("Release recorded against the wrong prisoner", "Release date keyed in error")),
        )

    def _prisoner_escaped(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        kind = _weighted(
            rng,
            (
                ("abscond_from_open_conditions", 70),
                ("escape_from_escort", 20),
                ("escape_from_establishment", 10),
            ),
        )
        return self._prison(case, "PrisonerEscaped", escaped_at=self._recent(rng), escape_type=kind)

    def _prisoner_died(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._prison(case, "PrisonerDied", date_of_death=self._day(-rng.randint(0, 3)))

    def _prisoner_records_merged(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._event(
            "prison",
            "PrisonerRecordsMerged",
            noms_number=case.ids.noms_number,
            removed_noms_number=_removed_noms_number(case.number),
            merge_date=self.today.isoformat(),
        )

    # probation
    def _offender_identifiers_linked(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._probation(
            case, "OffenderIdentifiersLinked", pnc=case.ids.pnc, linked_date=self._day(-rng.randint(0, 5))
        )

    def _licence_conditions_set(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._probation(
            case,
            "LicenceConditionsSet",
            conditions=self._conditions(rng, victim_related=rng.randint(1, 2)),
            omitted_requested_conditions=self._omitted(rng),
            effective_date=self._day(rng.randint(7, 60)),
            decision_maker="Governor, on behalf of the Secretary of State",
        )

    def _licence_varied(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        added = self._conditions(rng)[:1]
        return self._probation(
            case,
            "LicenceVaried",
            added=added,
            removed=[],
            varied=[],
            omitted_requested_conditions=self._omitted(rng, 0.2),
            effective_date=self._day(rng.randint(0, 14)),
            reason=rng.choice(
                ("The victim moved within Exampleton", "Risk reassessed by the offender manager")
            ),
        )

    def _offender_recalled(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._probation(
            case,
            "OffenderRecalled",
            recall_type=_weighted(rng, (("standard", 60), ("fixed_term", 40))),
            recall_date=self._day(-rng.randint(0, 2)),
            unlawfully_at_large=rng.random() < 0.3,
        )

    def _mappa_management_changed(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._probation(
            case,
            "MappaManagementChanged",
            level=_weighted(rng, ((1, 60), (2, 30), (3, 10))),
            category=_weighted(rng, ((1, 30), (2, 60), (3, 10))),
            effective_date=self._day(-rng.randint(0, 10)),
        )

    def _serious_further_offence_charged(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._probation(
            case, "SeriousFurtherOffenceCharged", charge_date=self._day(-rng.randint(0, 2))
        )

    def _approved_premises_absconded(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._event(
            "probation",
            "ApprovedPremisesAbsconded",
            crn=case.ids.crn,
            noms_number=case.ids.noms_number,
            absconded_at=self._recent(rng),
            premises_code="AP-SIM-01",
        )

    def _licence_ended(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._probation(case, "LicenceEnded", end_date=self._day(-rng.randint(0, 3)))

    # Parole Board
    def _parole_review_started(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        review = (
            "indeterminate" if case.term_months is None else rng.choice(("determinate", "recall", "extended"))
        )
        return self._parole(
            case, "ParoleReviewStarted", review_type=review, start_date=self._day(-rng.randint(0, 7))
        )

    def _parole_hearing_listed(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._parole(
            case,
            "ParoleHearingListed",
            hearing_date=self._day(rng.randint(60, 180)),
            hearing_type=_weighted(rng, (("oral", 70), ("paper", 30))),
        )

    def _parole_hearing_deferred(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._parole(
            case,
            "ParoleHearingDeferred",
            original_hearing_date=self._day(rng.randint(20, 60)),
            new_hearing_date=self._day(rng.randint(90, 200)) if rng.random() < 0.8 else None,
            reason=rng.choice(
                ("Psychology report not yet available", "Panel member unavailable", "Witness unavailable")
            ),
        )

    def _parole_decision_issued(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        outcome = _weighted(
            rng,
            (
                ("no_release", 45),
                ("release", 30),
                ("open_conditions_recommended", 15),
                ("open_conditions_not_recommended", 10),
            ),
        )
        release = outcome == "release"
        return self._parole(
            case,
            "ParoleDecisionIssued",
            outcome=outcome,
            decision_date=self._day(-rng.randint(0, 3)),
            provisional=release and rng.random() < 0.7,
            licence_conditions=self._conditions(rng, victim_related=rng.randint(1, 2)) if release else [],
            omitted_requested_conditions=self._omitted(rng) if release else [],
            next_review_date=None if release else self._day(rng.randint(365, 730)),
            panel_type=rng.choice(("oral hearing", "paper review")),
        )

    def _reconsideration_decided(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._parole(
            case,
            "ReconsiderationDecided",
            outcome=_weighted(rng, (("refused", 85), ("granted", 15))),
            decision_date=self._day(-rng.randint(0, 3)),
            applicant=_weighted(rng, (("secretary_of_state", 70), ("prisoner", 30))),
        )

    # hospital casework
    def _patient_transferred_to_hospital(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._hospital(
            case,
            "PatientTransferredToHospital",
            restricted=rng.random() < 0.8,
            transfer_date=self._day(-rng.randint(0, 5)),
            mha_section="s47/49",
            hospital_code="SIM-H01",
            hospital_name="Simulated Secure Hospital",
        )

    def _restricted_patient_decision(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._hospital(
            case,
            "RestrictedPatientDecision",
            decision=_weighted(
                rng,
                (
                    ("leave_granted", 50),
                    ("discharge_considered", 25),
                    ("transfer_agreed", 20),
                    ("restrictions_lifted", 5),
                ),
            ),
            decision_date=self._day(-rng.randint(0, 5)),
            conditions=self._conditions(rng),
            decision_maker="Mental Health Casework Section",
        )

    def _tribunal(self, case: _Case) -> str:
        return "mhrt_wales" if case.welsh else "ftt_mental_health"

    def _tribunal_hearing_listed(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        hearing = rng.randint(30, 90)
        return self._hospital(
            case,
            "TribunalHearingListed",
            hearing_date=self._day(hearing),
            tribunal=self._tribunal(case),
            representations_due_date=self._day(hearing - 14),
        )

    def _tribunal_decision_issued(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        outcome = _weighted(
            rng,
            (
                ("no_discharge", 60),
                ("conditional_discharge", 25),
                ("deferred_conditional_discharge", 10),
                ("absolute_discharge", 5),
            ),
        )
        return self._hospital(
            case,
            "TribunalDecisionIssued",
            outcome=outcome,
            conditions=self._conditions(rng) if "conditional" in outcome else [],
            effective_date=self._day(rng.randint(14, 60)) if outcome != "no_discharge" else None,
            decision_date=self._day(-rng.randint(0, 3)),
            tribunal=self._tribunal(case),
        )

    def _patient_recalled_to_hospital(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._hospital(
            case, "PatientRecalledToHospital", recalled_at=self._recent(rng), hospital_code="SIM-H01"
        )

    def _patient_absconded(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._hospital(
            case, "PatientAbsconded", absconded_at=self._recent(rng), hospital_code="SIM-H01"
        )

    # Home Office
    def _deportation_decided(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._event(
            "home-office",
            "DeportationDecided",
            noms_number=case.ids.noms_number,
            ho_ref=case.ho_ref,
            decision=_weighted(rng, (("deport", 80), ("deportation_not_pursued", 20))),
            decision_date=self._day(-rng.randint(0, 10)),
            early_removal_scheme=rng.random() < 0.4,
        )

    def _offender_removed_from_uk(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._event(
            "home-office",
            "OffenderRemovedFromUk",
            noms_number=case.ids.noms_number,
            ho_ref=case.ho_ref,
            removal_date=self._day(-rng.randint(0, 3)),
        )

    # court
    def _appeal_lodged(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._event(
            "court",
            "AppealLodged",
            case_ref=case.ids.case_ref,
            appeal_type=_weighted(rng, (("sentence", 70), ("conviction", 30))),
            lodged_date=self._day(-rng.randint(0, 5)),
            appeal_court="Court of Appeal (Criminal Division)",
            hearing_date=self._day(rng.randint(60, 200)),
        )

    def _appeal_determined(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        outcome = _weighted(rng, (("dismissed", 70), ("sentence_varied", 20), ("allowed", 10)))
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
            else _weighted(rng, (("sentence", 70), ("conviction", 30))),
            outcome=outcome,
            determined_date=self._day(-rng.randint(0, 3)),
            appeal_court="Court of Appeal (Criminal Division)",
            **fields,
        )

    # witness care or youth justice
    def _victim_referred(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._referral(case, rng, member=rng.randint(2, 4))  # another member of a bereaved family

    def _victim_declined_scheme(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._event(
            case.referring_source,
            "VictimDeclinedScheme",
            case_ref=case.ids.case_ref,
            person_ref=case.person_ref(1),
            declined_date=self._day(-rng.randint(0, 3)),
            reason="Does not wish to hear about the offender (simulated)",
        )

    # victim contact units
    def _victim_preferences_updated(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        chosen = sorted(c.value for c in VICTIM_CATEGORIES if rng.random() < 0.6) or ["key_dates"]
        return self._vcs(
            case,
            "VictimPreferencesUpdated",
            categories=chosen,
            channel=_weighted(rng, (("letter", 4), ("phone", 4), ("email", 2), ("in_person", 1))),
            language="cy" if case.welsh and rng.random() < 0.2 else "en",
            accessibility_needs=None,
        )

    def _victim_contacted(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._vcs(
            case,
            "VictimContacted",
            contacted_at=self._recent(rng),
            vlo_id=case.vlo_id,
            channel=_weighted(rng, (("phone", 5), ("letter", 3), ("email", 2), ("in_person", 1))),
        )

    def _victim_opted_out(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._vcs(
            case,
            "VictimOptedOut",
            opted_out_date=self._day(-rng.randint(0, 3)),
            reason="Wants a break from updates (simulated)",
        )

    def _licence_conditions_requested(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        asked = rng.sample(_VICTIM_CONDITIONS, rng.randint(1, 2))
        return self._vcs(
            case,
            "LicenceConditionsRequested",
            requested_at=self._recent(rng),
            conditions=[
                {"kind": "no_contact" if code == "NCV" else "exclusion_zone", "text": text, "code": code}
                for code, text in asked
            ],
        )

    def _victim_opted_in(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._vcs(case, "VictimOptedIn", opted_in_date=self._day(-rng.randint(0, 3)))

    def _victim_address_changed(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        return self._vcs(
            case,
            "VictimAddressChanged",
            postcode=_postcode(rng, rng.choice(rng.choice(_units()).areas)),
            address_lines=[f"{rng.randint(1, 199)} Simulation Avenue"],
            town="Exampleton",
            effective_date=self._day(rng.randint(0, 14)),
        )

    def _case_allocated(self, case: _Case, rng: random.Random) -> SimulatedEvent:
        # The case moves to another VLO of the same unit (leave, workload).
        return self._event(
            "vcs",
            "CaseAllocated",
            case_ref=case.ids.case_ref,
            unit_code=case.victim_unit,
            vlo_id=f"vlo-{case.victim_unit.lower()}-{rng.randint(1, 40)}",
        )

    # ---- invalid events
    def _invalid(self) -> SimulatedEvent:
        """A follow-up broken the way agency systems break: a malformed identifier, a date in the future, or a
        missing required identifier. It changes no state of the stream (it will be dead-lettered)."""
        rng = self._rng
        number = self._known_case() if self._opened else self.first_case
        while True:
            event = self._follow_up(number, remember=False)
            fields = dict(event.fields)
            fields.pop("event_id", None)  # a broken copy must not take a real release's id
            broken = _BREAKERS[rng.randrange(len(_BREAKERS))](self, fields)
            if broken:
                return SimulatedEvent(event.source, fields, event.urgent)


def _disposal(case: _Case, rng: random.Random) -> str:
    if case.kind == "youth":
        # A detention and training order runs to 24 months at most; longer youth terms are detention.
        return rng.choice(("detention", "dto")) if (case.term_months or 0) <= 24 else "detention"
    return "life" if case.term_months is None else "custody"


def _postcode(rng: random.Random, area: str) -> str:
    """A postcode in a real area (so it routes) with a 9ZZ inward code that no real address has."""
    return f"{area}{rng.randint(1, 9)} 9ZZ"


def _malformed_identifier(traffic: Traffic, fields: dict[str, Any]) -> bool:
    breaks: Callable[[str], str]
    for name, breaks in (
        ("noms_number", lambda v: v[:5] + "0" + v[5:]),  # five digits
        ("crn", lambda v: v + "0"),  # seven digits
        ("case_ref", lambda v: v[:4] + " " + v[4:]),  # a space
        ("pnc", lambda v: v.replace("/", "-")),
    ):
        if name in fields:
            fields[name] = breaks(fields[name])
            return True
    return False


def _future_date(traffic: Traffic, fields: dict[str, Any]) -> bool:
    future = traffic.today + timedelta(days=30)
    schema = event_schemas()[fields["event_type"]].definition
    for field in schema["fields"]:
        value = fields.get(field["name"])
        if field.get("hub.not_future") and isinstance(value, str):
            fields[field["name"]] = f"{future.isoformat()}T09:00:00Z" if "T" in value else future.isoformat()
            return True
    fields["occurred_at"] = f"{future.isoformat()}T09:00:00Z"
    return True


def _missing_identifier(traffic: Traffic, fields: dict[str, Any]) -> bool:
    required = event_schemas()[fields["event_type"]].definition.get("hub.requires", [])
    names = [name.removeprefix("subject.") for name in required if name.removeprefix("subject.") in fields]
    if not names:
        return False
    del fields[names[0]]
    return True


_BREAKERS: tuple[Callable[[Traffic, dict[str, Any]], bool], ...] = (
    _malformed_identifier,
    _future_date,
    _missing_identifier,
)


def _builder(event_type: str) -> Callable[[Traffic, _Case, random.Random], SimulatedEvent]:
    snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in event_type)
    builder: Callable[[Traffic, _Case, random.Random], SimulatedEvent] = getattr(Traffic, snake)
    return builder


_BUILDERS: dict[str, Callable[[Traffic, _Case, random.Random], SimulatedEvent]] = {
    event_type: _builder(event_type) for event_type in _FOLLOW_UP_TYPES
}
