"""The front ends served by the API: the PWA under /app/, the control-room screen under /screen/."""

from __future__ import annotations

import json

import pytest
from starlette.testclient import TestClient

from api.main import create_app, http_routes
from core.settings import CoreSettings


@pytest.fixture(scope="module")
def client() -> TestClient:
    # static files only: the app's lifespan (pool, live feed) is not started
    return TestClient(create_app(CoreSettings(database_url="postgresql://unused@127.0.0.1/unused")))


@pytest.mark.parametrize("path", ["/app/", "/screen/"])
def test_pages_are_served_with_a_strict_csp(client: TestClient, path: str) -> None:
    resp = client.get(path)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/html")
    csp = resp.headers["content-security-policy"]
    assert "script-src 'self';" in csp and "unsafe-inline" not in csp and "http" not in csp
    assert "worker-src 'self'" in csp and "connect-src 'self'" in csp
    assert resp.headers["cache-control"] == "no-cache"  # revalidated, unlike the API's no-store


def test_service_worker_covers_the_app(client: TestClient) -> None:
    resp = client.get("/app/sw.js")
    assert resp.status_code == 200 and "javascript" in resp.headers["content-type"]
    assert resp.headers["service-worker-allowed"] == "/app/"


def test_manifest_is_valid_and_its_icons_exist(client: TestClient) -> None:
    resp = client.get("/app/manifest.webmanifest")
    assert resp.headers["content-type"].startswith("application/manifest+json")
    manifest = json.loads(resp.text)
    assert manifest["start_url"].startswith("/app/") and manifest["scope"] == "/app/"
    assert manifest["display"] == "standalone" and manifest["name"] and manifest["short_name"]
    sizes = {(icon["sizes"], icon.get("purpose", "any")) for icon in manifest["icons"]}
    assert {("192x192", "any"), ("512x512", "any"), ("512x512", "maskable")} <= sizes
    for icon in manifest["icons"]:
        png = client.get(icon["src"])
        assert png.status_code == 200 and png.headers["content-type"] == "image/png"
        width, height = int.from_bytes(png.content[16:20], "big"), int.from_bytes(png.content[20:24], "big")
        assert f"{width}x{height}" == icon["sizes"]


def test_nothing_outside_the_front_end_is_served(client: TestClient) -> None:
    for path in ("/app/../pyproject.toml", "/app/%2e%2e/api/main.py", "/screen/../../README.md"):
        assert client.get(path).status_code == 404


def test_front_ends_are_not_api_routes() -> None:
    app = create_app(CoreSettings(database_url="postgresql://unused@127.0.0.1/unused"))
    assert not {path for _, path in http_routes(app) if path.startswith(("/app", "/screen"))}
