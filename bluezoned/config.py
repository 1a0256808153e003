"""The configuration file: TOML in, frozen dataclasses out; every mistake names the file and the key.

Example::

    [[sources]]
    name = "authority"
    url = "https://keys.example.org/exports/exposureKeyExport-VN/index.txt"
    base_url = "https://keys.example.org/exports/"
    format = "index"                 # or "cwa": url is the .../country/DE base of the tree
    region = "VN"
    keys = [{id = "452", version = "v1", pem = "authority-452-v1.pem"}]

    [schedule]
    interval_minutes = 240
    jitter_minutes = 30

    [limits]
    max_file_bytes = 34603008
    connect_timeout = 10
    read_timeout = 30
    request_timeout = 300
    retries = 4
    max_run_bytes = 0                # per-run cap for metered links; 0: none

    [alerts]
    command = ["/usr/local/bin/gpio-alert.py", "--pin", "17"]
    env = {ALERT_SECONDS = "60"}
    timeout = 30
    desktop_notifications = true

    [exposure]                       # how the exposure engine judges a matched contact
    distance_m = 2.0                 # close contact: within distance_m ...
    minutes = 15                     # ... for at least this many estimated minutes
    rx_correction = 0.0              # this receiver's RSSI correction (dB), as GAEN's table
    calibration = "dp3t-exp05-2m-15min"   # optional: a shipped fit (sets distance and minutes)
    rx_model = "SM-G973F"            # optional, with calibration: the fitted receiver offset

A relative ``pem`` path is taken relative to the configuration file.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from bluezoned.const import (
    ALERT_HOOK_TIMEOUT_SECONDS,
    MAX_EXPORT_ARCHIVE_BYTES,
    MAX_PEM_BYTES,
    SYNC_CONNECT_TIMEOUT,
    SYNC_INTERVAL_SECONDS,
    SYNC_JITTER_SECONDS,
    SYNC_MAX_INDEX_BYTES,
    SYNC_READ_TIMEOUT,
    SYNC_REQUEST_TIMEOUT,
    SYNC_RETRIES,
)
from bluezoned.errors import ConfigError, InvalidInput
from bluezoned.exposure.contacts import EngineConfig
from bluezoned.exposure.keyfile import TrustedKey, load_trusted_key
from bluezoned.exposure.presets import PROXIMITY_CALIBRATIONS
from bluezoned.files import read_bounded

__all__ = [
    "CONFIG_FILENAME",
    "AlertsConfig",
    "Config",
    "ExposureSettings",
    "Limits",
    "Schedule",
    "Source",
    "load_config",
    "parse_config",
]

CONFIG_FILENAME: Final = "bluezoned.toml"
MAX_CONFIG_BYTES: Final = 1024 * 1024
SOURCE_FORMATS: Final = ("index", "cwa")
_NAME_PATTERN: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
_ENV_NAME_PATTERN: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")

SourceFormat = Literal["index", "cwa"]


@dataclass(frozen=True, slots=True)
class Source:
    """One key server: where its index is, how to read it, and the keys that may sign its files."""

    name: str
    url: str
    format: SourceFormat
    trusted_keys: tuple[TrustedKey, ...]
    base_url: str | None = None
    region: str | None = None


@dataclass(frozen=True, slots=True)
class Schedule:
    """The randomised sync period: every ``interval_seconds`` ± ``jitter_seconds``."""

    interval_seconds: float = SYNC_INTERVAL_SECONDS
    jitter_seconds: float = SYNC_JITTER_SECONDS


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds on every download: sizes in bytes, timeouts in seconds, retries per request."""

    max_file_bytes: int = MAX_EXPORT_ARCHIVE_BYTES
    max_index_bytes: int = SYNC_MAX_INDEX_BYTES
    connect_timeout: float = SYNC_CONNECT_TIMEOUT
    read_timeout: float = SYNC_READ_TIMEOUT
    request_timeout: float = SYNC_REQUEST_TIMEOUT
    retries: int = SYNC_RETRIES
    max_run_bytes: int = 0
    """Stop starting new downloads in one run past this many bytes (metered links); 0: no cap."""


