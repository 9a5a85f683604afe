"""Shared fixtures: the knowledge base, the NLU training data, the trained model."""

from __future__ import annotations

from pathlib import Path

import pytest

import knowledge
from navigator import training
from settings import Settings

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
