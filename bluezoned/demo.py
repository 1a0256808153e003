"""End-to-end run of the foundation on simulated adverts: two phones meet, one is diagnosed.

Wires the pure parts (key schedule, beacon codec, key files) to real SQLite stores the way
the daemon will: Alice and Carol broadcast EN beacons, a legacy Bluezone phone broadcasts
its own, Bob's scanner decodes every advert it hears into his store; Alice tests positive,
the health authority signs an export of her keys; Bob verifies it, stores the keys and
finds her identifiers among his sightings. A tampered copy of the file is refused.

Randomness comes from one seeded generator, so a seed always gives the same story.
Matching here is the plain identifier lookup with the ±2 h window; turning RSSI series
into distances and risk is the exposure engine's job.
"""

from __future__ import annotations

import io
import math
import random
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bluezoned.ble import payload
from bluezoned.const import MATCH_TOLERANCE_INTERVALS, RETENTION_DAYS, SECONDS_PER_DAY
from bluezoned.errors import BluezonedError, KeyFileRejected
from bluezoned.exposure import keyfile, keys
from bluezoned.models import DiagnosisKey, ReportType, Sighting, SightingBucket, Tek
from bluezoned.store import DB_FILENAME, ExposureRecord, ProcessedFile, Store

AUTHORITY_KEY_ID: Final = "452"
"""Vietnam's mobile country code, as GAEN key ids are (protocol.md §5.2)."""
AUTHORITY_KEY_VERSION: Final = "v1"
REGION: Final = "VN"
TX_POWER_DBM: Final = -15
"""Android's ADVERTISE_TX_POWER_LOW, what most phones wrote into their metadata."""
RSSI_AT_1M: Final = -65.0
SCAN_HEAR_PROBABILITY: Final = 0.7
"""Share of adverts a scanner receives: the rest collide or fall between channel hops."""
WRITE_BATCH: Final = 2_000
LEGACY_SLOT_SECONDS: Final = 900


@dataclass(frozen=True, slots=True)
class Encounter:
    """One simulated transmitter near Bob: from ``start_offset`` seconds for ``seconds``, at ``metres``."""

    name: str
    start_offset: float
    seconds: float
    metres: float
    legacy_bluezone: bool = False


ENCOUNTERS: Final = (
    Encounter("alice", start_offset=0, seconds=25 * 60, metres=1.5),
    Encounter("carol", start_offset=10 * 60, seconds=40 * 60, metres=8.0),
    Encounter(
        "dung (Bluezone app)",
        start_offset=5 * 60,
        seconds=15 * 60,
        metres=3.0,
        legacy_bluezone=True,
    ),
)


@dataclass(frozen=True, slots=True)
class DemoMatch:
    """What Bob's store says about one diagnosed key he has seen."""

    key: DiagnosisKey
    first_seen: float
    last_seen: float
    sightings: int
    rssi_mean: float
    min_attenuation: int | None


@dataclass(frozen=True, slots=True)
class DemoOutcome:
    """Numbers of the run, for the caller and the tests."""

    workdir: Path
    adverts_sent: int
    adverts_heard: int
    stats: payload.DecodeStats
    sightings_stored: int
    buckets: int
    export_path: Path
    public_key_path: Path
    keys_published: int
    matches: tuple[DemoMatch, ...]
    tampered_refusal: str


