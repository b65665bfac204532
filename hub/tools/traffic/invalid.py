"""Breaking a simulated event the way agency systems break one: a malformed identifier, a date in the future, or
a missing required identifier."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from hub.tools.traffic.making import EventMaker
from schemas import event_schemas


def _malformed_identifier(traffic: EventMaker, fields: dict[str, Any]) -> bool:
    breaks: Callable[[str], str]
    for name, breaks in (
        ("noms_number", lambda v: v[:5] + "0" + v[5:]),  # five digits
        ("crn", lambda v: v + "0"),  # seven digits
        ("case_ref", lambda v: v[:4] + " " + v[4:]),  # a space
        ("pnc", lambda v: v.replace("/", "-")),
    ):
        if name in fields:
            fields[name] = breaks(fields[name])
            return True
    return False


def _future_date(traffic: EventMaker, fields: dict[str, Any]) -> bool:
    future = traffic.today + timedelta(days=30)
    schema = event_schemas()[fields["event_type"]].definition
    for field in schema["fields"]:
        value = fields.get(field["name"])
        if field.get("hub.not_future") and isinstance(value, str):
            fields[field["name"]] = f"{future.isoformat()}T09:00:00Z" if "T" in value else future.isoformat()
            return True
    fields["occurred_at"] = f"{future.isoformat()}T09:00:00Z"
    return True


def _missing_identifier(traffic: EventMaker, fields: dict[str, Any]) -> bool:
    required = event_schemas()[fields["event_type"]].definition.get("hub.requires", [])
    names = [name.removeprefix("subject.") for name in required if name.removeprefix("subject.") in fields]
    if not names:
        return False
    del fields[names[0]]
    return True


BREAKERS: tuple[Callable[[EventMaker, dict[str, Any]], bool], ...] = (
    _malformed_identifier,
    _future_date,
    _missing_identifier,
)
