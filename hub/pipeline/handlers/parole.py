"""The Parole Board's events (schemas/parole-board/) with rules of their own: a review opens and its decision closes
it. ParoleHearingListed takes `with_task` (hub/pipeline/handlers/common.py).
"""

from __future__ import annotations

from hub.pipeline.handlers.common import CommonHandlers, Effects, subject_keys
from hub.pipeline.ingest import IngestedEvent


class ParoleHandlers(CommonHandlers):
    """ParoleReviewStarted, ParoleDecisionIssued."""

    def parole_review_started(self, ingested: IngestedEvent) -> Effects:
        """Told like any parole event; while the review is open a victim's licence condition requests go to the
        Parole Board too."""
        effects = self.offender_event(ingested)
        for case in self.store.offenders_for(subject_keys(ingested.event))[0].cases:
            if case.status == "open":
                case.parole_review_open = True
        return effects

    def parole_decision_issued(self, ingested: IngestedEvent) -> Effects:
        """The decision (and a provisional release's deadline task) closes the review."""
        effects = self.with_task(ingested)
        for case in self.store.offenders_for(subject_keys(ingested.event))[0].cases:
            case.parole_review_open = False
        return effects
