"""What every HTTP provider shares: one path per API it speaks, posting JSON, reading whole answers
and streams through the API's own reader, reading errors, scrubbing secrets."""

from __future__ import annotations

import email.utils
import time
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, ClassVar
from urllib.parse import urlsplit

import orjson

from gateway import sse
from gateway.apis.base import Event, StreamReader
from gateway.errors import UpstreamBadResponse, UpstreamStatusError, UpstreamStreamError
from gateway.providers.base import Completion, EventStream, Provider, ProviderCall
from gateway.providers.config import AnthropicProviderConfig, OpenAIProviderConfig
from gateway.secret_mask import SecretMask
from gateway.upstream import Timeouts, UpstreamClient, UpstreamResponse

ERROR_BODY_LIMIT = 64 * 1024
USER_AGENT = "agentgw/0.1"


class HttpProvider(Provider):
    """A provider reached over HTTP: `paths` maps each API it speaks to its endpoint."""

    paths: ClassVar[Mapping[str, str]]

    def __init__(
        self, name: str, config: OpenAIProviderConfig | AnthropicProviderConfig, client: UpstreamClient
    ) -> None:
        super().__init__(name)
        self._client = client
        self._base = str(config.base_url).rstrip("/")
        self._mask = SecretMask(config.secrets())
        t = config.timeout
        self._timeouts = Timeouts(connect=t.connect, read=t.read, total=t.total)
        self._stream_timeouts = Timeouts(connect=t.connect, read=t.read, total=None)
        self._headers = {
            "content-type": "application/json",
            "accept": "application/json",
            "user-agent": USER_AGENT,
            **{k.lower(): v.get_secret_value() for k, v in config.headers.items()},
        }
        parts = urlsplit(self._base)
        default_port = 443 if parts.scheme == "https" else 80
        self._address = (parts.hostname or "", parts.port or default_port)

    @property
    def address(self) -> tuple[str, int]:
        return self._address

    async def complete(self, call: ProviderCall) -> Completion:
        response = await self._post(self.paths[call.api.name], call.body, headers=call.headers, stream=False)
        data, raw = await self._read_json(response)
        call.api.check_response(data)
        return Completion(data, raw, call.api.usage(data))

    async def open_stream(self, call: ProviderCall) -> EventStream:
        body, reader = self._stream_request(call)
        response = await self._post(self.paths[call.api.name], body, headers=call.headers, stream=True)
        return EventStream(self._stream(response, reader), response.aclose, reader.reported)

    def _stream_request(self, call: ProviderCall) -> tuple[dict[str, Any], StreamReader]:
        """The body to send for a stream, and the reader of what comes back."""
        return call.body, call.api.stream_reader()

    async def _stream(self, response: UpstreamResponse, reader: StreamReader) -> AsyncIterator[Event]:
        """The stream's events; after its terminal event the rest of the body is awaited (briefly) so
        the connection goes back to the pool before the client hears the end."""
        decoder = sse.Decoder()
        try:
            async for chunk in response.iter_chunks():
                for raw in decoder.feed(chunk):
                    event = reader.read(raw.event, raw.data)
                    if reader.ended:  # the rest of the body is its end: the connection goes back first
                        await response.finish()
                        if event is not None:
                            yield event
                        return
                    if event is not None:
                        yield event
            for raw in decoder.flush():
                event = reader.read(raw.event, raw.data)
                if event is not None:
                    yield event
            reader.check_complete()
        except UpstreamStreamError as exc:
            raise UpstreamStreamError(self.scrub(exc.detail)[:500]) from None

    async def _post(
        self, path: str, payload: dict[str, Any], *, headers: Mapping[str, str], stream: bool
    ) -> UpstreamResponse:
        """POST JSON; returns the response when its status is 2xx, raises UpstreamStatusError else."""
        response = await self._client.send(
            "POST",
            self._base + path,
            headers={**self._headers, **headers},
            body=orjson.dumps(payload),
            timeouts=self._stream_timeouts if stream else self._timeouts,
        )
        if 200 <= response.status < 300:
            return response
        body = await response.read(ERROR_BODY_LIMIT)
        raise UpstreamStatusError(
            response.status, error_message(body, self.scrub), retry_after=retry_after(response.headers)
        )

    async def _read_json(self, response: UpstreamResponse) -> tuple[dict[str, Any], bytes]:
        body = await response.read()
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise UpstreamBadResponse(
                f"the provider answered with {_describe_body(response, body)}, not JSON"
            ) from None
        if not isinstance(data, dict):
            raise UpstreamBadResponse("the provider answered with JSON that is not an object")
        return data, body

    def scrub(self, text: str) -> str:
        """The text with this provider's secrets masked: provider errors sometimes echo them, at times
        disguised by invisible characters (see `gateway.secret_mask`)."""
        return self._mask.mask(text)


def error_message(body: bytes, scrub: Callable[[str], str]) -> str:
    """The provider's own error message from an error body of any common shape, scrubbed of secrets
    (before it is shortened, so a secret cut in half cannot slip through) and kept short."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        text = body.decode("utf-8", "replace").strip()
        return "a non-JSON error body" if not text or text.startswith("<") else scrub(text)[:300]
    message: Any = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict):
            message = error.get("message")
        elif isinstance(error, str):
            message = error
        message = message or data.get("message") or data.get("detail")
    return scrub(str(message))[:500] if message else "no error message"


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds the provider asked us to wait: `retry-after-ms`, then `retry-after` (seconds or date)."""
    if (ms := headers.get("retry-after-ms")) is not None:
        try:
            return max(0.0, float(ms) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def _describe_body(response: UpstreamResponse, body: bytes) -> str:
    kind = response.headers.get("content-type", "").split(";")[0] or "no content type"
    return f"{len(body)} bytes of {kind}"
