"""Bounded reads of user-named files: never more than the limit in memory, errors that name the file."""

from __future__ import annotations

import os
import sys

from bluezoned.errors import InvalidInput

STDIN: str = "-"


def read_bounded(path: str | os.PathLike[str], limit: int, *, what: str) -> bytes:
    """All of ``path`` ('-' is standard input) when it holds at most ``limit`` bytes.

    Reads at most ``limit + 1`` bytes, so an oversized file or an endless pipe costs no more
    memory than the bound. InvalidInput names the file (and ``what`` it should have been) when
    it cannot be read or is larger.
    """
    source = "<stdin>" if os.fspath(path) == STDIN else os.fspath(path)
    try:
        if os.fspath(path) == STDIN:
            data = sys.stdin.buffer.read(limit + 1)
        else:
            with open(path, "rb") as handle:
                data = handle.read(limit + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {source}: {exc.strerror or exc}") from exc
    if len(data) > limit:
        raise InvalidInput(f"{source} is larger than {limit} bytes, the bound for {what}")
    return data
