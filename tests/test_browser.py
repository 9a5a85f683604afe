"""The chat widget in a real browser: Debian's Chromium driven by Playwright, against the real
gateway, Rasa server, action server and directory.

Two tests take the screenshots the README shows. They go to a temporary folder, so a test run
never changes tracked files; `make screenshots` sets SCREENSHOTS_DIR=docs/screenshots to
update the README's copies (a test tool's setting, not the assistant's: no NAVIGATOR_ name)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

import knowledge
from knowledge.directory import nice_case
from knowledge.emergency import emergency_line
from navigator import stack
from providers.bundled import CMS_FILE
from providers.geo import distance_miles, gazetteer
from settings import ROOT

pytestmark = pytest.mark.servers  # starts servers or loads a model: not in make check

CHROMIUM = Path("/usr/bin/chromium")
AXE = ROOT / "tests" / "browser" / "node_modules" / "axe-core" / "axe.min.js"
# As the machine's checks advise: no background traffic (this machine has no internet).
ARGS = ["--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def site(servers: stack.Stack) -> str:
    return servers.web_url


@pytest.fixture(scope="module")
def shots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Where screenshots go: SCREENSHOTS_DIR (relative to the repository) when set, else a
    temporary folder."""
    chosen = os.environ.get("SCREENSHOTS_DIR", "").strip()
    folder = ROOT / chosen if chosen else tmp_path_factory.mktemp("screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Chromium is missing: run `make system-deps` (Debian package 'chromium')")
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS, headless=True)
        yield b
        b.close()


def _open(browser, site: str, **context) -> Page:
    page = browser.new_context(**context).new_page()
    page.goto(site)
    page.click("#pcn-launcher")
    expect(page.locator("#pcn-panel")).to_be_visible()
    return page


def _ask(page: Page, text: str) -> str:
    before = page.locator(".pcn-msg.pcn-bot").count()
    page.fill("#pcn-input", text)
    page.press("#pcn-input", "Enter")
    expect(page.locator(".pcn-msg.pcn-bot")).not_to_have_count(before, timeout=30_000)
    expect(page.locator("#pcn-typing")).to_be_hidden(timeout=30_000)
    return page.locator(".pcn-msg.pcn-bot").last.inner_text()


def test_ask_a_question_and_follow_a_button(browser, site: str, kb: knowledge.KnowledgeBase,
                                            shots: Path) -> None:
    page = _open(browser, site, viewport={"width": 1280, "height": 900})
    _ask(page, "What is palliative care?")
    answer = kb.get("what_is_palliative_care").text("answer", "en", "US")
    expect(page.locator("#pcn-log")).to_contain_text(answer[:60])
    related_id = kb.get("what_is_palliative_care").related[0]
    related = kb.get(related_id).label("en")
    before = page.locator(".pcn-msg.pcn-bot").count()
    page.locator(".pcn-quick:enabled", has_text=related).first.click()
    expect(page.locator(".pcn-msg.pcn-user").last).to_have_text(related)
    expect(page.locator(".pcn-msg.pcn-bot")).not_to_have_count(before, timeout=30_000)
    expect(page.locator("#pcn-typing")).to_be_hidden(timeout=30_000)
    followed = kb.get(related_id).text("answer", "en", "US")
    expect(page.locator("#pcn-log")).to_contain_text(followed[:60])
    page.screenshot(path=str(shots / "widget-desktop.png"))


def test_find_a_hospice_by_zip_shows_the_nearest_real_one(browser, site: str) -> None:
    gaz = gazetteer()
    here = gaz.zip("60614")
    with CMS_FILE.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    nearest = min(rows, key=lambda r: (distance_miles(
        here.lat, here.lon, gaz.zip(r["Zip Code"]).lat, gaz.zip(r["Zip Code"]).lon),
        r["CMS Certification Number (CCN)"]))
    page = _open(browser, site, viewport={"width": 1280, "height": 900})
    _ask(page, "find hospice care near 60614")
    expect(page.locator("#pcn-log")).to_contain_text(nice_case(nearest["Facility Name"]))
    digits = "".join(c for c in nearest["PhoneNumber"] if c.isdigit())
    expect(page.locator(f'#pcn-log a[href="tel:+1{digits}"]')).to_have_count(1)
    expect(page.locator('#pcn-log a[href^="https://www.google.com/maps/"]').first).to_be_visible()


