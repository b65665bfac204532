"""Operators of the console: who may sign in, with which role, and the check of their password.

Only a salted scrypt hash of a password is kept. A viewer sees the console; an admin may also replay and purge
dead letters.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import Engine, delete, func, select
from sqlalchemy.orm import Session

from hub.errors import OperatorError
from hub.store.models import ConsoleSignOut, FailedSignIn, Operator

ROLES = ("viewer", "admin")
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
MIN_PASSWORD_LENGTH = 8
# scrypt at N=2^17 (OWASP's recommendation for scrypt): 128 MiB and a few hundred ms per check, so a stolen
# table of hashes is slow to guess. Hashes made with a smaller N still verify (each names its own cost).
SCRYPT_N, SCRYPT_R, SCRYPT_P = 2**17, 8, 1
# hashlib refuses more than 32 MiB unless told; 128 * N * r bytes, with room.
SCRYPT_MAXMEM = 256 * 1024 * 1024
DEMO_ACCOUNTS = (("admin", "admin", "demo-admin"), ("viewer", "viewer", "demo-viewer"))


@dataclass(frozen=True)
class SignedInOperator:
    username: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == "admin"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def hash_password(password: str) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=SCRYPT_N, r=SCRYPT_R, p=SCRYPT_P, maxmem=SCRYPT_MAXMEM, dklen=32
    )
    return f"scrypt${SCRYPT_N}${SCRYPT_R}${SCRYPT_P}${_b64(salt)}${_b64(digest)}"


def password_matches(password: str, stored: str) -> bool:
    try:
        scheme, n, r, p, salt, digest = stored.split("$")
        if scheme != "scrypt":
            return False
        expected = base64.b64decode(digest)
        actual = hashlib.scrypt(
            password.encode(),
            salt=base64.b64decode(salt),
            n=int(n),
            r=int(r),
            p=int(p),
            maxmem=SCRYPT_MAXMEM,
            dklen=len(expected),
        )
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(actual, expected)


@functools.cache
def _nobody() -> str:
    """A hash to check against when the username is unknown, so a wrong name takes as long as a wrong password.
    Made at the first such check, not at import: scrypt's 128 MiB would otherwise be every worker's peak memory."""
    return hash_password(secrets.token_urlsafe(16))


def check_new_operator(username: str, role: str, password: str) -> None:
    if not USERNAME.match(username):
        raise OperatorError(
            "username: lower-case letters, digits, '.', '_' and '-' only, starting with a letter or digit, "
            "at most 64 characters"
        )
    if role not in ROLES:
        raise OperatorError(f"role: one of {', '.join(ROLES)}")
    if len(password) < MIN_PASSWORD_LENGTH:
        raise OperatorError(f"password: at least {MIN_PASSWORD_LENGTH} characters")


def add_operator(engine: Engine, username: str, role: str, password: str, replace: bool = False) -> bool:
    """Create an operator (or, with `replace`, reset its role and password); False if it already exists."""
    check_new_operator(username, role, password)
    with Session(engine) as session, session.begin():
        existing = session.get(Operator, username)
        if existing is not None and not replace:
            return False
        if existing is None:
            session.add(
                Operator(
                    username=username,
                    password_hash=hash_password(password),
                    role=role,
                    created_at=datetime.now(UTC),
                )
            )
        else:
            existing.password_hash = hash_password(password)
            existing.role = role
    return True


def remove_operator(engine: Engine, username: str) -> bool:
    with Session(engine) as session, session.begin():
        existing = session.get(Operator, username)
        if existing is None:
            return False
        session.delete(existing)
    return True


def list_operators(engine: Engine) -> list[tuple[str, str, datetime]]:
    with Session(engine) as session:
        rows = session.scalars(select(Operator).order_by(Operator.username))
        return [(row.username, row.role, row.created_at) for row in rows]


def find_operator(engine: Engine, username: str) -> SignedInOperator | None:
    with Session(engine) as session:
        row = session.get(Operator, username)
        return SignedInOperator(row.username, row.role) if row is not None else None


def authenticate(engine: Engine, username: str, password: str) -> SignedInOperator | None:
    """Blocking (scrypt and the database): run it in a thread."""
    with Session(engine) as session:
        row = session.get(Operator, username) if USERNAME.match(username) else None
        stored = row.password_hash if row is not None else _nobody()
        matches = password_matches(password, stored)
        return SignedInOperator(row.username, row.role) if row is not None and matches else None


def ensure_demo_operators(engine: Engine) -> list[str]:
    """The demo's `admin` and `viewer` accounts, created if missing: lines saying how to sign in."""
    lines = []
    for username, role, password in DEMO_ACCOUNTS:
        if add_operator(engine, username, role, password):
            lines.append(f"{username} / {password} ({role})")
        else:
            lines.append(f"{username} (existing account kept; its password was not changed)")
    return lines


def record_sign_out(engine: Engine, nonce: str, until: datetime) -> None:
    """A session signed out: refused by every worker from now on (rows past their expiry are dropped here)."""
    with Session(engine) as session, session.begin():
        session.execute(delete(ConsoleSignOut).where(ConsoleSignOut.until < datetime.now(UTC)))
        session.merge(ConsoleSignOut(nonce=nonce, until=until))


def signed_out(engine: Engine, nonce: str) -> bool:
    with Session(engine) as session:
        return session.get(ConsoleSignOut, nonce) is not None


def record_failed_sign_in(engine: Engine, username: str, window_seconds: float) -> None:
    """Counted by every worker; rows older than the lockout window are dropped, so random names cannot pile up."""
    now = datetime.now(UTC)
    with Session(engine) as session, session.begin():
        session.execute(delete(FailedSignIn).where(FailedSignIn.at < now - timedelta(seconds=window_seconds)))
        session.add(FailedSignIn(username=username, at=now))


def failed_sign_ins(engine: Engine, username: str, window_seconds: float) -> int:
    since = datetime.now(UTC) - timedelta(seconds=window_seconds)
    with Session(engine) as session:
        query = select(func.count()).where(FailedSignIn.username == username, FailedSignIn.at >= since)
        return session.scalar(query) or 0