class _Transmitter:
    """A simulated phone: its own key per UTC day, an RPI per interval, adverts as bytes."""

    def __init__(self, rng: random.Random, encounter: Encounter) -> None:
        self.encounter = encounter
        self._rng = rng
        self._day_keys: dict[int, Tek] = {}
        self._legacy_ids: dict[int, bytes] = {}
        self._metadata = keys.pack_metadata(keys.Metadata(tx_power=TX_POWER_DBM))

    @property
    def teks(self) -> list[Tek]:
        """Every key this phone has used, oldest first."""
        return [self._day_keys[day] for day in sorted(self._day_keys)]

    def advert(self, t: float) -> bytes:
        """The advertising data this phone sends at time ``t``."""
        if self.encounter.legacy_bluezone:
            # Only the layout matters here: a fresh 12-byte id per 15-min slot (protocol.md §9.3).
            slot = int(t // LEGACY_SLOT_SECONDS)
            beacon_id = self._legacy_ids.setdefault(slot, self._rng.randbytes(12))
            return payload.build_bluezone_advertisement(beacon_id)
        enin = keys.interval_number(t)
        day = keys.aligned_rolling_start(enin)
        if day not in self._day_keys:
            self._day_keys[day] = keys.new_tek(self._rng.randbytes(16), day)
        rpi, aem = keys.beacon_for(self._day_keys[day], enin, self._metadata)
        return payload.build_advertisement(rpi, aem, flags=False)


def run_demo(workdir: Path, *, now: float, seed: int, echo: Callable[[str], None]) -> DemoOutcome:
    """Run the whole story under ``workdir`` (stores, export, public key) and narrate it via ``echo``."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible simulation, not key material
    workdir.mkdir(parents=True, exist_ok=True)
    session_start = now - 2 * 3600
    transmitters = [_Transmitter(rng, encounter) for encounter in ENCOUNTERS]

    with Store.open(workdir / "bob" / DB_FILENAME) as bob:
        bob.add_own_key(
            keys.new_tek(rng.randbytes(16), keys.interval_number(session_start)), session_start
        )
        echo(f"Bob's store: {bob.path}")
        stats = payload.DecodeStats()
        sent, heard, stored = _broadcast(rng, transmitters, session_start, bob, stats)
        echo(
            f"{sent} adverts on the air, Bob heard {heard}: {stats.en_beacons} EN beacons, "
            f"{stats.bluezone_beacons} legacy Bluezone, {stats.malformed} malformed (counted, dropped)"
        )
        buckets = len(bob.sighting_buckets())
        echo(f"stored {stored} sightings as {buckets} ({bob.bucket_seconds}-s) buckets")

        alice = transmitters[0]
        export_path, public_key_path, published = _authority_publishes(
            rng, workdir, alice.teks, now
        )
        echo(f"Alice tests positive; the authority signs {published} key(s) into {export_path}")

        archive = export_path.read_bytes()
        trusted = [
            keyfile.load_trusted_key(
                public_key_path.read_bytes(), AUTHORITY_KEY_ID, AUTHORITY_KEY_VERSION
            )
        ]
        refusal = _forgery_refusal(archive, trusted)
        echo(f"a forged copy (one key byte changed, original signature kept) is refused: {refusal}")

        verified = keyfile.read_export_archive(archive, trusted)
        new_keys = bob.add_key_file(
            ProcessedFile(
                sha256=bytes.fromhex(verified.sha256),
                source="demo-authority",
                name=export_path.name,
                size=len(archive),
                keys=len(verified.export.keys),
                processed_at=now,
            ),
            verified.export.keys,
        )
        echo(
            f"Bob verified the file (signer {verified.signer.describe()}) and stored {new_keys} key(s)"
        )
        matches = _match(bob, verified.export.keys, now)
        for match in matches:
            bob.add_exposure(
                ExposureRecord(
                    key_data=match.key.key_data,
                    rolling_start=match.key.rolling_start,
                    start=match.first_seen,
                    end=match.last_seen,
                    duration_seconds=match.last_seen - match.first_seen,
                    sightings=match.sightings,
                    created=now,
                    min_attenuation=match.min_attenuation,
                )
            )
            echo(
                f"MATCH: a diagnosed key seen {match.sightings} times over "
                f"{(match.last_seen - match.first_seen) / 60:.1f} min, mean RSSI {match.rssi_mean:.1f} dBm, "
                f"min attenuation {match.min_attenuation} dB"
            )
        if not matches:
            echo("no diagnosed key among Bob's sightings")
    return DemoOutcome(
        workdir=workdir,
        adverts_sent=sent,
        adverts_heard=heard,
        stats=stats,
        sightings_stored=stored,
        buckets=buckets,
        export_path=export_path,
        public_key_path=public_key_path,
        keys_published=published,
        matches=tuple(matches),
        tampered_refusal=refusal,
    )


def _broadcast(
    rng: random.Random,
    transmitters: list[_Transmitter],
    session_start: float,
    store: Store,
    stats: payload.DecodeStats,
) -> tuple[int, int, int]:
    """Every transmitter advertises every 200-270 ms; Bob decodes what he hears into his store."""
    events: list[tuple[float, _Transmitter]] = []
    for transmitter in transmitters:
        encounter = transmitter.encounter
        t = session_start + encounter.start_offset
        while t < session_start + encounter.start_offset + encounter.seconds:
            events.append((t, transmitter))
            t += rng.uniform(0.200, 0.270)
    events.sort(key=lambda event: event[0])
    batch: list[Sighting] = []
    heard = stored = 0
    for index, (t, transmitter) in enumerate(events):
        if rng.random() > SCAN_HEAR_PROBABILITY:
            continue
        heard += 1
        data = transmitter.advert(t)
        if index % 997 == 0:  # a neighbour's broken firmware: truncated service data
            data = data[:-3]
        beacon = stats.record(payload.decode_advertisement(data))
        if isinstance(beacon, payload.EnBeacon):
            batch.append(
                Sighting(t, beacon.rpi, beacon.aem, _rssi(rng, transmitter.encounter.metres))
            )
        if len(batch) >= WRITE_BATCH:
            store.record_sightings(batch)
            stored += len(batch)
            batch.clear()
    store.record_sightings(batch)
    stored += len(batch)
    return len(events), heard, stored


def _rssi(rng: random.Random, metres: float) -> int:
    """Log-distance path loss (exponent 2) with 4 dB shadowing, clamped to what radios report."""
    value = RSSI_AT_1M - 20 * math.log10(metres) + rng.gauss(0, 4)
    return max(-127, min(126, round(value)))


def _authority_publishes(
    rng: random.Random, workdir: Path, teks: list[Tek], now: float
) -> tuple[Path, Path, int]:
    """Sign an export of ``teks`` as the health authority would, next to its public key."""
    authority = workdir / "authority"
    authority.mkdir(exist_ok=True)
    private_value = int.from_bytes(rng.randbytes(32), "big") % (2**255) + 1
    private_key = ec.derive_private_key(private_value, ec.SECP256R1())
    public_key_path = authority / f"pubkey_{AUTHORITY_KEY_ID}-{AUTHORITY_KEY_VERSION}.pem"
    public_key_path.write_bytes(
        private_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    diagnosis_keys = [
        DiagnosisKey(
            tek.key_data,
            tek.rolling_start,
            tek.rolling_period,
            transmission_risk_level=None,
            report_type=ReportType.CONFIRMED_TEST,
            days_since_onset=1,
        )
        for tek in teks
    ]
    start = int(now // 3600 * 3600)
    archive = keyfile.write_export_archive(
        diagnosis_keys,
        region=REGION,
        start_timestamp=start - 3600,
        end_timestamp=start,
        signers=[keyfile.Signer(private_key, AUTHORITY_KEY_ID, AUTHORITY_KEY_VERSION)],
    )
    export_path = authority / f"{start - 3600}-{start}-00001.zip"
    export_path.write_bytes(archive)
    return export_path, public_key_path, len(diagnosis_keys)


def _forgery_refusal(archive: bytes, trusted: list[keyfile.TrustedKey]) -> str:
    """Change one byte of the last key inside export.bin, re-zip with the old signature, verify."""
    with zipfile.ZipFile(io.BytesIO(archive)) as original:
        export_bin = bytearray(original.read("export.bin"))
        export_sig = original.read("export.sig")
    export_bin[-20] ^= 0x01
    forged = io.BytesIO()
    with zipfile.ZipFile(forged, "w", zipfile.ZIP_DEFLATED) as target:
        target.writestr("export.bin", bytes(export_bin))
        target.writestr("export.sig", export_sig)
    try:
        keyfile.read_export_archive(forged.getvalue(), trusted)
    except KeyFileRejected as exc:
        return str(exc)
    raise BluezonedError("a forged key file verified: the signature check is broken")


def _match(store: Store, diagnosis_keys: tuple[DiagnosisKey, ...], now: float) -> list[DemoMatch]:
    """Look every RPI of every key up among stored sightings, within ±2 h of its interval."""
    rpi_owner: dict[bytes, tuple[int, int]] = {}
    for index, key in enumerate(diagnosis_keys):
        for offset, rpi in enumerate(keys.rpis_of(key.tek)):
            rpi_owner[rpi] = (index, key.rolling_start + offset)
    seen: dict[int, list[SightingBucket]] = {}
    for bucket in store.sighting_buckets(since=now - RETENTION_DAYS * SECONDS_PER_DAY):
        owner = rpi_owner.get(bucket.rpi)
        if owner is None:
            continue
        index, enin = owner
        if abs(keys.interval_number(bucket.first_seen) - enin) <= MATCH_TOLERANCE_INTERVALS:
            seen.setdefault(index, []).append(bucket)
    matches = []
    for index, buckets in sorted(seen.items()):
        key = diagnosis_keys[index]
        aemk = keys.derive_aemk(key.key_data)
        attenuations = []
        for bucket in buckets:
            meta = keys.unpack_metadata(keys.decrypt_aem(aemk, bucket.rpi, bucket.aem))
            if meta.tx_power_plausible():
                attenuations.append(meta.tx_power - bucket.rssi_max)
        count = sum(bucket.count for bucket in buckets)
        matches.append(
            DemoMatch(
                key=key,
                first_seen=min(bucket.first_seen for bucket in buckets),
                last_seen=max(bucket.last_seen for bucket in buckets),
                sightings=count,
                rssi_mean=sum(bucket.rssi_sum for bucket in buckets) / count,
                min_attenuation=min(attenuations) if attenuations else None,
            )
        )
    return matches
