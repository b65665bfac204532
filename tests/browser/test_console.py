"""The operations console in a real browser, against a real worker while simulated traffic flows.

An admin signs in, watches the numbers move, sees an invalid event arrive as a dead letter, and replays a
release that had been dead-lettered when its retries ran out: the release then reaches the unit's queue. A
viewer sees the same page with the actions disabled, and the server refuses them too. Everything is audited.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from aiokafka import AIOKafkaProducer
from sqlalchemy import create_engine, select
from sqlalchemy.orm import Session

from connectors.avro import hub_codec
from connectors.publisher import AgencyPublisher, event_from_json
from connectors.queue_reader import notification_json
from hub.messages import InboundMessage, dead_letter
from hub.store.models import Case, OperatorAction, Victim
from tests.integration.conftest import Hub, new_hub, running_worker
from tests.integration.test_walking_skeleton import referral, release, sentence
from tests.integration.waiting import eventually, read_topic

pytestmark = pytest.mark.integration

T = TypeVar("T")
ARTIFACTS = Path(__file__).parent / "artifacts"
WAIT_MS = 30_000
CASE, NOMS, PERSON = "01CN0000126", "F1234GH", "WC-9"
PASSWORDS = {"alice": "alice-admin-pass", "victor": "victor-viewer-pass"}


@pytest.fixture
def hub(broker: str, tmp_path: Path) -> Iterator[Hub]:
    """A worker of its own on SQLite, with an admin (alice) and a viewer (victor) made by the CLI."""
    deployment = new_hub(broker, f"sqlite:///{tmp_path / 'hub.db'}", tmp_path)
    worker = running_worker(deployment)
    next(worker)
    try:
        for name, role in (("alice", "admin"), ("victor", "viewer")):
            made = deployment.run(
                "operators", "add", name, "--role", role, "--password-stdin", input=PASSWORDS[name] + "\n"
            )
            assert made.returncode == 0, made.stderr
        yield deployment
    finally:
        next(worker, None)


class Traffic(threading.Thread):
    """Simulated agency traffic, published from its own thread while the browser watches; bounded in time."""

    def __init__(self, hub: Hub, per_second: float = 15.0, most_seconds: float = 90.0) -> None:
        super().__init__(daemon=True)
        self.hub, self.interval, self.most_seconds = hub, 1.0 / per_second, most_seconds
        self.halt = threading.Event()
        self.published = 0

    def run(self) -> None:
        from hub.tools.traffic import Traffic as Simulation

        async def pump() -> None:
            stream = iter(Simulation(seed=7, first_case=uuid.uuid4().int % 1_000_000))
            deadline = time.monotonic() + self.most_seconds
            async with AgencyPublisher(self.hub.env["HUB_BROKER"], signers=self.hub.signers()) as publisher:
                while not self.halt.is_set() and time.monotonic() < deadline:
                    simulated = next(stream)
                    event = event_from_json(simulated.fields, simulated.source, datetime.now(UTC))
                    await publisher.publish(f"{self.hub.prefix}agency.{simulated.source}.events", [event])
                    self.published += 1
                    await asyncio.sleep(self.interval)

        asyncio.run(pump())


def off_the_page_loop(work: Callable[[], T]) -> T:
    """Playwright's sync API keeps an event loop running in this thread, so asyncio work runs in another."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(work).result(timeout=60)


def publish(hub: Hub, source: str, *events: dict, validate: bool = True) -> None:
    async def send() -> None:
        async with AgencyPublisher(hub.env["HUB_BROKER"], signers=hub.signers()) as publisher:
            for data in events:
                event = event_from_json(data, source, datetime.now(UTC), validate=validate)
                await publisher.publish(f"{hub.prefix}agency.{source}.events", [event])

    off_the_page_loop(lambda: asyncio.run(send()))


def release_dead_lettered_earlier(hub: Hub) -> str:
    """A valid release as the worker dead-letters one whose retries ran out (the database was down then)."""
    event = event_from_json(release(NOMS), "prison", datetime.now(UTC))

    async def send() -> str:
        async with AgencyPublisher(hub.env["HUB_BROKER"], signers=hub.signers()) as publisher:
            value = publisher.encode(event)
        topic = f"{hub.prefix}agency.prison.events"
        signed = hub.signer("prison").headers(topic, NOMS.encode(), value)  # as the prison published it
        original = InboundMessage(topic, 0, 0, None, NOMS.encode(), value, signed)
        letter = dead_letter(
            original,
            f"{hub.prefix}hub.dlq",
            "route",
            "OperationalError",
            "OperationalError (OperationalError) while applying the event; see the worker log",
            attempts=6,
            first_failure_at=datetime.now(UTC) - timedelta(minutes=35),
        )
        producer = AIOKafkaProducer(bootstrap_servers=hub.env["HUB_BROKER"], acks="all")
        await producer.start()
        try:
            sealed = hub.keys.sealer(hub.keys.operations).seal(letter.value)  # as the worker
            sent = await producer.send_and_wait(letter.topic, sealed, key=letter.key, headers=letter.headers)
        finally:
            await producer.stop()
        return f"{sent.partition}:{sent.offset}"

    return off_the_page_loop(lambda: asyncio.run(send()))


