"""Who said STOP, remembered across restarts as SHA-256 hashes of their numbers: in a JSON
file (one Rasa instance) or in a SQL table every instance shares."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bot.channels.twilio.config import number_hash, number_ref

logger = logging.getLogger(__name__)

OPT_OUT_FILE = "twilio_optouts.json"


class OptOutStore:
    """Who said STOP, as SHA-256 hashes of their numbers, in a JSON file written atomically."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._hashes: set[str] = self._load()

    def _load(self) -> set[str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            hashes = data["opted_out"]
            if not isinstance(hashes, list) or not all(isinstance(h, str) for h in hashes):
                raise ValueError("opted_out is not a list of hashes")
            return set(hashes)
        except FileNotFoundError:
            return set()
        except (OSError, ValueError, KeyError, TypeError) as err:
            # Keep the unreadable file for a person to recover; start with an empty list.
            aside = self.path.with_name(f"{self.path.name}.unreadable-{int(time.time())}")
            with contextlib.suppress(OSError):
                os.replace(self.path, aside)
            logger.error("Could not read the Twilio opt-out file %s (%s); moved it to %s",
                         self.path, type(err).__name__, aside.name)
            return set()

    def __contains__(self, address: str) -> bool:
        return number_hash(address) in self._hashes

    async def contains(self, address: str) -> bool:
        """Whether this number said STOP (the same question every store answers)."""
        return address in self

    def __len__(self) -> int:
        return len(self._hashes)

    async def add(self, address: str) -> None:
        await self._change(number_hash(address), add=True)

    async def remove(self, address: str) -> None:
        await self._change(number_hash(address), add=False)

    async def _change(self, digest: str, add: bool) -> None:
        with self._lock:
            if (digest in self._hashes) == add:
                return
            if add:
                self._hashes.add(digest)
            else:
                self._hashes.discard(digest)
        await asyncio.to_thread(self._write)

    def _write(self) -> None:
        # Under the lock: each write holds the latest state, and writes never interleave.
        with self._lock:
            data = {"version": 1, "hash": "sha256", "opted_out": sorted(self._hashes)}
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", dir=self.path.parent)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(data, out, indent=0)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise


class SqlOptOutStore:
    """Who said STOP, as SHA-256 hashes, in a SQL table that every Rasa instance shares
    (``NAVIGATOR_TWILIO_OPTOUT_URL``; the stack points it at the tracker database when there
    are several instances). Queries run in a worker thread, never on the event loop. When the
    database cannot be read, a number counts as opted out: better silent than unwanted."""

    def __init__(self, url: str) -> None:
        import sqlalchemy as sa

        self._sa = sa
        self.engine = sa.create_engine(url, future=True, pool_pre_ping=True)
        self.table = sa.Table(
            "navigator_twilio_optouts", sa.MetaData(),
            sa.Column("hash", sa.String(64), primary_key=True),
            sa.Column("since", sa.Float, nullable=False),
        )
        self._created = False  # the table is made on first use, not when Rasa starts

    def _conn(self, write: bool = False) -> Any:
        if not self._created:
            self.table.metadata.create_all(self.engine)
            self._created = True
        return self.engine.begin() if write else self.engine.connect()

    async def contains(self, address: str) -> bool:
        try:
            return await asyncio.to_thread(self._has, number_hash(address))
        except Exception as err:  # noqa: BLE001 - fail closed, and say so
            logger.error("Could not read the Twilio opt-out table (%s): not messaging %s",
                         type(err).__name__, number_ref(address))
            return True

    def _has(self, digest: str) -> bool:
        with self._conn() as conn:
            query = self._sa.select(self.table.c.hash).where(self.table.c.hash == digest)
            return conn.execute(query).first() is not None

    async def add(self, address: str) -> None:
        await asyncio.to_thread(self._add, number_hash(address))

    def _add(self, digest: str) -> None:
        # another instance adding the same number at the same moment: already done
        with contextlib.suppress(self._sa.exc.IntegrityError), self._conn(write=True) as conn:
            if conn.execute(self._sa.select(self.table.c.hash)
                            .where(self.table.c.hash == digest)).first() is None:
                conn.execute(self.table.insert().values(hash=digest, since=time.time()))

    async def remove(self, address: str) -> None:
        await asyncio.to_thread(self._remove, number_hash(address))

    def _remove(self, digest: str) -> None:
        with self._conn(write=True) as conn:
            conn.execute(self.table.delete().where(self.table.c.hash == digest))

    def __len__(self) -> int:
        with self._conn() as conn:
            count = self._sa.select(self._sa.func.count()).select_from(self.table)
            return int(conn.execute(count).scalar_one())
