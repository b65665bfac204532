"""Eligibility rules from docs/domain.md section 3: statutory test, discretionary opening, appeals."""

import pytest

from routing.eligibility import (
    Classification,
    Disposal,
    Eligibility,
    EligibilityStatus,
    Offence,
    Sentence,
    assess,
    open_discretionary,
    reassess_on_appeal,
)

STATUTORY = EligibilityStatus.STATUTORY
NOT_ELIGIBLE = EligibilityStatus.NOT_ELIGIBLE
DISCRETIONARY = EligibilityStatus.DISCRETIONARY

VIOLENT = Offence("V101", Classification.VIOLENT, "wounding with intent")
SEXUAL = Offence("S123", Classification.SEXUAL, "sexual assault")
TERRORISM = Offence("T900", Classification.TERRORISM, "preparation of terrorist acts")
THEFT = Offence("O555", Classification.OTHER, "theft")
STALKING = Offence("O777", Classification.OTHER, "stalking")


def sentence(
    disposal: Disposal,
    term: int | None = None,
    *offences: Offence,
    youth: bool = False,
) -> Sentence:
    return Sentence(disposal, term, offences or (VIOLENT,), youth)


# --- every disposal, with a violent offence --------------------------------------------------

# Terms are chosen to sit on the "would qualify by length" side (24 months) so the table shows
# the disposal alone decides for non-custodial ones.
EVERY_DISPOSAL = [
    (Disposal.CUSTODY, 24, STATUTORY, "custodial_12_months_or_more"),
    (Disposal.DETENTION, 24, STATUTORY, "custodial_12_months_or_more"),
    (Disposal.DTO, 24, STATUTORY, "custodial_12_months_or_more"),
    (Disposal.LIFE, None, STATUTORY, "indeterminate_sentence"),
    (Disposal.IPP, None, STATUTORY, "indeterminate_sentence"),
    (Disposal.HMP, None, STATUTORY, "indeterminate_sentence"),
    (Disposal.HOSPITAL_ORDER, None, STATUTORY, "hospital_disposal"),
    (Disposal.HOSPITAL_ORDER_RESTRICTED, None, STATUTORY, "hospital_disposal"),
    (Disposal.HOSPITAL_LIMITATION_DIRECTION, None, STATUTORY, "hospital_disposal"),
    (Disposal.COMMUNITY, None, NOT_ELIGIBLE, "non_custodial_disposal"),
    (Disposal.SUSPENDED, 24, NOT_ELIGIBLE, "non_custodial_disposal"),
    (Disposal.FINE, None, NOT_ELIGIBLE, "non_custodial_disposal"),
    (Disposal.DISCHARGE, None, NOT_ELIGIBLE, "non_custodial_disposal"),
    (Disposal.OTHER, 24, NOT_ELIGIBLE, "non_custodial_disposal"),
]


def test_the_table_covers_every_disposal() -> None:
    assert {row[0] for row in EVERY_DISPOSAL} == set(Disposal)


@pytest.mark.parametrize(("disposal", "term", "status", "rule"), EVERY_DISPOSAL)
def test_every_disposal_with_a_violent_offence(
    disposal: Disposal, term: int | None, status: EligibilityStatus, rule: str
) -> None:
    result = assess(sentence(disposal, term, VIOLENT))

    assert (result.status, result.rule) == (status, rule)
    assert result.offence_code == "V101"
    assert "V101 (violent)" in result.basis
    assert result.eligible is (status == STATUTORY)


@pytest.mark.parametrize("disposal", list(Disposal))
def test_no_disposal_qualifies_without_a_qualifying_offence(disposal: Disposal) -> None:
    result = assess(sentence(disposal, 240, THEFT))

    assert result.status == NOT_ELIGIBLE
    assert result.rule == "no_qualifying_offence"
    assert result.offence_code is None


def test_disposal_values_are_the_lowercase_names() -> None:
    assert all(member.value == member.name.lower() for member in Disposal)