def sign_in(browser, hub: Hub, name: str):  # noqa: ANN001, ANN201 - Playwright's types
    from playwright.sync_api import expect

    page = browser.new_page(viewport={"width": 1600, "height": 1000})
    page.goto(f"{hub.web}/")
    expect(page.locator("#sign-in-form")).to_be_visible(timeout=WAIT_MS)
    page.fill("#username", name)
    page.fill("#password", PASSWORDS[name])
    page.click("#sign-in-button")
    expect(page.get_by_test_id("operator-name")).to_have_text(name, timeout=WAIT_MS)
    return page


def post_as_page(page, path: str, body: dict, with_token: bool = True) -> int:  # noqa: ANN001
    """What the page's own script would send (its cookie, and its CSRF token unless told not to)."""
    return page.evaluate(
        """async ([path, body, withToken]) => {
            const status = await (await fetch('/api/status')).json();
            const headers = {'Content-Type': 'application/json'};
            if (withToken) headers['X-CSRF-Token'] = status.csrf;
            const response = await fetch(path, {method: 'POST', headers, body: JSON.stringify(body)});
            return response.status;
        }""",
        [path, body, with_token],
    )


def victims_of_case(hub: Hub) -> list[str] | None:
    """The person references of the case's victims; None while the case does not exist. References only: the
    victims' personal fields are encrypted at rest and this reader holds no data key."""
    engine = create_engine(hub.env["HUB_DATABASE_URL"])
    try:
        with Session(engine) as session:
            case_id = session.scalar(select(Case.id).where(Case.case_ref == CASE))
            if case_id is None:
                return None
            return list(session.scalars(select(Victim.person_ref).where(Victim.case_id == case_id)))
    finally:
        engine.dispose()


def queued_releases(hub: Hub) -> list[dict]:
    codec = hub_codec()
    records = off_the_page_loop(
        lambda: read_topic(hub.env["HUB_BROKER"], f"{hub.prefix}vlo.YH", opener=hub.opener("YH"))
    )
    found = [notification_json(codec, record.value) for record in records]
    return [n for n in found if n and n["event_type"] == "PrisonerReleased" and n["case_ref"] == CASE]


