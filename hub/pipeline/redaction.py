"""What operators may see of an event: only fields marked safe to show; everything else is hidden.

An allow-list, so a field added to a schema is hidden until someone decides it is safe and names it here. Safe
to show are the event's own bookkeeping (ids, types, times, the publishing system), the identifiers the hub links
on, unit and VLO codes, the dates of the sentence's milestones, and fields whose Avro type cannot carry free text
(enums and booleans). Hidden is everything else: names and aliases, dates of birth, contact details and
addresses, licence and condition text, reasons and summaries, clinical fields, and where an offender is.
"""

from __future__ import annotations

from typing import Any

from connectors.avro import AvroCodec, UndecodableMessage
from connectors.sealing import is_sealed, sealed_key_id

HIDDEN = "[hidden]"
SAFE_FIELDS = frozenset(
    {
        # the envelope and its source
        "event_id", "event_type", "occurred_at", "published_at", "agency", "system",
        # identifiers the hub links records on, and references to other events and notifications
        "noms_number", "booking_id", "crn", "pnc", "cro", "case_ref", "patient_ref", "pb_case_ref", "ho_ref",
        "removed_noms_number", "person_ref", "cancels_event_id", "notification_id", "source_event_ids",
        # who deals with it, and fixed codes
        "unit_code", "vlo_id", "court_code", "appeal_court", "code", "category", "from_category", "to_category",
        "level", "review_type", "panel_type", "custodial_term_months", "new_custodial_term_months",
        # when things happen in the sentence and the scheme
        "absconded_at", "calculation_date", "charge_date", "conditional_release_date", "contacted_at",
        "created_at", "decision_date", "declined_date", "determined_date", "due_back_at", "due_by",
        "effective_date", "end_date", "escaped_at", "first_release_date", "hdc_eligibility_date", "hearing_date",
        "licence_expiry_date", "linked_date", "lodged_date", "merge_date", "new_hearing_date", "next_review_date",
        "opened_date", "opted_in_date", "opted_out_date", "original_hearing_date", "parole_eligibility_date",
        "recall_date", "recalled_at", "received_at", "referral_date", "release_date", "removal_date",
        "representations_due_date", "requested_at", "sentence_date", "sentence_expiry_date", "start_date",
        "tariff_expiry_date", "transfer_date", "transferred_at",
    }
)  # fmt: skip


def _resolve(schema: Any, named: dict[str, Any]) -> Any:
    if isinstance(schema, str):
        return named.get(schema, named.get(schema.rsplit(".", 1)[-1], schema))
    return schema


def _closed_vocabulary(schema: Any, named: dict[str, Any]) -> bool:
    """An enum or a boolean (or one of those or null): a value that cannot carry free text."""
    branches = schema if isinstance(schema, list) else [schema]
    kinds = []
    for branch in branches:
        resolved = _resolve(branch, named)
        if resolved == "null":
            continue
        kinds.append(resolved.get("type") if isinstance(resolved, dict) else resolved)
    return bool(kinds) and all(kind in ("enum", "boolean") for kind in kinds)


def _view(value: Any, schema: Any, named: dict[str, Any], safe: bool) -> Any:
    """`value` as an operator may see it; `safe` says whether the field that holds it is on the allow-list."""
    schema = _resolve(schema, named)
    if value is None:
        return None
    if isinstance(schema, list):  # a union: the branch that fits the value
        for branch in schema:
            resolved = _resolve(branch, named)
            kind = resolved.get("type") if isinstance(resolved, dict) else None
            if (kind == "record" and isinstance(value, dict)) or (
                kind == "array" and isinstance(value, list)
            ):
                return _view(value, resolved, named, safe)
        return value if safe else HIDDEN
    kind = schema.get("type") if isinstance(schema, dict) else schema
    if isinstance(schema, dict) and kind == "record" and isinstance(value, dict):
        named[schema["name"]] = schema
        shown = {}
        for field in schema["fields"]:
            if field["name"] in value:
                allowed = field["name"] in SAFE_FIELDS or _closed_vocabulary(field["type"], named)
                shown[field["name"]] = _view(value[field["name"]], field["type"], named, allowed)
        return shown
    if isinstance(schema, dict) and kind == "array" and isinstance(value, list):
        return [_view(item, schema["items"], named, safe) for item in value]
    if isinstance(schema, dict) and kind == "enum":
        named[schema["name"]] = schema
    if isinstance(kind, (dict, list)):
        return _view(value, kind, named, safe)
    return value if safe else HIDDEN


def operator_view(record: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """A decoded record with every field the allow-list does not name hidden (its structure kept)."""
    view: dict[str, Any] = _view(record, schema, {}, True)
    return view


def redacted_view(codec: AvroCodec, payload: bytes) -> dict[str, Any]:
    """What an operator may see of a payload: the decoded event with only its safe fields shown, or why not."""
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
    record = operator_view(decoded.record, decoded.schema.definition)
    return {"decodable": True, "event_type": decoded.schema.name, "event": record}
