"""``bluezoned sync``: pull signed key exports from the configured sources once, match, alert."""

from __future__ import annotations

import asyncio
import json
import random
import signal
import sys
import time
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any, Final

import click

from bluezoned.alerts import raise_alerts
from bluezoned.cli._common import (
    CONTEXT_SETTINGS,
    EXIT_KEYFILE_REFUSED,
    CliState,
    fail,
    pass_state,
    translate_errors,
    utc_text,
)
from bluezoned.config import CONFIG_FILENAME, Config, load_config
from bluezoned.store import Store
from bluezoned.sync.client import HttpClient, open_session
from bluezoned.sync.worker import (
    AlertHook,
    ProgressEvent,
    SourceResult,
    sync_all,
    sync_forever,
)

EXIT_SYNC_FAILED: Final = 6
"""At least one source could not be listed or a new file could not be downloaded."""


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--source", "only", metavar="NAME", help="Sync only this configured source.")
@click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON object per source, as a list."
)
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="BLUEZONED_CONFIG",
    default=None,
    help=f"The configuration file [default: <state-dir>/{CONFIG_FILENAME}].",
)
@click.option(
    "--follow",
    is_flag=True,
    help="Keep running: sync each source again when its randomised schedule says"
    " (every 4 h +/- 30 min by default); stop with Ctrl-C or SIGTERM.",
)
@pass_state
def sync(
    state: CliState, only: str | None, as_json: bool, config_path: Path | None, follow: bool
) -> None:
    """Download new signed key files from the configured sources, verify, store and match them.

    Files already processed are never downloaded again; every file is verified against the
    source's configured keys before any of its keys is stored. New exposures raise the
    configured alerts. A progress bar is shown when stdout is a terminal.

    \b
    Exit codes:
      0  every source synced (including "nothing new")
      3  a file was refused (bad signature, tampered, too large...); nothing of it was stored
      6  a source failed (network, server error, timeout); the next run resumes
      1, 4, 5  configuration, input or store errors, as for the other commands
    """
    now = state.current_time()
    if follow and (state.now is not None or as_json):
        raise click.UsageError(
            "--follow runs on the real clock and prints lines: drop --now/--json"
        )
    with translate_errors():
        config = load_config(config_path or state.state_dir / CONFIG_FILENAME)
        if only is not None:
            config = replace(config, sources=(config.source(only),))
        if not config.sources:
            fail(f"{config.path}: no [[sources]] configured; nothing to sync", 1)
        if follow:
            with Store.open(state.database) as store:
                _follow(config, store)
            return
        with Store.open(state.database) as store:
            results = asyncio.run(
                _run(config, store, now, show_progress=not as_json and _stdout_is_tty())
            )
    if as_json:
        click.echo(json.dumps([_as_json(r) for r in results], indent=2))
    else:
        for result in results:
            click.echo(_summary(result))
            for refused in result.refused:
                click.echo(f"  refused {refused.name}: {refused.reason}", err=True)
            for failed in (f for f in result.files if f.status == "failed"):
                click.echo(f"  failed {failed.name}: {failed.reason}", err=True)
    if any(not r.ok for r in results):
        sys.exit(EXIT_SYNC_FAILED)
    if any(r.refused for r in results):
        sys.exit(EXIT_KEYFILE_REFUSED)


async def _run(
    config: Config, store: Store, now: float, *, show_progress: bool
) -> list[SourceResult]:
    bars: dict[str, Any] = {}

    def progress(event: ProgressEvent) -> None:
        if not show_progress or event.total == 0:
            return
        bar = bars.get(event.source)
        if bar is None:
            bar = click.progressbar(length=event.total, label=event.source, file=sys.stderr)
            bar.__enter__()
            bars[event.source] = bar
        if event.done:
            bar.update(1)
        if event.done == event.total:
            bar.__exit__(None, None, None)

    # numpy and the matcher load only when a sync really runs, not for every CLI start.
    from bluezoned.matching import engine_config, match_new_keys

    rng = random.SystemRandom()
    async with open_session(config.limits) as session:
        client = HttpClient(session, config.limits, rng)
        return await sync_all(
            config,
            store=store,
            client=client,
            now=now,
            rng=rng,
            match_new_keys=partial(match_new_keys, engine=engine_config(config.exposure)),
            alert=_alert_hook(config),
            progress=progress,
        )


def _alert_hook(config: Config) -> AlertHook:
    """The sync worker's alert call with this configuration's alert settings."""

    async def alert(store: Store, at: float) -> object:
        return await raise_alerts(store, config.alerts, at)

    return alert


def _follow(config: Config, store: Store) -> None:
    """Run the schedule until Ctrl-C or SIGTERM; one summary line per source run."""
    from bluezoned.matching import engine_config, match_new_keys

    def report(result: SourceResult) -> None:
        when = "unscheduled" if result.next_due is None else utc_text(result.next_due)
        click.echo(f"{utc_text(time.time())} {_summary(result)}; next run {when}")

    async def main() -> None:
        task = asyncio.current_task()
        if task is not None:
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, task.cancel)
        rng = random.SystemRandom()
        async with open_session(config.limits) as session:
            await sync_forever(
                config,
                store=store,
                client=HttpClient(session, config.limits, rng),
                clock=time.time,
                sleep=asyncio.sleep,
                rng=rng,
                match_new_keys=partial(match_new_keys, engine=engine_config(config.exposure)),
                alert=_alert_hook(config),
                report=report,
            )

    click.echo(f"following {len(config.sources)} source(s); stop with Ctrl-C")
    try:
        asyncio.run(main())
    except (KeyboardInterrupt, asyncio.CancelledError):
        click.echo("stopped")


def _stdout_is_tty() -> bool:
    return sys.stdout.isatty()


def _summary(result: SourceResult) -> str:
    if result.error is not None:
        return f"{result.source}: FAILED: {result.error}"
    if result.not_modified:
        head = "index unchanged"
    else:
        head = f"{result.listed} listed, {len(result.files)} new"
    parts = [
        head,
        f"{result.count('stored')} stored",
        f"{result.new_keys} keys",
        f"{result.exposures} exposure(s)",
    ]
    for status in ("duplicate", "refused", "vanished", "failed", "deferred"):
        n = result.count(status)
        if n:
            parts.append(f"{n} {status}")
    return f"{result.source}: " + ", ".join(parts)


def _as_json(result: SourceResult) -> dict[str, Any]:
    return {
        "source": result.source,
        "ok": result.ok,
        "error": result.error,
        "not_modified": result.not_modified,
        "listed": result.listed,
        "new_keys": result.new_keys,
        "exposures": result.exposures,
        "bytes_downloaded": result.bytes_downloaded,
        "next_due": result.next_due,
        "files": [
            {"name": f.name, "url": f.url, "status": f.status, "keys": f.keys, "reason": f.reason}
            for f in result.files
        ],
    }
