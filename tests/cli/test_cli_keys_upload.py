"""``bluezoned keys export`` and ``keys upload`` against the real authority server on loopback."""

from __future__ import annotations

import base64
import importlib
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from bluezoned.cli._common import CliState
from bluezoned.cli.keys import keys
from bluezoned.exposure.keys import interval_number
from bluezoned.models import Tek
from bluezoned.store import DB_FILENAME, Store
from tests.authority_harness import NOW, Authority
from tests.sync.keyserver import serving_in_thread

TODAY = interval_number(NOW) // 144 * 144


@pytest.fixture
def state_dir(tmp_path: Path) -> Path:
    state = tmp_path / "state"
    with Store.open(state / DB_FILENAME) as store:
        for day in range(3):
            store.add_own_key(Tek(bytes([day + 1]) * 16, TODAY - 144 * day), NOW - 86400 * day)
        store.add_own_key(Tek(b"\x09" * 16, TODAY - 144 * 20), NOW - 86400 * 20)
    return state


@pytest.fixture
def authority(tmp_path: Path) -> Iterator[Authority]:
    running = Authority()
    with serving_in_thread(lambda: running.running(tmp_path)):
        yield running


def invoke(state_dir: Path, *args: str, stdin: str | None = None) -> tuple[int, str, str]:
    result = CliRunner().invoke(keys, list(args), obj=CliState(state_dir, NOW), input=stdin)
    return result.exit_code, result.stdout, result.stderr


def test_export_json_is_the_publish_form(state_dir: Path) -> None:
    code, out, _ = invoke(state_dir, "export", "--json")
    assert code == 0
    items = json.loads(out)["temporaryExposureKeys"]
    assert [base64.b64decode(i["key"])[0] for i in items] == [3, 2, 1]
    assert items[0] == {
        "key": base64.b64encode(b"\x03" * 16).decode(),
        "rollingStartNumber": TODAY - 288,
        "rollingPeriod": 144,
    }
    code, out, _ = invoke(state_dir, "export", "--days", "1")
    assert code == 0
    assert len(out.splitlines()) == 2  # yesterday's key ends at today's start, today's key
    assert out.splitlines()[-1].startswith("2026-11-30  ")


def test_export_without_a_store_fails_cleanly(tmp_path: Path) -> None:
    code, _, err = invoke(tmp_path / "none", "export")
    assert code == 5
    assert "no store" in err


def test_upload_refuses_without_consent_on_a_pipe(state_dir: Path, authority: Authority) -> None:
    code, out, err = invoke(
        state_dir, "upload", "--server", authority.url, "--code", authority.code()
    )
    assert code == 2
    assert "About to send 3 daily key(s)" in out
    assert "--yes" in err
    with Store.open(state_dir / DB_FILENAME, read_only=True) as store:
        assert not any(k.reported for k in store.own_keys())


def test_upload_asks_and_a_no_sends_nothing(
    state_dir: Path, authority: Authority, monkeypatch: pytest.MonkeyPatch
) -> None:
    # bluezoned.cli.keys as an attribute path names the click group, so patch the module.
    monkeypatch.setattr(
        importlib.import_module("bluezoned.cli.keys"), "_stdin_is_tty", lambda: True
    )
    code, out, err = invoke(
        state_dir, "upload", "--server", authority.url, "--code", authority.code(), stdin="n\n"
    )
    assert code == 1
    assert "Upload these keys?" in out
    assert "nothing was uploaded" in err
    code, out, _ = invoke(
        state_dir, "upload", "--server", authority.url, "--code", authority.code(), stdin="y\n"
    )
    assert code == 0, out
    assert "Uploaded 3 key(s) (confirmed); the authority inserted 3." in out


def test_upload_with_yes_marks_keys_and_starts_a_fresh_one(
    state_dir: Path, authority: Authority
) -> None:
    code, out, err = invoke(
        state_dir, "upload", "--server", authority.url, "--code", authority.code(), "--yes"
    )
    assert code == 0, err
    assert f"A fresh key starts at interval {interval_number(NOW) + 1}." in out
    with Store.open(state_dir / DB_FILENAME, read_only=True) as store:
        own = store.own_keys()
    reported = {k.tek.key_data[0] for k in own if k.reported}
    assert reported == {1, 2, 3}
    (fresh,) = [k for k in own if not k.reported and k.tek.key_data != b"\x09" * 16]
    assert fresh.tek.rolling_start == interval_number(NOW) + 1
    code, _, err = invoke(
        state_dir, "upload", "--server", authority.url, "--code", authority.code(), "--yes"
    )
    assert code == 1
    assert "no unreported own keys" in err


def test_upload_with_a_wrong_code_says_why(state_dir: Path, authority: Authority) -> None:
    code, _, err = invoke(
        state_dir, "upload", "--server", authority.url, "--code", "00000000", "--yes"
    )
    assert code == 1
    assert "verify: HTTP 401: code_invalid" in err
    code, _, err = invoke(state_dir, "upload", "--server", "ftp://x", "--code", "1", "--yes")
    assert code == 2
