"""Traffic for the fault tests: cases of three events each (sentence, referral, release), encoded once."""

from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta

from aiokafka import AIOKafkaProducer

from connectors.avro import hub_codec
from connectors.publisher import event_from_json, message_key
from schemas import event_schemas
from tests.integration.conftest import Hub

CODEC = hub_codec()
TODAY = date.today()
Encoded = tuple[str, bytes, bytes | None]  # (source, value, key)


def identifiers(number: int) -> tuple[str, str, str]:
    """Case reference, NOMS number and PNC of case `number`."""
    noms = f"K{number % 10000:04d}{chr(65 + number // 10000 % 26)}{chr(65 + number // 260000 % 26)}"
    return f"K{number:07d}", noms, f"2020/{number:07d}K"


def encode(source: str, data: dict, now: datetime) -> Encoded:
    event = event_from_json(data, source, now)
    return (
        source,
        CODEC.encode(event_schemas()[event.envelope.event_type], event.model_dump()),
        message_key(event),
    )


def slice_events(
    number: int, now: datetime, court: str = "Leeds Crown Court", postcode: str = "LS6 2AB"
) -> list[Encoded]:
    """(topic source, value, key) for one case: sentence, referral, release (Yorkshire and the Humber unless
    told otherwise)."""
    case_ref, noms, pnc = identifiers(number)
    events = [
        (
            "court",
            {
                "event_type": "SentenceImposed",
                "case_ref": case_ref,
                "noms_number": noms,
                "court_code": court,
                "sentence_date": (TODAY - timedelta(days=3)).isoformat(),
                "offender": {"pnc": pnc},
                "offences": [{"code": "OF61016", "classification": "violent"}],
                "disposal": "custody",
                "custodial_term_months": 24,
            },
        ),
        (
            "witness-care",
            {
                "event_type": "VictimReferred",
                "case_ref": case_ref,
                "referral_date": TODAY.isoformat(),
                "victim": {
                    "person_ref": f"P-{number}",
                    "name": f"Victim {number}",
                    "address": {"postcode": postcode},
                },
            },
        ),
        (
            "prison",
            {
                "event_type": "PrisonerReleased",
                "noms_number": noms,
                "release_type": "automatic",
                "release_date": TODAY.isoformat(),
            },
        ),
    ]
    return [encode(source, data, now) for source, data in events]


def escape(number: int, now: datetime) -> Encoded:
    """The prison reports that the offender of case `number` escaped (an urgent event)."""
    _, noms, _ = identifiers(number)
    return encode(
        "prison",
        {
            "event_type": "PrisonerEscaped",
            "noms_number": noms,
            "escaped_at": now.isoformat(),
            "escape_type": "escape_from_establishment",
        },
        now,
    )


def publish_all(hub: Hub, waves: list[list[Encoded]]) -> None:
    async def send() -> None:
        producer = AIOKafkaProducer(bootstrap_servers=hub.env["HUB_BROKER"], acks="all", linger_ms=20)
        await producer.start()
        try:
            for wave in waves:
                futures = []
                for source, value, key in wave:
                    topic = f"{hub.prefix}agency.{source}.events"
                    headers = hub.signer(source).headers(topic, key, value)
                    futures.append(await producer.send(topic, value, key=key, headers=headers))
                await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(send())
