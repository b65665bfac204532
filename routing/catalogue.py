"""The event catalogue (docs/domain.md section 4): which category each event belongs to, and which are urgent.

A victim opts into categories; urgent events reach the VLO at once as a safety review whatever the victim
chose. Events with no category change the case store only (identity, allocation, preferences).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Category(StrEnum):
    KEY_DATES = "key_dates"
    CUSTODY_PROGRESS = "custody_progress"
    RELEASE = "release"
    RECALL_AND_BREACH = "recall_and_breach"
    END_OF_CASE = "end_of_case"
    PAROLE = "parole"
    HOSPITAL = "hospital"
    IMMIGRATION = "immigration"
    RECORD_ONLY = "record_only"  # VLO-only: never offered to victims


VICTIM_CATEGORIES = frozenset(Category) - {Category.RECORD_ONLY}


@dataclass(frozen=True)
class EventRule:
    event_type: str
    category: Category | None  # None: updates the case store, notifies nobody by itself
    urgent: bool = False
    conditional: bool = False  # notifiable only when its facts say so (a change of conditions, ...)


def _rules(*rules: EventRule) -> dict[str, EventRule]:
    return {rule.event_type: rule for rule in rules}


C = Category
CATALOGUE: dict[str, EventRule] = _rules(
    # court
    EventRule("SentenceImposed", C.KEY_DATES),
    EventRule("AppealLodged", C.KEY_DATES),
    EventRule("AppealDetermined", C.KEY_DATES),
    # witness care and youth justice
    EventRule("VictimReferred", None),
    EventRule("VictimDeclinedScheme", None),
    # prison
    EventRule("PrisonerReceived", None),
    EventRule("PrisonerRecategorised", C.CUSTODY_PROGRESS, conditional=True),
    EventRule("PrisonerTransferred", C.CUSTODY_PROGRESS, conditional=True),
    EventRule("TemporaryReleaseDecided", C.CUSTODY_PROGRESS),
    EventRule("TemporaryReleaseFailedToReturn", C.RECALL_AND_BREACH, urgent=True),
    EventRule("HomeDetentionCurfewDecided", C.RELEASE),
    EventRule("CompassionateReleaseDecided", C.RELEASE),
    EventRule("ReleaseDatesCalculated", C.KEY_DATES, conditional=True),
    EventRule("PrisonerReleased", C.RELEASE),
    EventRule("PrisonerReleaseCancelled", None),
    EventRule("PrisonerEscaped", C.RECALL_AND_BREACH, urgent=True),
    EventRule("PrisonerDied", C.END_OF_CASE),
    EventRule("PrisonerRecordsMerged", None),
    # probation
    EventRule("OffenderIdentifiersLinked", None),
    EventRule("LicenceConditionsSet", C.RELEASE),
    EventRule("LicenceVaried", C.RELEASE),
    EventRule("OffenderRecalled", C.RECALL_AND_BREACH, urgent=True),
    EventRule("MappaManagementChanged", C.RECORD_ONLY),
    EventRule("SeriousFurtherOffenceCharged", C.RECALL_AND_BREACH, urgent=True),
    EventRule("ApprovedPremisesAbsconded", C.RECALL_AND_BREACH, urgent=True),
    EventRule("LicenceEnded", C.END_OF_CASE),
    # Parole Board
    EventRule("ParoleReviewStarted", C.PAROLE),
    EventRule("ParoleHearingListed", C.PAROLE),
    EventRule("ParoleHearingDeferred", C.PAROLE),
    EventRule("ParoleDecisionIssued", C.PAROLE),
    EventRule("ReconsiderationDecided", C.PAROLE),
    # hospital casework
    EventRule("PatientTransferredToHospital", C.HOSPITAL),
    EventRule("RestrictedPatientDecision", C.HOSPITAL),
    EventRule("TribunalHearingListed", C.HOSPITAL),
    EventRule("TribunalDecisionIssued", C.HOSPITAL),
    EventRule("PatientRecalledToHospital", C.HOSPITAL, urgent=True),
    EventRule("PatientAbsconded", C.HOSPITAL, urgent=True),
    # Home Office
    EventRule("DeportationDecided", C.IMMIGRATION),
    EventRule("OffenderRemovedFromUk", C.IMMIGRATION),
    # victim contact units
    EventRule("DiscretionaryCaseOpened", None),
    EventRule("CaseAllocated", None),
    EventRule("VictimPreferencesUpdated", None),
    EventRule("VictimOptedOut", None),
    EventRule("VictimOptedIn", None),
    EventRule("VictimAddressChanged", None),
    EventRule("VictimContacted", None),
    EventRule("NotificationAcknowledged", None),
    EventRule("LicenceConditionsRequested", None),
)
del C


def rule_for(event_type: str) -> EventRule:
    """The catalogue entry; KeyError for an event type outside the catalogue."""
    return CATALOGUE[event_type]


def is_urgent(event_type: str) -> bool:
    """Urgent by the catalogue; False for an event type outside it (the hub will dead-letter that anyway)."""
    rule = CATALOGUE.get(event_type)
    return rule is not None and rule.urgent