def test_keyboard_only(browser, site: str) -> None:
    page = browser.new_context().new_page()
    page.goto(site)
    for _ in range(15):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "pcn-launcher":
            break
    assert page.evaluate("document.activeElement.id") == "pcn-launcher"
    page.keyboard.press("Enter")
    expect(page.locator("#pcn-panel")).to_be_visible()
    assert page.evaluate("document.activeElement.id") == "pcn-input"
    page.keyboard.type("is hospice only for cancer?")
    page.keyboard.press("Enter")
    expect(page.locator(".pcn-msg.pcn-bot")).not_to_have_count(1, timeout=30_000)
    page.keyboard.press("Escape")
    expect(page.locator("#pcn-panel")).to_be_hidden()
    assert page.evaluate("document.activeElement.id") == "pcn-launcher"


def test_html_in_messages_is_shown_as_text(browser, site: str) -> None:
    page = _open(browser, site)
    for hostile in ('<img src=x onerror="window.__pwned=1">',
                    "<script>window.__pwned=1</script>"):
        _ask(page, hostile)
        expect(page.locator(".pcn-msg.pcn-user").last).to_have_text(hostile)
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#pcn-log img, #pcn-log script").count() == 0


def test_phone_sized_screen(browser, site: str, kb: knowledge.KnowledgeBase,
                            shots: Path) -> None:
    page = _open(browser, site, viewport={"width": 360, "height": 740}, is_mobile=True,
                 has_touch=True, device_scale_factor=2)
    box = page.locator("#pcn-panel").bounding_box()
    assert box is not None and box["width"] >= 350
    reply = _ask(page, "Can a pain clinic help my back?")
    # What the person sees on the phone: the pain-clinic answer, on screen, with its source
    # and the follow-up buttons they can tap.
    entry = kb.get("what_is_pain_clinic")
    assert entry.text("answer", "en", "US")[:60] in reply
    assert "Source:" in reply
    answer = page.locator(".pcn-msg.pcn-bot").last
    expect(answer).to_be_in_viewport()
    expect(page.locator(".pcn-quick:enabled", has_text="Tell me more").last).to_be_visible()
    related = kb.get(entry.related[0]).label("en")
    expect(page.locator(".pcn-quick:enabled", has_text=related).last).to_be_visible()
    page.screenshot(path=str(shots / "widget-phone.png"))


def test_no_serious_accessibility_violations(browser, site: str) -> None:
    assert AXE.exists(), "axe-core is missing: `make test` installs it with npm"
    page = _open(browser, site, bypass_csp=True)  # only so the test can inject axe
    _ask(page, "what is hospice?")
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => await axe.run(document, {runOnly:
        {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})""")
    bad = [(v["id"], v["impact"], len(v["nodes"])) for v in result["violations"]
           if v["impact"] in ("serious", "critical")]
    assert bad == [], bad


def test_the_emergency_line_gives_the_numbers_from_helplines_yml(browser, site: str) -> None:
    line = emergency_line()
    page = _open(browser, site)
    expect(page.locator("main")).to_contain_text(line["text"])  # the demo page, served
    shown = page.locator("#pcn-emergency")
    expect(shown).to_have_text(line["text"])
    for number in line["numbers"]:
        expect(shown.locator(f'a[href="tel:{number["tel"]}"]')).to_have_text(number["label"])
    # without the served numbers there is still an emergency line, naming none
    page = browser.new_context().new_page()
    page.route("**/api/config", lambda route: route.abort())
    page.goto(site)
    page.click("#pcn-launcher")
    expect(page.locator("#pcn-emergency")).to_have_text(
        "In an emergency, call your local emergency number.")
    expect(page.locator("#pcn-emergency a")).to_have_count(0)


def test_the_widget_says_so_when_the_assistant_is_down(browser, tmp_path: Path) -> None:
    """The real gateway with Rasa not running: its 503 message appears in the chat."""
    import subprocess
    import sys

    port, dead = stack.free_port(), stack.free_port()
    with (tmp_path / "web.log").open("ab") as log:
        gateway = subprocess.Popen(
            [sys.executable, "-m", "gateway", "--port", str(port),
             "--rasa-url", f"http://127.0.0.1:{dead}", "--actions-url",
             f"http://127.0.0.1:{dead}"], cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    try:
        site = f"http://127.0.0.1:{port}/"
        stack.wait_http(site, {"web": gateway}, 60)
        page = _open(browser, site)
        page.fill("#pcn-input", "what is hospice?")
        page.press("#pcn-input", "Enter")
        expect(page.locator("#pcn-log")).to_contain_text("isn't available right now",
                                                         timeout=30_000)
        expect(page.locator("#pcn-log")).to_contain_text("911")
    finally:
        stack.stop_process(gateway)
