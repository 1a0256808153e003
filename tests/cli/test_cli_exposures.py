"""``bluezoned exposures``: every stored exposure with the engine's estimate, risk by day."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from click.testing import CliRunner, Result
from sqlite_utils import Database

from bluezoned.cli import cli
from bluezoned.cli._common import parse_now
from bluezoned.store import DB_FILENAME, ExposureRecord, Store
from bluezoned.store.migrations import MIGRATIONS

NOW_ISO = "2026-11-29T12:00:00Z"
NOW = parse_now(NOW_ISO)
DAY = int(NOW // 86_400)  # 2026-11-29


def run(state_dir: Path, *args: str) -> Result:
    return CliRunner().invoke(cli, ["--state-dir", str(state_dir), "--now", NOW_ISO, *args])


def exposure(start: float, normalized: float, **estimate: object) -> ExposureRecord:
    return ExposureRecord(
        key_data=bytes([int(start) % 256]) * 16,
        rolling_start=int(start // 600) // 144 * 144,
        start=start,
        end=start + 600,
        duration_seconds=600.0,
        sightings=60,
        created=NOW,
        min_attenuation=60,
        risk_level=1,
        risk_score=normalized,
        cwa_days=((int(start // 86_400), normalized),),
        **estimate,  # type: ignore[arg-type]
    )


def populate(state_dir: Path) -> None:
    """Two LOW contacts on 2026-11-29 (7 + 6 normalized minutes: HIGH together) and one on
    the day before (LOW); the engine decided the first one close."""
    close = {
        "distance_m": 2.0,
        "threshold_minutes": 15.0,
        "minutes_close": 16.25,
        "minutes_close_low": 12.0,
        "minutes_close_high": 19.5,
        "close_contact": True,
        "close_score": 0.8125,
    }
    far = close | {"minutes_close": 0.5, "minutes_close_low": 0.0, "minutes_close_high": 2.0}
    with Store.open(state_dir / DB_FILENAME) as store:
        store.add_exposure(exposure(NOW - 7200, 7.0, **close))
        store.add_exposure(exposure(NOW - 3600, 6.0, **far | {"close_contact": False}))
        store.add_exposure(exposure(NOW - 86_400, 5.5, **far | {"close_contact": False}))


def test_no_store_lists_nothing_and_creates_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    result = run(state, "exposures")
    assert result.exit_code == 0, result.output
    assert result.stdout == "no exposure found\n"
    report = json.loads(run(state, "exposures", "--json").stdout)
    assert report == {"risk": None, "close_contacts": 0, "days": [], "exposures": []}
    assert not state.exists()


def test_json_lists_each_exposure_and_sums_each_day(tmp_path: Path) -> None:
    populate(tmp_path)
    result = run(tmp_path, "exposures", "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["risk"] == "high"  # no single contact is HIGH, but 2026-11-29 is
    assert report["close_contacts"] == 1
    assert report["days"] == [
        {"date": "2026-11-28", "normalized_time": 5.5, "risk": "low"},
        {"date": "2026-11-29", "normalized_time": 13.0, "risk": "high"},
    ]
    assert [e["start"] for e in report["exposures"]] == [NOW - 86_400, NOW - 7200, NOW - 3600]
    first = report["exposures"][1]
    assert first == {
        "start": NOW - 7200,
        "end": NOW - 6600,
        "observed_minutes": 10.0,
        "sightings": 60,
        "min_attenuation": 60,
        "risk": "low",
        "normalized_time": 7.0,
        "distance_m": 2.0,
        "threshold_minutes": 15.0,
        "minutes_close": 16.25,
        "minutes_close_low": 12.0,
        "minutes_close_high": 19.5,
        "close_contact": True,
        "close_score": 0.812,
        "alerted": None,
    }
    assert "key_data" not in first


def test_human_output(tmp_path: Path) -> None:
    populate(tmp_path)
    result = run(tmp_path, "exposures")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].startswith("3 exposure(s) to a diagnosed person; overall risk HIGH")
    assert (
        "  engine: about 16.2 min within 2 m (80% 12.0-19.5): CLOSE CONTACT by its rule of "
        "15 min (score 0.81)" in lines
    )
    assert "  CWA v2: LOW on its own (normalized time 7.0 min)" in lines
    assert lines[-2:] == ["  2026-11-28     5.5  LOW", "  2026-11-29    13.0  HIGH"]


def test_an_older_schema_is_read_without_migrating_it(tmp_path: Path) -> None:
    path = tmp_path / DB_FILENAME
    db = Database(path, execute_plugins=False)
    MIGRATIONS.apply(db, stop_before="0005_exposure_estimate")
    db.execute(
        "INSERT INTO exposures (key_data, rolling_start, start_time, end_time, duration_seconds,"
        " sightings, min_attenuation, risk_level, risk_score, created)"
        " VALUES (?, 2937600, ?, ?, 900.0, 90, 55, 2, 16.8, ?)",
        (b"k" * 16, NOW - 3600, NOW - 2700, NOW),
    )
    db.conn.commit()
    db.close()
    report = json.loads(run(tmp_path, "exposures", "--json").stdout)
    assert report["risk"] == "high"  # the stored level of an exposure without day shares
    assert report["days"] == []
    [old] = report["exposures"]
    assert old["minutes_close"] is None
    assert old["close_contact"] is None
    human = run(tmp_path, "exposures").stdout
    assert "engine:" not in human
    assert "CWA v2: HIGH on its own" in human
    with closing(sqlite3.connect(path)) as conn:
        assert "cwa_days" not in {row[1] for row in conn.execute("PRAGMA table_info(exposures)")}


def test_a_broken_store_exits_5(tmp_path: Path) -> None:
    (tmp_path / DB_FILENAME).write_text("garbage " * 1000)
    result = run(tmp_path, "exposures")
    assert result.exit_code == 5
    assert str(tmp_path / DB_FILENAME) in result.stderr


def test_a_key_cwa_cannot_score_is_listed_unscored(tmp_path: Path) -> None:
    with Store.open(tmp_path / DB_FILENAME) as store:
        revoked = exposure(NOW - 3600, 0.0)
        store.add_exposure(
            ExposureRecord(
                revoked.key_data,
                revoked.rolling_start,
                revoked.start,
                revoked.end,
                revoked.duration_seconds,
                revoked.sightings,
                revoked.created,
                min_attenuation=70,
            )
        )
    report = json.loads(run(tmp_path, "exposures", "--json").stdout)
    assert report["risk"] is None
    assert report["exposures"][0]["risk"] is None
    human = run(tmp_path, "exposures").stdout
    assert "overall risk UNSCORED" in human
    assert "CWA v2: not scored" in human
