"""One sync run: finish pending matching, list, fetch what is new, verify every file, store it, match, alert.

Order per file (protocol.md §5.5): download under the byte cap; skip a SHA-256 already
processed; verify the signature against the source's configured keys with
``keyfile.read_export_archive`` BEFORE anything is stored; record the file as unmatched
together with its verified bytes in one transaction. A refused file is reported with its
reason and nothing of it is stored. Files already processed (by URL) are never fetched
again, so a run cut short by the network resumes where it stopped.

Matching is resumable: the injected ``match_new_keys`` matches every unmatched file and marks
it matched in the transaction that stores its exposures. A run first finishes the matching a
crashed run left pending, then matches the files it stored.

Each file's stage times (``download``, ``verify_parse``, ``store``) are in its
``FileOutcome.seconds``, and the run's totals with ``list``, ``pending_match`` and ``match``
in ``SourceResult.stages`` (monotonic seconds).
"""

from __future__ import annotations

import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Final, Literal

from bluezoned.config import Config, Schedule, Source
from bluezoned.errors import FetchError, KeyFileRejected, ResponseTooLarge
from bluezoned.exposure.keyfile import all_keys, read_export_archive
from bluezoned.models import DiagnosisKey
from bluezoned.store import ExposureRecord, ProcessedFile, Store, SyncState
from bluezoned.sync.client import HttpClient
from bluezoned.sync.sources import RemoteFile, SourceAdapter, adapter_for, new_files

__all__ = [
    "AlertHook",
    "FileOutcome",
    "MatchNewKeys",
    "Progress",
    "ProgressEvent",
    "SourceResult",
    "next_due",
    "sync_all",
    "sync_source",
]

_log = logging.getLogger(__name__)

MatchNewKeys = Callable[
    [Store, float, Mapping[bytes, Sequence[DiagnosisKey]]], list[ExposureRecord]
]
"""``(store, now, keys by file SHA-256) -> exposures found``: matches every unmatched file of
the store (``matching.match_new_keys``); the mapping holds keys already parsed in memory."""
AlertHook = Callable[[Store, float], Awaitable[object]]
"""``(store, now)``: announces the store's unalerted exposures (``alerts.raise_alerts``)."""

FileStatus = Literal["stored", "duplicate", "refused", "vanished", "failed", "deferred"]
_MAX_FAILURE_BACKOFF_STEPS: Final = 6


@dataclass(frozen=True, slots=True)
class ProgressEvent:
    """Progress of one source: ``done`` of ``total`` new files handled, ``name`` the last one."""

    source: str
    done: int
    total: int
    name: str | None = None
    status: FileStatus | None = None
    seconds: Mapping[str, float] = field(default_factory=dict)
    """The file's stage times, as in ``FileOutcome.seconds``."""


Progress = Callable[[ProgressEvent], None]


@dataclass(frozen=True, slots=True)
class FileOutcome:
    """What happened to one listed file; ``reason`` for refused, vanished and failed files.

    ``deferred`` files were not fetched because the run reached ``limits.max_run_bytes``;
    the next run starts with them.
    """

    name: str
    url: str
    status: FileStatus
    keys: int = 0
    size: int = 0
    reason: str | None = None
    seconds: Mapping[str, float] = field(default_factory=dict)
    """Monotonic seconds per stage this file went through: download, verify_parse, store."""


@dataclass(frozen=True, slots=True)
class SourceResult:
    """The outcome of syncing one source; ``error`` is set when the source failed."""

    source: str
    listed: int = 0
    not_modified: bool = False
    files: tuple[FileOutcome, ...] = ()
    new_keys: int = 0
    exposures: int = 0
    bytes_downloaded: int = 0
    error: str | None = None
    next_due: float | None = None
    stages: Mapping[str, float] = field(default_factory=dict)
    """Monotonic seconds per stage: list, pending_match, download, verify_parse, store, match."""

    @property
    def ok(self) -> bool:
        """True when the index and every new file were fetched (refused files do not fail a source)."""
        return self.error is None and not any(f.status == "failed" for f in self.files)

    @property
    def refused(self) -> tuple[FileOutcome, ...]:
        """Files whose verification failed: nothing of them was stored."""
        return tuple(f for f in self.files if f.status == "refused")

    def count(self, status: FileStatus) -> int:
        """How many files ended with ``status``."""
        return sum(1 for f in self.files if f.status == status)


def next_due(now: float, schedule: Schedule, rng: random.Random) -> float:
    """When the next run is due: ``now + interval ± jitter`` (uniform), never before ``now``."""
    jitter = rng.uniform(-schedule.jitter_seconds, schedule.jitter_seconds)
    return max(now, now + schedule.interval_seconds + jitter)


def retry_due(now: float, failures: int, schedule: Schedule, rng: random.Random) -> float:
    """After ``failures`` failed runs in a row: a jittered back-off capped at the normal period."""
    step = min(failures, _MAX_FAILURE_BACKOFF_STEPS)
    delay = min(schedule.interval_seconds, 60.0 * (2**step))
    return now + rng.uniform(delay / 2, delay)


