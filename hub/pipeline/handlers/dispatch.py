"""`EventHandlers`: every source's handlers together, and the table of which event type each one takes."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from connectors.avro import AvroCodec
from hub.pipeline.handlers.common import Effects
from hub.pipeline.handlers.court import CourtHandlers
from hub.pipeline.handlers.parole import ParoleHandlers
from hub.pipeline.handlers.prison import PrisonHandlers
from hub.pipeline.handlers.victim_contact import VictimContactHandlers
from hub.pipeline.handlers.witness_care import WitnessCareHandlers
from hub.pipeline.ingest import IngestedEvent
from hub.settings import Settings
from hub.store.casefile import CaseFile
from routing.units import UnitDirectory


class EventHandlers(
    CourtHandlers, WitnessCareHandlers, PrisonHandlers, ParoleHandlers, VictimContactHandlers
):
    """The rules applied to one event at a time, on what the CaseFile holds; every change goes through it."""

    def __init__(
        self, store: CaseFile, units: UnitDirectory, settings: Settings, codec: AvroCodec, now: datetime
    ) -> None:
        super().__init__(store, units, settings, codec, now)
        # Events with a handler of their own; every other notifiable event takes `offender_event`.
        self._handlers: dict[str, Callable[[IngestedEvent], Effects]] = {
            "SentenceImposed": self.sentence_imposed,
            "AppealLodged": self.appeal_lodged,
            "AppealDetermined": self.appeal_determined,
            "VictimReferred": self.victim_referred,
            "VictimDeclinedScheme": self.victim_declined_scheme,
            "PrisonerReceived": self.identity_only,
            "OffenderIdentifiersLinked": self.identity_only,
            "PrisonerRecordsMerged": self.prisoner_records_merged,
            "ReleaseDatesCalculated": self.release_dates_calculated,
            "PrisonerReleased": self.prisoner_released,
            "PrisonerReleaseCancelled": self.prisoner_release_cancelled,
            "PrisonerDied": self.case_closing_event,
            "LicenceEnded": self.case_closing_event,
            "ParoleReviewStarted": self.parole_review_started,
            "ParoleHearingListed": self.with_task,
            "ParoleDecisionIssued": self.parole_decision_issued,
            "DiscretionaryCaseOpened": self.discretionary_case_opened,
            "CaseAllocated": self.case_allocated,
            "VictimPreferencesUpdated": self.victim_preferences_updated,
            "VictimOptedOut": self.victim_opted_out,
            "VictimOptedIn": self.victim_opted_in,
            "VictimAddressChanged": self.victim_address_changed,
            "VictimContacted": self.victim_contacted,
            "NotificationAcknowledged": self.notification_acknowledged,
            "LicenceConditionsRequested": self.licence_conditions_requested,
        }
