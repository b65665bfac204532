"""The operations console, served by the worker's own web server (faust's, beside /health and /metrics).

`/` is a static page that polls `/api/status` every few seconds. Operators sign in; replay and purge need the
admin role and a CSRF token, and every sign-in, sign-out, replay and purge is written to the audit table.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import faust
from faust.web import View

from hub.console.coverage import CoverageWatch
from hub.console.dead_letter_feed import DeadLetterFeed
from hub.console.operators import (
    SignedInOperator,
    authenticate,
    failed_sign_ins,
    find_operator,
    record_failed_sign_in,
    record_sign_out,
    signed_out,
)
from hub.console.sessions import COOKIE, SESSION_SECONDS, Session, SessionSigner, console_secret
from hub.console.status import ConsoleStatus, DeadLetterQuery
from hub.console.throughput import SAMPLE_SECONDS, MetricsHistory
from hub.runtime.dead_letters import DeadLetter, audit, purge, replay

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from connectors.sealing import Opener
    from hub.settings import Settings

log = logging.getLogger(__name__)

ASSETS = {
    "/": ("index.html", "text/html"),
    "/console.css": ("console.css", "text/css"),
    "/console.js": ("console.js", "text/javascript"),
}
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
        "connect-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}
OPERATOR_CACHE_SECONDS = 10.0  # a removed operator or a changed role takes effect within this
FAILED_SIGN_INS_ALLOWED = 5
FAILED_SIGN_IN_WINDOW_SECONDS = 15 * 60
REPLAY_PER_SECOND = 100.0
MOST_REPLAYED_AT_ONCE = 1000
IDS_PER_AUDIT_ROW = 100  # a replay of many is audited in rows that list every id, not one truncated row


class Console:
    """The console of one worker: its data, its operators' sessions and its web pages.

    It is given what it reads (the case store, the broker, the operations key that opens dead letters, and
    whether the worker is consuming) rather than the worker itself: the worker serves the console, so the
    console knows nothing of the worker."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        broker: str,
        operations: Opener,
        consuming: Callable[[], bool],
    ) -> None:
        self.settings = settings
        self.engine = engine
        self.broker = broker
        self.feed = DeadLetterFeed(
            broker,
            settings.dead_letter_topic,
            operations,
            client_options=settings.kafka_client_options(),
        )
        self.history = MetricsHistory()
        self.status = ConsoleStatus(settings, self.engine, self.feed, self.history, consuming)
        self.coverage = CoverageWatch(
            settings.resolved_database_url, settings.database_connect_args, settings.urgent_ack_minutes
        )
        self.signer = SessionSigner(console_secret(settings.console_secret, settings.data_dir))
        static = resources.files("hub.console") / "static"
        self.assets = {path: (static / name).read_bytes() for path, (name, _) in ASSETS.items()}
        self._operators: dict[str, tuple[float, SignedInOperator | None]] = {}

    # who is asking

    async def operator(self, username: str, fresh: bool = False) -> SignedInOperator | None:
        cached = self._operators.get(username)
        if fresh or cached is None or time.monotonic() - cached[0] > OPERATOR_CACHE_SECONDS:
            found = await asyncio.to_thread(find_operator, self.engine, username)
            cached = (time.monotonic(), found)
            self._operators[username] = cached
        return cached[1]

    async def signed_in(self, request: Any, fresh: bool = False) -> tuple[Session, SignedInOperator] | None:
        session = self.signer.verify(request.cookies.get(COOKIE))
        # Signed out on another worker, or before a restart: the case store says so.
        if session is None or await asyncio.to_thread(signed_out, self.engine, session.nonce):
            return None
        operator = await self.operator(session.username, fresh)
        return (session, operator) if operator is not None else None

    def forget(self, username: str) -> None:
        self._operators.pop(username, None)

    # Failed sign-ins are counted in the case store, so every worker of a deployment shares the allowance and a
    # restart does not reset it.
    async def locked_out(self, username: str) -> bool:
        count = await asyncio.to_thread(failed_sign_ins, self.engine, username, FAILED_SIGN_IN_WINDOW_SECONDS)
        return count >= FAILED_SIGN_INS_ALLOWED

    async def failed(self, username: str) -> None:
        await asyncio.to_thread(record_failed_sign_in, self.engine, username, FAILED_SIGN_IN_WINDOW_SECONDS)

    async def sign_out(self, session: Session) -> None:
        self.signer.revoke(session)
        until = datetime.fromtimestamp(session.expires, UTC)
        await asyncio.to_thread(record_sign_out, self.engine, session.nonce, until)

    async def audit(self, actor: str, action: str, target: str, count: int) -> None:
        await asyncio.to_thread(audit, self.engine, actor, action, target, count)

    # actions

    async def replay(self, operator: SignedInOperator, letters: list[DeadLetter]) -> int:
        """Replays in chunks, each audited once the broker has it, so a failure midway leaves a true record."""
        sent = 0
        try:
            for chunk in _chunks(letters, IDS_PER_AUDIT_ROW):
                ids = " ".join(letter.id for letter in chunk)
                try:
                    done = await replay(
                        self.broker,
                        chunk,
                        operator.username,
                        REPLAY_PER_SECOND,
                        client_options=self.settings.kafka_client_options(),
                    )
                except Exception:
                    await self.audit(operator.username, "dlq.replay_failed", ids, 0)
                    raise
                await self.audit(operator.username, "dlq.replay", ids, done)
                sent += done
        finally:
            await self.status.refresh_store(force=True)
        return sent

    async def purge(self, operator: SignedInOperator, letter: DeadLetter) -> int:
        count = await asyncio.to_thread(purge, self.engine, [letter])
        await self.audit(operator.username, "dlq.purge", letter.id, count)
        await self.status.refresh_store(force=True)
        return count


