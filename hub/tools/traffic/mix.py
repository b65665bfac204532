"""The proportions of simulated traffic: how often a new case is opened, and each event type's weight among the
follow-ups.

Each source's intended share of the stream (with about one new case per ten follow-ups), and why:

| Source | Share | Why |
|---|---|---|
| prison | 44% | The busiest system: every reception, transfer (mostly closed to closed, not notifiable), recategorisation, release-date recalculation, ROTL board and release of every prisoner in the scheme |
| vcs | 16% | Units allocate every case, then record contacts and preference changes for each victim |
| probation | 13% | Identity links, licences set and varied, MAPPA reviews, recalls; fewer than prison because most of a sentence is served in custody |
| court | 10% | One sentence per case, then appeals against a minority of them |
| witness-care | 8% | One referral per case (bereaved families add more members), the odd victim declining the scheme |
| parole-board | 5% | Only indeterminate, extended and recalled prisoners come before the Board: reviews, listings, decisions |
| hospital | 2% | Rare: prisoners transferred to secure hospitals and restricted patients (tribunals, leave, recalls) |
| home-office | 1% | Rare: deportation decisions and removals of foreign national offenders |
| youth-justice | 0.5% | Youth cases are about one in twenty; the youth offending team refers their victims instead of witness care |

Urgent events (escapes, failures to return from ROTL, recalls, serious further offences, absconds from
approved premises and hospital, patient recalls) are about 2% of the stream, as routing/catalogue.py marks
them. `NotificationAcknowledged` is never generated: it must name a notification the hub actually sent, which
a generator cannot know; acknowledging is the VLO's job, not an agency's.
"""

from __future__ import annotations

from itertools import accumulate

NEW_CASE_CHANCE = 1 / 11  # one new case for every ten follow-ups about cases already open

# Follow-up events per thousand follow-ups. The reasons are in the module docstring; within a source, the
# routine events (transfers, date recalculations, contacts) outnumber the notifiable and the urgent ones.
FOLLOW_UPS: tuple[tuple[str, int], ...] = (
    # prison: routine custody administration dominates
    ("PrisonerReceived", 80),
    ("PrisonerTransferred", 130),
    ("PrisonerRecategorised", 60),
    ("ReleaseDatesCalculated", 110),
    ("TemporaryReleaseDecided", 70),
    ("TemporaryReleaseFailedToReturn", 6),
    ("HomeDetentionCurfewDecided", 25),
    ("CompassionateReleaseDecided", 2),
    ("PrisonerReleased", 60),
    ("PrisonerReleaseCancelled", 3),
    ("PrisonerEscaped", 1),
    ("PrisonerDied", 2),
    ("PrisonerRecordsMerged", 5),
    # probation
    ("OffenderIdentifiersLinked", 30),
    ("LicenceConditionsSet", 40),
    ("LicenceVaried", 20),
    ("OffenderRecalled", 12),
    ("MappaManagementChanged", 45),
    ("SeriousFurtherOffenceCharged", 1),
    ("ApprovedPremisesAbsconded", 3),
    ("LicenceEnded", 15),
    # Parole Board
    ("ParoleReviewStarted", 18),
    ("ParoleHearingListed", 18),
    ("ParoleHearingDeferred", 7),
    ("ParoleDecisionIssued", 20),
    ("ReconsiderationDecided", 4),
    # hospital casework
    ("PatientTransferredToHospital", 6),
    ("RestrictedPatientDecision", 6),
    ("TribunalHearingListed", 5),
    ("TribunalDecisionIssued", 4),
    ("PatientRecalledToHospital", 2),
    ("PatientAbsconded", 1),
    # Home Office
    ("DeportationDecided", 9),
    ("OffenderRemovedFromUk", 3),
    # court
    ("AppealLodged", 18),
    ("AppealDetermined", 12),
    # witness care or youth justice (by the case): another family member referred, a victim declining
    ("VictimReferred", 11),
    ("VictimDeclinedScheme", 4),
    # victim contact units
    ("VictimPreferencesUpdated", 40),
    ("VictimContacted", 50),
    ("VictimOptedOut", 5),
    ("VictimOptedIn", 3),
    ("VictimAddressChanged", 7),
    ("CaseAllocated", 5),
    ("LicenceConditionsRequested", 6),
)
FOLLOW_UP_TYPES = tuple(event_type for event_type, _ in FOLLOW_UPS)
FOLLOW_UP_CUMULATIVE = tuple(accumulate(weight for _, weight in FOLLOW_UPS))
