"""`hub retention run [--dry-run]`: the retention schedule (hub/store/retention.py) at once, from the command
line."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

import typer

from hub.cli.common import ensure_embedded_keys, fail, principal
from hub.messages import OutboundRecord
from hub.settings import Settings

retention_app = typer.Typer(
    help="The retention schedule: what the case store keeps, and for how long (README, Retention).",
    no_args_is_help=True,
)


class DeadLetterSender:
    """Writes the schedule's dead letters as the worker does: sealed for the operations key, on the dead-letter
    topic, with a copy in the case store for a broker that loses its topics. Connects on first use only: a run
    with no unclaimed parked event needs no broker."""

    def __init__(self, settings: Settings, engine: Any) -> None:
        from hub.runtime.protection import RecordProtection

        self.settings = settings
        self.engine = engine
        self.protection = RecordProtection(settings, [], [])
        self.producer: Any = None

    async def __call__(self, records: list[OutboundRecord]) -> None:
        from aiokafka import AIOKafkaProducer

        from hub.runtime.queues import WrittenRecord, keep_dead_letters
        from hub.runtime.topics import ensure_topics, retention_of

        if not records:
            return
        sealed = self.protection.seal(records)
        options = self.settings.kafka_client_options()
        if self.producer is None:
            bootstrap = self.settings.resolved_broker()
            await ensure_topics(
                bootstrap,
                [self.settings.dead_letter_topic],
                self.settings.topic_partitions,
                self.settings.topic_replication,
                client_options=options,
                retention=retention_of(self.settings),
            )
            self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", **options)
            await self.producer.start()
        futures = [
            await self.producer.send(record.topic, record.value, key=record.key, headers=record.headers)
            for record in sealed
        ]
        written = await asyncio.gather(*futures)
        await asyncio.to_thread(
            keep_dead_letters,
            self.engine,
            [
                WrittenRecord(record, at.partition, at.offset)
                for record, at in zip(sealed, written, strict=True)
            ],
        )

    async def close(self) -> None:
        if self.producer is not None:
            await self.producer.stop()


@retention_app.command("run")
def retention_run(
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Only list what is due, step by step; change nothing.")
    ] = False,
    actor: Annotated[
        str | None,
        typer.Option(help="Your name, recorded beside your login in the audit (default: HUB_OPERATOR)."),
    ] = None,
) -> None:
    """Run the retention schedule now: per step, what is due (--dry-run), or what was done. Each batch is audited
    (operator_actions, actor "retention"); output names counts, case references and ids only."""
    from hub.errors import MissingKeys
    from hub.store.engine import open_store
    from hub.store.retention import Retention

    settings = Settings()
    ensure_embedded_keys(settings)
    engine = open_store(settings)
    retention = Retention(settings, engine, actor=f"retention, run by {principal(actor)}")
    if dry_run:
        for report in retention.due():
            typer.echo(report.line(done=False))
        typer.echo("dry run: nothing was changed")
        return

    async def run() -> list[Any]:
        sender = DeadLetterSender(settings, engine)
        try:
            return await retention.run(sender)
        finally:
            await sender.close()

    try:
        reports = asyncio.run(run())
    except MissingKeys as error:
        fail(f"cannot seal dead letters: {error}. Create keys with `hub keys new` (README, Security).")
        raise
    except RuntimeError as error:  # no broker configured nor started: the message says which settings
        fail(f"the retention run stopped: {error}; what it did until then is done and audited", 1)
        raise
    except Exception as error:  # a library's message may quote data: its type only
        fail(
            f"the retention run stopped ({type(error).__name__}); what it did until then is done and audited",
            1,
        )
        raise
    for report in reports:
        typer.echo(report.line(done=True))
