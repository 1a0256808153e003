"""Fixtures for the sync tests: real sample exports, their keys, a signer, a loopback server."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import ec

from bluezoned.exposure.keyfile import Signer, TrustedKey, load_trusted_key, write_export_archive
from bluezoned.models import DiagnosisKey
from bluezoned.store import Store
from tests.sync.keyserver import KeyServer

SAMPLES = (
    ("exposure-notifications-internals/sample_diagnosis_key_file.zip", 140),
    ("exposure-notifications-server/testExport-2-records-1-of-1.zip", 2),
    ("exposure-notifications-server/sample-export.zip", 2),
)
"""Signed real exports, region US, with the number of keys each holds."""


@dataclass(frozen=True)
class Samples:
    """The real signed exports (name -> bytes) and the keys that verify them."""

    files: dict[str, bytes]
    counts: dict[str, int]
    trusted: tuple[TrustedKey, ...]
    root: Path


@pytest.fixture
def samples(gaen_exports: Path) -> Samples:
    files = {}
    counts = {}
    for relative, count in SAMPLES:
        name = Path(relative).name
        files[name] = (gaen_exports / relative).read_bytes()
        counts[name] = count
    trusted = (
        load_trusted_key(
            (gaen_exports / "exposure-notifications-internals/pubkey_310-v1.pem").read_bytes(),
            "310",
            "v1",
        ),
        load_trusted_key(
            (gaen_exports / "exposure-notifications-server/public.pem").read_bytes(), "some_id", "1"
        ),
        load_trusted_key(
            (
                gaen_exports / "exposure-notifications-server/public_2020-05-15_ExampleServer.pem"
            ).read_bytes(),
            "ExampleServer_k1",
            None,
        ),
    )
    return Samples(files, counts, trusted, gaen_exports)


@pytest.fixture
def signer() -> Signer:
    return Signer(ec.generate_private_key(ec.SECP256R1()), "test", "v1")


def signed_file(signer: Signer, keys: int, region: str = "US", start: int = 2_650_000) -> bytes:
    """A fresh export of ``keys`` random keys signed by ``signer``."""
    return write_export_archive(
        [DiagnosisKey(os.urandom(16), start) for _ in range(keys)],
        region=region,
        start_timestamp=start * 600,
        end_timestamp=start * 600 + 3600,
        signers=[signer],
    )


@pytest.fixture
async def key_server() -> AsyncIterator[KeyServer]:
    server = KeyServer()
    async with server.running():
        yield server


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "state" / "bluezoned.db")
    yield opened
    opened.close()
