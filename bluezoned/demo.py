"""The whole system on a simulated radio, for machines without Bluetooth: Alice meets Bob, Bob finds out.

Every part is the real one except the radio: a private system bus carries the simulated
BlueZ (``bluezoned.sim``) with two controllers, hci0 in Alice's device and hci1 in Bob's,
and a radio world of strangers' phones around them. Alice's device advertises her rotating
beacon through the BlueZ advertiser; Bob's device hears it through bleak, folds the
sightings into 10-s buckets and stores them. After her diagnosis Alice uploads her keys to
the health authority's server (code, token, certificate, publish); its export worker signs a
padded export; Bob's sync worker downloads it over HTTP, verifies, matches and alerts. A
forged copy slipped into the index once is refused.

Time is simulated and consistent: the radio runs at ``RADIO_SPEED`` simulated seconds per
real second, and the advertiser's key schedule, the scanner's sighting stamps and the
aggregator all read the world's clock, so the 20-minute meeting takes about 12 s. Then the
story jumps on the same timeline: the meeting at 17:30 UTC, the upload at 09:00 the next
day, the export at 12:00 and Bob's sync at 12:10, the latest such day ending before ``now``;
the authority's server and Bob's sync are given those times.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import logging
import os
import random
import zipfile
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final

from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bluezoned.alerts import AlertReport, raise_alerts
from bluezoned.authority.db import DB_FILENAME as AUTHORITY_DB
from bluezoned.authority.db import SqliteAuthorityStore
from bluezoned.authority.output import DirectoryOutput
from bluezoned.authority.publisher import ExportFile, ExportName
from bluezoned.authority.server import (
    CERTIFICATE_KEY_FILE,
    AuthorityConfig,
    AuthorityServer,
    certificate_kid,
    issue_code,
    load_or_create_certificate_key,
)
from bluezoned.ble.aggregator import Aggregator
from bluezoned.ble.bluez.advertiser import BluezAdvertiser
from bluezoned.ble.scanner import BleakSightingScanner, DropReason
from bluezoned.ble.supervision import RotationPolicy
from bluezoned.ble.tasks import cancel_and_wait
from bluezoned.config import AlertsConfig, Config, Source
from bluezoned.const import (
    BLUEZONE_COMPANY_ID,
    BLUEZONE_SERVICE_UUID,
    SECONDS_PER_DAY,
)
from bluezoned.errors import BluezonedError, InvalidInput
from bluezoned.exposure import keyfile, keys
from bluezoned.exposure.presets import risk_level_name
from bluezoned.matching import match_new_keys
from bluezoned.models import Tek
from bluezoned.sim.bluez import AdapterConfig, Report, SimulatedBluez
from bluezoned.sim.bus import async_private_system_bus, find_dbus_daemon
from bluezoned.sim.world import World
from bluezoned.store import DB_FILENAME, ExposureRecord, Store
from bluezoned.sync.client import HttpClient, open_session
from bluezoned.sync.upload import finish_upload, keys_to_upload, upload_keys
from bluezoned.sync.worker import ProgressEvent, SourceResult, sync_source

AUTHORITY_KEY_ID: Final = "452"
"""Vietnam's mobile country code, as GAEN key ids are (protocol.md §5.2)."""
AUTHORITY_KEY_VERSION: Final = "v1"
REGION: Final = "VN"
EXPORT_ROOT: Final = f"exposureKeyExport-{REGION}"
SOURCE_NAME: Final = "authority"
PUBLIC_KEY_FILE: Final = f"pubkey_{AUTHORITY_KEY_ID}-{AUTHORITY_KEY_VERSION}.pem"
SIGNING_KEY_FILE: Final = "signing-key.pem"

ALICE_ADAPTER: Final = AdapterConfig(name="hci0", address="00:1A:7D:DA:71:13")
BOB_ADAPTER: Final = AdapterConfig(name="hci1", address="00:1A:7D:DA:71:14")
BOB_POSITION: Final = (10.0, 6.0)
ALICE_POSITION: Final = (11.2, 6.3)
"""About 1.24 m from Bob."""
ROOM_M: Final = (24.0, 12.0)
STRANGER_POSITIONS: Final = ((12.5, 7.5), (7.0, 3.0), (19.0, 10.0), (23.0, 1.0))
"""Two near Bob (about 2.9 m and 4.2 m), two far (about 9.8 m and 14 m); they do not move."""
ALICE_TX_POWER: Final = -15
"""Android's ADVERTISE_TX_POWER_LOW, what most phones wrote into their metadata."""

