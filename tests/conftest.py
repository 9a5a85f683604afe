"""Shared fixtures: the knowledge base, the NLU training data, the trained model, servers,
databases and Rasa tracker stores."""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import sqlalchemy

import knowledge
from navigator import training
from settings import Settings

if TYPE_CHECKING:
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.events import Event

# Tests that use one of these need the trained model or start servers or databases: they are
# marked `servers`, and `make check` (the fast lane) leaves them out. Modules that start their
# own servers mark themselves with `pytestmark = pytest.mark.servers`.
SERVER_FIXTURES = {"trained_model", "servers", "postgres_url", "directory_engine"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs servers or the model (see SERVER_FIXTURES)."""
    for item in items:
        if SERVER_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.servers)


@pytest.fixture(scope="session")
def kb() -> knowledge.KnowledgeBase:
    return knowledge.load()


@pytest.fixture(scope="session")
def nlu_examples() -> dict[str, list[str]]:
    """Training examples by intent (``faq/<id>`` for the retrieval intent)."""
    return training.nlu_examples()


@pytest.fixture(scope="session")
def trained_model() -> Path:
    """The model for the current inputs. `make test` trains it first; a stale one fails."""
    path = training.model_path(Settings.from_env().models_dir)
    if not path.exists():
        pytest.fail(f"no model for the current training data ({path.name}): run `make model`")
    return path


@pytest.fixture(scope="session")
def postgres_url():
    """A real PostgreSQL server: NAVIGATOR_TEST_PG_URL, else a private one started here.

    It is not optional: `make test` installs PostgreSQL (make system-deps) and a missing
    server is a failure, not a skip.
    """
    from navigator.pgserver import PostgresUnavailable, temporary_server

    try:
        with temporary_server() as url:
            yield url
    except PostgresUnavailable as err:
        pytest.fail(str(err))


@pytest.fixture(scope="session", params=["sqlite", "postgresql"])
def directory_engine(request, tmp_path_factory):
    """The real directory (bundled CMS hospice list) on SQLite and on PostgreSQL."""
    from providers import bundled, db

    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('directory') / 'directory.db'}"
    else:
        url = request.getfixturevalue("postgres_url")
    engine = db.make_engine(url)
    bundled.ensure_ready(engine, progress=False)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def servers(trained_model: Path, tmp_path_factory: pytest.TempPathFactory):
    """The real action server, Rasa server and web gateway, started once for the tests that
    talk to them as users do (logs and the tracker database in `servers.var_dir`)."""
    from navigator import stack

    var = tmp_path_factory.mktemp("var")
    with stack.running(trained_model, rasa_port=stack.free_port(),
                       actions_port=stack.free_port(), web_port=stack.free_port(),
                       var_dir=var, tracker_db=var / "tracker.db", log_dir=var) as running:
        yield running


@dataclass
class TrackerDB:
    """A Rasa tracker store's database: its SQLAlchemy URL (SQLite, or PostgreSQL), the file
    for SQLite, and Rasa's own SQLTrackerStore on it (made when first used)."""

    url: str
    path: Path | None = None

    @cached_property
    def store(self) -> SQLTrackerStore:
        from rasa.core.tracker_store import SQLTrackerStore
        from rasa.shared.core.domain import Domain

        parts = sqlalchemy.engine.make_url(self.url)
        if parts.get_backend_name() == "sqlite":
            return SQLTrackerStore(Domain.empty(), dialect="sqlite", db=parts.database)
        return SQLTrackerStore(Domain.empty(), dialect="postgresql", host=parts.host,
                               port=parts.port, db=parts.database, username=parts.username,
                               password=parts.password)

    def seed(self, conversations: Mapping[str, Iterable[Event]]) -> None:
        """Save each conversation (sender id: events, which carry their own timestamps)
        through the store, as Rasa saves a tracker."""
        from rasa.shared.core.trackers import DialogueStateTracker

        for sender, events in conversations.items():
            tracker = DialogueStateTracker(sender, [])
            for event in events:
                tracker.update(event)
            asyncio.run(self.store.save(tracker))

    def close(self) -> None:
        """Close the store's connections (if it was made); it reopens them when next used."""
        if "store" in self.__dict__:
            self.store.engine.dispose()


class TrackerStores:
    """Makes tracker store databases: a fresh SQLite file, or a fresh database on the test
    PostgreSQL server (``postgres_url``, started only when first asked for)."""

    def __init__(self, request: pytest.FixtureRequest,
                 tmp_path_factory: pytest.TempPathFactory) -> None:
        self._request = request
        self._tmp = tmp_path_factory
        self._made: list[TrackerDB] = []

    def __call__(self, dialect: str = "sqlite",
                 conversations: Mapping[str, Iterable[Event]] | None = None,
                 name: str | None = None) -> TrackerDB:
        """A new tracker store database on ``dialect`` (``sqlite`` or ``postgresql``; ``name``
        names the PostgreSQL database), seeded with ``conversations`` if given."""
        if dialect == "sqlite":
            path = self._tmp.mktemp("tracker") / "tracker.db"
            db = TrackerDB(f"sqlite:///{path}", path)
        elif dialect == "postgresql":
            db = TrackerDB(self.postgres_database(name))
        else:
            raise ValueError(f"no tracker store on {dialect!r}")
        self._made.append(db)
        if conversations:
            db.seed(conversations)
        return db

    def postgres_database(self, name: str | None = None) -> str:
        """A fresh database (``name``, else a random one) on the test PostgreSQL server; its
        URL."""
        name = name or f"tracker_{secrets.token_hex(4)}"
        url = sqlalchemy.engine.make_url(self._request.getfixturevalue("postgres_url"))
        admin = sqlalchemy.create_engine(url.set(database="postgres"),
                                         isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        admin.dispose()
        return url.set(database=name).render_as_string(hide_password=False)

    def close(self) -> None:
        for db in self._made:
            db.close()


@pytest.fixture(scope="session")
def tracker_stores(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
                   ) -> Iterator[TrackerStores]:
    """Makes tracker stores, seeded through Rasa's SQLTrackerStore (see TrackerStores). A test
    that asks for a PostgreSQL one needs the `servers` mark (the server is started then)."""
    stores = TrackerStores(request, tmp_path_factory)
    yield stores
    stores.close()


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.servers)])
def tracker_dialect(request: pytest.FixtureRequest) -> str:
    """Runs a test on each database a tracker store can be on: SQLite and PostgreSQL."""
    return request.param
