"""The BlueZ advertiser: registers the EN beacon through LEAdvertisingManager1 and keeps it rotating.

Design (linux-ble.md §8): the LEAdvertisement1 object is exported *before*
RegisterAdvertisement, because bluetoothd reads its properties before replying; one instance
per beacon; rotation is unregister + new payload + register, so that the kernel draws a fresh
non-resolvable address with every new RPI (§8.5) - the payload is never changed in place.
Every D-Bus call is under a timeout. Release(), bluetoothd restarts (which send nothing,
§8.2 item 6) and adapter removal/re-addition all lead back to re-registration with back-off.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bluezoned.ble.bluez import defs
from bluezoned.ble.bluez.adapter import (
    AdapterInfo,
    BluezConnection,
    BluezEvent,
    DBusCallError,
    check_adapter_spec,
    unavailable_from,
)
from bluezoned.ble.bluez.advertisement import BluezoneAdvertisement, EnAdvertisement
from bluezoned.ble.interfaces import BluezoneIdProvider, PayloadProvider, Stop
from bluezoned.ble.supervision import Backoff, RotationPolicy
from bluezoned.ble.tasks import Supervised
from bluezoned.const import DBUS_CALL_TIMEOUT, RETRY_BASE_SECONDS, RETRY_MAX_SECONDS
from bluezoned.errors import (
    AdvertisementRejected,
    BluetoothUnavailable,
    BluetoothUnavailableReason,
)

_log = logging.getLogger(__name__)


@dataclass(slots=True)
class AdvertiserStats:
    """Counters of the advertiser's life; ``failures`` is keyed by D-Bus error name."""

    registered: bool = False
    active_instances: int | None = None
    """The adapter's ActiveInstances read after the last registration (start-up self-test, §8.8)."""
    registrations: int = 0
    rotations: int = 0
    releases: int = 0
    recoveries: int = 0
    failures: collections.Counter[str] = field(default_factory=collections.Counter)