RADIO_SPEED: Final = 100.0
"""Simulated seconds per real second while the radio runs."""
MAX_STEP_S: Final = 8.0
"""Simulated seconds per step at most: under load the radio slows down rather than jump.

A jump would deliver a burst of adverts that bleak stamps with one time, and the gap before it
would look to the exposure engine like a duty-cycled phone's scans.
"""
CONTACT_SECONDS: Final = 20 * 60
"""Alice stands next to Bob this long (simulated): past CWA's 15 minutes at close range."""
AFTER_CONTACT_SECONDS: Final = 60.0
"""Bob keeps listening to the strangers after Alice left (simulated)."""
ROTATION: Final = RotationPolicy(600 / RADIO_SPEED, 1200 / RADIO_SPEED)
"""GAEN's 10-20 min rotation in simulated time; the advertiser schedules on the real clock."""
BLUEZONE_REPORT_EVERY: Final = 0.5
"""Real seconds between reports of the legacy Bluezone phone near Bob."""
CONTACT_TIME_OF_DAY: Final = 17 * 3600 + 30 * 60
"""Alice and Bob meet at 17:30 UTC."""
UPLOAD_HOUR: Final = 9
"""Alice gets her result and uploads at 09:00 UTC the day after the meeting."""
EXPORT_DELAY: Final = 3 * 3600
"""The export worker publishes the upload's hour once it closed 2 h ago."""
SYNC_DELAY: Final = 10 * 60
UPLOAD_DAYS: Final = 14
START_TIMEOUT: Final = 15.0


class DemoUnavailable(BluezonedError):
    """The demo cannot run here (no dbus-daemon for the simulated radio)."""


@dataclass(frozen=True, slots=True)
class RadioCounts:
    """What the simulated radio carried and Bob's device made of it."""

    adverts_on_air: int
    reports_heard: int
    sightings: int
    bluezone_heard: int
    buckets_stored: int
    rpis_heard: int
    alice_rpis_sent: int
    alice_rpis_heard: int


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    """Numbers and paths of one run, for the caller and the tests."""

    workdir: Path
    bob_store: Path
    alice_store: Path
    authority_dir: Path
    public_key_path: Path
    export_path: Path
    forged_name: str
    radio: RadioCounts
    alice_keys: tuple[Tek, ...]
    uploaded: int
    published_real: int
    published_padding: int
    sync: SourceResult
    exposures: tuple[ExposureRecord, ...]
    alert: AlertReport | None

    @property
    def refusal(self) -> str:
        """Why Bob refused the forged file (empty when he did not)."""
        return next((f.reason or "" for f in self.sync.refused), "")

    @property
    def alice_exposures(self) -> tuple[ExposureRecord, ...]:
        """Bob's exposures to one of Alice's keys."""
        mine = {k.key_data for k in self.alice_keys}
        return tuple(e for e in self.exposures if e.key_data in mine)


def unavailable_reason() -> str | None:
    """Why the demo cannot run on this machine, or None when it can."""
    if find_dbus_daemon() is None:
        return (
            "dbus-daemon is not installed (Debian package 'dbus-daemon'): the demo's simulated"
            " radio runs on a private system bus; install it and run the demo again"
        )
    return None


def run_demo(workdir: Path, *, now: float, seed: int, echo: Callable[[str], None]) -> DemoOutcome:
    """Run the whole story under ``workdir``, narrating via ``echo``; DemoUnavailable without dbus-daemon."""
    reason = unavailable_reason()
    if reason is not None:
        raise DemoUnavailable(reason)
    if workdir.is_dir() and any(workdir.iterdir()):
        raise InvalidInput(f"{workdir} is not empty: the demo needs a new or empty directory")
    workdir.mkdir(parents=True, exist_ok=True)
    return asyncio.run(_story(workdir, now=now, seed=seed, echo=echo))


