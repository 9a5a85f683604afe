"""The unanswered-question report: what people asked that the assistant did not answer well.

``navigator report`` reads Rasa's SQL tracker store (the same database URL as ``navigator
retention``: a SQLite file by default, PostgreSQL when ``NAVIGATOR_TRACKER_URL`` says so) and
lists the user messages of the last N days that

- **fell back**: classified ``nlu_fallback`` or followed by ``action_default_fallback``;
- **did you mean**: got the likeliest topics offered (``action_default_ask_affirmation``,
  which the two-stage fallback runs when it starts);
- **low confidence**: answered from an FAQ entry the classifier was less sure of than
  ``--min-confidence`` (default 0.5);
- **rephrased**: answered, then followed within 2 minutes by a similar message from the same
  person (most words shared), a sign the answer missed.

Similar messages are grouped (TF-IDF over character n-grams, so misspellings group too, and a
greedy centroid clustering), most frequent group first, each with its count, why, up to three
example wordings and the entry the assistant chose. The project's MiniLM sentence embeddings
were measured for the grouping and left out: about 11 s to load and 8 ms a message on 2 cores
(some 35 s for 3,000 messages), where TF-IDF groups 3,000 in under a second.

Privacy: example wordings are masked with :func:`knowledge.privacy.mask` as soon as they are
read, and clustered masked. Conversation ids (SMS ones are phone numbers) and slot values are
never printed; sender ids are used only to keep conversations apart in memory.
"""

from __future__ import annotations

import csv
import html
import io
import json
import re
import sys
import textwrap
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from sqlalchemy import create_engine, inspect, text

from knowledge.privacy import MASKS, mask

DAY = 86_400.0
REPHRASE_WINDOW = 120.0  # seconds: a similar message within this is a rephrase
MIN_CONFIDENCE = 0.5
GROUP_SIMILARITY = 0.4  # mean cosine similarity of two groups' wordings to join them
MAX_LINKAGE = 5000  # different wordings clustered together (memory: their number squared)
EXAMPLES = 3
_BLOCK = 512  # rows of a similarity matrix computed at a time
MAX_EXAMPLE = 200  # characters of one example wording

# Why a message is listed, in order of precedence (a message is counted under one reason).
REASONS = {
    "fell_back": "fell back",
    "did_you_mean": "did you mean",
    "low_confidence": "low confidence",
    "rephrased": "rephrased",
}
FALLBACK_INTENT = "nlu_fallback"
FALLBACK_ACTION = "action_default_fallback"
ASK_AFFIRMATION = "action_default_ask_affirmation"
TWO_STAGE = "action_two_stage_fallback"
ANSWER_FAQ = "action_answer_faq"
# Actions that run on every message or belong to the fallback: they do not answer anything.
NOT_AN_ANSWER = {"action_listen", "action_session_start", "action_extract_slots",
                 "action_extract_reader", "action_unlikely_intent", FALLBACK_ACTION,
                 ASK_AFFIRMATION, TWO_STAGE, "action_default_ask_rephrase"}
_ENTRY = re.compile(r"[\w./-]{1,80}")
_TOKEN = re.compile(r"[a-z0-9']+")
_MASK_WORD = re.compile("|".join(re.escape(w) for w in MASKS.values()))
_STOPWORDS = frozenset(re.findall(r"\S+", (
    "a an the is are was were be been am i im i'm my me we our you your it its this that "
    "of to for in on at by with and or but so do does did can could would should will "
    "what how who when where which why about please just there any some if")))


@dataclass
class Miss:
    """One listed user message, already masked."""

    text: str
    reason: str
    entry: str | None = None


@dataclass
class Group:
    """Similar listed messages."""

    misses: list[Miss] = field(default_factory=list)

    @property
    def count(self) -> int:
        return len(self.misses)

    @property
    def reasons(self) -> Counter[str]:
        return Counter(m.reason for m in self.misses)

    @property
    def why(self) -> str:
        counts = self.reasons
        return ", ".join(f"{REASONS[r]} {counts[r]}" for r in REASONS if counts[r])

    @property
    def examples(self) -> list[str]:
        wordings = Counter(m.text for m in self.misses)
        ranked = sorted(wordings, key=lambda t: (-wordings[t], t))
        return ranked[:EXAMPLES]

    @property
    def entry(self) -> str:
        entries = Counter(m.entry for m in self.misses if m.entry)
        return min(entries, key=lambda e: (-entries[e], e)) if entries else ""


