"""The real authority server (bluezoned.authority.server) on loopback, for the upload tests."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec

from bluezoned.authority.db import SqliteAuthorityStore
from bluezoned.authority.output import DirectoryOutput
from bluezoned.authority.server import AuthorityConfig, AuthorityServer, issue_code
from bluezoned.exposure import keyfile

NOW = 1_795_996_800.0 + 6 * 3600  # 2026-11-30T06:00:00Z
SIGNER = keyfile.Signer(ec.derive_private_key(4242, ec.SECP256R1()), "452", "v1")
TRUSTED = (keyfile.TrustedKey("452", "v1", SIGNER.private_key.public_key()),)
ROOT = "exposureKeyExport-VN"


@dataclass
class Clock:
    now: float = NOW

    def __call__(self) -> float:
        return self.now


@dataclass
class Authority:
    """A running authority: its base URL, clock and database path."""

    server: AuthorityServer | None = None
    url: str = ""
    db_path: Path = Path()
    clock: Clock = field(default_factory=Clock)

    def code(self, test_type: str = "confirmed", symptom_date: str | None = None) -> str:
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
