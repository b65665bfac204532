"""The courts' events (schemas/court/): a sentence opens the case and runs the statutory test; appeals."""

from __future__ import annotations

import logging

from hub.pipeline.handlers.common import CommonHandlers, Effects, of_type, required, subject_keys
from hub.pipeline.ingest import IngestedEvent
from hub.store.records import Case
from routing import content, eligibility
from routing.decisions import Kind
from routing.timers import TimerKind, end_of_day, referral_due
from schemas.events import AppealDetermined, AppealLodged, SentenceImposed

log = logging.getLogger(__name__)


def _sentence_of(
    disposal: str, term: int | None, offences: tuple[eligibility.Offence, ...], youth: bool
) -> eligibility.Sentence:
    return eligibility.Sentence(eligibility.Disposal(disposal), term, offences, youth)


class CourtHandlers(CommonHandlers):
    """SentenceImposed, AppealLodged, AppealDetermined."""

    # ---- court
    def sentence_imposed(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, SentenceImposed)
        case_ref = required(event.envelope.subject.case_ref, "envelope.subject.case_ref")
        keys = subject_keys(event) + [
            (kind, value) for kind in ("pnc", "cro") if (value := getattr(event.offender, kind)) is not None
        ]
        keys = [key for key in keys if key[0] != "case_ref"] + [("case_ref", case_ref)]
        offences = tuple(
            eligibility.Offence(o.code, eligibility.Classification(o.classification), o.description)
            for o in event.offences
        )
        result = eligibility.assess(
            _sentence_of(event.disposal, event.custodial_term_months, offences, event.youth)
        )
        case = self.store.case_by_ref(case_ref)
        if case is None:
            offender = self._one_offender(ingested.event_type, keys) or self.store.new_offender()
            case = Case(
                case_ref=case_ref,
                offender=offender,
                opened_at=self.now,
                owning_unit_code=self.units.unit_for_court(event.court_code).code,
            )
            self.store.add_case(case)
        elif case.eligibility_status == "discretionary" and not result.eligible:
            result = eligibility.open_discretionary(result, case.owning_unit_code, "kept open by the unit")
        case.court_code = event.court_code
        case.sentence_date = event.sentence_date
        case.youth = event.youth
        case.offences = [
            {"code": o.code, "description": o.description, "classification": o.classification}
            for o in event.offences
        ]
        case.eligibility_status = result.status.value
        case.eligibility_rule = result.rule
        case.eligibility_basis = result.basis
        # Debug, not info: a line per sentence is a noticeable share of the applying thread's time, and the case
        # store keeps the outcome (cases.eligibility_status, eligibility_rule).
        log.debug("case %s: %s (%s)", case.case_ref, result.status.value, result.rule)
        effects = Effects(new_keys=self.store.link(case.offender, keys))
        self._scheme_may_change(case)
        if case.eligible:
            if not case.victims:
                self._start_timer(
                    TimerKind.REFERRAL_OVERDUE, case, None, end_of_day(referral_due(event.sentence_date))
                )
            if case.victims:  # the victims are told; the unit hears of a sentence through the referral timer
                said = content.sentence_imposed(event)
                effects.notifications.extend(
                    n for n in self._notify_case(ingested, case, said) if n.person_ref
                )
        return effects

    def appeal_lodged(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, AppealLodged)
        case = self._case(event)
        if not case.notifiable:
            return Effects()
        return Effects(notifications=self._notify_case(ingested, case, content.appeal_lodged(event)))

    def appeal_determined(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, AppealDetermined)
        case = self._case(event)
        effects = Effects()
        if event.outcome == "sentence_varied" and event.new_disposal:
            previous = eligibility.Eligibility(
                eligibility.EligibilityStatus(case.eligibility_status),
                case.eligibility_rule,
                case.eligibility_basis,
                None,
            )
            # A sentence appeal changes the disposal, not the offences: re-run the test on the stored offences.
            offences = tuple(
                eligibility.Offence(
                    o["code"], eligibility.Classification(o["classification"]), o["description"]
                )
                for o in case.offences or []
            )
            new = _sentence_of(event.new_disposal, event.new_custodial_term_months, offences, case.youth)
            in_scheme = sum(1 for v in case.victims if not (v.opted_out or v.declined))
            reassessment = eligibility.reassess_on_appeal(previous, new, in_scheme)
            case.eligibility_status = reassessment.eligibility.status.value
            case.eligibility_rule = reassessment.eligibility.rule
            case.eligibility_basis = reassessment.eligibility.basis
            self._scheme_may_change(case)
            if reassessment.needs_unit_decision:
                case.needs_unit_decision = True
                decision_needed = content.NotificationContent(
                    "The appeal changed the sentence so that the case no longer meets the statutory test. The "
                    f"victims stay in the scheme until the unit decides: {reassessment.reason}",
                    {"new_disposal": event.new_disposal},
                )
                effects.notifications.extend(
                    self._notify_case(ingested, case, decision_needed, kind=Kind.TASK)
                )
        if case.notifiable or case.needs_unit_decision:
            effects.notifications.extend(self._notify_case(ingested, case, content.appeal_determined(event)))
        # An appeal that brings the case into the scheme offers it to victims already referred.
        effects.notifications.extend(self._offer_first_contact(ingested, case))
        return effects
