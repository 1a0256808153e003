"""Source adapters: index.txt parsing and the Corona-Warn-App date/hour tree over loopback."""

from __future__ import annotations

import datetime as dt
import json
import random

import pytest

from bluezoned.config import Config, Limits, Source
from bluezoned.errors import FetchError
from bluezoned.exposure.keyfile import Signer, TrustedKey
from bluezoned.store import Store
from bluezoned.sync.client import HttpClient, backoff_delay, open_session
from bluezoned.sync.sources import RemoteFile, cwa_dates, cwa_hours, new_files, parse_index
from bluezoned.sync.worker import sync_source
from tests.sync.conftest import Samples, signed_file
from tests.sync.keyserver import KeyServer
from tests.sync.test_worker import Matcher

BASE = "https://keys.example/exports/"


def test_index_lines_are_appended_to_the_base_url_as_they_are() -> None:
    data = b"root/1600000000-1600003600-00001.zip\n\nroot/odd name-free\r\nroot/2\nroot/2\n"
    files = parse_index(data.replace(b"odd name-free", b"oddname"), BASE)
    assert files == [
        RemoteFile(
            "root/1600000000-1600003600-00001.zip", BASE + "root/1600000000-1600003600-00001.zip"
        ),
        RemoteFile("root/oddname", BASE + "root/oddname"),
        RemoteFile("root/2", BASE + "root/2"),
    ]


@pytest.mark.parametrize(
    "line",
    [
        b"../secret",
        b"/etc/passwd",
        b"http://evil.example/x.zip",
        b"a/../../b",
        b"caf\xc3\xa9.zip",
        b"a b",
    ],
)
def test_index_lines_that_leave_the_base_or_are_not_ascii_are_refused(line: bytes) -> None:
    with pytest.raises(FetchError):
        parse_index(b"ok.zip\n" + line + b"\n", BASE)


def test_set_difference_keeps_listing_order() -> None:
    listed = parse_index(b"a\nb\nc\nd\n", BASE)
    todo = new_files(listed, {BASE + "b", BASE + "d", BASE + "zzz"})
    assert [f.name for f in todo] == ["a", "c"]


def test_cwa_indexes_are_validated() -> None:
    assert cwa_dates(b'["2020-07-02", "2020-07-01"]', "u") == ["2020-07-01", "2020-07-02"]
    assert cwa_hours(b"[3, 1, 23]", "u") == [1, 3, 23]
    for bad in (b'{"a": 1}', b'["2020-13-01"]', b'["../x"]', b"not json"):
        with pytest.raises(FetchError):
            cwa_dates(bad, "u")
    for bad in (b"[24]", b"[-1]", b'["1"]', b"[true]"):
        with pytest.raises(FetchError):
            cwa_hours(bad, "u")


def test_backoff_is_full_jitter_and_capped() -> None:
    rng = random.Random(5)
    delays = [backoff_delay(n, rng, 1.0, 60.0) for n in range(12) for _ in range(20)]
    assert all(0 <= d <= 60 for d in delays)
    assert max(backoff_delay(0, rng, 1.0, 60.0) for _ in range(50)) <= 1.0


async def test_cwa_date_and_hour_tree_is_synced(
    key_server: KeyServer, store: Store, samples: Samples, signer: Signer
) -> None:
    now = dt.datetime(2020, 7, 3, 12, 30, tzinfo=dt.UTC).timestamp()
    root = "/version/v1/diagnosis-keys/country/DE"
    key_server.files[f"{root}/date"] = json.dumps(["2020-07-01"]).encode()
    key_server.files[f"{root}/date/2020-07-01"] = samples.files["sample_diagnosis_key_file.zip"]
    key_server.files[f"{root}/date/2020-07-03/hour"] = b"[10, 11]"
    key_server.files[f"{root}/date/2020-07-03/hour/10"] = signed_file(signer, 4, region="US")
    key_server.files[f"{root}/date/2020-07-03/hour/11"] = signed_file(signer, 6, region="US")
    # 2020-07-02 has neither a day file nor an hour index yet: a 404 there is not an error.
    trusted = (*samples.trusted, TrustedKey("test", "v1", signer.private_key.public_key()))
    source = Source("cwa", key_server.url(root), "cwa", trusted, region="US")
    config = Config(sources=(source,), limits=Limits(connect_timeout=2, read_timeout=2, retries=0))
    async with open_session(config.limits) as session:
        client = HttpClient(session, config.limits, random.Random(0))
        result = await sync_source(
            source,
            store=store,
            client=client,
            config=config,
            now=now,
            rng=random.Random(0),
            match_new_keys=Matcher(),
        )
        assert result.ok, result
        assert [f.name for f in result.files] == [
            "date/2020-07-01",
            "date/2020-07-03/hour/10",
            "date/2020-07-03/hour/11",
        ]
        assert result.new_keys == 150
        # Yesterday's hours were looked for (none yet), never tomorrow's.
        assert key_server.requests[f"{root}/date/2020-07-02/hour"] == 1
        assert key_server.requests[f"{root}/date/2020-07-04/hour"] == 0
        key_server.files[f"{root}/date/2020-07-03/hour"] = b"[10, 11, 12]"
        key_server.files[f"{root}/date/2020-07-03/hour/12"] = signed_file(signer, 2, region="US")
        again = await sync_source(
            source,
            store=store,
            client=client,
            config=config,
            now=now + 3600,
            rng=random.Random(0),
            match_new_keys=Matcher(),
        )
    assert [f.name for f in again.files] == ["date/2020-07-03/hour/12"]
    assert key_server.requests[f"{root}/date/2020-07-01"] == 1
    assert key_server.requests[f"{root}/date/2020-07-03/hour/10"] == 1
