"""Settings in one place, read from environment variables with safe defaults.

No secret has a default. Every variable is documented in the README.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REGIONS = ("US", "UK")


class SettingsError(ValueError):
    """A setting has a value the assistant cannot use."""


def _whole(name: str, default: int, low: int, high: int, what: str = "a whole number") -> int:
    raw = os.environ.get(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name} must be {what}, got {raw!r}") from None
    if not low <= value <= high:
        raise SettingsError(f"{name} must be between {low} and {high}, got {value}")
    return value


def _port(name: str, default: int) -> int:
    return _whole(name, default, 1, 65535, "a port number")


def _optional(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


@dataclass(frozen=True)
class Settings:
    """What a deployment can change without touching code."""

    default_region: str = "US"
    language: str = "en"
    host: str = "127.0.0.1"
    rasa_port: int = 5005
    actions_port: int = 5055
    var_dir: Path = ROOT / "var"
    models_dir: Path = ROOT / "models"
    handoff_phone: str | None = None          # the deployment's human contact, if any
    handoff_hours: str | None = None
    handoff_webhook_url: str | None = None    # staff side: receives a summary, then resumes
    handoff_webhook_token: str | None = None  # secret: no default
    rasa_api_token: str | None = None         # secret: Rasa's HTTP API is off without it
    directory_url: str | None = None          # provider directory; None: var/directory.db
    web_port: int = 8080                      # the public gateway (demo page, widget, API)
    tracker_url: str | None = None            # conversations; None: var/tracker.db (SQLite)
    lock_store_url: str | None = None         # redis://...: needed for several Rasa instances
    rasa_instances: int = 1                   # Rasa processes behind the gateway

    @property
    def tracker(self) -> str:
        """The tracker store's database URL (a SQLite file under var/ by default)."""
        return self.tracker_url or f"sqlite:///{(self.var_dir / 'tracker.db').resolve()}"

    @property
    def directory(self) -> str:
        """The provider directory's database URL (a SQLite file under var/ by default)."""
        return self.directory_url or f"sqlite:///{(self.var_dir / 'directory.db').resolve()}"

    @classmethod
    def from_env(cls) -> Settings:
        """Build settings from ``NAVIGATOR_*`` environment variables."""
        region = os.environ.get("NAVIGATOR_DEFAULT_REGION", "US").strip().upper()
        if region not in REGIONS:
            raise SettingsError(
                f"NAVIGATOR_DEFAULT_REGION must be one of {REGIONS}, got {region!r}"
            )
        return cls(
            default_region=region,
            language=os.environ.get("NAVIGATOR_LANGUAGE", "en").strip().lower() or "en",
            host=os.environ.get("NAVIGATOR_HOST", "127.0.0.1"),
            rasa_port=_port("NAVIGATOR_RASA_PORT", 5005),
            actions_port=_port("NAVIGATOR_ACTIONS_PORT", 5055),
            var_dir=Path(os.environ.get("NAVIGATOR_VAR_DIR", ROOT / "var")),
            models_dir=Path(os.environ.get("NAVIGATOR_MODELS_DIR", ROOT / "models")),
            handoff_phone=_optional("NAVIGATOR_HANDOFF_PHONE"),
            handoff_hours=_optional("NAVIGATOR_HANDOFF_HOURS"),
            handoff_webhook_url=_optional("NAVIGATOR_HANDOFF_WEBHOOK_URL"),
            handoff_webhook_token=_optional("NAVIGATOR_HANDOFF_WEBHOOK_TOKEN"),
            rasa_api_token=_optional("NAVIGATOR_RASA_API_TOKEN"),
            directory_url=_optional("NAVIGATOR_DIRECTORY_URL"),
            web_port=_port("NAVIGATOR_WEB_PORT", 8080),
            tracker_url=_optional("NAVIGATOR_TRACKER_URL"),
            lock_store_url=_optional("NAVIGATOR_LOCK_STORE_URL"),
            rasa_instances=_whole("NAVIGATOR_RASA_INSTANCES", 1, 1, 32),
        )
