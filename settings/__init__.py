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
    kind: str  # "text", "port", "int", "float", "bool", "path", "region", "secret"
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
    Variable("host", "text", "127.0.0.1", "where the servers listen"),
    Variable("rasa_port", "port", 5005, "Rasa's port (more instances take the next ones)"),
    Variable("actions_port", "port", 5055, "the action server's port"),
    Variable("var_dir", "path", ROOT / "var", "tracker database, directory database, run files"),
    Variable("models_dir", "path", ROOT / "models", "trained models"),
    Variable("handoff_phone", "text", None, "the staff line people are offered"),
    Variable("handoff_hours", "text", None, "when the staff line is open"),
    Variable("handoff_webhook_url", "text", None, "where hand-off summaries are POSTed"),
    Variable("handoff_webhook_token", "secret", None, "bearer token sent to the webhook"),
    Variable("rasa_api_token", "secret", None, "switches on Rasa's HTTP API (to resume "
             "conversations)"),
    Variable("web_port", "port", 8080, "the public gateway's port"),
    Variable("web_secret", "secret", None, "signs conversation cookies (random per start "
             "when unset)"),
    Variable("web_rate_limit_url", "secret", None, "redis:// URL: rate limits shared by "
             "gateway replicas"),
    Variable("web_secure_cookies", "bool", False, "true behind HTTPS"),
    Variable("web_session_rate", "int", 20, "messages a minute per conversation", 1, 10_000),
    Variable("web_address_rate", "int", 300, "requests a minute per address", 1, 100_000),
    Variable("directory_url", "secret", None, "the provider directory's database URL "
             "(default a SQLite file in var_dir)"),
    Variable("tracker_url", "secret", None, "where conversations are kept (default a SQLite "
             "file in var_dir)"),
    Variable("lock_store_url", "secret", None, "redis:// lock store for several Rasa "
             "instances"),
    Variable("rasa_instances", "int", 1, "Rasa processes behind the gateway", 1, 32),
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
    host: str = "127.0.0.1"
    rasa_port: int = 5005
    actions_port: int = 5055
    var_dir: Path = ROOT / "var"
    models_dir: Path = ROOT / "models"
    handoff_phone: str | None = None
    handoff_hours: str | None = None
    handoff_webhook_url: str | None = None
    handoff_webhook_token: str | None = field(default=None, repr=False)
    rasa_api_token: str | None = field(default=None, repr=False)
    web_port: int = 8080
    web_secret: str | None = field(default=None, repr=False)
    web_rate_limit_url: str | None = field(default=None, repr=False)
    web_secure_cookies: bool = False
    web_session_rate: int = 20
    web_address_rate: int = 300
    directory_url: str | None = field(default=None, repr=False)
    tracker_url: str | None = field(default=None, repr=False)
    lock_store_url: str | None = field(default=None, repr=False)
    rasa_instances: int = 1
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
