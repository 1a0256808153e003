"""One sync run: list, fetch what is new, verify every file, store it whole, match, alert.

Order per file (protocol.md §5.5): download under the byte cap; skip a SHA-256 already
processed; verify the signature against the source's configured keys with
``keyfile.read_export_archive`` BEFORE any key is stored; store the keys and the file record
in one transaction. A refused file is reported with its reason and nothing of it is stored.
Files already processed (by URL) are never fetched again, so a run cut short by the network
resumes where it stopped.
"""

from __future__ import annotations

import hashlib
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from bluezoned.config import Config, Schedule, Source
from bluezoned.errors import FetchError, KeyFileRejected, ResponseTooLarge
from bluezoned.exposure.keyfile import read_export_archive
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

MatchNewKeys = Callable[[Store, Sequence[DiagnosisKey], float], list[ExposureRecord]]
"""``(store, new keys, now) -> exposures found``: the matcher, injected by the caller."""
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
    previous = store.sync_state(source.name) or SyncState(source.name)
    adapter = adapter or adapter_for(source, config.limits)
    try:
        listing = await adapter.list_files(
            client, etag=previous.etag, last_modified=previous.last_modified, now=now
        )
    except FetchError as exc:
        _log.warning("sync %s: listing failed: %s", source.name, exc)
        return _finish(store, previous, config, rng, now, SourceResult(source.name, error=str(exc)))
    processed = store.processed_file_names(source.name)
    todo = new_files(listing.files, processed)
    if progress is not None:
        progress(ProgressEvent(source.name, 0, len(todo)))
    outcomes: list[FileOutcome] = []
    keys: list[DiagnosisKey] = []
    downloaded = 0
    cap = config.limits.max_run_bytes
    for done, remote in enumerate(todo, start=1):
        if cap and downloaded >= cap:
            outcome: FileOutcome = FileOutcome(
                remote.name, remote.url, "deferred", reason="the run's byte cap was reached"
            )
            file_keys: list[DiagnosisKey] = []
        else:
            outcome, file_keys = await _fetch_one(source, remote, store, client, config, now)
        outcomes.append(outcome)
        keys.extend(file_keys)
        downloaded += outcome.size
        if progress is not None:
            progress(ProgressEvent(source.name, done, len(todo), remote.name, outcome.status))
    exposures: list[ExposureRecord] = []
    if keys:
        exposures = match_new_keys(store, keys, now)
    if alert is not None:
        await alert(store, now)
    result = SourceResult(
        source.name,
        listed=len(listing.files),
        not_modified=listing.not_modified,
        files=tuple(outcomes),
        new_keys=len(keys),
        exposures=len(exposures),
        bytes_downloaded=downloaded,
    )
    _log.info(
        "sync %s: %d listed, %d new, %d stored, %d refused, %d failed, %d keys, %d exposure(s)",
        source.name,
        len(listing.files),
        len(todo),
        result.count("stored"),
        result.count("refused"),
        result.count("failed"),
        len(keys),
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


async def _fetch_one(
    source: Source,
    remote: RemoteFile,
    store: Store,
    client: HttpClient,
    config: Config,
    now: float,
) -> tuple[FileOutcome, list[DiagnosisKey]]:
    try:
        fetched = await client.get(remote.url, max_bytes=config.limits.max_file_bytes)
    except ResponseTooLarge as exc:
        _log.warning("sync %s: refused %s: %s", source.name, remote.name, exc.detail)
        return FileOutcome(remote.name, remote.url, "refused", reason=exc.detail), []
    except FetchError as exc:
        if exc.status in (404, 410):
            # Skip a listed file that has vanished (key-distribution.md §10); nothing is
            # recorded, so it is tried again only while the index still lists it.
            _log.info("sync %s: %s vanished (HTTP %s)", source.name, remote.name, exc.status)
            return FileOutcome(remote.name, remote.url, "vanished", reason=exc.detail), []
        _log.warning("sync %s: %s failed: %s", source.name, remote.name, exc.detail)
        return FileOutcome(remote.name, remote.url, "failed", reason=exc.detail), []
    data = fetched.body
    digest = hashlib.sha256(data).digest()
    if store.is_file_processed(digest):
        return FileOutcome(remote.name, remote.url, "duplicate", size=len(data)), []
    try:
        verified = read_export_archive(data, source.trusted_keys)
    except KeyFileRejected as exc:
        _log.warning("sync %s: refused %s: %s", source.name, remote.name, exc)
        return FileOutcome(remote.name, remote.url, "refused", size=len(data), reason=str(exc)), []
    region = verified.export.region
    if source.region is not None and region is not None and region != source.region:
        reason = f"region {region!r} is not the configured {source.region!r}"
        _log.warning("sync %s: refused %s: %s", source.name, remote.name, reason)
        return FileOutcome(remote.name, remote.url, "refused", size=len(data), reason=reason), []
    keys = list(verified.export.keys) + list(verified.export.revised_keys)
    record = ProcessedFile(
        sha256=digest,
        source=source.name,
        name=remote.url,
        size=len(data),
        keys=len(keys),
        processed_at=now,
        etag=fetched.etag,
    )
    store.add_key_file(record, keys)
    return FileOutcome(remote.name, remote.url, "stored", keys=len(keys), size=len(data)), keys


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
    return SourceResult(
        result.source,
        result.listed,
        result.not_modified,
        result.files,
        result.new_keys,
        result.exposures,
        result.bytes_downloaded,
        result.error,
        due,
    )
