"""A private, throw-away Redis server (Debian's ``redis-server``) for tests and load runs.

    with temporary_server() as url:   # redis://:<random password>@127.0.0.1:<port>/0
        ...

Loopback only, a random password (in a config file only we can read, never on the command
line), nothing saved to disk; stopped and deleted on exit. ``make system-deps`` installs the
package. In production, point ``NAVIGATOR_LOCK_STORE_URL`` at a managed Redis instead.
"""

from __future__ import annotations

import contextlib
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from navigator.stack import free_port

PORT_ATTEMPTS = 3  # new ports to try when another process took the one we picked


class RedisUnavailable(RuntimeError):
    """redis-server is not installed or did not start."""


def _answers(port: int, password: str) -> bool:
    """True once the server says PONG to an authenticated PING (plain RESP, no client)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as conn:
            conn.sendall(f"AUTH {password}\r\nPING\r\n".encode())
            reply = b""
            while b"PONG" not in reply and len(reply) < 200:
                chunk = conn.recv(100)
                if not chunk:
                    break
                reply += chunk
            return b"PONG" in reply
    except OSError:
        return False


@contextlib.contextmanager
def temporary_server(timeout: float = 15.0) -> Iterator[str]:
    """Start a private Redis server; yield its URL; stop it and delete its files."""
    binary = shutil.which("redis-server")
    if not binary:
        raise RedisUnavailable("redis-server is not installed: run `make system-deps` "
                               "(Debian package redis-server)")
    folder = Path(tempfile.mkdtemp(prefix="navigator-redis-"))
    password = secrets.token_urlsafe(18)
    conf, log = folder / "redis.conf", folder / "redis.log"
    proc: subprocess.Popen | None = None
    try:
        for attempt in range(1, PORT_ATTEMPTS + 1):
            port = free_port()  # released before redis binds it: if taken meanwhile, retry
            conf.unlink(missing_ok=True)
            log.unlink(missing_ok=True)
            conf.touch(mode=0o600)
            conf.write_text(f"port {port}\nbind 127.0.0.1\nprotected-mode yes\n"
                            f"requirepass {password}\nsave \"\"\nappendonly no\n"
                            f"dir {folder}\nlogfile {log}\n", encoding="utf-8")
            proc = subprocess.Popen([binary, str(conf)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
            deadline = time.monotonic() + timeout
            while not _answers(port, password):
                if proc.poll() is not None or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            else:
                break  # up, and it is ours (it knows the password)
            _stop(proc)
            detail = log.read_text()[-1500:] if log.exists() else ""
            if "already in use" not in detail or attempt == PORT_ATTEMPTS:
                raise RedisUnavailable(f"redis-server did not start: {detail}")
        yield f"redis://:{password}@127.0.0.1:{port}/0"
    finally:
        if proc is not None:
            _stop(proc)
        shutil.rmtree(folder, ignore_errors=True)


def _stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
