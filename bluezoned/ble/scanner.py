"""The bleak scanner: every EN beacon heard on one adapter becomes a Sighting on a bounded queue.

Set up per linux-ble.md §3-§7: the adapter pinned explicitly (name or MAC, resolved to
``hciN`` at every (re)start); active scans with ``DuplicateData`` and an RSSI floor so that
bluetoothd signals every report with a fresh RSSI; passive scans through an advertisement
monitor (or-patterns on the 0xFD6F service data and the 0x4E56 UUID) where the adapter offers
``AdvertisementMonitorManager1``. The detection callback never raises: it converts, counts
and enqueues. A supervisor restarts the scan when it goes quiet, when the adapter disappears
or is powered off, and when bluetoothd restarts, along a back-off ladder.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import enum
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Literal

from bleak import BleakScanner
from bleak.args.bluez import BlueZScannerArgs, OrPattern
from bleak.assigned_numbers import AdvertisementDataType
from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData
from bleak.exc import BleakDBusError, BleakError

from bluezoned.ble.bluez.adapter import (
    AdapterInfo,
    BluezConnection,
    BluezEvent,
    DBusCallError,
    check_adapter_spec,
    unavailable_from,
)
from bluezoned.ble.interfaces import Stop
from bluezoned.ble.payload import BluezoneBeacon, EnBeacon, Rejection, RejectReason, decode_beacon
from bluezoned.ble.supervision import Backoff, Watchdog
from bluezoned.ble.tasks import Supervised
from bluezoned.const import (
    BLUEZONE_SERVICE_UUID,
    BLUEZONE_SERVICE_UUID16,
    DBUS_CALL_TIMEOUT,
    EN_SERVICE_UUID,
    EN_SERVICE_UUID16,
    RETRY_BASE_SECONDS,
    RETRY_MAX_SECONDS,
    RSSI_MAX,
    RSSI_MIN,
    SCAN_RSSI_FLOOR,
    SCANNER_START_TIMEOUT,
    SCANNER_STOP_TIMEOUT,
    SCANNER_WATCHDOG_SECONDS,
    SIGHTING_QUEUE_SIZE,
)
from bluezoned.errors import BluetoothUnavailable, BluetoothUnavailableReason
from bluezoned.models import Sighting

_log = logging.getLogger(__name__)

ScanMode = Literal["auto", "active", "passive"]
"""``auto``: passive where the adapter offers advertisement monitors, else active."""

SCAN_SERVICE_UUIDS: Final = [EN_SERVICE_UUID, BLUEZONE_SERVICE_UUID]
OR_PATTERNS: Final = [
    OrPattern(
        0, AdvertisementDataType.SERVICE_DATA_UUID16, EN_SERVICE_UUID16.to_bytes(2, "little")
    ),
    OrPattern(
        0,
        AdvertisementDataType.COMPLETE_LIST_SERVICE_UUID16,
        BLUEZONE_SERVICE_UUID16.to_bytes(2, "little"),
    ),
]
"""GAEN adverts from Android and BlueZ carry no Flags, so match the UUIDs (linux-ble.md §4)."""


class DropReason(enum.Enum):
    """Why a report that reached the callback produced no sighting, besides decode rejections."""

    NO_RSSI = "report without a current RSSI (discovery stopped or cached property change)"
    BAD_RSSI = "RSSI outside the valid range"
    BLUEZONE = "legacy Bluezone beacon (not an EN sighting)"
    CALLBACK_ERROR = "unexpected error in the detection callback"


@dataclass(slots=True)
class ScannerStats:
    """Counters of the scanner; memory bounded by the enums."""

    received: int = 0
    accepted: int = 0
    rejected: collections.Counter[RejectReason] = field(default_factory=collections.Counter)
    dropped: collections.Counter[DropReason] = field(default_factory=collections.Counter)
    overflow: int = 0
    restarts: int = 0
    watchdog_restarts: int = 0
    start_failures: collections.Counter[str] = field(default_factory=collections.Counter)
    scanning: bool = False
    mode: str = ""
    adapter: str = ""


def convert_advert(
    *,
    t: float,
    service_data: Mapping[str, object],
    manufacturer_data: Mapping[int, object],
    service_uuids: Sequence[str],
    rssi: object,
    address: str | None,
    adapter: str | None,
) -> Sighting | BluezoneBeacon | Rejection | DropReason:
    """One report's parts -> a Sighting, a Bluezone beacon, a decode Rejection or a DropReason."""
    if not isinstance(rssi, int) or isinstance(rssi, bool) or not RSSI_MIN <= rssi <= RSSI_MAX:
        return DropReason.BAD_RSSI
    result = decode_beacon(service_data, manufacturer_data, service_uuids)
    if isinstance(result, EnBeacon):
        return Sighting(t, result.rpi, result.aem, rssi, address, adapter)
    return result