# --- the 12-month boundary --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("disposal", "term", "status", "rule"),
    [
        (Disposal.CUSTODY, 0, NOT_ELIGIBLE, "custodial_under_12_months"),
        (Disposal.CUSTODY, 11, NOT_ELIGIBLE, "custodial_under_12_months"),
        (Disposal.CUSTODY, 12, STATUTORY, "custodial_12_months_or_more"),  # inclusive
        (Disposal.CUSTODY, 13, STATUTORY, "custodial_12_months_or_more"),
        (Disposal.DETENTION, 11, NOT_ELIGIBLE, "custodial_under_12_months"),
        (Disposal.DETENTION, 12, STATUTORY, "custodial_12_months_or_more"),
        (Disposal.DETENTION, 13, STATUTORY, "custodial_12_months_or_more"),
        (Disposal.DTO, 11, NOT_ELIGIBLE, "custodial_under_12_months"),
        (Disposal.DTO, 12, STATUTORY, "custodial_12_months_or_more"),
        (Disposal.DTO, 13, STATUTORY, "custodial_12_months_or_more"),
    ],
)
def test_custodial_boundary_at_12_months(
    disposal: Disposal, term: int, status: EligibilityStatus, rule: str
) -> None:
    result = assess(sentence(disposal, term, SEXUAL))

    assert (result.status, result.rule) == (status, rule)


@pytest.mark.parametrize("disposal", [Disposal.CUSTODY, Disposal.DETENTION, Disposal.DTO])
def test_custodial_disposal_without_a_term_is_not_statutory_and_says_so(
    disposal: Disposal,
) -> None:
    result = assess(sentence(disposal, None, VIOLENT))

    assert result.status == NOT_ELIGIBLE
    assert result.rule == "custodial_term_missing"
    assert result.offence_code == "V101"
    assert "no term recorded" in result.basis


@pytest.mark.parametrize(
    ("disposal", "term"),
    [
        (Disposal.LIFE, 1),
        (Disposal.IPP, 6),
        (Disposal.HMP, 0),
        (Disposal.HOSPITAL_ORDER, 3),
        (Disposal.HOSPITAL_ORDER_RESTRICTED, 0),
        (Disposal.HOSPITAL_LIMITATION_DIRECTION, 11),
    ],
)
def test_indeterminate_and_hospital_disposals_have_no_length_test(disposal: Disposal, term: int) -> None:
    assert assess(sentence(disposal, term, TERRORISM)).status == STATUTORY


def test_negative_term_is_rejected() -> None:
    with pytest.raises(ValueError, match="custodial_term_months"):
        Sentence(Disposal.CUSTODY, -1, (VIOLENT,))


# --- classifications --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offence", "status"),
    [
        (VIOLENT, STATUTORY),
        (SEXUAL, STATUTORY),
        (TERRORISM, STATUTORY),
        (THEFT, NOT_ELIGIBLE),
    ],
)
def test_each_classification_with_18_months_custody(offence: Offence, status: EligibilityStatus) -> None:
    assert assess(sentence(Disposal.CUSTODY, 18, offence)).status == status


@pytest.mark.parametrize(
    ("offences", "expected_code"),
    [
        ((THEFT, SEXUAL), "S123"),
        ((SEXUAL, THEFT), "S123"),
        ((THEFT, STALKING, TERRORISM), "T900"),
        # Several qualify: the first in court order names the case.
        ((THEFT, VIOLENT, SEXUAL), "V101"),
    ],
)
def test_one_qualifying_offence_among_others_is_enough(
    offences: tuple[Offence, ...], expected_code: str
) -> None:
    result = assess(sentence(Disposal.CUSTODY, 12, *offences))

    assert result.status == STATUTORY
    assert result.offence_code == expected_code
    assert expected_code in result.basis


def test_only_other_offences_with_life_is_not_eligible() -> None:
    result = assess(sentence(Disposal.LIFE, None, THEFT, STALKING))

    assert result.status == NOT_ELIGIBLE
    assert result.rule == "no_qualifying_offence"
    assert result.offence_code is None
    assert "O555 (other)" in result.basis
    assert "O777 (other)" in result.basis


def test_no_offences_at_all_is_not_eligible() -> None:
    result = assess(Sentence(Disposal.CUSTODY, 48, ()))

    assert result.rule == "no_qualifying_offence"
    assert "no offence recorded" in result.basis