@dataclass
class Report:
    """The groups of one run, most frequent first, and what was read."""

    days: float
    since: float
    until: float
    user_messages: int
    groups: list[Group]

    @property
    def listed(self) -> int:
        return sum(g.count for g in self.groups)

    @property
    def reasons(self) -> Counter[str]:
        total: Counter[str] = Counter()
        for g in self.groups:
            total.update(g.reasons)
        return total


@dataclass
class _Turn:
    """A user message and what the assistant did about it (raw text: never printed)."""

    raw: str
    timestamp: float
    intent: str
    faq_entry: str | None
    faq_confidence: float | None
    offered: str | None
    actions: set[str] = field(default_factory=set)
    loop_started: bool = False

    def reason(self, min_confidence: float) -> str | None:
        if ASK_AFFIRMATION in self.actions or (TWO_STAGE in self.actions and self.loop_started):
            return "did_you_mean"
        if self.intent == FALLBACK_INTENT or FALLBACK_ACTION in self.actions:
            return "fell_back"
        if (self.intent == "faq" and ANSWER_FAQ in self.actions
                and self.faq_confidence is not None and self.faq_confidence < min_confidence):
            return "low_confidence"
        return None

    @property
    def answered(self) -> bool:
        return bool(self.actions - NOT_AN_ANSWER) and self.intent != FALLBACK_INTENT

    @property
    def entry(self) -> str | None:
        if self.faq_entry and ANSWER_FAQ in self.actions:
            return self.faq_entry
        if self.offered:
            return f"{self.offered} (offered)"
        if self.intent and self.intent not in (FALLBACK_INTENT, "faq") and self.answered:
            return self.intent
        return None


def _user_turn(data: dict) -> _Turn:
    parse = data.get("parse_data") or {}
    intent = (parse.get("intent") or {}).get("name") or ""
    faq = (parse.get("response_selector") or {}).get("faq") or {}
    response = faq.get("response") or {}
    key = response.get("intent_response_key") or ""
    confidence = response.get("confidence")
    ranking = [r.get("intent_response_key") or "" for r in faq.get("ranking") or []]
    offered = next((k.split("/", 1)[1] for k in ranking if k.startswith("faq/")), None)
    return _Turn(
        raw=str(data.get("text") or ""),
        timestamp=float(data.get("timestamp") or 0.0),
        intent=intent,
        faq_entry=key.split("/", 1)[1] if key.startswith("faq/") else None,
        faq_confidence=float(confidence) if confidence is not None else None,
        offered=offered if intent == FALLBACK_INTENT else None,
    )


def _words(text: str) -> set[str]:
    return {w for w in _TOKEN.findall(text.lower()) if w not in _STOPWORDS}


def similar(first: str, second: str) -> bool:
    """Whether ``second`` rephrases ``first``: most of their words are shared."""
    a, b = _words(first), _words(second)
    if len(a) < 2 or not b:
        return False
    shared = len(a & b)
    return shared / len(a | b) >= 0.5 or (shared >= 2 and shared / min(len(a), len(b)) >= 0.6)


def _conversation_misses(turns: list[_Turn], min_confidence: float) -> Iterator[Miss]:
    """The listed messages of one conversation's turns (masked here, nowhere later)."""
    for i, turn in enumerate(turns):
        if not turn.raw or turn.raw.startswith("/"):
            continue  # a button's payload, not someone's words
        reason = turn.reason(min_confidence)
        if reason is None and turn.answered and i + 1 < len(turns):
            after = turns[i + 1]
            if (after.timestamp - turn.timestamp <= REPHRASE_WINDOW
                    and not after.raw.startswith("/") and similar(turn.raw, after.raw)):
                reason = "rephrased"
        if reason is not None:
            entry = turn.entry
            if entry is not None:
                entry = mask(entry) if _ENTRY.fullmatch(entry.split(" ")[0]) else None
            yield Miss(mask(turn.raw)[:MAX_EXAMPLE], reason, entry)


def _turns(rows: Iterable[tuple[str, str, str | None, str | None]]) -> Iterator[list[_Turn]]:
    """Rows (sender, type, action name, data) in order -> each conversation's turns."""
    sender: str | None = None
    turns: list[_Turn] = []
    for row_sender, kind, action, data in rows:
        if row_sender != sender:
            if turns:
                yield turns
            sender, turns = row_sender, []
        if kind == "user":
            turn = _user_turn(json.loads(data or "{}"))
            last = turns[-1] if turns else None
            if (last is not None and last.raw == turn.raw and last.actions <= {
                    TWO_STAGE, "action_listen"} and turn.timestamp - last.timestamp < 60):
                # the two-stage fallback repeats the clarifying message when it ends
                turn.timestamp = last.timestamp
                turns[-1] = turn
            else:
                turns.append(turn)
        elif not turns:
            continue
        elif kind == "action" and action:
            turns[-1].actions.add(action)
        elif kind == "active_loop" and json.loads(data or "{}").get("name") == TWO_STAGE:
            turns[-1].loop_started = True
    if turns:
        yield turns


