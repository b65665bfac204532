"""Settings, from HUB_* environment variables, with defaults that give the embedded set-up."""

from __future__ import annotations

import ssl
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from connectors.http_sink import endpoint_url_problem
from connectors.webhook_signature import MIN_SECRET_CHARS, secret_problem
from routing.catalogue import is_urgent
from schemas import AGENCIES

AGENCY_SOURCES = AGENCIES
# Where `hub up` leaves the embedded broker's address for the other commands to find.
BROKER_ADDRESS_FILE = "broker.address"
# An agency's urgent lane is its prefixed `agency.<source>` followed by this (hub/runtime/topics.py gives it one
# partition).
URGENT_LANE_SUFFIX = ".urgent"

KafkaSecurityProtocol = Literal["PLAINTEXT", "SASL_PLAINTEXT", "SSL", "SASL_SSL"]
KafkaSaslMechanism = Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"]
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")
TLS_PROTOCOLS = ("SSL", "SASL_SSL")


class Settings(BaseSettings):
    # A refused value is not echoed in the error: it may be a secret, or a URL or DSN carrying one.
    model_config = SettingsConfigDict(env_prefix="HUB_", extra="ignore", hide_input_in_errors=True)

    broker: str = Field(
        "",
        description="Kafka bootstrap servers. Empty: the broker `hub up` started (its address is in the data dir).",
    )
    # Every Kafka client the hub starts takes these (kafka_client_options, faust_client_options): the worker, its
    # lanes, the CLI, the publisher, the queue reader, `hub simulate` and `hub bench`.
    kafka_security_protocol: KafkaSecurityProtocol = Field(
        "PLAINTEXT",
        description="How the hub's Kafka clients connect: PLAINTEXT (the embedded broker), SASL_PLAINTEXT, SSL or "
        "SASL_SSL (production).",
    )
    kafka_sasl_mechanism: KafkaSaslMechanism = Field(
        "SCRAM-SHA-512",
        description="SASL mechanism with SASL_PLAINTEXT or SASL_SSL: SCRAM-SHA-512, SCRAM-SHA-256 or PLAIN.",
    )
    kafka_sasl_username: str = Field("", description="SASL user: the principal the broker's ACLs name.")
    kafka_sasl_password: SecretStr = Field(
        SecretStr(""), description="SASL password (never shown: repr, logs and errors print asterisks)."
    )
    kafka_ssl_cafile: Path | None = Field(
        None,
        description="CA certificate (PEM) that signed the broker's, with SSL or SASL_SSL. Empty: the system's CAs.",
    )
    kafka_ssl_certfile: Path | None = Field(
        None, description="Client certificate (PEM), for a broker that asks for TLS client authentication."
    )
    kafka_ssl_keyfile: Path | None = Field(None, description="The client certificate's private key (PEM).")
    database_url: str = Field("", description="SQLAlchemy URL. Empty: SQLite at <data_dir>/hub.db.")
    database_tls: Literal["", "require", "verify-ca", "verify-full"] = Field(
        "",
        description="PostgreSQL: require TLS (libpq sslmode); verify-full also checks the server's name against "
        "its certificate. Empty: libpq's default, which falls back to plaintext.",
    )
    database_tls_root_cert: Path | None = Field(
        None, description="PostgreSQL: the CA certificate (PEM) that verify-ca and verify-full check against."
    )
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
        description='Units that also receive notifications over HTTP: JSON {"YH": "https://cms.example/notify"}. '
        "https only; plain http is accepted for loopback hosts alone.",
    )
    http_secrets: dict[str, SecretStr] = Field(
        {},
        description='Each HTTP endpoint\'s signing secret, per unit: JSON {"YH": "whsec_..."}; required for every '
        f"unit in HUB_HTTP_ENDPOINTS, at least {MIN_SECRET_CHARS} characters (`whsec_` + base64, or any other string).",
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
    keys_dir: Path | None = Field(
        None,
        description="Keys directory: agencies' public keys, units' and operations' keys (README, Security). "
        "Empty: <data_dir>/keys.",
    )
    signing_key_file: Path | None = Field(
        None,
        description="The publishing agency's Ed25519 private key for `hub publish` (PEM). Empty: the agency's "
        "newest key in the keys directory.",
    )
    unit_key_file: Path | None = Field(
        None,
        description="The unit's X25519 private key for `hub queue read` (PEM). Empty: every key of the unit in "
        "the keys directory.",
    )
    restore_lost_queues: bool = Field(
        False,
        description="At start, put back the unit queues, readers' progress and dead letters from the case store "
        "if the broker has lost them (`hub up` sets it: the embedded broker keeps topics in memory).",
    )
    public_url: str = Field(
        "",
        description="Where people reach the console, e.g. https://hub.example (behind a TLS proxy). https: the "
        "sign-in cookie is sent over https only, whatever the proxy forwards.",
    )
    console_secret: str = Field(
        "",
        description="Signs console sessions. Empty: a random secret kept in <data_dir>/console.secret.",
    )
    # The retention schedule (hub/store/retention.py; README, Retention): what the case store and the broker keep.
    victim_data_retention_days: int = Field(
        90,
        ge=1,
        description="Victims' personal data (name, postcode, language, channel, accessibility needs) is removed "
        "this many days after their case closed, with their notifications' payloads and the case's timers.",
    )
    queue_retention_days: int = Field(
        30,
        ge=1,
        description="How long the unit queues keep notifications (retention.ms of the vlo.* topics the hub "
        "creates), and the case store a notification's payload once it is on its queue or withdrawn.",
    )
    agency_topic_retention_days: int = Field(
        28, ge=1, description="How long the agency topics and urgent lanes the hub creates keep events."
    )
    processed_events_retention_days: int = Field(
        35,
        ge=1,
        description="How long an applied event's id is kept to recognise a duplicate: at least the agency "
        "topics' retention, so no redelivery outlives it.",
    )
    parked_events_retention_days: int = Field(
        30,
        ge=1,
        description="A parked event no case claimed within this many days goes to the dead-letter topic "
        "(stage park, error class Unclaimed) and leaves the case store.",
    )
    dead_letter_retention_days: int = Field(
        14,
        ge=1,
        description="How long the dead-letter topic keeps dead letters, and the case store its copies.",
    )
    retry_topic_retention_hours: int = Field(
        24, ge=1, description="How long the retry topics keep records: longer than the longest retry delay."
    )
    audit_retention_days: int = Field(
        730, ge=1, description="How long the audit of what operators and the retention schedule did is kept."
    )
    retention_batch: int = Field(
        500, ge=1, description="Most rows the retention schedule changes in one transaction."
    )
    retention_every_hours: float = Field(
        24.0,
        gt=0,
        description="How often each worker runs the retention schedule (the first time a few minutes after it "
        "starts); `hub retention run` runs it at once.",
    )

    @field_validator("http_endpoints")
    @classmethod
    def _endpoints_are_private(cls, endpoints: dict[str, str]) -> dict[str, str]:
        for unit, url in sorted(endpoints.items()):
            problem = endpoint_url_problem(url)
            if problem is not None:
                raise ValueError(f"HUB_HTTP_ENDPOINTS, unit {unit}: {problem}")
        return endpoints

    @field_validator("http_secrets")
    @classmethod
    def _secrets_are_strong(cls, secrets: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for unit, secret in sorted(secrets.items()):
            problem = secret_problem(secret.get_secret_value())
            if problem is not None:
                raise ValueError(f"HUB_HTTP_SECRETS, unit {unit}: {problem}")
        return secrets

    @model_validator(mode="after")
    def _every_endpoint_has_a_secret(self) -> Settings:
        missing = sorted(set(self.http_endpoints) - set(self.http_secrets))
        if missing:
            raise ValueError(
                f"HUB_HTTP_SECRETS has no secret for unit {', '.join(missing)}: every unit in HUB_HTTP_ENDPOINTS "
                "needs its own, so its system can check that deliveries come from the hub"
            )
        return self

    @model_validator(mode="after")
    def _retention_outlasts_what_depends_on_it(self) -> Settings:
        if self.processed_events_retention_days < self.agency_topic_retention_days:
            raise ValueError(
                "HUB_PROCESSED_EVENTS_RETENTION_DAYS is shorter than HUB_AGENCY_TOPIC_RETENTION_DAYS: an event "
                "redelivered from an agency topic would be applied again"
            )
        longest_delay = max(self.retry_delays_seconds, default=0.0)
        if self.retry_topic_retention_hours * 3600 <= longest_delay:
            raise ValueError(
                "HUB_RETRY_TOPIC_RETENTION_HOURS is not longer than the longest retry delay: a retry topic would "
                "drop records still waiting their turn"
            )
        return self

    @cached_property
    def resolved_database_url(self) -> str:
        return self.database_url or f"sqlite:///{self.data_dir.resolve() / 'hub.db'}"

    @property
    def resolved_keys_dir(self) -> Path:
        return self.keys_dir or self.data_dir / "keys"

    @property
    def database_connect_args(self) -> dict[str, str]:
        """What the PostgreSQL driver is given besides the URL: the TLS settings."""
        if not self.resolved_database_url.startswith("postgresql") or not self.database_tls:
            return {}
        options: dict[str, str] = {"sslmode": self.database_tls}
        if self.database_tls_root_cert is not None:
            options["sslrootcert"] = str(self.database_tls_root_cert)
        return options

    @model_validator(mode="after")
    def _kafka_security_is_complete(self) -> Settings:
        protocol = self.kafka_security_protocol
        if protocol in SASL_PROTOCOLS and not (
            self.kafka_sasl_username and self.kafka_sasl_password.get_secret_value()
        ):
            raise ValueError(
                f"HUB_KAFKA_SECURITY_PROTOCOL={protocol} needs HUB_KAFKA_SASL_USERNAME and HUB_KAFKA_SASL_PASSWORD"
            )
        if self.kafka_ssl_keyfile is not None and self.kafka_ssl_certfile is None:
            raise ValueError("HUB_KAFKA_SSL_KEYFILE is set without HUB_KAFKA_SSL_CERTFILE")
        return self

    def kafka_ssl_context(self) -> ssl.SSLContext:
        """TLS for the broker connection: its certificate checked against the CA file (else the system's CAs), and
        the client certificate if one is set."""
        from aiokafka.helpers import create_ssl_context

        def path(file: Path | None) -> str | None:
            return str(file) if file is not None else None

        context: ssl.SSLContext = create_ssl_context(
            cafile=path(self.kafka_ssl_cafile),
            certfile=path(self.kafka_ssl_certfile),
            keyfile=path(self.kafka_ssl_keyfile),
        )
        return context

    def kafka_client_options(self) -> dict[str, Any]:
        """The security keyword arguments of an aiokafka producer, consumer or admin client."""
        protocol = self.kafka_security_protocol
        options: dict[str, Any] = {"security_protocol": protocol}
        if protocol in SASL_PROTOCOLS:
            options["sasl_mechanism"] = self.kafka_sasl_mechanism
            options["sasl_plain_username"] = self.kafka_sasl_username
            options["sasl_plain_password"] = self.kafka_sasl_password.get_secret_value()
        if protocol in TLS_PROTOCOLS:
            options["ssl_context"] = self.kafka_ssl_context()
        return options

    def faust_client_options(self) -> dict[str, Any]:
        """The same for faust.App, which hands them to every client it starts."""
        import faust

        protocol = self.kafka_security_protocol
        if protocol == "PLAINTEXT":
            return {}
        if protocol == "SSL":
            return {"broker_credentials": faust.SSLCredentials(self.kafka_ssl_context())}
        return {
            "broker_credentials": faust.SASLCredentials(
                username=self.kafka_sasl_username,
                password=self.kafka_sasl_password.get_secret_value(),
                mechanism=self.kafka_sasl_mechanism,
                # With a context, faust connects with SASL_SSL; without, SASL_PLAINTEXT.
                ssl_context=self.kafka_ssl_context() if protocol == "SASL_SSL" else None,
            )
        }

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

    def outbound_topic(self, agency: str) -> str:
        """Where the hub writes for another agency (docs/domain.md section 8): one of OUTBOUND_RECIPIENTS."""
        return f"{self.topic_prefix}outbound.{agency}"

    @property
    def dead_letter_topic(self) -> str:
        return f"{self.topic_prefix}hub.dlq"

    def source_of_topic(self, topic: str) -> str | None:
        for source in AGENCY_SOURCES:
            if topic in (self.inbound_topic(source), self.urgent_topic(source)):
                return source
        return None