_LIMIT_COUNTS: Final[dict[str, tuple[int, int]]] = {
    "max_file_bytes": (1024, MAX_EXPORT_ARCHIVE_BYTES),
    "max_index_bytes": (1024, 64 * 1024 * 1024),
    "retries": (0, 20),
    "max_run_bytes": (0, 2**53),
}
"""[limits] keys holding whole numbers, with their accepted range."""
_LIMIT_SECONDS: Final[dict[str, tuple[float, float]]] = {
    "connect_timeout": (0.1, 600),
    "read_timeout": (0.1, 3600),
    "request_timeout": (0.1, 24 * 3600),
}
"""[limits] keys holding seconds, with their accepted range."""


@dataclass(frozen=True, slots=True)
class AlertsConfig:
    """How an exposure is announced: an optional command hook (argv, extra env) and the desktop."""

    command: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    timeout: float = ALERT_HOOK_TIMEOUT_SECONDS
    desktop_notifications: bool = True


_ENGINE: Final = EngineConfig()
"""The engine's own defaults, which [exposure] starts from."""


@dataclass(frozen=True, slots=True)
class ExposureSettings:
    """How the exposure engine judges a matched contact on this device: the close-contact rule,
    the receiver's RSSI correction and, optionally, a shipped calibration (a dense-scanning one:
    the daemon hears every advert) with the receiver model whose fitted offset applies."""

    distance_m: float = _ENGINE.distance_m
    minutes: float = _ENGINE.minutes
    rx_correction: float = _ENGINE.rx_correction
    calibration: str | None = None
    rx_model: str | None = None


@dataclass(frozen=True, slots=True)
class Config:
    """The whole configuration; ``path`` is where it was read from (None for built-in defaults)."""

    sources: tuple[Source, ...] = ()
    schedule: Schedule = Schedule()
    limits: Limits = Limits()
    alerts: AlertsConfig = AlertsConfig()
    path: Path | None = None
    exposure: ExposureSettings = ExposureSettings()

    def source(self, name: str) -> Source:
        """The source called ``name`` or InvalidInput listing the configured ones."""
        for source in self.sources:
            if source.name == name:
                return source
        known = ", ".join(s.name for s in self.sources) or "none"
        raise InvalidInput(f"no source named {name!r} (configured: {known})")


def load_config(path: str | os.PathLike[str]) -> Config:
    """Read and check the TOML file at ``path``; ConfigError on any problem."""
    config_path = Path(path)
    where = str(config_path)
    try:
        data = read_bounded(config_path, MAX_CONFIG_BYTES, what="a configuration file")
    except InvalidInput as exc:
        raise ConfigError(where, "", str(exc)) from exc
    return parse_config(data, config_path)


