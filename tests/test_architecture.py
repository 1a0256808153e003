"""The arrows point inward: the pure core loads no event loop, radio, database or CLI."""

from __future__ import annotations

import json
import subprocess
import sys

import click
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


def test_the_cli_imports_a_command_only_when_it_runs() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from bluezoned.cli import cli; "
        "loaded = lambda: sorted(m for m in ('aiohttp', 'bluezoned.authority.server', "
        "'bluezoned.cli.status') if m in sys.modules); print(loaded()); "
        "r = CliRunner().invoke(cli, ['status', '--help']); assert r.exit_code == 0, r.output; "
        "print(loaded())"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    before, after = result.stdout.splitlines()
    assert before == "[]"  # the group alone loads no command and no HTTP stack
    assert after == "['bluezoned.cli.status']"  # status loads itself, not the authority server


def test_every_listed_command_resolves() -> None:
    from bluezoned.cli import COMMANDS, cli

    ctx = click.Context(cli)
    assert cli.list_commands(ctx) == sorted(COMMANDS)
    for name in COMMANDS:
        command = cli.get_command(ctx, name)
        assert command is not None
        assert command.name == name
    assert cli.get_command(ctx, "nope") is None
