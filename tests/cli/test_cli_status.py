"""``bluezoned status``: read-only report of the store, human and ``--json``."""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from pathlib import Path

from click.testing import CliRunner, Result
from sqlite_utils import Database

from bluezoned.cli import cli
from bluezoned.cli._common import parse_now
from bluezoned.models import DiagnosisKey, Sighting, Tek
from bluezoned.store import (
    DB_FILENAME,
    MIGRATION_NAMES,
    ExposureRecord,
    ProcessedFile,
    Store,
    StoredDiagnosisKey,
)
from bluezoned.store.migrations import MIGRATIONS

NOW_ISO = "2026-11-29T12:00:00Z"
NOW = parse_now(NOW_ISO)
JSON_KEYS = {
    "state_dir",
    "database",
    "exists",
    "schema",
    "schema_pending",
    "database_bytes",
    "bucket_seconds",
    "own_keys",
    "own_keys_reported",
    "sighting_buckets",
    "sightings",
    "distinct_rpis",
    "first_sighting",
    "last_sighting",
    "diagnosis_keys",
    "processed_files",
    "exposures",
    "exposures_unalerted",
    "exposures_high_risk",
    "days_high_risk",
    "risk",
    "close_contacts",
    "last_exposure",
    "files_awaiting_match",
    "now",
}


def run(state_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--state-dir", str(state_dir), "--now", NOW_ISO, *args])


def populate(state_dir: Path) -> None:
    with Store.open(state_dir / DB_FILENAME) as store:
        store.add_own_key(Tek(b"1" * 16, 2_993_000), created=NOW - 3000)
        store.add_own_key(Tek(b"2" * 16, 2_993_144), created=NOW - 2000)
        store.mark_reported([b"1" * 16], at=NOW - 1000)
        store.record_sightings(
            Sighting(NOW - 600 + i, bytes([i % 3]) * 16, b"aemx", -60) for i in range(25)
        )
        sha = hashlib.sha256(b"file").digest()
        store.add_pending_key_file(ProcessedFile(sha, "cwa", "a.zip", 100, 2, NOW - 500), b"zip")
        store.complete_matching(
            [sha],
            [
                StoredDiagnosisKey(DiagnosisKey(k * 16, 2_993_000), "cwa", sha, NOW - 500)
                for k in (b"d", b"e")
            ],
            [],
            NOW - 500,
        )
        first = store.add_exposure(
            ExposureRecord(b"d" * 16, 2_993_000, 1.0, 61.0, 60.0, 3, NOW, risk_level=1)
        )
        store.add_exposure(
            ExposureRecord(
                b"e" * 16,
                2_993_000,
                1.0,
                31.0,
                30.0,
                2,
                NOW,
                risk_level=2,
                cwa_days=((0, 10.0),),
                close_contact=True,
            )
        )
        store.mark_alerted([first], at=NOW)


def test_status_without_a_store_reports_zeros_and_creates_nothing(tmp_path: Path) -> None:
    state = tmp_path / "not-yet"
    result = run(state, "status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == JSON_KEYS
    assert report["exists"] is False
    assert report["state_dir"] == str(state)
    assert report["database"] == str(state / DB_FILENAME)
    assert report["now"] == NOW
    assert report["first_sighting"] is None
    assert report["last_sighting"] is None
    assert report["risk"] is None
    assert report["last_exposure"] is None
    counts = {k for k, v in report.items() if isinstance(v, int) and not isinstance(v, bool)}
    assert counts
    assert all(report[k] == 0 for k in counts)

    human = run(state, "status")
    assert human.exit_code == 0
    assert "(no store yet)" in human.stdout
    assert human.stdout.startswith("exposure    no exposure found")
    assert not state.exists()


def test_status_of_a_populated_store(tmp_path: Path) -> None:
    populate(tmp_path)
    result = run(tmp_path, "status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert set(report) == JSON_KEYS
    assert report["database_bytes"] > 0
    del report["database_bytes"]
    assert report == {
        "state_dir": str(tmp_path),
        "database": str(tmp_path / DB_FILENAME),
        "exists": True,
        "schema": len(MIGRATION_NAMES),
        "schema_pending": 0,
        "bucket_seconds": 10,
        "own_keys": 2,
        "own_keys_reported": 1,
        "sighting_buckets": 9,
        "sightings": 25,
        "distinct_rpis": 3,
        "first_sighting": NOW - 600,
        "last_sighting": NOW - 576,
        "diagnosis_keys": 2,
        "processed_files": 1,
        "exposures": 2,
        "exposures_unalerted": 1,
        "exposures_high_risk": 1,
        "days_high_risk": 1,
        "risk": "high",
        "close_contacts": 1,
        "last_exposure": 61.0,
        "files_awaiting_match": 0,
        "now": NOW,
    }


def test_human_status_is_aligned(tmp_path: Path) -> None:
    populate(tmp_path)
    result = run(tmp_path, "status")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert [line.split("  ")[0] for line in lines] == [
        "exposure",
        "state dir",
        "database",
        "own keys",
        "sightings",
        "downloaded",
        "exposures",
        "now",
    ]
    starts = {re.match(r"[a-z ]+?\s{2,}", line).end() for line in lines}  # type: ignore[union-attr]
    assert len(starts) == 1
    assert "EXPOSED: 2 contact(s) with a diagnosed person, HIGH risk" in lines[0]
    assert "2 (1 reported)" in lines[3]
    assert "25 in 9 buckets, 3 RPIs, 2026-11-29T11:50:00Z .. 2026-11-29T11:50:24Z" in lines[4]
    assert lines[-1].endswith("2026-11-29T12:00:00Z")


def test_status_reads_an_older_schema_without_migrating_it(tmp_path: Path) -> None:
    db = Database(tmp_path / DB_FILENAME, execute_plugins=False)
    MIGRATIONS.apply(db, stop_before="0003_exposures")
    db.close()
    result = run(tmp_path, "status", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    pending = len(MIGRATION_NAMES) - 2
    assert (report["schema"], report["schema_pending"], report["exposures"]) == (2, pending, 0)
    assert f"{pending} migration(s) pending" in run(tmp_path, "status").stdout
    with Store.open(tmp_path / DB_FILENAME, read_only=True) as store:
        assert store.pending_migrations() == list(MIGRATION_NAMES[2:])


def test_files_status_leaves_behind_are_private(tmp_path: Path) -> None:
    populate(tmp_path)
    assert run(tmp_path, "status").exit_code == 0
    for path in tmp_path.iterdir():
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600, path.name


def test_status_on_a_broken_store_exits_5(tmp_path: Path) -> None:
    (tmp_path / DB_FILENAME).write_text("garbage " * 1000)
    result = run(tmp_path, "status")
    assert result.exit_code == 5
    assert f"{tmp_path / DB_FILENAME}" in result.stderr
    assert "not a SQLite database" in result.stderr


def test_help() -> None:
    result = CliRunner().invoke(cli, ["status", "--help"])
    assert result.exit_code == 0
    assert "exposures_unalerted" in result.stdout
