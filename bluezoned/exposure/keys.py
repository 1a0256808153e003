"""The GAEN key schedule (protocol.md §1-§3): intervals, TEK, RPIK/AEMK, RPI, AEM, metadata.

Pure: no I/O, no clock, no randomness of its own. Callers pass the time (as an
ENIntervalNumber or unix seconds) and the 16 random bytes of a new key.
"""

from __future__ import annotations

import datetime as dt
import functools
import struct
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from bluezoned.const import (
    AEM_LENGTH,
    AEMK_INFO,
    MAX_ENIN,
    METADATA_LENGTH,
    METADATA_MAJOR_VERSION,
    RPI_LENGTH,
    RPI_PADDED_PREFIX,
    RPIK_INFO,
    SECONDS_PER_INTERVAL,
    TEK_LENGTH,
    TEK_ROLLING_PERIOD,
    TX_POWER_MAX_ACCEPTED,
    TX_POWER_MIN_ACCEPTED,
)
from bluezoned.errors import InvalidInput
from bluezoned.models import Tek

_ECB_BLOCK_CACHE: Final = 256
"""Distinct (first interval, count) PaddedData runs kept: a day of keys shares one."""


# --- Time ------------------------------------------------------------------------------


def interval_number(unix_seconds: float) -> int:
    """ENIntervalNumber of a unix time: ``floor(t / 600)`` (protocol.md §1)."""
    if unix_seconds < 0:
        raise InvalidInput(f"time {unix_seconds} is before 1970")
    enin = int(unix_seconds // SECONDS_PER_INTERVAL)
    if enin > MAX_ENIN:
        raise InvalidInput(f"time {unix_seconds} is past the uint32 interval range")
    return enin


def day_start_interval(day: str) -> int:
    """ENIN of UTC midnight of ``day`` (YYYY-MM-DD), e.g. a symptom onset; InvalidInput if not a date."""
    try:
        parsed = dt.date.fromisoformat(day)
    except (TypeError, ValueError) as exc:
        raise InvalidInput(f"{day!r} is not a date (YYYY-MM-DD)") from exc
    midnight = dt.datetime(parsed.year, parsed.month, parsed.day, tzinfo=dt.UTC)
    return interval_number(midnight.timestamp())


def interval_start(enin: int) -> int:
    """Unix second at which interval ``enin`` begins."""
    return _check_enin(enin) * SECONDS_PER_INTERVAL


def aligned_rolling_start(enin: int) -> int:
    """First interval of the UTC day containing ``enin``: ``144 * floor(enin / 144)``."""
    return _check_enin(enin) // TEK_ROLLING_PERIOD * TEK_ROLLING_PERIOD


def new_tek(random16: bytes, enin: int) -> Tek:
    """A TEK from 16 caller-supplied random bytes, valid from ``enin`` to the next UTC midnight.

    A key made mid-day (first start, or a fresh key after a report) covers only the rest
    of the day, as GAEN's keys do; a key made at midnight covers all 144 intervals.
    """
    _check_len("TEK", random16, TEK_LENGTH)
    start = _check_enin(enin)
    day_end = aligned_rolling_start(start) + TEK_ROLLING_PERIOD
    return Tek(bytes(random16), start, day_end - start)


def needs_new_tek(tek: Tek, enin: int) -> bool:
    """True when ``enin`` lies outside the key's validity, so the key must be replaced."""
    return not tek.rolling_start <= enin < tek.rolling_end


# --- Key derivation (protocol.md §2.2) -------------------------------------------------


def derive_rpik(tek: bytes) -> bytes:
    """RPIK = HKDF-SHA256(TEK, salt=None, info='EN-RPIK', 16 bytes)."""
    return _hkdf(tek, RPIK_INFO)


def derive_aemk(tek: bytes) -> bytes:
    """AEMK = HKDF-SHA256(TEK, salt=None, info='EN-AEMK', 16 bytes)."""
    return _hkdf(tek, AEMK_INFO)


# --- Rolling proximity identifiers (protocol.md §2.3) ----------------------------------


def rpi_for(rpik: bytes, enin: int) -> bytes:
    """The RPI of one interval: AES-128-ECB(RPIK, 'EN-RPI' || 0^6 || LE32(enin))."""
    return derive_rpis(rpik, enin, 1)


def derive_rpis(rpik: bytes, first_enin: int, count: int) -> bytes:
    """RPIs of ``count`` consecutive intervals from ``first_enin``, concatenated, in one AES call."""
    _check_len("RPIK", rpik, 16)
    if count < 1 or _check_enin(first_enin) + count - 1 > MAX_ENIN:
        raise InvalidInput(f"bad interval run: first {first_enin}, count {count}")
    encryptor = Cipher(algorithms.AES(rpik), modes.ECB()).encryptor()  # noqa: S305 - the EN spec's single-block PRF
    return encryptor.update(_padded_blocks(first_enin, count))


def padded_data(enins: npt.NDArray[np.int64]) -> bytes:
    """The PaddedData blocks ``'EN-RPI' || 0^6 || LE32(enin)`` of these intervals, concatenated."""
    if enins.size and (int(enins.min()) < 0 or int(enins.max()) > MAX_ENIN):
        raise InvalidInput("an interval number is outside 0..2^32-1")
    blocks = np.empty((enins.size, 16), dtype=np.uint8)
    blocks[:, :12] = np.frombuffer(RPI_PADDED_PREFIX, dtype=np.uint8)
    blocks[:, 12:] = enins.astype("<u4").view(np.uint8).reshape(enins.size, 4)
    return blocks.tobytes()


def rpis_of(tek: Tek) -> list[bytes]:
    """Every RPI of a key's validity, in interval order."""
    block = derive_rpis(derive_rpik(tek.key_data), tek.rolling_start, tek.rolling_period)
    return split_rpis(block)


def split_rpis(block: bytes) -> list[bytes]:
    """Cut a concatenation of RPIs into 16-byte identifiers."""
    return [block[i : i + RPI_LENGTH] for i in range(0, len(block), RPI_LENGTH)]


def rpi_interval(rpik: bytes, rpi: bytes) -> int | None:
    """Decrypt an RPI under a candidate RPIK: its interval if genuine, else None (§2.3)."""
    _check_len("RPIK", rpik, 16)
    _check_len("RPI", rpi, RPI_LENGTH)
    decryptor = Cipher(algorithms.AES(rpik), modes.ECB()).decryptor()  # noqa: S305
    plain = decryptor.update(rpi)
    if plain[:12] != RPI_PADDED_PREFIX:
        return None
    return int.from_bytes(plain[12:], "little")


# --- Associated encrypted metadata (protocol.md §2.4, §2.5) ----------------------------


def encrypt_aem(aemk: bytes, rpi: bytes, metadata: bytes) -> bytes:
    """AEM = AES-128-CTR(AEMK, counter block = RPI, metadata); also decrypts (CTR is symmetric)."""
    _check_len("AEMK", aemk, 16)
    _check_len("RPI", rpi, RPI_LENGTH)
    _check_len("metadata", metadata, METADATA_LENGTH)
    encryptor = Cipher(algorithms.AES(aemk), modes.CTR(rpi)).encryptor()
    return encryptor.update(metadata)


def decrypt_aem(aemk: bytes, rpi: bytes, aem: bytes) -> bytes:
    """Recover the 4 metadata bytes of a sighting; unauthenticated, so range-check the result."""
    _check_len("AEM", aem, AEM_LENGTH)
    return encrypt_aem(aemk, rpi, aem)


@dataclass(frozen=True, slots=True)
class Metadata:
    """The four metadata bytes before encryption (protocol.md §2.5)."""

    tx_power: int
    """Calibrated radiated power, dBm, signed 8-bit."""
    minor_version: int = 1
    calibration_confidence: int = 0
    """0 LOWEST (no calibration) ... 3 HIGH; defined since version 1.1."""
    major_version: int = METADATA_MAJOR_VERSION

    def tx_power_plausible(self) -> bool:
        """Whether the TX power lies in Google's receiver window [-50, +20] dBm."""
        return TX_POWER_MIN_ACCEPTED <= self.tx_power <= TX_POWER_MAX_ACCEPTED


def pack_metadata(meta: Metadata) -> bytes:
    """Metadata -> 4 bytes: version/flags, TX power (int8), 0, 0."""
    if not 0 <= meta.major_version <= 3 or not 0 <= meta.minor_version <= 3:
        raise InvalidInput(
            f"version {meta.major_version}.{meta.minor_version} does not fit 2+2 bits"
        )
    if not 0 <= meta.calibration_confidence <= 3:
        raise InvalidInput(f"calibration confidence {meta.calibration_confidence} is not 0..3")
    if not -127 <= meta.tx_power <= 127:
        raise InvalidInput(f"TX power {meta.tx_power} dBm is outside -127..127")
    version = (
        (meta.major_version << 6) | (meta.minor_version << 4) | (meta.calibration_confidence << 2)
    )
    return struct.pack("<Bbxx", version, meta.tx_power)


def unpack_metadata(data: bytes) -> Metadata:
    """4 bytes -> Metadata; InvalidInput for a wrong length or a major version other than 1."""
    _check_len("metadata", data, METADATA_LENGTH)
    version, tx_power = struct.unpack_from("<Bb", data)
    major = version >> 6
    if major != METADATA_MAJOR_VERSION:
        raise InvalidInput(f"metadata major version {major} is not {METADATA_MAJOR_VERSION}")
    return Metadata(
        tx_power=tx_power,
        minor_version=(version >> 4) & 0b11,
        calibration_confidence=(version >> 2) & 0b11,
        major_version=major,
    )


def beacon_for(tek: Tek, enin: int, metadata: bytes) -> tuple[bytes, bytes]:
    """The (RPI, AEM) a device holding ``tek`` broadcasts during interval ``enin``."""
    if needs_new_tek(tek, enin):
        raise InvalidInput(f"interval {enin} is outside the key's validity")
    rpi = rpi_for(derive_rpik(tek.key_data), enin)
    return rpi, encrypt_aem(derive_aemk(tek.key_data), rpi, metadata)


# --- Internals -------------------------------------------------------------------------


def _hkdf(tek: bytes, info: bytes) -> bytes:
    _check_len("TEK", tek, TEK_LENGTH)
    return HKDF(algorithm=hashes.SHA256(), length=16, salt=None, info=info).derive(tek)


@functools.lru_cache(maxsize=_ECB_BLOCK_CACHE)
def _padded_blocks(first_enin: int, count: int) -> bytes:
    return padded_data(np.arange(first_enin, first_enin + count, dtype=np.int64))


def _check_len(name: str, value: bytes, length: int) -> None:
    if not isinstance(value, bytes | bytearray | memoryview) or len(value) != length:
        size = (
            len(value)
            if isinstance(value, bytes | bytearray | memoryview)
            else type(value).__name__
        )
        raise InvalidInput(f"{name} must be {length} bytes, got {size}")


def _check_enin(enin: int) -> int:
    if not 0 <= enin <= MAX_ENIN:
        raise InvalidInput(f"interval number {enin} is outside 0..2^32-1")
    return enin
