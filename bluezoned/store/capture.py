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
from collections.abc import Iterable, Iterator
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
from bluezoned.errors import BadRecords, InvalidInput
from bluezoned.models import Sighting

CAPTURE_COLUMNS: Final = ("t", "rpi", "aem", "rssi")
MAX_CAPTURE_BYTES: Final = 64 * 1024 * 1024
"""Largest capture accepted: ~1 million rows, parsed with a peak of ~300 MB (bytes, text and
Sighting objects before folding). Split bigger captures; each file is all-or-nothing."""
MAX_LINE_CHARS: Final = 1024
"""A valid row is under 80 characters; longer lines are refused without being parsed."""
MAX_CLOCK_SKEW_SECONDS: Final = 300.0
"""Rows up to 5 minutes in the future are tolerated as clock skew between the two devices."""
MAX_RECORDED_PROBLEMS: Final = 1000
"""Bad lines kept with their messages; the rest are only counted (bounded memory)."""
DEFAULT_RETENTION_SECONDS: Final = RETENTION_DAYS * SECONDS_PER_DAY

_SHARED_VALUES: Final = 1 << 16
"""Bound on the distinct RPI/AEM texts remembered while parsing (hostile files)."""

_RSSI_TEXTS: Final = {str(v): v for v in range(RSSI_MIN, RSSI_MAX + 1)}
"""The usual spellings of every valid RSSI, parsed once and shared (CPython caches few ints)."""

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
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
    for number, line in enumerate(lines, start=1):
        parser.line(number, line.rstrip("\r\n"))
    return parser.finish(source)


def parse_capture_bytes(
    data: bytes,
    *,
    now: float,
    source: str = "<capture>",
    retention_seconds: float = DEFAULT_RETENTION_SECONDS,
) -> Capture:
    """Parse a whole capture file's bytes: refuse it if too large (InvalidInput), and name
    each line holding NUL bytes or invalid UTF-8 (BadRecords) besides the parse errors."""
    if len(data) > MAX_CAPTURE_BYTES:
        raise InvalidInput(
            f"{source}: {len(data)} bytes is larger than the {MAX_CAPTURE_BYTES} bytes"
            " a capture may have; split it"
        )
    if b"\0" not in data:
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            return parse_capture(
                _split_lines(text),
                now=now,
                source=source,
                retention_seconds=retention_seconds,
            )
    parser = _Parser(now=now, retention_seconds=retention_seconds)
    for number, raw in enumerate(data.split(b"\n"), start=1):
        nul = raw.find(b"\0")
        if nul >= 0:
            parser.bad(number, f"NUL byte at column {nul + 1} (is this a binary file?)")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            parser.bad(
                number,
                f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
            )
            continue
        parser.line(number, text.rstrip("\r"))
    return parser.finish(source)


def _split_lines(text: str) -> Iterator[str]:
    """Lines split at "\n" only (as line numbers count), lazily: no second copy of the text."""
    start = 0
    while (end := text.find("\n", start)) >= 0:
        yield text[start:end]
        start = end + 1
    yield text[start:]


class _Parser:
    """Line-by-line state: the header's column positions, good rows, counted problems."""

    def __init__(self, *, now: float, retention_seconds: float) -> None:
        self._latest = now + MAX_CLOCK_SKEW_SECONDS
        self._oldest = now - retention_seconds
        self._columns: tuple[int, int, int, int] | None = None
        self._header_failed = False
        self._sightings: list[Sighting] = []
        self._skipped_old = 0
        self._problems: list[tuple[int, str]] = []
        self._total_bad = 0
        self._first_line = True
        # An RPI repeats in every advert for 10 minutes: one shared bytes object per distinct
        # hex text saves ~50 bytes per row.
        self._shared: dict[str, bytes] = {}

    def bad(self, number: int, message: str) -> None:
        self._total_bad += 1
        if len(self._problems) < MAX_RECORDED_PROBLEMS:
            self._problems.append((number, message))
        if self._columns is None:
            # A line that cannot be read where the header should be leaves no column order.
            self._header_failed = True

    def line(self, number: int, text: str) -> None:
        if self._first_line:
            text = text.removeprefix("\ufeff")
            self._first_line = False
        if not text.strip():
            return
        if len(text) > MAX_LINE_CHARS:
            self.bad(number, f"line longer than {MAX_LINE_CHARS} characters")
        elif self._header_failed:
            return
        elif self._columns is None:
            self._header(number, text)
        else:
            self._row(number, self._columns, text)

    def finish(self, source: str) -> Capture:
        if self._columns is None and not self._header_failed:
            self.bad(1, f"empty file: expected a header line {','.join(CAPTURE_COLUMNS)}")
        if self._total_bad:
            raise BadRecords(source, self._problems, self._total_bad)
        return Capture(self._sightings, self._skipped_old)

    def _header(self, number: int, text: str) -> None:
        names = [name.strip().lower() for name in text.split(",")]
        expected = f"expected the columns {','.join(CAPTURE_COLUMNS)} in any order"
        if names and _NUMBER.fullmatch(names[0]):
            self.bad(number, f"no header: the first line must name the columns; {expected}")
            return
        problems = []
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"duplicate column(s) {', '.join(duplicates)}")
        unknown = [n or "(empty)" for n in names if n not in CAPTURE_COLUMNS]
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        missing = [c for c in CAPTURE_COLUMNS if c not in names]
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if problems:
            self.bad(number, f"bad header: {'; '.join(problems)} ({expected})")
            return
        t, rpi, aem, rssi = (names.index(c) for c in CAPTURE_COLUMNS)
        self._columns = (t, rpi, aem, rssi)

    def _row(self, number: int, columns: tuple[int, int, int, int], text: str) -> None:
        fields = [f.strip() for f in text.split(",")]
        if len(fields) != len(CAPTURE_COLUMNS):
            self.bad(number, f"expected {len(CAPTURE_COLUMNS)} fields, got {len(fields)}")
            return
        t_text, rpi_text, aem_text, rssi_text = (fields[i] for i in columns)
        problems: list[str] = []
        t = _time(t_text, self._latest, problems)
        rpi = self._shared.get(rpi_text) or _hex("rpi", rpi_text, RPI_LENGTH, problems)
        aem = self._shared.get(aem_text) or _hex("aem", aem_text, AEM_LENGTH, problems)
        rssi = _RSSI_TEXTS.get(rssi_text)
        if rssi is None:
            rssi = _rssi(rssi_text, problems)
        if problems:
            self.bad(number, "; ".join(problems))
            return
        if t is None or rpi is None or aem is None or rssi is None:
            return  # each None above came with a problem
        if t < self._oldest:
            self._skipped_old += 1
            return
        if len(self._shared) >= _SHARED_VALUES:
            self._shared.clear()
        self._shared[rpi_text] = rpi
        self._shared[aem_text] = aem
        self._sightings.append(Sighting(t, rpi, aem, rssi))


def _time(text: str, latest: float, problems: list[str]) -> float | None:
    if not _NUMBER.fullmatch(text):
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
