"""What a notification may say: only facts the victim is entitled to (docs/domain.md sections 5.7 and 7).

Each builder reads a few named fields of one event and nothing else, so an offender's location (prison,
hospital, release or curfew address), a clinical field or another victim's details cannot reach a
notification by accident: there is no code path that copies them. A builder returns None when the event is
not notifiable on its facts (a closed-to-closed transfer, for example).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from routing.calendar import calendar_days_after, calendar_days_before

PERSONAL_STATEMENT_DAYS_BEFORE_HEARING = 28
RECONSIDERATION_WINDOW_DAYS = 21


@dataclass(frozen=True)
class OmittedRequest:
    text: str
    reason: str


@dataclass(frozen=True)
class RequestOutcome:
    """What a decision did with one condition the victim asked for (docs/domain.md section 8.2)."""

    text: str
    outcome: str  # set, omitted, not_addressed
    reason: str | None = None  # an omitted request's reason


@dataclass(frozen=True)
class NotificationContent:
    summary: str  # plain English, no location
    facts: dict[str, str] = field(default_factory=dict)
    victim_conditions: tuple[str, ...] = ()
    omitted_requests: tuple[OmittedRequest, ...] = ()
    due_by: date | None = None
    request_outcomes: tuple[RequestOutcome, ...] = ()  # one victim's own requests only


def long_date(day: date | datetime) -> str:
    return f"{day.day} {day:%B %Y}"


def _iso(value: date | datetime) -> str:
    return value.isoformat()


def _facts(**values: Any) -> dict[str, str]:
    return {
        name: _iso(value) if isinstance(value, (date, datetime)) else str(value)
        for name, value in values.items()
        if value is not None
    }


def victim_conditions(conditions: Iterable[Any]) -> tuple[str, ...]:
    """Only conditions that protect a victim are shown, worded as the licence states them."""
    return tuple(c.text for c in conditions if c.victim_related)


def omitted(requests: Iterable[Any]) -> tuple[OmittedRequest, ...]:
    """Every condition the victim asked for that was not imposed, with the reason given."""
    return tuple(OmittedRequest(r.text, r.reason) for r in requests)


def _words(value: str) -> str:
    return value.replace("_", " ")


def _conditions_sentence(shown: tuple[str, ...]) -> str:
    return f" {len(shown)} condition(s) protect the victim." if shown else ""


OPEN_CATEGORIES = frozenset({"d", "open", "yoi open", "category d", "female open", "open conditions"})


def is_open(category_or_conditions: str | None) -> bool:
    """Open conditions: category D for adult men, 'open' for women and young offenders."""
    return (category_or_conditions or "").strip().lower() in OPEN_CATEGORIES


# court
def sentence_imposed(e: Any) -> NotificationContent:
    term = f" of {e.custodial_term_months} months" if e.custodial_term_months else ""
    return NotificationContent(
        f"The offender was sentenced on {long_date(e.sentence_date)}: {_words(e.disposal)}{term}.",
        _facts(
            sentence_date=e.sentence_date, disposal=e.disposal, custodial_term_months=e.custodial_term_months
        ),
    )


def appeal_lodged(e: Any) -> NotificationContent:
    return NotificationContent(
        f"The offender has lodged an appeal against the {e.appeal_type}.", _facts(appeal_type=e.appeal_type)
    )


def appeal_determined(e: Any) -> NotificationContent:
    new = ""
    if e.outcome == "sentence_varied" and getattr(e, "new_disposal", None):
        term = (
            f" of {e.new_custodial_term_months} months"
            if getattr(e, "new_custodial_term_months", None)
            else ""
        )
        new = f" The new sentence is {_words(e.new_disposal)}{term}."
    return NotificationContent(
        f"The appeal was decided: {_words(e.outcome)}.{new}",
        _facts(
            outcome=e.outcome,
            new_disposal=getattr(e, "new_disposal", None),
            new_custodial_term_months=getattr(e, "new_custodial_term_months", None),
        ),
    )


# prison
def prisoner_recategorised(e: Any) -> NotificationContent | None:
    if is_open(e.from_category) == is_open(e.to_category):
        return None  # only moves to or from open conditions are notifiable
    direction = "to open conditions" if is_open(e.to_category) else "from open to closed conditions"
    return NotificationContent(
        f"The offender has been recategorised {direction}, effective {long_date(e.effective_date)}.",
        _facts(conditions="open" if is_open(e.to_category) else "closed", effective_date=e.effective_date),
    )


def prisoner_transferred(e: Any) -> NotificationContent | None:
    if is_open(e.from_conditions) == is_open(e.to_conditions):
        return None  # closed to closed (or open to open) is not notifiable; prisons are never named
    to_open = is_open(e.to_conditions)
    return NotificationContent(
        f"The offender has moved {'to open' if to_open else 'from open to closed'} conditions.",
        _facts(conditions="open" if to_open else "closed"),
    )


def temporary_release_decided(e: Any) -> NotificationContent:
    shown = victim_conditions(e.conditions)
    when = f", first release on {long_date(e.first_release_date)}" if e.first_release_date else ""
    return NotificationContent(
        f"Release on temporary licence was {e.decision}{when}.{_conditions_sentence(shown)}",
        _facts(decision=e.decision, first_release_date=e.first_release_date),
        victim_conditions=shown,
    )


def temporary_release_failed_to_return(e: Any) -> NotificationContent:
    return NotificationContent(
        "The offender failed to return from temporary release when due. Review the victim's safety now.",
        _facts(due_back_at=e.due_back_at),
    )


def home_detention_curfew_decided(e: Any) -> NotificationContent:
    shown = victim_conditions(e.conditions)
    when = f", release on {long_date(e.release_date)}" if e.release_date else ""
    return NotificationContent(
        f"Release on home detention curfew was {e.decision}{when}.{_conditions_sentence(shown)}",
        _facts(decision=e.decision, release_date=e.release_date),
        victim_conditions=shown,
    )


def compassionate_release_decided(e: Any) -> NotificationContent:
    when = f", release on {long_date(e.release_date)}" if e.release_date else ""
    return NotificationContent(
        f"Compassionate release was {e.decision}{when}.",
        _facts(decision=e.decision, release_date=e.release_date),
    )


def release_dates_calculated(e: Any) -> NotificationContent:
    expected = expected_release(e)
    summary = "The offender's release dates were calculated."
    if expected:
        summary += f" The expected release is in {expected:%B %Y}."
    return NotificationContent(
        summary,
        _facts(
            expected_release_month=f"{expected:%Y-%m}" if expected else None,
            conditional_release_date=e.conditional_release_date,
            parole_eligibility_date=e.parole_eligibility_date,
            hdc_eligibility_date=e.hdc_eligibility_date,
            licence_expiry_date=e.licence_expiry_date,
            sentence_expiry_date=e.sentence_expiry_date,
            tariff_expiry_date=e.tariff_expiry_date,
        ),
    )


def expected_release(e: Any) -> date | None:
    """The earliest date the offender is expected out: automatic release, else parole or tariff eligibility."""
    expected: date | None = e.conditional_release_date or e.parole_eligibility_date or e.tariff_expiry_date
    return expected


RELEASE_TYPE_WORDS = {
    "automatic": "automatic release",
    "parole": "release on parole",
    "hdc": "release on home detention curfew",
    "compassionate": "compassionate release",
    "end_of_sentence": "release at the end of the sentence",
    "on_appeal": "release following an appeal",
    "other": "release",
}


def prisoner_released(e: Any) -> NotificationContent:
    shown = victim_conditions(e.licence_conditions)
    return NotificationContent(
        f"The offender was released from custody on {long_date(e.release_date)} "
        f"({RELEASE_TYPE_WORDS.get(e.release_type, 'release')}).{_conditions_sentence(shown)}",
        _facts(release_date=e.release_date, release_type=e.release_type),
        victim_conditions=shown,
    )


def prisoner_escaped(e: Any) -> NotificationContent:
    return NotificationContent(
        "The offender has escaped from custody. Review the victim's safety now.",
        _facts(escaped_at=e.escaped_at),
    )


def prisoner_died(e: Any) -> NotificationContent:
    return NotificationContent(
        f"The offender died on {long_date(e.date_of_death)}. The case closes.",
        _facts(date_of_death=e.date_of_death),
    )


# probation
def licence_conditions_set(e: Any) -> NotificationContent:
    shown = victim_conditions(e.conditions)
    left_out = omitted(e.omitted_requested_conditions)
    summary = "Licence conditions were set." + _conditions_sentence(shown)
    if left_out:
        summary += (
            f" {len(left_out)} condition(s) the victim asked for were not included; the reasons are given."
        )
    return NotificationContent(summary, victim_conditions=shown, omitted_requests=left_out)


def licence_varied(e: Any) -> NotificationContent:
    added, removed, varied = (
        victim_conditions(e.added),
        victim_conditions(e.removed),
        victim_conditions(e.varied),
    )
    left_out = omitted(e.omitted_requested_conditions)
    asked = (
        f" {len(left_out)} condition(s) the victim asked for were not included; the reasons are given."
        if left_out
        else ""
    )
    parts = [
        f"{len(x)} {word}" for x, word in ((added, "added"), (removed, "removed"), (varied, "varied")) if x
    ]
    changed = (
        f"victim-related conditions {', '.join(parts)}"
        if parts
        else "no condition that protects the victim changed"
    )
    return NotificationContent(
        f"The licence was varied: {changed}.{asked}",
        _facts(**{f"removed_{i + 1}": text for i, text in enumerate(removed)}),
        victim_conditions=added + varied,
        omitted_requests=left_out,
    )


def offender_recalled(e: Any) -> NotificationContent:
    return NotificationContent(
        f"The offender was recalled to custody ({_words(e.recall_type)} recall) on {long_date(e.recall_date)}. "
        "Review the victim's safety now.",
        _facts(recall_type=e.recall_type, recall_date=e.recall_date),
    )


def mappa_management_changed(e: Any) -> NotificationContent:
    return NotificationContent(
        f"MAPPA management changed to level {e.level}.", _facts(level=e.level, mappa_category=e.category)
    )


def serious_further_offence_charged(e: Any) -> NotificationContent:
    return NotificationContent(
        "The offender has been charged with a serious further offence. Review the victim's safety now.",
        _facts(charge_date=e.charge_date),
    )


def approved_premises_absconded(e: Any) -> NotificationContent:
    return NotificationContent(
        "The offender has absconded from approved premises. Review the victim's safety now.",
        _facts(absconded_at=e.absconded_at),
    )


def licence_ended(e: Any) -> NotificationContent:
    return NotificationContent(
        f"The licence ended on {long_date(e.end_date)}; victim-related conditions end with it.",
        _facts(end_date=e.end_date),
    )


# Parole Board
def parole_review_started(e: Any) -> NotificationContent:
    return NotificationContent(
        "A parole review has started. The victim may make a victim personal statement.",
        _facts(review_type=getattr(e, "review_type", None)),
    )


def parole_hearing_listed(e: Any) -> NotificationContent:
    due = personal_statement_due(e.hearing_date)
    return NotificationContent(
        f"A parole hearing ({e.hearing_type}) is listed for {long_date(e.hearing_date)}. "
        f"Any victim personal statement is due by {long_date(due)}.",
        _facts(hearing_date=e.hearing_date, hearing_type=e.hearing_type, personal_statement_due=due),
        due_by=due,
    )


def personal_statement_due(hearing_date: date) -> date:
    return calendar_days_before(hearing_date, PERSONAL_STATEMENT_DAYS_BEFORE_HEARING)


def parole_hearing_deferred(e: Any) -> NotificationContent:
    new = f" to {long_date(e.new_hearing_date)}" if e.new_hearing_date else ""
    return NotificationContent(
        f"The parole hearing was deferred{new}.", _facts(new_hearing_date=e.new_hearing_date, reason=e.reason)
    )


def reconsideration_deadline(decision_date: date) -> date:
    return calendar_days_after(decision_date, RECONSIDERATION_WINDOW_DAYS)


def parole_decision_issued(e: Any) -> NotificationContent:
    shown = victim_conditions(e.licence_conditions)
    left_out = omitted(e.omitted_requested_conditions)
    provisional_release = e.provisional and e.outcome == "release"
    deadline = reconsideration_deadline(e.decision_date) if provisional_release else None
    summary = (
        f"The Parole Board decided: {_words(e.outcome)} ({'provisional' if e.provisional else 'final'})."
    )
    if deadline:
        summary += (
            f" The decision can be challenged by reconsideration until {long_date(deadline)}; tell the victim"
            " about the window and its end."
        )
    summary += _conditions_sentence(shown)
    return NotificationContent(
        summary,
        _facts(
            outcome=e.outcome,
            decision_date=e.decision_date,
            provisional=str(e.provisional).lower(),
            reconsideration_deadline=deadline,
            next_review_date=getattr(e, "next_review_date", None),
        ),
        victim_conditions=shown,
        omitted_requests=left_out,
        due_by=deadline,
    )


def reconsideration_decided(e: Any) -> NotificationContent:
    return NotificationContent(
        f"The application for reconsideration of the parole decision was {e.outcome}.",
        _facts(outcome=e.outcome),
    )


# hospital casework: never the hospital, never a clinical field
def patient_transferred_to_hospital(e: Any) -> NotificationContent:
    kind = "a restricted patient" if e.restricted else "a patient"
    return NotificationContent(
        f"The offender has been transferred to hospital as {kind}.",
        _facts(restricted=str(e.restricted).lower()),
    )


def restricted_patient_decision(e: Any) -> NotificationContent:
    shown = victim_conditions(e.conditions)
    return NotificationContent(
        f"A decision was made about the restricted patient: {_words(e.decision)}.{_conditions_sentence(shown)}",
        _facts(decision=e.decision),
        victim_conditions=shown,
    )


def tribunal_hearing_listed(e: Any) -> NotificationContent:
    return NotificationContent(
        f"A tribunal hearing is listed for {long_date(e.hearing_date)}. The victim may make representations about"
        " conditions of discharge.",
        _facts(hearing_date=e.hearing_date, tribunal=e.tribunal),
    )


def tribunal_decision_issued(e: Any) -> NotificationContent:
    shown = victim_conditions(e.conditions)
    return NotificationContent(
        f"The tribunal decided: {_words(e.outcome)}.{_conditions_sentence(shown)}",
        _facts(outcome=e.outcome, effective_date=e.effective_date),
        victim_conditions=shown,
    )


def patient_recalled_to_hospital(e: Any) -> NotificationContent:
    return NotificationContent(
        "The offender has been recalled to hospital. Review the victim's safety now.",
        _facts(recalled_at=e.recalled_at),
    )


def patient_absconded(e: Any) -> NotificationContent:
    return NotificationContent(
        "The offender has absconded from hospital. Review the victim's safety now.",
        _facts(absconded_at=e.absconded_at),
    )


# Home Office
def deportation_decided(e: Any) -> NotificationContent:
    return NotificationContent(
        f"The Home Office made a deportation decision: {_words(e.decision)}.", _facts(decision=e.decision)
    )


def offender_removed_from_uk(e: Any) -> NotificationContent:
    return NotificationContent(
        f"The offender was removed from the United Kingdom on {long_date(e.removal_date)}.",
        _facts(removal_date=e.removal_date),
    )


BUILDERS: dict[str, Callable[[Any], NotificationContent | None]] = {
    "SentenceImposed": sentence_imposed,
    "AppealLodged": appeal_lodged,
    "AppealDetermined": appeal_determined,
    "PrisonerRecategorised": prisoner_recategorised,
    "PrisonerTransferred": prisoner_transferred,
    "TemporaryReleaseDecided": temporary_release_decided,
    "TemporaryReleaseFailedToReturn": temporary_release_failed_to_return,
    "HomeDetentionCurfewDecided": home_detention_curfew_decided,
    "CompassionateReleaseDecided": compassionate_release_decided,
    "ReleaseDatesCalculated": release_dates_calculated,
    "PrisonerReleased": prisoner_released,
    "PrisonerEscaped": prisoner_escaped,
    "PrisonerDied": prisoner_died,
    "LicenceConditionsSet": licence_conditions_set,
    "LicenceVaried": licence_varied,
    "OffenderRecalled": offender_recalled,
    "MappaManagementChanged": mappa_management_changed,
    "SeriousFurtherOffenceCharged": serious_further_offence_charged,
    "ApprovedPremisesAbsconded": approved_premises_absconded,
    "LicenceEnded": licence_ended,
    "ParoleReviewStarted": parole_review_started,
    "ParoleHearingListed": parole_hearing_listed,
    "ParoleHearingDeferred": parole_hearing_deferred,
    "ParoleDecisionIssued": parole_decision_issued,
    "ReconsiderationDecided": reconsideration_decided,
    "PatientTransferredToHospital": patient_transferred_to_hospital,
    "RestrictedPatientDecision": restricted_patient_decision,
    "TribunalHearingListed": tribunal_hearing_listed,
    "TribunalDecisionIssued": tribunal_decision_issued,
    "PatientRecalledToHospital": patient_recalled_to_hospital,
    "PatientAbsconded": patient_absconded,
    "DeportationDecided": deportation_decided,
    "OffenderRemovedFromUk": offender_removed_from_uk,
}


def content_for(event_type: str, event: Any) -> NotificationContent | None:
    """What to tell the VLO about an event; None when the event is not notifiable on its facts."""
    return BUILDERS[event_type](event)
