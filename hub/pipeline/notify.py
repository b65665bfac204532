"""Builds notification rows (outbox and audit) from a case, a victim and what routing decided."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from connectors.avro import AvroCodec
from hub.settings import Settings
from hub.store.records import Case, Notification, Victim
from routing.content import NotificationContent
from routing.decisions import Decision, Kind, notification_id
from schemas import notification_schema


@dataclass(frozen=True)
class Cause:
    """Why a notification exists: an agency event, or a timer."""

    kind: Kind
    key: str  # the event id, or "<timer kind>:<timer id>"
    event_type: str
    source_event_ids: tuple[str, ...] = ()


class NotificationFactory:
    def __init__(self, settings: Settings, codec: AvroCodec, now: datetime) -> None:
        self.settings = settings
        self.codec = codec
        self.now = now

    def build(
        self,
        cause: Cause,
        case: Case,
        victim: Victim | None,
        decision: Decision,
        said: NotificationContent,
        category: str | None,
        *,
        unit_code: str | None = None,
        to_triage: bool = False,
        release_after: datetime | None = None,
    ) -> Notification:
        """One notification for one victim (or the case's unit when nobody is referred yet)."""
        unit = unit_code or (victim.unit_code if victim else case.owning_unit_code)
        person_ref = victim.person_ref if victim else None
        identity = notification_id(cause.kind, cause.key, case.case_ref, person_ref)
        record: dict[str, Any] = {
            "notification_id": identity,
            "kind": cause.kind.value,
            "case_ref": case.case_ref,
            "unit_code": unit,
            "vlo_id": None if to_triage else case.vlo_for(unit),
            "person_ref": person_ref,
            "victim_name": victim.name if victim else None,
            "event_type": cause.event_type,
            "category": category,
            "priority": decision.priority.value,
            "action": decision.action.value,
            "summary": said.summary,
            "facts": dict(said.facts),
            "victim_conditions": list(said.victim_conditions),
            "omitted_requests": [{"text": o.text, "reason": o.reason} for o in said.omitted_requests],
            "request_outcomes": [
                {"text": o.text, "outcome": o.outcome, "reason": o.reason} for o in said.request_outcomes
            ],
            "due_by": said.due_by,
            "preferred_channel": victim.preferred_channel if victim else None,
            "language": victim.language if victim else None,
            "source_event_ids": list(cause.source_event_ids),
            "created_at": self.now,
        }
        return Notification(
            notification_id=identity,
            kind=cause.kind.value,
            case=case,  # case_id follows when written, also for a case opened in this transaction
            unit_code=unit,
            event_type=cause.event_type,
            action=decision.action.value,
            priority=decision.priority.value,
            topic=self.settings.unit_topic(unit),
            key=case.case_ref.encode(),
            payload=self.codec.encode(notification_schema(), record),
            source_event_id=cause.source_event_ids[0] if cause.source_event_ids else None,
            person_ref=person_ref,
            created_at=self.now,
            release_after=release_after,
        )
