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
MAX_ENIN: Final = 0xFFFFFFFF
"""ENIntervalNumber is a uint32 (§1)."""
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
DB_FILENAME: Final = "bluezoned.db"
"""The device store's file name inside the state directory."""
RSSI_MIN: Final = -127
RSSI_MAX: Final = 126
"""RSSI clamp of the EN scanner (§4.4); anything outside is not a measurement."""
MAX_UNIX_SECONDS: Final = 253_402_300_799.0
"""9999-12-31T23:59:59Z, the last second a calendar date can name: later times are not times."""

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
MAX_PEM_BYTES: Final = 64 * 1024
"""A PEM key file: a P-256 key is under 300 bytes; anything this large is not one."""
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

# --- Radio supervision (linux-ble.md §7, §11) -------------------------------------------
SCAN_RSSI_FLOOR: Final = -127
"""Discovery filter RSSI: the legal minimum passes everything, and any RSSI filter makes
bluetoothd signal every report instead of only 8 dBm changes (linux-ble.md §3)."""
SCANNER_WATCHDOG_SECONDS: Final = 90.0
"""Restart a scan that delivered nothing for this long (habluetooth's value, §11)."""
SCANNER_START_TIMEOUT: Final = 15.0
"""One start attempt (resolve adapter, SetDiscoveryFilter, StartDiscovery) (habluetooth START_TIMEOUT)."""
SCANNER_STOP_TIMEOUT: Final = 5.0
"""Stopping a scan must not hang a restart (habluetooth STOP_TIMEOUT)."""
SIGHTING_QUEUE_SIZE: Final = 10_000
"""Sightings waiting for the aggregator: 5 s of a 2,000 adverts/s border kiosk; beyond, drop and count."""
DBUS_CALL_TIMEOUT: Final = 10.0
"""Every BlueZ call is bounded; bluetoothd answers in milliseconds when healthy (§13 item 7)."""
RETRY_BASE_SECONDS: Final = 0.5
RETRY_MAX_SECONDS: Final = 30.0
"""Back-off ladder for restarting scans and re-registering adverts: 0.5 s doubling to 30 s."""

# --- Matcher (protocol.md §4.6, §5.5; exposure.md §2) ----------------------------------
EXPOSURE_WINDOW_SECONDS: Final = 1800
"""GAEN v2 ExposureWindows last at most 30 min; matched sightings are grouped per key into
UTC-aligned windows of this width (exposure.md §2)."""
MATCH_CHUNK_RPIS: Final = 1 << 20
"""RPIs derived and joined per step: 16 MiB of identifiers keeps a 1,000,000-key day
(144 M RPIs, 2.3 GB) from ever being materialised at once."""
MATCH_PARALLEL_MIN_KEYS: Final = 20_000
"""Below this many keys one process is faster than starting tasks and pickling inputs."""

# --- Key sync, alerts and upload (key-distribution.md §2, §6, §7, §10) --------------------
SYNC_INTERVAL_SECONDS: Final = 4 * 3600
"""Default sync period: 6 checks a day keeps up with hourly files without the battery and
data complaints of more frequent checks (key-distribution.md §10)."""
SYNC_JITTER_SECONDS: Final = 30 * 60
"""Each run is moved by a random ±30 min so a fleet of devices does not hit the CDN at once."""
SYNC_CONNECT_TIMEOUT: Final = 10.0
SYNC_READ_TIMEOUT: Final = 30.0
"""Longest silence between two chunks of one response before it counts as a stalled server."""
SYNC_REQUEST_TIMEOUT: Final = 300.0
"""Whole-request bound: a 33 MiB archive at 1 Mbit/s still fits."""
SYNC_MAX_INDEX_BYTES: Final = 1024 * 1024
"""An index of 14 days of hourly files is ~30 KiB; a megabyte is the wrong file."""
SYNC_RETRIES: Final = 4
"""Extra attempts per request on connection errors, timeouts and 5xx answers."""
SYNC_BACKOFF_BASE_SECONDS: Final = 1.0
SYNC_BACKOFF_MAX_SECONDS: Final = 60.0
"""Full-jitter exponential back-off between attempts: uniform(0, min(max, base * 2**n))."""
SYNC_CHUNK_BYTES: Final = 64 * 1024
ALERT_HOOK_TIMEOUT_SECONDS: Final = 30.0
"""A hook that blinks an LED or sends a message finishes in seconds; a hung one is killed."""
NOTIFY_TIMEOUT_SECONDS: Final = 5.0
"""The desktop notification is best effort: a slow session bus must not hold the sync up."""
UPLOAD_MAX_KEYS: Final = 30
"""MAX_KEYS_ON_PUBLISH of the publish API (key-distribution.md §2.2)."""
UPLOAD_DEFAULT_DAYS: Final = 14
"""Keys of the last 14 days cover the infectious period the publish API accepts."""
UPLOAD_HMAC_SECRET_BYTES: Final = 32
"""The certificate HMAC secret: at least 128 bits are required (§2.1); 256 costs nothing."""
UPLOAD_REQUEST_TIMEOUT: Final = 30.0
UPLOAD_PADDING_MIN_BYTES: Final = 1024
UPLOAD_PADDING_RANGE_BYTES: Final = 1024
"""Random 1-2 KiB padding on every request so sizes do not reveal the step (§2.2)."""

# --- Exposure engine (exposure.md §3) ------------------------------------------------
FLEET_TX_REFERENCE_DB: Final = -26.0
"""Median calibrated TX power of the 313 measured models in Google's table (exposure.md §3):
the iPhone-equivalent reference used when a transmitter's TX power is unknown."""

# --- Risk levels (protocol.md §7.5) -----------------------------------------------------
RISK_LEVEL_LOW: Final = 1
RISK_LEVEL_HIGH: Final = 2
"""The Corona-Warn-App's levels, as stored with each exposure and handed to alert hooks."""
