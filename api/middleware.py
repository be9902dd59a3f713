"""ASGI middleware: security headers on every response, and a limit on request body size."""

from __future__ import annotations

from fastapi import HTTPException
from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

# The JSON API needs nothing from a browser's point of view; the docs page is Swagger UI from our own files
# (api/static/swagger-ui) with FastAPI's inline start-up script
_CSP_API = "default-src 'none'; frame-ancestors 'none'"
_CSP_DOCS = (
    "default-src 'none'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'"
)
# The PWA and the control-room screen (api.frontend): our own scripts, styles, workers and WebSocket only, no CDN,
# no inline script ('self' covers ws:/wss: to the same host in CSP level 3)
_CSP_APP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
    "connect-src 'self'; worker-src 'self'; manifest-src 'self'; media-src 'self'; font-src 'self'; "
    "object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)
_FRONT_ENDS = ("/app/", "/screen/")


class SecurityHeaders:
    """OWASP Secure Headers Project recommendations for an API; HSTS only when served over TLS."""

    def __init__(self, app: ASGIApp, *, hsts: bool) -> None:
        self.app = app
        self.hsts = hsts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        docs = path in ("/docs", "/docs/oauth2-redirect") or path.startswith("/docs/assets/")
        csp = _CSP_DOCS if docs else _CSP_APP if path.startswith(_FRONT_ENDS) else _CSP_API

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("X-Frame-Options", "DENY")
                headers.setdefault("Referrer-Policy", "no-referrer")
                headers.setdefault("Cross-Origin-Opener-Policy", "same-origin")
                headers.setdefault("Content-Security-Policy", csp)
                headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
                # responses carry plant data and tokens: never store them in shared caches
                headers.setdefault("Cache-Control", "no-store")
                if self.hsts:
                    headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
            await send(message)

        await self.app(scope, receive, send_with_headers)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, f"request body larger than {limit} bytes")


class BodyLimit:
    """Refuse bodies above ``limit`` bytes: by Content-Length at once, or while streaming (chunked bodies)."""

    def __init__(self, app: ASGIApp, *, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            await _json(send, 413, b'{"detail":"request body larger than %d bytes"}' % self.limit)
            return
        seen = 0

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise BodyTooLarge(self.limit)  # FastAPI re-raises HTTPExceptions from body reading
            return message

        await self.app(scope, limited, send)


async def _json(send: Send, status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})
