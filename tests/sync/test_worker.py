"""The sync worker against a real HTTP server on loopback, serving the real sample exports."""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from bluezoned.config import Config, Limits, Schedule, Source
from bluezoned.errors import InvalidInput
from bluezoned.exposure.keyfile import Signer, TrustedKey, write_export_archive
from bluezoned.matching import match_new_keys
from bluezoned.models import DiagnosisKey, Tek
from bluezoned.store import ExposureRecord, Store, SyncState
from bluezoned.sync.client import HttpClient, open_session
from bluezoned.sync.worker import (
    MatchNewKeys,
    SourceResult,
    next_due,
    retry_due,
    sync_all,
    sync_forever,
    sync_source,
)
from tests.sync.conftest import Samples, signed_file
from tests.sync.keyserver import KeyServer
from tests.test_matching import plant

NOW = 1_700_000_000.0
FAST = Limits(connect_timeout=2, read_timeout=2, request_timeout=10, retries=0)


class Matcher:
    """Records how many parsed keys the worker hands to matching, and marks every pending file matched."""

    def __init__(self) -> None:
        self.calls: list[int] = []
        self.keys: list[DiagnosisKey] = []

    def __call__(
        self, store: Store, now: float, parsed: Mapping[bytes, Sequence[DiagnosisKey]]
    ) -> list[ExposureRecord]:
        if parsed:
            self.calls.append(sum(len(keys) for keys in parsed.values()))
            self.keys.extend(k for keys in parsed.values() for k in keys)
        store.complete_matching([f.sha256 for f in store.unmatched_files()], [], [], now)
        return []


def stored_keys(store: Store) -> int:
    """Keys in the files the store recorded as processed."""
    return sum(f.keys for f in store.processed_files())


def index_config(
    server: KeyServer,
    trusted: Sequence[TrustedKey],
    limits: Limits = FAST,
    region: str | None = "US",
) -> Config:
    source = Source(
        name="test",
        url=server.url("/exports/index.txt"),
        format="index",
        trusted_keys=tuple(trusted),
        base_url=server.url("/exports/"),
        region=region,
    )
    return Config(sources=(source,), limits=limits)


def publish(server: KeyServer, files: dict[str, bytes]) -> None:
    """Serve ``files`` under /exports/ and list them, in order, in index.txt."""
    for name, body in files.items():
        server.files[f"/exports/{name}"] = body
    server.files["/exports/index.txt"] = "".join(f"{n}\n" for n in files).encode("ascii")


async def run(
    config: Config, store: Store, *, now: float = NOW, matcher: MatchNewKeys | None = None
) -> SourceResult:
    async def no_sleep(_: float) -> None:
        return None

    matcher = matcher or Matcher()
    async with open_session(config.limits) as session:
        client = HttpClient(session, config.limits, random.Random(1), sleep=no_sleep)
        result = await sync_source(
            config.sources[0],
            store=store,
            client=client,
            config=config,
            now=now,
            rng=random.Random(2),
            match_new_keys=matcher,
        )
    run.matcher = matcher  # type: ignore[attr-defined]
    return result


async def test_pulls_verifies_and_stores_the_real_samples(
    key_server: KeyServer, store: Store, samples: Samples
) -> None:
    publish(key_server, samples.files)
    config = index_config(key_server, samples.trusted)
    result = await run(config, store)
    assert result.ok, result
    assert result.count("stored") == 3
    total = sum(samples.counts.values())
    assert result.new_keys == total
    assert run.matcher.calls == [total]  # type: ignore[attr-defined]
    assert stored_keys(store) == total
    assert store.summary(NOW).processed_files == 3
    state = store.sync_state("test")
    assert state is not None
    assert state.last_success == NOW
    assert state.consecutive_failures == 0
    assert state.etag is not None
    assert NOW + 3.5 * 3600 <= (state.next_due or 0) <= NOW + 4.5 * 3600


async def test_second_run_gets_304_and_fetches_nothing(
    key_server: KeyServer, store: Store, samples: Samples
) -> None:
    publish(key_server, samples.files)
    config = index_config(key_server, samples.trusted)
    await run(config, store)
    again = await run(config, store, now=NOW + 3600)
    assert again.ok
    assert again.not_modified
    assert again.files == ()
    assert key_server.not_modified["/exports/index.txt"] == 1
    for name in samples.files:
        assert key_server.requests[f"/exports/{name}"] == 1


