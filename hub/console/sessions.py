"""Console sessions: a signed cookie (HMAC-SHA256) naming the operator, and a CSRF token derived from it.

The cookie is HttpOnly and SameSite=Strict; every state-changing request must also carry the CSRF token in a
header, which only the console's own page can read (from a same-origin JSON response).
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

COOKIE = "hub_console"
SESSION_SECONDS = 8 * 3600  # one shift
SECRET_FILE = "console.secret"


def console_secret(configured: str, data_dir: Path) -> bytes:
    """HUB_CONSOLE_SECRET, else a random secret kept in the data directory (shared by workers on one host)."""
    if configured:
        return configured.encode()
    data_dir.mkdir(parents=True, exist_ok=True)
    path = data_dir / SECRET_FILE
    with contextlib.suppress(FileExistsError):
        # O_EXCL: two workers starting together agree on one secret; only the owner may read it.
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            file.write(secrets.token_urlsafe(48))
    for _ in range(50):  # the other worker may still be writing it
        text = path.read_text().strip()
        if text:
            return text.encode()
        time.sleep(0.01)
    raise RuntimeError(f"{path} is empty: delete it or set HUB_CONSOLE_SECRET")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    username: str
    expires: int
    nonce: str


class SessionSigner:
    def __init__(self, secret: bytes, clock: Callable[[], float] = time.time) -> None:
        self._secret = secret
        self._clock = clock
        # Signed-out sessions, until they would have expired anyway (this worker's memory only).
        self._revoked: dict[str, int] = {}

    def _mac(self, purpose: str, data: bytes) -> bytes:
        return hmac.new(self._secret, purpose.encode() + b"\0" + data, hashlib.sha256).digest()

    def issue(self, username: str) -> tuple[str, Session]:
        session = Session(username, int(self._clock()) + SESSION_SECONDS, secrets.token_urlsafe(16))
        body = json.dumps({"u": session.username, "e": session.expires, "n": session.nonce}).encode()
        return f"{_b64(body)}.{_b64(self._mac('session', body))}", session

    def verify(self, cookie: str | None) -> Session | None:
        if not cookie or "." not in cookie:
            return None
        body_text, _, signature = cookie.partition(".")
        try:
            body = _unb64(body_text)
            if not hmac.compare_digest(_unb64(signature), self._mac("session", body)):
                return None
            data = json.loads(body)
            session = Session(str(data["u"]), int(data["e"]), str(data["n"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            return None
        now = self._clock()
        if session.expires < now or session.nonce in self._revoked:
            return None
        return session

    def revoke(self, session: Session) -> None:
        now = self._clock()
        self._revoked = {nonce: until for nonce, until in self._revoked.items() if until > now}
        self._revoked[session.nonce] = session.expires

    def csrf_token(self, session: Session) -> str:
        return _b64(self._mac("csrf", session.nonce.encode()))

    def csrf_ok(self, session: Session, token: str | None) -> bool:
        if not token:
            return False
        return hmac.compare_digest(token.encode(), self.csrf_token(session).encode())
