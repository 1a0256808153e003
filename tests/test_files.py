"""Bounded reads of user-named files (bluezoned.files)."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from bluezoned.errors import InvalidInput
from bluezoned.files import FileTooLarge, read_bounded


class _Endless(io.RawIOBase):
    """A pipe that never ends; counts what was taken from it."""

    def __init__(self) -> None:
        self.taken = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        n = len(buffer)
        buffer[:n] = b"x" * n
        self.taken += n
        return n


def test_file_within_the_bound_is_read_whole(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_bytes(b"0123456789")
    assert read_bounded(path, 10, what="a test file") == b"0123456789"
    assert read_bounded(str(path), 100, what="a test file") == b"0123456789"


def test_larger_file_is_refused_naming_it_and_the_bound(tmp_path: Path) -> None:
    path = tmp_path / "big.csv"
    path.write_bytes(b"x" * 11)
    with pytest.raises(InvalidInput) as caught:
        read_bounded(path, 10, what="a test file")
    assert str(path) in str(caught.value)
    assert "larger than 10 bytes, the bound for a test file" in str(caught.value)


def test_unreadable_file_names_the_path(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match=f"cannot read {tmp_path / 'absent'}"):
        read_bounded(tmp_path / "absent", 10, what="a test file")
    with pytest.raises(InvalidInput, match="cannot read"):
        read_bounded(tmp_path, 10, what="a test file")  # a directory


def test_endless_stdin_costs_no_more_than_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    raw = _Endless()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(raw, buffer_size=64)))
    with pytest.raises(InvalidInput, match="<stdin> is larger than 1000 bytes"):
        read_bounded("-", 1000, what="a test file")
    assert raw.taken <= 1000 + 64


def test_stdin_within_the_bound(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"id,t,rssi\n")))
    assert read_bounded("-", 100, what="a test file") == b"id,t,rssi\n"


def test_a_regular_file_over_the_bound_is_refused_from_its_size(tmp_path: Path) -> None:
    huge = tmp_path / "huge.csv"
    with huge.open("wb") as handle:  # sparse: no disk space used
        handle.truncate(1 << 30)
    with pytest.raises(FileTooLarge) as caught:
        read_bounded(huge, 10, what="a test file")
    assert f"({1 << 30} bytes)" in str(caught.value)  # the size came from fstat, unread
    assert isinstance(caught.value, InvalidInput)