async def test_only_new_index_lines_are_fetched(
    key_server: KeyServer, store: Store, samples: Samples, signer: Signer
) -> None:
    publish(key_server, samples.files)
    config = index_config(key_server, (*samples.trusted, signer_key(signer)))
    await run(config, store)
    fresh = signed_file(signer, 5)
    # A name without ".zip" and one directory deeper: lines are never parsed (protocol.md §6.1).
    publish(key_server, {**samples.files, "batch/0002": fresh})
    result = await run(config, store, now=NOW + 3600)
    assert [f.name for f in result.files] == ["batch/0002"]
    assert result.files[0].status == "stored"
    assert result.new_keys == 5
    assert all(key_server.requests[f"/exports/{n}"] == 1 for n in samples.files)


def signer_key(signer: Signer) -> TrustedKey:
    return TrustedKey(signer.key_id, signer.key_version, signer.private_key.public_key())


def tampered(data: bytes) -> bytes:
    position = len(data) // 2
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


async def test_tampered_unsigned_and_wrongly_signed_files_store_nothing(
    key_server: KeyServer, store: Store, samples: Samples, signer: Signer
) -> None:
    impostor = Signer(signer.private_key, "310", "v1")  # claims the trusted key id, wrong key
    files = {
        "tampered.zip": tampered(samples.files["sample_diagnosis_key_file.zip"]),
        "unsigned.zip": (
            samples.root / "exposure-notifications-server/1605818700-1605819000-0001-ff23e2.zip"
        ).read_bytes(),
        "impostor.zip": signed_file(impostor, 10),
        "unknown-signer.zip": (
            samples.root / "exposure-notifications-android/sample_diagnosis_key_file_2020-05-19.zip"
        ).read_bytes(),
        "other-region.zip": signed_file(signer, 3, region="DE"),
    }
    publish(key_server, files)
    config = index_config(key_server, (*samples.trusted, signer_key(signer)))
    result = await run(config, store)
    assert result.ok  # refusals are reported, they do not fail the source
    refused = {f.name: f.reason or "" for f in result.refused}
    assert set(refused) == set(files)
    assert "signature" in refused["impostor.zip"]
    assert "no signature" in refused["unsigned.zip"]
    assert "no configured public key" in refused["unknown-signer.zip"]
    assert "region" in refused["other-region.zip"]
    assert store.diagnosis_keys() == []
    assert store.summary(NOW).processed_files == 0
    assert run.matcher.calls == []  # type: ignore[attr-defined]


async def test_replayed_file_is_stored_once(
    key_server: KeyServer, store: Store, samples: Samples
) -> None:
    body = samples.files["testExport-2-records-1-of-1.zip"]
    publish(key_server, {"a.zip": body, "b.zip": body})
    config = index_config(key_server, samples.trusted)
    result = await run(config, store)
    assert [f.status for f in result.files] == ["stored", "duplicate"]
    assert result.new_keys == 2
    assert store.summary(NOW).processed_files == 1
    publish(key_server, {"a.zip": body, "b.zip": body, "c.zip": body})
    again = await run(config, store, now=NOW + 60)
    assert [(f.name, f.status) for f in again.files] == [
        ("b.zip", "duplicate"),
        ("c.zip", "duplicate"),
    ]
    assert again.new_keys == 0
    assert stored_keys(store) == 2


@pytest.mark.parametrize("fault", ["none", "chunked"])
async def test_oversized_file_is_refused_and_nothing_stored(
    key_server: KeyServer, store: Store, samples: Samples, fault: str
) -> None:
    publish(key_server, samples.files)
    if fault != "none":
        key_server.fail("/exports/sample_diagnosis_key_file.zip", fault)
    limits = Limits(max_file_bytes=2048, connect_timeout=2, read_timeout=2, retries=0)
    config = index_config(key_server, samples.trusted, limits)
    result = await run(config, store)
    by_name = {f.name: f for f in result.files}
    big = by_name["sample_diagnosis_key_file.zip"]
    assert big.status == "refused"
    assert "2048" in (big.reason or "")
    assert by_name["sample-export.zip"].status == "stored"
    assert stored_keys(store) == 4


