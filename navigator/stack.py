"""Start the action server, the Rasa server and (optionally) the web gateway together, and
stop them together.

The gateway is the only server that may be public (``gateway_host``); Rasa and the action
server listen on loopback, or on a private address given explicitly (``host``), never on all
interfaces. Used by ``navigator run`` and by the integration tests, so the tests exercise
exactly what a user starts.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from navigator.training import rasa_command, rasa_env
from settings import ROOT

# The gateway runs from its own environment (newest aiohttp; built by `make gateway-venv`,
# which `make run` and `make test` do first): it never imports Rasa, so it is not held to
# Rasa's aiohttp pin.
GATEWAY_PYTHON = ROOT / ".venv-gateway" / "bin" / "python"

_handed_out: set[int] = set()  # ports free_port gave this process
_reservations: list[int] = []  # open lock files: held until this process exits
_ports_guard = threading.Lock()
PORT_LOCK_DIR = Path(tempfile.gettempdir()) / "navigator-ports"


def _port_candidates() -> list[int]:
    """Ports outside the kernel's ephemeral range, in random order. The kernel takes ports
    for the local end of outgoing connections and for binds to port 0 from that range only,
    so nothing it hands out on its own can land on one of these."""
    low, high = 32768, 60999  # Linux's default
    with contextlib.suppress(OSError, ValueError):
        text = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text()
        low, high = (int(n) for n in text.split())
    pool = [p for p in range(10000, 65536) if not low <= p <= high]
    random.SystemRandom().shuffle(pool)
    return pool or [_kernel_port() for _ in range(100)]  # no room outside: the kernel's


def _kernel_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reserve(port: int) -> bool:
    """Claim ``port`` for this process's lifetime among all processes using free_port (two
    test runs at once, say): an exclusive lock on a file named after it, released by the
    kernel when this process exits. True if the claim succeeded or locking is unavailable."""
    try:
        if not PORT_LOCK_DIR.is_dir():
            with contextlib.suppress(FileExistsError):
                PORT_LOCK_DIR.mkdir()
                PORT_LOCK_DIR.chmod(0o1777)  # any user's runs share it (sticky, like /tmp)
        fd = os.open(PORT_LOCK_DIR / str(port), os.O_RDONLY | os.O_CREAT, 0o666)
    except OSError:
        return True  # no shared lock folder: the other checks still apply
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return False
    _reservations.append(fd)  # never closed: the claim lasts until the process exits
    return True


def _bindable(port: int) -> bool:
    """True if nothing is bound to ``port`` on loopback (no listener, nothing lingering)."""
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A loopback TCP port for a server that is about to start (tests and load runs).

    The port is released before the server binds it, so it must not be taken meanwhile. It is
    therefore never one this process had before, never one another process got from
    free_port (see _reserve), chosen at random outside the kernel's ephemeral range (see
    _port_candidates), and bindable when checked. A server started in this process should
    rather bind port 0 and read its port back; one that still finds its port taken exits
    (address in use), which :func:`start` reports, and ``redisserver`` retries.
    """
    with _ports_guard:
        for port in _port_candidates():
            if port in _handed_out or not _bindable(port) or not _reserve(port):
                continue
            if not _bindable(port):  # taken while we reserved it
                continue
            _handed_out.add(port)
            return port
    raise OSError("no free TCP port on 127.0.0.1")


class StackError(RuntimeError):
    """A server did not start, or stopped unexpectedly."""


