"""Scale-out: two Rasa instances sharing a PostgreSQL tracker store and a Redis lock store,
behind the gateway, with the provider directory in PostgreSQL too. Real servers throughout:
PostgreSQL and Redis are Debian's packages (`make system-deps`), started privately here."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

import pytest
import sqlalchemy
from aiohttp import ClientSession, CookieJar
from test_directory_conversation import User, _nearest_hospices

from knowledge.directory import nice_case
from navigator import redisserver, stack

if TYPE_CHECKING:
    from conftest import TrackerStores

pytestmark = [pytest.mark.slow, pytest.mark.servers]


@pytest.fixture(scope="module")
def redis_url():
    """A private Redis server (Debian's redis-server). Not optional: a missing one fails."""
    try:
        with redisserver.temporary_server() as url:
            yield url
    except redisserver.RedisUnavailable as err:
        pytest.fail(str(err))


@pytest.fixture(scope="module")
def tracker_url(tracker_stores: TrackerStores) -> str:
    """The tracker database the two Rasa instances share (on PostgreSQL; Rasa fills it)."""
    return tracker_stores("postgresql", name="scale_tracker").url


@pytest.fixture(scope="module")
def scaled(trained_model: Path, tracker_stores: TrackerStores, redis_url: str, tracker_url: str,
           tmp_path_factory: pytest.TempPathFactory):
    """Action server, two Rasa instances and the gateway; tracker, lock and directory shared."""
    directory_url = tracker_stores.postgres_database("scale_directory")
    var = tmp_path_factory.mktemp("scaled")
    with stack.running(trained_model, rasa_port=stack.free_port(),
                       more_rasa_ports=(stack.free_port(),),
                       actions_port=stack.free_port(), web_port=stack.free_port(),
                       var_dir=var, log_dir=var, tracker_url=tracker_url,
                       lock_url=redis_url, directory_url=directory_url) as running:
        yield running


def _rest(running: stack.Stack, port: int) -> str:
    return f"http://{running.host}:{port}/webhooks/rest/webhook"


def _user_turns(tracker_url: str, sender: str) -> list[str]:
    """The text of each user message Rasa stored for one conversation, oldest first."""
    engine = sqlalchemy.create_engine(tracker_url)
    with engine.connect() as conn:
        rows = conn.execute(sqlalchemy.text(
            "SELECT type_name, data FROM events WHERE sender_id = :s ORDER BY id"), {"s": sender})
        stored = [(t, json.loads(d)) for t, d in rows]
    engine.dispose()
    return [d.get("text") for t, d in stored if t == "user"]


def test_a_conversation_continues_when_each_turn_lands_on_another_instance(scaled,
                                                                            tracker_url):
    first, second = scaled.rasa_ports
    sender = f"scale-{uuid.uuid4().hex}"
    on_a, on_b = User(_rest(scaled, first), sender), User(_rest(scaled, second), sender)
    nearest = _nearest_hospices("60614")

    assert "Where should I look?" in on_a.say("find hospice care near me")
    results = on_b.say("60614")  # the form started on A is filled on B
    assert f"1. {nice_case(nearest[0]['Facility Name'])}, " in results
    more = on_a.say("show more")  # B's results are what A pages through
    assert f"4. {nice_case(nearest[3]['Facility Name'])}, " in more
    detail = on_b.say("call the second one")
    assert detail.startswith(nice_case(nearest[1]["Facility Name"]))

    assert _user_turns(tracker_url, sender) == [
        "find hospice care near me", "60614", "show more", "call the second one"]


def _callers_waiting_at(port: int, processes: dict[str, subprocess.Popen]) -> list[str]:
    """Which of ``processes`` (by name; "other" for any other) sent each request that the
    server on loopback ``port`` has not read yet. Linux only: from /proc/net/tcp (a
    connection in the ESTABLISHED state with bytes in its receive queue) and /proc/<pid>/fd
    (whose socket the other end of that connection is)."""
    sockets = []  # (local port, remote port, state, unread bytes, inode)
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        sockets.append((int(fields[1].rsplit(":", 1)[1], 16),
                        int(fields[2].rsplit(":", 1)[1], 16), fields[3],
                        int(fields[4].split(":")[1], 16), fields[9]))
    owner = {}
    for name, proc in processes.items():
        with contextlib.suppress(OSError):
            for fd in Path(f"/proc/{proc.pid}/fd").iterdir():
                with contextlib.suppress(OSError):
                    link = os.readlink(fd)
                    if link.startswith("socket:["):
                        owner[link[8:-1]] = name
    callers = []
    for local, remote, state, unread, _ in sockets:
        if local == port and state == "01" and unread:
            inodes = [i for lp, rp, _, _, i in sockets if lp == remote and rp == port]
            callers.append(next((owner[i] for i in inodes if i in owner), "other"))
    return sorted(callers)


@contextlib.contextmanager
def _paused(proc) -> Iterator[None]:
    """Freeze a server (SIGSTOP to its process group) and always thaw it afterwards."""
    os.killpg(proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(proc.pid, signal.SIGCONT)


def test_two_turns_at_once_on_two_instances_are_taken_one_after_the_other(scaled, tracker_url):
    """The Redis lock store: a turn on instance B waits while instance A is in the middle of
    a turn of the same conversation, and starts only once that turn has ended.

    The overlap is made certain. Every turn calls the action server once its message is
    logged (action_extract_reader fills slots from every message), and the action server is
    frozen: turn A is held inside Rasa A, with the conversation, its request unread at the
    action server, until the server is thawed. Turn B is sent meanwhile and must not get
    that far: for several times as long as a whole turn takes, the only request waiting at
    the action server is A's (told apart by the socket that sent it). Afterwards the stored
    events show B's message logged after A's turn ended, and after the thaw. Without a lock
    shared by the instances (Rasa's default in-memory lock store is one per instance) B's
    request reaches the action server beside A's, and B's message is logged before A's turn
    ended: the test fails.
    """
    first, second = scaled.rasa_ports
    actions_port, rasas = scaled.actions_port, {"A": scaled.processes["Rasa"],
                                                "B": scaled.processes["Rasa 2"]}
    faq, plain = "what is palliative care?", "are you a bot?"
    hold = 6.0  # seconds B is kept from its turn while A is held

    def say(port: int, sender: str, text: str) -> tuple[str, float]:
        """The reply, and the wall-clock time it came."""
        return User(_rest(scaled, port), sender).say(text), time.time()

    def at_actions() -> list[str]:
        """Which instances (A, B) have a request waiting at the frozen action server."""
        return [c for c in _callers_waiting_at(actions_port, rasas) if c != "other"]

    asked = time.monotonic()
    assert "automated assistant" in say(second, f"scale-{uuid.uuid4().hex}", plain)[0]
    assert time.monotonic() - asked < hold / 4, "a whole turn takes too long for this test"

    sender = f"scale-{uuid.uuid4().hex}"
    with ThreadPoolExecutor(2) as pool, _paused(scaled.processes["action"]):
        assert at_actions() == []
        turn_a = pool.submit(say, first, sender, faq)
        deadline = time.monotonic() + 60
        while at_actions() != ["A"]:  # A is in its turn, at the action server
            assert not turn_a.done() and time.monotonic() < deadline, at_actions()
            time.sleep(0.05)
        b_sent = time.time()
        turn_b = pool.submit(say, second, sender, plain)  # both in flight from here on
        deadline = time.monotonic() + hold
        while time.monotonic() < deadline:
            assert at_actions() == ["A"], (
                "B's turn went ahead while A was in the middle of a turn of the same "
                "conversation: the two instances share no lock")
            time.sleep(0.1)
        assert not turn_a.done() and not turn_b.done()
        thawed = time.time()
    answer_a, answered_a = turn_a.result(60)
    answer_b, answered_b = turn_b.result(60)
    assert "palliative care" in answer_a.lower() and "Source:" in answer_a
    assert "automated assistant" in answer_b
    assert answered_a <= answered_b

    # The stored conversation: both turns complete, B's logged after A's last event.
    engine = sqlalchemy.create_engine(tracker_url)
    with engine.connect() as conn:
        events = [(t, ts, json.loads(d)) for t, ts, d in conn.execute(sqlalchemy.text(
            "SELECT type_name, timestamp, data FROM events WHERE sender_id = :s ORDER BY id"),
            {"s": sender})]
    engine.dispose()
    users = [i for i, (t, _, _) in enumerate(events) if t == "user"]
    assert [events[i][2]["text"] for i in users] == [faq, plain]
    a_turn, b_turn = events[users[0]:users[1]], events[users[1]:]
    assert "bot" in [t for t, _, _ in a_turn] and "bot" in [t for t, _, _ in b_turn]
    a_started, a_ended = a_turn[0][1], max(ts for _, ts, _ in a_turn)
    b_started = b_turn[0][1]
    assert a_started < b_sent < thawed < a_ended <= b_started, (
        a_started, b_sent, thawed, a_ended, b_started)


def test_the_gateway_spreads_turns_and_survives_an_instance_going_down(scaled):
    health = json.loads(urllib.request.urlopen(scaled.web_url + "healthz", timeout=10).read())
    assert health == {"status": "ok", "rasa": "ok", "actions": "ok", "database": "ok"}

    async def chat(texts: list[str]) -> list[str]:
        async with ClientSession(cookie_jar=CookieJar(unsafe=True)) as client:
            replies = []
            for text in texts:
                async with client.post(scaled.web_url + "api/chat",
                                       json={"message": text}) as resp:
                    assert resp.status == 200
                    body = await resp.json()
                # each message's text, and its result cards as "1. Name, " (what is shown)
                replies.append(" ".join(
                    " ".join([m["text"], *(f"{c['n']}. {c['name']}, " for c in
                                           m.get("cards", []))]) for m in body["messages"]))
            return replies

    nearest = _nearest_hospices("60614")
    where, results = asyncio.run(chat(["find hospice care near me", "60614"]))
    assert "Where should I look?" in where
    assert f"1. {nice_case(nearest[0]['Facility Name'])}, " in results

    stack.stop_process(scaled.processes["Rasa 2"])  # the second instance goes away
    replies = asyncio.run(chat(["find hospice care near me", "60614", "show more",
                                "what is palliative care?"]))
    assert "Where should I look?" in replies[0]
    assert f"1. {nice_case(nearest[0]['Facility Name'])}, " in replies[1]
    assert f"4. {nice_case(nearest[3]['Facility Name'])}, " in replies[2]
    assert "palliative care" in replies[3].lower()
    # still serving (200; an HTTPError would be raised for a 503), and saying what is down
    with urllib.request.urlopen(scaled.web_url + "healthz", timeout=10) as resp:
        report = json.loads(resp.read())
    assert report == {"status": "degraded", "rasa": "1 of 2 up", "actions": "ok",
                      "database": "ok"}


def test_store_passwords_stay_out_of_the_endpoints_file(tmp_path: Path) -> None:
    from rasa.utils.endpoints import read_endpoint_config

    path = tmp_path / "endpoints.run.yml"
    env = stack._write_endpoints(
        path, "http://127.0.0.1:5055/webhook", None,
        tracker_url="postgresql://rasa:tr4cker-secret@db.internal:5433/conversations",
        lock_url="redis://:l0ck-secret@cache.internal:6380/2")
    text = path.read_text()
    assert "tr4cker-secret" not in text and "l0ck-secret" not in text
    assert path.stat().st_mode & 0o077 == 0  # only the owner can read the file
    with pytest.MonkeyPatch.context() as mp:
        for name, value in env.items():
            mp.setenv(name, value)
        tracker = read_endpoint_config(str(path), "tracker_store")
        lock = read_endpoint_config(str(path), "lock_store")
    assert (tracker.url, tracker.kwargs["port"], tracker.kwargs["db"]) == (
        "db.internal", 5433, "conversations")
    assert tracker.kwargs["password"] == "tr4cker-secret"
    assert (lock.url, lock.kwargs["port"], lock.kwargs["db"]) == ("cache.internal", 6380, 2)
    assert lock.kwargs["password"] == "l0ck-secret"


def test_several_instances_without_shared_stores_are_refused(trained_model: Path,
                                                            tmp_path: Path) -> None:
    with pytest.raises(stack.StackError, match="shared tracker store"):
        stack.start(trained_model, more_rasa_ports=(stack.free_port(),), var_dir=tmp_path)


def test_racing_instances_take_one_conversation_one_turn_at_a_time(redis_url: str) -> None:
    """Eight lock-store clients (as eight Rasa instances), each in its own thread, want the
    same conversation at the same moment, 30 times over: never two inside at once, every
    turn gets its go, and no lock is left behind. (Rasa's own RedisLockStore lets all eight
    in together and fails some with LockError: see bot/lock_store.py.)"""
    from bot.lock_store import AtomicRedisLockStore

    parts = urlsplit(redis_url)
    stores = [AtomicRedisLockStore(host=parts.hostname, port=parts.port,
                                   password=parts.password, key_prefix="race")
              for _ in range(8)]
    state = {"inside": 0, "most": 0, "done": 0}
    guard = threading.Lock()

    async def turn(store: AtomicRedisLockStore, conversation: str) -> None:
        async with store.lock(conversation, wait_time_in_seconds=0.005):
            with guard:
                state["inside"] += 1
                state["most"] = max(state["most"], state["inside"])
            await asyncio.sleep(0.003)
            with guard:
                state["inside"] -= 1
                state["done"] += 1

    def run(store: AtomicRedisLockStore, conversation: str, start: threading.Barrier) -> None:
        start.wait()
        asyncio.run(turn(store, conversation))

    for round_ in range(30):
        start = threading.Barrier(len(stores))
        threads = [threading.Thread(target=run, args=(store, f"c{round_}", start))
                   for store in stores]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert state == {"inside": 0, "most": 1, "done": 30 * len(stores)}
    assert stores[0].red.keys("race:*") == []


def test_two_gateways_share_one_set_of_limits(redis_url: str) -> None:
    """With NAVIGATOR_WEB_RATE_LIMIT_URL, a sender gets the limit once, not once per gateway
    replica; with Redis unreachable, people are still answered."""
    from aiohttp.test_utils import TestClient, TestServer
    from test_gateway import _fake_rasa

    from gateway.app import COOKIE, Config, Gateway

    secret = b"s" * 32

    async def run(limit_url: str) -> list[int]:
        seen: list[dict] = []
        async with TestServer(_fake_rasa([{"text": "hi"}], seen)) as rasa:
            rasa_url = str(rasa.make_url("")).rstrip("/")

            def gateway() -> Gateway:
                return Gateway(Config(rasa_urls=(rasa_url,), secret=secret,
                                      session_rate=(3, 60.0), address_rate=(100, 60.0),
                                      rate_limit_url=limit_url))

            async with TestClient(TestServer(gateway().app)) as one, \
                    TestClient(TestServer(gateway().app)) as two:
                first = await one.post("/api/chat", json={"message": "hello"})
                cookie = {COOKIE: first.cookies[COOKIE].value}
                statuses = [first.status]
                for client in (two, one, two, one):  # the same conversation, both replicas
                    r = await client.post("/api/chat", json={"message": "hello"},
                                          cookies=cookie)
                    statuses.append(r.status)
                    if r.status == 429:
                        assert int(r.headers["Retry-After"]) >= 1
                return statuses

    assert asyncio.run(run(redis_url)) == [200, 200, 200, 429, 429]
    dead = f"redis://127.0.0.1:{stack.free_port()}/0"
    assert asyncio.run(run(dead)) == [200] * 5  # no Redis: let through (and logged)
