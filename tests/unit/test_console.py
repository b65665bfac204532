"""The console's own logic without a browser: rates and percentiles from metric samples, signed sessions,
CSRF tokens, password hashes and operator accounts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from hub.console.operators import (
    add_operator,
    authenticate,
    ensure_demo_operators,
    find_operator,
    hash_password,
    password_matches,
    remove_operator,
)
from hub.console.sessions import SESSION_SECONDS, SessionSigner, console_secret
from hub.console.throughput import BUCKET_SECONDS, WINDOW_SECONDS, MetricsHistory, quantile
from hub.errors import OperatorError
from hub.store.engine import make_engine


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_quantiles_interpolate_within_buckets_as_prometheus_does() -> None:
    buckets = {0.01: 50.0, 0.1: 90.0, 1.0: 100.0, float("inf"): 100.0}
    assert quantile(0.5, buckets) == pytest.approx(0.01)
    assert quantile(0.7, buckets) == pytest.approx(0.01 + 0.09 * 0.5)
    assert quantile(0.95, buckets) == pytest.approx(0.1 + 0.9 * 0.5)
    assert quantile(0.5, {1.0: 0.0, float("inf"): 0.0}) is None
    # Beyond the largest finite bucket only its bound is known.
    assert quantile(0.99, {1.0: 1.0, float("inf"): 10.0}) == 1.0


def test_rates_totals_and_percentiles_come_from_differences_between_samples() -> None:
    registry = CollectorRegistry()
    events = Counter("hub_events_consumed_total", "", ["source", "event_type", "outcome"], registry=registry)
    notifications = Counter("hub_notifications_total", "", ["unit", "priority", "action"], registry=registry)
    latency = Histogram(
        "hub_end_to_end_latency_seconds", "", ["priority"], registry=registry, buckets=(0.01, 0.1, 1.0)
    )
    waiting = Gauge("hub_retry_waiting", "", ["tier"], registry=registry)
    clock = Clock()
    history = MetricsHistory(registry, clock)
    events.labels("court", "SentenceImposed", "accepted").inc(100)  # before the console started
    history.sample()
    for _ in range(30):  # one minute at 2 s a sample: 5 court events and 1 notification a second
        clock.now += 2
        events.labels("court", "SentenceImposed", "accepted").inc(8)
        events.labels("court", "SentenceImposed", "dead_letter").inc(2)
        notifications.labels("YH", "high", "inform").inc(2)
        latency.labels("high").observe(0.05)
        history.sample()
    waiting.labels("1").set(3)
    history.sample()

    view = history.view(["court", "prison"])
    court, prison = view["sources"]
    assert (court["source"], prison["source"]) == ("court", "prison")
    assert court["per_second"] == pytest.approx(5.0, rel=0.05)
    assert court["window_total"] == 300 and court["dead_letters"] == 60 and court["since_start"] == 400
    assert prison["per_second"] == 0 and prison["window_total"] == 0
    assert view["units"][0]["unit"] == "YH" and view["units"][0]["window_total"] == 60
    assert view["notifications"]["per_second"] == pytest.approx(1.0, rel=0.05)
    high = view["latency"][0]
    assert high["priority"] == "high" and high["window"]["count"] == 30
    assert 0.01 < high["window"]["p95"] <= 0.1
    assert view["retry"] == {"tiers": [{"tier": "1", "waiting": 3}], "waiting": 3, "oldest_age_seconds": None}
    series = court["series"]
    assert len(series) == WINDOW_SECONDS // BUCKET_SECONDS
    assert series[-1] == pytest.approx(5.0, rel=0.05)
    assert series[0] is None  # before the console started


def test_the_oldest_samples_leave_the_window() -> None:
    registry = CollectorRegistry()
    events = Counter("hub_events_consumed_total", "", ["source", "event_type", "outcome"], registry=registry)
    clock = Clock()
    history = MetricsHistory(registry, clock)
    for _ in range(int(2 * WINDOW_SECONDS / 2)):  # half an hour at one event a second
        events.labels("prison", "PrisonerReleased", "accepted").inc(2)
        clock.now += 2
        history.sample()
    prison = history.view(["prison"])["sources"][0]
    assert prison["window_total"] == pytest.approx(WINDOW_SECONDS, abs=4)
    assert prison["since_start"] == 2 * WINDOW_SECONDS


def test_a_session_cookie_is_only_good_signed_unexpired_and_not_signed_out() -> None:
    clock = Clock()
    signer = SessionSigner(b"secret", clock)
    cookie, session = signer.issue("alice")
    assert signer.verify(cookie) == session
    body, _, signature = cookie.partition(".")
    forged_body = SessionSigner(b"secret", clock).issue("mallory")[0].partition(".")[0]
    assert signer.verify(f"{forged_body}.{signature}") is None  # someone else's name under alice's signature
    assert signer.verify(f"{body}.{signature[:-2]}xx") is None
    assert SessionSigner(b"other secret", clock).verify(cookie) is None
    assert signer.verify("") is None and signer.verify("garbage") is None and signer.verify("a.b") is None
    clock.now += SESSION_SECONDS + 1
    assert signer.verify(cookie) is None
    cookie, session = signer.issue("alice")
    signer.revoke(session)
    assert signer.verify(cookie) is None


def test_the_csrf_token_belongs_to_one_session() -> None:
    signer = SessionSigner(b"secret")
    _, mine = signer.issue("alice")
    _, other = signer.issue("alice")
    token = signer.csrf_token(mine)
    assert signer.csrf_ok(mine, token)
    assert not signer.csrf_ok(other, token)
    assert not signer.csrf_ok(mine, None) and not signer.csrf_ok(mine, "")


def test_the_secret_is_made_once_and_readable_only_by_its_owner(tmp_path: Path) -> None:
    first = console_secret("", tmp_path)
    assert console_secret("", tmp_path) == first and len(first) >= 48
    assert stat.S_IMODE((tmp_path / "console.secret").stat().st_mode) == 0o600
    assert console_secret("configured", tmp_path) == b"configured"


def test_passwords_are_kept_as_salted_scrypt_hashes() -> None:
    stored = hash_password("correct horse")
    assert stored.startswith("scrypt$") and "correct horse" not in stored
    assert hash_password("correct horse") != stored  # a new salt each time
    assert password_matches("correct horse", stored)
    assert not password_matches("Correct horse", stored)
    assert not password_matches("correct horse", "plain$text")


def test_a_password_hash_costs_scrypt_at_n_2_17_and_older_cheaper_hashes_still_verify() -> None:
    import base64
    import hashlib

    assert hash_password("correct horse").split("$")[1:4] == [str(2**17), "8", "1"]
    salt = b"s" * 16
    older = hashlib.scrypt(b"correct horse", salt=salt, n=2**14, r=8, p=1, dklen=32)
    stored = f"scrypt${2**14}$8$1${base64.b64encode(salt).decode()}${base64.b64encode(older).decode()}"
    assert password_matches("correct horse", stored) and not password_matches("wrong horse", stored)


def test_operators_are_added_checked_and_removed(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'hub.db'}")
    assert add_operator(engine, "alice", "admin", "alice-password")
    assert not add_operator(engine, "alice", "viewer", "another-password")  # not silently replaced
    assert authenticate(engine, "alice", "alice-password").role == "admin"
    assert authenticate(engine, "alice", "wrong-password") is None
    assert authenticate(engine, "nobody", "alice-password") is None
    assert add_operator(engine, "alice", "viewer", "new-password-1", replace=True)
    assert authenticate(engine, "alice", "alice-password") is None
    assert find_operator(engine, "alice").role == "viewer"
    with pytest.raises(OperatorError, match="role"):
        add_operator(engine, "bob", "root", "bob-password")
    with pytest.raises(OperatorError, match="password"):
        add_operator(engine, "bob", "viewer", "short")
    with pytest.raises(OperatorError, match="username"):
        add_operator(engine, "Bob Smith", "viewer", "bob-password")
    assert remove_operator(engine, "alice") and find_operator(engine, "alice") is None

    assert ensure_demo_operators(engine) == ["admin / demo-admin (admin)", "viewer / demo-viewer (viewer)"]
    assert ensure_demo_operators(engine)[0].startswith("admin (existing account kept")
    engine.dispose()


def test_hub_operators_adds_lists_and_removes_accounts_and_audits_it(tmp_path: Path) -> None:
    from sqlalchemy import select
    from sqlalchemy.orm import Session
    from typer.testing import CliRunner

    from hub.cli.main import app
    from hub.store.models import OperatorAction

    url = f"sqlite:///{tmp_path / 'hub.db'}"
    env = {"HUB_DATABASE_URL": url, "HUB_DATA_DIR": str(tmp_path), "HUB_OPERATOR": "ops-lead"}
    runner = CliRunner()

    def hub(*args: str, input: str | None = None):  # noqa: ANN202
        return runner.invoke(app, ["operators", *args], input=input, env=env)

    made = hub("add", "alice", "--role", "admin", "--password-stdin", input="a-long-password\n")
    assert made.exit_code == 0, made.output
    assert "operator alice (admin) created" in made.output
    again = hub("add", "alice", "--role", "viewer", "--password-stdin", input="another-password\n")
    assert again.exit_code == 1 and "exists" in again.output
    short = hub("add", "bob", "--password-stdin", input="short\n")
    assert short.exit_code == 2 and "at least 8 characters" in short.output
    listed = hub("list")
    assert listed.exit_code == 0 and listed.output.startswith("alice\tadmin\t")
    assert "a-long-password" not in listed.output
    assert hub("remove", "alice").exit_code == 0
    assert hub("remove", "alice").exit_code == 1

    engine = make_engine(url)
    assert authenticate(engine, "alice", "a-long-password") is None
    with Session(engine) as session:
        audited = [(a.actor, a.action, a.target) for a in session.scalars(select(OperatorAction))]
    engine.dispose()
    assert audited == [
        ("ops-lead", "operators.add", "alice role=admin"),
        ("ops-lead", "operators.remove", "alice"),
    ]


def test_demo_accounts_are_made_only_in_the_embedded_default_database(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from hub.console.cli import demo_operators
    from hub.console.operators import find_operator
    from hub.settings import Settings

    named = f"sqlite:///{tmp_path / 'named.db'}"
    demo_operators(Settings(database_url=named, data_dir=tmp_path / "a"))
    assert "no demo accounts" in capsys.readouterr().err
    assert find_operator(make_engine(named), "admin") is None

    embedded = Settings(database_url="", data_dir=tmp_path / "b")
    (tmp_path / "b").mkdir()
    demo_operators(embedded)
    assert "sign in as admin / demo-admin" in capsys.readouterr().out
    assert find_operator(make_engine(embedded.resolved_database_url), "admin") is not None
