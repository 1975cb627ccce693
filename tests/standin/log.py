"""The stand-in's request log, shared between the server thread and the test thread."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

ENTRY_SCOPE_KEY = "standin.entry"


@dataclass
class Logged:
    """One request the stand-in received, and what it did about it.

    `usage` is the usage object the stand-in actually sent (None when it sent none, e.g. a stream
    without `include_usage`, or a stream cut before the usage chunk); `full_usage` is what the
    stand-in computed for the whole reply, sent or not. `cancelled` turns True when the client went
    away before the stand-in finished answering (mid-stream, or while a slow model was sleeping);
    `finished` turns True once the stand-in has sent the end of its response.
    """

    method: str
    path: str
    headers: dict[str, str]
    body: dict[str, Any] | None
    raw: bytes
    time: float
    query: str = ""
    peer: tuple[str, int] | None = None  # the client's address: the same one means a reused connection
    status: int | None = None
    cancelled: bool = False
    usage: dict[str, Any] | None = None
    full_usage: dict[str, Any] | None = None
    finished: bool = False

    @property
    def model(self) -> str | None:
        model = (self.body or {}).get("model")
        return model if isinstance(model, str) else None

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "query": self.query,
            "headers": self.headers,
            "body": self.body,
            "raw": self.raw.decode("utf-8", errors="replace"),
            "time": self.time,
            "status": self.status,
            "cancelled": self.cancelled,
            "usage": self.usage,
            "full_usage": self.full_usage,
            "finished": self.finished,
        }


@dataclass
class RequestLog:
    """Thread-safe list of `Logged` requests; waiters are woken on every change."""

    _entries: list[Logged] = field(default_factory=list)
    _cond: threading.Condition = field(default_factory=threading.Condition)

    def add(self, entry: Logged) -> None:
        with self._cond:
            self._entries.append(entry)
            self._cond.notify_all()

    def update(self, entry: Logged, **changes: Any) -> None:
        with self._cond:
            for name, value in changes.items():
                setattr(entry, name, value)
            self._cond.notify_all()

    def entries(self) -> list[Logged]:
        with self._cond:
            return list(self._entries)

    def clear(self) -> None:
        with self._cond:
            self._entries.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._entries)

    def count(self, predicate: Callable[[Logged], bool]) -> int:
        with self._cond:
            return sum(1 for entry in self._entries if predicate(entry))

    def find(self, path: str | None = None, model: str | None = None) -> list[Logged]:
        return [
            entry
            for entry in self.entries()
            if (path is None or entry.path == path) and (model is None or entry.model == model)
        ]

    def wait_for(self, predicate: Callable[[Logged], bool], timeout: float = 5.0) -> Logged:
        """Block until some logged request satisfies `predicate`; return it (TimeoutError if none)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for entry in self._entries:
                    if predicate(entry):
                        return entry
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"no logged request matched within {timeout}s")
                self._cond.wait(remaining)

    def to_json(self) -> bytes:
        return orjson.dumps([entry.to_json() for entry in self.entries()])


class RecordRequests:
    """Pure ASGI middleware: reads the whole body, logs the request, then replays the body."""

    def __init__(self, app: ASGIApp, log: RequestLog) -> None:
        self.app = app
        self.log = log

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"].startswith("/_log"):
            await self.app(scope, receive, send)
            return

        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":
                break
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        raw = b"".join(chunks)

        headers: dict[str, str] = {}
        for key, value in scope["headers"]:
            name = key.decode("latin-1").lower()
            text = value.decode("latin-1")
            headers[name] = f"{headers[name]}, {text}" if name in headers else text
        try:
            parsed = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            parsed = None
        entry = Logged(
            method=scope["method"],
            path=scope["path"],
            query=scope.get("query_string", b"").decode("latin-1"),
            headers=headers,
            body=parsed if isinstance(parsed, dict) else None,
            raw=raw,
            time=time.time(),
            peer=tuple(scope["client"]) if scope.get("client") else None,
        )
        self.log.add(entry)

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": raw, "more_body": False}
            return await receive()

        async def record_status(message: Message) -> None:
            if message["type"] == "http.response.start":
                self.log.update(entry, status=message["status"])
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                self.log.update(entry, finished=True)

        await self.app({**scope, ENTRY_SCOPE_KEY: entry}, replay, record_status)