def read_misses(url: str, since: float, min_confidence: float = MIN_CONFIDENCE,
                progress: Callable[[str], None] | None = None) -> tuple[list[Miss], int]:
    """The listed messages since ``since`` (epoch seconds), and how many user messages."""
    engine = create_engine(url, future=True)
    misses: list[Miss] = []
    users = 0
    try:
        if "events" not in inspect(engine).get_table_names():
            return [], 0
        query = text(
            "SELECT sender_id, type_name, action_name, data FROM events "
            "WHERE timestamp >= :since AND type_name IN ('user', 'action', 'active_loop') "
            "ORDER BY sender_id, id")
        with engine.connect() as conn:
            result = conn.execution_options(stream_results=True).execute(
                query, {"since": since})
            rows = 0

            def counted(source: Iterable) -> Iterator:
                nonlocal rows
                for row in source:
                    rows += 1
                    if progress and rows % 50_000 == 0:
                        progress(f"read {rows:,} events ...")
                    yield row

            for turns in _turns(counted(result.yield_per(2000))):
                users += sum(1 for t in turns if t.raw and not t.raw.startswith("/"))
                misses.extend(_conversation_misses(turns, min_confidence))
    finally:
        engine.dispose()
    return misses, users


def group(misses: list[Miss], threshold: float = GROUP_SIMILARITY,
          progress: Callable[[str], None] | None = None,
          max_linkage: int = MAX_LINKAGE) -> list[Group]:
    """Similar messages together, most frequent group first.

    Each different wording (masked details left out) is a TF-IDF vector of character 2-4
    grams, so "hospise" and "hospice" stay close. Average-linkage clustering joins wordings
    while the mean cosine similarity between two groups is at least ``threshold``. Beyond
    ``max_linkage`` different wordings (its memory grows with their square) the most frequent
    ones are clustered so, and each rarer one joins the group of its most similar wording, or
    leads a new group with the rare wordings similar to it.
    """
    if not misses:
        return []
    from scipy.cluster.hierarchy import fcluster, linkage
    from sklearn.feature_extraction.text import TfidfVectorizer

    by_wording: dict[str, list[Miss]] = {}
    for m in misses:
        by_wording.setdefault(" ".join(_TOKEN.findall(m.text.lower())) or m.text, []).append(m)

    def topic(wording: str) -> str:  # what was asked: the masked details say nothing of it
        words = _TOKEN.findall(_MASK_WORD.sub(" ", by_wording[wording][0].text.lower()))
        return " ".join(words) or wording

    wordings = sorted(by_wording, key=lambda w: (-len(by_wording[w]), len(topic(w)), w))
    if progress and len(wordings) > 1000:
        progress(f"grouping {len(wordings):,} different wordings ...")
    vectors = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), sublinear_tf=True,
                              dtype=np.float32).fit_transform([topic(w) for w in wordings])
    head = min(len(wordings), max_linkage)
    labels = np.zeros(len(wordings), dtype=np.int64)  # 0: not placed yet
    labels[:head] = 1
    if head > 1:
        sims = (vectors[:head] @ vectors[:head].T).toarray()
        distances = np.clip(1.0 - sims[np.triu_indices(head, k=1)], 0.0, 2.0)
        del sims
        labels[:head] = fcluster(linkage(distances, method="average"), t=1.0 - threshold,
                                 criterion="distance")
    next_label = int(labels[:head].max()) + 1
    for start in range(head, len(wordings), _BLOCK):  # the rarer wordings, a block at a time
        block = (vectors[start: start + _BLOCK] @ vectors[:head].T).toarray()
        best = block.argmax(axis=1)
        for offset, column in enumerate(best):
            if block[offset, column] >= threshold:
                labels[start + offset] = labels[column]
    rest = [row for row in range(head, len(wordings)) if labels[row] == 0]
    while rest:  # leader clustering of what is left: the first leads the ones like it
        leader, rest = rest[0], rest[1:]
        labels[leader] = next_label
        if rest:
            near = (vectors[rest] @ vectors[leader].T).toarray().ravel() >= threshold
            for row in np.asarray(rest)[near]:
                labels[row] = next_label
            rest = [row for row, joined in zip(rest, near, strict=True) if not joined]
        next_label += 1
    members: dict[int, list[Miss]] = {}
    for row, label in enumerate(labels):
        members.setdefault(int(label), []).extend(by_wording[wordings[row]])
    groups = [Group(found) for found in members.values()]
    return sorted(groups, key=lambda g: (-g.count, g.examples[0]))


