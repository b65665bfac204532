"""Redacted views of agency events, for operators: no victim contact details, no clinical or location fields.

The schema marks what is sensitive (`hub.personal`, `hub.clinical`, `hub.offender_location`); anything so
marked is replaced, wherever it appears in the record, before an operator sees it.
"""

from __future__ import annotations

from typing import Any

from connectors.avro import AvroCodec, UndecodableMessage
from connectors.sealing import is_sealed, sealed_key_id

REDACTED = "[redacted]"
SENSITIVE_FLAGS = ("hub.personal", "hub.clinical", "hub.offender_location")


def _redact(value: Any, schema: Any, named: dict[str, Any]) -> Any:
    if isinstance(schema, str):
        schema = named.get(schema, schema)
    if isinstance(schema, list):  # a union: redact against the branch that fits the value
        for branch in schema:
            resolved = named.get(branch, branch) if isinstance(branch, str) else branch
            if value is None and branch == "null":
                return None
            if isinstance(resolved, dict) and resolved.get("type") == "record" and isinstance(value, dict):
                return _redact(value, resolved, named)
            if isinstance(resolved, dict) and resolved.get("type") == "array" and isinstance(value, list):
                return _redact(value, resolved, named)
        return value
    if not isinstance(schema, dict):
        return value
    kind = schema.get("type")
    if kind == "record" and isinstance(value, dict):
        named[schema["name"]] = schema
        redacted = {}
        for field in schema["fields"]:
            if field["name"] not in value:
                continue
            item = value[field["name"]]
            if any(field.get(flag) for flag in SENSITIVE_FLAGS) and item not in (None, [], {}):
                redacted[field["name"]] = REDACTED
            else:
                redacted[field["name"]] = _redact(item, field["type"], named)
        return redacted
    if kind == "array" and isinstance(value, list):
        return [_redact(item, schema["items"], named) for item in value]
    if isinstance(kind, (dict, list)) or (isinstance(kind, str) and kind in named):
        return _redact(value, kind, named)
    return value


def redacted_view(codec: AvroCodec, payload: bytes) -> dict[str, Any]:
    """What an operator may see of a payload: the decoded event with sensitive fields masked, or why not."""
    if is_sealed(payload):  # a notification that failed delivery: sealed for its unit, not for operators
        return {"decodable": False, "sealed_for_key": sealed_key_id(payload), "bytes": len(payload)}
    try:
        decoded = codec.decode(payload)
    except UndecodableMessage as error:
        # Undecodable bytes may still hold personal data: show their size and framing, never their content.
        return {
            "decodable": False,
            "reason": str(error),
            "bytes": len(payload),
            "starts_with": payload[:2].hex(),
        }
    except Exception as error:  # a registry that is down, for example
        return {"decodable": False, "reason": f"{type(error).__name__}", "bytes": len(payload)}
    record = _redact(decoded.record, decoded.schema.definition, {})
    return {"decodable": True, "event_type": decoded.schema.name, "event": record}
