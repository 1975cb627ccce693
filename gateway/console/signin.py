"""Signing in to the console with a gateway key, and the session every console request carries.

The key is sent once, in the body of `POST /ui/login`; the browser then holds only the session
cookie (HttpOnly, SameSite=Strict, Path=/ui, Secure over https). Every `/ui/api/*` request is
signed in from that cookie against the keys of the running config and then answered by the same
handler as its `/v1/` twin, so it is scoped exactly as the API is. A state-changing request also
needs the session's CSRF token in `x-csrf-token`, and is refused from any other origin.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from gateway.auth import Principal, digest
from gateway.console.session import COOKIE, CSRF_HEADER, Session, Sessions
from gateway.endpoints.intake import SIGNED_IN, read_json, runtime_of
from gateway.errors import AuthenticationFailed, GatewayError, InvalidRequest, PermissionDenied

Handler = Callable[[Request], Awaitable[Response]]
FAILED_SIGN_IN_DELAY_S = 0.25  # a wrong key costs its sender this long; other requests are not held
API_HEADERS = [(b"cache-control", b"no-store"), (b"x-content-type-options", b"nosniff")]


def sessions_of(request: Request) -> Sessions:
    sessions: Sessions = request.scope["app"].state.console.sessions
    return sessions


def signed_in(request: Request) -> tuple[Session, Principal] | None:
    """The session and its key's principal, when the cookie holds a live session for a key that
    the running config still has, unchanged."""
    sessions = sessions_of(request)
    session = sessions.read(request.cookies.get(COOKIE))
    if session is None:
        return None
    found = runtime_of(request).keys.named(session.key_name)
    if found is None or not sessions.binds(session, found[0]):
        return None
    return session, found[1]


def same_origin(request: Request) -> bool:
    """Whether a browser sent this request from the console's own origin. Browsers send `Origin` on
    every POST and `Sec-Fetch-Site` on every request; clients that are not browsers send neither,
    and cannot hold a victim's cookie."""
    site = request.headers.get("sec-fetch-site")
    if site is not None and site not in ("same-origin", "none"):
        return False
    origin = request.headers.get("origin")
    if origin is None:
        return True
    return origin == f"{request.url.scheme}://{request.headers.get('host', '')}"


class SignedIn:
    """A `/v1/` handler served to a signed-in console session (an ASGI app for a Route)."""

    def __init__(self, handler: Handler, *, changes_state: bool = False) -> None:
        self.handler = handler
        self.changes_state = changes_state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive, send)
        found = signed_in(request)
        if found is None:
            raise AuthenticationFailed("Sign in to the console first (POST /ui/login).")
        session, principal = found
        if self.changes_state:
            if not same_origin(request):
                raise PermissionDenied("Cross-origin requests to the console are refused.")
            if not sessions_of(request).csrf_ok(session, request.headers.get(CSRF_HEADER)):
                raise PermissionDenied("Missing or wrong CSRF token (send the page's x-csrf-token).")
        scope["state"][SIGNED_IN] = principal
        response = await self.handler(request)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *API_HEADERS]
            await send(message)

        await response(scope, receive, send_with_headers)


async def login(request: Request) -> Response:
    """POST /ui/login {"key": "..."}: a session cookie for a valid gateway key."""
    if not same_origin(request):
        raise PermissionDenied("Cross-origin sign-in is refused.")
    body = await read_json(request, 4096)
    key = body.get("key")
    if not isinstance(key, str) or not key.strip():
        raise InvalidRequest("Give the gateway key as 'key'.", param="key")
    key = key.strip()
    try:
        principal = runtime_of(request).keys.authenticate(None, api_key=key)
    except GatewayError:
        await asyncio.sleep(FAILED_SIGN_IN_DELAY_S)
        raise AuthenticationFailed("That gateway key is not valid here.", param="key") from None
    sessions = sessions_of(request)
    token, _ = sessions.issue(principal.key_name, digest(key))
    response = Response(status_code=204, headers={"cache-control": "no-store"})
    set_cookie(request, response, token, sessions.ttl_seconds)
    return response


async def logout(request: Request) -> Response:
    """POST /ui/logout: ends the session (with its CSRF token) and clears the cookie."""
    found = signed_in(request)
    if found is not None:
        session, _ = found
        if not same_origin(request) or not sessions_of(request).csrf_ok(session, request.headers.get(CSRF_HEADER)):
            raise PermissionDenied("Missing or wrong CSRF token (send the page's x-csrf-token).")
        sessions_of(request).sign_out(session)
    response = Response(status_code=204, headers={"cache-control": "no-store"})
    set_cookie(request, response, "", 0)
    return response


def set_cookie(request: Request, response: Response, token: str, max_age: int) -> None:
    secure = request.url.scheme == "https" or request.scope["app"].state.console.config.secure_cookie == "always"
    response.set_cookie(COOKIE, token, max_age=max_age, path="/ui", secure=secure, httponly=True, samesite="strict")
