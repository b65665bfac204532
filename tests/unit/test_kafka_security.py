"""The Kafka clients' security settings: built in one place (hub/settings.py), in the names aiokafka and faust
take, handed to every client the hub starts, and never shown.

No broker is needed: aiokafka checks its security arguments when a client is constructed, and faust turns its
credentials into the same aiokafka arguments (credentials_to_aiokafka_auth), which is compared here.
"""

from __future__ import annotations

import ast
import datetime
import os
import ssl
import subprocess
import sys
from pathlib import Path

import faust
import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from connectors.publisher import AgencyPublisher
from hub.settings import Settings

REPO = Path(__file__).resolve().parents[2]
PASSWORD = "correct-horse-battery-staple"
CLIENT_CLASSES = {"AIOKafkaProducer", "AIOKafkaConsumer", "AIOKafkaAdminClient"}
SECURITY_KEYS = ("security_protocol", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password")


@pytest.fixture(scope="module")
def ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A self-signed CA certificate, as an operator's deploy/kafka/ca/ca.crt."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "hub test CA")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    path = tmp_path_factory.mktemp("kafka-ca") / "ca.crt"
    path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    return path


def sasl_ssl(ca_file: Path) -> Settings:
    return Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_sasl_username="hub",
        kafka_sasl_password=PASSWORD,
        kafka_ssl_cafile=ca_file,
    )


def test_the_default_is_plaintext_for_the_embedded_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HUB_KAFKA_SECURITY_PROTOCOL", raising=False)
    settings = Settings()

    assert settings.kafka_client_options() == {"security_protocol": "PLAINTEXT"}
    assert settings.faust_client_options() == {}


def test_sasl_ssl_gives_aiokafka_scram_and_a_context_that_checks_the_broker(ca_file: Path) -> None:
    options = sasl_ssl(ca_file).kafka_client_options()

    assert {key: options[key] for key in SECURITY_KEYS} == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "hub",
        "sasl_plain_password": PASSWORD,
    }
    context = options["ssl_context"]
    assert isinstance(context, ssl.SSLContext)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert [cert["subject"] for cert in context.get_ca_certs()] == [((("commonName", "hub test CA"),),)]


def test_faust_is_given_the_same_connection_as_every_aiokafka_client(ca_file: Path) -> None:
    for settings in (
        sasl_ssl(ca_file),
        Settings(
            kafka_security_protocol="SASL_PLAINTEXT",
            kafka_sasl_mechanism="PLAIN",
            kafka_sasl_username="hub",
            kafka_sasl_password=PASSWORD,
        ),
        Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=ca_file),
    ):
        ours = settings.kafka_client_options()
        credentials = settings.faust_client_options()["broker_credentials"]
        faust_options = credentials_to_aiokafka_auth(credentials)

        for key in SECURITY_KEYS:
            assert faust_options.get(key) == ours.get(key), (settings.kafka_security_protocol, key)
        assert isinstance(faust_options.get("ssl_context"), ssl.SSLContext) == ("ssl_context" in ours)


def test_a_faust_app_takes_the_credentials(ca_file: Path) -> None:
    app = faust.App("hub-test", broker="kafka://127.0.0.1:1", **sasl_ssl(ca_file).faust_client_options())

    assert isinstance(app.conf.broker_credentials, faust.SASLCredentials)
    assert credentials_to_aiokafka_auth(app.conf.broker_credentials)["security_protocol"] == "SASL_SSL"


@pytest.mark.parametrize("client", [AIOKafkaProducer, AIOKafkaConsumer, AIOKafkaAdminClient])
async def test_aiokafka_clients_accept_the_options(client: type, ca_file: Path) -> None:
    instance = client(bootstrap_servers="127.0.0.1:1", **sasl_ssl(ca_file).kafka_client_options())
    try:
        connection = instance.client if client is AIOKafkaProducer else instance._client

        assert connection._security_protocol == "SASL_SSL"
        assert connection._sasl_mechanism == "SCRAM-SHA-512"
        assert connection._sasl_plain_username == "hub"
    finally:
        await (instance.close() if client is AIOKafkaAdminClient else instance.stop())


async def test_the_publisher_connects_with_the_options(ca_file: Path) -> None:
    publisher = AgencyPublisher(
        "127.0.0.1:1", signers={}, client_options=sasl_ssl(ca_file).kafka_client_options()
    )
    try:
        assert publisher._producer.client._security_protocol == "SASL_SSL"
        assert publisher._producer.client._sasl_plain_username == "hub"
    finally:
        await publisher.__aexit__()


def test_sasl_without_a_user_or_password_is_refused_at_start() -> None:
    with pytest.raises(ValidationError, match="HUB_KAFKA_SASL_USERNAME and HUB_KAFKA_SASL_PASSWORD"):
        Settings(kafka_security_protocol="SASL_SSL", kafka_sasl_username="hub")
    with pytest.raises(ValidationError, match="HUB_KAFKA_SSL_KEYFILE is set without"):
        Settings(kafka_security_protocol="SSL", kafka_ssl_keyfile=Path("client.key"))


def test_the_password_is_read_from_the_environment_and_never_shown(
    monkeypatch: pytest.MonkeyPatch, ca_file: Path
) -> None:
    monkeypatch.setenv("HUB_KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("HUB_KAFKA_SASL_USERNAME", "hub")
    monkeypatch.setenv("HUB_KAFKA_SASL_PASSWORD", PASSWORD)
    monkeypatch.setenv("HUB_KAFKA_SSL_CAFILE", str(ca_file))
    settings = Settings()
    credentials = settings.faust_client_options()["broker_credentials"]

    assert settings.kafka_client_options()["sasl_plain_password"] == PASSWORD
    for shown in (
        repr(settings),
        str(settings),
        settings.model_dump_json(),
        repr(credentials),
        str(credentials),
    ):
        assert PASSWORD not in shown
    assert "**********" in repr(settings)


def test_every_kafka_client_the_hub_starts_is_given_the_security_options() -> None:
    """Each aiokafka client and faust.App built in hub/ and connectors/ is passed `**options`: a client added
    without them would connect in plaintext, or fail, against the production broker."""
    calls: list[str] = []
    for path in sorted([*(REPO / "hub").rglob("*.py"), *(REPO / "connectors").rglob("*.py")]):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call):
                continue
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            is_faust_app = (
                name == "App" and isinstance(func, ast.Attribute) and ast.unparse(func) == "faust.App"
            )
            if name in CLIENT_CLASSES or is_faust_app:
                where = f"{path.relative_to(REPO)}:{node.lineno}"
                calls.append(where)
                assert any(keyword.arg is None for keyword in node.keywords), (
                    f"{where} has no security options"
                )

    assert len(calls) >= 13, calls


def test_settings_that_do_not_hold_are_a_clear_error_naming_the_setting_not_a_traceback() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hub.cli", "queue", "read", "--unit", "YH"],
        env={**os.environ, "HUB_TOPIC_PARTITIONS": "many", "HUB_KAFKA_SASL_PASSWORD": "s3cret-value"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "HUB_TOPIC_PARTITIONS: Input should be a valid integer" in result.stderr
    assert "Traceback" not in result.stderr and "s3cret-value" not in result.stderr + result.stdout
