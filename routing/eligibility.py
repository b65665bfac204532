"""Victim Contact Scheme eligibility (docs/domain.md section 3).

Decides whether a sentence makes a case statutory, lets a unit open a non-statutory case as
discretionary, and re-runs the test when an appeal changes the sentence. Every result carries the
rule that decided it and a sentence a VLO can read, so nobody has to reverse-engineer why a case is
in or out of the scheme.
"""

from dataclasses import dataclass
from enum import StrEnum

__all__ = [
    "Classification",
    "Disposal",
    "Eligibility",
    "EligibilityStatus",
    "Offence",
    "Reassessment",
    "Sentence",
    "assess",
    "open_discretionary",
    "reassess_on_appeal",
]


class Classification(StrEnum):
    VIOLENT = "violent"
    SEXUAL = "sexual"
    TERRORISM = "terrorism"
    OTHER = "other"


class Disposal(StrEnum):
    CUSTODY = "custody"
    DETENTION = "detention"
    DTO = "dto"
    LIFE = "life"
    IPP = "ipp"
    HMP = "hmp"  # detention at His Majesty's pleasure
    HOSPITAL_ORDER = "hospital_order"
    HOSPITAL_ORDER_RESTRICTED = "hospital_order_restricted"
    HOSPITAL_LIMITATION_DIRECTION = "hospital_limitation_direction"
    COMMUNITY = "community"
    SUSPENDED = "suspended"
    FINE = "fine"
    DISCHARGE = "discharge"
    OTHER = "other"


class EligibilityStatus(StrEnum):
    STATUTORY = "statutory"
    NOT_ELIGIBLE = "not_eligible"
    DISCRETIONARY = "discretionary"


QUALIFYING_CLASSIFICATIONS = frozenset(
    {Classification.VIOLENT, Classification.SEXUAL, Classification.TERRORISM}
)
CUSTODIAL_DISPOSALS = frozenset({Disposal.CUSTODY, Disposal.DETENTION, Disposal.DTO})
INDETERMINATE_DISPOSALS = frozenset({Disposal.LIFE, Disposal.IPP, Disposal.HMP})
HOSPITAL_DISPOSALS = frozenset(
    {
        Disposal.HOSPITAL_ORDER,
        Disposal.HOSPITAL_ORDER_RESTRICTED,
        Disposal.HOSPITAL_LIMITATION_DIRECTION,
    }
)
STATUTORY_MINIMUM_MONTHS = 12
_FIXED_TERM_DISPOSALS = CUSTODIAL_DISPOSALS | {Disposal.SUSPENDED}

# Rule ids are stored with the case and shown to operators: treat them as a contract.
RULE_CUSTODIAL_12_MONTHS_OR_MORE = "custodial_12_months_or_more"
RULE_INDETERMINATE_SENTENCE = "indeterminate_sentence"
RULE_HOSPITAL_DISPOSAL = "hospital_disposal"
RULE_NO_QUALIFYING_OFFENCE = "no_qualifying_offence"
RULE_CUSTODIAL_UNDER_12_MONTHS = "custodial_under_12_months"
RULE_CUSTODIAL_TERM_MISSING = "custodial_term_missing"
RULE_NON_CUSTODIAL_DISPOSAL = "non_custodial_disposal"
RULE_DISCRETIONARY_OPENED_BY_UNIT = "discretionary_opened_by_unit"

_DISPOSAL_WORDS: dict[Disposal, str] = {
    Disposal.CUSTODY: "custody",
    Disposal.DETENTION: "detention",
    Disposal.DTO: "a detention and training order",
    Disposal.LIFE: "a life sentence",
    Disposal.IPP: "imprisonment for public protection",
    Disposal.HMP: "detention at His Majesty's pleasure",
    Disposal.HOSPITAL_ORDER: "a hospital order",
    Disposal.HOSPITAL_ORDER_RESTRICTED: "a hospital order with restrictions",
    Disposal.HOSPITAL_LIMITATION_DIRECTION: "a hospital and limitation direction",
    Disposal.COMMUNITY: "a community order",
    Disposal.SUSPENDED: "a suspended sentence",
    Disposal.FINE: "a fine",
    Disposal.DISCHARGE: "a discharge",
    Disposal.OTHER: "another disposal",
}


