"""The house keeps its shape: settings read in one place and documented, the README's layout
table matches the folders, its links into docs/ lead somewhere, and Rasa's entry point still
applies its two speed fixes."""

from __future__ import annotations

import re

import pytest

from settings import ROOT, VARIABLES, Settings, SettingsError

README = (ROOT / "README.md").read_text(encoding="utf-8")
OUR_CODE = [p for folder in ("actions", "bot", "gateway", "knowledge", "navigator", "providers")
            for p in (ROOT / folder).rglob("*.py")]
READS_SETTING = re.compile(r"""(environ(\.get)?\s*[\[(]|getenv\()\s*f?["']NAVIGATOR_""")


def test_every_setting_is_documented_in_the_readme() -> None:
    missing = [v.name for v in VARIABLES if f"`{v.name}`" not in README]
    assert not missing, f"settings missing from the README's table: {missing}"


def test_no_module_but_settings_reads_navigator_variables() -> None:
    assert OUR_CODE
    readers = [str(p.relative_to(ROOT)) for p in OUR_CODE
               if READS_SETTING.search(p.read_text(encoding="utf-8"))]
    assert readers == []


def test_settings_are_checked_with_clear_errors() -> None:
    assert Settings.from_env({}).default_region == "US"
    assert Settings.from_env({"NAVIGATOR_DEFAULT_REGION": "uk"}).default_region == "UK"
    assert Settings.from_env({"NAVIGATOR_WEB_SECURE_COOKIES": "true"}).web_secure_cookies
    for name, bad in (("NAVIGATOR_DEFAULT_REGION", "FR"), ("NAVIGATOR_RASA_PORT", "0"),
                      ("NAVIGATOR_RASA_INSTANCES", "lots"), ("NAVIGATOR_WEB_SECURE_COOKIES", "y")):
        with pytest.raises(SettingsError, match=name):
            Settings.from_env({name: bad})
    assert "secret" not in repr(Settings(web_secret="secret", handoff_webhook_token="secret"))


def test_the_layout_table_names_only_paths_that_exist() -> None:
    table = README.split("## Layout", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in table.splitlines() if line.startswith("| `")]
    assert len(rows) >= 8
    named = [p for row in rows for p in re.findall(r"`([\w./-]+)`", row.split("|")[1])]
    assert [p for p in named if not (ROOT / p).exists()] == []
    folders = {p.rstrip("/") for p in named}
    ours = {p.name for p in ROOT.iterdir() if p.is_dir() and (p / "__init__.py").exists()}
    assert ours <= folders, f"packages without a row in the layout table: {ours - folders}"


def test_the_readmes_links_into_docs_exist() -> None:
    linked = re.findall(r"\]\((docs/[^)#\s]+)(?:#[^)\s]*)?\)", README)
    pages = {p for p in linked if p.endswith(".md")}
    assert len(pages) >= 6
    assert [p for p in linked if not (ROOT / p).exists()] == []
    unlinked = {str(p.relative_to(ROOT)) for p in (ROOT / "docs").glob("*.md")} - pages
    assert not unlinked, f"docs pages the README does not link to: {sorted(unlinked)}"


def test_the_docs_pages_link_only_to_files_that_exist() -> None:
    broken = []
    for page in sorted((ROOT / "docs").glob("*.md")):
        text = page.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)\s]*)?\)", text):
            if "://" not in target and not (page.parent / target).exists():
                broken.append(f"{page.name}: {target}")
    assert broken == []


def test_rasa_entry_point_still_applies_both_speed_fixes(monkeypatch) -> None:
    """A Rasa upgrade that validates or resolves events another way must fail here."""
    from rasa.core.actions.action import RemoteAction
    from rasa.shared.core.events import ActionExecuted, Event

    from bot import rasa_main

    rasa_main.install()
    rasa_main._compiled.clear()
    action = RemoteAction("action_x", None)
    assert action._validate_action_result({"events": [], "responses": []})
    assert len(rasa_main._compiled) == 1  # Rasa's own check went through the cache
    assert action._validate_action_result({"events": [{"event": "action", "name": "y"}],
                                           "responses": []})
    assert len(rasa_main._compiled) == 1  # the same schema: compiled once
    from jsonschema import ValidationError

    with pytest.raises(ValidationError):
        action._validate_action_result({"events": "not a list"})

    cached = Event.resolve_by_type
    assert getattr(cached, "navigator_cached", False)
    asked: list[str] = []

    def spy(type_name: str, default: type | None = None) -> type | None:
        asked.append(type_name)
        return cached(type_name, default)

    monkeypatch.setattr(Event, "resolve_by_type", staticmethod(spy))
    event = Event.from_parameters({"event": "action", "name": "action_listen"})
    assert isinstance(event, ActionExecuted)
    assert asked == ["action"]  # Rasa still finds event classes through the patched method
