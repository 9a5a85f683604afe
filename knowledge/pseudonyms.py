"""Keyed hashes of phone numbers (HMAC-SHA-256), so that SMS opt-outs and hand-off summaries
never hold a number, and a leaked table cannot be reversed by hashing every possible number.

The key is ``NAVIGATOR_NUMBER_SECRET`` when set (every Rasa instance and action server must
then share it), else a random key made once and kept in ``NAVIGATOR_VAR_DIR/number.key``
(mode 0600; enough for servers sharing one var folder, as ``navigator run`` does). Each use
hashes with its own purpose, so a hand-off id can never be matched against the opt-out table.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import re
import secrets
from collections.abc import Iterable
from pathlib import Path

KEY_FILE = "number.key"
MIN_SECRET = 32  # characters of NAVIGATOR_NUMBER_SECRET
OPT_OUT = "opt-out"
CONVERSATION = "conversation"
SMS_PREFIX = "sms-"
_E164 = re.compile(r"\+\d{6,15}")


def bare_number(address: str) -> str:
    """A phone number without its channel prefix (``whatsapp:``) or spaces."""
    address = address.strip()
    if address.lower().startswith("whatsapp:"):
        address = address[len("whatsapp:"):]
    return re.sub(r"\s+", "", address)


def is_phone_number(address: str) -> bool:
    """Whether a conversation id is a phone number (``+15551234567``, ``whatsapp:+44...``)."""
    return bool(_E164.fullmatch(bare_number(address)))


def number_key(secret: str | None, var_dir: Path) -> bytes:
    """The key: ``secret`` if given (at least 32 characters), else the one kept in
    ``var_dir`` (made on first use; two processes starting at once agree on one)."""
    if secret:
        if len(secret) < MIN_SECRET:
            raise ValueError(f"NAVIGATOR_NUMBER_SECRET must have at least {MIN_SECRET} "
                             "characters (random)")
        return secret.encode("utf-8")
    path = Path(var_dir) / KEY_FILE
    with contextlib.suppress(FileNotFoundError):
        return _read_key(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{KEY_FILE}.{secrets.token_hex(4)}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="ascii") as out:
        out.write(secrets.token_hex(32) + "\n")
        out.flush()
        os.fsync(out.fileno())
    try:
        os.link(tmp, path)  # fails if another process made it first: then theirs is used
    except FileExistsError:
        pass
    finally:
        os.unlink(tmp)
    return _read_key(path)


def _read_key(path: Path) -> bytes:
    key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    if len(key) < 32:
        raise ValueError(f"{path} does not hold a 32-byte key")
    return key


def keyed_hash(key: bytes, text: str, purpose: str) -> str:
    """HMAC-SHA-256 (hex) of ``text`` for one purpose (:data:`OPT_OUT`, :data:`CONVERSATION`)."""
    return hmac.new(key, f"{purpose}\0{text}".encode(), hashlib.sha256).hexdigest()


def optout_hash(key: bytes, address: str) -> str:
    """What the opt-out list keeps for a number (SMS and WhatsApp alike: STOP stops both)."""
    return keyed_hash(key, bare_number(address), OPT_OUT)


def conversation_ref(key: bytes, sender_id: str) -> str:
    """The opaque id of an SMS/WhatsApp conversation: ``sms-`` and 24 hex digits."""
    return SMS_PREFIX + keyed_hash(key, sender_id.strip(), CONVERSATION)[:24]


def sender_of(key: bytes, ref: str, senders: Iterable[str]) -> str | None:
    """The conversation id among ``senders`` whose opaque id is ``ref`` (staff answering an
    SMS hand-off look it up in the tracker store's ids), or None."""
    return next((s for s in senders if is_phone_number(s)
                 and hmac.compare_digest(conversation_ref(key, s), ref)), None)
