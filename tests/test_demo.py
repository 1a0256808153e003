"""The end-to-end demo: the whole foundation wired together on simulated adverts."""

from __future__ import annotations

import stat
from pathlib import Path

from click.testing import CliRunner

from bluezoned.ble.payload import RejectReason
from bluezoned.cli import cli
from bluezoned.demo import ENCOUNTERS, run_demo
from bluezoned.exposure import keyfile, keys
from bluezoned.store import DB_FILENAME, Store

NOW = 1_795_989_000.0  # 2026-11-29T21:50Z


def test_demo_finds_alice_and_only_alice(tmp_path: Path) -> None:
    lines: list[str] = []
    outcome = run_demo(tmp_path, now=NOW, seed=7, echo=lines.append)

    assert outcome.adverts_heard == (
        outcome.stats.en_beacons
        + outcome.stats.bluezone_beacons
        + sum(outcome.stats.rejected.values())
    )
    assert outcome.stats.bluezone_beacons > 0
    assert outcome.stats.malformed > 0
    assert set(outcome.stats.rejected) == {RejectReason.TRUNCATED_STRUCTURE}
    assert outcome.sightings_stored == outcome.stats.en_beacons

    assert len(outcome.matches) == 1
    match = outcome.matches[0]
    alice = ENCOUNTERS[0]
    assert abs((match.last_seen - match.first_seen) - alice.seconds) < 60
    assert match.key.report_type is not None
    assert match.min_attenuation is not None
    assert 20 < match.min_attenuation < 60
    assert "signature does not verify" in outcome.tampered_refusal

    verified = keyfile.read_export_archive(
        outcome.export_path.read_bytes(),
        [keyfile.load_trusted_key(outcome.public_key_path.read_bytes(), "452", "v1")],
    )
    alice_rpis = set(keys.rpis_of(match.key.tek))
    with Store.open(tmp_path / "bob" / DB_FILENAME, read_only=True) as bob:
        buckets = bob.sighting_buckets()
        summary = bob.summary(NOW)
    carol_buckets = [b for b in buckets if b.rpi not in alice_rpis]
    assert carol_buckets, "Carol's beacons were heard too, and must not match"
    assert summary.exposures == 1
    assert summary.diagnosis_keys == len(verified.export.keys)
    assert summary.processed_files == 1
    assert summary.own_keys == 1
    assert stat.S_IMODE((tmp_path / "bob" / DB_FILENAME).stat().st_mode) == 0o600
    assert any(line.startswith("MATCH:") for line in lines)


def test_demo_is_reproducible_for_a_seed(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "a", now=NOW, seed=3, echo=lambda _: None)
    second = run_demo(tmp_path / "b", now=NOW, seed=3, echo=lambda _: None)
    assert first.export_path.read_bytes() == second.export_path.read_bytes()
    assert (first.adverts_heard, first.buckets) == (second.adverts_heard, second.buckets)


def test_demo_command_prints_the_story_and_next_steps(tmp_path: Path) -> None:
    result = CliRunner().invoke(
        cli, ["--now", str(NOW), "demo", "--dir", str(tmp_path), "--seed", "1"]
    )
    assert result.exit_code == 0, result.output
    assert "MATCH:" in result.stdout
    assert f"--state-dir {tmp_path / 'bob'} status" in result.stdout
    status = CliRunner().invoke(
        cli, ["--now", str(NOW), "--state-dir", str(tmp_path / "bob"), "status", "--json"]
    )
    assert status.exit_code == 0
    assert '"exposures": 1' in status.stdout
