"""Signatures on HTTP deliveries, in the Standard Webhooks scheme (https://www.standardwebhooks.com).

The hub sends three headers with every POST: `webhook-id` (the notification id), `webhook-timestamp` (Unix
seconds) and `webhook-signature` (`v1,` then the base64 HMAC-SHA256 of `{id}.{timestamp}.{body}` under the
unit's secret). The body is signed as the exact bytes sent, so a receiver checks the raw request body before
parsing it. `verify` is the receiver's side; the Standard Webhooks libraries check the same thing.

A secret is either `whsec_` followed by base64 (the Standard Webhooks form: the key is the decoded bytes, and
the same string works in their libraries) or any other string, whose UTF-8 bytes are the key (give the
libraries those bytes).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import time
from collections.abc import Mapping

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SIGNATURE_VERSION = "v1"
SECRET_PREFIX = "whsec_"
MIN_SECRET_CHARS = 32
# The Standard Webhooks minimum for a decoded key; shorter keys make guessing the secret feasible offline.
MIN_KEY_BYTES = 24
DEFAULT_TOLERANCE_SECONDS = 300


def secret_problem(secret: str) -> str | None:
    """Why a secret cannot be used, or None. Never quotes the secret."""
    if len(secret) < MIN_SECRET_CHARS:
        return f"the secret must be at least {MIN_SECRET_CHARS} characters"
    if secret.startswith(SECRET_PREFIX):
        try:
            key = _decode_prefixed(secret)
        except (binascii.Error, ValueError):
            return f"a secret starting {SECRET_PREFIX} must continue in base64"
        if len(key) < MIN_KEY_BYTES:
            return f"a {SECRET_PREFIX} secret must decode to at least {MIN_KEY_BYTES} bytes"
    return None


def signing_key(secret: str | bytes) -> bytes:
    """The HMAC key a secret stands for: bytes as they are, `whsec_` base64 decoded, other text as UTF-8."""
    if isinstance(secret, bytes):
        return secret
    if secret.startswith(SECRET_PREFIX):
        return _decode_prefixed(secret)
    return secret.encode()


def _decode_prefixed(secret: str) -> bytes:
    encoded = secret[len(SECRET_PREFIX) :]
    # Secrets are often written without base64 padding; restore it rather than refuse them.
    return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)


def signature(key: bytes, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256 of {id}.{timestamp}.{body}>`."""
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return f"{SIGNATURE_VERSION},{base64.b64encode(digest).decode()}"


def signed_headers(key: bytes, message_id: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    """The three headers for one request carrying `body`; signed at the current time unless told."""
    at = int(time.time()) if timestamp is None else timestamp
    return {
        ID_HEADER: message_id,
        TIMESTAMP_HEADER: str(at),
        SIGNATURE_HEADER: signature(key, message_id, at, body),
    }


def verify(
    secret: str | bytes,
    headers: Mapping[str, str],
    body: bytes,
    tolerance_seconds: float = DEFAULT_TOLERANCE_SECONDS,
) -> bool:
    """Whether `body` with these headers was signed with `secret` within `tolerance_seconds` of now.

    `body` is the raw request body. A timestamp outside the tolerance either way fails, so a captured request
    cannot be replayed later; within it, drop repeats by `webhook-id`. The header may carry several
    space-separated signatures (a sender rotating secrets); one matching is enough.
    """
    lowered = {name.lower(): value for name, value in headers.items()}
    message_id = lowered.get(ID_HEADER)
    timestamp_text = lowered.get(TIMESTAMP_HEADER)
    offered = lowered.get(SIGNATURE_HEADER)
    if not message_id or not timestamp_text or not offered:
        return False
    try:
        timestamp = int(timestamp_text)
    except ValueError:
        return False
    if abs(time.time() - timestamp) > tolerance_seconds:
        return False
    expected = signature(signing_key(secret), message_id, timestamp, body).encode()
    matched = False
    for candidate in offered.split(" "):
        # Every candidate is compared, so the time taken does not say which one came close.
        matched |= hmac.compare_digest(expected, candidate.encode())
    return matched
