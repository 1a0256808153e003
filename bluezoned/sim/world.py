"""The simulated radio world: virtual phones sending GAEN beacons, heard by simulated adapters.

Pure parts -- the propagation model of exposure.md §10, the beacon schedule of a phone
(protocol.md: TEK per day, RPI per interval, RPI and address rotated together every 10-20 min)
and mobility -- take time and a seeded ``numpy`` generator as arguments and are unit-tested
without a bus. :class:`World` is the asyncio driver that feeds :meth:`SimulatedBluez.report`,
including the LEAdvertisement1s that clients registered on other simulated adapters.
"""

from __future__ import annotations

import asyncio
import math
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Final

import numpy as np
import numpy.typing as npt

from bluezoned.ble.payload import build_service_data
from bluezoned.ble.tasks import cancel_and_wait
from bluezoned.const import ADV_FLAGS_EN, EN_SERVICE_UUID
from bluezoned.exposure.keys import (
    Metadata,
    beacon_for,
    interval_number,
    needs_new_tek,
    new_tek,
    pack_metadata,
)
from bluezoned.models import Tek
from bluezoned.sim.bluez import RegisteredAdvertisement, Report, SimulatedBluez, nrpa

FloatArray = npt.NDArray[np.float64]

# --- Parameters (exposure.md §4.2, §10) -------------------------------------------------------
ADV_INTERVAL_S: Final = (0.200, 0.270)
"""GAEN advertising interval, uniform 200-270 ms (exposure.md §10, protocol.md §4)."""
ROTATION_S: Final = (600.0, 1200.0)
"""RPI and address rotate together every 10-20 minutes, uniformly (protocol.md §4.2)."""
TICK_S: Final = 0.05
"""Driver period in real seconds: fine enough for a 200 ms advert interval, cheap when idle."""
MIN_DISTANCE_M: Final = 0.1
"""The path-loss law is clamped below 10 cm (exposure.md §10 formula)."""
RECEIVER_FLOOR_DBM: Final = -100.0
"""Reports weaker than this are lost (receiver floor -100...-105 dBm, exposure.md §4.2)."""
PHONE_TX_POWER_RANGE: Final = (-30, 0)
"""Calibrated TX power written in the AEM metadata; Android's table spans roughly -36...-9 dBm."""


@dataclass(frozen=True, slots=True)
class PropagationParams:
    """The §10 model's knobs; defaults are the exposure.md §4.2 "value to use" column."""

    p0_dbm: float = -59.0
    """RSSI at 1 m for an average pair (iBeacon convention)."""
    tx_sigma_db: float = 8.0
    tx_clip_db: float = 15.0
    rx_sigma_db: float = 4.0
    exponent: tuple[float, float] = (0.8, 2.2)
    """Path-loss exponent n, uniform per link (indoor people; 2.0 outdoors)."""
    shadow_sigma_db: tuple[float, float] = (4.0, 8.0)
    shadow_corr_time_s: tuple[float, float] = (30.0, 120.0)
    rician_k_db: tuple[float, float] = (0.0, 6.0)
    """Rician K for line of sight under ``los_distance_m``; Rayleigh (K = 0) beyond."""
    los_distance_m: float = 2.0
    body_loss_db: tuple[tuple[float, float, float], ...] = (
        (0.4, 0.0, 0.0),
        (0.35, 3.0, 10.0),
        (0.25, 10.0, 20.0),
    )
    """(probability, low, high) per carriage: hand/table, front pocket, back pocket/bag."""
    indoor_body_scale: float = 0.6
    """Multipath fills in behind the body indoors (0.5-0.7)."""
    miss_probability: tuple[float, float] = (0.1, 0.4)
    """Extra random packet loss per link (scan duty, collisions)."""
    floor_dbm: float = RECEIVER_FLOOR_DBM


# --- Pure propagation --------------------------------------------------------------------------


