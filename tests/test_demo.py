"""The end-to-end demo: real advertiser, scanner, stores, authority and sync on the simulated radio."""

from __future__ import annotations

import hashlib
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from bluezoned.authority.db import DB_FILENAME as AUTHORITY_DB
from bluezoned.authority.server import CERTIFICATE_KEY_FILE
from bluezoned.cli import cli
from bluezoned.demo import (
    EXPORT_ROOT,
    PUBLIC_KEY_FILE,
    SIGNING_KEY_FILE,
    DemoOutcome,
    run_demo,
)
from bluezoned.exposure import keyfile, keys
from bluezoned.sim.bus import find_dbus_daemon
from bluezoned.store import DB_FILENAME, Store

NOW = 1_795_989_000.0  # 2026-11-29T21:50Z: meeting 11-28 17:30, upload 11-29 09:00, sync 12:10


@dataclass(frozen=True)
class Ran:
    workdir: Path
    result: Result
    outcome: DemoOutcome


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory) -> Ran:
    """One run of ``bluezoned demo`` (about 15 s) shared by the tests of this module."""
    if find_dbus_daemon() is None:
        pytest.skip(
            "dbus-daemon is not installed (Debian package 'dbus'); the demo's radio needs it"
        )
    workdir = tmp_path_factory.mktemp("demo")
    outcomes: list[DemoOutcome] = []

    def recording(*args: Any, **kwargs: Any) -> DemoOutcome:
        outcomes.append(run_demo(*args, **kwargs))
        return outcomes[-1]

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr("bluezoned.demo.run_demo", recording)
        result = CliRunner().invoke(
            cli, ["--now", str(NOW), "demo", "--dir", str(workdir), "--seed", "7"]
        )
    assert outcomes, result.output
    return Ran(workdir, result, outcomes[0])


def test_the_command_tells_the_story_and_exits_0(ran: Ran) -> None:
    out = ran.result.stdout
    assert ran.result.exit_code == 0, ran.result.output
    for step in (
        "Alice stands about 1.2 m from Bob",
        "EN sightings",
        "legacy Bluezone",
        "Alice tests positive",
        "code -> token -> certificate -> publish",
        "padding keys",
        "Bob's device syncs",
        "EXPOSURE:",
        "exposure alert:",
    ):
        assert step in out, step
    assert f"bluezoned --state-dir {ran.workdir / 'bob'} status" in out
    assert "bluezoned keyfile verify " in out


def test_the_outcome_counts_every_step(ran: Ran) -> None:
    outcome = ran.outcome
    radio = outcome.radio
    assert radio.sightings > 1000
    assert radio.bluezone_heard > 0
    assert radio.alice_rpis_sent >= 1
    assert radio.alice_rpis_heard == radio.alice_rpis_sent
    assert radio.rpis_heard > radio.alice_rpis_heard
    assert outcome.uploaded == 2
    assert outcome.published_real == 1  # today's key is embargoed
    assert outcome.published_padding >= 1000 - 1
    assert "signature does not verify" in outcome.refusal
    assert len(outcome.exposures) == len(outcome.alice_exposures) == 1
    assert outcome.alert is not None
    assert outcome.alert.exposures == 1


def test_bob_finds_alice_and_only_alice(ran: Ran) -> None:
    with Store.open(ran.workdir / "alice" / DB_FILENAME, read_only=True) as alice:
        own = alice.own_keys()
    with Store.open(ran.workdir / "bob" / DB_FILENAME, read_only=True) as bob:
        exposures = bob.exposures()
        buckets = bob.sighting_buckets()
        summary = bob.summary(NOW)
    reported = [k.tek for k in own if k.reported]
    assert len(reported) == 2  # the meeting day's key and the upload day's
    assert any(not k.reported for k in own)  # her fresh key after the upload
    (exposure,) = exposures
    assert exposure.key_data in {k.key_data for k in reported}
    assert exposure.alerted_at is not None
    assert 15 * 60 <= exposure.end - exposure.start <= 22 * 60
    assert exposure.min_attenuation is not None
    assert 20 < exposure.min_attenuation < 70
    alice_rpis = {rpi for tek in reported for rpi in keys.rpis_of(tek)}
    strangers = {b.rpi for b in buckets if b.rpi not in alice_rpis}
    assert len(strangers) >= 4, "the strangers were heard too, and must not match"
    assert summary.exposures == 1


def test_the_forged_file_is_refused_with_nothing_stored(ran: Ran) -> None:
    out = ran.result.stdout
    assert "refused" in out
    assert "signature does not verify" in ran.result.output
    exports = ran.workdir / "authority" / "exports" / EXPORT_ROOT
    (real,) = exports.glob("*.zip")  # the forgery was served once, then removed
    trusted = keyfile.load_trusted_key(
        (ran.workdir / "authority" / PUBLIC_KEY_FILE).read_bytes(), "452", "v1"
    )
    published = keyfile.read_export_archive(real.read_bytes(), [trusted]).export.keys
    assert 1000 <= len(published) <= 1101  # one real key, padded
    with Store.open(ran.workdir / "bob" / DB_FILENAME, read_only=True) as bob:
        summary = bob.summary(NOW)
        stored = bob.processed_file(hashlib.sha256(real.read_bytes()).digest())
    assert summary.processed_files == 1
    assert stored is not None
    assert stored.keys == len(published)


def test_files_holding_keys_are_private(ran: Ran) -> None:
    for path in (
        ran.workdir / "alice" / DB_FILENAME,
        ran.workdir / "bob" / DB_FILENAME,
        ran.workdir / "authority" / AUTHORITY_DB,
        ran.workdir / "authority" / CERTIFICATE_KEY_FILE,
        ran.workdir / "authority" / SIGNING_KEY_FILE,
    ):
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, path


def test_status_then_shows_the_exposure(ran: Ran) -> None:
    status = CliRunner().invoke(
        cli, ["--now", str(NOW), "--state-dir", str(ran.workdir / "bob"), "status", "--json"]
    )
    assert status.exit_code == 0, status.output
    assert '"exposures": 1' in status.stdout


def test_without_dbus_daemon_the_demo_refuses_in_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("bluezoned.demo.find_dbus_daemon", lambda: None)
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path / "d")])
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert "dbus-daemon is not installed" in result.stderr
    assert not (tmp_path / "d").exists()


def test_a_directory_with_files_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bluezoned.demo.find_dbus_daemon", lambda: "/usr/bin/dbus-daemon")
    (tmp_path / "something").write_text("mine")
    result = CliRunner().invoke(cli, ["demo", "--dir", str(tmp_path)])
    assert result.exit_code == 1
    assert "is not empty" in result.stderr
