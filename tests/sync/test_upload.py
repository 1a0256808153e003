"""The upload flow against the real authority server on loopback, and the loop back to a device."""

from __future__ import annotations

import base64
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from bluezoned.authority.db import Grant, SqliteAuthorityStore
from bluezoned.authority.server import hash_secret
from bluezoned.config import Config, Limits, Source
from bluezoned.errors import InvalidInput, UploadRejected
from bluezoned.exposure.keys import interval_number
from bluezoned.exposure.tekmac import canonical_key_text, tek_hmac
from bluezoned.models import DiagnosisKey, Tek
from bluezoned.store import OwnKey, Store
from bluezoned.sync.client import HttpClient, open_session
from bluezoned.sync.upload import finish_upload, keys_to_upload, publish_key_objects, upload_keys
from bluezoned.sync.worker import sync_source
from tests.authority_harness import NOW, ROOT, TRUSTED, Authority
from tests.sync.test_worker import Matcher

TODAY = interval_number(NOW) // 144 * 144


@pytest.fixture
async def authority(tmp_path: Path) -> AsyncIterator[Authority]:
    async with Authority().running(tmp_path) as running:
        yield running


def own(store: Store, days: int = 4) -> list[DiagnosisKey]:
    for day in range(days):
        store.add_own_key(Tek(bytes([day + 1]) * 16, TODAY - 144 * day), NOW - 86400 * day)
    return keys_to_upload(store.own_keys(), NOW, 14)


def test_keys_to_upload_skips_reported_future_and_old_keys() -> None:
    def key(byte: int, start: int, reported: float | None = None) -> OwnKey:
        return OwnKey(Tek(bytes([byte]) * 16, start), NOW, reported)

    chosen = keys_to_upload(
        [
            key(1, TODAY),
            key(2, TODAY - 144),
            key(3, TODAY - 144 * 2, reported=NOW),
            key(4, TODAY - 144 * 20),
            key(5, interval_number(NOW) + 1),
        ],
        NOW,
        14,
    )
    assert [k.key_data[0] for k in chosen] == [2, 1]
    many = [key(i, TODAY - 144 * (i % 14)) for i in range(40)]
    assert len(keys_to_upload(many, NOW, 14)) == 30
    with pytest.raises(InvalidInput):
        keys_to_upload([], NOW, 0)


def test_publish_form_matches_the_canonical_hmac_text() -> None:
    keys = [DiagnosisKey(b"\x01" * 16, 2_900_000, 144), DiagnosisKey(b"\x02" * 16, 2_900_144, 90)]
    objects = publish_key_objects(keys)
    assert objects[1] == {
        "key": base64.b64encode(b"\x02" * 16).decode(),
        "rollingStartNumber": 2_900_144,
        "rollingPeriod": 90,
    }
    texts = sorted(f"{o['key']}.{o['rollingStartNumber']}.{o['rollingPeriod']}" for o in objects)
    assert ",".join(texts) == canonical_key_text(keys)


async def test_upload_publish_export_and_sync_back(authority: Authority, tmp_path: Path) -> None:
    with Store.open(tmp_path / "patient.db") as patient:
        keys = own(patient)
        assert len(keys) == 4
        result = await upload_keys(authority.url, authority.code(symptom_date="2026-11-28"), keys)
        assert result.inserted == 4
        assert result.test_type == "confirmed"
        assert result.health_authority == "bluezoned-VN"
        fresh = finish_upload(patient, keys, NOW, random16=b"\xee" * 16)
        assert fresh.rolling_start == interval_number(NOW) + 1
        stored = {k.tek.key_data: k for k in patient.own_keys()}
        assert all(stored[k.key_data].reported for k in keys)
        assert not stored[b"\xee" * 16].reported
        assert keys_to_upload(patient.own_keys(), NOW, 14) == []

    authority.clock.now += 3 * 3600
    assert authority.server is not None
    assert len(await authority.server.export_once()) == 1
    source = Source(
        "vn",
        f"{authority.url}/exports/{ROOT}/index.txt",
        "index",
        TRUSTED,
        base_url=f"{authority.url}/exports/",
        region="VN",
    )
    config = Config(sources=(source,), limits=Limits(retries=0))
    matcher = Matcher()
    with Store.open(tmp_path / "device.db") as device:
        async with open_session(config.limits) as session:
            client = HttpClient(session, config.limits, random.Random(0))
            synced = await sync_source(
                source,
                store=device,
                client=client,
                config=config,
                now=authority.clock.now,
                rng=random.Random(0),
                match_new_keys=matcher,
            )
        assert synced.ok, synced
        assert synced.count("stored") == 1
        published = {k.key_data for k in matcher.keys}
    # Today's key is embargoed; the three past keys come back, among the padding keys.
    assert {k.key_data for k in keys if k.rolling_start < TODAY} <= published
    assert b"\x01" * 16 not in published


