"""The real authority server (bluezoned.authority.server) on loopback, shared by the tests.

``Authority().running(tmp_path)`` starts it (an async context manager yielding the same
``Authority``, with ``url``, ``server``, ``db_path`` and a settable ``clock``); ``code()`` issues
a verification code as health staff would. A test that talks to the HTTP API itself sets
``http`` to an ``aiohttp.ClientSession`` and then uses ``post``, ``certificate`` and ``publish``
to walk code -> token -> certificate -> publish.
"""

from __future__ import annotations

import base64
import random
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from bluezoned.authority.db import SqliteAuthorityStore
from bluezoned.authority.output import DirectoryOutput
from bluezoned.authority.server import AuthorityConfig, AuthorityServer, issue_code
from bluezoned.exposure import keyfile
from bluezoned.exposure.tekmac import tek_hmac
from bluezoned.models import DiagnosisKey

NOW = 1_795_996_800.0 + 6 * 3600  # 2026-11-30T06:00:00Z
SIGNER = keyfile.Signer(ec.derive_private_key(4242, ec.SECP256R1()), "452", "v1")
TRUSTED = (keyfile.TrustedKey("452", "v1", SIGNER.private_key.public_key()),)
ROOT = "exposureKeyExport-VN"


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now


def key_json(key: DiagnosisKey) -> dict[str, Any]:
    """A key as the publish API takes it."""
    item: dict[str, Any] = {
        "key": base64.b64encode(key.key_data).decode(),
        "rollingStartNumber": key.rolling_start,
        "rollingPeriod": key.rolling_period,
    }
    if key.transmission_risk_level is not None:
        item["transmissionRisk"] = key.transmission_risk_level
    return item


@dataclass
class Authority:
    """A running authority: its base URL, server, clock and database path.

    ``server``, ``url`` and ``db_path`` are set by ``running()``; ``http`` by a test that posts.
    """

    clock: Clock = field(default_factory=Clock)
    server: AuthorityServer = field(init=False)
    url: str = field(init=False)
    db_path: Path = field(init=False)
    http: aiohttp.ClientSession = field(init=False)

    def code(self, test_type: str = "confirmed", symptom_date: str | None = None) -> str:
        # Health staff use their own connection (the CLI's), never the server's.
        staff = SqliteAuthorityStore(self.db_path)
        try:
            return issue_code(
                staff,
                test_type=test_type,
                symptom_date=symptom_date,
                now=self.clock.now,
                rng=random.SystemRandom(),
            )
        finally:
            staff.close()

    async def post(self, path: str, body: Any) -> tuple[int, dict[str, Any]]:
        async with self.http.post(self.url + path, json=body) as response:
            return response.status, await response.json()

    async def certificate(
        self,
        keys: list[DiagnosisKey],
        test_type: str = "confirmed",
        symptom_date: str | None = None,
        secret_bytes: int = 32,
    ) -> tuple[str, bytes]:
        """A verification certificate for ``keys`` and the HMAC secret (of ``secret_bytes``)
        it is bound with."""
        status, verified = await self.post(
            "/api/verify", {"code": self.code(test_type, symptom_date)}
        )
        assert status == 200, verified
        secret = secrets.token_bytes(secret_bytes)
        mac = base64.b64encode(tek_hmac(secret, keys)).decode()
        status, cert = await self.post(
            "/api/certificate", {"token": verified["token"], "ekeyhmac": mac}
        )
        assert status == 200, cert
        return cert["certificate"], secret

    async def publish(
        self, keys: list[DiagnosisKey], certificate: str, secret: bytes, **extra: Any
    ) -> tuple[int, dict[str, Any]]:
        body = {
            "temporaryExposureKeys": [key_json(k) for k in keys],
            "healthAuthorityID": "bluezoned-VN",
            "verificationPayload": certificate,
            "hmacKey": base64.b64encode(secret).decode(),
            **extra,
        }
        return await self.post("/v1/publish", body)

    @asynccontextmanager
    async def running(self, tmp_path: Path) -> AsyncIterator[Authority]:
        self.db_path = tmp_path / "authority.db"
        store = SqliteAuthorityStore(self.db_path)
        config = AuthorityConfig(
            region="VN",
            issuer="bluezoned-VN",
            signers=(SIGNER,),
            certificate_key=ec.derive_private_key(99, ec.SECP256R1()),
            certificate_kid="test-kid",
            root=ROOT,
            period_seconds=3600,
            export_every_seconds=3600,
        )
        output = DirectoryOutput(tmp_path / "exports" / ROOT)
        self.server = AuthorityServer(
            config=config, store=store, output=output, clock=self.clock, rng=random.Random(5)
        )
        runner = web.AppRunner(self.server.app())
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{runner.addresses[0][1]}"
        try:
            yield self
        finally:
            await runner.cleanup()
            store.close()
