"""``bluezoned sightings import`` through click's CliRunner, every exit code included."""

from __future__ import annotations

import importlib
import json
import os
import stat
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from bluezoned.cli import cli
from bluezoned.cli._common import parse_now
from bluezoned.const import RETENTION_DAYS, SECONDS_PER_DAY
from bluezoned.store import DB_FILENAME, Store

NOW_ISO = "2026-11-29T12:00:00Z"
NOW = parse_now(NOW_ISO)
RPI_A = "aa" * 16
RPI_B = "bb" * 16
HEADER = "t,rpi,aem,rssi\n"
GOOD = HEADER + "".join(
    f"{t},{rpi},0a0b0c0d,{rssi}\n"
    for t, rpi, rssi in [
        (NOW - 100.0, RPI_A, -60),
        (NOW - 95.5, RPI_A, -62),
        (NOW - 100.0, RPI_B, -70),
        (NOW - 80.0, RPI_A, -50),
        (NOW - 79.0, RPI_A, -55),
    ]
)


def run(state_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--state-dir", str(state_dir), "--now", NOW_ISO, *args])


def capture(tmp_path: Path, text: str | bytes, name: str = "cap.csv") -> Path:
    path = tmp_path / name
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text)
    return path


def stored(state_dir: Path) -> list[tuple[bytes, int, int, float, float, int, int, bytes]]:
    with Store.open(state_dir / DB_FILENAME, read_only=True) as store:
        return [
            (b.rpi, b.bucket, b.count, b.first_seen, b.last_seen, b.rssi_max, b.rssi_sum, b.aem)
            for b in store.sighting_buckets()
        ]


def test_import_folds_the_capture_into_buckets(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = run(state, "sightings", "import", str(capture(tmp_path, GOOD)))
    assert result.exit_code == 0, result.output
    assert result.stdout == "imported 5 sightings into 3 buckets\n"
    a, b = bytes.fromhex(RPI_A), bytes.fromhex(RPI_B)
    aem = bytes.fromhex("0a0b0c0d")
    assert stored(state) == [
        (a, NOW - 100, 2, NOW - 100.0, NOW - 95.5, -60, -122, aem),
        (b, NOW - 100, 1, NOW - 100.0, NOW - 100.0, -70, -70, aem),
        (a, NOW - 80, 2, NOW - 80.0, NOW - 79.0, -50, -105, aem),
    ]
    assert stat.S_IMODE(os.stat(state).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(state / DB_FILENAME).st_mode) == 0o600


def test_old_rows_are_skipped_and_reported(tmp_path: Path) -> None:
    old = NOW - RETENTION_DAYS * SECONDS_PER_DAY - 1
    text = GOOD + f"{old},{RPI_A},0a0b0c0d,-60\n{old - 5},{RPI_B},0a0b0c0d,-60\n"
    result = run(tmp_path, "sightings", "import", str(capture(tmp_path, text)))
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        f"imported 5 sightings into 3 buckets (2 rows older than {RETENTION_DAYS} days skipped)\n"
    )


def test_import_json(tmp_path: Path) -> None:
    path = capture(tmp_path, GOOD)
    result = run(tmp_path / "s", "sightings", "import", "--json", str(path))
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "file": str(path),
        "database": str(tmp_path / "s" / DB_FILENAME),
        "rows": 5,
        "sightings": 5,
        "buckets": 3,
        "skipped_old": 0,
    }


def test_importing_again_merges_into_the_same_buckets(tmp_path: Path) -> None:
    path = capture(tmp_path, GOOD)
    run(tmp_path / "s", "sightings", "import", str(path))
    result = run(tmp_path / "s", "sightings", "import", str(path))
    assert result.exit_code == 0
    assert [row[2] for row in stored(tmp_path / "s")] == [4, 2, 4]


BAD = (
    HEADER
    + f"{NOW - 10},{RPI_A},0a0b0c0d,-60\n"
    + f"{NOW - 10},{RPI_A[:-2]},0a0b0c0d,-60\n"
    + f"{NOW - 10},{RPI_A},0a0b0c0d,-60\n"
    + f"{NOW + 3600},{RPI_A},0a0b0c0d,-60\n"
    + f"{NOW - 10},{RPI_A},0a0b0c0d\n"
)


def test_bad_capture_exits_4_naming_each_line_and_creates_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    path = capture(tmp_path, BAD)
    result = run(state, "sightings", "import", str(path))
    assert result.exit_code == 4
    assert result.stdout == ""
    assert "3 bad row(s); nothing was imported" in result.stderr
    assert f"{path}:3: rpi has 30 hex digits" in result.stderr
    assert f"{path}:5: t {NOW + 3600} is more than 300 s after now" in result.stderr
    assert f"{path}:6: expected 4 fields, got 3" in result.stderr
    assert not state.exists()


def test_bad_capture_leaves_an_existing_store_unchanged(tmp_path: Path) -> None:
    state = tmp_path / "state"
    assert run(state, "sightings", "import", str(capture(tmp_path, GOOD))).exit_code == 0
    before = stored(state)
    result = run(state, "sightings", "import", str(capture(tmp_path, BAD, "bad.csv")))
    assert result.exit_code == 4
    assert stored(state) == before


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", ":1: not UTF-8 text (byte 0x89 at column 1)"),
        (HEADER.encode() + b"\x00\x00\x00\n", ":2: NUL byte at column 1"),
        (b"", ":1: empty file"),
        (b"time,rpi,aem,rssi\n", ":1: bad header: unknown column(s) time; missing column(s) t"),
    ],
)
def test_unreadable_captures_exit_4(tmp_path: Path, data: bytes, message: str) -> None:
    path = capture(tmp_path, data)
    result = run(tmp_path / "s", "sightings", "import", str(path))
    assert result.exit_code == 4
    assert f"{path}{message}" in result.stderr
    assert not (tmp_path / "s").exists()


def test_oversized_capture_exits_1(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    module = importlib.import_module("bluezoned.cli.sightings")
    monkeypatch.setattr(module, "MAX_CAPTURE_BYTES", 100)
    result = run(tmp_path / "s", "sightings", "import", str(capture(tmp_path, GOOD)))
    assert result.exit_code == 1
    assert "larger than the 100 bytes a capture may have" in result.stderr
    assert not (tmp_path / "s").exists()


def test_missing_file_is_a_usage_error(tmp_path: Path) -> None:
    result = run(tmp_path, "sightings", "import", str(tmp_path / "nope.csv"))
    assert result.exit_code == 2
    assert "does not exist" in result.stderr


def test_unusable_store_exits_5(tmp_path: Path) -> None:
    path = capture(tmp_path, GOOD)
    (tmp_path / "afile").write_text("a file where a directory should be")
    result = run(tmp_path / "afile" / "state", "sightings", "import", str(path))
    assert result.exit_code == 5
    assert "store:" in result.stderr
    assert "cannot create" in result.stderr

    state = tmp_path / "state"
    state.mkdir()
    (state / DB_FILENAME).write_text("not a database " * 100)
    result = run(state, "sightings", "import", str(path))
    assert result.exit_code == 5
    assert f"{state / DB_FILENAME}" in result.stderr
    assert "not a SQLite database" in result.stderr


def test_help() -> None:
    for args in (["sightings", "--help"], ["sightings", "import", "-h"]):
        result = CliRunner().invoke(cli, args)
        assert result.exit_code == 0
        assert "Usage:" in result.stdout