@dataclass(frozen=True)
class Offence:
    code: str
    classification: Classification
    description: str = ""


@dataclass(frozen=True)
class Sentence:
    disposal: Disposal
    custodial_term_months: int | None
    offences: tuple[Offence, ...]
    youth: bool = False

    def __post_init__(self) -> None:
        # A negative term is a data error upstream; letting it through would read as "under 12 months".
        if self.custodial_term_months is not None and self.custodial_term_months < 0:
            raise ValueError(f"custodial_term_months must be >= 0, got {self.custodial_term_months}")


@dataclass(frozen=True)
class Eligibility:
    status: EligibilityStatus
    rule: str
    basis: str
    offence_code: str | None

    @property
    def eligible(self) -> bool:
        # Discretionary cases get exactly the same service as statutory ones.
        return self.status in (EligibilityStatus.STATUTORY, EligibilityStatus.DISCRETIONARY)


@dataclass(frozen=True)
class Reassessment:
    eligibility: Eligibility
    needs_unit_decision: bool
    reason: str


def assess(sentence: Sentence) -> Eligibility:
    """Apply the statutory test to one sentence; never returns DISCRETIONARY."""
    offence = _first_qualifying_offence(sentence.offences)
    disposal = _describe_disposal(sentence)
    if offence is None:
        return Eligibility(
            status=EligibilityStatus.NOT_ELIGIBLE,
            rule=RULE_NO_QUALIFYING_OFFENCE,
            basis=(
                f"No violent, sexual or terrorism offence ({_list_offences(sentence.offences)}) "
                f"with {disposal}: not statutory."
            ),
            offence_code=None,
        )

    status, rule, outcome = _disposal_test(sentence)
    return Eligibility(
        status=status,
        rule=rule,
        basis=f"Offence {offence.code} ({offence.classification}) with {disposal}: {outcome}.",
        offence_code=offence.code,
    )


def open_discretionary(previous: Eligibility, unit_code: str, reason: str) -> Eligibility:
    """Record a unit's decision to take a non-statutory case into the scheme.

    A statutory case is returned unchanged: statutory is the stronger footing and must not be
    downgraded by a unit's action. An already discretionary case is also returned unchanged so a
    redelivered DiscretionaryCaseOpened is harmless.
    """
    if not unit_code.strip():
        raise ValueError("unit_code is required to open a discretionary case")
    if previous.status != EligibilityStatus.NOT_ELIGIBLE:
        return previous
    why = reason.strip().rstrip(".") or "no reason given"
    return Eligibility(
        status=EligibilityStatus.DISCRETIONARY,
        rule=RULE_DISCRETIONARY_OPENED_BY_UNIT,
        basis=(
            f"Opened as discretionary by unit {unit_code.strip()} ({why}); "
            f"statutory test not met: {previous.basis}"
        ),
        offence_code=previous.offence_code,
    )


