"""``bluezoned sim``: in-process with CliRunner, and as a separate process that bleak scans."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from bleak import BleakScanner
from click.testing import CliRunner

from bluezoned.cli.sim import sim
from bluezoned.const import EN_SERVICE_UUID
from bluezoned.sim.bus import find_dbus_daemon

pytestmark = pytest.mark.skipif(find_dbus_daemon() is None, reason="dbus-daemon not installed")


def test_sim_prints_the_address_and_stops() -> None:
    result = CliRunner().invoke(sim, ["--devices", "3", "--adapters", "2", "--duration", "0.3"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    export = next(line for line in lines if line.startswith("export DBUS_SYSTEM_BUS_ADDRESS="))
    assert export.split("=", 1)[1].startswith("unix:path=")
    assert "  adapter hci1 00:1A:7D:DA:71:14" in lines
    assert lines[-2:] == ["READY", "stopped"]


def test_sim_writes_the_peoples_keys(tmp_path: Path) -> None:
    out = tmp_path / "keys"
    args = ["--devices", "2", "--duration", "0.3", "--keys-out", str(out)]
    result = CliRunner().invoke(sim, args)
    assert result.exit_code == 0, result.output
    documents = sorted(out.glob("person-*.json"))
    assert [d.name for d in documents] == ["person-0.json", "person-1.json"]
    keys = json.loads(documents[0].read_text())["temporaryExposureKeys"]
    assert len(keys) == 1
    assert len(base64.b64decode(keys[0]["key"])) == 16


def test_sim_help() -> None:
    result = CliRunner().invoke(sim, ["--help"])
    assert result.exit_code == 0
    assert "--devices" in result.output


async def test_bleak_in_another_process_hears_the_sim(monkeypatch: pytest.MonkeyPatch) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        "from bluezoned.cli.sim import sim; sim()",
        "--devices",
        "4",
        "--seed",
        "5",
        "--duration",
        "20",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    assert proc.stdout is not None
    try:
        address = ""
        async with asyncio.timeout(10):
            while (line := (await proc.stdout.readline()).decode().strip()) != "READY":
                if line.startswith("export DBUS_SYSTEM_BUS_ADDRESS="):
                    address = line.split("=", 1)[1]
        monkeypatch.setenv("DBUS_SYSTEM_BUS_ADDRESS", address)
        seen: asyncio.Queue[bytes] = asyncio.Queue()
        scanner = BleakScanner(
            lambda _d, a: seen.put_nowait(a.service_data.get(EN_SERVICE_UUID, b"")),
            service_uuids=[EN_SERVICE_UUID],
            bluez={"adapter": "hci0", "filters": {"DuplicateData": True, "RSSI": -127}},
        )
        await scanner.start()
        try:
            first = await asyncio.wait_for(seen.get(), 5)
        finally:
            await scanner.stop()
        assert len(first) == 20
    finally:
        if proc.returncode is None:
            proc.send_signal(signal.SIGTERM)
        rest = await asyncio.wait_for(proc.stdout.read(), 10)
        assert await asyncio.wait_for(proc.wait(), 10) == 0
    assert rest.decode().strip().endswith("stopped")
