"""Conversation ids the gateway issues itself: random, HMAC-signed, kept in an HttpOnly
SameSite=Strict cookie, so no client can choose or guess another person's id."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

COOKIE = "pcn_session"


def sign(secret: bytes, session_id: str) -> str:
    """`<id>.<signature>` for the cookie."""
    mac = hmac.new(secret, session_id.encode(), hashlib.sha256).digest()
    return f"{session_id}.{base64.urlsafe_b64encode(mac[:18]).decode().rstrip('=')}"


def verify(secret: bytes, value: str | None) -> str | None:
    """The id inside a signed cookie value, or None when absent or forged."""
    if not value or value.count(".") != 1 or len(value) > 100:
        return None
    session_id = value.split(".", 1)[0]
    return session_id if hmac.compare_digest(sign(secret, session_id), value) else None


def new_session_id() -> str:
    """A random conversation id (128 bits)."""
    return secrets.token_urlsafe(16)
