"""The bluezoned exception tree: one root, subclasses that carry data for callers to branch on."""

from __future__ import annotations

import enum


class BluezonedError(Exception):
    """Root of every error bluezoned raises on purpose."""


class InvalidInput(BluezonedError, ValueError):
    """A value given by a caller (argument, hex string, metadata byte) is out of its domain."""


class KeyFileRejectReason(enum.Enum):
    """Why a diagnosis-key export file was refused; each has its own message."""

    NOT_A_ZIP = "not a zip archive (truncated or corrupt)"
    CORRUPT_ZIP = "corrupt zip member (CRC or compression error)"
    MISSING_MEMBER = "missing zip member"
    EXTRA_MEMBER = "unexpected zip member"
    TOO_LARGE = "member larger than the allowed bound"
    BAD_HEADER = "export.bin does not start with the 'EK Export v1' header"
    MALFORMED_PROTOBUF = "malformed protobuf"
    UNSIGNED = "the file carries no signature"
    SIGNATURE_MISMATCH = "export.sig and export.bin disagree on the signatures"
    UNKNOWN_ALGORITHM = "unknown signature algorithm"
    NO_KEY = "no configured public key for the signer"
    BAD_SIGNATURE = "signature does not verify"
    BAD_KEY_LENGTH = "a key is not 16 bytes"
    BAD_ROLLING_PERIOD = "a key's rolling_period is outside 1..144"
    BAD_ROLLING_START = "a key's rolling_start_interval_number is negative"
    BAD_BATCH = "batch_num/batch_size are inconsistent"


class KeyFileRejected(BluezonedError):
    """A key file was refused; ``reason`` says why and ``detail`` where."""

    def __init__(self, reason: KeyFileRejectReason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        message = reason.value if not detail else f"{reason.value}: {detail}"
        super().__init__(message)


class StoreError(BluezonedError):
    """The local SQLite store cannot be opened, migrated or written."""


class BadRecords(BluezonedError):
    """An input file holds malformed records; ``problems`` lists ``(line number, message)``."""

    def __init__(
        self,
        source: str,
        problems: list[tuple[int, str]],
        total_bad: int,
        consequence: str = "nothing was imported",
    ) -> None:
        self.source = source
        self.problems = problems
        self.total_bad = total_bad
        self.consequence = consequence
        super().__init__(f"{source}: {total_bad} bad row(s)")


# --- Radio (ble/) -------------------------------------------------------------------------


class BluetoothUnavailableReason(enum.Enum):
    """Why the radio layer could not scan or advertise."""

    NO_BLUEZ = "bluetoothd (org.bluez) is not on the system bus"
    NO_ADAPTER = "the configured Bluetooth adapter is not present"
    NOT_POWERED = "the Bluetooth adapter is powered off"
    NO_BUS = "the D-Bus system bus cannot be reached"
    ACCESS_DENIED = "the D-Bus policy denies access to org.bluez"
    TIMEOUT = "BlueZ did not answer in time"
    BLUEZ_ERROR = "BlueZ refused the request"


class BluetoothUnavailable(BluezonedError):
    """Scanning or advertising could not start; ``reason`` says why, ``detail`` adds BlueZ's words."""

    def __init__(self, reason: BluetoothUnavailableReason, detail: str = "") -> None:
        self.reason = reason
        self.detail = detail
        super().__init__(reason.value if not detail else f"{reason.value}: {detail}")


class AdvertisementRejected(BluezonedError):
    """BlueZ refused RegisterAdvertisement; ``error_name`` is the D-Bus error (e.g. NotPermitted)."""

    def __init__(self, error_name: str, detail: str = "") -> None:
        self.error_name = error_name
        self.detail = detail
        super().__init__(f"advertisement rejected: {error_name} {detail}".rstrip())


class SimulatorError(BluezonedError):
    """The simulated radio (private bus, simulated BlueZ, world) cannot start or was misused."""


# --- Configuration, key sync and upload (config, sync/) -------------------------------------


class ConfigError(InvalidInput):
    """The configuration file is unusable; ``path`` and ``key`` say where."""

    def __init__(self, path: str, key: str, message: str) -> None:
        self.path = path
        self.key = key
        super().__init__(f"{path}: {key}: {message}" if key else f"{path}: {message}")


class FetchError(BluezonedError):
    """An HTTP download failed (after its retries); ``url`` says which, ``status`` the HTTP code if any."""

    def __init__(self, url: str, detail: str, status: int | None = None) -> None:
        self.url = url
        self.detail = detail
        self.status = status
        super().__init__(f"{url}: {detail}")


class ResponseTooLarge(FetchError):
    """A response exceeded its byte cap; the download was abandoned before it was read whole."""


class UploadRejected(BluezonedError):
    """The authority refused a step of the key upload; ``step``, ``status`` and ``code`` say which and why."""

    def __init__(self, step: str, status: int | None, code: str, detail: str = "") -> None:
        self.step = step
        self.status = status
        self.code = code
        self.detail = detail
        where = f"{step}: HTTP {status}" if status is not None else step
        super().__init__(f"{where}: {code}" + (f" ({detail})" if detail else ""))
