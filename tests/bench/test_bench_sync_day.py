"""The sync-day benchmark's core on a small day: the real worker finds exactly the planted keys."""

from __future__ import annotations

from pathlib import Path

from bench.bench_sync_day import STAGES, run_bench


def test_small_day_matches_the_planted_keys(tmp_path: Path) -> None:
    # The openssl backend: numba's compile would dwarf a 20,000-key day.
    report = run_bench(
        20_000, planted=10, background=2_000, runs=1, backend="openssl", workdir=tmp_path
    )
    assert report["files"] == 1
    assert report["planted"] == report["matches"] == 10
    assert set(report["best_stages"]) == set(STAGES)
    assert all(seconds >= 0 for seconds in report["best_stages"].values())
    assert report["best_total_seconds"] > 0
    (run,) = report["runs"]
    assert {"download", "verify_parse", "store", "match"} <= set(run)


def test_a_day_split_over_two_exports(tmp_path: Path) -> None:
    report = run_bench(
        10_000,
        planted=6,
        background=1_000,
        runs=1,
        backend="openssl",
        workdir=tmp_path,
        max_keys_per_file=6_000,
    )
    assert report["files"] == 2
    assert report["matches"] == 6
