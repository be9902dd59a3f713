"""WebSocket ``/api/v1/ws``: authenticated live readings and alarm events (protocol in the docstring below).

The client authenticates with its first message, ``{"type": "auth", "token": "<access token>"}`` (or
``"api_key"``), within ``ws_auth_timeout_s``. Not in the URL: browsers cannot set headers on a WebSocket, and a
query string ends up in proxy and access logs. Then it sends ``{"type": "subscribe", "sites": ["cz01"],
"areas": [3], "points": [17], "alarms": ["cz01"] or "*"}`` (and ``unsubscribe`` likewise) and receives:

- ``{"type": "subscribed", ...}`` with refusals in ``errors``, then the current values of the new points;
- ``{"type": "readings", "items": [{"point_id", "time", "value", "quality"}]}``: at most one value per point
  per ``reading_interval_s``, the latest committed one;
- ``{"type": "alarm", "event": {...}}``: every alarm event of the subscribed sites, in order (payload of
  ``core.channels``);
- ``{"type": "gap", "reason"}`` after the server lost its database connection: reload the alarms;
- ``{"type": "error", "detail"}`` for a bad message (the connection stays open).

Before the access token expires, send a new ``auth`` message with a refreshed token, or the server closes
with 4401. The server also closes with 4401 as soon as the credential is revoked (the user disabled, signed
out everywhere, their password, role or sites changed, the API key revoked or expired), on the NOTIFY of the
change and in any case at its next check (every ``ws_recheck_s``).
Close codes: 4401 not authenticated or token expired, 4403 role may not subscribe, 4008 too slow
to take the alarm events, 1013 too many clients, 1001 server stopping.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import orjson
import psycopg
from fastapi import APIRouter, WebSocket
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocketDisconnect, WebSocketState

from api import auth
from api.hub import Hub
from api.policy import Permission, Principal
from api.security import TokenError, decode_access_token, split_api_key
from api.subscriptions import Session
from core.db import execute

_LOGGER = logging.getLogger(__name__)
router = APIRouter()

NOT_AUTHENTICATED, FORBIDDEN, TOO_SLOW, TRY_LATER = 4401, 4403, 4008, 1013
_MAX_MESSAGE = 256 * 1024


class _Closed(Exception):
    def __init__(self, code: int, reason: str) -> None:
        super().__init__(reason)
        self.code, self.reason = code, reason


def _authenticate(app: Any, message: dict[str, Any]) -> tuple[Principal, float | None]:
    """The principal and the wall-clock expiry of its credential (None: an API key without expiry).

    What can be checked without the database (the token's signature and expiry, the key's form) is checked
    first, so that junk credentials never take a pooled connection.
    """
    now = app.state.clock.now()
    key, token = message.get("api_key"), message.get("token")
    if isinstance(key, str):
        if split_api_key(key) is None:
            raise TokenError("invalid API key")
        with app.state.pool.connection() as conn, conn.transaction():
            principal = auth.principal_from_api_key(conn=conn, key=key, now=now)
            expires = execute(conn, "SELECT expires_at FROM api_key WHERE id = %s", (principal.id,)).fetchone()[0]
        return principal, None if expires is None else expires.timestamp()
    if not isinstance(token, str):
        raise TokenError('send {"type": "auth", "token": "..."} first')
    expires_at = decode_access_token(token, key=app.state.auth.jwt_key).expires_at.timestamp()
    with app.state.pool.connection() as conn, conn.transaction():
        principal = auth.principal_from_access_token(conn=conn, cfg=app.state.auth, token=token)
    return principal, expires_at


async def _checked(app: Any, message: dict[str, Any]) -> tuple[Principal, float | None]:
    """``_authenticate`` in a worker thread, holding one of the hub's authentication slots."""
    async with app.state.hub.auth_slots:
        return await run_in_threadpool(_authenticate, app, message)


def _parse(raw: dict[str, Any]) -> dict[str, Any]:
    if raw.get("type") == "websocket.disconnect":
        raise WebSocketDisconnect(raw.get("code", 1000))
    text = raw.get("text")
    if text is None or len(text) > _MAX_MESSAGE:
        return {"type": "_bad", "detail": f"send JSON text messages of at most {_MAX_MESSAGE} bytes"}
    try:
        message = orjson.loads(text)
    except orjson.JSONDecodeError:
        return {"type": "_bad", "detail": "not JSON"}
    return message if isinstance(message, dict) else {"type": "_bad", "detail": "send a JSON object"}


async def _send(ws: WebSocket, session: Session) -> None:
    while True:
        for message in await session.next_messages():
            await ws.send_text(orjson.dumps(message).decode())


async def _watch(session: Session) -> None:
    """End the session as soon as it is too slow for alarm events or its credential is revoked (NOTIFY from the
    user and key change paths, api.hub), even while a send is blocked."""
    await session.gone.wait()
    if session.revoked is not None:
        raise _Closed(NOT_AUTHENTICATED, session.revoked)
    raise _Closed(TOO_SLOW, session.overflow or "too slow")


