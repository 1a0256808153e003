"""A loopback key server for the sync tests: static files, ETags, per-path counters and faults."""

from __future__ import annotations

import asyncio
import hashlib
import threading
from collections import Counter, defaultdict, deque
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager

from aiohttp import web
from aiohttp.test_utils import TestServer


class KeyServer:
    """Serves ``files`` (path -> bytes) on 127.0.0.1; ``faults[path]`` is a queue of one-shot faults.

    Faults: ``"reset"`` (cut the body half way), ``"500"``, ``"503"``, ``"stall"`` (send half,
    then go silent), ``"slow"`` (wait before answering), ``"404"``, ``"408"``, ``"410"``,
    ``"429"``, ``"chunked"`` (no length).
    """

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.faults: defaultdict[str, deque[str]] = defaultdict(deque)
        self.requests: Counter[str] = Counter()
        self.not_modified: Counter[str] = Counter()
        self.stall_seconds = 5.0
        self._server: TestServer | None = None

    def url(self, path: str = "/") -> str:
        """Absolute URL of ``path`` on the running server."""
        if self._server is None:
            raise RuntimeError("server not started")
        return str(self._server.make_url(path))

    def fail(self, path: str, *faults: str) -> None:
        """Queue one-shot faults for the next requests of ``path``."""
        self.faults[path].extend(faults)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.requests[path] += 1
        fault = self.faults[path].popleft() if self.faults[path] else None
        if fault in ("408", "429", "500", "503", "404", "410"):
            return web.Response(status=int(fault), text="fault")
        if fault == "slow":
            await asyncio.sleep(self.stall_seconds)
        body = self.files.get(path)
        if body is None:
            return web.Response(status=404, text="not found")
        etag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        if request.headers.get("If-None-Match") == etag:
            self.not_modified[path] += 1
            return web.Response(status=304, headers={"ETag": etag})
        if fault in ("reset", "stall"):
            response = web.StreamResponse(headers={"ETag": etag})
            response.content_length = len(body)
            await response.prepare(request)
            await response.write(body[: len(body) // 2])
            if fault == "stall":
                await asyncio.sleep(self.stall_seconds)
            if request.transport is not None:
                request.transport.close()
            return response
        if fault == "chunked":
            response = web.StreamResponse(headers={"ETag": etag})
            response.enable_chunked_encoding()
            await response.prepare(request)
            for start in range(0, len(body), 1024):
                await response.write(body[start : start + 1024])
            await response.write_eof()
            return response
        content_type = "text/plain" if path.endswith(".txt") else "application/octet-stream"
        return web.Response(body=body, headers={"ETag": etag, "Content-Type": content_type})

    @asynccontextmanager
    async def running(self) -> AsyncIterator[KeyServer]:
        app = web.Application()
        app.router.add_route("GET", "/{tail:.*}", self.handle)
        server = TestServer(app, host="127.0.0.1")
        await server.start_server()
        self._server = server
        try:
            yield self
        finally:
            await server.close()
            self._server = None


@contextmanager
def serving_in_thread(start: Callable[[], AbstractAsyncContextManager[object]]) -> Iterator[None]:
    """Run the async context ``start()`` on a loop in a thread, for CLI tests that call asyncio.run."""
    loop = asyncio.new_event_loop()
    started = threading.Event()
    stop: list[asyncio.Event] = []
    failure: list[BaseException] = []

    async def main() -> None:
        stop.append(asyncio.Event())
        async with start():
            started.set()
            await stop[0].wait()

    def target() -> None:
        try:
            loop.run_until_complete(main())
        except Exception as exc:  # noqa: BLE001 - re-raised in the test thread below
            failure.append(exc)
            started.set()

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    started.wait(10)
    if failure:
        raise failure[0]
    try:
        yield
    finally:
        loop.call_soon_threadsafe(stop[0].set)
        thread.join(10)
        loop.close()
