"""Small protocols the daemon codes against; the BlueZ implementations and fakes satisfy them."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from bluezoned.models import Sighting

Stop = Callable[[], Awaitable[None]]
"""The undo a ``start()`` returns: stops what was started; safe to call twice."""

PayloadProvider = Callable[[float], tuple[bytes, bytes]]
"""Given unix time ``now``, the ``(rpi, aem)`` to broadcast; the daemon owns the keys."""

BluezoneIdProvider = Callable[[float], bytes]
"""Given unix time ``now``, the 12-byte legacy Bluezone id to broadcast."""


class Scanner(Protocol):
    """Hears beacons and queues them as Sightings."""

    async def start(self) -> Stop:
        """Start scanning; return the undo. Raises BluetoothUnavailable if the first start fails."""
        ...

    async def get(self) -> Sighting:
        """Wait for the next sighting from the bounded queue."""
        ...


class Advertiser(Protocol):
    """Broadcasts the rotating beacon."""

    async def start(self) -> Stop:
        """Register the beacon and keep it rotating; return the undo; roll back on failure."""
        ...