async def sync_source(
    source: Source,
    *,
    store: Store,
    client: HttpClient,
    config: Config,
    now: float,
    rng: random.Random,
    match_new_keys: MatchNewKeys,
    alert: AlertHook | None = None,
    progress: Progress | None = None,
    adapter: SourceAdapter | None = None,
) -> SourceResult:
    """Sync ``source`` once; network failures are reported in the result, never raised."""
    stages: dict[str, float] = {}
    started = time.perf_counter()
    # A crash between storing a file and matching it left work behind: finish it first.
    exposures: list[ExposureRecord] = []
    if store.unmatched_files():
        exposures = match_new_keys(store, now, {})
    stages["pending_match"] = time.perf_counter() - started
    previous = store.sync_state(source.name) or SyncState(source.name)
    adapter = adapter or adapter_for(source, config.limits)
    started = time.perf_counter()
    try:
        listing = await adapter.list_files(
            client, etag=previous.etag, last_modified=previous.last_modified, now=now
        )
    except FetchError as exc:
        _log.warning("sync %s: listing failed: %s", source.name, exc)
        if alert is not None and exposures:
            await alert(store, now)
        failed = SourceResult(source.name, exposures=len(exposures), error=str(exc), stages=stages)
        return _finish(store, previous, config, rng, now, failed)
    stages["list"] = time.perf_counter() - started
    processed = store.processed_file_names(source.name)
    todo = new_files(listing.files, processed)
    if progress is not None:
        progress(ProgressEvent(source.name, 0, len(todo)))
    outcomes: list[FileOutcome] = []
    parsed: dict[bytes, Sequence[DiagnosisKey]] = {}
    downloaded = 0
    cap = config.limits.max_run_bytes
    for done, remote in enumerate(todo, start=1):
        if cap and downloaded >= cap:
            outcome: FileOutcome = FileOutcome(
                remote.name, remote.url, "deferred", reason="the run's byte cap was reached"
            )
        else:
            outcome, stored = await _fetch_one(source, remote, store, client, config, now)
            if stored is not None:
                parsed[stored[0]] = stored[1]
        outcomes.append(outcome)
        for stage, seconds in outcome.seconds.items():
            stages[stage] = stages.get(stage, 0.0) + seconds
        downloaded += outcome.size
        if progress is not None:
            progress(
                ProgressEvent(
                    source.name, done, len(todo), remote.name, outcome.status, outcome.seconds
                )
            )
    new_keys = sum(len(keys) for keys in parsed.values())
    started = time.perf_counter()
    if parsed:
        exposures += match_new_keys(store, now, parsed)
    stages["match"] = time.perf_counter() - started
    if alert is not None:
        await alert(store, now)
    result = SourceResult(
        source.name,
        listed=len(listing.files),
        not_modified=listing.not_modified,
        files=tuple(outcomes),
        new_keys=new_keys,
        exposures=len(exposures),
        bytes_downloaded=downloaded,
        stages=stages,
    )
    _log.info(
        "sync %s: %d listed, %d new, %d stored, %d refused, %d failed, %d keys, %d exposure(s)",
        source.name,
        len(listing.files),
        len(todo),
        result.count("stored"),
        result.count("refused"),
        result.count("failed"),
        new_keys,
        len(exposures),
    )
    # A failed or deferred file must not hide behind a 304 next time: keep the old validators.
    etag, last_modified = listing.etag, listing.last_modified
    if not result.ok or result.count("deferred"):
        etag, last_modified = previous.etag, previous.last_modified
    state = SyncState(
        previous.source,
        etag,
        last_modified,
        previous.last_attempt,
        previous.last_success,
        previous.consecutive_failures,
        previous.next_due,
    )
    return _finish(store, state, config, rng, now, result)


async def sync_all(
    config: Config,
    *,
    store: Store,
    client: HttpClient,
    now: float,
    rng: random.Random,
    match_new_keys: MatchNewKeys,
    alert: AlertHook | None = None,
    progress: Progress | None = None,
    only: str | None = None,
) -> list[SourceResult]:
    """Sync every configured source (or only the one named ``only``), one after the other."""
    sources = [config.source(only)] if only is not None else list(config.sources)
    results = []
    for source in sources:
        results.append(
            await sync_source(
                source,
                store=store,
                client=client,
                config=config,
                now=now,
                rng=rng,
                match_new_keys=match_new_keys,
                alert=alert,
                progress=progress,
            )
        )
    return results