# --- the basis a VLO reads --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("given", "basis"),
    [
        (
            sentence(Disposal.CUSTODY, 18, SEXUAL),
            "Offence S123 (sexual) with custody of 18 months: 12 months or more.",
        ),
        (
            sentence(Disposal.CUSTODY, 11, THEFT, VIOLENT),
            "Offence V101 (violent) with custody of 11 months: under 12 months.",
        ),
        (
            sentence(Disposal.CUSTODY, None, VIOLENT),
            "Offence V101 (violent) with custody, no term recorded: not statutory by length.",
        ),
        (
            sentence(Disposal.HOSPITAL_ORDER, None, VIOLENT),
            "Offence V101 (violent) with a hospital order: hospital disposal, no length test.",
        ),
        (
            sentence(Disposal.LIFE, 180, TERRORISM),
            "Offence T900 (terrorism) with a life sentence with a recorded term of 180 months: "
            "indeterminate sentence, no length test.",
        ),
        (
            sentence(Disposal.DTO, 1, VIOLENT, youth=True),
            "Offence V101 (violent) with a detention and training order of 1 month (youth case): "
            "under 12 months.",
        ),
        (
            sentence(Disposal.SUSPENDED, 24, SEXUAL),
            "Offence S123 (sexual) with a suspended sentence of 24 months: "
            "not a custodial, indeterminate or hospital disposal.",
        ),
        (
            sentence(Disposal.CUSTODY, 36, THEFT),
            "No violent, sexual or terrorism offence (O555 (other)) with custody of 36 months: "
            "not statutory.",
        ),
    ],
)
def test_basis_is_one_plain_sentence(given: Sentence, basis: str) -> None:
    assert assess(given).basis == basis


# --- youth ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("disposal", "term", "status"),
    [
        (Disposal.DTO, 11, NOT_ELIGIBLE),
        (Disposal.DTO, 12, STATUTORY),
        (Disposal.DETENTION, 24, STATUTORY),
        (Disposal.HMP, None, STATUTORY),
        (Disposal.HOSPITAL_ORDER, None, STATUTORY),
        (Disposal.COMMUNITY, None, NOT_ELIGIBLE),
    ],
)
def test_youth_cases_follow_the_same_tests(
    disposal: Disposal, term: int | None, status: EligibilityStatus
) -> None:
    youth = assess(sentence(disposal, term, VIOLENT, youth=True))
    adult = assess(sentence(disposal, term, VIOLENT))

    assert youth.status == adult.status == status
    assert youth.rule == adult.rule
    assert "(youth case)" in youth.basis


# --- discretionary opening --------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        sentence(Disposal.CUSTODY, 6, STALKING),
        sentence(Disposal.CUSTODY, 8, VIOLENT),
        sentence(Disposal.SUSPENDED, 12, VIOLENT),
    ],
)
def test_unit_opens_a_non_statutory_case_as_discretionary(given: Sentence) -> None:
    previous = assess(given)

    opened = open_discretionary(previous, "N07", "domestic abuse, stalking")

    assert opened.status == DISCRETIONARY
    assert opened.eligible
    assert opened.rule == "discretionary_opened_by_unit"
    assert opened.offence_code == previous.offence_code
    assert "N07" in opened.basis
    assert "domestic abuse, stalking" in opened.basis
    # The statutory reason stays visible beside the unit's decision.
    assert previous.basis in opened.basis


def test_opening_a_statutory_case_keeps_it_statutory() -> None:
    previous = assess(sentence(Disposal.CUSTODY, 12, VIOLENT))

    assert open_discretionary(previous, "N07", "hate crime") == previous


def test_reopening_a_discretionary_case_changes_nothing() -> None:
    first = open_discretionary(assess(sentence(Disposal.FINE, None, STALKING)), "N07", "stalking")

    assert open_discretionary(first, "N09", "harassment") == first


def test_blank_reason_is_recorded_as_such() -> None:
    opened = open_discretionary(assess(sentence(Disposal.FINE, None, STALKING)), "N07", "  ")

    assert "no reason given" in opened.basis


def test_a_unit_code_is_required() -> None:
    with pytest.raises(ValueError, match="unit_code"):
        open_discretionary(assess(sentence(Disposal.FINE, None, STALKING)), " ", "stalking")


@pytest.mark.parametrize(
    ("status", "eligible"),
    [(STATUTORY, True), (DISCRETIONARY, True), (NOT_ELIGIBLE, False)],
)
def test_eligible_property(status: EligibilityStatus, eligible: bool) -> None:
    assert Eligibility(status, "rule", "basis.", None).eligible is eligible


