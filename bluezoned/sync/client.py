"""Bounded, retrying HTTP GETs over aiohttp: bytes in memory or a FetchError, nothing else leaves.

Every request has connect, read and whole-request timeouts and a byte cap enforced while
streaming (an oversized body is refused before it is read whole). Connection errors, timeouts,
5xx and 429 answers are retried with full-jitter exponential back-off; other 4xx are final.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Final

import aiohttp

from bluezoned import __version__
from bluezoned.config import Limits
from bluezoned.const import (
    SYNC_BACKOFF_BASE_SECONDS,
    SYNC_BACKOFF_MAX_SECONDS,
    SYNC_CHUNK_BYTES,
)
from bluezoned.errors import FetchError, ResponseTooLarge

__all__ = ["Fetched", "HttpClient", "backoff_delay", "open_session"]

USER_AGENT: Final = f"bluezoned/{__version__}"
_RETRYABLE_STATUS: Final = frozenset({408, 429})

Sleep = Callable[[float], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Fetched:
    """One response: ``status`` 200 with ``body``, or 304 (not modified) with an empty body."""

    url: str
    status: int
    body: bytes
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        """True for a 304 answer to a conditional GET."""
        return self.status == 304


class _Retryable(Exception):
    """Internal: this attempt failed in a way worth retrying."""

    def __init__(self, detail: str, status: int | None = None) -> None:
        self.detail = detail
        self.status = status
        super().__init__(detail)


def backoff_delay(attempt: int, rng: random.Random, base: float, cap: float) -> float:
    """Full-jitter exponential back-off: uniform(0, min(cap, base * 2**attempt)) seconds."""
    return rng.uniform(0.0, min(cap, base * (2 ** min(attempt, 30))))


@asynccontextmanager
async def open_session(limits: Limits) -> AsyncIterator[aiohttp.ClientSession]:
    """A ClientSession with the configured timeouts and no cookies, closed on exit."""
    timeout = aiohttp.ClientTimeout(
        total=limits.request_timeout,
        connect=limits.connect_timeout,
        sock_connect=limits.connect_timeout,
        sock_read=limits.read_timeout,
    )
    async with aiohttp.ClientSession(
        timeout=timeout,
        headers={"User-Agent": USER_AGENT},
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=True,
    ) as session:
        yield session


class HttpClient:
    """GETs through one session with the caps, timeouts and retry ladder of ``limits``."""

    def __init__(
        self,
        session: aiohttp.ClientSession,
        limits: Limits,
        rng: random.Random,
        *,
        sleep: Sleep = asyncio.sleep,
        backoff_base: float = SYNC_BACKOFF_BASE_SECONDS,
        backoff_max: float = SYNC_BACKOFF_MAX_SECONDS,
    ) -> None:
        """Use ``session`` (owned by the caller); ``rng`` and ``sleep`` drive the back-off."""
        self._session = session
        self._limits = limits
        self._rng = rng
        self._sleep = sleep
        self._backoff_base = backoff_base
        self._backoff_max = backoff_max

    async def get(
        self,
        url: str,
        *,
        max_bytes: int,
        etag: str | None = None,
        last_modified: str | None = None,
    ) -> Fetched:
        """GET ``url`` (conditionally when ``etag``/``last_modified`` are given) or raise FetchError."""
        headers: dict[str, str] = {}
        if etag is not None:
            headers["If-None-Match"] = etag
        if last_modified is not None:
            headers["If-Modified-Since"] = last_modified
        attempts = self._limits.retries + 1
        for attempt in range(attempts):
            try:
                return await self._attempt(url, headers, max_bytes)
            except _Retryable as exc:
                if attempt + 1 >= attempts:
                    raise FetchError(
                        url, f"{exc.detail} (after {attempts} attempt(s))", exc.status
                    ) from None
                await self._sleep(
                    backoff_delay(attempt, self._rng, self._backoff_base, self._backoff_max)
                )
        raise FetchError(url, "no attempt was made")  # unreachable: attempts >= 1

    async def _attempt(self, url: str, headers: dict[str, str], max_bytes: int) -> Fetched:
        try:
            async with self._session.get(url, headers=headers, allow_redirects=True) as response:
                status = response.status
                if status == 304:
                    return Fetched(
                        url,
                        304,
                        b"",
                        _header(response, "ETag"),
                        _header(response, "Last-Modified"),
                    )
                if status >= 500 or status in _RETRYABLE_STATUS:
                    raise _Retryable(f"HTTP {status}", status)
                if status != 200:
                    raise FetchError(url, f"HTTP {status} {response.reason or ''}".rstrip(), status)
                length = response.content_length
                if length is not None and length > max_bytes:
                    raise ResponseTooLarge(
                        url, f"{length} bytes announced, more than the {max_bytes} allowed", status
                    )
                body = await _read_capped(response, url, max_bytes)
                return Fetched(
                    url,
                    200,
                    body,
                    _header(response, "ETag"),
                    _header(response, "Last-Modified"),
                )
        except TimeoutError:
            raise _Retryable("timed out") from None
        except aiohttp.ClientPayloadError as exc:
            raise _Retryable(f"response cut short: {exc}") from None
        except aiohttp.ClientConnectionError as exc:
            raise _Retryable(f"connection failed: {exc}") from None
        except aiohttp.InvalidURL as exc:
            raise FetchError(url, f"invalid URL: {exc}") from None
        except aiohttp.ClientResponseError as exc:
            raise _Retryable(f"bad response: {exc.message}", exc.status) from None


async def _read_capped(response: aiohttp.ClientResponse, url: str, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    total = 0
    async for chunk in response.content.iter_chunked(SYNC_CHUNK_BYTES):
        total += len(chunk)
        if total > max_bytes:
            raise ResponseTooLarge(
                url, f"more than the {max_bytes} bytes allowed; download abandoned"
            )
        chunks.append(chunk)
    return b"".join(chunks)


def _header(response: aiohttp.ClientResponse, name: str) -> str | None:
    value = response.headers.get(name)
    return value if value else None
