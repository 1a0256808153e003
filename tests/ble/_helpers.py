"""Shared helpers for the radio tests: beacon payload providers.

Waiting on a condition is ``tests.fixtures_bluez.wait_until``.
"""

from __future__ import annotations

import hashlib


class CountingPayload:
    """A payload provider giving a new (rpi, aem) at every call, remembering the times asked."""

    def __init__(self, tag: str = "p") -> None:
        self.calls: list[float] = []
        self._tag = tag

    def __call__(self, now: float) -> tuple[bytes, bytes]:
        self.calls.append(now)
        digest = hashlib.sha256(f"{self._tag}{len(self.calls)}".encode()).digest()
        return digest[:16], digest[16:20]
