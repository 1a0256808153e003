"""Pure supervision parts: retry back-off, the silence watchdog and the rotation schedule.

No clock reads and no asyncio: callers pass ``now`` (monotonic seconds) and a random source.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from bluezoned.const import SECONDS_PER_INTERVAL
from bluezoned.errors import InvalidInput


@dataclass(slots=True)
class Backoff:
    """Exponential retry delays ``base * 2**n`` capped at ``cap``; :meth:`reset` after a success."""

    base: float = 0.5
    cap: float = 30.0
    attempts: int = 0

    def next_delay(self) -> float:
        """The delay before the next attempt; counts the attempt."""
        delay: float = min(self.cap, self.base * 2.0 ** min(self.attempts, 30))
        self.attempts += 1
        return delay

    def reset(self) -> None:
        """Forget past failures."""
        self.attempts = 0


@dataclass(slots=True)
class Watchdog:
    """Says when a data source has been silent for longer than ``timeout`` seconds."""

    timeout: float
    last_feed: float = field(default=0.0)

    def feed(self, now: float) -> None:
        """Record that data arrived at ``now``."""
        self.last_feed = now

    def silent_for(self, now: float) -> float:
        """Seconds since the last data."""
        return now - self.last_feed

    def expired(self, now: float) -> bool:
        """Whether the silence exceeds the timeout."""
        return now - self.last_feed > self.timeout

    def remaining(self, now: float) -> float:
        """Seconds left before expiry (0 when already expired)."""
        return max(0.0, self.timeout - (now - self.last_feed))


@dataclass(frozen=True, slots=True)
class RotationPolicy:
    """Rotate the beacon (payload and address) after a uniform random delay in [min, max).

    GAEN (protocol.md §4.3) rotates at a random 10-20 min. With ``min_seconds`` at least one
    EN interval (600 s) every rotation lands in a new interval, so it always carries a new RPI
    and an RPI never stays on air longer than ``max_seconds`` (Apple drops > 1200 s).
    """

    min_seconds: float = 10 * 60
    max_seconds: float = 20 * 60

    def __post_init__(self) -> None:
        if not 0 < self.min_seconds <= self.max_seconds:
            raise InvalidInput(
                f"rotation bounds must satisfy 0 < min <= max, got {self.min_seconds}/{self.max_seconds}"
            )

    @property
    def guarantees_new_interval(self) -> bool:
        """Whether consecutive rotations always fall in different EN intervals."""
        return self.min_seconds >= SECONDS_PER_INTERVAL

    def next_rotation(self, last: float, rng: random.Random) -> float:
        """Time of the rotation after one at ``last``."""
        return last + rng.uniform(self.min_seconds, self.max_seconds)
