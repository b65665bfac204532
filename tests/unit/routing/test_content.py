"""Redaction by construction: what a notification may say, for every notifiable event in the catalogue."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from connectors.publisher import event_from_json
from routing import content
from schemas import SCHEMA_DIR, event_schemas
from schemas.validation import allowed_sources

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
SENSITIVE = ("hub.clinical", "hub.offender_location", "hub.personal")


def _canary(field: dict[str, Any]) -> Any:
    """A value for a sensitive field that would be easy to spot if it leaked."""
    marker = f"CANARY-{field['name']}"
    types = field["type"] if isinstance(field["type"], list) else [field["type"]]
    for avro_type in types:
        if avro_type == "string":
            return marker
        if isinstance(avro_type, dict) and avro_type.get("name", "").endswith("Address"):
            return {"lines": [marker], "town": marker, "postcode": "ZZ9 9ZZ"}
        if avro_type == "victimhub.common.Address":
            return {"lines": [marker], "town": marker, "postcode": "ZZ9 9ZZ"}
    return None


def event_with_canaries(event_type: str):
    schema = event_schemas()[event_type]
    data = json.loads((SCHEMA_DIR / schema.folder / f"{event_type}.example.json").read_text())
    planted = 0
    for field in schema.definition["fields"]:
        if any(field.get(flag) for flag in SENSITIVE) and (value := _canary(field)) is not None:
            data[field["name"]] = value
            planted += 1
    data["establishment"] = "CANARY-establishment"
    return event_from_json(data, allowed_sources(schema)[0], NOW), planted


@pytest.mark.parametrize("event_type", sorted(content.BUILDERS))
def test_no_location_clinical_or_personal_field_reaches_the_notification(event_type: str) -> None:
    event, _ = event_with_canaries(event_type)
    said = content.content_for(event_type, event)
    assert "CANARY" not in repr(said)


def test_the_canaries_were_really_planted_where_it_matters() -> None:
    # Guards the test above: the fields it must keep out are present in the events it builds.
    for event_type in (
        "PrisonerReleased",
        "PatientAbsconded",
        "PatientTransferredToHospital",
        "HomeDetentionCurfewDecided",
        "PrisonerTransferred",
        "TribunalDecisionIssued",
    ):
        event, planted = event_with_canaries(event_type)
        assert planted >= 1, event_type
        assert "CANARY" in repr(event)


def test_only_victim_related_conditions_are_shown_as_the_licence_words_them() -> None:
    event, _ = event_with_canaries("LicenceConditionsSet")
    said = content.licence_conditions_set(event)
    expected = tuple(c.text for c in event.conditions if c.victim_related)
    assert said.victim_conditions == expected
    assert all(c.text not in said.victim_conditions for c in event.conditions if not c.victim_related)
    assert said.omitted_requests == tuple(
        content.OmittedRequest(r.text, r.reason) for r in event.omitted_requested_conditions
    )


@pytest.mark.parametrize(
    ("from_conditions", "to_conditions", "notifiable"),
    [
        ("closed", "open", True),
        ("open", "closed", True),
        ("closed", "closed", False),
        ("open", "open", False),
    ],
)
def test_only_moves_into_or_out_of_open_conditions_are_notifiable(
    from_conditions: str, to_conditions: str, notifiable: bool
) -> None:
    event, _ = event_with_canaries("PrisonerTransferred")
    moved = event.model_copy(update={"from_conditions": from_conditions, "to_conditions": to_conditions})
    said = content.prisoner_transferred(moved)
    assert (said is not None) == notifiable
    if said:
        assert "CANARY" not in said.summary


@pytest.mark.parametrize(
    ("from_category", "to_category", "notifiable"),
    [
        ("C", "D", True),
        ("D", "C", True),
        ("B", "C", False),
        ("closed", "open", True),
        ("YOI closed", "C", False),
    ],
)
def test_recategorisation_is_notifiable_only_to_or_from_open(
    from_category: str, to_category: str, notifiable: bool
) -> None:
    event, _ = event_with_canaries("PrisonerRecategorised")
    moved = event.model_copy(
        update={
            "from_category": from_category,
            "to_category": to_category,
            "from_conditions": None,
            "to_conditions": None,
        }
    )
    assert (content.prisoner_recategorised(moved) is not None) == notifiable


def test_a_provisional_release_decision_carries_the_reconsideration_deadline() -> None:
    event, _ = event_with_canaries("ParoleDecisionIssued")
    decided = event.model_copy(
        update={"outcome": "release", "provisional": True, "decision_date": date(2026, 12, 1)}
    )
    said = content.parole_decision_issued(decided)
    # 1 December + 21 calendar days
    assert said.due_by == date(2026, 12, 22)
    assert said.facts["reconsideration_deadline"] == "2026-12-22"
    final = content.parole_decision_issued(decided.model_copy(update={"provisional": False}))
    assert final.due_by is None


def test_the_personal_statement_is_due_28_calendar_days_before_the_hearing() -> None:
    event, _ = event_with_canaries("ParoleHearingListed")
    listed = event.model_copy(update={"hearing_date": date(2027, 1, 20)})
    # 20 January - 28 days = 23 December, though near Christmas: calendar days (docs/domain.md section 6.2).
    assert content.parole_hearing_listed(listed).due_by == date(2026, 12, 23)


def test_summaries_never_name_the_establishment_of_a_hospital_or_prison() -> None:
    for event_type in (
        "PatientTransferredToHospital",
        "PrisonerReleased",
        "PrisonerEscaped",
        "PatientAbsconded",
    ):
        event, _ = event_with_canaries(event_type)
        said = content.content_for(event_type, event)
        assert "CANARY-establishment" not in repr(said)