async def _recheck(app: Any, session: Session, credential: list[dict[str, Any]], every_s: float) -> None:
    """Check the caller again every ``every_s``: a disabled user, a changed password or scope, a revoked or
    expired key closes the session even if the NOTIFY was missed (e.g. while the live feed was reconnecting)."""
    while True:
        await asyncio.sleep(every_s)
        try:
            principal, _ = await _checked(app, credential[0])
        except TokenError as exc:
            raise _Closed(NOT_AUTHENTICATED, f"{exc}; sign in again") from None
        except psycopg.Error:
            continue  # the database is away: the next check decides
        if principal.scope != session.principal.scope or principal.role != session.principal.role:
            raise _Closed(NOT_AUTHENTICATED, "your role or sites changed; sign in again")


async def _receive(
    ws: WebSocket, hub: Hub, session: Session, expiry: list[float | None], credential: list[dict[str, Any]]
) -> None:
    while True:
        message = _parse(await ws.receive())
        kind = message.get("type")
        if kind in ("subscribe", "unsubscribe"):
            new, errors = hub.subscribe(session, message, add=kind == "subscribe")
            session.offer_control(
                {
                    "type": "subscribed",
                    "points": len(session.points),
                    "sites": sorted(session.sites),
                    "areas": sorted(session.areas),
                    "alarms": "*" if session.alarm_all else sorted(session.alarm_sites),
                    "errors": errors,
                }
            )
            await hub.snapshot(session, new)
        elif kind == "auth":
            try:
                principal, expires = await _checked(ws.app, message)
            except TokenError as exc:
                raise _Closed(NOT_AUTHENTICATED, str(exc)) from None
            if (principal.kind, principal.id) != (session.principal.kind, session.principal.id):
                raise _Closed(NOT_AUTHENTICATED, "a session cannot change user")
            session.principal = principal
            hub.update_subscription(session)
            expiry[0] = expires
            credential[0] = message
            session.offer_control({"type": "authenticated", "expires_at": expires})
        elif kind == "ping":
            session.offer_control({"type": "pong"})
        else:
            detail = message.get("detail") if kind == "_bad" else f"unknown message type {kind!r}"
            session.offer_control({"type": "error", "detail": detail})


async def _expire(expiry: list[float | None]) -> None:
    """Close when the credential expires (a renewed ``auth`` moves the deadline)."""
    while expiry[0] is not None:
        left = expiry[0] - time.time()
        if left <= 0:
            raise _Closed(NOT_AUTHENTICATED, "token expired; reconnect with a fresh token")
        await asyncio.sleep(min(left, 60.0))
    await asyncio.Event().wait()


async def _close(ws: WebSocket, code: int, reason: str) -> None:
    if ws.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(RuntimeError, WebSocketDisconnect, OSError):
            await ws.close(code=code, reason=reason.encode()[:120].decode(errors="ignore"))


@router.websocket("/api/v1/ws")
async def live(ws: WebSocket) -> None:
    """Live readings and alarm events (see the module docstring for the protocol)."""
    app = ws.app
    hub: Hub = app.state.hub
    settings = app.state.api_settings
    await ws.accept()
    # sockets that have not authenticated yet count too, and at most ws_auth_concurrency of them check their
    # credential against the database at once (junk is refused before that, without a connection)
    if len(hub.sessions) + hub.pending >= settings.ws_max_clients:
        await _close(ws, TRY_LATER, "too many live clients; try again later")
        return
    hub.pending += 1
    try:
        first = _parse(await asyncio.wait_for(ws.receive(), settings.ws_auth_timeout_s))
        if first.get("type") != "auth":
            raise _Closed(NOT_AUTHENTICATED, 'authenticate first: {"type": "auth", "token": "..."}')
        try:
            principal, expires = await _checked(app, first)
        except TokenError as exc:
            raise _Closed(NOT_AUTHENTICATED, str(exc)) from None
        if not principal.can(Permission.LIVE_SUBSCRIBE):
            raise _Closed(FORBIDDEN, f"the {principal.role} role may not subscribe")
    except TimeoutError:
        await _close(ws, NOT_AUTHENTICATED, "no auth message in time")
        return
    except _Closed as closed:
        await _close(ws, closed.code, closed.reason)
        return
    except WebSocketDisconnect:
        return
    finally:
        hub.pending -= 1
    session = Session(principal, alarm_capacity=settings.ws_alarm_queue)
    expiry, credential = [expires], [first]
    hub.add(session)
    session.offer_control(
        {
            "type": "welcome",
            "name": principal.name,
            "role": principal.role.value,
            "reading_interval_s": settings.ws_reading_interval_s,
            "expires_at": expires,
        }
    )
    tasks = [
        asyncio.create_task(_send(ws, session)),
        asyncio.create_task(_receive(ws, hub, session, expiry, credential)),
        asyncio.create_task(_expire(expiry)),
        asyncio.create_task(_watch(session)),
        asyncio.create_task(_recheck(app, session, credential, settings.ws_recheck_s)),
    ]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        error = next(iter(done)).exception()
        if isinstance(error, _Closed):
            if error.code == TOO_SLOW:
                _LOGGER.warning("live client %s disconnected: %s", principal.actor, error.reason)
            tasks[0].cancel()  # a blocked send must not delay the close
            # a client that reads nothing cannot even take the close frame: give up after a while
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(_close(ws, error.code, error.reason), settings.ws_auth_timeout_s)
        elif error is not None and not isinstance(error, WebSocketDisconnect | OSError):
            _LOGGER.error("live session of %s failed", principal.actor, exc_info=error)
            await _close(ws, 1011, "internal error")
    finally:
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        hub.remove(session)