@dataclass
class Stack:
    """The running action server and Rasa server(s), and the gateway when it runs."""

    host: str  # where Rasa and the action server listen (loopback or private)
    rasa_port: int
    actions_port: int
    processes: dict[str, subprocess.Popen]
    web_port: int | None = None
    var_dir: Path | None = None  # run files, the tracker database and (in tests) the logs
    more_rasa_ports: tuple[int, ...] = ()  # further Rasa instances (shared tracker and lock)
    log_dir: Path | None = None
    env: dict[str, str] = field(default_factory=dict, repr=False)
    # name -> (command, log file stem, the URL that answers 200 when it is up)
    commands: dict[str, tuple[list[str], str, str]] = field(default_factory=dict, repr=False)
    gateway_host: str = "127.0.0.1"  # where the gateway listens (0.0.0.0: public)

    @property
    def rasa_ports(self) -> tuple[int, ...]:
        """Every Rasa instance's port, the first one first."""
        return (self.rasa_port, *self.more_rasa_ports)

    @property
    def web_url(self) -> str | None:
        """The gateway's address (the demo page with the widget), when it runs."""
        return f"http://{_reachable(self.gateway_host)}:{self.web_port}/" if self.web_port else None

    @property
    def rest_url(self) -> str:
        """The REST channel's webhook URL."""
        return f"http://{_reachable(self.host)}:{self.rasa_port}/webhooks/rest/webhook"

    @property
    def actions_url(self) -> str:
        """The action server's webhook URL (what endpoints.yml points to)."""
        return f"http://{_reachable(self.host)}:{self.actions_port}/webhook"

    def add(self, name: str, command: list[str], log: str, health_url: str) -> None:
        """Start a server (its output to ``<log>.log`` in ``log_dir``, else the console)."""
        self.commands[name] = (command, log, health_url)
        self.spawn(name)

    def spawn(self, name: str) -> None:
        """Start the server ``name`` with its command; do not wait for it."""
        command, log, _ = self.commands[name]
        out = (self.log_dir / f"{log}.log").open("ab") if self.log_dir else None
        try:
            self.processes[name] = subprocess.Popen(
                command, cwd=ROOT, env=self.env, stdout=out,
                stderr=subprocess.STDOUT if out else None,
                start_new_session=True,  # own process group: Ctrl-C reaches us, we stop them
            )
        finally:
            if out:
                out.close()  # the child has its own copy

    def wait_ready(self, timeout: float = 180.0, names: list[str] | None = None) -> None:
        """Wait until each server (all, or ``names``) answers its health URL."""
        for name in names or list(self.commands):
            wait_http(self.commands[name][2], self.processes, timeout)

    def restart(self, name: str, timeout: float = 180.0) -> None:
        """Stop one server (if it runs), start it again the same way, wait until it answers."""
        stop_process(self.processes[name])
        self.spawn(name)
        self.wait_ready(timeout, [name])

    def check_alive(self) -> None:
        """Raise StackError if any server has exited."""
        for name, proc in self.processes.items():
            if proc.poll() is not None:
                raise StackError(f"the {name} server stopped (exit code {proc.returncode})")

    def stop(self, timeout: float = 15.0) -> None:
        """Ask every server to stop, then kill what is left after ``timeout`` seconds."""
        for proc in self.processes.values():
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for proc in self.processes.values():
            stop_process(proc, max(0.1, deadline - time.monotonic()))