class BluezAdvertiser(Supervised):
    """Broadcasts the EN beacon (and optionally the legacy Bluezone one) on one adapter."""

    def __init__(
        self,
        adapter: str,
        payload: PayloadProvider,
        *,
        bluezone: BluezoneIdProvider | None = None,
        rotation: RotationPolicy | None = None,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        call_timeout: float = DBUS_CALL_TIMEOUT,
        retry_base: float = RETRY_BASE_SECONDS,
        retry_cap: float = RETRY_MAX_SECONDS,
    ) -> None:
        self._spec = check_adapter_spec(adapter)
        self._payload = payload
        self._bluezone = bluezone
        self._rotation = rotation or RotationPolicy()
        self._clock = clock
        self._rng = rng or random.Random()  # noqa: S311 - timing jitter, not a secret
        self._call_timeout = call_timeout
        self._backoff = Backoff(retry_base, retry_cap)
        self._lock = asyncio.Lock()
        self._conn: BluezConnection | None = None
        self._adapter: AdapterInfo | None = None
        self._en: EnAdvertisement | None = None
        self._bz: BluezoneAdvertisement | None = None
        base = f"/org/bluezoned/advertiser{os.getpid()}_{id(self)}"
        self._en_path = f"{base}/en"
        self._bz_path = f"{base}/bluezone"
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._next_rotation = 0.0
        self._unsubscribe: Callable[[], None] | None = None
        self.stats = AdvertiserStats()

    @property
    def adapter(self) -> str | None:
        """The ``hciN`` in use, once resolved."""
        return self._adapter.name if self._adapter else None

    @property
    def service_data(self) -> bytes | None:
        """The 20 bytes of 0xFD6F service data currently exported."""
        return self._en.service_data if self._en else None

    async def start(self) -> Stop:
        """Export, register and start rotating; return ``stop``. Rolls back and raises on failure.

        Raises BluetoothUnavailable (bus, BlueZ or adapter missing) or AdvertisementRejected.
        """
        async with self._lock:
            if self._task is not None:
                return self.stop
            try:
                self._conn = await BluezConnection.connect(call_timeout=self._call_timeout)
                self._adapter = await self._resolve()
                now = self._clock()
                self._en = EnAdvertisement(*self._payload(now))
                self._en.on_release = self._on_release
                self._conn.bus.export(self._en_path, self._en)
                if self._bluezone is not None:
                    self._bz = BluezoneAdvertisement(self._bluezone(now))
                    self._bz.on_release = self._on_release
                    self._conn.bus.export(self._bz_path, self._bz)
                self._unsubscribe = self._conn.subscribe(self._on_event)
                await self._register_all()
            except BaseException:
                await self._teardown()
                raise
            self._schedule_rotation()
            self._task = asyncio.create_task(self._supervise(), name="bluezoned-advertiser")
            return self.stop

    async def stop(self) -> None:
        """Stop rotating, unregister, unexport and disconnect; idempotent, never raises."""
        await super().stop()

    async def rotate(self) -> None:
        """Rotate now (unregister, new payload, register); raises like :meth:`start`."""
        async with self._lock:
            await self._rotate()

    # --- supervision ----------------------------------------------------------------------

    async def _supervise(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            if self.stats.registered:
                timeout = max(0.0, self._next_rotation - loop.time())
            else:
                timeout = self._backoff.next_delay()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._kick.wait()
            self._kick.clear()
            try:
                async with self._lock:
                    if self._task is None:
                        return
                    if not self.stats.registered:
                        await self._recover()
                    elif loop.time() >= self._next_rotation:
                        await self._rotate()
            except (BluetoothUnavailable, AdvertisementRejected) as exc:
                log = _log.warning if self._backoff.attempts <= 1 else _log.debug
                log("advertising interrupted, retrying: %s", exc)

    async def _recover(self) -> None:
        self._adapter = await self._resolve()
        self._set_payloads()
        await self._register_all()
        self.stats.recoveries += 1
        self._backoff.reset()
        self._schedule_rotation()
        _log.info("advertisement registered again on %s", self._adapter.name)

    async def _rotate(self) -> None:
        await self._unregister_all()
        self._set_payloads()
        await self._register_all()
        self.stats.rotations += 1
        self._schedule_rotation()

    def _on_event(self, event: BluezEvent, adapter: str) -> None:
        mine = self._adapter is not None and adapter == self._adapter.name
        if event is BluezEvent.BLUEZ_GONE or (
            mine and event in (BluezEvent.ADAPTER_REMOVED, BluezEvent.ADAPTER_UNPOWERED)
        ):
            self.stats.registered = False
            self._backoff.reset()
            self._kick.set()
        elif not self.stats.registered and event in (
            BluezEvent.BLUEZ_BACK,
            BluezEvent.ADAPTER_ADDED,
            BluezEvent.ADAPTER_POWERED,
            BluezEvent.ADVERTISING_ADDED,
        ):
            self._backoff.reset()
            self._kick.set()

    def _on_release(self) -> None:
        self.stats.releases += 1
        self.stats.registered = False
        self._kick.set()

    # --- D-Bus steps ----------------------------------------------------------------------

    async def _resolve(self) -> AdapterInfo:
        if self._conn is None:
            raise BluetoothUnavailable(BluetoothUnavailableReason.NO_BUS, "not started")
        info = await self._conn.resolve(self._spec)
        if not info.can_advertise:
            raise BluetoothUnavailable(
                BluetoothUnavailableReason.NO_ADAPTER, f"{info.name} has no LEAdvertisingManager1"
            )
        return info

    def _set_payloads(self) -> None:
        now = self._clock()
        if self._en is not None:
            self._en.set_payload(*self._payload(now))
        if self._bz is not None and self._bluezone is not None:
            self._bz.set_payload(self._bluezone(now))

    def _schedule_rotation(self) -> None:
        loop = asyncio.get_running_loop()
        self._next_rotation = self._rotation.next_rotation(loop.time(), self._rng)

    def _paths(self) -> list[str]:
        """Object paths of the advertisements exported now (EN, then Bluezone)."""
        return [
            path
            for path, obj in ((self._en_path, self._en), (self._bz_path, self._bz))
            if obj is not None
        ]

    async def _register_all(self) -> None:
        if self._conn is None or self._adapter is None:
            raise BluetoothUnavailable(BluetoothUnavailableReason.NO_BUS, "not started")
        for path in self._paths():
            try:
                await self._register(path)
            except DBusCallError as exc:
                self.stats.failures[exc.error_name] += 1
                await self._unregister_all()
                raise _registration_error(exc) from exc
        self.stats.registered = True
        self.stats.registrations += 1
        self.stats.active_instances = await self._active_instances()

    async def _active_instances(self) -> int | None:
        if self._conn is None or self._adapter is None:
            return None
        try:
            (value,) = await self._conn.bluez_call(
                self._adapter.path,
                defs.PROPERTIES_INTERFACE,
                defs.PROPERTIES_GET,
                "ss",
                [defs.ADVERTISING_MANAGER_INTERFACE, "ActiveInstances"],
            )
        except DBusCallError as exc:
            _log.debug("reading ActiveInstances: %s", exc)
            return None
        return int(getattr(value, "value", value))

    async def _register(self, path: str) -> None:
        conn = self._conn
        adapter = self._adapter
        if conn is None or adapter is None:
            return

        async def register() -> None:
            await conn.bluez_call(
                adapter.path,
                defs.ADVERTISING_MANAGER_INTERFACE,
                defs.REGISTER_ADVERTISEMENT,
                "oa{sv}",
                [path, {}],
            )

        try:
            await register()
        except DBusCallError as exc:
            if exc.error_name != defs.ERROR_ALREADY_EXISTS:
                raise
            # A registration whose reply we lost (timeout): replace it so the payload is ours.
            await self._unregister(path)
            await register()

    async def _unregister_all(self) -> None:
        self.stats.registered = False
        for path in self._paths():
            await self._unregister(path)

    async def _unregister(self, path: str) -> None:
        if self._conn is None or self._adapter is None or not self._conn.connected:
            return
        try:
            await self._conn.bluez_call(
                self._adapter.path,
                defs.ADVERTISING_MANAGER_INTERFACE,
                defs.UNREGISTER_ADVERTISEMENT,
                "o",
                [path],
            )
        except DBusCallError as exc:
            # DoesNotExist or BlueZ/adapter gone: either way nothing is registered any more.
            _log.debug("UnregisterAdvertisement %s: %s", path, exc)

    async def _teardown(self) -> None:
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._conn is not None:
            await self._unregister_all()  # _unregister already absorbs every D-Bus error
            for path in self._paths():
                self._conn.bus.unexport(path)
            self._conn.disconnect()
        self._conn = None
        self._en = None
        self._bz = None
        self.stats.registered = False


def _registration_error(exc: DBusCallError) -> AdvertisementRejected | BluetoothUnavailable:
    if exc.error_name in defs.PAYLOAD_REJECTED_ERRORS or exc.error_name in (
        defs.ERROR_NOT_PERMITTED,
        defs.ERROR_ALREADY_EXISTS,
    ):
        return AdvertisementRejected(exc.error_name, exc.text)
    return unavailable_from(exc)