async def sync_forever(
    config: Config,
    *,
    store: Store,
    client: HttpClient,
    clock: Callable[[], float],
    sleep: Callable[[float], Awaitable[object]],
    rng: random.Random,
    match_new_keys: MatchNewKeys,
    alert: AlertHook | None = None,
    report: Callable[[SourceResult], object] | None = None,
    rounds: int | None = None,
) -> None:
    """Sync each source whenever its randomised schedule says, until cancelled.

    A source is due at the ``next_due`` stored by its previous run (now, if it never ran):
    restarting does not make a device hit the servers again early. After a run the next time
    is ``interval ± jitter``, or a jittered back-off after failures. ``rounds`` stops after
    that many source runs (tests).
    """
    due: dict[str, float] = {}
    for source in config.sources:
        state = store.sync_state(source.name)
        due[source.name] = (
            state.next_due if state is not None and state.next_due is not None else 0.0
        )
    runs = 0
    while rounds is None or runs < rounds:
        name = min(due, key=lambda n: due[n])
        wait = due[name] - clock()
        if wait > 0:
            await sleep(wait)
            continue
        (result,) = await sync_all(
            config,
            store=store,
            client=client,
            now=clock(),
            rng=rng,
            match_new_keys=match_new_keys,
            alert=alert,
            only=name,
        )
        runs += 1
        if report is not None:
            report(result)
        # A result always carries the next time; the interval is the fallback of last resort.
        due[name] = (
            result.next_due
            if result.next_due is not None
            else clock() + config.schedule.interval_seconds
        )


async def _fetch_one(
    source: Source,
    remote: RemoteFile,
    store: Store,
    client: HttpClient,
    config: Config,
    now: float,
) -> tuple[FileOutcome, tuple[bytes, Sequence[DiagnosisKey]] | None]:
    """Fetch, verify and store one file; the stored file's (SHA-256, keys), else None."""
    started = time.perf_counter()
    try:
        fetched = await client.get(remote.url, max_bytes=config.limits.max_file_bytes)
    except ResponseTooLarge as exc:
        _log.warning("sync %s: refused %s: %s", source.name, remote.name, exc.detail)
        return FileOutcome(remote.name, remote.url, "refused", reason=exc.detail), None
    except FetchError as exc:
        if exc.status in (404, 410):
            # Skip a listed file that has vanished (key-distribution.md §10); nothing is
            # recorded, so it is tried again only while the index still lists it.
            _log.info("sync %s: %s vanished (HTTP %s)", source.name, remote.name, exc.status)
            return FileOutcome(remote.name, remote.url, "vanished", reason=exc.detail), None
        _log.warning("sync %s: %s failed: %s", source.name, remote.name, exc.detail)
        return FileOutcome(remote.name, remote.url, "failed", reason=exc.detail), None
    data = fetched.body
    seconds = {"download": time.perf_counter() - started}
    digest = hashlib.sha256(data).digest()
    if store.is_file_processed(digest):
        return FileOutcome(
            remote.name, remote.url, "duplicate", size=len(data), seconds=seconds
        ), None
    started = time.perf_counter()
    try:
        verified = read_export_archive(data, source.trusted_keys)
    except KeyFileRejected as exc:
        _log.warning("sync %s: refused %s: %s", source.name, remote.name, exc)
        return FileOutcome(
            remote.name, remote.url, "refused", size=len(data), reason=str(exc), seconds=seconds
        ), None
    seconds["verify_parse"] = time.perf_counter() - started
    region = verified.export.region
    if source.region is not None and region is not None and region != source.region:
        reason = f"region {region!r} is not the configured {source.region!r}"
        _log.warning("sync %s: refused %s: %s", source.name, remote.name, reason)
        return FileOutcome(
            remote.name, remote.url, "refused", size=len(data), reason=reason, seconds=seconds
        ), None
    keys = all_keys(verified.export)
    started = time.perf_counter()
    record = ProcessedFile(
        sha256=digest,
        source=source.name,
        name=remote.url,
        size=len(data),
        keys=len(keys),
        processed_at=now,
        etag=fetched.etag,
    )
    if not store.add_pending_key_file(record, data):
        # Another writer stored the same file meanwhile: it matches it, not this run.
        return FileOutcome(
            remote.name, remote.url, "duplicate", size=len(data), seconds=seconds
        ), None
    seconds["store"] = time.perf_counter() - started
    outcome = FileOutcome(
        remote.name, remote.url, "stored", keys=len(keys), size=len(data), seconds=seconds
    )
    return outcome, (digest, keys)


def _finish(
    store: Store,
    previous: SyncState,
    config: Config,
    rng: random.Random,
    now: float,
    result: SourceResult,
) -> SourceResult:
    if result.ok:
        due = next_due(now, config.schedule, rng)
        state = SyncState(previous.source, previous.etag, previous.last_modified, now, now, 0, due)
    else:
        failures = previous.consecutive_failures + 1
        due = retry_due(now, failures, config.schedule, rng)
        state = SyncState(
            previous.source,
            previous.etag,
            previous.last_modified,
            now,
            previous.last_success,
            failures,
            due,
        )
    store.put_sync_state(state)
    return replace(result, next_due=due)
