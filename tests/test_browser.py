"""The chat widget in a real browser: Debian's Chromium driven by Playwright, against the real
gateway, Rasa server, action server and directory.

Two tests take the screenshots the README shows. They go to a temporary folder, so a test run
never changes tracked files; `make screenshots` sets SCREENSHOTS_DIR=docs/screenshots to
update the README's copies (a test tool's setting, not the assistant's: no NAVIGATOR_ name)."""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect, sync_playwright

import knowledge
from knowledge import guides, shapes
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


def _nearest_60614() -> tuple[str, str]:
    """(name, tel: link) of the real nearest hospice to ZIP 60614, from the CMS file."""
    gaz = gazetteer()
    here = gaz.zip("60614")
    with CMS_FILE.open(encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    nearest = min(rows, key=lambda r: (distance_miles(
        here.lat, here.lon, gaz.zip(r["Zip Code"]).lat, gaz.zip(r["Zip Code"]).lon),
        r["CMS Certification Number (CCN)"]))
    digits = "".join(c for c in nearest["PhoneNumber"] if c.isdigit())
    return nice_case(nearest["Facility Name"]), f"tel:+1{digits}"


def test_find_a_hospice_by_zip_shows_the_nearest_real_one(browser, site: str) -> None:
    name, tel = _nearest_60614()
    page = _open(browser, site, viewport={"width": 1280, "height": 900})
    _ask(page, "find hospice care near 60614")
    expect(page.locator("#pcn-log")).to_contain_text(name)
    expect(page.locator(f'#pcn-log a[href="{tel}"]')).to_have_count(1)
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
    expect(page.locator(".pcn-sources").last).to_contain_text("Source")
    answer = page.locator(".pcn-msg.pcn-bot").last
    expect(answer).to_be_in_viewport()
    expect(page.locator(".pcn-quick:enabled", has_text="Tell me more").last).to_be_visible()
    related = kb.get(entry.related[0]).label("en")
    expect(page.locator(".pcn-quick:enabled", has_text=related).last).to_be_visible()
    page.screenshot(path=str(shots / "widget-phone.png"))


def test_no_serious_accessibility_violations(browser, site: str) -> None:
    """The welcome's buttons, an answer with its sources, and result cards."""
    assert AXE.exists(), "axe-core is missing: `make test` installs it with npm"
    page = _open(browser, site, bypass_csp=True)  # only so the test can inject axe
    expect(page.locator(".pcn-quick")).not_to_have_count(0)
    _ask(page, "what is hospice?")
    _ask(page, "hospice near 60614")
    expect(page.locator(".pcn-call")).not_to_have_count(0)
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


@pytest.mark.parametrize("screen", ["phone", "desktop"])
def test_results_are_cards_with_call_and_map(browser, site: str, shots: Path,
                                             screen: str) -> None:
    size = ({"viewport": {"width": 360, "height": 780}, "is_mobile": True, "has_touch": True,
             "device_scale_factor": 2} if screen == "phone"
            else {"viewport": {"width": 1280, "height": 900}})
    page = _open(browser, site, **size)
    _ask(page, "find a hospice near 60614")
    name, tel = _nearest_60614()
    cards = page.locator(".pcn-entry-bot").last.locator(".pcn-card")
    expect(cards).to_have_count(3)
    first = cards.first
    expect(first.locator(".pcn-card-name")).to_have_text(f"1. {name}")
    call = first.locator("a.pcn-call")
    expect(call).to_have_attribute("href", tel)
    expect(call).to_have_text(re.compile(r"^Call \(\d{3}\) \d{3}-\d{4}$"))
    box = call.bounding_box()
    assert box is not None and box["height"] >= 44 and box["width"] >= 44  # a big target
    for card in cards.all():  # a short map label, never the raw address
        expect(card.locator("a.pcn-map")).to_have_text("Map")
        expect(card.locator("a.pcn-map")).to_have_attribute(
            "href", re.compile(r"^https://www\.google\.com/maps/"))
        expect(card.locator("a.pcn-map")).to_have_attribute("rel", "noopener noreferrer")
    assert "google.com" not in page.locator("#pcn-log").inner_text()
    assert "tel:" not in page.locator("#pcn-log").inner_text()
    first.scroll_into_view_if_needed()
    page.screenshot(path=str(shots / f"widget-results-{screen}.png"))
    # "More about this one" asks for that provider in full
    before = page.locator(".pcn-entry-bot").count()
    first.locator(".pcn-more").click()
    expect(page.locator(".pcn-msg.pcn-user").last).to_contain_text(name)
    expect(page.locator(".pcn-entry-bot")).not_to_have_count(before, timeout=30_000)
    detail = page.locator(".pcn-entry-bot").last
    expect(detail.locator(".pcn-card-name")).to_have_text(name)
    expect(detail.locator("a.pcn-call")).to_have_attribute("href", tel)
    spent = page.locator(".pcn-card").first.locator(".pcn-more")  # the list's first card
    expect(spent).to_be_disabled()  # an old list's buttons are spent


def test_sources_are_titled_links_and_the_answer_prints_alone(
        browser, site: str, kb: knowledge.KnowledgeBase, shots: Path) -> None:
    page = _open(browser, site, viewport={"width": 1280, "height": 900})
    _ask(page, "What is palliative care?")
    entry = kb.get("what_is_palliative_care")
    reply = knowledge.render(kb, entry, "en", "US")
    answer = page.locator(".pcn-entry-bot", has_text=reply.text[:60])
    links = answer.locator(".pcn-sources a")
    expect(links).to_have_count(len(reply.sources))
    shorts = [s.short for s in reply.sources]
    for link, source in zip(links.all(), reply.sources, strict=True):
        # the publisher's name; two pages of one publisher are told apart by their titles
        expect(link).to_have_text(source.short if shorts.count(source.short) == 1
                                  else source.title)
        expect(link).to_have_attribute("href", source.url)
        expect(link).to_have_attribute("target", "_blank")
        expect(link).to_have_attribute("rel", "noopener noreferrer")
    expect(answer.locator(".pcn-sources")).to_contain_text("Source")
    assert "https://" not in page.locator("#pcn-log").inner_text()
    page.screenshot(path=str(shots / "widget-answer-desktop.png"))
    # Print: only this answer, on a clean page (no host page, no chat chrome)
    answer.locator(".pcn-print").click()
    page.emulate_media(media="print")
    expect(page.locator("main")).to_be_hidden()
    expect(page.locator("#pcn-input")).to_be_hidden()
    expect(page.locator(".pcn-msg.pcn-user")).to_be_hidden()
    for other in page.locator(".pcn-entry-bot:not(.pcn-print-target)").all():
        expect(other).to_be_hidden()  # the welcome, "is this for you?"
    expect(answer.locator(".pcn-msg")).to_contain_text(reply.text[:60])
    expect(answer.locator(".pcn-sources")).to_be_visible()
    expect(answer.locator(".pcn-print")).to_be_hidden()
    page.emulate_media(media="screen")


def test_the_welcome_offers_topic_buttons_that_answer(browser, site: str,
                                                      kb: knowledge.KnowledgeBase) -> None:
    page = _open(browser, site)
    welcome = shapes.welcome()
    buttons = page.locator(".pcn-quick-group").first.locator(".pcn-quick")
    expect(buttons).to_have_text([b.title for b in welcome.buttons])
    expect(page.locator(".pcn-msg.pcn-bot").first).to_have_text(welcome.text)
    pays = next(b for b in welcome.buttons if "who_pays_palliative" in b.payload)
    buttons.filter(has_text=pays.title).click()
    expect(page.locator("#pcn-log")).to_contain_text(
        kb.get("who_pays_palliative").text("answer", "en", "US")[:60], timeout=30_000)


def test_keyboard_only_search_reaches_a_call_link(browser, site: str) -> None:
    page = browser.new_context().new_page()
    page.goto(site)
    page.focus("#pcn-launcher")
    page.keyboard.press("Enter")
    expect(page.locator("#pcn-panel")).to_be_visible()
    page.keyboard.type("hospice near 60614")
    page.keyboard.press("Enter")
    expect(page.locator(".pcn-call")).not_to_have_count(0, timeout=30_000)
    _, tel = _nearest_60614()
    for _ in range(60):  # backwards from the message box, as a keyboard user would
        page.keyboard.press("Shift+Tab")
        if page.evaluate("document.activeElement.getAttribute('href')") == tel:
            break
    assert page.evaluate("document.activeElement.getAttribute('href')") == tel
    assert page.evaluate("document.activeElement.className") == "pcn-call"


@pytest.mark.parametrize("width,zoom", [(320, "100%"), (1280, "200%"), (640, "200%")])
def test_narrow_screens_and_large_text_keep_results_usable(browser, site: str, width: int,
                                                           zoom: str) -> None:
    page = _open(browser, site, viewport={"width": width, "height": 700})
    page.evaluate(f"document.documentElement.style.fontSize = '{zoom}'")
    _ask(page, "hospice near 60614")
    panel = page.locator("#pcn-panel")
    overflow = panel.evaluate("p => p.scrollWidth - p.clientWidth")
    assert overflow <= 1, f"the panel scrolls sideways by {overflow}px"
    header = page.locator(".pcn-header")
    title, restart, close = (page.locator(s).bounding_box() for s in
                             ("#pcn-title", "#pcn-restart", "#pcn-close"))
    assert title and restart and close
    assert abs(restart["y"] - close["y"]) < 4 and restart["y"] < title["y"] + title["height"]
    expect(header).to_be_visible()
    expect(page.locator("#pcn-emergency")).to_be_visible()
    call = page.locator(".pcn-call").first
    call.scroll_into_view_if_needed()
    expect(call).to_be_in_viewport()


def _press(page: Page, title: str) -> None:
    """Press the live quick reply named exactly `title` and wait for the answer."""
    before = page.locator(".pcn-entry-bot").count()
    page.locator(".pcn-quick:enabled").filter(
        has_text=re.compile(rf"^\s*{re.escape(title)}\s*$")).last.click()
    expect(page.locator(".pcn-entry-bot")).not_to_have_count(before, timeout=30_000)
    expect(page.locator("#pcn-typing")).to_be_hidden(timeout=30_000)


def test_getting_ready_for_a_visit_prints_the_summary(browser, site: str, shots: Path) -> None:
    page = _open(browser, site, viewport={"width": 1280, "height": 900}, bypass_csp=True)
    _press(page, "Get ready for a visit")  # from the welcome's buttons
    _press(page, "For me")
    _press(page, guides.appointment_kinds("US")[0].title)
    _press(page, "8")  # pain
    expect(page.locator("#pcn-log")).to_contain_text(guides.high_score_text("US")[:50])
    _press(page, "2")  # tiredness
    _press(page, "Done")
    _press(page, "Being comfortable")
    _press(page, "Done")
    question = guides.prompt_groups("US")[0].questions[0].title
    _press(page, question)
    _press(page, "Done")
    _ask(page, "morphine, senna")
    _press(page, "Done")
    _press(page, "Friend")
    summary = page.locator(".pcn-entry-bot", has_text="Appointment summary").last
    for expected in ("Pain: 8 of 10", "Tiredness: 2 of 10", "Being comfortable", question,
                     "morphine", "Friend"):
        expect(summary).to_contain_text(expected)
    summary.locator(".pcn-print").click()
    page.emulate_media(media="print")
    expect(page.locator("main")).to_be_hidden()
    expect(page.locator(".pcn-quick-group").first).to_be_hidden()
    expect(summary.locator(".pcn-msg")).to_contain_text("Pain: 8 of 10")
    expect(summary.locator(".pcn-msg")).to_contain_text(question)
    page.add_script_tag(path=str(AXE))
    result = page.evaluate("""async () => await axe.run(document, {runOnly:
        {type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa']}})""")
    bad = [(v["id"], v["impact"], len(v["nodes"])) for v in result["violations"]
           if v["impact"] in ("serious", "critical")]
    assert bad == [], bad
    page.screenshot(path=str(shots / "summary-print.png"), full_page=True)
    page.emulate_media(media="screen")