def reassess_on_appeal(previous: Eligibility, new_sentence: Sentence, victims_in_scheme: int) -> Reassessment:
    """Re-run the test after an appeal varies the sentence.

    A case that drops out of the statutory test while victims are in the scheme keeps its previous
    eligibility and is flagged for the unit: the scheme must never silently lose a victim.
    """
    if victims_in_scheme < 0:
        raise ValueError(f"victims_in_scheme must be >= 0, got {victims_in_scheme}")
    new = assess(new_sentence)

    if new.status == EligibilityStatus.STATUTORY:
        return Reassessment(
            eligibility=new,
            needs_unit_decision=False,
            reason=f"Sentence on appeal meets the statutory test: {new.basis}",
        )

    if previous.status == EligibilityStatus.DISCRETIONARY:
        # The unit opened the case knowing it was outside the statutory test; a shorter
        # sentence does not undo that decision.
        return Reassessment(
            eligibility=previous,
            needs_unit_decision=False,
            reason=(
                "Sentence on appeal does not meet the statutory test; the case stays "
                f"discretionary as opened by the unit: {new.basis}"
            ),
        )

    if previous.status == EligibilityStatus.STATUTORY and victims_in_scheme > 0:
        victims = "1 victim is" if victims_in_scheme == 1 else f"{victims_in_scheme} victims are"
        return Reassessment(
            eligibility=previous,
            needs_unit_decision=True,
            reason=(
                f"Sentence on appeal no longer meets the statutory test and {victims} in the "
                "scheme, so the case stays open until the unit decides whether to continue it "
                f"as discretionary: {new.basis}"
            ),
        )

    if previous.status == EligibilityStatus.STATUTORY:
        return Reassessment(
            eligibility=new,
            needs_unit_decision=False,
            reason=(
                "Sentence on appeal no longer meets the statutory test and no victim is in the "
                f"scheme: {new.basis}"
            ),
        )

    return Reassessment(
        eligibility=new,
        needs_unit_decision=False,
        reason=f"Sentence on appeal still does not meet the statutory test: {new.basis}",
    )


def _first_qualifying_offence(offences: tuple[Offence, ...]) -> Offence | None:
    # The first qualifying offence in court order names the case; any one is enough to qualify.
    return next((o for o in offences if o.classification in QUALIFYING_CLASSIFICATIONS), None)


def _disposal_test(sentence: Sentence) -> tuple[EligibilityStatus, str, str]:
    """The disposal half of the test, for a sentence that has a qualifying offence."""
    disposal, term = sentence.disposal, sentence.custodial_term_months
    if disposal in INDETERMINATE_DISPOSALS:
        return (
            EligibilityStatus.STATUTORY,
            RULE_INDETERMINATE_SENTENCE,
            "indeterminate sentence, no length test",
        )
    if disposal in HOSPITAL_DISPOSALS:
        return EligibilityStatus.STATUTORY, RULE_HOSPITAL_DISPOSAL, "hospital disposal, no length test"
    if disposal in CUSTODIAL_DISPOSALS:
        if term is None:
            # Not guessed either way: the missing term is named so a VLO can chase the court.
            return (
                EligibilityStatus.NOT_ELIGIBLE,
                RULE_CUSTODIAL_TERM_MISSING,
                "not statutory by length",
            )
        if term >= STATUTORY_MINIMUM_MONTHS:
            return (
                EligibilityStatus.STATUTORY,
                RULE_CUSTODIAL_12_MONTHS_OR_MORE,
                "12 months or more",
            )
        return EligibilityStatus.NOT_ELIGIBLE, RULE_CUSTODIAL_UNDER_12_MONTHS, "under 12 months"
    return (
        EligibilityStatus.NOT_ELIGIBLE,
        RULE_NON_CUSTODIAL_DISPOSAL,
        "not a custodial, indeterminate or hospital disposal",
    )


def _describe_disposal(sentence: Sentence) -> str:
    words = _DISPOSAL_WORDS[sentence.disposal]
    term = sentence.custodial_term_months
    if term is not None:
        months = "1 month" if term == 1 else f"{term} months"
        # "a life sentence of 180 months" would misstate an indeterminate sentence.
        fixed = sentence.disposal in _FIXED_TERM_DISPOSALS
        words += f" of {months}" if fixed else f" with a recorded term of {months}"
    elif sentence.disposal in CUSTODIAL_DISPOSALS:
        words += ", no term recorded"
    if sentence.youth:
        words += " (youth case)"
    return words


def _list_offences(offences: tuple[Offence, ...]) -> str:
    if not offences:
        return "no offence recorded"
    return ", ".join(f"{o.code} ({o.classification})" for o in offences)
