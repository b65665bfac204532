"""What an agency integrator sees when an event is wrong: the field and the rule, never the value."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.publisher import event_from_json, message_key
from schemas.validation import InvalidEvent

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def sentence(**changes) -> dict:
    event = {
        "event_type": "SentenceImposed",
        "case_ref": "01WS0000126",
        "court_code": "Leeds Crown Court",
        "sentence_date": "2026-11-20",
        "offender": {"name": "Offender Name", "pnc": "2019/0045123K", "cro": "123456/19K"},
        "offences": [{"code": "OF61016", "description": "Wounding", "classification": "violent"}],
        "disposal": "custody",
        "custodial_term_months": 30,
    }
    event.update(changes)
    return event


def problems(data: dict, source: str = "court") -> str:
    with pytest.raises(InvalidEvent) as raised:
        event_from_json(data, source, NOW)
    return str(raised.value)


def test_flat_fields_are_moved_into_the_envelope_and_defaults_filled() -> None:
    event = event_from_json(sentence(noms_number="A1234BC"), "court", NOW)
    assert event.envelope.event_type == "SentenceImposed"
    assert event.envelope.subject.case_ref == "01WS0000126"
    assert event.envelope.subject.noms_number == "A1234BC"
    assert event.envelope.source.agency == "court"
    assert event.envelope.occurred_at == NOW
    assert event.envelope.event_id is not None
    assert message_key(event) == b"01WS0000126"


def test_a_nested_envelope_is_accepted_too() -> None:
    data = sentence()
    del data["case_ref"]
    data["envelope"] = {
        "event_id": "5d9b1a2c-3f4e-4a5b-8c6d-7e8f9a0b1c2d",
        "subject": {"case_ref": "01WS0000126"},
    }
    event = event_from_json(data, "court", NOW)
    assert str(event.envelope.event_id) == "5d9b1a2c-3f4e-4a5b-8c6d-7e8f9a0b1c2d"
    assert event.envelope.subject.case_ref == "01WS0000126"


@pytest.mark.parametrize(
    ("changes", "field", "rule"),
    [
        ({"case_ref": None}, "subject.case_ref", "required"),
        ({"noms_number": "1234ABC"}, "noms_number", "A1234BC"),
        ({"crn": "X12345"}, "crn", "X123456"),
        ({"offender": {"pnc": "19/45123K"}}, "offender.pnc", "YYYY/NNNNNNNA"),
        ({"offender": {"cro": "123456-19K"}}, "offender.cro", "NNNNNN/YYA"),
        ({"sentence_date": "2099-01-01"}, "sentence_date", "future"),
        ({"custodial_term_months": None}, "custodial_term_months", "required for a custody disposal"),
        ({"offences": []}, "offences", "at least one"),
        ({"disposal": "flogging"}, "disposal", "Input should be"),
        (
            {"offences": [{"code": "X", "classification": "nasty"}]},
            "offences.0.classification",
            "Input should be",
        ),
        ({"sentence_date": "yesterday"}, "sentence_date", "valid date"),
        ({"surprise": 1}, "surprise", "Extra inputs"),
        ({"court_code": "x" * 3000}, "court_code", "longer than"),
    ],
)
def test_each_broken_rule_names_its_field(changes: dict, field: str, rule: str) -> None:
    data = sentence(**changes)
    if data.get("case_ref") is None:
        data.pop("case_ref")
    message = problems(data)
    assert field in message
    assert rule in message


def test_messages_never_repeat_the_value() -> None:
    message = problems(sentence(noms_number="SECRET99"))
    assert "SECRET99" not in message


def test_unknown_event_type() -> None:
    assert "event_type: is not an event type the hub knows" in problems({"event_type": "PrisonerTeleported"})


def test_an_event_from_the_wrong_agency_is_refused() -> None:
    message = problems(sentence(), source="prison")
    assert "envelope.source.agency" in message


def test_every_problem_is_reported_at_once() -> None:
    message = problems(sentence(noms_number="bad", sentence_date="2099-01-01"))
    assert "noms_number" in message and "sentence_date" in message


def other(event_type: str, **fields) -> dict:
    return {"event_type": event_type, **fields}


@pytest.mark.parametrize(
    ("data", "source", "field", "rule"),
    [
        (
            other(
                "AppealDetermined", case_ref="01WS0000126", appeal_type="sentence", outcome="sentence_varied"
            ),
            "court",
            "new_disposal",
            "required when the outcome is sentence_varied",
        ),
        (
            other(
                "AppealDetermined",
                case_ref="01WS0000126",
                appeal_type="sentence",
                outcome="sentence_varied",
                new_disposal="custody",
            ),
            "court",
            "new_custodial_term_months",
            "required for a custody disposal",
        ),
        (
            other("MappaManagementChanged", crn="X123456", level=4, category=1),
            "probation",
            "level",
            "1, 2 or 3",
        ),
        (other("OffenderIdentifiersLinked", crn="X123456"), "probation", "envelope.subject", "at least one"),
        (
            other("TemporaryReleaseDecided", noms_number="A1234BC", decision="granted"),
            "prison",
            "first_release_date",
            "required when the decision is granted",
        ),
        (
            other("PrisonerRecordsMerged", noms_number="A1234BC", removed_noms_number="A12"),
            "prison",
            "removed_noms_number",
            "A1234BC",
        ),
        (
            other("PrisonerEscaped", noms_number="A1234BC", escaped_at="2099-01-01T00:00:00Z"),
            "prison",
            "escaped_at",
            "future",
        ),
        (
            other(
                "VictimReferred",
                case_ref="01WS0000126",
                referral_date="2026-01-01",
                victim={"person_ref": "P1", "name": "N", "address": {"postcode": "LS1 1AA"}},
            ),
            "youth-justice",
            None,
            None,
        ),
        (
            other(
                "VictimReferred",
                case_ref="01WS0000126",
                referral_date="2026-01-01",
                victim={"person_ref": "P1", "name": "N", "address": {"postcode": "LS1 1AA"}},
            ),
            "prison",
            "envelope.source.agency",
            "does not publish VictimReferred",
        ),
    ],
)
def test_rules_beyond_the_schema_for_other_events(
    data: dict, source: str, field: str | None, rule: str | None
) -> None:
    if field is None:
        assert event_from_json(data, source, NOW).envelope.source.agency == source
        return
    message = problems(data, source)
    assert field in message and rule in message, message
