"""The channel's settings (credentials.yml keys, else ``NAVIGATOR_TWILIO_*`` settings) and
the phone-number helpers every part uses: keyed hashes for the opt-out list, tags for log
lines."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from knowledge.pseudonyms import bare_number, optout_hash
from settings import Settings

DEFAULT_API_BASE = "https://api.twilio.com"
TWILIO_MAX_LENGTH = 1600  # characters in one Twilio message
MIN_LENGTH = 70  # one UCS-2 SMS segment: shorter parts would be silly

# Each credentials.yml key and the Settings field it falls back to.
_SETTING = {
    "account_sid": "twilio_account_sid",
    "auth_token": "twilio_auth_token",
    "number": "twilio_number",
    "public_url": "twilio_public_url",
    "api_base_url": "twilio_api_base",
    "max_length": "twilio_max_length",
    "optout_url": "twilio_optout_url",
}
_REQUIRED = ("account_sid", "auth_token", "number", "public_url")

@dataclass(frozen=True)
class TwilioConfig:
    """The channel's settings. ``auth_token`` is kept out of ``repr`` (and so out of logs)."""

    account_sid: str | None = None
    auth_token: str | None = field(default=None, repr=False)
    number: str | None = None
    public_url: str | None = None
    api_base_url: str = DEFAULT_API_BASE
    max_length: int = TWILIO_MAX_LENGTH
    optout_url: str | None = field(default=None, repr=False)  # SQL URL; None: a local file
    number_secret: str | None = field(default=None, repr=False)  # keys the opt-out hashes

    @classmethod
    def from_credentials(cls, credentials: Mapping[str, Any] | None) -> TwilioConfig:
        """Each key from ``credentials`` if given there, else from its setting."""
        credentials = credentials or {}
        settings = Settings.from_env()

        def value(key: str) -> str | None:
            raw = credentials.get(key)
            if raw is None or str(raw).strip() == "":
                raw = getattr(settings, _SETTING[key]) or ""
            return str(raw).strip() or None

        raw_length = value("max_length")
        try:
            max_length = int(raw_length) if raw_length else TWILIO_MAX_LENGTH
        except ValueError:
            raise ValueError(
                f"Twilio max_length must be a whole number, got {raw_length!r}") from None
        if not MIN_LENGTH <= max_length <= TWILIO_MAX_LENGTH:
            raise ValueError(
                f"Twilio max_length must be between {MIN_LENGTH} and {TWILIO_MAX_LENGTH}, "
                f"got {max_length}"
            )
        public_url = value("public_url")
        if public_url and not public_url.startswith(("https://", "http://")):
            raise ValueError("Twilio public_url must be the full http(s) URL Twilio posts to")
        api_base = (value("api_base_url") or DEFAULT_API_BASE).rstrip("/")
        return cls(
            account_sid=value("account_sid"),
            auth_token=value("auth_token"),
            number=value("number"),
            public_url=public_url,
            api_base_url=api_base,
            max_length=max_length,
            optout_url=value("optout_url"),
            number_secret=settings.number_secret,
        )

    @property
    def missing(self) -> list[str]:
        """The environment variables of required settings that have no value."""
        return [f"NAVIGATOR_{_SETTING[key].upper()}" for key in _REQUIRED
                if not getattr(self, key)]

    @property
    def configured(self) -> bool:
        return not self.missing

    @property
    def messages_url(self) -> str:
        return f"{self.api_base_url}/2010-04-01/Accounts/{self.account_sid}/Messages.json"

    def sender_for(self, recipient: str) -> str:
        """Our number in the recipient's channel: ``whatsapp:+1...`` for WhatsApp, else bare."""
        bare = bare_number(self.number or "")
        return f"whatsapp:{bare}" if recipient.lower().startswith("whatsapp:") else bare


# Country calling codes and Twilio's FromCountry values of the two regions we serve.
_REGION_OF_PREFIX = (("+44", "UK"), ("+1", "US"))
_REGION_OF_COUNTRY = {"GB": "UK", "US": "US"}


def region_of_sender(address: str, from_country: str | None = None) -> str | None:
    """``UK`` or ``US`` for a sender's number (Twilio's ``FromCountry`` first, else the
    calling code), or None; the crisis reply uses it when the message says nothing."""
    if from_country:
        return _REGION_OF_COUNTRY.get(from_country.strip().upper())
    bare = bare_number(address)
    return next((region for prefix, region in _REGION_OF_PREFIX if bare.startswith(prefix)),
                None)


def number_hash(address: str, key: bytes) -> str:
    """The opt-out list's keyed hash (HMAC-SHA-256) of a phone number without its channel
    prefix (STOP on one channel stops both)."""
    return optout_hash(key, address)


def legacy_number_hash(address: str) -> str:
    """Plain SHA-256 of the bare number: how opt-outs were stored before they were keyed
    (still honoured, and replaced by the keyed hash when that number next writes)."""
    return hashlib.sha256(bare_number(address).encode("utf-8")).hexdigest()


_REF_KEY = secrets.token_bytes(16)  # per process: log tags correlate within one run only


def number_ref(address: str) -> str:
    """A short tag for log lines instead of the number (a keyed hash: not reversible)."""
    return hmac.new(_REF_KEY, bare_number(address).encode("utf-8"), "sha256").hexdigest()[:8]


def default_var_dir() -> Path:
    """The settings' var folder (``NAVIGATOR_VAR_DIR``)."""
    return Settings.from_env().var_dir