def mean_rssi(
    p0: FloatArray | float, exponent: FloatArray | float, distance_m: FloatArray | float
) -> FloatArray:
    """Log-distance law ``p0 - 10 n log10(max(d, 0.1 m))``; works on scalars and arrays."""
    d = np.maximum(np.asarray(distance_m, dtype=np.float64), MIN_DISTANCE_M)
    return np.asarray(p0, dtype=np.float64) - 10.0 * np.asarray(exponent) * np.log10(d)


def ar1_step(
    x: FloatArray | float,
    dt: float,
    corr_time_s: FloatArray | float,
    sigma: FloatArray | float,
    rng: np.random.Generator,
) -> FloatArray:
    """One step of a stationary AR(1) (Gauss-Markov) process with sd ``sigma`` and correlation time."""
    rho = np.exp(-max(dt, 0.0) / np.asarray(corr_time_s, dtype=np.float64))
    noise = rng.standard_normal(np.shape(x))
    return np.asarray(rho * np.asarray(x) + np.sqrt(1.0 - rho**2) * np.asarray(sigma) * noise)


def fading_db(
    k_db: FloatArray | float, rng: np.random.Generator, size: int | None = None
) -> FloatArray:
    """Per-packet small-scale fading in dB: unit-mean-power Rician with K (dB); K = -inf dB is Rayleigh."""
    k = np.power(10.0, np.asarray(k_db, dtype=np.float64) / 10.0)
    shape = size if size is not None else np.shape(k)
    los = np.sqrt(k / (k + 1.0))
    scatter = np.sqrt(1.0 / (2.0 * (k + 1.0)))
    i = los + scatter * rng.standard_normal(shape)
    q = scatter * rng.standard_normal(shape)
    return np.asarray(10.0 * np.log10(np.maximum(i * i + q * q, 1e-12)))


@dataclass(slots=True)
class Link:
    """One transmitter-receiver pair's slowly varying state for the §10 model."""

    p0: float
    """P0_pair: RSSI at 1 m including both devices' offsets."""
    exponent: float
    shadow_sigma: float
    shadow_corr_time: float
    k_db: float
    body_loss: float
    miss_probability: float
    shadow: float = 0.0
    last_t: float | None = None

    @classmethod
    def draw(
        cls,
        params: PropagationParams,
        rng: np.random.Generator,
        *,
        tx_offset: float = 0.0,
        rx_offset: float = 0.0,
    ) -> Link:
        """A fresh link with per-episode parameters drawn from ``params``."""
        probabilities = np.array([p for p, _, _ in params.body_loss_db])
        choice = int(rng.choice(len(probabilities), p=probabilities / probabilities.sum()))
        _, low, high = params.body_loss_db[choice]
        sigma = float(rng.uniform(*params.shadow_sigma_db))
        return cls(
            p0=params.p0_dbm + tx_offset + rx_offset,
            exponent=float(rng.uniform(*params.exponent)),
            shadow_sigma=sigma,
            shadow_corr_time=float(rng.uniform(*params.shadow_corr_time_s)),
            k_db=float(rng.uniform(*params.rician_k_db)),
            body_loss=float(rng.uniform(low, high)) * params.indoor_body_scale,
            miss_probability=float(rng.uniform(*params.miss_probability)),
            shadow=float(rng.normal(0.0, sigma)),
        )

    def sample(
        self, t: float, distance_m: float, rng: np.random.Generator, params: PropagationParams
    ) -> int | None:
        """RSSI (whole dBm) of one packet at time ``t``, or None when it is missed or under the floor."""
        if self.last_t is not None:
            self.shadow = float(
                ar1_step(
                    self.shadow, t - self.last_t, self.shadow_corr_time, self.shadow_sigma, rng
                )
            )
        self.last_t = t
        if rng.random() < self.miss_probability:
            return None
        k_db = self.k_db if distance_m < params.los_distance_m else -math.inf
        rssi = (
            float(mean_rssi(self.p0, self.exponent, distance_m))
            - self.body_loss
            + self.shadow
            + float(fading_db(k_db, rng))
        )
        if rssi < params.floor_dbm:
            return None
        return round(rssi)