class _Clock:
    """A settable clock: the authority's view of simulated time after the meeting."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class _EchoHandler(logging.Handler):
    """Shows bluezoned's warnings (the alert's log line, refusals) inside the narration."""

    def __init__(self, echo: Callable[[str], None]) -> None:
        super().__init__(logging.WARNING)
        self._echo = echo

    def emit(self, record: logging.LogRecord) -> None:
        self._echo(f"  [log {record.levelname.lower()}] {record.getMessage()}")


@contextlib.contextmanager
def _narrated_logs(echo: Callable[[str], None]) -> Iterator[None]:
    logger = logging.getLogger("bluezoned")
    handler = _EchoHandler(echo)
    saved = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = saved


class _Phone:
    """Alice's device: her key schedule in her store, the (RPI, AEM) her advertiser sends."""

    def __init__(self, store: Store, rng: random.Random, tx_power: int) -> None:
        self.store = store
        self._rng = rng
        self._metadata = keys.pack_metadata(keys.Metadata(tx_power=tx_power))
        self.rpis_sent: set[bytes] = set()

    def key_at(self, now: float) -> Tek:
        """The newest unreported key valid at ``now``, made (and stored) when there is none."""
        enin = keys.interval_number(now)
        own = [k.tek for k in self.store.own_keys() if not k.reported]
        if own and not keys.needs_new_tek(own[-1], enin):
            return own[-1]
        tek = keys.new_tek(self._rng.randbytes(16), enin)
        self.store.add_own_key(tek, now)
        return tek

    def payload(self, now: float) -> tuple[bytes, bytes]:
        """The advertiser's payload provider."""
        rpi, aem = keys.beacon_for(self.key_at(now), keys.interval_number(now), self._metadata)
        self.rpis_sent.add(rpi)
        return rpi, aem


@dataclass(frozen=True, slots=True)
class _Authority:
    """The running authority server and what the demo needs of it."""

    server: AuthorityServer
    output: DirectoryOutput
    clock: _Clock
    url: str
    db_path: Path
    trusted: keyfile.TrustedKey


async def _story(
    workdir: Path, *, now: float, seed: int, echo: Callable[[str], None]
) -> DemoOutcome:
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation
    bob_path = workdir / "bob" / DB_FILENAME
    alice_path = workdir / "alice" / DB_FILENAME
    authority_dir = workdir / "authority"
    # The story ends with Bob's sync at or before ``now``, so status shows a finished past.
    sync_day = (now - UPLOAD_HOUR * 3600 - EXPORT_DELAY - SYNC_DELAY) // SECONDS_PER_DAY
    upload_at = float(sync_day * SECONDS_PER_DAY + UPLOAD_HOUR * 3600)
    contact_at = float((sync_day - 1) * SECONDS_PER_DAY + CONTACT_TIME_OF_DAY)
    symptom_day = _day(contact_at - SECONDS_PER_DAY)
    with _narrated_logs(echo), Store.open(bob_path) as bob, Store.open(alice_path) as alice_db:
        alice = _Phone(alice_db, rng, ALICE_TX_POWER)
        bob.add_own_key(
            keys.new_tek(rng.randbytes(16), keys.interval_number(contact_at)), contact_at
        )
        echo(f"Alice's device keeps its store in {alice_path}, Bob's in {bob_path}")
        radio = await _meeting(alice, bob, now=contact_at, seed=seed, echo=echo)
        async with _authority(authority_dir, rng, upload_at) as authority:
            uploaded = await _upload(authority, alice, upload_at, symptom_day, rng, echo)
            authority.clock.now = upload_at + EXPORT_DELAY
            files = await authority.server.export_once()
            if not files:
                raise BluezonedError("the export worker published nothing")
            export = files[0]
            echo(
                f"{_when(authority.clock.now)} the export worker signs {export.name}: "
                f"{sum(f.real_keys for f in files)} real key(s) + "
                f"{sum(f.padding_keys for f in files)} padding keys"
                " (Alice's key of today stays embargoed until it expires)"
            )
            forged = _forge(export)
            authority.output.write(forged.name, forged.data)
            await authority.server.export_once()  # the index now lists the forgery too
            echo(
                f"  a compromised mirror also lists {forged.name}: "
                "one key byte changed, the original signature kept"
            )
            sync, alert = await _bob_syncs(
                authority, bob, authority.clock.now + SYNC_DELAY, rng, echo
            )
            authority.output.delete(forged.name)  # served once
            await authority.server.export_once()
            export_path = authority.output.directory / export.name
        exposures = tuple(bob.exposures())
        alice_keys = tuple(k.tek for k in alice_db.own_keys())
    outcome = DemoOutcome(
        workdir=workdir,
        bob_store=bob_path,
        alice_store=alice_path,
        authority_dir=authority_dir,
        public_key_path=authority_dir / PUBLIC_KEY_FILE,
        export_path=export_path,
        forged_name=forged.name,
        radio=radio,
        alice_keys=alice_keys,
        uploaded=uploaded,
        published_real=sum(f.real_keys for f in files),
        published_padding=sum(f.padding_keys for f in files),
        sync=sync,
        exposures=exposures,
        alert=alert,
    )
    _narrate_exposures(exposures, alert, echo)
    echo(
        f"(the narrator knows: {len(outcome.alice_exposures)} of the {len(exposures)} "
        f"exposure(s) are Alice's; the {radio.rpis_heard - radio.alice_rpis_heard} strangers' "
        "RPIs Bob heard are in no export)"
    )
    return outcome


