"""Requested licence conditions reconciled against a decision (docs/domain.md section 8.2): pure rules."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from routing.content import NotificationContent, RequestOutcome
from routing.requests import (
    Decided,
    Omission,
    Outcome,
    Request,
    SetCondition,
    decided_by,
    normalised,
    reconcile,
    unaddressed_escalation,
    with_outcomes,
)

NO_CONTACT = Request("e1:0", "Not to contact the victim directly or indirectly")
EXCLUSION = Request("e1:1", "Not to enter Headingley, Leeds", "EXZ1")


def outcomes(requests: list[Request], decided: Decided) -> list[tuple[str, Outcome, str | None]]:
    return [(r.request.request_id, r.outcome, r.reason) for r in reconcile(requests, decided)]


def test_text_is_compared_without_case_punctuation_or_spacing() -> None:
    assert normalised("  Not to CONTACT the victim,\tdirectly  or indirectly. ") == (
        "not to contact the victim directly or indirectly"
    )
    assert normalised("Ｎot to enter") == normalised("not to enter")  # full-width letters fold too


def test_a_condition_set_with_only_no_contact_leaves_the_exclusion_zone_not_addressed() -> None:
    decided = Decided((SetCondition("not to contact the victim, directly or indirectly."),), ())

    assert outcomes([NO_CONTACT, EXCLUSION], decided) == [
        ("e1:0", Outcome.SET, None),
        ("e1:1", Outcome.NOT_ADDRESSED, None),
    ]


def test_codes_decide_when_both_sides_have_one() -> None:
    same_code = Decided((SetCondition("Exclusion zone as mapped", "exz1"),), ())
    other_code = Decided((SetCondition("Not to enter Headingley, Leeds", "EXZ2"),), ())
    no_code = Decided((SetCondition("not to enter headingley leeds"),), ())

    assert outcomes([EXCLUSION], same_code) == [("e1:1", Outcome.SET, None)]
    assert outcomes([EXCLUSION], other_code) == [("e1:1", Outcome.NOT_ADDRESSED, None)]
    assert outcomes([EXCLUSION], no_code) == [("e1:1", Outcome.SET, None)]


def test_an_omission_counts_only_with_a_reason_and_a_set_condition_wins() -> None:
    decided = Decided(
        (SetCondition("Not to enter Headingley, Leeds"),),
        (
            Omission("not to contact the victim directly or indirectly!", "Already a court order"),
            Omission("Not to enter Headingley, Leeds", "Covered elsewhere"),
        ),
    )
    blank = Decided((), (Omission(NO_CONTACT.text, "   "),))

    assert outcomes([NO_CONTACT, EXCLUSION], decided) == [
        ("e1:0", Outcome.OMITTED, "Already a court order"),
        ("e1:1", Outcome.SET, None),
    ]
    assert outcomes([NO_CONTACT], blank) == [("e1:0", Outcome.NOT_ADDRESSED, None)]


def condition(text: str, code: str | None = None) -> SimpleNamespace:
    return SimpleNamespace(text=text, code=code)


def test_each_decision_event_gives_the_conditions_it_sets() -> None:
    varied = SimpleNamespace(
        added=[condition("a")],
        varied=[condition("b", "B")],
        removed=[condition("c")],
        omitted_requested_conditions=[SimpleNamespace(text="d", reason="no")],
    )
    assert decided_by("LicenceVaried", varied) == Decided(
        (SetCondition("a"), SetCondition("b", "B")), (Omission("d", "no"),)
    )
    tribunal = SimpleNamespace(outcome="conditional_discharge", conditions=[condition("e")])
    assert decided_by("TribunalDecisionIssued", tribunal) == Decided((SetCondition("e"),), ())


@pytest.mark.parametrize(
    ("event_type", "outcome"),
    [
        ("ParoleDecisionIssued", "no_release"),
        ("ParoleDecisionIssued", "open_conditions_recommended"),
        ("TribunalDecisionIssued", "no_discharge"),
        ("PrisonerReleased", None),
    ],
)
def test_a_decision_that_sets_no_licence_reconciles_nothing(event_type: str, outcome: str | None) -> None:
    event = SimpleNamespace(
        outcome=outcome, licence_conditions=[], conditions=[], omitted_requested_conditions=[]
    )
    assert decided_by(event_type, event) is None


def test_a_victims_notification_lists_their_outcomes_and_the_escalation_names_what_was_missed() -> None:
    said = NotificationContent("Licence conditions were set.", {"a": "b"})
    listed = (RequestOutcome("x", "set"), RequestOutcome("y", "not_addressed"))

    told = with_outcomes(said, listed)
    assert told.request_outcomes == listed and told.facts == {"a": "b"}
    assert (
        told.summary == "Licence conditions were set. 2 requested condition(s) reconciled; 1 not addressed."
    )
    assert with_outcomes(said, ()) is said

    escalation = unaddressed_escalation(["Not to enter Headingley, Leeds"], "LicenceConditionsSet")
    assert '"Not to enter Headingley, Leeds"' in escalation.summary
    assert escalation.summary.startswith("The licence decision neither set nor gave a reason")
    assert escalation.request_outcomes == (RequestOutcome("Not to enter Headingley, Leeds", "not_addressed"),)
