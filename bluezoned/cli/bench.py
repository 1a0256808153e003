"""``bluezoned bench``: throughput of the exposure engine on seeded synthetic data."""

from __future__ import annotations

import json
import os
import time
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor
from typing import Any, Final

import click
import numpy as np

from bluezoned.cli._common import CONTEXT_SETTINGS, EXIT_ERROR

DEFAULT_KEYS: Final = 100_000
DEFAULT_PLANTED: Final = 100
DEFAULT_BACKGROUND: Final = 50_000
DEFAULT_WINDOW_SIGHTINGS: Final = 2_000_000
POOL_AUTO: Final = "auto"
POOL_THREAD: Final = "thread"
POOL_PROCESS: Final = "process"
TASKS_PER_WORKER: Final = 2
"""Two key ranges per process so one slow task does not leave a core idle at the end."""


def measure_match(
    n_keys: int,
    *,
    seed: int = 0,
    planted: int = DEFAULT_PLANTED,
    background: int = DEFAULT_BACKGROUND,
    workers: int = 1,
    pool_kind: str = POOL_AUTO,
    backend: str | None = None,
) -> dict[str, Any]:
    """Generate a planted day, match it (pool started before the clock), return the report dict.

    ``pool_kind`` auto means threads for the numba backend (its kernel releases the GIL, so
    threads spread over the cores without pickling) and processes otherwise.
    """
    from bluezoned.exposure.benchdata import planted_day
    from bluezoned.exposure.bulk import BACKEND_NUMBA, available_backends, choose_backend
    from bluezoned.exposure.matcher import MatchConfig, match, match_parallel

    day = planted_day(n_keys, n_planted=planted, seed=seed, background=background)
    config = MatchConfig(backend=backend)
    # Compile numba (when installed) before the clock and the fork: the steady state of a
    # daemon, which compiles once; a one-shot process compiles only for a national-size batch.
    available_backends()
    chosen = choose_backend(n_keys, backend)
    if pool_kind == POOL_AUTO:
        pool_kind = POOL_THREAD if chosen == BACKEND_NUMBA else POOL_PROCESS
    if workers > 1:
        pool: Executor = (
            ThreadPoolExecutor(max_workers=workers)
            if pool_kind == POOL_THREAD
            else ProcessPoolExecutor(max_workers=workers)
        )
        with pool:
            list(pool.map(abs, range(workers)))
            started = time.perf_counter()
            result = match_parallel(
                day.keys,
                day.sightings,
                config,
                executor=pool,
                tasks=workers * TASKS_PER_WORKER,
            )
            seconds = time.perf_counter() - started
    else:
        started = time.perf_counter()
        result = match(day.keys, day.sightings, config)
        seconds = time.perf_counter() - started
    exact = bool(np.array_equal(result.key_index, day.planted))
    return {
        "keys": n_keys,
        "seconds": seconds,
        "keys_per_s": n_keys / seconds if seconds > 0 else float("inf"),
        "matches": len(result),
        "planted": int(day.planted.size),
        "matched_exactly_planted": exact,
        "sightings": len(day.sightings),
        "hits": int(result.offsets[-1]),
        "workers": workers,
        "pool": pool_kind if workers > 1 else "none",
        "backend": chosen,
    }


def measure_windowing(n_sightings: int, *, seed: int = 0) -> dict[str, Any]:
    """Time ``window_sightings`` on ``n_sightings`` matcher-ordered hits (sorted by key, then time)."""
    from bluezoned.exposure.matcher import window_sightings

    rng = np.random.default_rng(seed)
    n_keys = max(1, n_sightings // 200)
    key_index = np.sort(rng.integers(0, n_keys, n_sightings)).astype(np.int64)
    times = 1.74e9 + rng.uniform(0, 86_400 * 14, n_sightings)
    order = np.lexsort((times, key_index))
    key_index, times = key_index[order], times[order]
    started = time.perf_counter()
    windows = window_sightings(times, key_index)
    seconds = time.perf_counter() - started
    return {
        "windowing_sightings": n_sightings,
        "windowing_windows": len(windows),
        "windowing_seconds": seconds,
        "windowing_sightings_per_s": n_sightings / seconds if seconds > 0 else float("inf"),
    }


@click.group(context_settings=CONTEXT_SETTINGS)
def bench() -> None:
    """Measure the exposure engine on seeded synthetic data (no store is touched)."""


@bench.command("match", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--keys",
    "n_keys",
    type=click.IntRange(1, 10_000_000),
    default=DEFAULT_KEYS,
    show_default=True,
    help="Published keys to match.",
)
@click.option(
    "--planted",
    type=click.IntRange(0),
    default=DEFAULT_PLANTED,
    show_default=True,
    help="Keys whose beacons are planted among the sightings (at most --keys).",
)
@click.option(
    "--background",
    type=click.IntRange(0),
    default=DEFAULT_BACKGROUND,
    show_default=True,
    help="Random unrelated sightings.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the synthetic data.")
@click.option(
    "--workers",
    type=click.IntRange(1),
    default=None,
    help="Worker threads or processes [default: the CPU count].",
)
@click.option(
    "--window-sightings",
    type=click.IntRange(0),
    default=DEFAULT_WINDOW_SIGHTINGS,
    show_default=True,
    help="Sightings for the windowing measurement (0: skip).",
)
@click.option(
    "--pool",
    "pool_kind",
    type=click.Choice([POOL_AUTO, POOL_THREAD, POOL_PROCESS]),
    default=POOL_AUTO,
    show_default=True,
    help="How workers run: auto = threads for the numba backend (it releases the GIL), else processes.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def match_command(
    n_keys: int,
    planted: int,
    background: int,
    seed: int,
    workers: int | None,
    window_sightings: int,
    pool_kind: str,
    as_json: bool,
) -> None:
    """Match N random keys against synthetic sightings holding a known number of them.

    Prints keys, seconds, keys_per_s, matches and planted (plus details); exits 1 unless
    exactly the planted keys matched. The worker pool and the numba compile come before the clock.
    """
    report = measure_match(
        n_keys,
        seed=seed,
        planted=min(planted, n_keys),
        background=background,
        workers=workers or os.cpu_count() or 1,
        pool_kind=pool_kind,
    )
    if window_sightings:
        report.update(measure_windowing(window_sightings, seed=seed))
    if as_json:
        click.echo(json.dumps(report))
    else:
        line = (
            f"{report['keys']:,} keys in {report['seconds']:.3f} s = {report['keys_per_s']:,.0f} keys/s "
            f"({report['workers']} worker(s), pool {report['pool']}, {report['backend']}); "
            f"matched {report['matches']} of {report['planted']} planted"
        )
        if window_sightings:
            line += f"; windowing {report['windowing_sightings_per_s']:,.0f} sightings/s"
        click.echo(line)
    if not report["matched_exactly_planted"] or report["matches"] != report["planted"]:
        raise SystemExit(EXIT_ERROR)
