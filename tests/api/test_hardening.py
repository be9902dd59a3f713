"""Hardening: JSON errors without stack traces, security headers, CORS from settings, body size limit,
secrets never returned, and settings that refuse weak secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError
from starlette.testclient import TestClient

from api.main import create_app
from api.settings import ApiSettings
from core.settings import CoreSettings
from tests.api.conftest import World, settings_for

pytestmark = pytest.mark.db


def test_security_headers_on_every_response(world: World) -> None:
    for reply in (
        world.client.get("/healthz"),
        world.client.get("/api/v1/sites"),
        world.client.get("/api/v1/sites", headers=world.headers("viewer")),
    ):
        assert reply.headers["x-content-type-options"] == "nosniff"
        assert reply.headers["x-frame-options"] == "DENY"
        assert reply.headers["cache-control"] == "no-store"
        assert "frame-ancestors 'none'" in reply.headers["content-security-policy"]
        assert "strict-transport-security" not in reply.headers
    assert world.client.get("/docs").status_code == 200


def test_docs_load_nothing_from_outside(world: World) -> None:
    """Air-gapped plants: the Swagger UI page and its assets come from the API itself, and the CSP allows no CDN."""
    import re

    page = world.client.get("/docs")
    assert page.status_code == 200
    urls = re.findall(r'(?:src|href)=["\']([^"\']+)', page.text) + re.findall(r"url: '([^']+)'", page.text)
    assert urls and all(u.startswith("/") for u in urls), urls
    assert "http" not in page.headers["content-security-policy"]
    for asset in ("/docs/assets/swagger-ui-bundle.js", "/docs/assets/swagger-ui.css"):
        reply = world.client.get(asset)
        assert reply.status_code == 200 and len(reply.content) > 10_000, asset
    assert world.client.get("/redoc").status_code == 404


def test_errors_are_json(world: World) -> None:
    missing = world.client.get("/api/v1/nothing-here")
    assert missing.status_code == 404 and missing.json() == {"detail": "Not Found"}
    wrong_method = world.client.put("/api/v1/sites")
    assert wrong_method.status_code == 405 and "detail" in wrong_method.json()
    bad = world.client.post("/api/v1/sites", headers=world.headers("admin"), json={"code": "BAD CODE"})
    assert bad.status_code == 422
    assert {e["field"] for e in bad.json()["errors"]} == {"body.code", "body.name"}
    huge_id = world.client.get("/api/v1/points/99999999999", headers=world.headers("admin"))
    assert huge_id.status_code == 422 and huge_id.json()["errors"][0]["field"] == "path.point_id"


def test_unhandled_errors_carry_no_stack_trace(world_url: str) -> None:
    core, api = settings_for(world_url)
    app = create_app(core, api)

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("secret internals: password=hunter2")

    with TestClient(app, raise_server_exceptions=False) as client:
        reply = client.get("/boom")
    assert reply.status_code == 500 and reply.json() == {"detail": "internal error"}
    assert "hunter2" not in reply.text and "Traceback" not in reply.text


def test_request_bodies_are_limited(world_url: str) -> None:
    core, api = settings_for(world_url)
    api.max_body_bytes = 2048
    with TestClient(create_app(core, api)) as client:
        declared = client.post(
            "/api/v1/auth/refresh", content=b"x" * 4096, headers={"content-type": "application/json"}
        )
        assert declared.status_code == 413 and "2048" in declared.json()["detail"]

        def chunks():
            for _ in range(8):
                yield b"x" * 1024

        streamed = client.post("/api/v1/auth/refresh", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413


def test_cors_only_for_configured_origins(world_url: str) -> None:
    core, api = settings_for(world_url)
    api.cors_origins = ["https://ehs.example.com"]
    api.hsts = True
    with TestClient(create_app(core, api)) as client:
        allowed = client.options(
            "/api/v1/sites", headers={"Origin": "https://ehs.example.com", "Access-Control-Request-Method": "GET"}
        )
        assert allowed.headers["access-control-allow-origin"] == "https://ehs.example.com"
        other = client.options(
            "/api/v1/sites", headers={"Origin": "https://evil.example.net", "Access-Control-Request-Method": "GET"}
        )
        assert "access-control-allow-origin" not in other.headers
        assert client.get("/healthz").headers["strict-transport-security"].startswith("max-age=")


def test_secrets_are_never_returned(world: World) -> None:
    users = world.client.get("/api/v1/users", headers=world.headers("admin")).text
    keys = world.client.get("/api/v1/api-keys", headers=world.headers("admin")).text
    for text in (users, keys):
        assert "hash" not in text and "argon2" not in text and "mfa_secret" not in text
    assert world.keys["device"] not in keys


def test_weak_secrets_are_refused() -> None:
    with pytest.raises(ValidationError, match="EHS_SECRET_KEY"):
        CoreSettings(environment="production")
    with pytest.raises(ValidationError, match="at least 32"):
        ApiSettings(jwt_secret="short")


def test_without_a_secret_key_tokens_are_signed_with_the_data_directory_secret(tmp_path) -> None:
    from api.auth import AuthConfig

    dev = CoreSettings(database_url="postgresql://unused@127.0.0.1/unused", data_dir=tmp_path)
    again = CoreSettings(database_url="postgresql://unused@127.0.0.1/unused", data_dir=tmp_path)
    other = CoreSettings(database_url="postgresql://unused@127.0.0.1/unused", data_dir=tmp_path / "other")
    assert dev.secret_key == again.secret_key != other.secret_key  # never the public placeholder
    first, second = (AuthConfig.from_settings(s, ApiSettings()) for s in (dev, again))
    assert first.jwt_key == second.jwt_key != AuthConfig.from_settings(other, ApiSettings()).jwt_key


def test_values_the_database_refuses_are_input_errors(world: World) -> None:
    reply = world.client.patch(
        f"/api/v1/points/{world.ids['point']}", headers=world.headers("admin"), json={"name": "bad\u0000name"}
    )
    assert reply.status_code == 422 and "NUL" in reply.json()["detail"] and reply.json()["errors"]