def parse_config(data: bytes, path: Path) -> Config:
    """Check TOML ``data`` read from ``path`` (relative PEM paths resolve beside it)."""
    where = str(path)
    try:
        document = tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(where, "", f"not UTF-8: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(where, "", f"not valid TOML: {exc}") from exc
    reader = _Reader(where, path.parent)
    reader.only(document, "", {"sources", "schedule", "limits", "alerts", "exposure"})
    raw_sources = document.get("sources", [])
    if not isinstance(raw_sources, list):
        raise ConfigError(where, "sources", "must be an array of tables ([[sources]])")
    sources = tuple(reader.source(item, f"sources[{i}]") for i, item in enumerate(raw_sources))
    names = [s.name for s in sources]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(where, f"sources[{i}].name", f"{name!r} is used twice")
    return Config(
        sources=sources,
        schedule=reader.schedule(reader.table(document, "schedule")),
        limits=reader.limits(reader.table(document, "limits")),
        alerts=reader.alerts(reader.table(document, "alerts")),
        path=path,
        exposure=reader.exposure(reader.table(document, "exposure")),
    )


class _Reader:
    """Typed accessors that raise ConfigError naming the file and the dotted key."""

    def __init__(self, where: str, base_dir: Path) -> None:
        self.where = where
        self.base_dir = base_dir

    def error(self, key: str, message: str) -> ConfigError:
        return ConfigError(self.where, key, message)

    def only(self, table: Mapping[str, Any], prefix: str, allowed: set[str]) -> None:
        for name in table:
            if name not in allowed:
                key = f"{prefix}.{name}" if prefix else name
                raise self.error(key, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def table(self, document: Mapping[str, Any], key: str) -> Mapping[str, Any]:
        value = document.get(key, {})
        if not isinstance(value, dict):
            raise self.error(key, "must be a table")
        return value

    def string(self, table: Mapping[str, Any], key: str, prefix: str) -> str | None:
        value = table.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not value.strip():
            raise self.error(f"{prefix}.{key}", "must be a non-empty string")
        return value.strip()

    def number(
        self, table: Mapping[str, Any], key: str, prefix: str, low: float, high: float
    ) -> float | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise self.error(f"{prefix}.{key}", "must be a number")
        if not low <= value <= high:
            raise self.error(f"{prefix}.{key}", f"must be between {low:g} and {high:g}")
        return float(value)

    def integer(
        self, table: Mapping[str, Any], key: str, prefix: str, low: int, high: int
    ) -> int | None:
        value = table.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(f"{prefix}.{key}", "must be an integer")
        if not low <= value <= high:
            raise self.error(f"{prefix}.{key}", f"must be between {low} and {high}")
        return int(value)

    def url(self, table: Mapping[str, Any], key: str, prefix: str) -> str | None:
        value = self.string(table, key, prefix)
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise self.error(f"{prefix}.{key}", f"{value!r} is not an http(s) URL")
        if parts.query or parts.fragment:
            raise self.error(f"{prefix}.{key}", "must not carry a query or fragment")
        return value

    def source(self, item: Any, prefix: str) -> Source:
        if not isinstance(item, dict):
            raise self.error(prefix, "must be a table")
        self.only(item, prefix, {"name", "url", "base_url", "format", "region", "keys"})
        name = self.string(item, "name", prefix)
        if name is None:
            raise self.error(f"{prefix}.name", "is required")
        if not _NAME_PATTERN.fullmatch(name):
            raise self.error(f"{prefix}.name", "use 1-64 letters, digits, '.', '_' or '-'")
        url = self.url(item, "url", prefix)
        if url is None:
            raise self.error(f"{prefix}.url", "is required")
        fmt = item.get("format", "index")
        if fmt not in SOURCE_FORMATS:
            raise self.error(f"{prefix}.format", f"must be one of {', '.join(SOURCE_FORMATS)}")
        base_url = self.url(item, "base_url", prefix)
        if fmt == "index" and base_url is None:
            raise self.error(
                f"{prefix}.base_url", "is required for format 'index' (index lines are relative)"
            )
        if base_url is not None and not base_url.endswith("/"):
            base_url += "/"
        raw_keys = item.get("keys")
        if not isinstance(raw_keys, list) or not raw_keys:
            raise self.error(f"{prefix}.keys", "needs at least one signing key: files are verified")
        trusted = tuple(self.key(k, f"{prefix}.keys[{i}]") for i, k in enumerate(raw_keys))
        region = self.string(item, "region", prefix)
        return Source(
            name=name,
            url=url,
            format="cwa" if fmt == "cwa" else "index",
            trusted_keys=trusted,
            base_url=base_url,
            region=region,
        )

    def key(self, item: Any, prefix: str) -> TrustedKey:
        if not isinstance(item, dict):
            raise self.error(prefix, "must be a table {id, version, pem or pem_base64}")
        self.only(item, prefix, {"id", "version", "pem", "pem_base64"})
        key_id = self.string(item, "id", prefix)
        version = self.string(item, "version", prefix)
        pem_path = self.string(item, "pem", prefix)
        pem_b64 = self.string(item, "pem_base64", prefix)
        if (pem_path is None) == (pem_b64 is None):
            raise self.error(prefix, "give exactly one of 'pem' (a file) or 'pem_base64'")
        if pem_path is not None:
            path = Path(pem_path).expanduser()
            if not path.is_absolute():
                path = self.base_dir / path
            try:
                material = read_bounded(path, MAX_PEM_BYTES, what="a PEM public key")
            except InvalidInput as exc:
                raise self.error(f"{prefix}.pem", str(exc)) from exc
            where = f"{prefix}.pem"
        else:
            text = pem_b64 or ""
            try:
                base64.b64decode(text, validate=True)
            except (binascii.Error, ValueError) as exc:
                raise self.error(f"{prefix}.pem_base64", f"not base64: {exc}") from exc
            material = text.encode("ascii", "replace")
            where = f"{prefix}.pem_base64"
        try:
            return load_trusted_key(material, key_id, version)
        except InvalidInput as exc:
            raise self.error(where, str(exc)) from exc

    def schedule(self, table: Mapping[str, Any]) -> Schedule:
        self.only(table, "schedule", {"interval_minutes", "jitter_minutes"})
        interval = self.number(table, "interval_minutes", "schedule", 1, 7 * 24 * 60)
        jitter = self.number(table, "jitter_minutes", "schedule", 0, 24 * 60)
        default = Schedule()
        interval_s = default.interval_seconds if interval is None else interval * 60
        jitter_s = default.jitter_seconds if jitter is None else jitter * 60
        if jitter_s >= interval_s:
            raise self.error("schedule.jitter_minutes", "must be smaller than interval_minutes")
        return Schedule(interval_s, jitter_s)

    def limits(self, table: Mapping[str, Any]) -> Limits:
        self.only(table, "limits", {*_LIMIT_COUNTS, *_LIMIT_SECONDS})
        counts = {
            key: value
            for key, (lo, hi) in _LIMIT_COUNTS.items()
            if (value := self.integer(table, key, "limits", lo, hi)) is not None
        }
        # Any: mypy checks a ** mapping against every field, the int ones too.
        seconds: dict[str, Any] = {
            key: secs
            for key, (lo, hi) in _LIMIT_SECONDS.items()
            if (secs := self.number(table, key, "limits", lo, hi)) is not None
        }
        return replace(replace(Limits(), **counts), **seconds)

    def exposure(self, table: Mapping[str, Any]) -> ExposureSettings:
        prefix = "exposure"
        self.only(
            table, prefix, {"distance_m", "minutes", "rx_correction", "calibration", "rx_model"}
        )
        default = ExposureSettings()
        distance = self.number(table, "distance_m", prefix, 0.1, 20.0)
        minutes = self.number(table, "minutes", prefix, 0.0, 24 * 60.0)
        rx_correction = self.number(table, "rx_correction", prefix, -50.0, 50.0)
        name = self.string(table, "calibration", prefix)
        rx_model = self.string(table, "rx_model", prefix)
        if name is None:
            if rx_model is not None:
                raise self.error(f"{prefix}.rx_model", "needs exposure.calibration")
            return ExposureSettings(
                default.distance_m if distance is None else distance,
                default.minutes if minutes is None else minutes,
                default.rx_correction if rx_correction is None else rx_correction,
            )
        fitted = PROXIMITY_CALIBRATIONS.get(name)
        if fitted is None:
            known = ", ".join(sorted(PROXIMITY_CALIBRATIONS))
            raise self.error(f"{prefix}.calibration", f"unknown {name!r} (shipped: {known})")
        if fitted.regime != "dense":
            raise self.error(
                f"{prefix}.calibration",
                f"{name!r} is fitted on GAEN's duty-cycled scans; this device hears every "
                "advert (use a dense calibration)",
            )
        for key, given, fixed in (
            ("distance_m", distance, fitted.distance_m),
            ("minutes", minutes, fitted.minutes),
        ):
            if given is not None and given != fixed:
                raise self.error(
                    f"{prefix}.{key}", f"{given:g} contradicts calibration {name!r} ({fixed:g})"
                )
        return ExposureSettings(
            fitted.distance_m,
            fitted.minutes,
            default.rx_correction if rx_correction is None else rx_correction,
            name,
            rx_model,
        )

    def alerts(self, table: Mapping[str, Any]) -> AlertsConfig:
        self.only(table, "alerts", {"command", "env", "timeout", "desktop_notifications"})
        command = table.get("command", [])
        if isinstance(command, str):
            raise self.error(
                "alerts.command", 'must be an argv list, e.g. ["/path/hook", "arg"] (no shell)'
            )
        if not isinstance(command, list) or not all(
            isinstance(a, str) and "\0" not in a for a in command
        ):
            raise self.error("alerts.command", "must be a list of strings")
        if command and not command[0]:
            raise self.error("alerts.command", "the program (first element) is empty")
        env = table.get("env", {})
        if not isinstance(env, dict):
            raise self.error("alerts.env", 'must be a table of NAME = "value"')
        for name, value in env.items():
            if not _ENV_NAME_PATTERN.fullmatch(name):
                raise self.error(f"alerts.env.{name}", "is not a valid environment variable name")
            if not isinstance(value, str) or "\0" in value:
                raise self.error(f"alerts.env.{name}", "must be a string")
        timeout = self.number(table, "timeout", "alerts", 0.1, 3600)
        desktop = table.get("desktop_notifications", True)
        if not isinstance(desktop, bool):
            raise self.error("alerts.desktop_notifications", "must be true or false")
        return AlertsConfig(
            command=tuple(command),
            env=dict(env),
            timeout=AlertsConfig().timeout if timeout is None else timeout,
            desktop_notifications=desktop,
        )
