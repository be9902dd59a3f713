"""Shared fixtures: a real PostgreSQL and a real MQTT broker, fresh databases, unique sites.

With ``EHS_TEST_DATABASE_URL`` / ``EHS_TEST_MQTT_URL`` set (CI points them at the machine's PostgreSQL and
Mosquitto), the tests use those servers and fail if they do not answer; otherwise they start the embedded
defaults (pgserver, and mosquitto or amqtt). A missing server is an error, never a skip.

The same suite runs on plain PostgreSQL and on TimescaleDB. A test that concerns some storage paths only says so
with ``@pytest.mark.path(...)`` naming them, and is skipped on the others: ``plain`` (no TimescaleDB: daily
partitions, rollup tables), ``timescaledb`` (community build: hypertable, compression, continuous aggregates),
``apache`` (the Apache-licensed build: hypertable, rollup tables). The path is a property of the server, read
from the migrated template database.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from core import mqtt as mq
from core import storage
from core.embedded import start_broker, start_pgserver, with_dbname
from core.migrate import migrate
from core.plant import apply_plant
from tests import leaks
from tests.support import seal_template, small_plant, unique_code

# --- nothing written into the checkout ------------------------------------------------------------------------


@pytest.fixture(scope="session", autouse=True)
def _data_dir_outside_the_checkout(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """What a test starts (settings in this process, or a ``python -m ...`` child) keeps its data (generated secret
    key, spool, audit anchors) in a temporary directory of the session, never in the checkout's ``var/``, where it
    would outlive the run and meet the next one. A test that needs its own sets ``EHS_DATA_DIR`` itself."""
    if "EHS_DATA_DIR" in os.environ:
        yield
        return
    os.environ["EHS_DATA_DIR"] = str(tmp_path_factory.mktemp("data"))
    try:
        yield
    finally:
        os.environ.pop("EHS_DATA_DIR", None)


# --- nothing left running (tests/leaks.py) -------------------------------------------------------------------

_SESSION_OWNED = [leaks.Snapshot()]


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef: pytest.FixtureDef, request: pytest.FixtureRequest):
    """Threads and processes a session fixture starts (embedded servers) belong to the session."""
    if fixturedef.scope != "session":
        yield
        return
    before = leaks.snapshot()
    yield
    after = leaks.snapshot()
    _SESSION_OWNED[0] = _SESSION_OWNED[0] | leaks.Snapshot(
        after.threads - before.threads, after.processes - before.processes
    )


@pytest.fixture(scope="module", autouse=True)
def _nothing_left_running(request: pytest.FixtureRequest) -> Iterator[None]:
    """Fail a module that leaves threads or child processes running after its fixtures are torn down."""
    before = leaks.snapshot()
    yield
    found = leaks.leftovers(before, _SESSION_OWNED[0])
    if found:
        pytest.fail(
            f"{request.node.nodeid} left running after its tests and fixtures ended:\n  " + "\n  ".join(found),
            pytrace=False,
        )


@pytest.fixture(scope="session")
def pg_admin_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a PostgreSQL server on which the tests may create databases."""
    url = os.environ.get("EHS_TEST_DATABASE_URL")
    if url:
        try:
            with psycopg.connect(url, connect_timeout=5) as conn:
                conn.execute("SELECT 1")
        except psycopg.OperationalError as exc:
            pytest.fail(f"EHS_TEST_DATABASE_URL is set but PostgreSQL does not answer: {exc}", pytrace=False)
        yield url
        return
    service = start_pgserver(tmp_path_factory.mktemp("pg") / "pgdata", dbname="ehs_admin")
    yield service.url
    service.stop()


def _create_database(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return with_dbname(admin_url, name)


def _drop_database(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_FEATURES: dict[str, storage.Features] = {}


@pytest.fixture(scope="session")
def template_db(pg_admin_url: str) -> Iterator[str]:
    """A migrated database used as the template of every test database."""
    name = f"ehs_tmpl_{uuid.uuid4().hex[:8]}"
    url = _create_database(pg_admin_url, name)
    migrate(url)
    with psycopg.connect(url) as conn:
        _FEATURES[name] = storage.detect(conn)
    seal_template(pg_admin_url, name)
    yield name
    _drop_database(pg_admin_url, name)


@pytest.fixture(scope="session")
def storage_features(template_db: str) -> storage.Features:
    """What the test databases offer (TimescaleDB and which of its features, or plain PostgreSQL)."""
    return _FEATURES[template_db]


def storage_path(features: storage.Features) -> str:
    """``plain``, ``timescaledb`` or ``apache`` (see the module docstring)."""
    if features.timescaledb is None:
        return "plain"
    return "timescaledb" if features.continuous_aggregates else "apache"


@pytest.fixture(autouse=True)
def _only_on_its_path(request: pytest.FixtureRequest) -> None:
    marker = request.node.get_closest_marker("path")
    if marker is None:
        return
    features: storage.Features = request.getfixturevalue("storage_features")
    here = storage_path(features)
    if here not in marker.args:
        pytest.skip(
            f"concerns the {' and '.join(marker.args)} path only; this server gives the {here} path "
            f"(TimescaleDB {features.describe()})"
        )


@pytest.fixture
def database_url(pg_admin_url: str, template_db: str) -> Iterator[str]:
    """A fresh, migrated database for one test (committed data allowed)."""
    name = f"ehs_test_{uuid.uuid4().hex[:10]}"
    url = _create_database(pg_admin_url, name, template=template_db)
    yield url
    _drop_database(pg_admin_url, name)


@pytest.fixture
def conn(database_url: str) -> Iterator[psycopg.Connection]:
    """A connection whose work is rolled back at the end of the test."""
    with psycopg.connect(database_url) as connection, connection.transaction(force_rollback=True):
        yield connection


@pytest.fixture(scope="session")
def broker_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("EHS_TEST_MQTT_URL")
    if url:
        try:
            mq.detect_protocol(mq.BrokerAddress.parse(url))
        except (ConnectionError, OSError) as exc:
            pytest.fail(f"EHS_TEST_MQTT_URL is set but the broker does not answer: {exc}", pytrace=False)
        yield url
        return
    service = start_broker(tmp_path_factory.mktemp("broker"))
    yield service.url
    service.stop()


@pytest.fixture
def site() -> str:
    """A site code no other test uses (the broker may be shared with other runs)."""
    return unique_code("t")


@pytest.fixture
def plant_db(database_url: str, site: str) -> str:
    """A fresh database holding a small plant for ``site``."""
    with psycopg.connect(database_url) as connection:
        apply_plant(conn=connection, plant=small_plant(site), source="test")
    return database_url


@pytest.fixture
def tmp_dir(tmp_path: Path) -> Path:
    return tmp_path
