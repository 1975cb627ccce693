"""Run any ASGI app with uvicorn in a background thread on a loopback port."""

from __future__ import annotations

import socket
import threading
import time
from types import TracebackType
from typing import Any, Literal

import uvicorn
from starlette.types import ASGIApp

from gateway.config import ServerConfig
from gateway.serving import uvicorn_config


class ServerThread:
    """An ASGI app served by uvicorn in a daemon thread.

    The listening socket is bound before the thread starts (port 0 picks a free port), so `.port`
    and `.url` are known at once; `start()` returns once uvicorn accepts connections and raises if
    the app fails to start (e.g. its lifespan startup raises). `stop()` asks uvicorn to exit and
    joins the thread; requests still running after `graceful_timeout` seconds are cancelled.

    With `edge`, the app is served the way `agentgw serve` serves it (`gateway.serving`: its
    protocol and the bounds of that `server:` section), on the asyncio loop.
    """

    def __init__(
        self,
        app: ASGIApp,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        lifespan: Literal["auto", "on", "off"] = "on",
        startup_timeout: float = 10.0,
        graceful_timeout: float = 1.0,
        edge: ServerConfig | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.startup_timeout = startup_timeout
        options: dict[str, Any] = {
            "host": host,
            "port": port,
            "lifespan": lifespan,
            "loop": "asyncio",
            "ws": "none",
            "log_config": None,
            "log_level": "warning",
            "access_log": False,
            "timeout_graceful_shutdown": graceful_timeout,
        }
        self._config = uvicorn.Config(app, **options) if edge is None else uvicorn_config(app, edge, **options)
        self._requested_port = port
        self._server: uvicorn.Server | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("server not started")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def connections(self) -> int:
        """Client connections the server holds open right now."""
        return len(self._server.server_state.connections) if self._server is not None else 0

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self) -> ServerThread:
        if self._thread is not None:
            return self
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        # proto=IPPROTO_TCP: asyncio sets TCP_NODELAY only on sockets that say they are TCP; without it
        # every response's second write waits for a delayed ACK (about 40 ms a request).
        sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self._requested_port))
        except OSError:
            sock.close()
            raise
        self._socket = sock
        self._port = sock.getsockname()[1]
        self._server = uvicorn.Server(self._config)
        self._thread = threading.Thread(target=self._run, name=f"asgi-server-{self._port}", daemon=True)
        self._thread.start()

        deadline = time.monotonic() + self.startup_timeout
        while not self._server.started:
            if not self._thread.is_alive():
                self.stop()
                raise RuntimeError(f"ASGI server on {self.url} failed to start") from self._error
            if time.monotonic() > deadline:
                self.stop()
                raise TimeoutError(f"ASGI server on {self.url} did not start in {self.startup_timeout}s")
            time.sleep(0.005)
        return self

    def _run(self) -> None:
        assert self._server is not None and self._socket is not None
        try:
            self._server.run(sockets=[self._socket])
        except BaseException as exc:  # reported by start(); never let it escape the thread
            self._error = exc

    def stop(self, timeout: float = 10.0) -> None:
        thread, server = self._thread, self._server
        if thread is None or server is None:
            return
        server.should_exit = True
        thread.join(timeout)
        if thread.is_alive():
            server.force_exit = True
            thread.join(timeout)
        self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def serve_in_thread(app: ASGIApp, host: str = "127.0.0.1", port: int = 0, **options: object) -> ServerThread:
    """Start `app` on a loopback port and return the running `ServerThread` (also a context manager)."""
    return ServerThread(app, host, port, **options).start()  # type: ignore[arg-type]
