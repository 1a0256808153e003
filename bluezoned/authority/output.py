"""Where exports go: a small interface, and the local-directory implementation.

A national deployment implements the same three methods on S3-compatible object storage
behind a CDN (key-distribution.md §9); the publisher does not change.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Protocol

from bluezoned.errors import BluezonedError


class ExportOutput(Protocol):
    """Storage for published objects, addressed by names relative to the filename root."""

    def write(self, name: str, data: bytes) -> None:
        """Store ``data`` under ``name`` atomically: readers see the old object or the new one."""

    def names(self) -> list[str]:
        """Every object name currently stored."""

    def read(self, name: str) -> bytes | None:
        """An object's bytes, or None when it does not exist."""

    def delete(self, name: str) -> None:
        """Remove an object; a missing one is not an error."""


class DirectoryOutput:
    """Exports as files in one directory, written via a temporary file and rename."""

    def __init__(self, directory: Path) -> None:
        """Use (and create, mode 0755: exports are public) ``directory``."""
        self.directory = directory
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise BluezonedError(
                f"{directory}: cannot create the output directory: {exc.strerror}"
            ) from exc

    def write(self, name: str, data: bytes) -> None:
        """Write ``name`` atomically (temporary file in the same directory, fsync, rename)."""
        target = self._path(name)
        try:
            fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=f".{name}.", suffix=".tmp")
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(data)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.chmod(temporary, 0o644)
                os.replace(temporary, target)
            except BaseException:
                Path(temporary).unlink(missing_ok=True)
                raise
            directory_fd = os.open(self.directory, os.O_RDONLY)
            try:
                os.fsync(directory_fd)
            finally:
                os.close(directory_fd)
        except OSError as exc:
            raise BluezonedError(f"{target}: cannot write: {exc.strerror}") from exc

    def names(self) -> list[str]:
        """Names of the regular files in the directory, temporary files excluded."""
        return sorted(
            entry.name
            for entry in self.directory.iterdir()
            if entry.is_file() and not entry.name.startswith(".")
        )

    def read(self, name: str) -> bytes | None:
        """The file's bytes, or None when it does not exist."""
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise BluezonedError(f"{self.directory / name}: cannot read: {exc.strerror}") from exc

    def delete(self, name: str) -> None:
        """Remove ``name`` if present."""
        self._path(name).unlink(missing_ok=True)

    def _path(self, name: str) -> Path:
        if "/" in name or name in ("", ".", "..") or name.startswith("."):
            raise BluezonedError(f"{name!r} is not a plain object name")
        return self.directory / name
