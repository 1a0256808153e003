"""``bluezoned authority publish`` through click's CliRunner."""

from __future__ import annotations

import base64
import json
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bluezoned.cli import cli

NOW = "2026-11-30T06:30:00Z"
YESTERDAY = 1_795_996_800 // 600 - 144


@pytest.fixture
def signing_files(tmp_path: Path) -> tuple[Path, Path]:
    private = ec.derive_private_key(777, ec.SECP256R1())
    key_path = tmp_path / "signing.pem"
    key_path.write_bytes(
        private.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    key_path.chmod(0o600)
    public_path = tmp_path / "public.pem"
    public_path.write_bytes(
        private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return key_path, public_path


def keys_file(tmp_path: Path, items: Sequence[object]) -> Path:
    path = tmp_path / "keys.json"
    path.write_text(json.dumps({"temporaryExposureKeys": items}))
    return path


def publish(tmp_path: Path, keys: Path, key: Path) -> tuple[int, str, str]:
    args = ["--now", NOW, "authority", "publish", "--keys", str(keys), "--signing-key", str(key)]
    args += [
        "--key-id",
        "452",
        "--key-version",
        "v1",
        "--region",
        "VN",
        "--out",
        str(tmp_path / "out"),
    ]
    result = CliRunner().invoke(cli, args)
    return result.exit_code, result.stdout, result.stderr


def test_publish_then_verify_round_trip(tmp_path: Path, signing_files: tuple[Path, Path]) -> None:
    key_path, public_path = signing_files
    items = [
        {
            "key": base64.b64encode(bytes([i]) * 16).decode(),
            "rollingStartNumber": YESTERDAY - 144,
            "reportType": 1,
        }
        for i in range(3)
    ]
    code, out, err = publish(tmp_path, keys_file(tmp_path, items), key_path)
    assert code == 0, err
    assert "3 keys +" in out
    root = tmp_path / "out" / "exposureKeyExport-VN"
    (line,) = (root / "index.txt").read_text().splitlines()
    export = tmp_path / "out" / line
    verify = CliRunner().invoke(
        cli, ["keyfile", "verify", str(export), "--pubkey", f"452-v1={public_path}", "--json"]
    )
    assert verify.exit_code == 0, verify.stderr
    assert json.loads(verify.stdout)["region"] == "VN"


def test_publish_holds_back_todays_key_and_says_so(
    tmp_path: Path, signing_files: tuple[Path, Path]
) -> None:
    items = [{"key": base64.b64encode(bytes(16)).decode(), "rollingStartNumber": YESTERDAY + 144}]
    code, out, err = publish(tmp_path, keys_file(tmp_path, items), signing_files[0])
    assert code == 0
    assert "no publishable keys" in out
    assert "held back 1 key" in err


def test_bad_keys_refuse_the_whole_file(tmp_path: Path, signing_files: tuple[Path, Path]) -> None:
    items = [
        {"key": base64.b64encode(bytes(16)).decode(), "rollingStartNumber": YESTERDAY},
        {"key": "AAAA", "rollingStartNumber": 1},
    ]
    code, out, err = publish(tmp_path, keys_file(tmp_path, items), signing_files[0])
    assert code == 4
    assert out == ""
    assert ":2: 'key' decodes to 3 bytes" in err
    assert "nothing was published" in err
    assert not (tmp_path / "out").exists()


def test_a_public_key_is_not_a_signing_key(
    tmp_path: Path, signing_files: tuple[Path, Path]
) -> None:
    code, _, err = publish(tmp_path, keys_file(tmp_path, []), signing_files[1])
    assert code == 1
    assert "private key" in err


def test_world_readable_signing_key_warns(tmp_path: Path, signing_files: tuple[Path, Path]) -> None:
    os.chmod(signing_files[0], 0o644)
    code, _, err = publish(tmp_path, keys_file(tmp_path, []), signing_files[0])
    assert code == 0
    assert "chmod 600" in err


def test_republishing_a_window_is_refused(tmp_path: Path, signing_files: tuple[Path, Path]) -> None:
    keys = keys_file(
        tmp_path,
        [{"key": base64.b64encode(bytes(16)).decode(), "rollingStartNumber": YESTERDAY - 144}],
    )
    assert publish(tmp_path, keys, signing_files[0])[0] == 0
    code, _, err = publish(tmp_path, keys, signing_files[0])
    assert code == 1
    assert "already published" in err


def test_issue_code_then_serve_accepts_it(tmp_path: Path, signing_files: tuple[Path, Path]) -> None:
    data_dir = tmp_path / "data"
    result = CliRunner().invoke(
        cli, ["authority", "issue-code", "--data-dir", str(data_dir), "--test-type", "likely"]
    )
    assert result.exit_code == 0, result.stderr
    code = result.stdout.strip()
    assert len(code) == 8
    assert code.isdigit()
    assert oct((data_dir / "authority.db").stat().st_mode & 0o777) == "0o600"

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    args = [sys.executable, "-m", "bluezoned", "authority", "serve", "--data-dir", str(data_dir)]
    args += [
        "--signing-key",
        str(signing_files[0]),
        "--key-id",
        "452",
        "--key-version",
        "v1",
        "--region",
        "VN",
        "--port",
        str(port),
    ]
    with subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) as server:
        _check_server(server, port, code, data_dir)


def _check_server(server: subprocess.Popen[bytes], port: int, code: str, data_dir: Path) -> None:
    import time
    import urllib.error
    import urllib.request

    try:
        body = json.dumps({"code": code}).encode()
        deadline = time.monotonic() + 20
        while True:
            try:
                request = urllib.request.Request(
                    f"http://127.0.0.1:{port}/api/verify",
                    data=body,
                    headers={"Content-Type": "application/json"},
                )
                with urllib.request.urlopen(request, timeout=5) as response:
                    reply = json.loads(response.read())
                break
            except (urllib.error.URLError, ConnectionError):
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline
                time.sleep(0.2)
        assert reply["testtype"] == "likely"
        assert oct((data_dir / "certificate-key.pem").stat().st_mode & 0o777) == "0o600"
        with urllib.request.urlopen(
            f"http://127.0.0.1:{port}/exports/exposureKeyExport-VN/index.txt", timeout=5
        ) as response:
            assert response.read() == b""
    finally:
        server.terminate()
        server.communicate(timeout=10)
