"""Parse a CSV capture of EN sightings, to replay another device's recording; pure, no I/O.

Format: UTF-8 text, one record per line (``\\n`` or ``\\r\\n``), fields separated by commas
without quoting (every field is a number or hex). The first non-blank line is a **required**
header naming the four columns ``t,rpi,aem,rssi`` in any order (case and surrounding spaces
ignored; a UTF-8 byte-order mark is allowed); without it the column order would be a guess.
Blank lines are ignored. Fields:

* ``t``: unix seconds, a finite number >= 0, at most 5 minutes after ``now``;
* ``rpi``: 32 hex digits (16 bytes); ``aem``: 8 hex digits (4 bytes);
* ``rssi``: an integer in dBm within ``[RSSI_MIN, RSSI_MAX]``.

A file with any bad line is refused as a whole: :class:`~bluezoned.errors.BadRecords` lists
each bad line (the first ``MAX_RECORDED_PROBLEMS`` of them) with every problem of that line.
Valid rows older than the retention window are not errors; they are skipped and counted.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Final

from bluezoned.const import (
    AEM_LENGTH,
    RETENTION_DAYS,
    RPI_LENGTH,
    RSSI_MAX,
    RSSI_MIN,
    SECONDS_PER_DAY,
)
from bluezoned.csvlines import NUMBER, StrictCsv
from bluezoned.models import Sighting

CAPTURE_COLUMNS: Final = ("t", "rpi", "aem", "rssi")
MAX_CAPTURE_BYTES: Final = 64 * 1024 * 1024
"""Largest capture accepted: ~1 million rows, parsed with a peak of ~300 MB (bytes, text and
Sighting objects before folding). Split bigger captures; each file is all-or-nothing."""
MAX_CLOCK_SKEW_SECONDS: Final = 300.0
"""Rows up to 5 minutes in the future are tolerated as clock skew between the two devices."""
DEFAULT_RETENTION_SECONDS: Final = RETENTION_DAYS * SECONDS_PER_DAY

_SHARED_VALUES: Final = 1 << 16
"""Bound on the distinct RPI/AEM texts remembered while parsing (hostile files)."""

_RSSI_TEXTS: Final = {str(v): v for v in range(RSSI_MIN, RSSI_MAX + 1)}
"""The usual spellings of every valid RSSI, parsed once and shared (CPython caches few ints)."""

_INTEGER = re.compile(r"[+-]?[0-9]+")
_HEX = re.compile(r"[0-9a-fA-F]*")


@dataclass(frozen=True, slots=True)
class Capture:
    """The good rows of a capture: ``sightings`` in file order, ``skipped_old`` rows too old."""

    sightings: list[Sighting] = field(default_factory=list)
    skipped_old: int = 0

    @property
    def rows(self) -> int:
        """Data rows read, including the skipped ones."""
        return len(self.sightings) + self.skipped_old


def parse_capture(
    lines: Iterable[str],
    *,
    now: float,
    source: str = "<capture>",
    retention_seconds: float = DEFAULT_RETENTION_SECONDS,
) -> Capture:
    """Parse capture lines (line 1 first, trailing newlines allowed); raise BadRecords if any is bad."""
    parser = _Parser(now=now, retention_seconds=retention_seconds)
    parser.feed_lines(lines)
    parser.check(source)
    return Capture(parser.sightings, parser.skipped_old)


def parse_capture_bytes(
    data: bytes,
    *,
    now: float,
    source: str = "<capture>",
    retention_seconds: float = DEFAULT_RETENTION_SECONDS,
) -> Capture:
    """Parse a whole capture file's bytes: refuse it if too large (InvalidInput), and name
    each line holding NUL bytes or invalid UTF-8 (BadRecords) besides the parse errors."""
    parser = _Parser(now=now, retention_seconds=retention_seconds)
    parser.feed_bytes(data, source=source, max_bytes=MAX_CAPTURE_BYTES, what="a capture")
    parser.check(source)
    return Capture(parser.sightings, parser.skipped_old)


class _Parser(StrictCsv):
    """The capture's columns and rows; the good ones become Sightings."""

    required = CAPTURE_COLUMNS

    def __init__(self, *, now: float, retention_seconds: float) -> None:
        super().__init__()
        self._latest = now + MAX_CLOCK_SKEW_SECONDS
        self._oldest = now - retention_seconds
        self.sightings: list[Sighting] = []
        self.skipped_old = 0
        # An RPI repeats in every advert for 10 minutes: one shared bytes object per distinct
        # hex text saves ~50 bytes per row.
        self._shared: dict[str, bytes] = {}

    def row(self, number: int, fields: dict[str, str]) -> list[str]:
        """Check one row; a good one becomes a Sighting unless it is older than retention."""
        t_text, rpi_text, aem_text, rssi_text = (
            fields["t"],
            fields["rpi"],
            fields["aem"],
            fields["rssi"],
        )
        problems: list[str] = []
        t = _time(t_text, self._latest, problems)
        rpi = self._shared.get(rpi_text) or _hex("rpi", rpi_text, RPI_LENGTH, problems)
        aem = self._shared.get(aem_text) or _hex("aem", aem_text, AEM_LENGTH, problems)
        rssi = _RSSI_TEXTS.get(rssi_text)
        if rssi is None:
            rssi = _rssi(rssi_text, problems)
        if problems or t is None or rpi is None or aem is None or rssi is None:
            return problems  # each None above came with a problem
        if t < self._oldest:
            self.skipped_old += 1
            return problems
        if len(self._shared) >= _SHARED_VALUES:
            self._shared.clear()
        self._shared[rpi_text] = rpi
        self._shared[aem_text] = aem
        self.sightings.append(Sighting(t, rpi, aem, rssi))
        return problems


def _time(text: str, latest: float, problems: list[str]) -> float | None:
    if not NUMBER.fullmatch(text):
        problems.append(f"t {text!r} is not a number of unix seconds")
        return None
    t = float(text)
    if not math.isfinite(t):
        problems.append(f"t {text!r} is not finite")
    elif t < 0:
        problems.append(f"t {text} is before 1970")
    elif t > latest:
        problems.append(
            f"t {text} is more than {MAX_CLOCK_SKEW_SECONDS:.0f} s after now"
            " (a wrong clock, or a wrong --now?)"
        )
    else:
        return t
    return None


def _hex(name: str, text: str, length: int, problems: list[str]) -> bytes | None:
    if not _HEX.fullmatch(text):
        problems.append(f"{name} {text!r} is not hexadecimal")
    elif len(text) != 2 * length:
        problems.append(
            f"{name} has {len(text)} hex digits, expected {2 * length} ({length} bytes)"
        )
    else:
        return bytes.fromhex(text)
    return None


def _rssi(text: str, problems: list[str]) -> int | None:
    if not _INTEGER.fullmatch(text):
        problems.append(f"rssi {text!r} is not an integer (dBm)")
        return None
    rssi = int(text)
    if not RSSI_MIN <= rssi <= RSSI_MAX:
        problems.append(f"rssi {rssi} is outside {RSSI_MIN}..{RSSI_MAX} dBm")
        return None
    return rssi