# --- the meeting, on the simulated radio ----------------------------------------------------


async def _meeting(
    alice: _Phone, bob: Store, *, now: float, seed: int, echo: Callable[[str], None]
) -> RadioCounts:
    """Alice next to Bob for CONTACT_SECONDS among strangers; Bob's sightings end in his store."""
    async with async_private_system_bus() as address:
        bluez = SimulatedBluez(address, adapters=[ALICE_ADAPTER, BOB_ADAPTER], seed=seed)
        await bluez.start()
        try:
            world = World(
                bluez,
                seed=seed,
                room_m=ROOM_M,
                start_time=now,
                speed=RADIO_SPEED,
                positions=STRANGER_POSITIONS,
                adapter_positions={
                    ALICE_ADAPTER.name: ALICE_POSITION,
                    BOB_ADAPTER.name: BOB_POSITION,
                },
            )
            echo(
                f"radio: a private system bus with the simulated BlueZ: {ALICE_ADAPTER.name} in "
                f"Alice's device, {BOB_ADAPTER.name} in Bob's; {len(STRANGER_POSITIONS)} strangers' "
                f"phones (2 near, 2 far) and a legacy Bluezone phone; {RADIO_SPEED:g}x speed"
            )
            counts = await _radio(world, bluez, alice, bob, seed, echo)
        finally:
            await bluez.stop()
    echo(
        f"  {counts.adverts_on_air} adverts on air; Bob's scanner got {counts.reports_heard} "
        f"reports through bleak: {counts.sightings} EN sightings, {counts.bluezone_heard} "
        "legacy Bluezone (counted, not stored)"
    )
    echo(
        f"  Bob's store: {counts.buckets_stored} ({bob.bucket_seconds}-s) buckets of "
        f"{counts.rpis_heard} RPIs, {counts.alice_rpis_heard} of them among the "
        f"{counts.alice_rpis_sent} Alice sent"
    )
    return counts


async def _radio(
    world: World,
    bluez: SimulatedBluez,
    alice: _Phone,
    bob: Store,
    seed: int,
    echo: Callable[[str], None],
) -> RadioCounts:
    def clock() -> float:
        return world.unix_time

    aggregator = Aggregator(bob.add_buckets)
    scanner = BleakSightingScanner(BOB_ADAPTER.name, mode="active", clock=clock)
    advertiser = BluezAdvertiser(
        ALICE_ADAPTER.name,
        alice.payload,
        rotation=ROTATION,
        clock=clock,
        rng=random.Random(seed),  # noqa: S311 - rotation jitter
    )
    async with asyncio.timeout(START_TIMEOUT):
        stop_scan = await scanner.start()
    tasks: list[asyncio.Task[None]] = []
    try:
        tasks.append(asyncio.create_task(_fold(scanner, aggregator, clock)))
        tasks.append(asyncio.create_task(_bluezone_phone(bluez, random.Random(seed))))  # noqa: S311
        async with asyncio.timeout(START_TIMEOUT):
            stop_adv = await advertiser.start()
        try:
            echo(
                f"{_when(world.unix_time)} Alice stands about 1.2 m from Bob for "
                f"{CONTACT_SECONDS // 60} min; her device advertises through BlueZ on "
                f"{ALICE_ADAPTER.name}, Bob's scans with bleak on {BOB_ADAPTER.name}"
            )
            await world.run_until(CONTACT_SECONDS, max_step_s=MAX_STEP_S)
        finally:
            await stop_adv()
        echo(
            f"{_when(world.unix_time)} Alice leaves (her beacon rotated "
            f"{advertiser.stats.rotations} time(s)); Bob's device keeps listening"
        )
        await world.run_until(CONTACT_SECONDS + AFTER_CONTACT_SECONDS, max_step_s=MAX_STEP_S)
    finally:
        for task in tasks:
            await cancel_and_wait(task)
        await stop_scan()
    aggregator.add_many(scanner.drain())
    aggregator.flush()
    buckets = bob.sighting_buckets()
    heard = {b.rpi for b in buckets}
    return RadioCounts(
        adverts_on_air=world.stats.adverts,
        reports_heard=scanner.stats.received,
        sightings=scanner.stats.accepted,
        bluezone_heard=scanner.stats.dropped[DropReason.BLUEZONE],
        buckets_stored=len(buckets),
        rpis_heard=len(heard),
        alice_rpis_sent=len(alice.rpis_sent),
        alice_rpis_heard=len(alice.rpis_sent & heard),
    )


