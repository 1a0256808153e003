"""The authority server over real HTTP on loopback: code -> token -> certificate -> publish -> export."""

from __future__ import annotations

import base64
import secrets
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from bluezoned.exposure import keyfile
from bluezoned.models import DiagnosisKey, ReportType
from tests.authority_harness import NOW, TRUSTED, Authority

TODAY = int((NOW - 6 * 3600) // 600)


def key(byte: int, days_ago: int, period: int = 144) -> DiagnosisKey:
    return DiagnosisKey(bytes([byte]) * 16, TODAY - 144 * days_ago, period)


@pytest.fixture
async def running(tmp_path: Path) -> AsyncIterator[Authority]:
    async with Authority().running(tmp_path) as authority, aiohttp.ClientSession() as http:
        authority.http = http
        yield authority


async def test_upload_to_publish_loop(running: Authority) -> None:
    keys = [key(1, 3), key(2, 2), key(3, 1), key(4, 0)]  # the last is today's key: embargoed
    certificate, secret = await running.certificate(keys, symptom_date="2026-11-27")
    status, reply = await running.publish(keys, certificate, secret)
    assert status == 200, reply
    assert reply["insertedExposures"] == 4
    assert len(reply["padding"]) >= 1024

    running.clock.now += 3 * 3600  # the upload's hour closed 2 h ago
    files = await running.server.export_once()
    assert len(files) == 1
    async with running.http.get(
        f"{running.url}/exports/exposureKeyExport-VN/index.txt"
    ) as response:
        assert response.status == 200
        assert response.headers["Cache-Control"] == "no-cache, max-age=0"
        index = await response.text()
        etag = response.headers["ETag"]
    (line,) = index.splitlines()
    async with running.http.get(f"{running.url}/exports/{line}") as response:
        assert response.headers["Cache-Control"] == "public, max-age=86400, immutable"
        archive = await response.read()
    async with running.http.get(
        f"{running.url}/exports/exposureKeyExport-VN/index.txt", headers={"If-None-Match": etag}
    ) as response:
        assert response.status == 304
    export = keyfile.read_export_archive(archive, TRUSTED).export
    published = {k.key_data: k for k in export.keys}
    assert {k.key_data for k in keys[:3]} <= set(published)
    assert keys[3].key_data not in published
    first = published[keys[0].key_data]
    assert first.report_type is ReportType.CONFIRMED_TEST
    assert first.transmission_risk_level == 2
    assert first.days_since_onset == 0  # the key of 11-27, symptoms from 11-27
    assert published[keys[1].key_data].days_since_onset == 1
    assert 1000 <= len(export.keys) <= 1100  # padded

    running.clock.now = (
        TODAY + 144
    ) * 600 + 5 * 3600  # today's key expired 2 h ago + window closed
    later = await running.server.export_once()
    later_keys = {
        k.key_data for f in later for k in keyfile.read_export_archive(f.data, TRUSTED).export.keys
    }
    assert keys[3].key_data in later_keys
    assert keys[0].key_data not in later_keys


async def test_code_is_single_use_and_wrong_codes_are_rate_limited(running: Authority) -> None:
    code = running.code()
    assert (await running.post("/api/verify", {"code": code}))[0] == 200
    status, reply = await running.post("/api/verify", {"code": code})
    assert (status, reply["code"]) == (401, "code_invalid")
    for _ in range(9):
        assert (await running.post("/api/verify", {"code": "00000000"}))[0] == 401
    status, reply = await running.post("/api/verify", {"code": running.code()})
    assert (status, reply["code"]) == (429, "rate_limited")
    running.clock.now += 61
    assert (await running.post("/api/verify", {"code": running.code()}))[0] == 200


async def test_expired_code_and_reused_token_are_refused(running: Authority) -> None:
    code = running.code()
    running.clock.now += 15 * 60
    assert (await running.post("/api/verify", {"code": code}))[1]["code"] == "code_invalid"
    status, verified = await running.post("/api/verify", {"code": running.code()})
    mac = base64.b64encode(bytes(32)).decode()
    assert (await running.post("/api/certificate", {"token": verified["token"], "ekeyhmac": mac}))[
        0
    ] == 200
    status, reply = await running.post(
        "/api/certificate", {"token": verified["token"], "ekeyhmac": mac}
    )
    assert (status, reply["code"]) == (401, "token_invalid")
    status, reply = await running.post(
        "/api/certificate", {"token": "x", "ekeyhmac": base64.b64encode(bytes(31)).decode()}
    )
    assert (status, reply["code"]) == (400, "bad_request")


async def test_certificate_binds_exactly_these_keys_and_is_single_use(running: Authority) -> None:
    keys = [key(1, 2)]
    certificate, secret = await running.certificate(keys)
    status, reply = await running.publish([key(9, 2)], certificate, secret)
    assert (status, reply["code"]) == (400, "hmac_mismatch")
    status, reply = await running.publish(keys, certificate, secrets.token_bytes(32))
    assert (status, reply["code"]) == (400, "hmac_mismatch")
    status, reply = await running.publish(keys, certificate, secrets.token_bytes(8))
    assert (status, reply["code"]) == (400, "bad_request")
    assert (await running.publish(keys, certificate, secret))[0] == 200
    status, reply = await running.publish(keys, certificate, secret)
    assert (status, reply["code"]) == (401, "certificate_used")


async def test_forged_expired_and_foreign_certificates_are_refused(running: Authority) -> None:
    keys = [key(1, 2)]
    certificate, secret = await running.certificate(keys)
    head, payload, signature = certificate.split(".")
    forged = f"{head}.{payload}.{signature[:-4]}AAAA"
    assert (await running.publish(keys, forged, secret))[1]["code"] == "certificate_invalid"
    status, reply = await running.publish(
        keys, certificate, secret, healthAuthorityID="someone-else"
    )
    assert (status, reply["code"]) == (401, "certificate_invalid")
    running.clock.now += 15 * 60
    status, reply = await running.publish(keys, certificate, secret)
    assert (status, reply["code"]) == (401, "certificate_invalid")
    assert "expired" in reply["error"]


async def test_negative_test_cannot_publish(running: Authority) -> None:
    keys = [key(1, 2)]
    certificate, secret = await running.certificate(keys, test_type="negative")
    assert (await running.publish(keys, certificate, secret))[1]["code"] == "negative_test"


@pytest.mark.parametrize(
    ("keys", "code"),
    [
        ([key(i, 2) for i in range(31)], "bad_key_count"),
        ([key(1, 16)], "key_too_old"),
        ([key(1, -1)], "key_in_future"),
        ([key(i, 2) for i in range(4)], "bad_key"),
        ([DiagnosisKey(bytes(16), TODAY - 288, 145)], "bad_key"),
    ],
)
async def test_publish_limits(running: Authority, keys: list[DiagnosisKey], code: str) -> None:
    certificate, secret = await running.certificate(keys)
    status, reply = await running.publish(keys, certificate, secret)
    assert (status, reply["code"]) == (400, code)


async def test_empty_key_list_and_bad_bodies(running: Authority) -> None:
    certificate, secret = await running.certificate([])
    assert (await running.publish([], certificate, secret))[1]["code"] == "bad_key_count"
    async with running.http.post(running.url + "/v1/publish", data=b"{not json") as response:
        assert response.status == 400
    async with running.http.post(running.url + "/v1/publish", data=b"x" * (65 * 1024)) as response:
        assert response.status == 413


async def test_static_serving_refuses_other_paths(running: Authority) -> None:
    await running.server.export_once()
    for path in (
        "/exports/other/index.txt",
        "/exports/exposureKeyExport-VN/secret.pem",
        "/exports/exposureKeyExport-VN/..%2Fauthority.db",
    ):
        async with running.http.get(running.url + path) as response:
            assert response.status == 404, path


def test_failure_memory_is_bounded(running: Authority, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bluezoned.authority.server.MAX_TRACKED_PEERS", 50)
    for i in range(200):
        running.server._note_failure(f"10.0.{i // 256}.{i % 256}", running.clock.now)
    assert len(running.server._failures) <= 50
    running.clock.now += 61
    running.server._note_failure("192.0.2.1", running.clock.now)
    assert list(running.server._failures) == ["192.0.2.1"]


async def test_an_hours_uploads_wait_until_the_hour_closed_two_hours_ago(
    running: Authority,
) -> None:
    keys = [key(1, 3)]
    certificate, secret = await running.certificate(keys)
    assert (await running.publish(keys, certificate, secret))[0] == 200
    hour_end = (NOW // 3600 + 1) * 3600
    for now in (NOW, hour_end, hour_end + 2 * 3600 - 1):
        running.clock.now = now
        assert await running.server.export_once() == [], now
    running.clock.now = hour_end + 2 * 3600
    (exported,) = await running.server.export_once()
    published = keyfile.read_export_archive(exported.data, TRUSTED).export.keys
    assert keys[0].key_data in {k.key_data for k in published}


async def test_four_keys_of_one_start_are_refused_among_others(running: Authority) -> None:
    keys = [key(i, 2) for i in range(4)] + [key(9, 3)]
    certificate, secret = await running.certificate(keys)
    status, reply = await running.publish(keys, certificate, secret)
    assert (status, reply["code"]) == (400, "bad_key")


@pytest.mark.parametrize(("symptoms", "onset"), [("2026-11-01", 14), ("2026-12-25", -14)])
async def test_days_since_onset_is_clamped_to_two_weeks(
    running: Authority, symptoms: str, onset: int
) -> None:
    keys = [key(1, 3)]
    certificate, secret = await running.certificate(keys, symptom_date=symptoms)
    assert (await running.publish(keys, certificate, secret))[0] == 200
    running.clock.now += 3 * 3600
    (exported,) = await running.server.export_once()
    published = keyfile.read_export_archive(exported.data, TRUSTED).export.keys
    (mine,) = [k for k in published if k.key_data == keys[0].key_data]
    assert mine.days_since_onset == onset


@pytest.mark.parametrize(("secret_bytes", "status"), [(16, 200), (15, 400)])
async def test_the_hmac_secret_needs_128_bits(
    running: Authority, secret_bytes: int, status: int
) -> None:
    keys = [key(1, 3)]
    certificate, secret = await running.certificate(keys, secret_bytes=secret_bytes)
    got, reply = await running.publish(keys, certificate, secret)
    assert got == status, reply
    if status != 200:
        assert "at least 16 bytes" in reply["error"]
