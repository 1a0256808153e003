"""The authority's offline publisher: limits, padding, splitting, signing, index and retention."""

from __future__ import annotations

import base64
import json
import random
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from bluezoned.authority import publisher
from bluezoned.authority.keys_json import parse_keys_json
from bluezoned.authority.offline import INDEX_NAME, PublishReport, publish_window
from bluezoned.authority.output import DirectoryOutput
from bluezoned.errors import BadRecords, BluezonedError, InvalidInput
from bluezoned.exposure import keyfile
from bluezoned.models import DiagnosisKey, ReportType

NOW = 1_795_996_800.0  # 2026-11-30T00:00:00Z
TODAY = int(NOW // 600)  # first interval of 2026-11-30
SIGNER = keyfile.Signer(ec.derive_private_key(12345, ec.SECP256R1()), "452", "v1")
TRUSTED = [keyfile.TrustedKey("452", "v1", SIGNER.private_key.public_key())]


def key(byte: int, start: int, period: int = 144, **fields: object) -> DiagnosisKey:
    return DiagnosisKey(bytes([byte]) * 16, start, period, **fields)  # type: ignore[arg-type]


def test_classify_applies_age_future_and_embargo_limits() -> None:
    keys = [
        key(1, TODAY - 144),  # yesterday, ended at midnight: still within 2 h -> held back
        key(2, TODAY - 288),  # ended a day ago: accepted
        key(3, TODAY - 15 * 144),  # exactly 15 days: accepted
        key(4, TODAY - 15 * 144 - 1),  # older: refused
        key(5, TODAY + 1),  # future: refused
        key(6, TODAY),  # today's key: held back
        DiagnosisKey(b"short", TODAY - 288),
        key(7, TODAY - 288, period=0),
    ]
    verdict = publisher.classify_keys(keys, now=NOW)
    assert [k.key_data[0] for k in verdict.accepted] == [2, 3]
    assert [k.key_data[0] for k in verdict.embargoed] == [1, 6]
    assert [r.index for r in verdict.refused] == [3, 4, 6, 7]
    assert [r.code for r in verdict.refused] == [
        "key_too_old",
        "key_in_future",
        "bad_key",
        "bad_key",
    ]
    assert "15 days" in verdict.refused[0].reason
    assert "future" in verdict.refused[1].reason


def test_embargo_ends_exactly_two_hours_after_validity() -> None:
    yesterday = key(1, TODAY - 144)
    assert publisher.classify_keys([yesterday], now=NOW + 7199).embargoed == (yesterday,)
    assert publisher.classify_keys([yesterday], now=NOW + 7200).accepted == (yesterday,)


def test_padding_copies_real_metadata_and_fills_to_about_a_thousand() -> None:
    real = [
        key(
            i,
            TODAY - 288 - i,
            100 + i,
            transmission_risk_level=i % 8,
            report_type=ReportType.CONFIRMED_TEST,
        )
        for i in range(5)
    ]
    fakes = publisher.pad_keys(real, random.Random(1))
    assert 1000 <= len(real) + len(fakes) <= 1100
    real_metadata = {
        (k.rolling_start, k.rolling_period, k.transmission_risk_level, k.report_type) for k in real
    }
    assert {
        (k.rolling_start, k.rolling_period, k.transmission_risk_level, k.report_type) for k in fakes
    } <= real_metadata
    assert len({k.key_data for k in fakes}) == len(fakes)
    assert publisher.pad_keys([], random.Random(1)) == []
    assert publisher.pad_keys([key(1, TODAY)] * 1000, random.Random(1)) == []
    many = [key(i % 250, TODAY - 288) for i in range(990)]
    assert 1000 <= len(many) + len(publisher.pad_keys(many, random.Random(1))) <= 1100


def test_build_exports_splits_signs_and_sorts() -> None:
    real = [key(i, TODAY - 288) for i in range(1, 8)]
    files = publisher.build_exports(
        real,
        region="VN",
        start_timestamp=100,
        end_timestamp=200,
        signers=[SIGNER],
        rng=random.Random(2),
        max_keys_per_file=400,
    )
    total = sum(f.real_keys + f.padding_keys for f in files)
    assert 1000 <= total <= 1100
    assert len(files) == -(-total // 400)
    assert [f.name for f in files] == [f"100-{200 + i}-{i + 1:05d}.zip" for i in range(len(files))]
    assert sum(f.real_keys for f in files) == 7
    seen: list[bytes] = []
    for export in files:
        verified = keyfile.read_export_archive(export.data, TRUSTED)
        assert verified.export.region == "VN"
        assert (verified.export.start_timestamp, verified.export.end_timestamp) == (
            100,
            export.end_timestamp,
        )
        data = [k.key_data for k in verified.export.keys]
        assert data == sorted(data)
        assert len(data) == export.real_keys + export.padding_keys
        seen += data
    assert {k.key_data for k in real} <= set(seen)
    assert (
        publisher.build_exports(
            [],
            region="VN",
            start_timestamp=1,
            end_timestamp=2,
            signers=[SIGNER],
            rng=random.Random(),
        )
        == []
    )
    with pytest.raises(InvalidInput):
        publisher.build_exports(
            real, region="VN", start_timestamp=1, end_timestamp=2, signers=[], rng=random.Random()
        )


def test_index_lists_oldest_first_under_the_root_and_ignores_other_names() -> None:
    names = [
        "200-300-00001.zip",
        "100-200-00002.zip",
        "100-200-00001.zip",
        "index.txt",
        "notes.zip",
        "1-2-3.tar",
    ]
    assert publisher.index_text(names, "exposureKeyExport-VN") == (
        "exposureKeyExport-VN/100-200-00001.zip\nexposureKeyExport-VN/100-200-00002.zip\nexposureKeyExport-VN/200-300-00001.zip\n"
    )
    assert publisher.index_text([], "x") == ""
    assert publisher.index_text(["1-2-00001.zip"], "") == "1-2-00001.zip\n"


def test_retention_unlists_after_14_days_and_deletes_a_day_later() -> None:
    day = 86_400
    names = [f"0-{end}-00001.zip" for end in (0, day, 2 * day)]
    listed, deletable = publisher.retention_split(names, now=14 * day + day // 2)
    assert listed == [names[1], names[2]]
    assert deletable == []
    listed, deletable = publisher.retention_split(names, now=15 * day + 1)
    assert listed == [names[2]]
    assert deletable == [names[0]]
    # Exactly 14 days after its end a file is still listed; exactly a day later, not yet gone.
    assert publisher.retention_split(names[:1], now=14 * day) == (names[:1], [])
    assert publisher.retention_split(names[:1], now=15 * day) == ([], [])


def test_publish_window_writes_files_then_index_and_refuses_to_overwrite(tmp_path: Path) -> None:
    output = DirectoryOutput(tmp_path / "root")
    keys = [
        key(9, TODAY - 288, report_type=ReportType.CONFIRMED_TEST, days_since_onset=2),
        key(8, TODAY),
    ]
    report = publish_window(
        keys,
        output,
        root="root",
        region="VN",
        signers=[SIGNER],
        now=NOW + 1800,
        period_seconds=3600,
        rng=random.Random(3),
    )
    assert len(report.files) == 1
    assert [k.key_data[0] for k in report.embargoed] == [8]
    index = (tmp_path / "root" / INDEX_NAME).read_text()
    assert index == f"root/{report.files[0].name}\n"
    assert report.files[0].name.startswith(f"{int(NOW) - 3600}-{int(NOW)}-")
    published = keyfile.read_export_archive(
        (tmp_path / "root" / report.files[0].name).read_bytes(), TRUSTED
    )
    assert keys[0] in published.export.keys
    assert not [p for p in (tmp_path / "root").iterdir() if p.name.startswith(".")]
    with pytest.raises(BluezonedError, match="already published"):
        publish_window(
            keys,
            output,
            root="root",
            region="VN",
            signers=[SIGNER],
            now=NOW + 1900,
            period_seconds=3600,
            rng=random.Random(),
        )


def test_publish_window_two_step_deletion_across_runs(tmp_path: Path) -> None:
    output = DirectoryOutput(tmp_path)

    def daily(keys: list[DiagnosisKey], now: float) -> PublishReport:
        return publish_window(
            keys,
            output,
            root="",
            region="VN",
            signers=[SIGNER],
            now=now,
            period_seconds=86_400,
            rng=random.Random(),
        )

    name = daily([key(1, TODAY - 288)], NOW).files[0].name
    later = daily([], NOW + 14 * 86_400 + 3600)
    assert later.unlisted == (name,)
    assert (tmp_path / name).exists()
    assert (tmp_path / INDEX_NAME).read_text() == ""
    last = daily([], NOW + 15 * 86_400 + 7200)
    assert last.deleted == (name,)
    assert not (tmp_path / name).exists()


def test_publish_window_rejects_a_period_that_does_not_divide_a_day(tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="divide"):
        publish_window(
            [],
            DirectoryOutput(tmp_path),
            root="",
            region="VN",
            signers=[SIGNER],
            now=NOW,
            period_seconds=7 * 3600,
            rng=random.Random(),
        )


@pytest.mark.parametrize("name", ["../x", "a/b", ".hidden", ""])
def test_directory_output_refuses_paths(tmp_path: Path, name: str) -> None:
    with pytest.raises(BluezonedError):
        DirectoryOutput(tmp_path).write(name, b"x")


def test_keys_json_real_sample(gaen_exports: Path) -> None:
    keys = parse_keys_json(
        (gaen_exports / "exposure-notifications-server" / "keys.json").read_bytes()
    )
    assert [(k.rolling_start, k.rolling_period, k.transmission_risk_level) for k in keys] == [
        (2649980, 1, 8),
        (2649866, 114, 1),
    ]
    assert keys[0].key_data == base64.b64decode("Fy/EgOWYSQw0F3YEM5sVQw==")


def test_keys_json_accepts_bare_lists_and_report_type_names() -> None:
    item = {
        "key": base64.b64encode(bytes(16)).decode(),
        "rollingStartNumber": 5,
        "reportType": "confirmed_test",
        "daysSinceOnsetOfSymptoms": -3,
    }
    (parsed,) = parse_keys_json(json.dumps([item]).encode())
    assert (parsed.rolling_period, parsed.report_type, parsed.days_since_onset) == (
        144,
        ReportType.CONFIRMED_TEST,
        -3,
    )


def test_keys_json_lists_every_bad_key() -> None:
    good = {"key": base64.b64encode(bytes(16)).decode(), "rollingStartNumber": 5}
    bad = [
        good,
        {"key": base64.b64encode(bytes(15)).decode(), "rollingStartNumber": 5},
        {"key": "!!", "rollingStartNumber": 5},
        {"key": good["key"], "rollingStartNumber": 5, "rollingPeriod": 145},
        {"key": good["key"]},
        {"key": good["key"], "rollingStartNumber": 5, "extra": 1},
        {"key": good["key"], "rollingStartNumber": 5, "reportType": "MAYBE"},
        "text",
    ]
    with pytest.raises(BadRecords) as caught:
        parse_keys_json(json.dumps({"temporaryExposureKeys": bad}).encode(), "keys.json")
    assert [line for line, _ in caught.value.problems] == [2, 3, 4, 5, 6, 7, 8]
    messages = " | ".join(message for _, message in caught.value.problems)
    for fragment in (
        "15 bytes",
        "not base64",
        "145 outside",
        "rollingStartNumber' is missing",
        "unknown field",
        "MAYBE",
        "not a JSON object",
    ):
        assert fragment in messages


@pytest.mark.parametrize("data", [b"{", b'{"other": []}', b'"text"', b"\xff\xfe"])
def test_keys_json_refuses_bad_documents(data: bytes) -> None:
    with pytest.raises(InvalidInput):
        parse_keys_json(data)


@pytest.mark.parametrize(
    ("field", "value", "ok"),
    [
        ("daysSinceOnsetOfSymptoms", -14, True),
        ("daysSinceOnsetOfSymptoms", 14, True),
        ("daysSinceOnsetOfSymptoms", -15, False),
        ("daysSinceOnsetOfSymptoms", 15, False),
        ("rollingStartNumber", 0, True),
        ("rollingStartNumber", 2**31 - 1, True),
        ("rollingStartNumber", -1, False),
        ("rollingStartNumber", 2**31, False),
    ],
)
def test_keys_json_field_limits(field: str, value: int, ok: bool) -> None:
    item = {"key": base64.b64encode(bytes(16)).decode(), "rollingStartNumber": 5, field: value}
    document = json.dumps([item]).encode()
    if ok:
        (parsed,) = parse_keys_json(document)
        got = parsed.days_since_onset if field.startswith("days") else parsed.rolling_start
        assert got == value
    else:
        with pytest.raises(BadRecords, match="1 bad"):
            parse_keys_json(document, "keys.json")
