"""The simulated agency traffic that `hub simulate`, `hub up --demo`, the benchmark and the browser tests use."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime
from itertools import islice

import pytest

from connectors.publisher import event_from_json
from hub.tools.traffic import CaseIdentifiers, SimulatedEvent, Traffic, case_identifiers
from routing.catalogue import rule_for
from schemas import AGENCIES
from schemas.validation import IDENTIFIER_FORMATS, InvalidEvent

NOW = datetime.now(UTC)
TODAY = NOW.date()


def stream(count: int, **options) -> list[SimulatedEvent]:
    return list(islice(Traffic(today=TODAY, **options), count))


def is_valid(event: SimulatedEvent) -> bool:
    try:
        event_from_json(event.fields, event.source, NOW)
    except InvalidEvent:
        return False
    return True


@pytest.fixture(scope="module")
def five_thousand() -> list[SimulatedEvent]:
    return stream(5000, seed=1)


def test_every_source_appears_in_five_thousand_events(five_thousand: list[SimulatedEvent]) -> None:
    sources = Counter(event.source for event in five_thousand)
    assert set(sources) == set(AGENCIES)


def test_proportions_are_realistic_and_urgent_events_are_a_small_share(
    five_thousand: list[SimulatedEvent],
) -> None:
    sources = Counter(event.source for event in five_thousand)
    share = {source: count / len(five_thousand) for source, count in sources.items()}
    assert share["prison"] == max(share.values())
    assert share["court"] > share["hospital"] and share["court"] > share["home-office"]
    assert share["hospital"] < 0.05 and share["home-office"] < 0.05
    urgent = sum(event.urgent for event in five_thousand) / len(five_thousand)
    assert 0.005 < urgent < 0.05


def test_every_generated_event_passes_the_publishers_validation(five_thousand: list[SimulatedEvent]) -> None:
    problems = Counter()
    for event in five_thousand:
        try:
            event_from_json(event.fields, event.source, NOW)
        except InvalidEvent as error:
            problems[f"{event.fields['event_type']}: {error}"] += 1
    assert not problems


def test_urgent_says_what_the_catalogue_says(five_thousand: list[SimulatedEvent]) -> None:
    for event in five_thousand:
        assert event.urgent == rule_for(event.fields["event_type"]).urgent
    assert {e.fields["event_type"] for e in five_thousand if e.urgent} >= {
        "OffenderRecalled",
        "TemporaryReleaseFailedToReturn",
    }


def test_invalid_share_is_close_to_what_was_asked_and_the_invalid_events_are_the_three_kinds() -> None:
    events = stream(5000, seed=2, invalid_share=0.1)
    invalid = [event for event in events if not is_valid(event)]
    assert 420 <= len(invalid) <= 580  # 500 expected; a binomial spread of about 21
    reasons = Counter()
    for event in invalid:
        try:
            event_from_json(event.fields, event.source, NOW)
        except InvalidEvent as error:
            reasons.update(str(problem).split(": ", 1)[1].split(" (")[0] for problem in error.problems)
    assert reasons["cannot be in the future"] > 50
    assert reasons["is required for this event"] > 50
    assert sum(count for rule, count in reasons.items() if rule.startswith("must be")) > 50
    # And nothing else is: every other event of the stream is valid.
    assert sum(reasons.values()) == len(invalid)


def test_without_invalid_share_nothing_is_invalid() -> None:
    assert all(is_valid(event) for event in stream(500, seed=3))


def test_the_same_seed_gives_the_same_events_and_another_seed_different_ones() -> None:
    first = [
        (e.source, json.dumps(e.fields, sort_keys=True)) for e in stream(2000, seed=5, invalid_share=0.05)
    ]
    again = [
        (e.source, json.dumps(e.fields, sort_keys=True)) for e in stream(2000, seed=5, invalid_share=0.05)
    ]
    other = [
        (e.source, json.dumps(e.fields, sort_keys=True)) for e in stream(2000, seed=6, invalid_share=0.05)
    ]
    assert first == again
    assert first != other


def test_opening_events_make_the_case_notifiable() -> None:
    traffic = Traffic(seed=1, today=TODAY)
    for number in range(200):
        events = traffic.opening_events(number)
        ids = case_identifiers(number)
        kinds = [(e.source, e.fields["event_type"]) for e in events]
        assert kinds[0] == ("court", "SentenceImposed")
        assert kinds[-2][1] == "VictimReferred" and kinds[-2][0] in ("witness-care", "youth-justice")
        assert kinds[-1] == ("vcs", "CaseAllocated")
        assert all(e.fields["case_ref"] == ids.case_ref for e in events)
        assert events[0].fields["noms_number"] == ids.noms_number
        assert all(is_valid(e) for e in events)
        # Asked again, the same case opens the same way (the benchmark loads cases from these).
        assert [e.fields for e in traffic.opening_events(number)] == [e.fields for e in events]


def test_follow_ups_name_the_cases_identifiers() -> None:
    traffic = Traffic(seed=4, today=TODAY)
    for number in (0, 1, 17, 9_999_999):
        ids = case_identifiers(number)
        own = {"case_ref": ids.case_ref, "noms_number": ids.noms_number, "crn": ids.crn, "pnc": ids.pnc}
        for _ in range(300):
            event = traffic.follow_up(number)
            named = {name: event.fields[name] for name in own if name in event.fields}
            assert named, event.fields["event_type"]
            assert named == {name: own[name] for name in named}
            assert is_valid(event)


def test_follow_ups_come_from_every_source() -> None:
    traffic = Traffic(seed=8, today=TODAY)
    sources = {traffic.follow_up(number).source for number in range(3000)}
    assert sources == set(AGENCIES)


def test_case_identifiers_have_the_real_formats_and_never_collide() -> None:
    numbers = [*range(0, 2000), *range(9_998_000, 10_000_000), *range(0, 10_000_000, 9973)]
    seen: dict[str, set[str]] = {"case_ref": set(), "noms_number": set(), "crn": set(), "pnc": set()}
    for number in set(numbers):
        ids = case_identifiers(number)
        assert isinstance(ids, CaseIdentifiers)
        for kind, values in seen.items():
            value = getattr(ids, kind)
            assert IDENTIFIER_FORMATS[kind][0].fullmatch(value), (kind, value)
            assert value not in values
            values.add(value)
    assert case_identifiers(42) == case_identifiers(42)
    with pytest.raises(ValueError):
        case_identifiers(10_000_000)


def test_people_and_places_are_obviously_fake(five_thousand: list[SimulatedEvent]) -> None:
    referrals = [e.fields["victim"] for e in five_thousand if e.fields["event_type"] == "VictimReferred"]
    assert referrals
    for victim in referrals:
        assert victim["name"].startswith("Simulated Victim ")
        assert victim["address"]["lines"][0].endswith("Simulation Street")
        assert victim["address"]["postcode"].endswith("9ZZ")
        assert victim["phone"].startswith("07700 900")  # Ofcom's numbers reserved for drama
        assert victim["email"].endswith("@example.org")
    offenders = [e.fields["offender"] for e in five_thousand if e.fields["event_type"] == "SentenceImposed"]
    assert all(o["name"].startswith("Simulated Offender ") for o in offenders)
