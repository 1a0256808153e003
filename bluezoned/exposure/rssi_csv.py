"""Parse the RSSI CSV of ``bluezoned analyze``; pure, no I/O: lines or bytes in, arrays out.

Format: UTF-8 text, one record per line, comma-separated without quoting. The first non-blank
line is a required header naming the columns ``id,t,rssi`` and optionally ``tx_power``, in any
order (case and surrounding spaces ignored; a byte-order mark is allowed). Blank lines are
ignored. Fields:

* ``id``: a non-empty label of at most ``MAX_ID_CHARS`` characters grouping one transmitter;
* ``t``: unix seconds, a finite number >= 0;
* ``rssi``: a number in dBm within ``[RSSI_MIN, RSSI_MAX]``;
* ``tx_power``: a number in dBm within the GAEN sanity window, or empty for "unknown".

A file with any bad line is refused as a whole: :class:`~bluezoned.errors.BadRecords` lists
each bad line (the first ``MAX_RECORDED_PROBLEMS``) with every problem of that line.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from bluezoned.const import RSSI_MAX, RSSI_MIN, TX_POWER_MAX_ACCEPTED, TX_POWER_MIN_ACCEPTED
from bluezoned.errors import BadRecords, InvalidInput

REQUIRED_COLUMNS: Final = ("id", "t", "rssi")
OPTIONAL_COLUMNS: Final = ("tx_power",)
MAX_RSSI_CSV_BYTES: Final = 256 * 1024 * 1024
"""About 8 million rows of ~30 bytes: the arrays stay under 200 MB; split larger files."""
MAX_LINE_CHARS: Final = 1024
"""A valid row is under 100 characters; longer lines are refused without being parsed."""
MAX_ID_CHARS: Final = 128
"""Room for a hex RPI (32), a MAC address or a readable label."""
MAX_RECORDED_PROBLEMS: Final = 1000
"""Bad lines kept with their messages; the rest are only counted (bounded memory)."""

_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")


@dataclass(frozen=True, slots=True)
class RssiTable:
    """Parsed rows in file order; ``tx_power`` is NaN where the file left it empty or had no column."""

    ids: npt.NDArray[np.str_]
    t: npt.NDArray[np.float64]
    rssi: npt.NDArray[np.float64]
    tx_power: npt.NDArray[np.float64]

    @property
    def rows(self) -> int:
        """Number of data rows."""
        return int(self.t.size)


def parse_rssi_csv(lines: Iterable[str], *, source: str = "<rssi csv>") -> RssiTable:
    """Parse CSV lines (line 1 first, trailing newlines allowed); raise BadRecords if any is bad."""
    parser = _Parser()
    for number, line in enumerate(lines, start=1):
        if number == 1:
            line = line.removeprefix("\ufeff")
        parser.line(number, line.rstrip("\r\n"))
    return parser.finish(source)


def parse_rssi_csv_bytes(data: bytes, *, source: str = "<rssi csv>") -> RssiTable:
    """Parse a whole file's bytes: InvalidInput when too large, BadRecords naming undecodable lines."""
    if len(data) > MAX_RSSI_CSV_BYTES:
        raise InvalidInput(
            f"{source}: {len(data)} bytes is more than the {MAX_RSSI_CSV_BYTES} an RSSI CSV may have"
        )
    parser = _Parser()
    for number, raw in enumerate(data.split(b"\n"), start=1):
        if b"\0" in raw:
            parser.bad(number, "NUL byte (is this a binary file?)")
            continue
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError as exc:
            parser.bad(
                number, f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})"
            )
            continue
        if number == 1:
            text = text.removeprefix("\ufeff")
        parser.line(number, text.rstrip("\r"))
    return parser.finish(source)


class _Parser:
    """Line-by-line state: the header's column positions, good rows, counted problems."""

    def __init__(self) -> None:
        self._columns: dict[str, int] | None = None
        self._width = 0
        self._header_failed = False
        self._ids: list[str] = []
        self._t: list[float] = []
        self._rssi: list[float] = []
        self._tx: list[float] = []
        self._problems: list[tuple[int, str]] = []
        self._total_bad = 0

    def bad(self, number: int, message: str) -> None:
        self._total_bad += 1
        if len(self._problems) < MAX_RECORDED_PROBLEMS:
            self._problems.append((number, message))
        if self._columns is None:
            self._header_failed = True

    def line(self, number: int, text: str) -> None:
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

    def finish(self, source: str) -> RssiTable:
        if self._columns is None and not self._header_failed:
            self.bad(1, f"empty file: expected a header line {','.join(REQUIRED_COLUMNS)}")
        if self._total_bad:
            raise BadRecords(source, self._problems, self._total_bad)
        return RssiTable(
            np.asarray(self._ids, dtype=np.str_),
            np.asarray(self._t, dtype=np.float64),
            np.asarray(self._rssi, dtype=np.float64),
            np.asarray(self._tx, dtype=np.float64),
        )

    def _header(self, number: int, text: str) -> None:
        names = [name.strip().lower() for name in text.split(",")]
        known = REQUIRED_COLUMNS + OPTIONAL_COLUMNS
        expected = f"expected the columns {','.join(REQUIRED_COLUMNS)}[,tx_power] in any order"
        problems = []
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"duplicate column(s) {', '.join(duplicates)}")
        unknown = [n or "(empty)" for n in names if n not in known]
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        missing = [c for c in REQUIRED_COLUMNS if c not in names]
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if problems:
            self.bad(number, f"bad header: {'; '.join(problems)} ({expected})")
            return
        self._columns = {name: i for i, name in enumerate(names)}
        self._width = len(names)

    def _row(self, number: int, columns: dict[str, int], text: str) -> None:
        fields = [f.strip() for f in text.split(",")]
        if len(fields) != self._width:
            self.bad(number, f"expected {self._width} fields, got {len(fields)}")
            return
        problems: list[str] = []
        ident = fields[columns["id"]]
        if not ident:
            problems.append("id is empty")
        elif len(ident) > MAX_ID_CHARS:
            problems.append(f"id longer than {MAX_ID_CHARS} characters")
        t = _number("t", fields[columns["t"]], 0.0, math.inf, "unix seconds", problems)
        rssi = _number("rssi", fields[columns["rssi"]], RSSI_MIN, RSSI_MAX, "dBm", problems)
        tx = math.nan
        if "tx_power" in columns and fields[columns["tx_power"]]:
            tx = _number(
                "tx_power",
                fields[columns["tx_power"]],
                TX_POWER_MIN_ACCEPTED,
                TX_POWER_MAX_ACCEPTED,
                "dBm",
                problems,
            )
        if problems:
            self.bad(number, "; ".join(problems))
            return
        self._ids.append(ident)
        self._t.append(t)
        self._rssi.append(rssi)
        self._tx.append(tx)


def _number(name: str, text: str, lo: float, hi: float, unit: str, problems: list[str]) -> float:
    """The field's value, or NaN after recording why it is not a number within [lo, hi]."""
    if not _NUMBER.fullmatch(text):
        problems.append(f"{name} {text!r} is not a number ({unit})")
        return math.nan
    value = float(text)
    if not math.isfinite(value) or not lo <= value <= hi:
        bound = f">= {lo:g}" if math.isinf(hi) else f"within {lo:g}..{hi:g}"
        problems.append(f"{name} {text} is not {bound} {unit}")
        return math.nan
    return value
