"""``bluezoned sync`` end to end: a config file, a loopback key server, the store, exit codes."""

from __future__ import annotations

import base64
import importlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bluezoned.cli._common import CliState
from bluezoned.cli.sync import EXIT_SYNC_FAILED, sync
from bluezoned.exposure.keyfile import Signer, write_export_archive
from bluezoned.exposure.keys import interval_start
from bluezoned.models import DiagnosisKey, Tek
from bluezoned.store import DB_FILENAME, ExposureRecord, Store
from tests.sync.keyserver import KeyServer, serving_in_thread
from tests.test_matching import DAY, plant

NOW = 1_700_000_000.0
SAMPLES = {
    "sample_diagnosis_key_file.zip": "exposure-notifications-internals/sample_diagnosis_key_file.zip",
    "testExport-2-records-1-of-1.zip": "exposure-notifications-server/testExport-2-records-1-of-1.zip",
}


@pytest.fixture
def server(gaen_exports: Path) -> Iterator[KeyServer]:
    key_server = KeyServer()
    for name, relative in SAMPLES.items():
        key_server.files[f"/exports/{name}"] = (gaen_exports / relative).read_bytes()
    key_server.files["/exports/index.txt"] = "".join(f"{n}\n" for n in SAMPLES).encode()
    with serving_in_thread(key_server.running):
        yield key_server


def write_config(tmp_path: Path, server: KeyServer, gaen_exports: Path, extra: str = "") -> Path:
    path = tmp_path / "bluezoned.toml"
    internals = gaen_exports / "exposure-notifications-internals"
    ens = gaen_exports / "exposure-notifications-server"
    path.write_text(
        f"""
[[sources]]
name = "test"
url = "{server.url("/exports/index.txt")}"
base_url = "{server.url("/exports/")}"
region = "US"
keys = [
  {{id = "310", version = "v1", pem = "{internals / "pubkey_310-v1.pem"}"}},
  {{id = "some_id", version = "1", pem = "{ens / "public.pem"}"}},
]

[limits]
retries = 0
read_timeout = 2

[alerts]
desktop_notifications = false
{extra}
"""
    )
    return path


def invoke(tmp_path: Path, *args: str) -> tuple[int, str, str]:
    state = CliState(state_dir=tmp_path / "state", now=NOW)
    result = CliRunner().invoke(sync, list(args), obj=state)
    return result.exit_code, result.stdout, result.stderr


def test_sync_stores_keys_and_says_so_in_one_line(
    tmp_path: Path, server: KeyServer, gaen_exports: Path
) -> None:
    config = write_config(tmp_path, server, gaen_exports)
    code, out, err = invoke(tmp_path, "--config", str(config))
    assert code == 0, err
    assert out == "test: 2 listed, 2 new, 2 stored, 142 keys, 0 exposure(s)\n"
    code, out, _ = invoke(tmp_path, "--config", str(config))
    assert code == 0
    assert out == "test: index unchanged, 0 stored, 0 keys, 0 exposure(s)\n"
    with Store.open(tmp_path / "state" / DB_FILENAME, read_only=True) as store:
        assert sum(f.keys for f in store.processed_files()) == 142
        assert store.unmatched_files() == []
        assert store.diagnosis_keys() == []  # no sightings: no key matched, none is kept


def test_sync_json_and_source_option(tmp_path: Path, server: KeyServer, gaen_exports: Path) -> None:
    config = write_config(tmp_path, server, gaen_exports)
    code, out, _ = invoke(tmp_path, "--config", str(config), "--source", "test", "--json")
    assert code == 0
    (report,) = json.loads(out)
    assert report["ok"] is True
    assert report["new_keys"] == 142
    assert [f["status"] for f in report["files"]] == ["stored", "stored"]
    code, _, err = invoke(tmp_path, "--config", str(config), "--source", "nope")
    assert code == 1
    assert "no source named 'nope'" in err


def test_refused_file_exits_3_and_failed_source_exits_6(
    tmp_path: Path, server: KeyServer, gaen_exports: Path
) -> None:
    config = write_config(tmp_path, server, gaen_exports)
    server.files["/exports/bad.zip"] = server.files["/exports/testExport-2-records-1-of-1.zip"][:-9]
    server.files["/exports/index.txt"] += b"bad.zip\n"
    code, out, err = invoke(tmp_path, "--config", str(config))
    assert code == 3
    assert "1 refused" in out
    assert "refused bad.zip:" in err
    server.fail("/exports/index.txt", "503")
    code, out, _ = invoke(tmp_path, "--config", str(config))
    assert code == EXIT_SYNC_FAILED
    assert out.startswith("test: FAILED:")


def test_config_errors_name_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "absent.toml"
    code, _, err = invoke(tmp_path, "--config", str(missing))
    assert code == 1
    assert str(missing) in err
    empty = tmp_path / "empty.toml"
    empty.write_text("")
    code, _, err = invoke(tmp_path, "--config", str(empty))
    assert code == 1
    assert "no [[sources]]" in err