async def test_reset_mid_download_is_retried_within_the_run(
    key_server: KeyServer, store: Store, samples: Samples
) -> None:
    publish(key_server, samples.files)
    key_server.fail("/exports/sample_diagnosis_key_file.zip", "reset")
    key_server.fail("/exports/sample-export.zip", "503", "500")
    limits = Limits(connect_timeout=2, read_timeout=2, request_timeout=10, retries=3)
    result = await run(index_config(key_server, samples.trusted, limits), store)
    assert result.ok, result
    assert result.count("stored") == 3
    assert key_server.requests["/exports/sample_diagnosis_key_file.zip"] == 2
    assert key_server.requests["/exports/sample-export.zip"] == 3


@pytest.mark.parametrize("status", ["408", "429"])
async def test_timeout_and_too_many_requests_are_retried(
    key_server: KeyServer, store: Store, samples: Samples, status: str
) -> None:
    publish(key_server, samples.files)
    key_server.fail("/exports/sample-export.zip", status)
    limits = Limits(connect_timeout=2, read_timeout=2, request_timeout=10, retries=1)
    result = await run(index_config(key_server, samples.trusted, limits), store)
    assert result.ok, result
    assert result.count("stored") == 3
    assert key_server.requests["/exports/sample-export.zip"] == 2


async def test_failures_resume_without_refetching_finished_files(
    key_server: KeyServer, store: Store, samples: Samples
) -> None:
    publish(key_server, samples.files)
    key_server.fail("/exports/sample_diagnosis_key_file.zip", "reset")
    key_server.fail("/exports/sample-export.zip", "503")
    config = index_config(key_server, samples.trusted)
    first = await run(config, store)
    assert not first.ok
    assert [f.status for f in first.files] == ["failed", "stored", "failed"]
    state = store.sync_state("test")
    assert state is not None
    assert state.consecutive_failures == 1
    assert state.etag is None  # kept unset so the next run re-reads the index
    second = await run(config, store, now=NOW + 600)
    assert second.ok
    assert [f.name for f in second.files] == [
        "sample_diagnosis_key_file.zip",
        "sample-export.zip",
    ]
    assert key_server.requests["/exports/testExport-2-records-1-of-1.zip"] == 1
    assert key_server.requests["/exports/sample_diagnosis_key_file.zip"] == 2
    assert stored_keys(store) == sum(samples.counts.values())
    after = store.sync_state("test")
    assert after is not None
    assert after.consecutive_failures == 0


@pytest.mark.parametrize("fault", ["stall", "slow"])
async def test_slow_server_times_out_then_next_run_completes(
    key_server: KeyServer, store: Store, samples: Samples, fault: str
) -> None:
    publish(key_server, samples.files)
    key_server.stall_seconds = 1.0
    key_server.fail("/exports/sample-export.zip", fault)
    limits = Limits(connect_timeout=1, read_timeout=0.2, request_timeout=5, retries=0)
    config = index_config(key_server, samples.trusted, limits)
    first = await run(config, store)
    failed = [f for f in first.files if f.status == "failed"]
    assert [f.name for f in failed] == ["sample-export.zip"]
    assert "timed out" in (failed[0].reason or "")
    second = await run(config, store, now=NOW + 600)
    assert second.ok
    assert [f.name for f in second.files] == ["sample-export.zip"]
    assert key_server.requests["/exports/sample_diagnosis_key_file.zip"] == 1


async def test_index_failure_fails_the_source_and_backs_off(
    key_server: KeyServer, store: Store, samples: Samples
) -> None:
    publish(key_server, samples.files)
    key_server.fail("/exports/index.txt", "503")
    result = await run(index_config(key_server, samples.trusted), store)
    assert not result.ok
    assert "HTTP 503" in (result.error or "")
    state = store.sync_state("test")
    assert state is not None
    assert state.consecutive_failures == 1
    assert state.last_success is None
    assert NOW < (state.next_due or 0) <= NOW + 3600


