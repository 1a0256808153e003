"""``bluezoned bench match``: report fields and the exit code that guards planted == matches."""

from __future__ import annotations

import json
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from click.testing import CliRunner

from bluezoned.cli import bench as cli_bench
from bluezoned.cli.bench import bench
from bluezoned.exposure import matcher

SMALL = ["match", "--keys", "300", "--planted", "4", "--background", "2000", "--workers", "1"]


def test_match_reports_json_and_succeeds_when_all_planted_keys_match() -> None:
    started = time.perf_counter()
    result = CliRunner().invoke(bench, [*SMALL, "--window-sightings", "5000", "--json"])
    wall = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert {"keys", "seconds", "keys_per_s", "matches", "planted"} <= report.keys()
    assert report["keys"] == 300
    assert report["matches"] == report["planted"] == 4
    # The timed spans lie inside the command's own run, and the rates are their quotients.
    assert 0 < report["seconds"] + report["windowing_seconds"] < wall
    assert report["keys_per_s"] == pytest.approx(300 / report["seconds"])
    assert report["windowing_sightings"] == 5000
    assert report["windowing_sightings_per_s"] == pytest.approx(5000 / report["windowing_seconds"])
    assert (report["workers"], report["pool"]) == (1, "none")


def test_match_human_line() -> None:
    result = CliRunner().invoke(bench, [*SMALL, "--window-sightings", "0", "--seed", "7"])
    assert result.exit_code == 0, result.output
    assert "300 keys in" in result.stdout
    assert "matched 4 of 4 planted" in result.stdout


def test_match_fails_when_matches_differ_from_planted(monkeypatch: pytest.MonkeyPatch) -> None:
    real = matcher.match

    def lose_one(*args: object, **kwargs: object) -> matcher.MatchResult:
        full = real(*args, **kwargs)  # type: ignore[arg-type]
        return matcher.MatchResult(
            key_index=full.key_index[1:],
            offsets=full.offsets[1:] - full.offsets[1],
            sighting_index=full.sighting_index[full.offsets[1] :],
            rpi_interval=full.rpi_interval[full.offsets[1] :],
            tx_power=full.tx_power[full.offsets[1] :],
            calibration_confidence=full.calibration_confidence[full.offsets[1] :],
        )

    monkeypatch.setattr(matcher, "match", lose_one)
    result = CliRunner().invoke(bench, [*SMALL, "--window-sightings", "0", "--json"])
    assert result.exit_code == 1
    report = json.loads(result.stdout)
    assert report["matches"] == 3
    assert report["planted"] == 4


@pytest.mark.parametrize("pool", ["process", "thread", "auto"])
def test_match_with_two_workers(pool: str, monkeypatch: pytest.MonkeyPatch) -> None:
    started_pools: list[str] = []

    class Threads(ThreadPoolExecutor):
        def __init__(self, max_workers: int) -> None:
            started_pools.append("thread")
            super().__init__(max_workers=max_workers)

    class Processes(ProcessPoolExecutor):
        def __init__(self, max_workers: int) -> None:
            started_pools.append("process")
            super().__init__(max_workers=max_workers)

    monkeypatch.setattr(cli_bench, "ThreadPoolExecutor", Threads)
    monkeypatch.setattr(cli_bench, "ProcessPoolExecutor", Processes)
    args = ["match", "--keys", "500", "--planted", "3", "--background", "500", "--workers", "2"]
    started = time.perf_counter()
    result = CliRunner().invoke(bench, [*args, "--pool", pool, "--window-sightings", "0", "--json"])
    wall = time.perf_counter() - started
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["workers"] == 2
    assert 0 < report["seconds"] < wall
    assert report["keys_per_s"] == pytest.approx(500 / report["seconds"])
    # auto: threads for the numba kernel (it releases the GIL), processes otherwise
    auto = "thread" if report["backend"] == "numba" else "process"
    assert report["pool"] == (pool if pool != "auto" else auto)
    assert started_pools == [report["pool"]]  # the pool reported is the pool that ran


def test_zero_planted_is_a_valid_run() -> None:
    result = CliRunner().invoke(
        bench,
        [
            "match",
            "--keys",
            "50",
            "--planted",
            "0",
            "--background",
            "100",
            "--workers",
            "1",
            "--window-sightings",
            "0",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["matches"] == 0


def test_registered_under_the_main_command() -> None:
    from bluezoned.cli import cli

    result = CliRunner().invoke(cli, ["bench", *SMALL, "--window-sightings", "0", "--json"])
    assert result.exit_code == 0, result.output
    assert np.isfinite(json.loads(result.stdout)["seconds"])
