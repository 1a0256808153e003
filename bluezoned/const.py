"""Specification and tuning constants; each cites its source (``protocol.md`` sections) or its reason."""

from __future__ import annotations

from typing import Final

# --- Time base (protocol.md §1) -------------------------------------------------------
SECONDS_PER_INTERVAL: Final = 600
"""One ENIntervalNumber is 10 minutes of unix time."""
TEK_ROLLING_PERIOD: Final = 144
"""Intervals per Temporary Exposure Key: 24 h, aligned on UTC midnight."""
RETENTION_DAYS: Final = 14
"""Own keys, sightings and downloaded keys older than this are deleted (contactRecordDaysToKeep)."""
SECONDS_PER_DAY: Final = 86_400

# --- Keys and identifiers (protocol.md §2) ---------------------------------------------
TEK_LENGTH: Final = 16
RPI_LENGTH: Final = 16
AEM_LENGTH: Final = 4
METADATA_LENGTH: Final = 4
RPIK_INFO: Final = b"EN-RPIK"
AEMK_INFO: Final = b"EN-AEMK"
RPI_PADDED_PREFIX: Final = b"EN-RPI" + bytes(6)
"""PaddedData bytes 0-11; bytes 12-15 carry the ENIN little-endian (§2.3)."""
METADATA_MAJOR_VERSION: Final = 1
TX_POWER_MIN_ACCEPTED: Final = -50
TX_POWER_MAX_ACCEPTED: Final = 20
"""Google's sanity window on the decrypted TX power (§2.5); sightings outside it are dropped."""
MATCH_TOLERANCE_INTERVALS: Final = 12
"""±2 h clock-drift tolerance when matching a sighting to an RPI's interval (§4.6)."""

# --- The beacon (protocol.md §4, §9) ----------------------------------------------------
EN_SERVICE_UUID16: Final = 0xFD6F
EN_SERVICE_UUID: Final = "0000fd6f-0000-1000-8000-00805f9b34fb"
EN_SERVICE_DATA_LENGTH: Final = RPI_LENGTH + AEM_LENGTH
LEGACY_ADV_MAX_LENGTH: Final = 31
"""The whole legacy advertising data field (Core spec Vol 3 Part C §11)."""
ADV_FLAGS_EN: Final = 0x1A
"""LE General Discoverable plus the two simultaneous LE/BR-EDR bits, as GAEN phones send."""
BLUEZONE_SERVICE_UUID16: Final = 0x4E56
BLUEZONE_SERVICE_UUID: Final = "00004e56-0000-1000-8000-00805f9b34fb"
BLUEZONE_COMPANY_ID: Final = 0x22B5
BLUEZONE_ID_LENGTH: Final = 12
RSSI_MIN: Final = -127
RSSI_MAX: Final = 126
"""RSSI clamp of the EN scanner (§4.4); anything outside is not a measurement."""

# --- Key files (protocol.md §5) ---------------------------------------------------------
EXPORT_HEADER: Final = b"EK Export v1    "
EXPORT_BIN_NAME: Final = "export.bin"
EXPORT_SIG_NAME: Final = "export.sig"
MAX_EXPORT_BIN_BYTES: Final = 32 * 1024 * 1024
"""Refuse larger export.bin members without reading past this bound (zip bombs).

The reference server caps a file at 500,000 keys, CWA at 600,000 keys / 16 MB
(key-distribution.md §9); a key takes at most about 40 bytes on the wire, so 32 MiB
leaves room for the largest file any real server emits.
"""
MAX_EXPORT_SIG_BYTES: Final = 64 * 1024
"""A TEKSignatureList of a few co-signatures is a few hundred bytes."""
MAX_EXPORT_ARCHIVE_BYTES: Final = MAX_EXPORT_BIN_BYTES + 1024 * 1024
"""The zip itself: export.bin is mostly random key bytes and barely compresses."""
ECDSA_P256_SHA256_OID: Final = "1.2.840.10045.4.3.2"
ECDSA_P256_SHA256_ALIASES: Final = frozenset({"ECDSA p-256 SHA-256", "SHA256withECDSA"})
"""Pre-OID spellings found in real 2020 files (protocol.md §5.3, key-distribution.md §10)."""
ECDSA_SHA512_OID: Final = "1.2.840.10045.4.3.4"

# --- Store ------------------------------------------------------------------------------
SIGHTING_BUCKET_SECONDS: Final = 10
"""Sightings of one RPI are folded into buckets of this width: fine enough for 1-minute
durations, coarse enough that a 4 adverts/s beacon costs one row per 10 s."""
RETENTION_CHUNK_ROWS: Final = 5_000
"""Rows deleted per transaction by retention, so the scanner's writer never waits long."""