class BleakSightingScanner(Supervised):
    """Scans one adapter with bleak and queues Sightings; see the module docstring."""

    def __init__(
        self,
        adapter: str,
        *,
        mode: ScanMode = "auto",
        queue_size: int = SIGHTING_QUEUE_SIZE,
        clock: Callable[[], float] = time.time,
        watchdog_seconds: float = SCANNER_WATCHDOG_SECONDS,
        start_timeout: float = SCANNER_START_TIMEOUT,
        stop_timeout: float = SCANNER_STOP_TIMEOUT,
        call_timeout: float = DBUS_CALL_TIMEOUT,
        retry_base: float = RETRY_BASE_SECONDS,
        retry_cap: float = RETRY_MAX_SECONDS,
        start_attempts: int = 3,
    ) -> None:
        self._spec = check_adapter_spec(adapter)
        self._mode: ScanMode = mode
        self._queue: asyncio.Queue[Sighting] = asyncio.Queue(maxsize=queue_size)
        self._clock = clock
        self._watchdog = Watchdog(watchdog_seconds)
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._call_timeout = call_timeout
        self._backoff = Backoff(retry_base, retry_cap)
        self._start_attempts = max(1, start_attempts)
        self._lock = asyncio.Lock()
        self._conn: BluezConnection | None = None
        self._scanner: BleakScanner | None = None
        self._generation = 0
        self._adapter: AdapterInfo | None = None
        self._task: asyncio.Task[None] | None = None
        self._kick = asyncio.Event()
        self._trouble: str | None = None
        self._unsubscribe: Callable[[], None] | None = None
        self.stats = ScannerStats()

    @property
    def queue(self) -> asyncio.Queue[Sighting]:
        """The bounded queue of sightings (consumer side)."""
        return self._queue

    async def get(self) -> Sighting:
        """Wait for the next sighting."""
        return await self._queue.get()

    def drain(self, limit: int = 10_000) -> list[Sighting]:
        """Take up to ``limit`` queued sightings without waiting."""
        out: list[Sighting] = []
        queue = self._queue
        while len(out) < limit and not queue.empty():
            out.append(queue.get_nowait())
        return out

    async def start(self) -> Stop:
        """Start scanning and supervising; return ``stop``.

        Tries ``start_attempts`` times with back-off (a stale InProgress or a just-added adapter
        clears quickly), then raises BluetoothUnavailable with everything rolled back.
        """
        async with self._lock:
            if self._task is not None:
                return self.stop
            try:
                self._conn = await BluezConnection.connect(call_timeout=self._call_timeout)
                self._unsubscribe = self._conn.subscribe(self._on_event)
                for attempt in range(self._start_attempts):
                    try:
                        await self._start_scan()
                        break
                    except BluetoothUnavailable as exc:
                        if attempt + 1 == self._start_attempts:
                            raise
                        _log.info("scan start attempt %d failed: %s", attempt + 1, exc)
                        await self._stop_scan()
                        await asyncio.sleep(self._backoff.next_delay())
                self._backoff.reset()
            except BaseException:
                await self._teardown()
                raise
            self._task = asyncio.create_task(self._supervise(), name="bluezoned-scanner")
            return self.stop

    async def stop(self) -> None:
        """Stop scanning and supervision; idempotent, never raises."""
        await super().stop()

    # --- the detection callback -----------------------------------------------------------

    def _callback(self, generation: int) -> Callable[[BLEDevice, AdvertisementData], None]:
        def on_advert(device: BLEDevice, adv: AdvertisementData) -> None:
            # A scanner replaced after a failed stop may still be registered in bleak's
            # manager (linux-ble.md §7.3); its reports would be duplicates.
            if generation != self._generation:
                return
            self._on_advert(device, adv)

        return on_advert

    def _on_advert(self, device: BLEDevice, adv: AdvertisementData) -> None:
        stats = self.stats
        stats.received += 1
        try:
            self._watchdog.feed(time.monotonic())
            props = adv.platform_data[1] if len(adv.platform_data) > 1 else None
            if not isinstance(props, Mapping) or "RSSI" not in props:
                stats.dropped[DropReason.NO_RSSI] += 1
                return
            result = convert_advert(
                t=self._clock(),
                service_data=adv.service_data,
                manufacturer_data=adv.manufacturer_data,
                service_uuids=adv.service_uuids,
                rssi=adv.rssi,
                address=device.address,
                adapter=self.stats.adapter or None,
            )
            if isinstance(result, Sighting):
                try:
                    self._queue.put_nowait(result)
                except asyncio.QueueFull:
                    stats.overflow += 1
                else:
                    stats.accepted += 1
            elif isinstance(result, Rejection):
                stats.rejected[result.reason] += 1
            elif isinstance(result, BluezoneBeacon):
                stats.dropped[DropReason.BLUEZONE] += 1
            else:
                stats.dropped[result] += 1
        except Exception:  # noqa: BLE001 - bleak would swallow it and lose the callback (§7.5)
            stats.dropped[DropReason.CALLBACK_ERROR] += 1

    # --- supervision ----------------------------------------------------------------------

    async def _supervise(self) -> None:
        while True:
            if self.stats.scanning:
                timeout = self._watchdog.remaining(time.monotonic())
            else:
                timeout = self._backoff.next_delay()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(timeout):
                    await self._kick.wait()
            self._kick.clear()
            async with self._lock:
                if self._task is None:
                    return
                watchdog = self.stats.scanning and self._watchdog.expired(time.monotonic())
                if self.stats.scanning and not watchdog and self._trouble is None:
                    continue
                reason = self._trouble or ("silence" if watchdog else "retry")
                self._trouble = None
                if watchdog:
                    self.stats.watchdog_restarts += 1
                _log.info("restarting the scan on %s: %s", self._spec, reason)
                await self._stop_scan()
                try:
                    await self._start_scan()
                except BluetoothUnavailable as exc:
                    # warn once per outage; the back-off ladder may retry for hours
                    log = _log.warning if self._backoff.attempts <= 1 else _log.debug
                    log("scan start failed, retrying: %s", exc)
                else:
                    self.stats.restarts += 1
                    self._backoff.reset()

    def _on_event(self, event: BluezEvent, adapter: str) -> None:
        mine = self._adapter is not None and adapter == self._adapter.name
        if event is BluezEvent.BLUEZ_GONE or (
            mine and event in (BluezEvent.ADAPTER_REMOVED, BluezEvent.ADAPTER_UNPOWERED)
        ):
            self._trouble = event.value
            self.stats.scanning = False
            self._backoff.reset()
            self._kick.set()
        elif not self.stats.scanning and event in (
            BluezEvent.BLUEZ_BACK,
            BluezEvent.ADAPTER_ADDED,
            BluezEvent.ADAPTER_POWERED,
        ):
            self._backoff.reset()
            self._kick.set()

    # --- start and stop steps -------------------------------------------------------------

    async def _start_scan(self) -> None:
        conn = self._conn
        if conn is None:
            raise BluetoothUnavailable(BluetoothUnavailableReason.NO_BUS, "not started")
        try:
            async with asyncio.timeout(self._start_timeout):
                info = await conn.resolve(self._spec)
                if not info.powered:
                    raise BluetoothUnavailable(BluetoothUnavailableReason.NOT_POWERED, info.name)
                passive = self._mode == "passive" or (self._mode == "auto" and info.passive_scan)
                self._generation += 1
                scanner = BleakScanner(
                    self._callback(self._generation),
                    service_uuids=None if passive else list(SCAN_SERVICE_UUIDS),
                    scanning_mode="passive" if passive else "active",
                    bluez=_bluez_args(info.name, passive=passive),
                )
                self._adapter = info
                self.stats.adapter = info.name
                await scanner.start()
        except TimeoutError as exc:
            self.stats.start_failures["timeout"] += 1
            raise BluetoothUnavailable(BluetoothUnavailableReason.TIMEOUT, "starting scan") from exc
        except BleakDBusError as exc:
            self.stats.start_failures[exc.dbus_error] += 1
            raise unavailable_from(
                DBusCallError(exc.dbus_error, exc.dbus_error_details or "")
            ) from exc
        except BleakError as exc:
            self.stats.start_failures["bleak"] += 1
            raise BluetoothUnavailable(BluetoothUnavailableReason.NO_ADAPTER, str(exc)) from exc
        except BluetoothUnavailable as exc:
            self.stats.start_failures[exc.reason.name] += 1
            raise
        self._scanner = scanner
        self._watchdog.feed(time.monotonic())
        self.stats.scanning = True
        self.stats.mode = "passive" if passive else "active"

    async def _stop_scan(self) -> None:
        scanner, self._scanner = self._scanner, None
        self.stats.scanning = False
        self._generation += 1
        if scanner is None:
            return
        try:
            async with asyncio.timeout(self._stop_timeout):
                await scanner.stop()
        except Exception as exc:  # noqa: BLE001 - after adapter loss bleak raises "No discovery started"
            _log.debug("stopping the old scan: %r", exc)

    async def _teardown(self) -> None:
        await self._stop_scan()
        if self._unsubscribe is not None:
            self._unsubscribe()
            self._unsubscribe = None
        if self._conn is not None:
            self._conn.disconnect()
            self._conn = None


def _bluez_args(adapter: str, *, passive: bool) -> BlueZScannerArgs:
    if passive:
        return {"adapter": adapter, "or_patterns": list(OR_PATTERNS)}
    return {
        "adapter": adapter,
        "filters": {"DuplicateData": True, "RSSI": SCAN_RSSI_FLOOR},
    }
