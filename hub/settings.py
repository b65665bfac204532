"""Settings, from HUB_* environment variables, with defaults that give the embedded set-up."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from routing.catalogue import is_urgent
from schemas import AGENCIES

AGENCY_SOURCES = AGENCIES
# Where `hub up` leaves the embedded broker's address for the other commands to find.
BROKER_ADDRESS_FILE = "broker.address"
# An agency's urgent lane is its prefixed `agency.<source>` followed by this (hub/topics.py gives it one partition).
URGENT_LANE_SUFFIX = ".urgent"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore")

    broker: str = Field(
        "",
        description="Kafka bootstrap servers. Empty: the broker `hub up` started (its address is in the data dir).",
    )
    database_url: str = Field("", description="SQLAlchemy URL. Empty: SQLite at <data_dir>/hub.db.")
    web_port: int = Field(6066, description="Port of /health, /metrics and the operations console.")
    web_host: str = Field("127.0.0.1", description="Address the web server binds to.")
    data_dir: Path = Field(Path(".hub"), description="Where the embedded database and runtime files live.")
    topic_prefix: str = Field("", description="Prefix for every topic name (isolates deployments and tests).")
    topic_partitions: int = Field(4, description="Partitions of the topics the hub creates.")
    topic_replication: int = Field(1, description="Replication factor of the topics the hub creates.")
    app_id: str = Field(
        "victim-contact-hub", description="Stream application id; the workers' consumer group."
    )
    batch_size: int = Field(500, description="Most events a worker takes in one batch.")
    batch_wait_seconds: float = Field(0.02, description="Longest a worker waits to fill a batch.")
    fetch_wait_ms: int = Field(
        50,
        ge=1,
        description="Longest the broker may hold a fetch of ordinary events when none are waiting (the urgent "
        "lane: 10 ms). Shorter: quicker on Tansu, more CPU for worker and broker.",
    )
    max_message_bytes: int = Field(
        65536, description="Largest inbound payload accepted; larger is dead-lettered."
    )
    schema_registry_url: str = Field(
        "",
        description="Confluent-compatible schema registry. Set: publish with Confluent framing; read both.",
    )
    release_hold_seconds: float = Field(
        0.0, description="How long a release notification is held so a correction can withdraw it."
    )
    urgent_ack_minutes: float = Field(
        30.0, description="An urgent notification not acknowledged within this escalates to unit triage."
    )
    timer_check_seconds: float = Field(
        5.0, description="How often a worker fires due timers and held notifications."
    )
    parked_alert_minutes: float = Field(
        60.0, description="Parked events older than this are reported (log, `hub parked list --older-than`)."
    )
    units_file: Path | None = Field(None, description="Unit reference data (JSON). Empty: the shipped file.")
    retry_delays_seconds: tuple[float, ...] = Field(
        (2.0, 10.0, 60.0, 300.0, 1800.0),
        description="The retry ladder: one tier per delay (JSON list); after the last, a dead letter. "
        "The default outlasts a 35-minute outage.",
    )
    http_endpoints: dict[str, str] = Field(
        {},
        description='Units that also receive notifications over HTTP: JSON {"YH": "https://cms.example/notify"}.',
    )
    http_timeout_seconds: float = Field(5.0, description="Timeout of one HTTP delivery attempt.")
    http_attempts: int = Field(
        6, description="HTTP delivery attempts before a notification is dead-lettered."
    )
    http_backoff_seconds: float = Field(
        0.5, description="First delay between HTTP attempts; doubles each time (with jitter), at most 30 s."
    )
    session_timeout_seconds: float = Field(10.0, description="Consumer session timeout.")
    log_level: str = Field("info", description="Worker log level.")
    console_secret: str = Field(
        "",
        description="Signs console sessions. Empty: a random secret kept in <data_dir>/console.secret.",
    )

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'hub.db'}"

    def resolved_broker(self) -> str:
        """The configured broker, else the one a running `hub up` recorded."""
        if self.broker:
            return self.broker
        address_file = self.data_dir / BROKER_ADDRESS_FILE
        if address_file.exists():
            return address_file.read_text().strip()
        raise RuntimeError(
            "no broker: set HUB_BROKER to Kafka bootstrap servers, or start the embedded one with `hub up`"
        )

    def retry_topic(self, tier: int) -> str:
        return f"{self.topic_prefix}hub.retry.{tier}"

    def inbound_topic(self, source: str) -> str:
        return f"{self.topic_prefix}agency.{source}.events"

    def urgent_topic(self, source: str) -> str:
        """The urgent lane: urgent event types, consumed apart so a backlog of ordinary events never delays them."""
        return f"{self.topic_prefix}agency.{source}{URGENT_LANE_SUFFIX}"

    def topic_for(self, source: str, event_type: str) -> str:
        """Where an agency publishes an event: its urgent lane for urgent event types, else its events topic."""
        return self.urgent_topic(source) if is_urgent(event_type) else self.inbound_topic(source)

    def unit_topic(self, unit_code: str) -> str:
        return f"{self.topic_prefix}vlo.{unit_code}"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}hub.dlq"

    def source_of_topic(self, topic: str) -> str | None:
        for source in AGENCY_SOURCES:
            if topic in (self.inbound_topic(source), self.urgent_topic(source)):
                return source
        return None
