"""A webhook receiver on a loopback port: what the gateway posts to an alert URL, kept in order."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from tests.standin import ServerThread


class WebhookReceiver:
    """`with WebhookReceiver() as hooks:` ... `hooks.url`, `hooks.posts`, `hooks.wait_for(predicate)`."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self._lock = threading.Lock()

        async def hook(request: Request) -> Response:
            with self._lock:
                self.posts.append(await request.json())
            return Response(b"")

        self.server = ServerThread(Starlette(routes=[Route("/hook", hook, methods=["POST"])]))

    @property
    def url(self) -> str:
        return self.server.url + "/hook"

    def wait_for(
        self, predicate: Callable[[list[dict[str, Any]]], bool], timeout: float = 10.0
    ) -> list[dict[str, Any]]:
        """The posts once `predicate(posts)` holds (the last ones seen if it never does)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                posts = list(self.posts)
            if predicate(posts):
                return posts
            time.sleep(0.02)
        with self._lock:
            return list(self.posts)

    def __enter__(self) -> WebhookReceiver:
        self.server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
