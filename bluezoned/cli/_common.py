"""Shared pieces of the click shell: global options, the clock override, error-to-exit mapping."""

from __future__ import annotations

import datetime as dt
import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

import click
import platformdirs

from bluezoned.const import DB_FILENAME, RISK_LEVEL_HIGH
from bluezoned.errors import BadRecords, BluezonedError, KeyFileRejected, StoreError

CONTEXT_SETTINGS: Final = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

EXIT_OK: Final = 0
EXIT_ERROR: Final = 1
"""Any other bluezoned error."""
EXIT_USAGE: Final = 2
"""click's own code for bad arguments."""
EXIT_KEYFILE_REFUSED: Final = 3
EXIT_BAD_INPUT: Final = 4
"""An input file held malformed records; nothing was done with it."""
EXIT_STORE: Final = 5
"""The state store could not be opened or written."""

MAX_LISTED_PROBLEMS: Final = 20


@dataclass(frozen=True, slots=True)
class CliState:
    """What the global options settle for every command."""

    state_dir: Path
    now: float | None
    """Pretended unix time from ``--now``; None means the system clock."""

    @property
    def database(self) -> Path:
        """The device store's file in the state directory."""
        return self.state_dir / DB_FILENAME

    def current_time(self) -> float:
        """The time commands act at: ``--now`` when given, else the wall clock."""
        if self.now is not None:
            return self.now
        return dt.datetime.now(dt.UTC).timestamp()


def default_state_dir() -> Path:
    """/var/lib/bluezoned for root, else the user's data directory."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/bluezoned")
    return Path(platformdirs.user_data_dir("bluezoned", appauthor=False))


def parse_now(value: str) -> float:
    """Parse ``--now``: unix seconds, or ISO-8601 (a time without zone is taken as UTC)."""
    text = value.strip()
    try:
        seconds = float(text)
    except ValueError:
        pass
    else:
        if seconds != seconds or seconds in (float("inf"), float("-inf")) or seconds < 0:
            raise click.BadParameter(f"{value!r} is not a time after 1970", param_hint="--now")
        return seconds
    try:
        parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r} is neither unix seconds nor an ISO-8601 time", param_hint="--now"
        ) from exc
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=dt.UTC)
    return parsed.timestamp()


def utc_text(t: float) -> str:
    """``t`` (unix seconds) as ISO-8601 UTC to the second with a Z: 2026-11-30T02:18:56Z."""
    return dt.datetime.fromtimestamp(t, dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def risk_name(level: int | None) -> str | None:
    """A stored risk level as "high" or "low"; None stays None (nothing scored)."""
    if level is None:
        return None
    return "high" if level >= RISK_LEVEL_HIGH else "low"


def pass_state(func: Callable[..., object]) -> Callable[..., object]:
    """Decorator handing the command the :class:`CliState` built by the group."""
    return click.pass_obj(func)


def fail(message: str, code: int) -> None:
    """Print one line on stderr and exit with ``code``."""
    click.echo(f"bluezoned: {message}", err=True)
    sys.exit(code)


@contextmanager
def translate_errors() -> Iterator[None]:
    """Map bluezoned's error tree to one stderr line and an exit code, in one place."""
    try:
        yield
    except KeyFileRejected as exc:
        fail(f"refused: {exc}", EXIT_KEYFILE_REFUSED)
    except BadRecords as exc:
        click.echo(f"bluezoned: {exc}; {exc.consequence}", err=True)
        for line, message in exc.problems[:MAX_LISTED_PROBLEMS]:
            click.echo(f"  {exc.source}:{line}: {message}", err=True)
        if exc.total_bad > MAX_LISTED_PROBLEMS:
            click.echo(f"  ... and {exc.total_bad - MAX_LISTED_PROBLEMS} more", err=True)
        sys.exit(EXIT_BAD_INPUT)
    except StoreError as exc:
        fail(f"store: {exc}", EXIT_STORE)
    except BluezonedError as exc:
        fail(str(exc), EXIT_ERROR)
