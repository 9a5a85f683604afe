"""Every setting of the assistant, defined once and read from the environment in one place.

Each ``NAVIGATOR_*`` variable is declared in :data:`VARIABLES` (name, type, default,
meaning); :meth:`Settings.from_env` is the only code that reads them, and the README's
settings table documents each (both are tested). No secret has a default. This module
imports nothing of the project and no Rasa, so every part (actions, channels, gateway,
command line) can use it.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGIONS = ("US", "UK")


class SettingsError(ValueError):
    """A setting has a value the assistant cannot use."""


@dataclass(frozen=True)
class Variable:
    """One environment variable: its Settings field, type, default and meaning."""

    field: str
    kind: str  # text port int float bool path region secret keys private (address) networks
    default: object
    meaning: str
    low: float | None = None
    high: float | None = None

    @property
    def name(self) -> str:
        return f"NAVIGATOR_{self.field.upper()}"


VARIABLES: tuple[Variable, ...] = (
    Variable("default_region", "region", "US", "US or UK: answers people get until they say "
             "where they are"),
    Variable("language", "text", "en", "content language"),
    Variable("gateway_host", "text", "127.0.0.1", "where the public gateway listens (0.0.0.0 "
             "publishes it)"),
    Variable("private_host", "private", "127.0.0.1", "where Rasa and the action server listen: "
             "loopback, or a private address (never public)"),
    Variable("rasa_port", "port", 5005, "Rasa's port (more instances take the next ones)"),
    Variable("actions_port", "port", 5055, "the action server's port"),
    Variable("var_dir", "path", ROOT / "var", "tracker database, directory database, run files"),
    Variable("models_dir", "path", ROOT / "models", "trained models"),
    Variable("handoff_phone", "text", None, "the staff line people are offered"),
    Variable("handoff_hours", "text", None, "when the staff line is open"),
    Variable("handoff_webhook_url", "text", None, "where hand-off summaries are POSTed"),
    Variable("handoff_webhook_token", "secret", None, "bearer token sent to the webhook"),
    Variable("handoff_webhook_timeout", "float", 5.0, "seconds to wait for the webhook's "
             "answer", 0.1, 120),
    Variable("handoff_rate", "int", 30, "hand-off webhook POSTs an hour per channel, per "
             "action server", 1, 100_000),
    Variable("number_secret", "secret", None, "keys the hashes of phone numbers (opt-outs, "
             "SMS ids in hand-offs); default a key kept in var_dir"),
    Variable("rasa_api_token", "secret", None, "switches on Rasa's HTTP API (to resume "
             "conversations)"),
    Variable("web_port", "port", 8080, "the public gateway's port"),
    Variable("web_secret", "keys", None, "signs conversation cookies: comma-separated keys of "
             "at least 32 random bytes each, the first signs (random per start when unset)"),
    Variable("web_session_hours", "float", 12.0, "hours a web conversation id is accepted",
             0.01, 720),
    Variable("web_rate_limit_url", "secret", None, "redis:// URL: rate limits, offered "
             "buttons and revoked ids shared by gateway replicas"),
    Variable("web_secure_cookies", "bool", False, "true behind HTTPS"),
    Variable("web_session_rate", "int", 20, "messages a minute per conversation", 1, 10_000),
    Variable("web_address_rate", "int", 300, "requests a minute per address", 1, 100_000),
    Variable("web_new_conversation_rate", "int", 30, "new conversations a minute per address",
             1, 100_000),
    Variable("trusted_proxies", "networks", (), "comma-separated addresses or CIDR networks of "
             "the proxies whose X-Forwarded-For / Forwarded the gateway believes (default "
             "none)"),
    Variable("directory_url", "secret", None, "the provider directory's database URL "
             "(default a SQLite file in var_dir)"),
    Variable("tracker_url", "secret", None, "where conversations are kept (default a SQLite "
             "file in var_dir)"),
    Variable("lock_store_url", "secret", None, "redis:// lock store for several Rasa "
             "instances"),
    Variable("rasa_instances", "int", 1, "Rasa processes behind the gateway", 1, 32),
    Variable("retention_interval_hours", "float", 6.0, "navigator run deletes old "
             "conversations at start and then every this many hours (0: never)", 0, 8_760),
    Variable("retention_days", "float", 30.0, "navigator retention: days of conversations "
             "kept", 0, 36_500),
    Variable("twilio_account_sid", "text", None, "Twilio account SID"),
    Variable("twilio_auth_token", "secret", None, "Twilio auth token (checks signatures)"),
    Variable("twilio_number", "text", None, "our SMS/WhatsApp number"),
    Variable("twilio_public_url", "text", None, "the exact public URL Twilio posts to"),
    Variable("twilio_api_base", "text", None, "Twilio's REST API base URL (tests point it "
             "at a local server)"),
    Variable("twilio_max_length", "text", None, "characters per SMS segment group (default "
             "1600)"),
    Variable("twilio_optout_url", "secret", None, "SQL database for opt-outs shared by "
             "instances (default a file in var_dir)"),
    Variable("test_pg_url", "secret", None, "tests and bench: use this PostgreSQL instead of "
             "starting a private one"),
)
# Set by `navigator run` for Rasa's endpoints file, never by people: the store passwords.
PASSWORD_VARIABLES = ("NAVIGATOR_TRACKER_PASSWORD", "NAVIGATOR_LOCK_STORE_PASSWORD")


# Variables that are gone, and what to set instead: an old value is an error, never ignored.
RETIRED = {
    "NAVIGATOR_HOST": "it set where every server listens; now NAVIGATOR_GATEWAY_HOST sets where "
                      "the public gateway listens (0.0.0.0 to publish it) and "
                      "NAVIGATOR_PRIVATE_HOST where Rasa and the action server listen "
                      "(loopback by default)",
}


def _private_address(var: Variable, raw: str) -> str:
    """``raw`` if it is a loopback or private IP address (never 0.0.0.0 or ::)."""
    import ipaddress

    try:
        address = ipaddress.ip_address(raw.strip("[]"))
    except ValueError:
        raise SettingsError(f"{var.name} must be an IP address (loopback or private), "
                            f"got {raw!r}") from None
    if address.is_unspecified or not (address.is_loopback or address.is_private):
        raise SettingsError(f"{var.name} must be a loopback or private address, never a "
                            f"public or all-interfaces one: got {raw!r}. Only the gateway "
                            "is public (NAVIGATOR_GATEWAY_HOST)")
    return str(address)


MIN_KEY_BYTES = 32
KEY_HELP = ("at least 32 random bytes, written as hex or base64: make one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`")


def _key_bytes(text: str) -> bytes | None:
    """A key written as hex (even length) or base64 / base64url, decoded; None otherwise."""
    import base64
    import binascii

    if len(text) % 2 == 0 and all(c in "0123456789abcdefABCDEF" for c in text):
        return bytes.fromhex(text)
    standard = text.replace("-", "+").replace("_", "/").rstrip("=")
    try:
        return base64.b64decode(standard + "=" * (-len(standard) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None


def decode_keys(raw: str, name: str = "NAVIGATOR_WEB_SECRET") -> tuple[bytes, ...]:
    """Comma-separated keys (the first signs, all verify: rotation), each at least 32 random
    bytes; SettingsError (never quoting a key) otherwise."""
    items = [item.strip() for item in raw.split(",") if item.strip()]
    if not items:
        raise SettingsError(f"{name} has no key: {KEY_HELP}")
    keys = []
    for n, item in enumerate(items, start=1):
        key = _key_bytes(item)
        # a repeated pattern or a word decodes to few distinct bytes: not random
        if key is None or len(key) < MIN_KEY_BYTES or len(set(key)) < 16:
            raise SettingsError(f"{name}: key {n} of {len(items)} is not {KEY_HELP}")
        keys.append(key)
    return tuple(keys)


def _networks(var: Variable, raw: str) -> tuple[str, ...]:
    """Comma-separated addresses or CIDR networks, each checked and normalised."""
    import ipaddress

    networks = []
    for item in (part.strip() for part in raw.split(",")):
        if not item:
            continue
        try:
            networks.append(str(ipaddress.ip_network(item, strict=False)))
        except ValueError:
            raise SettingsError(f"{var.name} must be comma-separated addresses or networks "
                                f"(10.0.0.0/8, 127.0.0.1), got {item!r}") from None
    return tuple(networks)


def _parse(var: Variable, raw: str) -> object:
    raw = raw.strip()
    if var.kind in ("text", "secret"):
        return raw or None
    if var.kind == "region":
        value = raw.upper()
        if value not in REGIONS:
            raise SettingsError(f"{var.name} must be one of {REGIONS}, got {raw!r}")
        return value
    if var.kind == "path":
        return Path(raw)
    if var.kind == "private":
        return _private_address(var, raw)
    if var.kind == "networks":
        return _networks(var, raw)
    if var.kind == "keys":
        decode_keys(raw, var.name)  # checked here; the value itself is never shown
        return raw
    if var.kind == "bool":
        if raw.lower() not in ("true", "false", "1", "0", "yes", "no"):
            raise SettingsError(f"{var.name} must be true or false, got {raw!r}")
        return raw.lower() in ("true", "1", "yes")
    number: float
    try:
        number = float(raw) if var.kind == "float" else int(raw)
    except ValueError:
        what = {"port": "a port number", "float": "a number"}.get(var.kind, "a whole number")
        raise SettingsError(f"{var.name} must be {what}, got {raw!r}") from None
    low, high = (1, 65535) if var.kind == "port" else (var.low, var.high)
    if (low is not None and number < low) or (high is not None and number > high):
        raise SettingsError(f"{var.name} must be between {low} and {high}, got {number}")
    return number


@dataclass(frozen=True)
class Settings:
    """What a deployment can change without touching code (see :data:`VARIABLES`)."""

    default_region: str = "US"
    language: str = "en"
    gateway_host: str = "127.0.0.1"
    private_host: str = "127.0.0.1"
    rasa_port: int = 5005
    actions_port: int = 5055
    var_dir: Path = ROOT / "var"
    models_dir: Path = ROOT / "models"
    handoff_phone: str | None = None
    handoff_hours: str | None = None
    handoff_webhook_url: str | None = None
    handoff_webhook_token: str | None = field(default=None, repr=False)
    handoff_webhook_timeout: float = 5.0
    handoff_rate: int = 30
    number_secret: str | None = field(default=None, repr=False)
    rasa_api_token: str | None = field(default=None, repr=False)
    web_port: int = 8080
    web_secret: str | None = field(default=None, repr=False)
    web_session_hours: float = 12.0
    web_rate_limit_url: str | None = field(default=None, repr=False)
    web_secure_cookies: bool = False
    web_session_rate: int = 20
    web_address_rate: int = 300
    web_new_conversation_rate: int = 30
    trusted_proxies: tuple[str, ...] = ()
    directory_url: str | None = field(default=None, repr=False)
    tracker_url: str | None = field(default=None, repr=False)
    lock_store_url: str | None = field(default=None, repr=False)
    rasa_instances: int = 1
    retention_interval_hours: float = 6.0
    retention_days: float = 30.0
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = field(default=None, repr=False)
    twilio_number: str | None = field(default=None, repr=False)
    twilio_public_url: str | None = None
    twilio_api_base: str | None = None
    twilio_max_length: str | None = None
    twilio_optout_url: str | None = field(default=None, repr=False)
    test_pg_url: str | None = field(default=None, repr=False)

    @property
    def tracker(self) -> str:
        """The tracker store's database URL (a SQLite file under var/ by default)."""
        return self.tracker_url or f"sqlite:///{(self.var_dir / 'tracker.db').resolve()}"

    @property
    def directory(self) -> str:
        """The provider directory's database URL (a SQLite file under var/ by default)."""
        return self.directory_url or f"sqlite:///{(self.var_dir / 'directory.db').resolve()}"

    @property
    def web_keys(self) -> tuple[bytes, ...]:
        """NAVIGATOR_WEB_SECRET's keys, decoded (none when it is unset)."""
        return decode_keys(self.web_secret) if self.web_secret else ()

    @property
    def human_contact(self) -> str | None:
        """"call <phone> (<hours>)", or None when the deployment has no staff line."""
        if not self.handoff_phone:
            return None
        return f"call {self.handoff_phone}" + (
            f" ({self.handoff_hours})" if self.handoff_hours else "")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Build settings from the ``NAVIGATOR_*`` variables (``environ``: os.environ)."""
        environ = os.environ if environ is None else environ
        for name, instead in RETIRED.items():
            if (environ.get(name) or "").strip():
                raise SettingsError(f"{name} is no longer used: {instead}")
        values: dict[str, object] = {}
        for var in VARIABLES:
            raw = environ.get(var.name)
            if raw is not None and raw.strip() != "":
                values[var.field] = _parse(var, raw)
        return cls(**values)


def _check_table() -> None:
    declared = {v.field for v in VARIABLES}
    attributes = {f.name for f in fields(Settings)}
    if declared != attributes:  # pragma: no cover - a programming error, caught at import
        raise RuntimeError(f"settings table and Settings differ: {declared ^ attributes}")


_check_table()
