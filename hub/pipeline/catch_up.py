"""A victim referred a moment after an event about their case still hears of it.

Agencies publish on separate topics, so a release (or an escape, on the urgent lane) can be applied just
before the referral of the victim it concerns reaches the hub, although the referral was published first.
The event then went to the case's owning unit as a case-level notification, with nobody referred yet. When
the referral is applied, every case-level event notification whose event was published after the referral is
issued again for the new victim: to their unit, decided by their own choices, with the notification id it
would have had if the two had arrived in order (so a later redelivery changes nothing).
"""

from __future__ import annotations

from datetime import date, datetime

from hub.pipeline.notify import Cause, NotificationFactory
from hub.store.casefile import CaseFile
from hub.store.records import Case, Notification, Victim
from routing.catalogue import rule_for
from routing.content import NotificationContent, OmittedRequest
from routing.decisions import Kind, VictimChoices, decide


def missed_by(store: CaseFile, case: Case, referral_published_at: datetime) -> list[Notification]:
    """Case-level event notifications of the case whose event was published after the referral, oldest first."""
    missed = [
        n
        for n in store.case_level_notifications(case)
        if n.event_published_at is not None and n.event_published_at > referral_published_at
    ]
    return sorted(missed, key=lambda n: n.event_published_at)  # type: ignore[arg-type, return-value]


def catch_up(
    store: CaseFile,
    factory: NotificationFactory,
    case: Case,
    victim: Victim,
    referral_published_at: datetime,
) -> list[Notification]:
    """The notifications `victim` would have had, had the referral been applied first."""
    if victim.opted_out or victim.declined:
        choices = VictimChoices(categories=victim.categories, opted_out=True)
    else:
        choices = VictimChoices(categories=victim.categories)
    made = []
    for missed in missed_by(store, case, referral_published_at):
        # Without a payload (dropped by the retention schedule) there is nothing left to issue again.
        if missed.source_event_id is None or missed.payload is None:
            continue
        record = factory.codec.decode(missed.payload).record
        due_by = record.get("due_by")
        said = NotificationContent(
            summary=record["summary"],
            facts=dict(record.get("facts") or {}),
            victim_conditions=tuple(record.get("victim_conditions") or ()),
            omitted_requests=tuple(
                OmittedRequest(o["text"], o["reason"]) for o in record.get("omitted_requests") or ()
            ),
            due_by=due_by if isinstance(due_by, date) or due_by is None else date.fromisoformat(due_by),
        )
        rule = rule_for(missed.event_type)
        cause = Cause(Kind.EVENT, missed.source_event_id, missed.event_type, (missed.source_event_id,))
        made.append(
            factory.build(
                cause,
                case,
                victim,
                decide(rule, choices),
                said,
                record.get("category"),
                release_after=missed.release_after,
            )
        )
    return made
