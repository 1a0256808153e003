"""``bluezoned keys derive`` and the global options, through click's CliRunner."""

from __future__ import annotations

import re

import pytest
from click.testing import CliRunner

from bluezoned import __version__
from bluezoned.cli import cli
from bluezoned.cli._common import parse_now
from tests.exposure.test_keys import VECTORS

TEK = "75c734c6dd1a782de7a965da5eb93125"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_derive_prints_official_vectors_with_aem() -> None:
    code, out, _ = run(
        "keys",
        "derive",
        "--tek",
        TEK,
        "--interval",
        "2642976",
        "--count",
        "144",
        "--metadata",
        "40080000",
    )
    assert code == 0
    lines = out.splitlines()
    assert lines == [f"{enin} {rpi.hex()} {aem.hex()}" for _, enin, rpi, aem in VECTORS]


def test_derive_without_metadata_prints_two_columns() -> None:
    code, out, _ = run("keys", "derive", "--tek", TEK.upper(), "--interval", "2642977")
    assert code == 0
    assert out == f"2642977 {VECTORS[1][2].hex()}\n"


def test_derive_streams_long_runs_in_order() -> None:
    code, out, _ = run("keys", "derive", "--tek", TEK, "--interval", "2642900", "--count", "300")
    assert code == 0
    enins = [int(line.split()[0]) for line in out.splitlines()]
    assert enins == list(range(2642900, 2643200))
    assert f"2642976 {VECTORS[0][2].hex()}" in out.splitlines()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tek", "zz" * 16, "--interval", "1"], "is not hex"),
        (["--tek", TEK[:-2], "--interval", "1"], "must be 16 bytes"),
        (["--tek", TEK, "--interval", "-1"], "--interval"),
        (["--tek", TEK, "--interval", "1", "--count", "0"], "--count"),
        (["--tek", TEK, "--interval", str(2**32 - 1), "--count", "2"], "runs past"),
        (["--tek", TEK, "--interval", "1", "--metadata", "4008"], "must be 4 bytes"),
        (["--interval", "1"], "--tek"),
    ],
)
def test_derive_usage_errors_exit_2(args: list[str], message: str) -> None:
    code, out, err = run("keys", "derive", *args)
    assert code == 2
    assert out == ""
    assert message in err


def test_version_and_short_help() -> None:
    code, out, _ = run("--version")
    assert code == 0
    assert __version__ in out
    code, out, _ = run("-h")
    assert code == 0
    for command in ("keys", "keyfile", "sightings", "status"):
        assert command in out


def test_every_command_has_help() -> None:
    def walk(group: object, path: list[str]) -> list[list[str]]:
        found = [path]
        for name, command in getattr(group, "commands", {}).items():
            found += walk(command, [*path, name])
        return found

    for path in walk(cli, []):
        code, out, _ = run(*path, "--help")
        assert code == 0, path
        assert re.search(r"Usage: ", out), path
        assert len(out.splitlines()) > 2, path


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("1585785600", 1585785600.0),
        ("1585785600.5", 1585785600.5),
        ("2020-04-02T00:00:00Z", 1585785600.0),
        ("2020-04-02T07:00:00+07:00", 1585785600.0),
        ("2020-04-02 00:00", 1585785600.0),
    ],
)
def test_now_accepts_unix_and_iso(text: str, expected: float) -> None:
    assert parse_now(text) == expected


@pytest.mark.parametrize("text", ["yesterday", "-5", "nan", "2020-13-01"])
def test_bad_now_is_a_usage_error(text: str) -> None:
    code, _, err = run("--now", text, "status")
    assert code == 2
    assert "--now" in err