def stop_process(proc: subprocess.Popen, timeout: float = 15.0) -> None:
    """Stop one server (SIGTERM to its process group; SIGKILL after ``timeout`` seconds)."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def wait_http(url: str, procs: dict[str, subprocess.Popen], timeout: float) -> None:
    """Wait until ``url`` answers 200; StackError if a process in ``procs`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for name, proc in procs.items():
            if proc.poll() is not None:
                raise StackError(
                    f"the {name} server exited while starting (code {proc.returncode})"
                )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.5)
    raise StackError(f"{url} did not answer within {timeout:.0f} s")


def _reachable(host: str) -> str:
    """An address to connect to for a server bound to ``host`` (all interfaces: loopback)."""
    if host in ("", "0.0.0.0"):
        return "127.0.0.1"
    if host in ("::", "[::]"):
        return "[::1]"
    return f"[{host}]" if ":" in host and not host.startswith("[") else host


def check_private_host(host: str) -> str | None:
    """Refuse (StackError) a public or all-interfaces address for Rasa and the action server;
    for a private one that is not loopback, the warning to print (None for loopback)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        raise StackError(f"Rasa and the action server need an IP address, not {host!r}") from None
    if address.is_loopback:
        return None
    if address.is_unspecified or not address.is_private:
        raise StackError(f"Rasa and the action server must not listen on {host}: only the "
                         "gateway may be public")
    return (f"WARNING: Rasa and the action server listen on {host}, NOT loopback. This address "
            "must never be reachable from the internet: Rasa's REST channel trusts any sender "
            "and the action server has no authentication. Only the gateway is public-safe.")


API_TOKEN_VAR = "NAVIGATOR_RASA_API_TOKEN"  # read by bot.rasa_main through settings
TRACKER_PASSWORD_VAR = "NAVIGATOR_TRACKER_PASSWORD"
LOCK_PASSWORD_VAR = "NAVIGATOR_LOCK_STORE_PASSWORD"


def tracker_store_config(url: str) -> tuple[dict[str, object], dict[str, str]]:
    """Rasa's ``tracker_store`` section for a SQLAlchemy URL, and the environment it needs.

    The password never goes into the file: the section says ``${NAVIGATOR_TRACKER_PASSWORD}``
    and Rasa fills it in from its environment.
    """
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    dialect = parsed.get_backend_name()
    if dialect == "sqlite":
        return {"type": "SQL", "dialect": "sqlite", "db": parsed.database}, {}
    if dialect != "postgresql":
        raise StackError(f"tracker store: use a sqlite:/// or postgresql:// URL, not {dialect}")
    store: dict[str, object] = {"type": "SQL", "dialect": "postgresql",
                                "url": parsed.host or "127.0.0.1", "port": parsed.port or 5432,
                                "db": parsed.database, "username": parsed.username}
    env = {}
    if parsed.password:
        store["password"] = "${" + TRACKER_PASSWORD_VAR + "}"
        env[TRACKER_PASSWORD_VAR] = parsed.password
    return store, env


def lock_store_config(url: str) -> tuple[dict[str, object], dict[str, str]]:
    """Rasa's ``lock_store`` section for ``redis://[:password@]host[:port][/db]``.

    It names our :class:`bot.lock_store.AtomicRedisLockStore` (Rasa's own Redis lock store
    is not safe with several instances: see that module).
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme != "redis" or not parts.hostname:
        raise StackError("lock store: use a redis://[:password@]host[:port][/db] URL")
    store: dict[str, object] = {"type": "bot.lock_store.AtomicRedisLockStore",
                                "url": parts.hostname,
                                "port": parts.port or 6379,
                                "db": int(parts.path.strip("/") or 0),
                                "key_prefix": "navigator"}
    env = {}
    if parts.password:
        store["password"] = "${" + LOCK_PASSWORD_VAR + "}"
        env[LOCK_PASSWORD_VAR] = parts.password
    return store, env


def _write_endpoints(path: Path, actions_url: str, tracker_db: Path | None,
                     tracker_url: str | None = None, lock_url: str | None = None
                     ) -> dict[str, str]:
    """Copy endpoints.yml with this run's action server, tracker store and lock store.

    Returns the environment variables (passwords) Rasa needs to read it.

    Rasa does not create the SQLite file's folder; if it cannot open the file it silently
    falls back to a fresh in-memory tracker on every request, losing the conversation. So
    the path is made absolute and its folder created here.
    """
    config = yaml.safe_load((ROOT / "endpoints.yml").read_text(encoding="utf-8")) or {}
    config["action_endpoint"] = {**(config.get("action_endpoint") or {}), "url": actions_url}
    env: dict[str, str] = {}
    if tracker_url:
        config["tracker_store"], more = tracker_store_config(tracker_url)
        env.update(more)
    store = config.get("tracker_store") or {}
    if store.get("dialect") == "sqlite":
        db = Path(str(tracker_db or store.get("db") or "var/tracker.db"))
        db = db if db.is_absolute() else ROOT / db
        db.parent.mkdir(parents=True, exist_ok=True)
        store["db"] = str(db)
    if lock_url:
        config["lock_store"], more = lock_store_config(lock_url)
        env.update(more)
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    path.chmod(0o600)
    return env


def prepare_directory(url: str, var_dir: Path) -> None:
    """Migrate the directory; on first start import the bundled CMS hospice list."""
    from providers import bundled, db

    engine = db.make_engine(url)
    try:
        summary = bundled.ensure_ready(engine, report_dir=var_dir / "import-reports")
    finally:
        engine.dispose()
    if summary:
        print(f"provider directory: {summary}", flush=True)


def start(
    model: Path,
    host: str = "127.0.0.1",
    rasa_port: int = 5005,
    actions_port: int = 5055,
    var_dir: Path = ROOT / "var",
    tracker_db: Path | None = None,
    log_dir: Path | None = None,
    timeout: float = 180.0,
    api_token: str | None = None,
    extra_env: dict[str, str] | None = None,
    directory_url: str | None = None,
    web_port: int | None = None,
    tracker_url: str | None = None,
    lock_url: str | None = None,
    more_rasa_ports: tuple[int, ...] = (),
    gateway_host: str = "127.0.0.1",
) -> Stack:
    """Start the servers and wait until they answer. Logs go to the console or ``log_dir``.

    The provider directory (``directory_url``, default a SQLite file in ``var_dir``) is
    migrated first, and the bundled hospice list imported when it is empty. Conversations
    go to ``tracker_url`` (a SQLAlchemy URL; default the SQLite file ``tracker_db``).
    ``more_rasa_ports`` starts further Rasa instances behind the gateway; they need a shared
    tracker store (PostgreSQL) and a Redis lock store (``lock_url``). Rasa and the action
    server listen on ``host`` (loopback, or a private address, with a loud warning); only the
    gateway listens on ``gateway_host``.
    """
    warning = check_private_host(host)
    if warning:
        print(warning, file=sys.stderr, flush=True)
    if web_port and not GATEWAY_PYTHON.exists():
        raise StackError(f"the gateway's environment is missing ({GATEWAY_PYTHON}): run "
                         "`make gateway-venv` (make run and make test build it)")
    if more_rasa_ports and not (lock_url and tracker_url
                                and not tracker_url.startswith("sqlite")):
        raise StackError("several Rasa instances need a shared tracker store (a postgresql:// "
                         "tracker URL) and a Redis lock store (a redis:// lock URL)")
    var_dir.mkdir(parents=True, exist_ok=True)
    directory_url = directory_url or f"sqlite:///{(var_dir / 'directory.db').resolve()}"
    prepare_directory(directory_url, var_dir)
    env = {**rasa_env(), **(extra_env or {}), "NAVIGATOR_DIRECTORY_URL": directory_url}
    env["SANIC_HOST"] = host  # rasa-sdk binds to SANIC_HOST (default 0.0.0.0)
    env.pop(API_TOKEN_VAR, None)
    if api_token:
        env[API_TOKEN_VAR] = api_token
    endpoints = var_dir / "endpoints.run.yml"
    private = _reachable(host)
    actions_url = f"http://{private}:{actions_port}/webhook"
    env.update(_write_endpoints(endpoints, actions_url, tracker_db, tracker_url, lock_url))
    if tracker_url and not tracker_url.startswith("sqlite"):
        # SMS opt-outs beside the conversations, so every Rasa instance honours a STOP
        env.setdefault("NAVIGATOR_TWILIO_OPTOUT_URL", tracker_url)

    stack = Stack(host, rasa_port, actions_port, {}, web_port, var_dir,
                  tuple(more_rasa_ports), log_dir, env, gateway_host=gateway_host)
    try:
        stack.add("action",
                  [sys.executable, "-m", "rasa_sdk", "--actions", "actions",
                   "--port", str(actions_port)],
                  "actions", f"http://{private}:{actions_port}/health")
        # Rasa's HTTP API (used by staff to resume a handed-off conversation) is only
        # switched on with a token; without one only the channels answer. The token goes in
        # the environment (bot.rasa_main hands it to Rasa), never on the command line, where
        # every user of the machine could read it in the process list.
        api = ["--enable-api"] if api_token else []
        for n, port in enumerate(stack.rasa_ports, start=1):
            stack.add("Rasa" if n == 1 else f"Rasa {n}",
                      [*rasa_command(), "run", "--model", str(model), "--interface", host,
                       "--port", str(port), "--endpoints", str(endpoints),
                       "--credentials", str(ROOT / "credentials.yml"), *api],
                      "rasa" if n == 1 else f"rasa-{n}", f"http://{private}:{port}/")
        if web_port:
            rasa_urls = [a for port in stack.rasa_ports
                         for a in ("--rasa-url", f"http://{private}:{port}")]
            stack.add("web",
                      [str(GATEWAY_PYTHON), "-m", "gateway", "--host", gateway_host,
                       "--port", str(web_port), *rasa_urls,
                       "--actions-url", f"http://{private}:{actions_port}"],
                      "web", str(stack.web_url))
        stack.wait_ready(timeout)
    except BaseException:
        stack.stop()
        raise
    return stack


@contextlib.contextmanager
def running(model: Path, **kwargs: object) -> Iterator[Stack]:
    """Context manager around :func:`start`: the servers stop on exit, whatever happens."""
    stack = start(model, **kwargs)  # type: ignore[arg-type]
    try:
        yield stack
    finally:
        stack.stop()