def _chunks(items: list[DeadLetter], size: int) -> Iterator[list[DeadLetter]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _same_origin(request: Any) -> bool:
    """A browser names the page's origin on a cross-site request; it must be this host."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def add_console(app: faust.App, console: Console) -> Console:
    """Serve the console at `/` on the worker's web server (`app`), and start what feeds it with the worker."""

    class ConsoleView(View):
        def reply(self, body: Any, status: int = 200) -> Any:
            return self.json(body, status=status, headers=dict(SECURITY_HEADERS))

        def refuse(self, status: int, reason: str) -> Any:
            return self.reply({"error": reason}, status)

        async def admin(self, request: Any) -> SignedInOperator | Any:
            """The signed-in admin making this change, or the refusal to send back."""
            who = await console.signed_in(request, fresh=True)
            if who is None:
                return self.refuse(401, "sign in first")
            session, operator = who
            if not _same_origin(request) or not console.signer.csrf_ok(
                session, request.headers.get("X-CSRF-Token")
            ):
                return self.refuse(403, "this request did not come from the console page; reload it")
            if not operator.is_admin:
                return self.refuse(403, "replay and purge need the admin role")
            return operator

        async def body(self, request: Any) -> dict:
            if request.content_type != "application/json":
                return {}
            try:
                data = await request.json()
            except ValueError:
                return {}
            return data if isinstance(data, dict) else {}

    # Registered before faust's own index page, so "/" is the console (aiohttp takes the first match).
    class Asset(ConsoleView):
        path: str
        content_type: str

        async def get(self, request: Any) -> Any:
            headers = {**SECURITY_HEADERS, "Cache-Control": "no-cache"}
            return self.bytes(console.assets[self.path], content_type=self.content_type, headers=headers)

    for path, (name, content_type) in ASSETS.items():
        page = type(f"ConsoleAsset_{name}", (Asset,), {"path": path, "content_type": content_type})
        app.page(path, name=f"console_{name}")(page)

    @app.page("/api/status", name="console_status")
    class StatusView(ConsoleView):
        async def get(self, request: Any) -> Any:
            who = await console.signed_in(request)
            if who is None:
                return self.refuse(401, "sign in first")
            session, operator = who
            query = DeadLetterQuery.from_mapping(dict(request.query))
            body = await console.status.status(query)
            body["coverage"] = console.coverage.view  # refreshed in the background (watch_coverage)
            body["operator"] = {"username": operator.username, "role": operator.role}
            body["csrf"] = console.signer.csrf_token(session)
            return self.reply(body)

    @app.page("/api/session", name="console_session")
    class SessionView(ConsoleView):
        async def post(self, request: Any) -> Any:
            if not _same_origin(request):
                return self.refuse(403, "sign in from the console page")
            data = await self.body(request)
            username = str(data.get("username", "")).strip().lower()[:64]
            password = str(data.get("password", ""))[:1024]
            if not username or not password:
                return self.refuse(400, "enter a username and a password")
            if await console.locked_out(username):
                return self.refuse(429, "too many failed sign-ins for this account; try again in 15 minutes")
            operator = await asyncio.to_thread(authenticate, console.engine, username, password)
            if operator is None:
                await console.failed(username)
                # Only known accounts are named in the audit: a mistyped name may be someone's password.
                known = await asyncio.to_thread(find_operator, console.engine, username)
                await console.audit(
                    known.username if known else "unknown", "console.sign_in_failed", "console", 0
                )
                await asyncio.sleep(0.5)
                return self.refuse(401, "wrong username or password")
            cookie, session = console.signer.issue(operator.username)
            await console.audit(operator.username, "console.sign_in", "console", 1)
            console.forget(operator.username)
            response = self.reply(
                {
                    "operator": {"username": operator.username, "role": operator.role},
                    "csrf": console.signer.csrf_token(session),
                }
            )
            response.set_cookie(
                COOKIE,
                cookie,
                max_age=SESSION_SECONDS,
                path="/",
                httponly=True,
                samesite="Strict",
                # Behind a TLS proxy the request itself is plain http: the configured public URL says https.
                secure=request.secure or console.settings.public_url.startswith("https://"),
            )
            return response

        async def delete(self, request: Any) -> Any:
            who = await console.signed_in(request)
            if who is None:
                return self.refuse(401, "not signed in")
            session, operator = who
            if not console.signer.csrf_ok(session, request.headers.get("X-CSRF-Token")):
                return self.refuse(403, "this request did not come from the console page; reload it")
            await console.sign_out(session)
            await console.audit(operator.username, "console.sign_out", "console", 1)
            response = self.reply({"signed_out": True})
            response.del_cookie(COOKIE, path="/")
            return response

    @app.page("/api/dead-letters/replay", name="console_replay")
    class ReplayView(ConsoleView):
        async def post(self, request: Any) -> Any:
            operator = await self.admin(request)
            if not isinstance(operator, SignedInOperator):
                return operator
            data = await self.body(request)
            await console.status.refresh_store()
            if isinstance(data.get("ids"), list):
                ids = [str(i) for i in data["ids"]][:MOST_REPLAYED_AT_ONCE]
                letters = [console.feed.letters.get(i) for i in ids]
                missing = [i for i, letter in zip(ids, letters, strict=True) if letter is None]
                shown = [
                    letter
                    for letter in letters
                    if letter is not None and (letter.partition, letter.offset) not in console.status.purged
                ]
                if missing or len(shown) < len(ids):
                    return self.refuse(404, "no such dead letter (purged, or not on the dead-letter topic)")
            elif isinstance(data.get("filter"), dict):
                query = DeadLetterQuery.from_mapping(data["filter"])
                shown = console.status.dead_letters(query)[:MOST_REPLAYED_AT_ONCE]
            else:
                return self.refuse(400, "name the dead letters to replay: ids, or a filter")
            try:
                sent = await console.replay(operator, shown)
            except Exception as error:
                log.warning("console: replay by %s failed (%s)", operator.username, type(error).__name__)
                return self.refuse(
                    502, "the broker did not take the replay; see the replayed list for what went"
                )
            return self.reply({"replayed": sent, "ids": [letter.id for letter in shown[:sent]]})

    @app.page("/api/dead-letters/purge", name="console_purge")
    class PurgeView(ConsoleView):
        async def post(self, request: Any) -> Any:
            operator = await self.admin(request)
            if not isinstance(operator, SignedInOperator):
                return operator
            data = await self.body(request)
            await console.status.refresh_store()
            letter = console.feed.letters.get(str(data.get("id", "")))
            if letter is None or (letter.partition, letter.offset) in console.status.purged:
                return self.refuse(
                    404, "no such dead letter (already purged, or not on the dead-letter topic)"
                )
            purged = await console.purge(operator, letter)
            return self.reply({"purged": purged, "id": letter.id})

    @app.timer(interval=SAMPLE_SECONDS, name="console_sample_metrics")
    async def sample_metrics() -> None:
        console.history.sample()

    @app.task
    async def follow_dead_letters() -> None:
        console.history.sample()
        await console.feed.run()

    @app.task
    async def watch_coverage() -> None:
        await console.coverage.run()

    return console
