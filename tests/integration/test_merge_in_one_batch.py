"""Two offender records opened and merged in one batch: the identifiers linked in that transaction (written only
as it ends, hub/store/engine.py `write_pending`) all end on the kept record, on both databases."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from connectors.avro import hub_codec
from connectors.publisher import event_from_json
from hub.messages import InboundMessage
from hub.pipeline import Pipeline
from hub.reference import load_units
from hub.settings import Settings
from hub.store.engine import make_engine
from hub.store.models import Case, Offender, OffenderIdentifier
from schemas import event_schemas
from tests.data_keys import data_keys_in

TODAY = datetime.now(UTC).date()


def _sentence(case_ref: str, noms_number: str, days_ago: int) -> dict[str, Any]:
    return {
        "event_type": "SentenceImposed",
        "case_ref": case_ref,
        "noms_number": noms_number,
        "court_code": "Leeds Crown Court",
        "sentence_date": (TODAY - timedelta(days=days_ago)).isoformat(),
        "offender": {"name": "Jason Whitley"},
        "offences": [{"code": "OF61016", "description": "Wounding with intent", "classification": "violent"}],
        "disposal": "custody",
        "custodial_term_months": 30,
    }


def _referral(case_ref: str, person_ref: str) -> dict[str, Any]:
    return {
        "event_type": "VictimReferred",
        "case_ref": case_ref,
        "referral_date": (TODAY - timedelta(days=5)).isoformat(),
        "victim": {
            "person_ref": person_ref,
            "name": "Claire Dawson",
            "relationship": "victim",
            "address": {"lines": ["3 Chapel Allerton Road"], "town": "Leeds", "postcode": "LS7 4NZ"},
            "phone": "07700 900487",
        },
    }


def _messages(settings: Settings, steps: list[tuple[str, dict[str, Any]]]) -> list[InboundMessage]:
    codec, schemas = hub_codec(), event_schemas()
    start = datetime.now(UTC)
    messages = []
    for offset, (source, fields) in enumerate(steps):
        event = event_from_json(fields, source, start + timedelta(milliseconds=offset))
        value = codec.encode(schemas[event.envelope.event_type], event.model_dump())
        topic = settings.topic_for(source, event.envelope.event_type)
        messages.append(InboundMessage(topic, 0, offset, None, None, value, []))
    return messages


def test_records_opened_and_merged_in_one_batch_keep_every_identifier_on_the_kept_record(
    database_url: str, caplog: pytest.LogCaptureFixture, tmp_path: Path
) -> None:
    settings = Settings(broker="unused:9092", database_url=database_url, topic_prefix="m.")
    engine = make_engine(database_url, data_keys_in(tmp_path / "keys"))
    pipeline = Pipeline(settings, engine, hub_codec(), load_units(settings))
    merged = {
        "event_type": "PrisonerRecordsMerged",
        "noms_number": "A1111AA",
        "removed_noms_number": "B2222BB",
        "merge_date": TODAY.isoformat(),
    }
    try:
        first = pipeline.process(
            _messages(
                settings,
                [
                    ("court", _sentence("MERGE-1", "A1111AA", 9)),
                    ("court", _sentence("MERGE-2", "B2222BB", 8)),
                    ("witness-care", _referral("MERGE-1", "P-MERGE-1")),
                    ("witness-care", _referral("MERGE-2", "P-MERGE-2")),
                    ("prison", merged),
                ],
            )
        )
        assert first.dead_letters == [] and first.transient == []
        # As one transaction: not saved by the event-at-a-time fallback a failed batch takes.
        assert "one by one" not in caplog.text

        with Session(engine) as session:
            offenders = session.scalars(select(Offender)).all()
            owners = dict(
                session.execute(select(OffenderIdentifier.value, OffenderIdentifier.offender_id)).all()
            )
            case_owners = set(session.scalars(select(Case.offender_id)))
        # One record is left, and it holds both numbers and both cases.
        assert len(offenders) == 1
        assert {"A1111AA", "B2222BB"} <= set(owners)
        assert set(owners.values()) == case_owners == {offenders[0].id}

        # An event that still quotes the removed number reaches the victims of both cases.
        later = pipeline.process(
            _messages(
                settings,
                [
                    (
                        "prison",
                        {
                            "event_type": "PrisonerTransferred",
                            "noms_number": "B2222BB",
                            "from_prison": "LEI",
                            "to_prison": "HDI",
                            "from_conditions": "closed",
                            "to_conditions": "open",
                        },
                    )
                ],
            )
        )
        assert later.dead_letters == [] and later.transient == []
        assert sorted(n.person_ref for n in later.notifications) == ["P-MERGE-1", "P-MERGE-2"]
    finally:
        engine.dispose()
