"""The arrows point inward: the pure core loads no event loop, radio, database or CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

EDGE_MODULES = ["asyncio", "bleak", "dbus_fast", "sqlite3", "sqlite_utils", "click", "aiohttp"]


@pytest.mark.parametrize(
    "module",
    [
        "bluezoned.exposure.keys",
        "bluezoned.exposure.keyfile",
        "bluezoned.csvlines",
        "bluezoned.exposure.tekmac",
        "bluezoned.exposure.matcher",
        "bluezoned.exposure.contacts",
        "bluezoned.exposure.risk",
        "bluezoned.exposure.presets",
        "bluezoned.exposure.rssi_csv",
        "bluezoned.ble.payload",
        "bluezoned.ble.aggregator",
        "bluezoned.ble.supervision",
    ],
)
def test_pure_modules_import_no_edge(module: str) -> None:
    code = (
        f"import sys, json; import {module}; "
        f"print(json.dumps([m for m in {EDGE_MODULES!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_every_module_imports_on_its_own() -> None:
    modules = [
        "bluezoned",
        "bluezoned.const",
        "bluezoned.errors",
        "bluezoned.models",
        "bluezoned.exposure.keys",
        "bluezoned.exposure.keyfile",
        "bluezoned.ble.payload",
        "bluezoned.store",
        "bluezoned.cli",
    ]
    for module in modules:
        result = subprocess.run(
            [sys.executable, "-c", f"import {module}"], capture_output=True, text=True
        )
        assert result.returncode == 0, f"{module}: {result.stderr}"
