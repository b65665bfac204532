"""The prison service's events (schemas/prison/) with rules of their own: merged records, release dates, releases
and their cancellation. Its other events take the common path.
"""

from __future__ import annotations

from datetime import timedelta

from hub.errors import Unmatched
from hub.pipeline.handlers.common import CommonHandlers, Effects, of_type, required
from hub.pipeline.ingest import IngestedEvent
from hub.pipeline.notify import Cause
from routing import content
from routing.catalogue import Category, rule_for
from routing.decisions import Kind, VictimChoices, decide
from schemas.events import PrisonerRecordsMerged, PrisonerReleaseCancelled, ReleaseDatesCalculated


class PrisonHandlers(CommonHandlers):
    """PrisonerRecordsMerged, ReleaseDatesCalculated, PrisonerReleased, PrisonerReleaseCancelled."""

    # ---- prison
    def prisoner_records_merged(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, PrisonerRecordsMerged)
        kept = required(event.envelope.subject.noms_number, "envelope.subject.noms_number")
        removed = event.removed_noms_number
        kept_offenders = self.store.offenders_for([("noms_number", kept)])
        removed_offenders = self.store.offenders_for([("noms_number", removed)])
        if not kept_offenders and not removed_offenders:
            raise Unmatched([("noms_number", kept), ("noms_number", removed)])
        if kept_offenders and removed_offenders and kept_offenders[0] is not removed_offenders[0]:
            self.store.merge_offenders(keep=kept_offenders[0], remove=removed_offenders[0])
        offender = (kept_offenders or removed_offenders)[0]
        # The removed number stays as an alias, so a late event that still uses it finds the kept record.
        return Effects(new_keys=self.store.link(offender, [("noms_number", kept), ("noms_number", removed)]))

    def release_dates_calculated(self, ingested: IngestedEvent) -> Effects:
        offender, effects = self._offender(ingested)
        event = of_type(ingested, ReleaseDatesCalculated)
        expected = content.expected_release(event)
        month = f"{expected:%Y-%m}" if expected else None
        said = content.release_dates_calculated(event)
        for case in offender.cases:
            changed = month is not None and month != case.expected_release_month
            case.expected_release_month = month or case.expected_release_month
            case.key_dates = {**(case.key_dates or {}), **said.facts}
            if changed and case.notifiable:
                effects.notifications.extend(self._notify_case(ingested, case, said))
        return effects

    def prisoner_released(self, ingested: IngestedEvent) -> Effects:
        hold = self.settings.release_hold_seconds
        effects = self.offender_event(
            ingested, release_after=self.now + timedelta(seconds=hold) if hold else None
        )
        # A cancellation that arrived before this release waits under the release's event id.
        effects.new_keys.append(("event_id", ingested.event_id))
        return effects

    def prisoner_release_cancelled(self, ingested: IngestedEvent) -> Effects:
        event = of_type(ingested, PrisonerReleaseCancelled)
        cancelled = str(event.cancels_event_id)
        held = self.store.notifications_from(cancelled)
        if not held:
            raise Unmatched([("event_id", cancelled)])
        effects = Effects()
        for notification in held:
            if notification.published_at is None:
                notification.withdrawn_at = self.now  # out of the outbox: it will not go to its queue now
                held_back = notification.release_after is not None and notification.release_after > self.now
                if held_back or self.store.made_here(notification):
                    continue  # nobody was told of it: no correction either
                # Perhaps on its queue already: a worker that wrote it there may have stopped before it could
                # record that (it records it with its next transaction). A correction is safe either way.
            # Too late to withdraw: tell the same VLO the release was a mistake.
            case = notification.case or self.store.case_by_id(notification.case_id)  # type: ignore[arg-type]
            victim = self._victim(case, notification.person_ref) if notification.person_ref else None
            said = content.NotificationContent(
                "The release notified earlier was recorded in error and has been cancelled: the offender was not "
                "released.",
                {"cancels_event_id": cancelled},
            )
            cause = Cause(Kind.EVENT, ingested.event_id, ingested.event_type, (ingested.event_id, cancelled))
            decision = decide(
                rule_for("PrisonerReleased"),
                VictimChoices(
                    victim.categories if victim else None,
                    (victim.opted_out or victim.declined) if victim else False,
                ),
            )
            effects.notifications.append(
                self.factory.build(
                    cause,
                    case,
                    victim,
                    decision,
                    said,
                    Category.RELEASE.value,
                    unit_code=notification.unit_code,
                )
            )
        return effects