def test_sync_runs_the_alert_hook_once(
    tmp_path: Path, server: KeyServer, gaen_exports: Path
) -> None:
    out_file = tmp_path / "hook.txt"
    hook = tmp_path / "hook.py"
    hook.write_text(
        "import os\n"
        "with open(os.environ['OUT'], 'a') as f:\n"
        "    f.write(os.environ['BLUEZONED_EXPOSURES'] + '\\n')\n"
    )
    extra = f'command = ["{sys.executable}", "{hook}"]\nenv = {{OUT = "{out_file}"}}\n'
    config = write_config(tmp_path, server, gaen_exports, extra)
    with Store.open(tmp_path / "state" / DB_FILENAME) as store:
        store.add_exposure(
            ExposureRecord(
                os.urandom(16), 2_833_000, NOW - 3600, NOW - 3000, 600, 12, NOW, risk_level=2
            )
        )
    assert invoke(tmp_path, "--config", str(config))[0] == 0
    assert invoke(tmp_path, "--config", str(config))[0] == 0
    assert out_file.read_text() == "1\n"
    with Store.open(tmp_path / "state" / DB_FILENAME, read_only=True) as store:
        assert store.summary(NOW).exposures_unalerted == 0


def test_sync_matches_a_planted_contact_and_alerts_once(tmp_path: Path) -> None:
    signer = Signer(ec.generate_private_key(ec.SECP256R1()), "452", "v1")
    der = signer.private_key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    tek = Tek(os.urandom(16), DAY)
    now = interval_start(DAY + 144) + 3 * 3600.0
    with Store.open(tmp_path / "state" / DB_FILENAME) as store:
        plant(store, tek, DAY + 70, 2)
    archive = write_export_archive(
        [DiagnosisKey(tek.key_data, DAY), DiagnosisKey(os.urandom(16), DAY)],
        region="VN",
        start_timestamp=int(interval_start(DAY)),
        end_timestamp=int(interval_start(DAY + 144)),
        signers=[signer],
    )
    key_server = KeyServer()
    key_server.files["/e/1.zip"] = archive
    key_server.files["/e/index.txt"] = b"1.zip\n"
    out_file = tmp_path / "hook.txt"
    hook = tmp_path / "hook.py"
    hook.write_text(
        "import os\n"
        "with open(os.environ['OUT'], 'a') as f:\n"
        "    f.write(os.environ['BLUEZONED_EVENT'] + ' ' + os.environ['BLUEZONED_EXPOSURES'] + '\\n')\n"
    )
    with serving_in_thread(key_server.running):
        config = tmp_path / "bluezoned.toml"
        config.write_text(
            f"""
[[sources]]
name = "vn"
url = "{key_server.url("/e/index.txt")}"
base_url = "{key_server.url("/e/")}"
region = "VN"
keys = [{{id = "452", version = "v1", pem_base64 = "{base64.b64encode(der).decode()}"}}]

[alerts]
command = ["{sys.executable}", "{hook}"]
env = {{OUT = "{out_file}"}}
desktop_notifications = false

[exposure]
distance_m = 1.0
minutes = 5
"""
        )
        state = CliState(state_dir=tmp_path / "state", now=now)
        first = CliRunner().invoke(sync, ["--config", str(config)], obj=state)
        second = CliRunner().invoke(sync, ["--config", str(config)], obj=state)
    assert first.exit_code == 0, first.stderr
    assert first.stdout == "vn: 1 listed, 1 new, 1 stored, 2 keys, 1 exposure(s)\n"
    assert second.exit_code == 0
    assert out_file.read_text() == "exposure 1\n"
    with Store.open(tmp_path / "state" / DB_FILENAME, read_only=True) as store:
        (exposure,) = store.exposures()
    assert exposure.key_data == tek.key_data
    assert exposure.alerted_at == now
    # the engine judged it by the configured rule
    assert (exposure.distance_m, exposure.threshold_minutes) == (1.0, 5.0)


def test_progress_bar_only_on_a_terminal(
    tmp_path: Path, server: KeyServer, gaen_exports: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = write_config(tmp_path, server, gaen_exports)
    module = importlib.import_module("bluezoned.cli.sync")
    monkeypatch.setattr(module, "_stdout_is_tty", lambda: True)
    code, out, err = invoke(tmp_path, "--config", str(config))
    assert code == 0
    assert err.startswith("test")  # the bar's label; the bar itself needs a real terminal
    assert out.startswith("test: 2 listed")
    server.files["/exports/index.txt"] += b"x\n"
    monkeypatch.setattr(module, "_stdout_is_tty", lambda: False)
    code, out, err = invoke(tmp_path, "--config", str(config))
    assert err == ""


def test_follow_syncs_at_once_then_waits_and_stops_on_sigterm(
    tmp_path: Path, server: KeyServer, gaen_exports: Path
) -> None:
    import signal
    import subprocess
    import sys
    import time

    config = write_config(tmp_path, server, gaen_exports)
    args = [sys.executable, "-m", "bluezoned", "--state-dir", str(tmp_path / "state")]
    args += ["sync", "--config", str(config), "--follow"]
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        assert proc.stdout is not None
        lines = [proc.stdout.readline(), proc.stdout.readline()]
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)  # it must now be asleep until the next scheduled run
        assert proc.poll() is None
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=20)
    assert proc.returncode == 0
    assert lines[0].startswith("following 1 source(s)")
    assert "test: 2 listed, 2 new, 2 stored, 142 keys" in lines[1]
    assert "next run 20" in lines[1]
    assert out.strip().endswith("stopped")
    assert server.requests["/exports/index.txt"] == 1


def test_follow_refuses_a_pretended_time(
    tmp_path: Path, server: KeyServer, gaen_exports: Path
) -> None:
    code, _, err = invoke(
        tmp_path, "--config", str(write_config(tmp_path, server, gaen_exports)), "--follow"
    )
    assert code == 2
    assert "--follow" in err