@pytest.mark.parametrize("status", ["404", "410"])
async def test_vanished_file_is_skipped(
    key_server: KeyServer, store: Store, samples: Samples, status: str
) -> None:
    publish(key_server, samples.files)
    key_server.files["/exports/index.txt"] += b"gone.zip\n"
    key_server.files["/exports/gone.zip"] = b"listed, but the server answers " + status.encode()
    key_server.fail("/exports/gone.zip", status)
    result = await run(index_config(key_server, samples.trusted), store)
    assert result.ok
    assert result.files[-1].status == "vanished"
    assert result.count("stored") == 3


async def test_sync_all_rejects_an_unknown_source(store: Store) -> None:
    with pytest.raises(InvalidInput, match="no source named"):
        await sync_all(
            Config(),
            store=store,
            client=None,  # type: ignore[arg-type]
            now=NOW,
            rng=random.Random(0),
            match_new_keys=Matcher(),
            only="nope",
        )


def test_next_due_stays_within_interval_and_jitter() -> None:
    rng = random.Random(7)
    schedule = Schedule(interval_seconds=4 * 3600, jitter_seconds=1800)
    dues = [next_due(NOW, schedule, rng) - NOW for _ in range(500)]
    assert min(dues) >= 4 * 3600 - 1800
    assert max(dues) <= 4 * 3600 + 1800
    assert max(dues) - min(dues) > 1800  # really randomised
    assert next_due(NOW, schedule, random.Random(3)) == next_due(NOW, schedule, random.Random(3))


def test_retry_due_backs_off_up_to_the_period() -> None:
    schedule = Schedule(interval_seconds=4 * 3600, jitter_seconds=1800)
    early = retry_due(NOW, 1, schedule, random.Random(0)) - NOW
    late = retry_due(NOW, 30, schedule, random.Random(0)) - NOW
    assert 0 < early <= 120
    assert early < late <= 4 * 3600
    short = Schedule(interval_seconds=600, jitter_seconds=60)
    capped = [retry_due(NOW, 30, short, random.Random(seed)) - NOW for seed in range(20)]
    assert all(300 <= c <= 600 for c in capped)  # never later than one normal period


async def test_run_byte_cap_defers_the_rest_to_the_next_run(
    key_server: KeyServer, store: Store, samples: Samples
) -> None:
    publish(key_server, samples.files)
    limits = Limits(connect_timeout=2, read_timeout=2, retries=0, max_run_bytes=1000)
    config = index_config(key_server, samples.trusted, limits)
    first = await run(config, store)
    assert first.ok
    assert [f.status for f in first.files] == ["stored", "deferred", "deferred"]
    second = await run(config, store, now=NOW + 60)
    assert [f.status for f in second.files] == ["stored", "stored"]  # 505 + 510 bytes: one cap
    assert key_server.requests["/exports/sample_diagnosis_key_file.zip"] == 1
    assert stored_keys(store) == sum(samples.counts.values())


class Crash(Exception):
    """The process dying between storing a file and matching it."""