async def _fold(
    scanner: BleakSightingScanner, aggregator: Aggregator, clock: Callable[[], float]
) -> None:
    """Bob's pipeline: queue -> aggregator -> store, closing buckets as simulated time passes."""
    while True:
        aggregator.add(await scanner.get())
        aggregator.add_many(scanner.drain())
        aggregator.tick(clock())


async def _bluezone_phone(bluez: SimulatedBluez, rng: random.Random) -> None:
    """A legacy Bluezone phone near Bob; the world only simulates GAEN phones, so report it here."""
    beacon_id = rng.randbytes(12)
    address = "5A:" + ":".join(f"{b:02X}" for b in rng.randbytes(5))
    while True:
        bluez.report(
            BOB_ADAPTER.name,
            Report(
                address=address,
                rssi=round(rng.gauss(-72, 4)),
                manufacturer_data={BLUEZONE_COMPANY_ID: beacon_id},
                uuids=(BLUEZONE_SERVICE_UUID,),
                flags=0x06,  # LE General Discoverable, no BR/EDR, as the Android app sent
            ),
        )
        await asyncio.sleep(BLUEZONE_REPORT_EVERY)


# --- the health authority ------------------------------------------------------------------


@contextlib.asynccontextmanager
async def _authority(directory: Path, rng: random.Random, now: float) -> AsyncIterator[_Authority]:
    """The authority's server on 127.0.0.1 (a free port), its database and exports under ``directory``."""
    signing_key, public_pem, certificate_key = _authority_keys(directory, rng)
    config = AuthorityConfig(
        region=REGION,
        issuer=f"bluezoned-{REGION}",
        signers=(keyfile.Signer(signing_key, AUTHORITY_KEY_ID, AUTHORITY_KEY_VERSION),),
        certificate_key=certificate_key,
        certificate_kid=certificate_kid(certificate_key),
        root=EXPORT_ROOT,
        period_seconds=3600,
        export_every_seconds=SECONDS_PER_DAY,  # the demo calls export_once itself
    )
    clock = _Clock(now)
    store = SqliteAuthorityStore(directory / AUTHORITY_DB)
    output = DirectoryOutput(directory / "exports" / EXPORT_ROOT)
    server = AuthorityServer(
        config=config,
        store=store,
        output=output,
        clock=clock,
        rng=random.Random(rng.randbytes(16)),  # noqa: S311 - padding of a simulation
    )
    runner = web.AppRunner(server.app())
    try:
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        trusted = keyfile.load_trusted_key(public_pem, AUTHORITY_KEY_ID, AUTHORITY_KEY_VERSION)
        yield _Authority(server, output, clock, url, store.path, trusted)
    finally:
        await runner.cleanup()
        store.close()


def _authority_keys(
    directory: Path, rng: random.Random
) -> tuple[ec.EllipticCurvePrivateKey, bytes, ec.EllipticCurvePrivateKey]:
    """The export signing key (seeded, mode 0600), its public PEM beside it, the certificate key."""
    directory.mkdir(parents=True, exist_ok=True)
    signing_key = ec.derive_private_key(
        int.from_bytes(rng.randbytes(32), "big") % (2**255) + 1, ec.SECP256R1()
    )
    _write_private(
        directory / SIGNING_KEY_FILE,
        signing_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ),
    )
    public_pem = signing_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    (directory / PUBLIC_KEY_FILE).write_bytes(public_pem)
    return signing_key, public_pem, load_or_create_certificate_key(directory / CERTIFICATE_KEY_FILE)


