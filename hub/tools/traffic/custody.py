"""Simulated prison events: routine custody administration (receptions, transfers, recategorisations, release
date calculations) outnumbers the notifiable and the urgent ones (releases, temporary release, escapes)."""

from __future__ import annotations

import random
import uuid
from datetime import timedelta
from typing import Any

from hub.tools.traffic.cases import SimulatedCase, weighted
from hub.tools.traffic.identifiers import removed_noms_number
from hub.tools.traffic.making import EventMaker, SimulatedEvent

_CLOSED_PRISONS = ("LEI", "WDI", "DMI", "MRI", "BMI", "PVI", "BLI", "CFI", "NMI", "LPI", "EXI", "HMI")
_OPEN_PRISONS = ("HDI", "NSI", "FDI", "LYI")


class CustodyEvents(EventMaker):
    """The prison's follow-ups."""

    def _prisoner_received(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        reason = weighted(
            rng,
            (
                ("transfer_in", 55),
                ("return_from_court", 20),
                ("return_from_temporary_release", 15),
                ("recall", 7),
                ("new_admission", 3),
            ),
        )
        return self._prison(
            case,
            "PrisonerReceived",
            prison_code=rng.choice(_CLOSED_PRISONS),
            reason=reason,
            received_at=self._recent(rng),
        )

    def _prisoner_transferred(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        moves = weighted(rng, ((("closed", "closed"), 85), (("closed", "open"), 10), (("open", "closed"), 5)))
        prisons = {"closed": _CLOSED_PRISONS, "open": _OPEN_PRISONS}
        origin = rng.choice(prisons[moves[0]])
        destination = rng.choice([p for p in prisons[moves[1]] if p != origin])
        return self._prison(
            case,
            "PrisonerTransferred",
            from_prison=origin,
            to_prison=destination,
            from_conditions=moves[0],
            to_conditions=moves[1],
            transferred_at=self._recent(rng),
        )

    def _prisoner_recategorised(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        before, after = weighted(rng, ((("B", "C"), 60), (("C", "D"), 25), (("C", "B"), 10), (("D", "C"), 5)))
        return self._prison(
            case,
            "PrisonerRecategorised",
            from_category=before,
            to_category=after,
            from_conditions="open" if before == "D" else "closed",
            to_conditions="open" if after == "D" else "closed",
            effective_date=self._day(-rng.randint(0, 3)),
            next_review_date=self._day(rng.randint(150, 210)),
        )

    def _release_dates_calculated(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        start = case.sentence_date
        if case.term_months is None:  # life: a tariff, then the Parole Board
            tariff = start + timedelta(days=365 * rng.randint(8, 20) + rng.randint(-30, 30))
            dates: dict[str, Any] = {
                "tariff_expiry_date": tariff.isoformat(),
                "parole_eligibility_date": None,
            }
        else:
            days = case.term_months * 30
            # Recalculations move the date a little (remand credited, added days): sometimes into another month.
            release = start + timedelta(days=days // 2 + rng.randint(-20, 20))
            dates = {
                "conditional_release_date": release.isoformat(),
                "hdc_eligibility_date": (release - timedelta(days=min(180, days // 4))).isoformat(),
                "licence_expiry_date": (start + timedelta(days=days)).isoformat(),
                "sentence_expiry_date": (start + timedelta(days=days)).isoformat(),
            }
        return self._prison(
            case, "ReleaseDatesCalculated", calculation_date=self._day(-rng.randint(0, 2)), **dates
        )

    def _temporary_release_decided(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        granted = rng.random() < 0.7
        return self._prison(
            case,
            "TemporaryReleaseDecided",
            decision="granted" if granted else "refused",
            rotl_type=weighted(
                rng,
                (
                    ("resettlement_day_release", 60),
                    ("resettlement_overnight_release", 25),
                    ("special_purpose_licence", 10),
                    ("childcare_resettlement_licence", 5),
                ),
            ),
            decision_date=self._day(-rng.randint(0, 3)),
            first_release_date=self._day(rng.randint(7, 30)) if granted else None,
            conditions=self._conditions(rng) if granted else [],
        )

    def _temporary_release_failed_to_return(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._prison(
            case, "TemporaryReleaseFailedToReturn", due_back_at=self._recent(rng), police_informed=True
        )

    def _home_detention_curfew_decided(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        granted = rng.random() < 0.6
        return self._prison(
            case,
            "HomeDetentionCurfewDecided",
            decision="granted" if granted else "refused",
            decision_date=self._day(-rng.randint(0, 3)),
            release_date=self._day(rng.randint(14, 42)) if granted else None,
            conditions=self._conditions(rng) if granted else [],
            curfew_address={
                "lines": ["Flat 1", "2 Simulation Street"],
                "town": "Exampleton",
                "postcode": case.victim_postcode[:-3] + "8ZZ",
            }
            if granted
            else None,
        )

    def _compassionate_release_decided(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        granted = rng.random() < 0.2
        return self._prison(
            case,
            "CompassionateReleaseDecided",
            decision="granted" if granted else "refused",
            decision_date=self._day(-rng.randint(0, 3)),
            release_date=self._day(rng.randint(3, 14)) if granted else None,
        )

    def _prisoner_released(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        event = self._prison(
            case,
            "PrisonerReleased",
            release_type=weighted(
                rng,
                (
                    ("automatic", 60),
                    ("hdc", 15),
                    ("parole", 12),
                    ("end_of_sentence", 8),
                    ("other", 2),
                    ("on_appeal", 2),
                    ("compassionate", 1),
                ),
            ),
            release_date=self.today.isoformat(),
            licence_conditions=self._conditions(rng, victim_related=rng.randint(1, 2)),
            release_address={
                "lines": ["Approved Premises (simulated)", "7 Simulation Road"],
                "town": "Exampleton",
                "postcode": "LS1 9ZZ",
            },
        )
        # Its own id, so that a later PrisonerReleaseCancelled can name it.
        event.fields["event_id"] = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        return event

    def _prisoner_release_cancelled(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._prison(
            case,
            "PrisonerReleaseCancelled",
            cancels_event_id=self._releases[case.number],
            reason=rng.choice(("Release recorded against the wrong prisoner", "Release date keyed in error")),
        )

    def _prisoner_escaped(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        kind = weighted(
            rng,
            (
                ("abscond_from_open_conditions", 70),
                ("escape_from_escort", 20),
                ("escape_from_establishment", 10),
            ),
        )
        return self._prison(case, "PrisonerEscaped", escaped_at=self._recent(rng), escape_type=kind)

    def _prisoner_died(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._prison(case, "PrisonerDied", date_of_death=self._day(-rng.randint(0, 3)))

    def _prisoner_records_merged(self, case: SimulatedCase, rng: random.Random) -> SimulatedEvent:
        return self._event(
            "prison",
            "PrisonerRecordsMerged",
            noms_number=case.ids.noms_number,
            removed_noms_number=removed_noms_number(case.number),
            merge_date=self.today.isoformat(),
        )