def draw_device_offsets(
    rng: np.random.Generator, params: PropagationParams, count: int
) -> tuple[FloatArray, FloatArray]:
    """Per-device (ΔTX, ΔRX) offsets: N(0, 8²) clipped to ±15 dB and N(0, 4²) (exposure.md §10)."""
    tx = np.clip(rng.normal(0.0, params.tx_sigma_db, count), -params.tx_clip_db, params.tx_clip_db)
    rx = rng.normal(0.0, params.rx_sigma_db, count)
    return tx, rx


# --- Pure beacon schedule ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Beacon:
    """What a phone sends during one rotation: its address and the 20 service-data bytes."""

    address: str
    rpi: bytes
    aem: bytes
    enin: int

    @property
    def service_data(self) -> bytes:
        """RPI then AEM, the 0xFD6F service data."""
        return build_service_data(self.rpi, self.aem)


class BeaconSchedule:
    """A phone's GAEN key schedule: TEK per UTC day, RPI and address rotated together every 10-20 min.

    Time only moves forward: :meth:`at` is called with non-decreasing unix times.
    """

    def __init__(
        self,
        rng: np.random.Generator,
        tx_power: int,
        *,
        rotation_s: tuple[float, float] = ROTATION_S,
    ) -> None:
        self._rng = rng
        self._metadata = pack_metadata(Metadata(tx_power=tx_power))
        self._rotation_s = rotation_s
        self.tx_power = tx_power
        self.teks: list[Tek] = []
        """Every key this phone used, oldest first (what it would upload after a diagnosis)."""
        self._current: Beacon | None = None
        self._rotate_at = -math.inf

    def at(self, unix_time: float) -> Beacon:
        """The beacon on air at ``unix_time``."""
        if self._current is None or unix_time >= self._rotate_at:
            self._rotate(unix_time)
        if self._current is None:  # for mypy: _rotate always sets it
            raise RuntimeError("beacon schedule did not rotate")
        return self._current

    def _rotate(self, unix_time: float) -> None:
        enin = interval_number(unix_time)
        if not self.teks or needs_new_tek(self.teks[-1], enin):
            self.teks.append(new_tek(self._rng.bytes(16), enin))
        rpi, aem = beacon_for(self.teks[-1], enin, self._metadata)
        self._current = Beacon(address=nrpa(self._rng.bytes(6)), rpi=rpi, aem=aem, enin=enin)
        self._rotate_at = unix_time + float(self._rng.uniform(*self._rotation_s))


# --- Pure mobility -------------------------------------------------------------------------------


class Walker:
    """Random-waypoint movement in a rectangular room; ``position(t)`` for non-decreasing ``t``."""

    def __init__(
        self,
        rng: np.random.Generator,
        room_m: tuple[float, float],
        *,
        speed_m_s: tuple[float, float] = (0.3, 1.2),
        pause_s: tuple[float, float] = (5.0, 120.0),
        start_t: float = 0.0,
        static: bool = False,
        at: tuple[float, float] | None = None,
    ) -> None:
        self._rng = rng
        self._room = room_m
        self._speed = speed_m_s
        self._pause = pause_s
        self._static = static
        self._from = at if at is not None else self._random_point()
        self._to = self._from
        self._t0 = start_t
        self._t1 = start_t
        self._pause_until = start_t + float(rng.uniform(*pause_s))

    def position(self, t: float) -> tuple[float, float]:
        """(x, y) in metres at time ``t``."""
        if self._static:
            return self._from
        while t >= self._pause_until:
            self._from = self._to
            self._to = self._random_point()
            distance = math.dist(self._from, self._to)
            self._t0 = self._pause_until
            self._t1 = self._t0 + distance / float(self._rng.uniform(*self._speed))
            self._pause_until = self._t1 + float(self._rng.uniform(*self._pause))
        if t >= self._t1:
            return self._to
        f = (t - self._t0) / (self._t1 - self._t0) if self._t1 > self._t0 else 1.0
        return (
            self._from[0] + f * (self._to[0] - self._from[0]),
            self._from[1] + f * (self._to[1] - self._from[1]),
        )

    def _random_point(self) -> tuple[float, float]:
        return (
            float(self._rng.uniform(0, self._room[0])),
            float(self._rng.uniform(0, self._room[1])),
        )