async def _upload(
    authority: _Authority,
    alice: _Phone,
    at: float,
    symptom_day: str,
    rng: random.Random,
    echo: Callable[[str], None],
) -> int:
    """Health staff issue a code; Alice consents and uploads with the real client flow."""
    alice.key_at(at)  # her device rolled to a new key at midnight
    staff = SqliteAuthorityStore(authority.db_path)  # the staff's tool, not the server's connection
    try:
        code = issue_code(staff, test_type="confirmed", symptom_date=symptom_day, now=at, rng=rng)
    finally:
        staff.close()
    echo(
        f"{_when(at)} Alice tests positive; health staff give her code {code} "
        f"(symptoms since {symptom_day}); asked for consent to share her keys, she says yes"
    )
    chosen = keys_to_upload(alice.store.own_keys(), at, UPLOAD_DAYS)
    result = await upload_keys(authority.url, code, chosen)
    finish_upload(alice.store, chosen, at, rng.randbytes(16))
    echo(
        f"  {authority.url}: code -> token -> certificate -> publish: {len(chosen)} key(s) sent, "
        f"{result.inserted} accepted ({result.test_type}); her device moves to a fresh key"
    )
    return len(chosen)


def _forge(export: ExportFile) -> ExportFile:
    """Change one key byte inside export.bin and re-zip it with the original signature."""
    with zipfile.ZipFile(io.BytesIO(export.data)) as original:
        export_bin = bytearray(original.read("export.bin"))
        export_sig = original.read("export.sig")
    export_bin[-20] ^= 0x01  # inside the last key's key_data
    forged = io.BytesIO()
    with zipfile.ZipFile(forged, "w", zipfile.ZIP_DEFLATED) as target:
        target.writestr("export.bin", bytes(export_bin))
        target.writestr("export.sig", export_sig)
    name = ExportName(export.start_timestamp, export.end_timestamp + 1, 2).name
    return replace(export, name=name, data=forged.getvalue())


def _write_private(path: Path, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)
    os.chmod(path, 0o600)


# --- Bob's sync, match and alert -----------------------------------------------------------


async def _bob_syncs(
    authority: _Authority,
    bob: Store,
    at: float,
    rng: random.Random,
    echo: Callable[[str], None],
) -> tuple[SourceResult, AlertReport | None]:
    """One run of the real sync worker against the authority's index, matcher and alerts injected."""
    source = Source(
        name=SOURCE_NAME,
        url=f"{authority.url}/exports/{EXPORT_ROOT}/index.txt",
        format="index",
        trusted_keys=(authority.trusted,),
        base_url=f"{authority.url}/exports/",
        region=REGION,
    )
    config = Config(sources=(source,), alerts=AlertsConfig(desktop_notifications=False))
    alerts: list[AlertReport] = []

    async def alert(store: Store, when: float) -> object:
        report = await raise_alerts(store, config.alerts, when)
        if report is not None:
            alerts.append(report)
        return report

    def progress(event: ProgressEvent) -> None:
        if event.name is not None:
            echo(f"  {event.name}: {event.status}")

    echo(f"{_when(at)} Bob's device syncs {source.url}")
    async with open_session(config.limits) as session:
        result = await sync_source(
            source,
            store=bob,
            client=HttpClient(session, config.limits, rng),
            config=config,
            now=at,
            rng=rng,
            match_new_keys=match_new_keys,
            alert=alert,
            progress=progress,
        )
    if result.error is not None:
        raise BluezonedError(f"Bob's sync failed: {result.error}")
    echo(
        f"  {result.count('stored')} file(s) verified and stored ({result.new_keys} keys), "
        f"{len(result.refused)} refused with nothing stored; {result.exposures} exposure(s) found"
    )
    return result, alerts[-1] if alerts else None


def _narrate_exposures(
    exposures: Sequence[ExposureRecord], alert: AlertReport | None, echo: Callable[[str], None]
) -> None:
    for e in exposures:
        if e.risk_level is None:
            risk = "risk not scored by this matcher"
        else:
            name = risk_level_name(e.risk_level)
            risk = f"CWA v2 risk {name} (normalized time {e.risk_score or 0:.1f})"
        echo(
            f"EXPOSURE: a diagnosed key heard {_when(e.start)}..{_when(e.end)} in "
            f"{e.sightings} sightings, {e.duration_seconds / 60:.1f} min observed, "
            f"min attenuation {e.min_attenuation} dB, {risk}"
        )
        if e.minutes_close is not None and e.distance_m is not None:
            decision = "a close contact" if e.close_contact else "not a close contact"
            echo(
                f"  the engine: about {e.minutes_close:.0f} min within {e.distance_m:g} m, "
                f"{decision} by its rule of {e.threshold_minutes or 0:g} min"
            )
    if not exposures:
        echo("no exposure found among Bob's sightings")
    if alert is not None:
        echo(f"Bob's device raised the alert: {alert.exposures} exposure(s), event {alert.event}")


def _when(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%d %H:%M")


def _day(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).date().isoformat()
