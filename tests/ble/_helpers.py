"""Shared helpers for the radio tests: waiting on conditions and beacon payload providers."""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import Callable


async def until(condition: Callable[[], bool], within: float = 5.0, what: str = "") -> None:
    """Wait until ``condition()`` is true, polling briefly; fail the test after ``within`` s."""

    async def poll() -> None:
        while not condition():  # noqa: ASYNC110 - the state lives in objects with no event
            await asyncio.sleep(0.01)

    try:
        await asyncio.wait_for(poll(), within)
    except TimeoutError:
        raise AssertionError(f"timed out waiting for {what or condition}") from None


class CountingPayload:
    """A payload provider giving a new (rpi, aem) at every call, remembering the times asked."""

    def __init__(self, tag: str = "p") -> None:
        self.calls: list[float] = []
        self._tag = tag

    def __call__(self, now: float) -> tuple[bytes, bytes]:
        self.calls.append(now)
        digest = hashlib.sha256(f"{self._tag}{len(self.calls)}".encode()).digest()
        return digest[:16], digest[16:20]
