"""A release cancelled before anyone was told of it is never told: not even when both reach the hub in one batch.

docs/domain.md section 9.1: `PrisonerReleaseCancelled` withdraws a held release unseen. With no correction window
(`HUB_RELEASE_HOLD_SECONDS=0`, the default) a release goes to its queue as soon as its batch commits, so a
cancellation applied in the same batch (a backlog drained after an outage) must withdraw it there and then: the
victim is told neither of a release nor of a correction. Once the release is on its queue, a cancellation tells
the same VLO it was a mistake.

The worker's pipeline on a real database (SQLite and PostgreSQL), no broker.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy.orm import Session

from connectors.avro import hub_codec
from connectors.publisher import event_from_json
from hub.messages import InboundMessage
from hub.pipeline import Pipeline
from hub.store.models import Notification
from schemas import event_schemas
from schemas.models import NotificationModel

CODEC = hub_codec()
T0 = datetime.now(UTC) - timedelta(hours=1)
CASE, NOMS, PERSON = "01RC0001226", "C1234RC", "WC-RC-1"
RELEASE_ID = str(uuid.uuid4())

SENTENCE = {
    "event_type": "SentenceImposed",
    "case_ref": CASE,
    "noms_number": NOMS,
    "court_code": "Canterbury Crown Court",
    "sentence_date": (T0 - timedelta(days=30)).date().isoformat(),
    "offences": [{"code": "OF61016", "classification": "violent"}],
    "disposal": "custody",
    "custodial_term_months": 36,
}
ALLOCATED = {"event_type": "CaseAllocated", "case_ref": CASE, "unit_code": "KSS", "vlo_id": "vlo-kss-2"}
REFERRAL = {
    "event_type": "VictimReferred",
    "case_ref": CASE,
    "referral_date": T0.date().isoformat(),
    "victim": {"person_ref": PERSON, "name": "Helen Marsh", "address": {"postcode": "CT2 8DQ"}},
}
PREFERENCES = {
    "event_type": "VictimPreferencesUpdated",
    "case_ref": CASE,
    "person_ref": PERSON,
    "categories": ["release"],
}
RELEASED = {
    "event_type": "PrisonerReleased",
    "event_id": RELEASE_ID,
    "noms_number": NOMS,
    "release_type": "automatic",
    "release_date": T0.date().isoformat(),
}
CANCELLED = {
    "event_type": "PrisonerReleaseCancelled",
    "noms_number": NOMS,
    "cancels_event_id": RELEASE_ID,
    "reason": "Release recorded against the wrong prisoner",
}
CASE_OPENED = [("court", SENTENCE), ("vcs", ALLOCATED), ("witness-care", REFERRAL), ("vcs", PREFERENCES)]


def deliver(pipeline: Pipeline, events: list[tuple[str, dict]], *, recorded: bool = True) -> list[dict]:
    """Apply events as one batch, published a second apart; what the worker puts on the unit queues. `recorded`:
    the worker then notes them as on their queues (False: it stopped before it could)."""
    messages = []
    for n, (source, data) in enumerate(events):
        published_at = T0 + timedelta(seconds=n)
        event = event_from_json({**data, "published_at": published_at.isoformat()}, source, published_at)
        value = CODEC.encode(event_schemas()[event.envelope.event_type], event.model_dump())
        messages.append(InboundMessage(f"x.agency.{source}.events", 0, n, None, None, value))
    result = pipeline.process(messages)
    assert result.dead_letters == [] and result.transient == []
    if recorded:
        pipeline.published([n.notification_id for n in result.notifications], datetime.now(UTC))
    return [
        NotificationModel.model_validate(CODEC.decode(n.payload).record).model_dump(mode="json")
        for n in result.notifications
    ]


def about_release(notifications: list[dict]) -> list[dict]:
    return [n for n in notifications if n["event_type"] in ("PrisonerReleased", "PrisonerReleaseCancelled")]


def left_for_the_outbox_sweep(pipeline: Pipeline) -> list[str]:
    """Event types of what a sweep a minute from now would put on the queues (it leaves the last 30 s alone). The
    worker's sweep first records what it put on the queues since its last transaction."""
    pipeline.confirm_published()
    clock = pipeline.clock
    pipeline.clock = lambda: clock() + timedelta(minutes=1)
    try:
        return [n.event_type for n in pipeline.pending_outbox()]
    finally:
        pipeline.clock = clock


def test_a_release_cancelled_in_its_own_batch_reaches_no_queue(pipeline: Pipeline) -> None:
    delivered = deliver(pipeline, [*CASE_OPENED, ("prison", RELEASED), ("prison", CANCELLED)])

    assert about_release(delivered) == []
    assert [n["event_type"] for n in delivered] == ["VictimReferred"]  # the first-contact task still goes
    assert left_for_the_outbox_sweep(pipeline) == []


def test_a_release_already_on_its_queue_is_corrected_to_the_same_vlo(pipeline: Pipeline) -> None:
    deliver(pipeline, CASE_OPENED)
    [release] = about_release(deliver(pipeline, [("prison", RELEASED)]))

    [correction] = about_release(deliver(pipeline, [("prison", CANCELLED)]))

    assert (release["person_ref"], release["vlo_id"]) == (PERSON, "vlo-kss-2")
    assert (correction["person_ref"], correction["vlo_id"]) == (PERSON, "vlo-kss-2")
    assert "recorded in error" in correction["summary"]
    # The cancellation's batch recorded the release as on its queue before it applied the cancellation.
    with Session(pipeline.engine) as session:
        stored = session.get(Notification, release["notification_id"])
        assert stored is not None
        assert (stored.published_at is not None, stored.withdrawn_at) == (True, None)


def test_a_release_perhaps_on_its_queue_is_corrected_and_never_sent_again(pipeline: Pipeline) -> None:
    # The worker put the release on its queue and stopped before it recorded that it had.
    deliver(pipeline, CASE_OPENED)
    [release] = about_release(deliver(pipeline, [("prison", RELEASED)], recorded=False))

    [correction] = about_release(deliver(pipeline, [("prison", CANCELLED)]))

    assert (correction["person_ref"], correction["vlo_id"]) == (PERSON, "vlo-kss-2")
    assert "recorded in error" in correction["summary"]
    assert (
        left_for_the_outbox_sweep(pipeline) == []
    )  # the release is withdrawn: no late copy after the correction
