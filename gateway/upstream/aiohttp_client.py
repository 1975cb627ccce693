"""UpstreamClient on aiohttp: the fastest measured here (see bench/)."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
from collections.abc import AsyncIterator, Mapping

import aiohttp

from gateway.errors import UpstreamConnectError, UpstreamStreamError, UpstreamTimeout
from gateway.upstream.base import Timeouts, UpstreamClient, UpstreamResponse

# After a stream's terminal event, the end-of-body marker normally follows in the same packet; a
# provider that holds the connection open past this is dropped from the pool instead.
END_OF_BODY_GRACE_S = 0.5
LARGE_BODY = 1 << 20  # aiohttp's own threshold for a bytes body (payload.TOO_LARGE_BYTES_BODY)


class AiohttpResponse(UpstreamResponse):
    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._response = response
        self.status = response.status
        self.headers = response.headers  # case-insensitive already

    async def read(self, limit: int | None = None) -> bytes:
        try:
            if limit is None:
                return await self._response.read()
            body = bytearray()
            async for chunk in self._response.content.iter_any():
                body += chunk
                if len(body) >= limit:
                    self._response.close()  # the rest is not wanted; do not reuse the connection
                    break
            return bytes(body[:limit])
        except TimeoutError:
            raise UpstreamTimeout("timed out reading the response body") from None
        except aiohttp.ClientError as exc:
            raise UpstreamStreamError(f"the connection broke while reading the body ({type(exc).__name__})") from None
        finally:
            self._response.release()

    async def iter_chunks(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._response.content.iter_any():
                yield chunk
        except TimeoutError:
            raise UpstreamTimeout("timed out waiting for the next part of the stream") from None
        except aiohttp.ClientError as exc:
            raise UpstreamStreamError(f"the stream broke ({type(exc).__name__})") from None

    async def finish(self) -> None:
        response = self._response
        if response.closed:
            return
        content = response.content
        with contextlib.suppress(Exception):
            async with asyncio.timeout(END_OF_BODY_GRACE_S):
                while not content.at_eof():
                    if await content.readany():  # data after the terminal event: not a clean end
                        break
        await self.aclose()

    async def aclose(self) -> None:
        """Back to the pool when the body was read to its end; otherwise the connection is dropped,
        its state unknown (and the provider's request cancelled)."""
        response = self._response
        if response.closed:
            return
        if response.content.at_eof():
            response.release()
        else:
            response.close()


@functools.lru_cache(maxsize=256)
def _client_timeout(timeouts: Timeouts) -> aiohttp.ClientTimeout:
    return aiohttp.ClientTimeout(total=timeouts.total, connect=timeouts.connect, sock_read=timeouts.read)


class AiohttpClient(UpstreamClient):
    def __init__(self, *, max_connections: int) -> None:
        connector = aiohttp.TCPConnector(limit=max_connections, ttl_dns_cache=300, keepalive_timeout=30)
        self._session = aiohttp.ClientSession(
            connector=connector, auto_decompress=True, skip_auto_headers=("User-Agent",), trust_env=False
        )

    async def send(
        self, method: str, url: str, *, headers: Mapping[str, str], body: bytes | None, timeouts: Timeouts
    ) -> UpstreamResponse:
        timeout = _client_timeout(timeouts)
        # aiohttp writes a bytes body in one go and warns (a ResourceWarning) above 1 MiB; a BytesIO
        # body is written in chunks with the event loop free in between.
        data: bytes | io.BytesIO | None = io.BytesIO(body) if body is not None and len(body) > LARGE_BODY else body
        try:
            response = await self._session.request(
                method, url, headers=headers, data=data, timeout=timeout, allow_redirects=False
            )
        except TimeoutError:
            raise UpstreamTimeout("no response within the configured timeout") from None
        except aiohttp.ClientConnectorError as exc:
            raise UpstreamConnectError(f"could not connect ({exc.os_error.strerror or 'refused'})") from None
        except aiohttp.ClientError as exc:
            raise UpstreamConnectError(f"the request failed ({type(exc).__name__})") from None
        return AiohttpResponse(response)

    async def aclose(self) -> None:
        await self._session.close()
