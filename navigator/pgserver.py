"""A private, throw-away PostgreSQL server for tests and benchmarks (Debian's binaries).

    with temporary_server() as url:   # postgresql://navigator:<random>@127.0.0.1:<port>/navigator
        ...

It listens on loopback only, with a random password, in a temporary folder removed on exit.
Set `NAVIGATOR_TEST_PG_URL` to use an existing server instead. As root, the server runs as
the `postgres` user (PostgreSQL refuses to run as root).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

from navigator.stack import free_port
from settings import Settings


class PostgresUnavailable(RuntimeError):
    """No PostgreSQL server binaries here; the message says how to install them."""


def bindir() -> Path:
    """Folder of initdb/pg_ctl: `pg_config --bindir`, else the newest /usr/lib/postgresql/*."""
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"),
                   key=lambda p: int(Path(p).parent.parent.name) if Path(
                       p).parent.parent.name.isdigit() else 0)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb:
        return Path(initdb).parent
    raise PostgresUnavailable(
        "PostgreSQL server programs (initdb, pg_ctl) were not found. On Debian/Ubuntu: "
        "'apt-get install postgresql' (make system-deps does this), or set "
        "NAVIGATOR_TEST_PG_URL to an existing server's URL."
    )


@contextlib.contextmanager
def temporary_server(database: str = "navigator", durable: bool = False) -> Iterator[str]:
    """Start a private server; yield its URL; stop it and delete its files.

    Tests run it with ``fsync=off`` (fast, nothing to keep); ``durable=True`` keeps
    PostgreSQL's default (commits reach the disk), for honest load figures.
    """
    given = Settings.from_env().test_pg_url
    if given:
        yield given
        return
    bins = bindir()
    as_root = os.geteuid() == 0
    run_as: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="navigator-pg-"))
    if as_root:
        user = pwd.getpwnam("postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        run_as = ["runuser", "-u", "postgres", "--"]
    password = secrets.token_urlsafe(18)
    pwfile = folder / "pw"
    pwfile.write_text(password)
    if as_root:
        os.chown(pwfile, user.pw_uid, user.pw_gid)
    data, port = folder / "data", free_port()
    env = {**os.environ, "LC_ALL": "C.UTF-8"}

    def run(*cmd: str) -> None:
        subprocess.run([*run_as, *cmd], check=True, env=env, cwd=folder,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)

    try:
        run(str(bins / "initdb"), "-D", str(data), "-U", "navigator", "-A", "scram-sha-256",
            f"--pwfile={pwfile}", "-E", "UTF8", "--no-sync")
        pwfile.unlink()
        run(str(bins / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"), "-w",
            "-o", f"-p {port} -k {folder} -c listen_addresses=127.0.0.1"
                  + ("" if durable else " -c fsync=off"),
            "start")
        base = f"postgresql://navigator:{password}@127.0.0.1:{port}"
        import sqlalchemy

        engine = sqlalchemy.create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{database}"')
        engine.dispose()
        yield f"{base}/{database}"
    except subprocess.CalledProcessError as err:
        log = (folder / "server.log")
        detail = log.read_text()[-2000:] if log.exists() else err.stderr.decode()[-2000:]
        raise PostgresUnavailable(f"PostgreSQL did not start: {detail}") from err
    finally:
        if (data / "postmaster.pid").exists():
            subprocess.run([*run_as, str(bins / "pg_ctl"), "-D", str(data), "-m", "fast",
                            "-w", "stop"], env=env, cwd=folder, capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)