async def test_crash_between_store_and_match_is_finished_by_the_next_run(
    key_server: KeyServer, store: Store, signer: Signer
) -> None:
    day = int(NOW // 600) // 144 * 144
    tek = Tek(os.urandom(16), day)
    plant(store, tek, day + 10, 2)
    body = write_export_archive(
        [DiagnosisKey(tek.key_data, day), DiagnosisKey(os.urandom(16), day)],
        region="US",
        start_timestamp=day * 600,
        end_timestamp=day * 600 + 3600,
        signers=[signer],
    )
    publish(key_server, {"a.zip": body})
    config = index_config(key_server, [signer_key(signer)])

    def crashing(
        store: Store, now: float, parsed: Mapping[bytes, Sequence[DiagnosisKey]]
    ) -> list[ExposureRecord]:
        raise Crash

    with pytest.raises(Crash):
        await run(config, store, matcher=crashing)
    (pending,) = store.unmatched_files()
    assert pending.keys == 2
    assert store.exposures() == []

    result = await run(config, store, now=NOW + 600, matcher=match_new_keys)
    assert result.ok
    assert result.files == ()  # listed again, but a.zip is never downloaded twice
    assert key_server.requests["/exports/a.zip"] == 1
    assert result.exposures == 1
    (exposure,) = store.exposures()
    assert exposure.key_data == tek.key_data
    assert exposure.risk_level is not None
    assert store.unmatched_files() == []
    assert [k.key.key_data for k in store.diagnosis_keys()] == [tek.key_data]


async def test_stage_times_are_reported(
    key_server: KeyServer, store: Store, samples: Samples
) -> None:
    publish(key_server, samples.files)
    result = await run(index_config(key_server, samples.trusted), store)
    assert {"pending_match", "list", "download", "verify_parse", "store", "match"} <= set(
        result.stages
    )
    assert all(set(f.seconds) == {"download", "verify_parse", "store"} for f in result.files)


async def follow(
    config: Config,
    store: Store,
    clock: list[float],
    rounds: int,
    slept: list[float] | None = None,
    report: Callable[[SourceResult], object] | None = None,
) -> None:
    """Run sync_forever for ``rounds`` source runs on a virtual clock that sleeping advances."""

    async def fake_sleep(seconds: float) -> None:
        if slept is not None:
            slept.append(seconds)
        clock[0] += seconds

    async with open_session(config.limits) as session:
        client = HttpClient(session, config.limits, random.Random(1), sleep=fake_sleep)
        await sync_forever(
            config,
            store=store,
            client=client,
            clock=lambda: clock[0],
            sleep=fake_sleep,
            rng=random.Random(3),
            match_new_keys=Matcher(),
            report=report,
            rounds=rounds,
        )


async def test_sync_forever_follows_the_randomised_schedule(
    key_server: KeyServer, store: Store, signer: Signer
) -> None:
    publish(key_server, {"a.zip": signed_file(signer, 3)})
    config = index_config(key_server, [signer_key(signer)])
    slept: list[float] = []
    results: list[SourceResult] = []
    await follow(config, store, [NOW], rounds=3, slept=slept, report=results.append)
    assert [r.count("stored") for r in results] == [1, 0, 0]
    assert len(slept) == 2
    assert all(3.5 * 3600 <= s <= 4.5 * 3600 for s in slept)
    assert key_server.requests["/exports/a.zip"] == 1


async def test_sync_forever_honours_the_stored_next_run(
    key_server: KeyServer, store: Store, signer: Signer
) -> None:
    publish(key_server, {"a.zip": signed_file(signer, 3)})
    config = index_config(key_server, [signer_key(signer)])
    await run(config, store)  # a previous process ran at NOW and stored its next time
    due = store.sync_state("test").next_due  # type: ignore[union-attr]
    assert due is not None
    clock = [NOW + 60]
    await follow(config, store, clock, rounds=1)
    assert clock[0] >= due  # it waited for the stored time instead of syncing at start-up
    assert key_server.requests["/exports/index.txt"] == 2


async def test_sync_forever_runs_the_source_due_first(
    key_server: KeyServer, store: Store, signer: Signer
) -> None:
    publish(key_server, {"a.zip": signed_file(signer, 3)})
    key_server.files["/late/index.txt"] = key_server.files["/exports/index.txt"]
    one = index_config(key_server, [signer_key(signer)]).sources[0]
    late = replace(one, name="late", url=key_server.url("/late/index.txt"))
    config = Config(sources=(late, one), limits=FAST)
    store.put_sync_state(SyncState("late", next_due=NOW + 3 * 3600))
    store.put_sync_state(SyncState("test", next_due=NOW + 3600))
    results: list[SourceResult] = []
    clock = [NOW]
    await follow(config, store, clock, rounds=1, report=results.append)
    assert [r.source for r in results] == ["test"]
    assert clock[0] == NOW + 3600
    assert key_server.requests["/late/index.txt"] == 0


@pytest.mark.parametrize("fault", ["none", "chunked"])
async def test_a_file_of_exactly_the_size_limit_is_stored(
    key_server: KeyServer, tmp_path: Path, samples: Samples, fault: str
) -> None:
    name = "sample-export.zip"
    publish(key_server, {name: samples.files[name]})
    size = len(samples.files[name])
    for limit, status in ((size - 1, "refused"), (size, "stored")):
        if fault != "none":
            key_server.fail(f"/exports/{name}", fault)
        limits = Limits(max_file_bytes=limit, connect_timeout=2, read_timeout=2, retries=0)
        with Store.open(tmp_path / f"{limit}.db") as store:
            result = await run(index_config(key_server, samples.trusted, limits), store)
        assert [f.status for f in result.files] == [status], limit
