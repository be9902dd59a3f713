"""API test world: a template database with two sites, a user per role, an API key, readings and dead letters;
each test gets a clone of it and a running app (pool and live feed) behind a test client."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg
import pytest
import uvicorn
from starlette.testclient import TestClient

from api import apikeys, security, users
from api.main import create_app
from api.policy import Role, console
from api.settings import ApiSettings
from core.embedded import with_dbname
from core.plant import PlantConfig, apply_plant
from core.settings import CoreSettings
from tests.support import seal_template, wait_for

SECRET = "test-secret-key-that-is-long-enough-0123456789"
SITE, OTHER = "s1", "s2"
PASSWORD = "correct horse battery"
#: Matrix principals that are users: username -> (role, sites); "other_site" administers only the other site.
USERS = {
    "admin": (Role.ADMIN, None),
    "ehs_manager": (Role.EHS_MANAGER, [SITE]),
    "operator": (Role.OPERATOR, [SITE]),
    "viewer": (Role.VIEWER, [SITE]),
    "regulator": (Role.REGULATOR, [SITE]),
    "other_site": (Role.ADMIN, [OTHER]),
    "login": (Role.VIEWER, [SITE]),
    "target": (Role.VIEWER, [SITE]),
}


def plant() -> PlantConfig:
    gas = [
        {"key": "h2_ppm", "name": "氢气", "quantity": "h2", "range": [0, 40000]},
        {"key": "co_ppm", "name": "一氧化碳", "quantity": "co", "range": [0, 1000]},
    ]
    return PlantConfig.model_validate(
        {
            "sites": [
                {
                    "code": SITE,
                    "name": "一厂",
                    "areas": [
                        {
                            "code": "formation",
                            "name": "化成",
                            "process": "formation",
                            "devices": [
                                {"code": "gas-01", "name": "气体 1", "kind": "gas_detector", "points": gas},
                                {
                                    "code": "em-01",
                                    "name": "电表 1",
                                    "kind": "power_meter",
                                    "points": [{"key": "energy_kwh", "name": "电能", "quantity": "energy"}],
                                },
                                {"code": "gas-02", "name": "气体 2", "kind": "gas_detector", "points": gas},
                            ],
                        },
                        {
                            "code": "wastewater",
                            "name": "污水站",
                            "process": "wastewater",
                            "devices": [
                                {
                                    "code": "ww-01",
                                    "name": "在线监测",
                                    "kind": "water_analyser",
                                    "points": [
                                        {"key": "ph_ph", "name": "pH", "quantity": "ph"},
                                        {"key": "cod_mg_l", "name": "COD", "quantity": "cod"},
                                    ],
                                }
                            ],
                        },
                        {"code": "empty", "name": "空区", "process": "warehouse"},
                    ],
                    "meters": [
                        {
                            "code": "e-main",
                            "name": "总进线",
                            "medium": "electricity",
                            "point": "em-01/energy_kwh",
                            "area": "formation",
                        }
                    ],
                },
                {
                    "code": OTHER,
                    "name": "二厂",
                    "areas": [
                        {
                            "code": "formation",
                            "name": "化成",
                            "process": "formation",
                            "devices": [{"code": "gas-01", "name": "气体 1", "kind": "gas_detector", "points": gas}],
                        }
                    ],
                },
            ]
        }
    )


@dataclass
class Template:
    name: str
    ids: dict[str, int]
    keys: dict[str, str]


@dataclass
class World:
    url: str
    client: TestClient
    ids: dict[str, int]
    keys: dict[str, str]
    passwords: dict[str, str] = field(default_factory=lambda: {u: PASSWORD for u in USERS})
    counter: int = 0

    def db(self) -> psycopg.Connection:
        return psycopg.connect(self.url, autocommit=True)

    def unique(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter}"

    def token(self, username: str, *, expired: bool = False) -> str:
        return mint_token(self.url, self.client.app.state.auth.jwt_key, username, expired=expired)

    def headers(self, who: str) -> dict[str, str]:
        """Request headers for a principal: a user name, "device" (API key), "expired" or "anon"."""
        if who == "anon":
            return {}
        if who == "device":
            return {"X-API-Key": self.keys["device"]}
        if who == "expired":
            return {"Authorization": f"Bearer {self.token('admin', expired=True)}"}
        return {"Authorization": f"Bearer {self.token(who)}"}


def mint_token(
    url: str, key: bytes, username: str, *, expired: bool = False, lifetime: timedelta = timedelta(minutes=15)
) -> str:
    """An access token for a user, as the token endpoint would issue it (or one that expired an hour ago)."""
    with psycopg.connect(url) as conn:
        user_id, version = conn.execute(
            "SELECT id, token_version FROM app_user WHERE username = %s", (username,)
        ).fetchone()
    now = datetime.now(UTC) - (timedelta(hours=1) if expired else timedelta())
    return security.encode_access_token(key=key, user_id=user_id, token_version=version, now=now, lifetime=lifetime)[0]


def _seed(url: str) -> Template:
    ids: dict[str, int] = {}
    keys: dict[str, str] = {}
    with psycopg.connect(url) as conn:
        apply_plant(conn=conn, plant=plant(), source="test")
        q = lambda sql, *p: conn.execute(sql, p).fetchone()[0]  # noqa: E731
        ids["site"] = q("SELECT id FROM site WHERE code = %s", SITE)
        ids["other_site"] = q("SELECT id FROM site WHERE code = %s", OTHER)
        ids["area"] = q("SELECT id FROM area WHERE site_id = %s AND code = 'formation'", ids["site"])
        ids["ww_area"] = q("SELECT id FROM area WHERE site_id = %s AND code = 'wastewater'", ids["site"])
        ids["empty_area"] = q("SELECT id FROM area WHERE site_id = %s AND code = 'empty'", ids["site"])
        ids["device"] = q("SELECT id FROM device WHERE site_id = %s AND code = 'gas-02'", ids["site"])
        ids["point"] = q(
            "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id "
            "WHERE d.site_id = %s AND d.code = 'gas-01' AND p.key = 'h2_ppm'",
            ids["site"],
        )
        ids["point2"] = q(
            "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id "
            "WHERE d.site_id = %s AND d.code = 'gas-02' AND p.key = 'co_ppm'",
            ids["site"],
        )
        ids["ww_point"] = q(
            "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id WHERE d.code = 'ww-01' AND p.key = 'ph_ph'"
        )
        ids["other_point"] = q(
            "SELECT p.id FROM point p JOIN device d ON d.id = p.device_id WHERE d.site_id = %s AND p.key = 'h2_ppm'",
            ids["other_site"],
        )
        ids["meter"] = q("SELECT id FROM meter WHERE code = 'e-main'")
        now = datetime.now(UTC).replace(microsecond=0)
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO reading (time, point_id, value, quality) VALUES (%s, %s, %s, 0)",
                [
                    (
                        now - timedelta(minutes=m),
                        pid,
                        10.0 + m,
                    )
                    for m in range(5)
                    for pid in (ids["point"], ids["point2"], ids["ww_point"], ids["other_point"])
                ],
            )
        ids["dead_letter"] = q(
            "INSERT INTO dead_letter (received_at, topic, payload, payload_size, reason, "
            "site_code, device_code) VALUES (now(), %s, %s, 7, 'bad_json', %s, 'gas-01') "
            "RETURNING id",
            f"ehs/v1/{SITE}/gas-01/telemetry",
            b"{nope!!",
            SITE,
        )
        q(
            "INSERT INTO dead_letter (received_at, topic, payload, payload_size, reason, site_code) "
            "VALUES (now(), 'x', 'y', 1, 'bad_topic', NULL) RETURNING id"
        )
        actor = console("test")
        for username, (role, sites) in USERS.items():
            ids[f"user:{username}"] = users.create_user(
                conn=conn,
                actor=actor,
                username=username,
                role=role,
                sites=sites or [],
                all_sites=sites is None,
                password=PASSWORD,
            ).id
        key_id, keys["device"] = apikeys.create_key(
            conn=conn,
            actor=actor,
            name="gateway",
            role=Role.DEVICE,
            sites=[SITE],
            all_sites=False,
            expires_at=None,
            now=now,
        )
        ids["key"] = key_id
        conn.commit()
    return Template("", ids, keys)


def _create_db(admin_url: str, name: str, template: str | None = None) -> str:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else ""))
    return with_dbname(admin_url, name)


def _drop_db(admin_url: str, name: str) -> None:
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def api_template(pg_admin_url: str, template_db: str) -> Iterator[Template]:
    name = f"ehs_apitmpl_{uuid.uuid4().hex[:8]}"
    url = _create_db(pg_admin_url, name, template=template_db)
    template = _seed(url)
    template.name = name
    seal_template(pg_admin_url, name)
    yield template
    _drop_db(pg_admin_url, name)


def settings_for(url: str) -> tuple[CoreSettings, ApiSettings]:
    return (
        CoreSettings(database_url=url, secret_key=SECRET, db_pool_max=4),
        ApiSettings(auth_rate_limit="10000/minute", ws_reading_interval_s=0.05, ws_auth_timeout_s=5),
    )


@pytest.fixture
def world_url(pg_admin_url: str, api_template: Template) -> Iterator[str]:
    name = f"ehs_api_{uuid.uuid4().hex[:10]}"
    yield _create_db(pg_admin_url, name, template=api_template.name)
    _drop_db(pg_admin_url, name)


@pytest.fixture
def world(world_url: str, api_template: Template) -> Iterator[World]:
    core, api = settings_for(world_url)
    with TestClient(create_app(core, api)) as client:
        yield World(world_url, client, dict(api_template.ids), dict(api_template.keys))


@pytest.fixture
def serve() -> Iterator[Callable[..., str]]:
    """Start apps on real uvicorn servers (threads, free ports); return "127.0.0.1:port". Stopped at the end."""
    servers: list[tuple[uvicorn.Server, threading.Thread]] = []

    def start(app) -> str:
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        server = uvicorn.Server(uvicorn.Config(app, ws="websockets-sansio", log_level="warning"))
        thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
        thread.start()
        servers.append((server, thread))
        wait_for(lambda: server.started or not thread.is_alive(), message="uvicorn to start")
        assert server.started, "uvicorn did not start"
        wait_for(lambda: app.state.hub.connected.is_set(), message="the live feed to listen")
        return f"127.0.0.1:{sock.getsockname()[1]}"

    yield start
    for server, thread in servers:
        server.should_exit = True
        thread.join(30)
