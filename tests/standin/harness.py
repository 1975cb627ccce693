"""`StandIn`: the stand-in provider app, its request log, and the thread serving it."""

from __future__ import annotations

from collections.abc import Callable
from types import TracebackType

from .app import create_app
from .log import Logged, RequestLog
from .server import ServerThread


class StandIn:
    """A running stand-in provider. Point an OpenAI client at `.openai_base`, an Anthropic one at
    `.anthropic_base`; choose the behaviour with the model name (see the package docstring)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.log = RequestLog()
        self.app = create_app(self.log)
        self.server = ServerThread(self.app, host, port)

    def start(self) -> StandIn:
        self.server.start()
        return self

    def stop(self) -> None:
        self.server.stop()

    def __enter__(self) -> StandIn:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port

    @property
    def openai_base(self) -> str:
        return self.url + "/v1"

    @property
    def anthropic_base(self) -> str:
        return self.url

    @property
    def requests(self) -> list[Logged]:
        return self.log.entries()

    def find(self, path: str | None = None, model: str | None = None) -> list[Logged]:
        return self.log.find(path, model)

    def wait_for(self, predicate: Callable[[Logged], bool], timeout: float = 5.0) -> Logged:
        return self.log.wait_for(predicate, timeout)

    def clear(self) -> None:
        self.log.clear()
