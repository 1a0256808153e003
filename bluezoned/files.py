"""Bounded reads of user-named files: never more than the limit in memory, errors that name the file."""

from __future__ import annotations

import os
import sys
from typing import Final

from bluezoned.errors import InvalidInput

STDIN: Final = "-"


class FileTooLarge(InvalidInput):
    """A file over its bound (refused before reading when its size is known)."""


def read_bounded(path: str | os.PathLike[str], limit: int, *, what: str) -> bytes:
    """All of ``path`` ('-' is standard input) when it holds at most ``limit`` bytes.

    A regular file larger than ``limit`` is refused from its size, unread; anything else (a pipe,
    stdin) is read to at most ``limit + 1`` bytes, so an oversized file or an endless pipe costs
    no more memory than the bound. FileTooLarge names the file and ``what`` it should have been;
    InvalidInput (the OSError chained) when it cannot be read.
    """
    source = "<stdin>" if os.fspath(path) == STDIN else os.fspath(path)
    too_large = f"{source} is larger than {limit} bytes, the bound for {what}"
    try:
        if os.fspath(path) == STDIN:
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as handle:
                size = os.fstat(handle.fileno()).st_size
                if size > limit:
                    raise FileTooLarge(f"{too_large} ({size} bytes)")
                data = handle.read(limit + 1)  # a device or a growing file reports no true size
    except OSError as exc:
        raise InvalidInput(f"cannot read {source}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise FileTooLarge(too_large)
    return data