async def test_bad_code_and_negative_test_are_refused(authority: Authority, tmp_path: Path) -> None:
    keys = [DiagnosisKey(b"\x05" * 16, TODAY - 144)]
    with pytest.raises(UploadRejected) as caught:
        await upload_keys(authority.url, "00000000", keys)
    assert (caught.value.step, caught.value.status, caught.value.code) == (
        "verify",
        401,
        "code_invalid",
    )
    with pytest.raises(UploadRejected) as caught:
        await upload_keys(authority.url, authority.code("negative"), keys)
    assert caught.value.code == "negative_test"


async def test_a_malformed_symptom_date_is_refused_before_the_token_is_spent(
    authority: Authority,
) -> None:
    # A server that hands out a date the client cannot read: the client must stop at verify.
    staff = SqliteAuthorityStore(authority.db_path)
    try:
        staff.add_code(hash_secret("12345678"), Grant("confirmed", "28/11/2026"), NOW, NOW + 900)
    finally:
        staff.close()
    keys = [DiagnosisKey(b"\x05" * 16, TODAY - 144)]
    with pytest.raises(UploadRejected) as caught:
        await upload_keys(authority.url, "12345678", keys)
    assert (caught.value.step, caught.value.code) == ("verify", "bad_response")
    staff = SqliteAuthorityStore(authority.db_path)
    try:
        unused = staff._db.query("SELECT COUNT(*) AS n FROM tokens WHERE used_at IS NULL")
        assert next(iter(unused))["n"] == 1
    finally:
        staff.close()


async def test_certificate_is_bound_to_the_keys(
    authority: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    keys = [DiagnosisKey(b"\x06" * 16, TODAY - 144)]
    other = [DiagnosisKey(b"\x08" * 16, TODAY - 144)]
    # The certificate is requested for other keys than the ones then published.
    monkeypatch.setattr("bluezoned.sync.upload.tek_hmac", lambda secret, _: tek_hmac(secret, other))
    with pytest.raises(UploadRejected) as caught:
        await upload_keys(authority.url, authority.code(), keys)
    assert caught.value.step == "publish"
    assert caught.value.code == "hmac_mismatch"
    with pytest.raises(InvalidInput, match="secret"):
        await upload_keys(authority.url, authority.code(), keys, secret=b"short")


async def test_unreachable_server_is_reported() -> None:
    keys = [DiagnosisKey(b"\x07" * 16, TODAY - 144)]
    with pytest.raises(UploadRejected) as caught:
        await upload_keys("http://127.0.0.1:9", "12345678", keys)
    assert caught.value.code == "unreachable"
    with pytest.raises(InvalidInput):
        await upload_keys("http://127.0.0.1:9", "12345678", [])


def test_keys_to_upload_window_edges() -> None:
    current = interval_number(NOW)
    oldest = current - 14 * 144
    own_keys = [
        OwnKey(Tek(b"\x01" * 16, oldest - 144), NOW),  # ended exactly 14 days ago: out
        OwnKey(Tek(b"\x02" * 16, oldest - 143), NOW),  # still valid one interval later: in
        OwnKey(Tek(b"\x03" * 16, current, 1), NOW),  # started in this interval: in
    ]
    assert [k.key_data[0] for k in keys_to_upload(own_keys, NOW, 14)] == [2, 3]
