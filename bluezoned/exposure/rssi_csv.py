"""Parse the RSSI CSV of ``bluezoned analyze``; pure, no I/O: lines or bytes in, arrays out.

Format: UTF-8 text, one record per line, comma-separated without quoting. The first non-blank
line is a required header naming the columns ``id,t,rssi`` and optionally ``tx_power``, in any
order (case and surrounding spaces ignored; a byte-order mark is allowed). Blank lines are
ignored. Fields:

* ``id``: a non-empty label of at most ``MAX_ID_CHARS`` characters grouping one transmitter;
* ``t``: unix seconds, a number within ``0..MAX_UNIX_SECONDS`` (year 9999);
* ``rssi``: a number in dBm within ``[RSSI_MIN, RSSI_MAX]``;
* ``tx_power``: a number in dBm within the GAEN sanity window, or empty for "unknown".

A file with any bad line is refused as a whole: :class:`~bluezoned.errors.BadRecords` lists
each bad line (the first ``MAX_RECORDED_PROBLEMS``) with every problem of that line.
"""

from __future__ import annotations

import math
from array import array
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Final

import numpy as np
import numpy.typing as npt

from bluezoned.const import (
    MAX_UNIX_SECONDS,
    RSSI_MAX,
    RSSI_MIN,
    TX_POWER_MAX_ACCEPTED,
    TX_POWER_MIN_ACCEPTED,
)
from bluezoned.csvlines import NUMBER, StrictCsv
from bluezoned.errors import InvalidInput

REQUIRED_COLUMNS: Final = ("id", "t", "rssi")
OPTIONAL_COLUMNS: Final = ("tx_power",)
MAX_RSSI_CSV_BYTES: Final = 256 * 1024 * 1024
"""About 8 million rows of ~30 bytes: the parsed columns (28 bytes a row) stay near 230 MB,
the decoded text adds at most the file's size while parsing; split larger files."""
MAX_IDS: Final = 200_000
"""Distinct ids (transmitters) per file by default. The engine analyses 900-1,500 contacts a
second here (bench_analyze; one-sighting contacts are the fast end), so this many take 2-4
minutes. A file with an id per row (8 million) would take over an hour, so it is refused at the
line that passes the bound, before its memory grows. A kiosk's day of rotating identifiers is
an estimated tens of thousands."""
MAX_ID_CHARS: Final = 128
"""Room for a hex RPI (32), a MAC address or a readable label."""


@dataclass(frozen=True, slots=True)
class RssiTable:
    """Parsed rows in file order; ``tx_power`` is NaN where the file left it empty or had no column.

    Ids are kept once each: ``labels`` in order of first appearance and one ``codes`` entry per
    row indexing them. A fixed-width string column would take the longest id's width for every
    row (128 characters x 4 bytes x 8 million rows is 4 GB from a 256 MB file).
    """

    labels: tuple[str, ...]
    codes: npt.NDArray[np.int32]
    t: npt.NDArray[np.float64]
    rssi: npt.NDArray[np.float64]
    tx_power: npt.NDArray[np.float64]

    @property
    def rows(self) -> int:
        """Number of data rows."""
        return int(self.t.size)

    @property
    def ids(self) -> npt.NDArray[np.object_]:
        """Each row's id (an object array sharing the label strings)."""
        labels = np.empty(len(self.labels), dtype=object)
        labels[:] = self.labels
        return np.asarray(labels[self.codes])


def parse_rssi_csv(
    lines: Iterable[str], *, source: str = "<rssi csv>", max_ids: int = MAX_IDS
) -> RssiTable:
    """Parse CSV lines (line 1 first, trailing newlines allowed); raise BadRecords if any is bad,
    InvalidInput as soon as a line brings the distinct ids past ``max_ids``."""
    parser = _Parser(source, max_ids)
    parser.feed_lines(lines)
    parser.check(source, "nothing was analysed")
    return parser.table()


def parse_rssi_csv_bytes(
    data: bytes, *, source: str = "<rssi csv>", max_ids: int = MAX_IDS
) -> RssiTable:
    """Parse a whole file's bytes: InvalidInput when too large or with more than ``max_ids``
    distinct ids, BadRecords naming undecodable lines."""
    parser = _Parser(source, max_ids)
    parser.feed_bytes(data, source=source, max_bytes=MAX_RSSI_CSV_BYTES, what="an RSSI CSV")
    parser.check(source, "nothing was analysed")
    return parser.table()


class _Parser(StrictCsv):
    """The RSSI CSV's columns; good rows collected column by column."""

    required = REQUIRED_COLUMNS
    optional = OPTIONAL_COLUMNS

    def __init__(self, source: str, max_ids: int) -> None:
        super().__init__()
        self._source = source
        self._max_ids = max_ids
        # Typed arrays, not lists: a Python float in a list costs 32 bytes, here 8.
        self._codes: dict[str, int] = {}
        self._id_code = array("i")
        self._t = array("d")
        self._rssi = array("d")
        self._tx = array("d")

    def row(self, number: int, fields: dict[str, str]) -> list[str]:
        """Check one row and keep it when good."""
        problems: list[str] = []
        ident = fields["id"]
        if not ident:
            problems.append("id is empty")
        elif len(ident) > MAX_ID_CHARS:
            problems.append(f"id longer than {MAX_ID_CHARS} characters")
        t = _number("t", fields["t"], 0.0, MAX_UNIX_SECONDS, "unix seconds", problems)
        rssi = _number("rssi", fields["rssi"], RSSI_MIN, RSSI_MAX, "dBm", problems)
        tx = math.nan
        if fields.get("tx_power"):
            tx = _number(
                "tx_power",
                fields["tx_power"],
                TX_POWER_MIN_ACCEPTED,
                TX_POWER_MAX_ACCEPTED,
                "dBm",
                problems,
            )
        if not problems:
            code = self._codes.setdefault(ident, len(self._codes))
            if code == self._max_ids:
                raise InvalidInput(
                    f"{self._source}:{number}: more than {self._max_ids:,} distinct ids; each id "
                    "is one transmitter, and the engine takes about a millisecond per "
                    "transmitter (is the id column unique per row?)"
                )
            self._id_code.append(code)
            self._t.append(t)
            self._rssi.append(rssi)
            self._tx.append(tx)
        return problems

    def table(self) -> RssiTable:
        """The good rows as arrays (sharing the parser's buffers, no copy)."""
        return RssiTable(
            tuple(self._codes),
            np.frombuffer(self._id_code, dtype=np.intc).astype(np.int32, copy=False),
            np.frombuffer(self._t, dtype=np.float64),
            np.frombuffer(self._rssi, dtype=np.float64),
            np.frombuffer(self._tx, dtype=np.float64),
        )


def _number(name: str, text: str, lo: float, hi: float, unit: str, problems: list[str]) -> float:
    """The field's value, or NaN after recording why it is not a number within [lo, hi]."""
    if not NUMBER.fullmatch(text):
        problems.append(f"{name} {text!r} is not a number ({unit})")
        return math.nan
    value = float(text)
    if not math.isfinite(value) or not lo <= value <= hi:
        bound = f">= {lo:g}" if math.isinf(hi) else f"within {lo:g}..{hi:g}"
        problems.append(f"{name} {text} is not {bound} {unit}")
        return math.nan
    return value