def test_an_admin_watches_traffic_and_replays_a_dead_letter_into_a_unit_queue(hub: Hub, browser) -> None:
    from playwright.sync_api import expect

    started = time.monotonic()
    # The case and its victim, each applied before the next is sent (agencies publish at different times).
    publish(hub, "court", sentence(CASE, NOMS))
    assert eventually(lambda: victims_of_case(hub), lambda found: found is not None, timeout=30) is not None
    publish(hub, "witness-care", referral(CASE, PERSON, "Robin Victim", "LS6 2AB"))
    assert eventually(lambda: victims_of_case(hub), lambda found: found == [PERSON], timeout=30) == [PERSON]
    traffic = Traffic(hub)
    traffic.start()
    admin = viewer = None
    try:
        admin = sign_in(browser, hub, "alice")
        expect(admin.get_by_test_id("operator-role")).to_have_text("admin")
        expect(admin.get_by_test_id("worker-state")).to_have_text("Consuming", timeout=WAIT_MS)

        # The numbers move while traffic flows, without a reload.
        total = admin.get_by_test_id("events-total")
        expect(total).not_to_have_text("–", timeout=WAIT_MS)
        first = int(total.inner_text().replace(",", ""))
        deadline = time.monotonic() + 30
        while int(total.inner_text().replace(",", "")) <= first + 10 and time.monotonic() < deadline:
            admin.wait_for_timeout(500)
        assert int(total.inner_text().replace(",", "")) > first + 10, "the event count did not move"
        expect(admin.locator("#sources-table tr[data-source='prison'] td").nth(2)).not_to_have_text("0")

        # An agency sends an invalid event: it is listed as a dead letter, with its reason and no payload.
        broken = release("F1234G")  # a NOMS number one character short
        publish(hub, "prison", broken, validate=False)
        invalid = admin.locator("#dead-letters-table tbody tr", has_text="noms_number")
        expect(invalid).to_have_count(1, timeout=WAIT_MS)
        expect(invalid).to_contain_text("prison")
        expect(invalid).to_contain_text("ingest")

        # A release dead-lettered earlier, when the database was down and its retries ran out.
        letter_id = release_dead_lettered_earlier(hub)
        row = admin.locator(f"#dead-letters-table tr[data-dead-letter-id='{letter_id}']")
        expect(row).to_contain_text("OperationalError", timeout=WAIT_MS)
        expect(row).to_contain_text("route")
        assert "Robin" not in admin.content() and "LS6" not in admin.content()

        # A viewer sees it too, but may not replay it: the button is disabled and the server says no.
        viewer = sign_in(browser, hub, "victor")
        viewer_row = viewer.locator(f"#dead-letters-table tr[data-dead-letter-id='{letter_id}']")
        expect(viewer_row.locator("[data-action=replay]")).to_be_disabled(timeout=WAIT_MS)
        expect(viewer_row.locator("[data-action=purge]")).to_be_disabled()
        assert post_as_page(viewer, "/api/dead-letters/replay", {"ids": [letter_id]}) == 403
        # Nor may another site's page make an admin's browser replay it (no CSRF token).
        assert post_as_page(admin, "/api/dead-letters/replay", {"ids": [letter_id]}, with_token=False) == 403
        assert queued_releases(hub) == []

        # The admin replays it, confirming first; the release reaches the victim's unit.
        row.locator("[data-action=replay]").click()
        dialog = admin.locator("#confirm")
        expect(dialog).to_be_visible()
        expect(dialog).to_contain_text(f"Replay dead letter {letter_id}?")
        admin.click("#confirm-ok")
        expect(admin.locator("#toast")).to_have_text("Replayed 1 dead letter.", timeout=WAIT_MS)
        expect(row).to_have_count(0, timeout=WAIT_MS)  # no longer waiting
        queued = eventually(lambda: queued_releases(hub), lambda found: len(found) >= 1, timeout=30)
        assert [(n["person_ref"], n["unit_code"]) for n in queued] == [(PERSON, "YH")]

        admin.select_option("#filter-state", "replayed")
        replayed = admin.locator(f"#dead-letters-table tr[data-dead-letter-id='{letter_id}']")
        expect(replayed).to_contain_text("replayed", timeout=WAIT_MS)
        expect(replayed).to_contain_text("by alice")
        admin.select_option("#filter-state", "waiting")
        expect(admin.locator("#dead-letters-table tbody tr", has_text="noms_number")).to_have_count(
            1, timeout=WAIT_MS
        )
        # The sparklines have drawn the last minutes (two 15-second steps at least) for the record.
        expect(admin.locator("#sources-table svg.spark polyline").first).to_be_attached(timeout=WAIT_MS)
        ARTIFACTS.mkdir(exist_ok=True)
        admin.screenshot(path=str(ARTIFACTS / "console.png"), full_page=True)

        # The invalid event cannot be mended by replaying it: the admin purges it, after a second thought.
        invalid.locator("[data-action=purge]").click()
        admin.click("#confirm-cancel")
        expect(dialog).to_be_hidden()
        expect(invalid).to_have_count(1)
        invalid.locator("[data-action=purge]").click()
        expect(dialog).to_contain_text("Purge dead letter")
        admin.click("#confirm-ok")
        expect(admin.locator("#toast")).to_contain_text("Purged dead letter", timeout=WAIT_MS)
        expect(invalid).to_have_count(0, timeout=WAIT_MS)

        viewer.click("#sign-out")
        expect(viewer.locator("#sign-in-form")).to_be_visible(timeout=WAIT_MS)
    finally:
        traffic.halt.set()
        traffic.join(10)
        for page in (admin, viewer):
            if page is not None:
                page.close()

    assert traffic.published > 0
    engine = create_engine(hub.env["HUB_DATABASE_URL"])
    with Session(engine) as session:
        actions = [
            (a.actor, a.action, a.target, a.count)
            for a in session.scalars(select(OperatorAction).order_by(OperatorAction.id))
        ]
    engine.dispose()
    assert ("alice", "dlq.replay", letter_id, 1) in actions
    assert sum(1 for a in actions if a[1] == "dlq.replay") == 1  # the refused attempts did nothing
    assert [(a[0], a[3]) for a in actions if a[1] == "dlq.purge"] == [("alice", 1)]
    assert ("alice", "console.sign_in", "console", 1) in actions
    assert ("victor", "console.sign_in", "console", 1) in actions
    assert ("victor", "console.sign_out", "console", 1) in actions
    print(f"browser test body took {time.monotonic() - started:.1f}s; traffic published {traffic.published}")