def build(url: str, days: float = 30, min_confidence: float = MIN_CONFIDENCE,
          now: float | None = None,
          progress: Callable[[str], None] | None = None) -> Report:
    """Read the tracker store and group the messages of the last ``days`` days."""
    if days <= 0:
        raise ValueError("days must be more than 0")
    if not 0 <= min_confidence <= 1:
        raise ValueError("min-confidence must be between 0 and 1")
    until = now if now is not None else time.time()
    since = until - days * DAY
    started = time.monotonic()
    misses, users = read_misses(url, since, min_confidence, progress)
    built = Report(days, since, until, users, group(misses, progress=progress))
    if progress and time.monotonic() - started > 5:
        progress(f"{users:,} user messages read, {built.listed:,} listed in "
                 f"{len(built.groups):,} groups, in {time.monotonic() - started:.0f} s")
    return built


# -- output -------------------------------------------------------------------------------------
def _date(epoch: float) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(epoch))


def _heading(report: Report) -> str:
    return (f"Unanswered questions, {_date(report.since)} to {_date(report.until)} "
            f"(last {report.days:g} days): {report.listed} of {report.user_messages} user "
            f"messages in {len(report.groups)} groups")


def _totals(report: Report) -> str:
    counts = report.reasons
    return ", ".join(f"{label} {counts[r]}" for r, label in REASONS.items()) or "none"


def render_table(report: Report, width: int = 100) -> str:
    """Plain text for a terminal: a line per group, its example wordings under it."""
    lines = [_heading(report), f"why: {_totals(report)}"]
    if not report.groups:
        return "\n".join([*lines, "nothing to list"]) + "\n"
    lines.append(f"{'#':>3}  {'count':>5}  {'why':<36}  entry chosen")
    for n, g in enumerate(report.groups, 1):
        lines.append(f"{n:>3}  {g.count:>5}  {g.why:<36}  {g.entry or '-'}")
        lines += [f"{'':>12}\"{textwrap.shorten(e, width - 16, placeholder='...')}\""
                  for e in g.examples]
    return "\n".join(lines) + "\n"


def render_csv(report: Report) -> str:
    """One row per group (the csv module quotes as needed)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["group", "count", "why", *REASONS, "entry",
                     *(f"example_{n}" for n in range(1, EXAMPLES + 1))])
    for n, g in enumerate(report.groups, 1):
        examples = g.examples + [""] * (EXAMPLES - len(g.examples))
        writer.writerow([n, g.count, g.why, *(g.reasons[r] for r in REASONS), g.entry,
                         *examples])
    return out.getvalue()


_STYLE = ("body{font:15px/1.45 system-ui,sans-serif;margin:2rem;color:#1b1b1b}"
          "table{border-collapse:collapse;width:100%}th,td{border:1px solid #ccc;"
          "padding:.4rem .6rem;text-align:left;vertical-align:top}th{background:#f2f2f2}"
          "td.n{text-align:right}ul{margin:0;padding-left:1.1rem}")


def render_html(report: Report) -> str:
    """A single self-contained page; every value is escaped."""
    e = html.escape
    rows = []
    for n, g in enumerate(report.groups, 1):
        examples = "".join(f"<li>{e(x)}</li>" for x in g.examples)
        rows.append(f"<tr><td class=n>{n}</td><td class=n>{g.count}</td><td>{e(g.why)}</td>"
                    f"<td>{e(g.entry or '-')}</td><td><ul>{examples}</ul></td></tr>")
    body = ("<table><thead><tr><th>#</th><th>count</th><th>why</th><th>entry chosen</th>"
            "<th>examples (masked)</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>") if rows else "<p>Nothing to list.</p>"
    return ("<!DOCTYPE html>\n<html lang=en><head><meta charset=utf-8>"
            "<meta name=viewport content='width=device-width,initial-scale=1'>"
            f"<title>Unanswered questions</title><style>{_STYLE}</style></head><body>"
            f"<h1>Unanswered questions</h1><p>{e(_heading(report))}</p>"
            f"<p>Why: {e(_totals(report))}</p>{body}</body></html>\n")


FORMATS: dict[str, Callable[[Report], str]] = {
    "table": render_table, "csv": render_csv, "html": render_html}


def stderr_progress(message: str) -> None:
    """Progress lines for long runs (stderr, so that stdout stays the report)."""
    print(message, file=sys.stderr, flush=True)
