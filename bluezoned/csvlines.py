"""Strict, line-numbered CSV reading shared by the capture and RSSI parsers; pure, no I/O.

The format every bluezoned CSV input follows: UTF-8 text, one record per line, fields
separated by commas without quoting; the first non-blank line is a required header naming
the columns in any order (case and surrounding spaces ignored, a byte-order mark allowed);
blank lines are ignored. A subclass says which columns exist and how to read a row; this
module finds every bad line and refuses the file as a whole with
:class:`~bluezoned.errors.BadRecords`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from typing import Final

from bluezoned.errors import BadRecords, InvalidInput

MAX_LINE_CHARS: Final = 1024
"""Every valid row is under 100 characters; longer lines are refused without being parsed."""
MAX_RECORDED_PROBLEMS: Final = 1000
"""Bad lines kept with their messages; the rest are only counted (bounded memory)."""
NUMBER: Final = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
"""A decimal number as people write it; no inf, nan, hex or digit separators."""


class StrictCsv:
    """Line-by-line state of one file: the header's column positions and the problems found.

    Subclasses set ``required`` and ``optional`` and implement :meth:`row`.
    """

    required: tuple[str, ...] = ()
    optional: tuple[str, ...] = ()

    def __init__(self) -> None:
        """Start before the header."""
        self.columns: dict[str, int] | None = None
        self._width = 0
        self._header_failed = False
        self._problems: list[tuple[int, str]] = []
        self._total_bad = 0
        self._first_line = True

    def row(self, number: int, fields: dict[str, str]) -> list[str]:
        """Read one data row (fields by column name, stripped); return its problems, if any."""
        raise NotImplementedError

    def bad(self, number: int, message: str) -> None:
        """Record a problem of line ``number``."""
        self._total_bad += 1
        if len(self._problems) < MAX_RECORDED_PROBLEMS:
            self._problems.append((number, message))
        if self.columns is None:
            # A line that cannot be read where the header should be leaves no column order.
            self._header_failed = True

    def line(self, number: int, text: str) -> None:
        """Take line ``number`` (without its line end)."""
        if self._first_line:
            text = text.removeprefix("\ufeff")
            self._first_line = False
        if not text.strip():
            return
        if len(text) > MAX_LINE_CHARS:
            self.bad(number, f"line longer than {MAX_LINE_CHARS} characters")
        elif self._header_failed:
            return
        elif self.columns is None:
            self._header(number, text)
        else:
            fields = [f.strip() for f in text.split(",")]
            if len(fields) != self._width:
                quoted = " (fields cannot be quoted)" if '"' in text else ""
                self.bad(number, f"expected {self._width} fields, got {len(fields)}{quoted}")
                return
            problems = self.row(number, {name: fields[i] for name, i in self.columns.items()})
            if problems:
                self.bad(number, "; ".join(problems))

    def check(self, source: str, consequence: str = "nothing was imported") -> None:
        """Raise BadRecords naming every bad line, or an empty file's missing header."""
        if self.columns is None and not self._header_failed:
            self.bad(1, f"empty file: expected a header line {','.join(self.required)}")
        if self._total_bad:
            raise BadRecords(source, self._problems, self._total_bad, consequence)

    def feed_lines(self, lines: Iterable[str]) -> None:
        """Take lines numbered from 1 (trailing line ends allowed)."""
        for number, text in enumerate(lines, start=1):
            self.line(number, text.rstrip("\r\n"))

    def feed_bytes(self, data: bytes, *, source: str, max_bytes: int, what: str) -> None:
        """Take a whole file's bytes: InvalidInput when larger than ``max_bytes`` (``what`` names
        the kind of file); a line with a NUL byte or invalid UTF-8 is a bad line."""
        if len(data) > max_bytes:
            raise InvalidInput(
                f"{source}: {len(data)} bytes is larger than the {max_bytes} bytes {what} may have; split it"
            )
        if b"\0" not in data:
            try:
                text = data.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                for number, line in enumerate(_split_lines(text), start=1):
                    self.line(number, line.rstrip("\r"))
                return
        for number, raw in enumerate(data.split(b"\n"), start=1):
            nul = raw.find(b"\0")
            if nul >= 0:
                self.bad(number, f"NUL byte at column {nul + 1} (is this a binary file?)")
                continue
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                self.bad(
                    number,
                    f"not UTF-8 text (byte 0x{raw[exc.start]:02x} at column {exc.start + 1})",
                )
                continue
            self.line(number, text.rstrip("\r"))

    def _header(self, number: int, text: str) -> None:
        names = [name.strip().lower() for name in text.split(",")]
        optional = f"[,{','.join(self.optional)}]" if self.optional else ""
        expected = f"expected the columns {','.join(self.required)}{optional} in any order"
        if names and NUMBER.fullmatch(names[0]):
            self.bad(number, f"no header: the first line must name the columns; {expected}")
            return
        problems = []
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            problems.append(f"duplicate column(s) {', '.join(duplicates)}")
        unknown = [n or "(empty)" for n in names if n not in self.required + self.optional]
        if unknown:
            problems.append(f"unknown column(s) {', '.join(unknown)}")
        missing = [c for c in self.required if c not in names]
        if missing:
            problems.append(f"missing column(s) {', '.join(missing)}")
        if problems:
            self.bad(number, f"bad header: {'; '.join(problems)} ({expected})")
            return
        self.columns = {name: i for i, name in enumerate(names)}
        self._width = len(names)


def _split_lines(text: str) -> Iterator[str]:
    """Lines split at "\\n" only (as line numbers count), lazily: no second copy of the text."""
    start = 0
    while (end := text.find("\n", start)) >= 0:
        yield text[start:end]
        start = end + 1
    yield text[start:]
