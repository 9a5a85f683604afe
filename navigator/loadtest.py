"""`make loadtest`: many people chatting at once through the gateway, over real HTTP.

Each simulated user keeps their own cookie (so the gateway gives them their own
conversation) and plays a realistic mix of turns: FAQ questions, a provider search with
follow-ups, and messages the assistant should not understand. Between turns a user pauses
as a person does to read the reply and type the next line (``--think``, default 3 to 8
seconds; real people on a phone take longer). A last "stress" run has no pauses at all, to
show the capacity of the machine and that overload slows replies without losing any.

For each run it prints p50/p95/p99 latency, throughput and errors, then checks that every
user turn reached the SQL tracker store.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import statistics
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy
from aiohttp import ClientSession, ClientTimeout, CookieJar

from navigator import redisserver, stack, training
from navigator.stack import free_port
from settings import Settings

FAQ = ["what is palliative care?", "is hospice only for cancer?", "will medicare pay for "
       "hospice?", "can a pain clinic help my back?", "what's the difference with hospice?",
       "my mum has copd, can palliative care help her?", "tell me more",
       "how do I talk to the doctor about pain?", "what happens in the last days of life?"]
SEARCH = ["find hospice care near 60614", "show more", "call the second one",
          "widen the search", "is there palliative care close to Boise?", "only hospices",
          "hospices in Tulsa, OK", "pain clinic near me", "83702"]
ODD = ["asdfgh", "what's the weather in paris", "ok", "thanks", "hello"]


KINDS = {"faq": (FAQ, 0.55), "search": (SEARCH, 0.35), "other": (ODD, 0.10)}


def _script(rng: random.Random, turns: int) -> list[tuple[str, str]]:
    """(kind, message) for each turn of one user."""
    kinds = rng.choices(list(KINDS), [weight for _, weight in KINDS.values()], k=turns)
    return [(kind, rng.choice(KINDS[kind][0])) for kind in kinds]


async def _user(url: str, turns: list[tuple[str, str]], latencies: list[tuple[str, float]],
                errors: list[str],
                senders: list[tuple[str, int]], think: tuple[float, float],
                rng: random.Random) -> None:
    jar = CookieJar(unsafe=True)
    async with ClientSession(cookie_jar=jar, timeout=ClientTimeout(total=60)) as client:
        await asyncio.sleep(rng.uniform(0, think[1]))  # people don't all start at once
        for n, (kind, text) in enumerate(turns):
            if n:
                await asyncio.sleep(rng.uniform(*think))
            started = time.perf_counter()
            try:
                async with client.post(url + "api/chat", json={"message": text}) as resp:
                    await resp.read()
                    if resp.status != 200:
                        errors.append(f"HTTP {resp.status}")
            except Exception as exc:  # noqa: BLE001 - counted and reported
                errors.append(type(exc).__name__)
            latencies.append((kind, time.perf_counter() - started))
        for cookie in jar:
            if cookie.key == "pcn_session":
                senders.append((cookie.value.split(".", 1)[0], len(turns)))


async def _run(url: str, users: int, turns: int, seed: int,
               think: tuple[float, float] = (0.0, 0.0)) -> tuple[list, list, list, float]:
    rng = random.Random(seed)
    latencies: list[tuple[str, float]] = []
    errors: list[str] = []
    senders: list[tuple[str, int]] = []
    started = time.perf_counter()
    progress = asyncio.create_task(_progress(latencies, users * turns, started))
    try:
        await asyncio.gather(*(_user(url, _script(rng, turns), latencies, errors, senders,
                                     think, random.Random(rng.random()))
                               for _ in range(users)))
    finally:
        progress.cancel()
    return latencies, errors, senders, time.perf_counter() - started


def _think(value: str) -> tuple[float, float]:
    """``"3-8"`` → (3.0, 8.0); ``"0"`` → no pause."""
    low, _, high = value.partition("-")
    try:
        pause = (float(low), float(high or low))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected seconds like 3-8 or 0, not {value!r}") \
            from None
    if pause[0] < 0 or pause[1] < pause[0]:
        raise argparse.ArgumentTypeError(f"expected 0 <= MIN <= MAX, not {value!r}")
    return pause


def _percentile(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q * (len(values) - 1))))]


@contextlib.contextmanager
def _shape(instances: int, var: Path) -> Iterator[dict[str, object]]:
    """Where conversations live: a SQLite file for one Rasa instance; for several, the
    production shape (a durable private PostgreSQL tracker store and a Redis lock store)."""
    if instances == 1:
        yield {"tracker_url": f"sqlite:///{var / 'tracker.db'}"}
        return
    from navigator import pgserver

    with pgserver.temporary_server("tracker", durable=True) as tracker_url, \
            redisserver.temporary_server() as lock_url:
        yield {"tracker_url": tracker_url, "lock_url": lock_url,
               "more_rasa_ports": tuple(free_port() for _ in range(instances - 1))}


async def _progress(latencies: list[tuple[str, float]], expected: int, started: float) -> None:
    """A line every 15 s on a long run: turns done so far."""
    while True:
        await asyncio.sleep(15)
        print(f"      ... {len(latencies)}/{expected} turns, {time.perf_counter() - started:.0f} s",
              flush=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="navigator loadtest", description=__doc__)
    parser.add_argument("--users", type=int, nargs="+", default=[20, 50])
    parser.add_argument("--turns", type=int, default=20)
    parser.add_argument("--think", type=_think, default=(3.0, 8.0), metavar="MIN-MAX",
                        help="seconds a user pauses between turns (default 3-8; 0 = none)")
    parser.add_argument("--stress", type=int, default=50, metavar="USERS",
                        help="then this many users with no pauses at all (0 = skip)")
    parser.add_argument("--rasa-instances", type=int, default=2, metavar="N",
                        help="Rasa processes behind the gateway (default 2, one per core); "
                             "more than 1 runs the production shape: PostgreSQL tracker "
                             "store and Redis lock store, started privately")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args(argv)
    if args.rasa_instances < 1:
        parser.error("--rasa-instances must be at least 1")
    runs = [(users, args.think) for users in args.users]
    if args.stress:
        runs.append((args.stress, (0.0, 0.0)))
    model_file = training.ensure_model(Settings.from_env().models_dir)
    failed = False
    with tempfile.TemporaryDirectory(prefix="navigator-load-") as tmp, \
            _shape(args.rasa_instances, Path(tmp)) as shape:
        var = Path(tmp)
        tracker_url = str(shape["tracker_url"])
        print(f"starting the stack: {args.rasa_instances} Rasa instance(s), tracker store "
              f"{tracker_url.split(':', 1)[0]}" + (", Redis lock store" if "lock_url" in shape
                                                   else ""), flush=True)
        # every simulated user comes from 127.0.0.1: lift the per-address limit for the run
        with stack.running(model_file, rasa_port=free_port(), actions_port=free_port(),
                           web_port=free_port(), var_dir=var, log_dir=var,
                           extra_env={"NAVIGATOR_WEB_ADDRESS_RATE": "100000",
                                      "NAVIGATOR_WEB_NEW_CONVERSATION_RATE": "100000",
                                      "NAVIGATOR_WEB_SESSION_RATE": "1000"},
                           **shape) as running:
            asyncio.run(_run(running.web_url, 2 * args.rasa_instances, 3, 0))  # warm up
            print(f"{args.turns} turns per user; pause between turns in seconds", flush=True)
            print(f"{'users':>5} {'pause':>6} {'turns':>6} {'p50 ms':>7} {'p95 ms':>7} "
                  f"{'p99 ms':>7} {'turns/s':>8} {'errors':>6} {'lost':>5}", flush=True)
            for users, think in runs:
                lat, errors, senders, seconds = asyncio.run(
                    _run(running.web_url, users, args.turns, args.seed + users, think))
                missing = _missing_turns(tracker_url, senders)
                ms = [x * 1000 for _, x in lat]
                pause = f"{think[0]:g}-{think[1]:g}" if think[1] else "none"
                print(f"{users:5d} {pause:>6} {len(lat):6d} {statistics.median(ms):7.0f} "
                      f"{_percentile(ms, 0.95):7.0f} {_percentile(ms, 0.99):7.0f} "
                      f"{len(lat) / seconds:8.1f} {len(errors):6d} {missing:5d}", flush=True)
                by_kind = {kind: sorted(x * 1000 for k, x in lat if k == kind) for kind in KINDS}
                print("      p50 / p95 ms by kind: " + ", ".join(
                    f"{kind} {statistics.median(v):.0f} / {_percentile(v, 0.95):.0f}"
                    for kind, v in by_kind.items() if v), flush=True)
                if errors:
                    print(f"      errors: {sorted(set(errors))}", flush=True)
                failed |= bool(errors) or missing > 0
    print("goal: p95 <= 150 ms at 20 users (with pauses); 0 errors and no turn lost in "
          "every run")
    return 1 if failed else 0


def _missing_turns(tracker_url: str, senders: list[tuple[str, int]]) -> int:
    """User turns sent but not in the tracker store (a fallback may add events, never lose)."""
    engine = sqlalchemy.create_engine(tracker_url)
    missing = 0
    query = sqlalchemy.text("SELECT COUNT(*) FROM events WHERE type_name = 'user' AND "
                            "sender_id = :sender")
    try:
        with engine.connect() as conn:
            for sender, sent in senders:
                stored = conn.execute(query, {"sender": sender}).scalar_one()
                missing += max(0, sent - stored)
    finally:
        engine.dispose()
    return missing


if __name__ == "__main__":
    raise SystemExit(main())