# --- appeals ----------------------------------------------------------------------------------

STATUTORY_18_MONTHS = assess(sentence(Disposal.CUSTODY, 18, VIOLENT))
NOT_ELIGIBLE_6_MONTHS = assess(sentence(Disposal.CUSTODY, 6, VIOLENT))
DISCRETIONARY_6_MONTHS = open_discretionary(NOT_ELIGIBLE_6_MONTHS, "N07", "domestic abuse")


@pytest.mark.parametrize("victims", [1, 3])
def test_reduced_below_12_months_with_victims_goes_to_the_unit(victims: int) -> None:
    result = reassess_on_appeal(STATUTORY_18_MONTHS, sentence(Disposal.CUSTODY, 11), victims)

    assert result.needs_unit_decision
    assert result.eligibility == STATUTORY_18_MONTHS  # kept, not silently dropped
    assert "custody of 11 months: under 12 months" in result.reason
    assert "in the scheme" in result.reason


@pytest.mark.parametrize(
    "new_sentence",
    [
        sentence(Disposal.CUSTODY, 11),
        sentence(Disposal.SUSPENDED, 18),
        sentence(Disposal.COMMUNITY),
    ],
)
def test_reduced_with_no_victims_in_scheme_is_not_eligible(new_sentence: Sentence) -> None:
    result = reassess_on_appeal(STATUTORY_18_MONTHS, new_sentence, 0)

    assert result.eligibility == assess(new_sentence)
    assert result.eligibility.status == NOT_ELIGIBLE
    assert not result.needs_unit_decision
    assert "no victim is in the scheme" in result.reason


@pytest.mark.parametrize(
    ("new_sentence", "rule"),
    [
        (sentence(Disposal.CUSTODY, 12), "custodial_12_months_or_more"),
        (sentence(Disposal.LIFE), "indeterminate_sentence"),
        (sentence(Disposal.HOSPITAL_ORDER_RESTRICTED), "hospital_disposal"),
    ],
)
@pytest.mark.parametrize("previous", [NOT_ELIGIBLE_6_MONTHS, DISCRETIONARY_6_MONTHS])
def test_appeal_making_a_case_statutory(previous: Eligibility, new_sentence: Sentence, rule: str) -> None:
    result = reassess_on_appeal(previous, new_sentence, 1)

    assert result.eligibility.status == STATUTORY
    assert result.eligibility.rule == rule
    assert not result.needs_unit_decision


@pytest.mark.parametrize("victims", [0, 2])
def test_discretionary_case_stays_discretionary_after_a_non_statutory_appeal(
    victims: int,
) -> None:
    result = reassess_on_appeal(DISCRETIONARY_6_MONTHS, sentence(Disposal.SUSPENDED, 6), victims)

    assert result.eligibility == DISCRETIONARY_6_MONTHS
    assert not result.needs_unit_decision
    assert "discretionary" in result.reason


def test_statutory_case_stays_statutory_when_appeal_keeps_it_statutory() -> None:
    result = reassess_on_appeal(STATUTORY_18_MONTHS, sentence(Disposal.CUSTODY, 14), 2)

    assert result.eligibility == assess(sentence(Disposal.CUSTODY, 14))
    assert not result.needs_unit_decision


def test_not_eligible_case_stays_not_eligible() -> None:
    result = reassess_on_appeal(NOT_ELIGIBLE_6_MONTHS, sentence(Disposal.CUSTODY, 4), 0)

    assert result.eligibility.status == NOT_ELIGIBLE
    assert not result.needs_unit_decision


def test_youth_appeal_follows_the_same_rule() -> None:
    previous = assess(sentence(Disposal.DTO, 24, SEXUAL, youth=True))

    result = reassess_on_appeal(previous, sentence(Disposal.DTO, 8, SEXUAL, youth=True), 1)

    assert result.needs_unit_decision
    assert result.eligibility == previous


def test_negative_victim_count_is_rejected() -> None:
    with pytest.raises(ValueError, match="victims_in_scheme"):
        reassess_on_appeal(STATUTORY_18_MONTHS, sentence(Disposal.CUSTODY, 6), -1)
