"""The front ends served by the API: the PWA at ``/app/`` and the control-room screen at ``/screen/``.

Both are static files from ``mobile_pwa/`` (plain ES modules, no build step). They are mounted, not routed, so
they stay out of the OpenAPI document and the authorization matrix: they hold no data, and every request they
make goes through ``/api/v1`` with the caller's own credentials.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles
from starlette.types import Receive, Scope, Send

PWA_DIR = Path(__file__).resolve().parents[1] / "mobile_pwa"
SWAGGER_DIR = Path(__file__).resolve().parent / "static" / "swagger-ui"


class _Static(StaticFiles):
    """Static files that browsers revalidate (the service worker keeps its own copy for offline use)."""

    def __init__(self, *args, scope_header: str | None = None, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scope_header = scope_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def send_with_headers(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"cache-control", b"no-cache"))
                if self.scope_header and scope["path"].endswith("/sw.js"):
                    headers.append((b"service-worker-allowed", self.scope_header.encode()))
                message = {**message, "headers": headers}
            await send(message)

        await super().__call__(scope, receive, send_with_headers)


def mount(app: FastAPI, directory: Path = PWA_DIR) -> None:
    """Serve the PWA under ``/app/`` and the control-room screen under ``/screen/``."""
    app.mount("/screen", _Static(directory=directory / "screen", html=True), name="screen")
    app.mount("/app", _Static(directory=directory, html=True, scope_header="/app/"), name="app")


def mount_docs(app: FastAPI) -> None:
    """``/docs`` with Swagger UI from our own files (``api/static/swagger-ui``; no CDN: plants are air-gapped)."""
    from fastapi.openapi.docs import get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html

    app.mount("/docs/assets", _Static(directory=SWAGGER_DIR), name="docs-assets")

    @app.get("/docs", include_in_schema=False)
    async def swagger_ui() -> HTMLResponse:
        return get_swagger_ui_html(
            openapi_url=app.openapi_url or "/openapi.json",
            title=f"{app.title} API",
            oauth2_redirect_url="/docs/oauth2-redirect",
            swagger_js_url="/docs/assets/swagger-ui-bundle.js",
            swagger_css_url="/docs/assets/swagger-ui.css",
            swagger_favicon_url="/docs/assets/favicon-32x32.png",
        )

    @app.get("/docs/oauth2-redirect", include_in_schema=False)
    async def swagger_ui_redirect() -> HTMLResponse:
        return get_swagger_ui_oauth2_redirect_html()