# --- The driver ----------------------------------------------------------------------------------


@dataclass(slots=True)
class Person:
    """A virtual phone: beacon schedule, radio offsets and movement."""

    name: str
    schedule: BeaconSchedule
    walker: Walker
    tx_offset: float
    next_adv: float = 0.0
    sent: int = 0


@dataclass(slots=True)
class _AdapterTx:
    advert: RegisteredAdvertisement
    next_adv: float


@dataclass(slots=True)
class WorldStats:
    """What the world pushed: adverts sent, reports delivered to BlueZ, packets lost."""

    adverts: int = 0
    delivered: int = 0
    missed: int = 0
    kept: int = 0
    """Reports bluetoothd kept (discovering/monitoring and filters passed)."""
    by_adapter: dict[str, int] = field(default_factory=dict)


class World:
    """Drives people and adapters on the event loop; ``await start()`` / ``await stop()`` or ``async with``."""

    def __init__(
        self,
        bluez: SimulatedBluez,
        *,
        devices: int = 10,
        seed: int = 0,
        speed: float = 1.0,
        room_m: tuple[float, float] = (10.0, 8.0),
        start_time: float | None = None,
        params: PropagationParams | None = None,
        adapter_positions: dict[str, tuple[float, float]] | None = None,
        static: bool = False,
        positions: Sequence[tuple[float, float]] | None = None,
    ) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self.bluez = bluez
        self.speed = speed
        self.params = params or PropagationParams()
        self.room = room_m
        self.stats = WorldStats()
        self._rng = np.random.default_rng(seed)
        self._start_unix = time.time() if start_time is None else start_time
        self._adapter_positions = dict(adapter_positions or {})
        if positions is not None:
            devices = len(positions)
        tx, _ = draw_device_offsets(self._rng, self.params, devices)
        self.people: list[Person] = []
        for i in range(devices):
            tx_power = int(self._rng.integers(PHONE_TX_POWER_RANGE[0], PHONE_TX_POWER_RANGE[1] + 1))
            person = Person(
                name=f"person-{i}",
                schedule=BeaconSchedule(np.random.default_rng(self._rng.integers(2**63)), tx_power),
                walker=Walker(
                    np.random.default_rng(self._rng.integers(2**63)),
                    room_m,
                    static=static or positions is not None,
                    at=positions[i] if positions is not None else None,
                ),
                tx_offset=float(tx[i]),
                next_adv=float(self._rng.uniform(*ADV_INTERVAL_S)),
            )
            self.people.append(person)
        self._rx_offsets: dict[str, float] = {}
        self._links: dict[tuple[str, str], Link] = {}
        self._adapter_tx: dict[tuple[str, str, str, str], _AdapterTx] = {}
        self._t = 0.0
        self._task: asyncio.Task[None] | None = None

    @property
    def now(self) -> float:
        """Simulated seconds since the world started."""
        return self._t

    @property
    def unix_time(self) -> float:
        """The simulated wall clock (drives the key schedules)."""
        return self._start_unix + self._t

    def distance(self, person: int, adapter: str) -> float:
        """Ground truth: metres between a person and an adapter now."""
        walker = self.people[person].walker
        return math.dist(walker.position(self._t), self.adapter_position(adapter))

    def adapter_position(self, name: str) -> tuple[float, float]:
        """Where an adapter sits: configured, else on a line 2 m apart across the room's middle."""
        if name not in self._adapter_positions:
            index = len(self._adapter_positions)
            self._adapter_positions[name] = (self.room[0] / 2 + 2.0 * index, self.room[1] / 2)
        return self._adapter_positions[name]

    async def start(self) -> None:
        """Start advancing time on the running loop."""
        if self._task is None:
            self._task = asyncio.create_task(self.run_until())

    async def stop(self) -> None:
        """Stop advancing time."""
        task, self._task = self._task, None
        await cancel_and_wait(task)

    async def __aenter__(self) -> World:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    def advance(self, dt: float) -> int:
        """Move simulated time on by ``dt`` seconds, sending every advert due; returns reports delivered."""
        end = self._t + dt
        receivers = [n for n in self.bluez.adapter_names if self.bluez.is_listening(n)]
        delivered = 0
        for person in self.people:
            while person.next_adv <= end:
                delivered += self._send_person(person, receivers)
                person.next_adv += float(self._rng.uniform(*ADV_INTERVAL_S))
        delivered += self._send_adapter_adverts(receivers, end)
        self._t = end
        return delivered

    async def run_until(self, until: float = math.inf, *, max_step_s: float = math.inf) -> None:
        """Advance at ``speed`` simulated seconds per real second until ``until`` simulated
        seconds, at most ``max_step_s`` per tick (under load the radio slows rather than jumps)."""
        loop = asyncio.get_running_loop()
        last = loop.time()
        while self._t < until:
            await asyncio.sleep(TICK_S)
            now = loop.time()
            self.advance(min((now - last) * self.speed, max_step_s, until - self._t))
            last = now

    def _send_person(self, person: Person, receivers: Iterable[str]) -> int:
        t = person.next_adv
        beacon = person.schedule.at(self._start_unix + t)
        self.stats.adverts += 1
        person.sent += 1
        pos = person.walker.position(t)
        delivered = 0
        for rx in receivers:
            rssi = self._sample(
                person.name, rx, t, math.dist(pos, self.adapter_position(rx)), person.tx_offset
            )
            if rssi is None:
                continue
            report = Report(
                address=beacon.address,
                rssi=rssi,
                service_data={EN_SERVICE_UUID: beacon.service_data},
                uuids=(EN_SERVICE_UUID,),
                flags=ADV_FLAGS_EN,
            )
            delivered += self._deliver(rx, report)
        return delivered

    def _send_adapter_adverts(self, receivers: list[str], end: float) -> int:
        current: dict[tuple[str, str, str, str], RegisteredAdvertisement] = {
            (a.adapter, a.owner, a.path, a.address): a for a in self.bluez.on_air()
        }
        for key in list(self._adapter_tx):
            if key not in current:
                del self._adapter_tx[key]
        delivered = 0
        for key, advert in current.items():
            tx = self._adapter_tx.get(key)
            if tx is None:
                tx = self._adapter_tx[key] = _AdapterTx(
                    advert, self._t + float(self._rng.uniform(*ADV_INTERVAL_S))
                )
            tx.advert = advert
            src = advert.adapter
            while tx.next_adv <= end:
                t = tx.next_adv
                self.stats.adverts += 1
                for rx in receivers:
                    if rx == src:
                        continue  # a controller does not hear its own advert
                    d = math.dist(self.adapter_position(src), self.adapter_position(rx))
                    rssi = self._sample(f"adapter:{src}", rx, t, d, 0.0)
                    if rssi is not None:
                        delivered += self._deliver(rx, advert.as_report(rssi))
                tx.next_adv += float(self._rng.uniform(*ADV_INTERVAL_S))
        return delivered

    def _sample(self, tx: str, rx: str, t: float, distance: float, tx_offset: float) -> int | None:
        link = self._links.get((tx, rx))
        if link is None:
            if rx not in self._rx_offsets:
                self._rx_offsets[rx] = float(self._rng.normal(0.0, self.params.rx_sigma_db))
            link = Link.draw(
                self.params, self._rng, tx_offset=tx_offset, rx_offset=self._rx_offsets[rx]
            )
            self._links[(tx, rx)] = link
        rssi = link.sample(t, distance, self._rng, self.params)
        if rssi is None:
            self.stats.missed += 1
        return rssi

    def _deliver(self, rx: str, report: Report) -> int:
        self.stats.delivered += 1
        self.stats.by_adapter[rx] = self.stats.by_adapter.get(rx, 0) + 1
        if self.bluez.report(rx, report):
            self.stats.kept += 1
        return 1
