"""The console's routes: the page at /ui, its files, sign-in, and /ui/api/*, the read endpoints of
/v1/ (and feedback) for a signed-in session."""

from __future__ import annotations

import html
from typing import Any

import orjson
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from gateway.console import assets
from gateway.console.config import ConsoleConfig
from gateway.console.session import COOKIE, Sessions
from gateway.console.signin import Handler, SignedIn, login, logout, sessions_of, signed_in
from gateway.endpoints.agents import agents
from gateway.endpoints.agents import compare as compare_agents
from gateway.endpoints.budgets import budgets
from gateway.endpoints.feedback import export_feedback, post_feedback
from gateway.endpoints.guardrail_triggers import guardrail_triggers
from gateway.endpoints.latency import latency
from gateway.endpoints.models import list_routes
from gateway.endpoints.overview import overview
from gateway.endpoints.session_search import find_sessions
from gateway.endpoints.sessions import session
from gateway.endpoints.usage import usage
from gateway.errors import UnknownEndpoint

# Scripts, styles and connections only from the gateway itself; no frames, no plugins, no inline code.
PAGE_HEADERS = {
    "content-security-policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'",
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cache-control": "no-store",
}
READ_ENDPOINTS: list[tuple[str, Handler]] = [
    ("/ui/api/overview", overview),
    ("/ui/api/usage", usage),
    ("/ui/api/usage/latency", latency),
    ("/ui/api/budgets", budgets),
    ("/ui/api/agents", agents),
    ("/ui/api/agents/compare", compare_agents),
    ("/ui/api/sessions", find_sessions),
    ("/ui/api/sessions/{session_id}", session),
    ("/ui/api/routes", list_routes),
    ("/ui/api/guardrails/triggers", guardrail_triggers),
    ("/ui/api/feedback/export", export_feedback),
]


class Console:
    """The console of one gateway process: its config (a restart changes it) and its sessions."""

    def __init__(self, config: ConsoleConfig) -> None:
        self.config = config
        secret = config.session_secret.encode() if config.session_secret else None
        self.sessions = Sessions(secret, config.session_minutes * 60)

    def routes(self) -> list[Route]:
        if not self.config.enabled:
            return []
        api = [
            Route(path, GZipMiddleware(SignedIn(handler), minimum_size=1024), methods=["GET"])
            for path, handler in READ_ENDPOINTS
        ]
        return [
            Route("/ui", _App(page), methods=["GET"]),
            Route("/ui/login", _App(login), methods=["POST"]),
            Route("/ui/logout", _App(logout), methods=["POST"]),
            Route("/ui/static/{version}/{asset:path}", _App(static), methods=["GET"]),
            *api,
            Route("/ui/api/feedback", SignedIn(post_feedback, changes_state=True), methods=["POST"]),
        ]


async def page(request: Request) -> Response:
    """The console's single page for a signed-in session, else the sign-in page."""
    files = assets.load()
    found = signed_in(request)
    if found is None:
        body = _fill(files, "login.html", {})
        response = Response(body, media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)
        if COOKIE in request.cookies:
            response.delete_cookie(COOKIE, path="/ui")
        return response
    session, principal = found
    who: dict[str, Any] = {"key": principal.key_name, "team": principal.team, "role": principal.role.value}
    if principal.agent is not None:
        who["agent"] = principal.agent
    fields = {"CSRF": sessions_of(request).csrf_token(session), "WHO": orjson.dumps(who).decode()}
    return Response(_fill(files, "index.html", fields), media_type="text/html; charset=utf-8", headers=PAGE_HEADERS)


def _fill(files: assets.Assets, name: str, fields: dict[str, str]) -> bytes:
    template = files.get(name)
    assert template is not None, name
    text = template.body.decode().replace("%VERSION%", files.version)
    for field, value in fields.items():
        text = text.replace(f"%{field}%", html.escape(value, quote=True))
    return text.encode()


async def static(request: Request) -> Response:
    files = assets.load()
    asset = files.get(request.path_params["asset"])
    if (
        asset is None
        or request.path_params["version"] != files.version
        or request.path_params["asset"].endswith(".html")
    ):
        raise UnknownEndpoint(f"No such console file: {request.url.path}")
    headers = {
        "cache-control": "public, max-age=31536000, immutable",
        "etag": asset.etag,
        "x-content-type-options": "nosniff",
        "vary": "accept-encoding",
    }
    if request.headers.get("if-none-match") == asset.etag:
        return Response(status_code=304, headers=headers)
    body = asset.body
    if asset.gzipped is not None and "gzip" in request.headers.get("accept-encoding", ""):
        body = asset.gzipped
        headers["content-encoding"] = "gzip"
    return Response(body, media_type=asset.media_type, headers=headers)


class _App:
    """A request handler as a plain ASGI app (errors go to the app's exception handlers)."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await self.handler(Request(scope, receive, send))
        await response(scope, receive, send)
