"""UpstreamClient on httpx, with its own transport or aiohttp's (the `httpx-aiohttp` package)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping

import httpx

from gateway.errors import UpstreamConnectError, UpstreamStreamError, UpstreamTimeout
from gateway.upstream.base import Timeouts, UpstreamClient, UpstreamResponse


class HttpxResponse(UpstreamResponse):
    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self.status = response.status_code
        self.headers = {k.lower(): v for k, v in response.headers.items()}

    async def read(self, limit: int | None = None) -> bytes:
        try:
            body = await self._response.aread()
        except httpx.TimeoutException:
            raise UpstreamTimeout("timed out reading the response body") from None
        except httpx.HTTPError as exc:
            raise UpstreamStreamError(f"the connection broke while reading the body ({type(exc).__name__})") from None
        finally:
            await self._response.aclose()
        return body if limit is None else body[:limit]

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.aiter_bytes():  # decoded, as aiohttp's are
                yield chunk
        except httpx.TimeoutException:
            raise UpstreamTimeout("timed out waiting for the next part of the stream") from None
        except httpx.HTTPError as exc:
            raise UpstreamStreamError(f"the stream broke ({type(exc).__name__})") from None

    async def finish(self) -> None:
        # httpx cannot go on reading a stream whose iterator was left: the connection is closed.
        await self._response.aclose()

    async def aclose(self) -> None:
        await self._response.aclose()


class HttpxClient(UpstreamClient):
    def __init__(self, *, max_connections: int, transport: str = "default") -> None:
        limits = httpx.Limits(max_connections=max_connections, max_keepalive_connections=max_connections)
        if transport == "aiohttp":
            from httpx_aiohttp import AiohttpTransport

            self._client = httpx.AsyncClient(transport=AiohttpTransport(), limits=limits, trust_env=False)
        else:
            self._client = httpx.AsyncClient(limits=limits, trust_env=False)

    async def send(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeouts: Timeouts
    ) -> UpstreamResponse:
        # httpx has no whole-exchange timeout: `total` is not enforced on this (non-default) client.
        timeout = httpx.Timeout(None, connect=timeouts.connect, read=timeouts.read, pool=timeouts.connect)
        request = self._client.build_request(method, url, headers=dict(headers), content=body, timeout=timeout)
        try:
            response = await self._client.send(request, stream=True)
        except httpx.TimeoutException:
            raise UpstreamTimeout("no response within the configured timeout") from None
        except httpx.HTTPError as exc:
            raise UpstreamConnectError(f"could not connect ({type(exc).__name__})") from None
        return HttpxResponse(response)

    async def aclose(self) -> None:
        await self._client.aclose()
