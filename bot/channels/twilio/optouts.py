"""Who said STOP, remembered across restarts as keyed hashes (HMAC-SHA-256, see
:mod:`knowledge.pseudonyms`) of their numbers: in a JSON file (one Rasa instance) or in a SQL
table every instance shares.

Migration: lists written before the hashes were keyed hold plain SHA-256 hashes. They are
still honoured, and each is replaced by the keyed hash as soon as its number writes again
(any message, STOP or START); until then that entry stays a plain hash.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.channels.twilio.config import legacy_number_hash, number_hash, number_ref

logger = logging.getLogger(__name__)

OPT_OUT_FILE = "twilio_optouts.json"
KeySource = Callable[[], bytes]


class _Hashes:
    """A number's keyed hash and its plain legacy hash (the key is fetched on first use)."""

    def __init__(self, key: KeySource) -> None:
        self._source = key
        self._key: bytes | None = None

    def of(self, address: str) -> tuple[str, str]:
        if self._key is None:
            self._key = self._source()
        return number_hash(address, self._key), legacy_number_hash(address)


class OptOutStore:
    """Who said STOP, as keyed hashes of their numbers, in a JSON file written atomically."""

    def __init__(self, path: Path, key: KeySource) -> None:
        self.path = Path(path)
        self._hash = _Hashes(key)
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
        return any(h in self._hashes for h in self._hash.of(address))

    async def contains(self, address: str) -> bool:
        """Whether this number said STOP (the same question every store answers)."""
        keyed, legacy = self._hash.of(address)
        if keyed in self._hashes:
            return True
        if legacy in self._hashes:  # written before the hashes were keyed: migrate it
            await self._change(keyed, add=True, drop=legacy)
            return True
        return False

    def __len__(self) -> int:
        return len(self._hashes)

    async def add(self, address: str) -> None:
        keyed, legacy = self._hash.of(address)
        await self._change(keyed, add=True, drop=legacy)

    async def remove(self, address: str) -> None:
        keyed, legacy = self._hash.of(address)
        await self._change(keyed, add=False, drop=legacy)

    async def _change(self, digest: str, add: bool, drop: str) -> None:
        with self._lock:
            if (digest in self._hashes) == add and drop not in self._hashes:
                return
            self._hashes.discard(drop)
            if add:
                self._hashes.add(digest)
            else:
                self._hashes.discard(digest)
        await asyncio.to_thread(self._write)

    def _write(self) -> None:
        # Under the lock: each write holds the latest state, and writes never interleave.
        with self._lock:
            data = {"version": 2, "hash": "hmac-sha256", "opted_out": sorted(self._hashes)}
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
    """Who said STOP, as keyed hashes, in a SQL table that every Rasa instance shares
    (``NAVIGATOR_TWILIO_OPTOUT_URL``; the stack points it at the tracker database when there
    are several instances; every instance needs the same ``NAVIGATOR_NUMBER_SECRET``). Queries
    run in a worker thread, never on the event loop. When the database cannot be read, a
    number counts as opted out: better silent than unwanted."""

    def __init__(self, url: str, key: KeySource) -> None:
        import sqlalchemy as sa

        self._sa = sa
        self._hash = _Hashes(key)
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
            return await asyncio.to_thread(self._has, *self._hash.of(address))
        except Exception as err:  # noqa: BLE001 - fail closed, and say so
            logger.error("Could not read the Twilio opt-out table (%s): not messaging %s",
                         type(err).__name__, number_ref(address))
            return True

    def _has(self, keyed: str, legacy: str) -> bool:
        with self._conn() as conn:
            query = self._sa.select(self.table.c.hash).where(
                self.table.c.hash.in_([keyed, legacy]))
            found = {row[0] for row in conn.execute(query)}
        if legacy in found and keyed not in found:  # a plain hash from before: migrate it
            self._add(keyed, legacy)
        return bool(found)

    async def add(self, address: str) -> None:
        await asyncio.to_thread(self._add, *self._hash.of(address))

    def _add(self, keyed: str, legacy: str) -> None:
        # another instance adding the same number at the same moment: already done
        with contextlib.suppress(self._sa.exc.IntegrityError), self._conn(write=True) as conn:
            conn.execute(self.table.delete().where(self.table.c.hash == legacy))
            if conn.execute(self._sa.select(self.table.c.hash)
                            .where(self.table.c.hash == keyed)).first() is None:
                conn.execute(self.table.insert().values(hash=keyed, since=time.time()))

    async def remove(self, address: str) -> None:
        await asyncio.to_thread(self._remove, *self._hash.of(address))

    def _remove(self, keyed: str, legacy: str) -> None:
        with self._conn(write=True) as conn:
            conn.execute(self.table.delete().where(self.table.c.hash.in_([keyed, legacy])))

    def __len__(self) -> int:
        with self._conn() as conn:
            count = self._sa.select(self._sa.func.count()).select_from(self.table)
            return int(conn.execute(count).scalar_one())
