"""Simulated events of the agencies that manage an offender beside or after custody: probation (licences, MAPPA,
recalls), the Parole Board, hospital casework for restricted patients, and the Home Office (deportation)."""

from __future__ import annotations

import random

from hub.tools.traffic.cases import SimulatedCase, weighted
from hub.tools.traffic.making import EventMaker, SimulatedEvent


class SupervisionEvents(EventMaker):
    """Follow-ups from probation, the Parole Board, hospital casework and the Home Office."""

    # probation
    def _offender_identifiers_linked(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._probation(
            case, "OffenderIdentifiersLinked", pnc=case.ids.pnc, linked_date=self._day(-rng.randint(0, 5))
        )

    def _licence_conditions_set(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._probation(
            case,
            "LicenceConditionsSet",
            conditions=self._conditions(rng, victim_related=rng.randint(1, 2)),
            omitted_requested_conditions=self._omitted(rng),
            effective_date=self._day(rng.randint(7, 60)),
            decision_maker="Governor, on behalf of the Secretary of State",
        )

    def _licence_varied(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
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

    def _offender_recalled(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._probation(
            case,
            "OffenderRecalled",
            recall_type=weighted(rng, (("standard", 60), ("fixed_term", 40))),
            recall_date=self._day(-rng.randint(0, 2)),
            unlawfully_at_large=rng.random() < 0.3,
        )

    def _mappa_management_changed(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._probation(
            case,
            "MappaManagementChanged",
            level=weighted(rng, ((1, 60), (2, 30), (3, 10))),
            category=weighted(rng, ((1, 30), (2, 60), (3, 10))),
            effective_date=self._day(-rng.randint(0, 10)),
        )

    def _serious_further_offence_charged(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._probation(
            case, "SeriousFurtherOffenceCharged", charge_date=self._day(-rng.randint(0, 2))
        )

    def _approved_premises_absconded(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._event(
            "probation",
            "ApprovedPremisesAbsconded",
            crn=case.ids.crn,
            noms_number=case.ids.noms_number,
            absconded_at=self._recent(rng),
            premises_code="AP-SIM-01",
        )

    def _licence_ended(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._probation(case, "LicenceEnded", end_date=self._day(-rng.randint(0, 3)))

    # Parole Board
    def _parole_review_started(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        review = (
            "indeterminate" if case.term_months is None else rng.choice(("determinate", "recall", "extended"))
        )
        return self._parole(
            case, "ParoleReviewStarted", review_type=review, start_date=self._day(-rng.randint(0, 7))
        )

    def _parole_hearing_listed(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._parole(
            case,
            "ParoleHearingListed",
            hearing_date=self._day(rng.randint(60, 180)),
            hearing_type=weighted(rng, (("oral", 70), ("paper", 30))),
        )

    def _parole_hearing_deferred(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._parole(
            case,
            "ParoleHearingDeferred",
            original_hearing_date=self._day(rng.randint(20, 60)),
            new_hearing_date=self._day(rng.randint(90, 200)) if rng.random() < 0.8 else None,
            reason=rng.choice(
                ("Psychology report not yet available", "Panel member unavailable", "Witness unavailable")
            ),
        )

    def _parole_decision_issued(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        outcome = weighted(
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

    def _reconsideration_decided(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._parole(
            case,
            "ReconsiderationDecided",
            outcome=weighted(rng, (("refused", 85), ("granted", 15))),
            decision_date=self._day(-rng.randint(0, 3)),
            applicant=weighted(rng, (("secretary_of_state", 70), ("prisoner", 30))),
        )

    # hospital casework
    def _patient_transferred_to_hospital(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._hospital(
            case,
            "PatientTransferredToHospital",
            restricted=rng.random() < 0.8,
            transfer_date=self._day(-rng.randint(0, 5)),
            mha_section="s47/49",
            hospital_code="SIM-H01",
            hospital_name="Simulated Secure Hospital",
        )

    def _restricted_patient_decision(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._hospital(
            case,
            "RestrictedPatientDecision",
            decision=weighted(
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

    def _tribunal(self, case: SimulatedCase) -> str:
        return "mhrt_wales" if case.welsh else "ftt_mental_health"

    def _tribunal_hearing_listed(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        hearing = rng.randint(30, 90)
        return self._hospital(
            case,
            "TribunalHearingListed",
            hearing_date=self._day(hearing),
            tribunal=self._tribunal(case),
            representations_due_date=self._day(hearing - 14),
        )

    def _tribunal_decision_issued(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        outcome = weighted(
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

    def _patient_recalled_to_hospital(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._hospital(
            case, "PatientRecalledToHospital", recalled_at=self._recent(rng), hospital_code="SIM-H01"
        )

    def _patient_absconded(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._hospital(
            case, "PatientAbsconded", absconded_at=self._recent(rng), hospital_code="SIM-H01"
        )

    # Home Office
    def _deportation_decided(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._event(
            "home-office",
            "DeportationDecided",
            noms_number=case.ids.noms_number,
            ho_ref=case.ho_ref,
            decision=weighted(rng, (("deport", 80), ("deportation_not_pursued", 20))),
            decision_date=self._day(-rng.randint(0, 10)),
            early_removal_scheme=rng.random() < 0.4,
        )

    def _offender_removed_from_uk(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._event(
            "home-office",
            "OffenderRemovedFromUk",
            noms_number=case.ids.noms_number,
            ho_ref=case.ho_ref,
            removal_date=self._day(-rng.randint(0, 3)),
        )
