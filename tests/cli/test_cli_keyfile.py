"""``bluezoned keyfile verify`` and ``show`` through click's CliRunner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from bluezoned.cli import cli
from bluezoned.const import MAX_EXPORT_ARCHIVE_BYTES, MAX_EXPORT_BIN_BYTES
from bluezoned.errors import KeyFileRejectReason
from tests.exposure.test_keyfile import OTHER, SIGNER, make_keys, members, public_pem, rezip, write

R = KeyFileRejectReason
INTERNALS = "exposure-notifications-internals"
SAMPLE_310 = f"{INTERNALS}/sample_diagnosis_key_file.zip"
PEM_310 = f"{INTERNALS}/pubkey_310-v1.pem"
PEM_EXAMPLE = f"{INTERNALS}/pubkey_ExampleServer-v1.pem"
UNSIGNED = "exposure-notifications-server/1605818700-1605819000-0001-ff23e2.zip"


def run(*args: str | Path) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, [str(arg) for arg in args])
    return result.exit_code, result.stdout, result.stderr


def assert_refused(result: tuple[int, str, str], reason: KeyFileRejectReason) -> str:
    """Exit 3, nothing on stdout, exactly one stderr line naming ``reason``."""
    code, out, err = result
    assert code == 3, (out, err)
    assert out == ""
    lines = err.splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bluezoned: refused: ")
    assert reason.value in lines[0]
    return lines[0]


@pytest.fixture
def files(tmp_path: Path) -> dict[str, Path]:
    """A written archive signed as 310-v1, its parts, the signer's PEM and a stranger's."""
    archive = write(make_keys(4))
    paths = {
        "zip": tmp_path / "export.zip",
        "bin": tmp_path / "export.bin",
        "sig": tmp_path / "export.sig",
        "pem": tmp_path / "signer.pem",
        "other": tmp_path / "other.pem",
    }
    parts = members(archive)
    paths["zip"].write_bytes(archive)
    paths["bin"].write_bytes(parts["export.bin"])
    paths["sig"].write_bytes(parts["export.sig"])
    paths["pem"].write_bytes(public_pem(SIGNER))
    paths["other"].write_bytes(public_pem(OTHER))
    return paths


@pytest.mark.shared_data
def test_verify_real_sample_with_bound_key(gaen_exports: Path) -> None:
    code, out, err = run(
        "keyfile",
        "verify",
        gaen_exports / SAMPLE_310,
        "--pubkey",
        f"310-v1={gaen_exports / PEM_310}",
    )
    assert code == 0, err
    assert "key id '310' version 'v1'" in out
    assert "1.2.840.10045.4.3.2" in out
    assert "837eb489b4537ca6dc39fd45940cce9fe042fbdfda1fa018f03c71f09d0ea947" in out
    assert "US" in out
    assert "1/1" in out
    assert "140" in out
    assert "2020-07-01T20:00:00Z (1593633600)" in out
    assert "2020-07-01T20:05:00Z (1593633900)" in out


@pytest.mark.shared_data
def test_verify_real_sample_json(gaen_exports: Path) -> None:
    code, out, _ = run(
        "keyfile", "verify", "--json", gaen_exports / SAMPLE_310, "--pubkey", gaen_exports / PEM_310
    )
    assert code == 0
    document = json.loads(out)
    assert document["verified"] is True
    assert document["key_count"] == 140
    assert document["revised_key_count"] == 0
    assert document["region"] == "US"
    assert document["signer"] == {
        "key_id": "310",
        "key_version": "v1",
        "algorithm": "1.2.840.10045.4.3.2",
    }
    assert document["start_timestamp"] == 1593633600
    assert document["start"] == "2020-07-01T20:00:00Z"
    assert document["sha256"] == "837eb489b4537ca6dc39fd45940cce9fe042fbdfda1fa018f03c71f09d0ea947"


@pytest.mark.shared_data
def test_verify_separate_bin_and_sig(gaen_exports: Path) -> None:
    esp = gaen_exports / "esp-ena"
    code, out, err = run(
        "keyfile",
        "verify",
        esp / "export_tel.bin",
        "--sig",
        esp / "export_tel.sig",
        "--pubkey",
        f"262-v1={esp / 'pubkey_cwa_prod_262-v1.pem'}",
    )
    assert code == 0, err
    assert "720" in out
    assert "DE" in out
    assert_refused(
        run(
            "keyfile",
            "verify",
            esp / "export_tel.bin",
            "--pubkey",
            esp / "pubkey_cwa_prod_262-v1.pem",
        ),
        R.NOT_A_ZIP,
    )


@pytest.mark.shared_data
def test_verify_refusals_on_real_samples(gaen_exports: Path) -> None:
    sample = gaen_exports / SAMPLE_310
    line = assert_refused(
        run("keyfile", "verify", sample, "--pubkey", gaen_exports / PEM_EXAMPLE), R.BAD_SIGNATURE
    )
    assert "'310'" in line
    line = assert_refused(
        run(
            "keyfile",
            "verify",
            sample,
            "--pubkey",
            f"ExampleServer-v1={gaen_exports / PEM_EXAMPLE}",
        ),
        R.NO_KEY,
    )
    assert "'310'" in line
    assert_refused(
        run("keyfile", "verify", sample, "--pubkey", f"999-v1={gaen_exports / PEM_310}"), R.NO_KEY
    )
    assert_refused(
        run("keyfile", "verify", gaen_exports / UNSIGNED, "--pubkey", gaen_exports / PEM_310),
        R.UNSIGNED,
    )
    assert_refused(
        run(
            "keyfile",
            "verify",
            gaen_exports / "cwa-app-android/keys.bin",
            "--pubkey",
            f"262-v1={gaen_exports / 'esp-ena/pubkey_cwa_prod_262-v1.pem'}",
        ),
        R.BAD_SIGNATURE,
    )


def test_verify_written_archive_and_bindings(files: dict[str, Path]) -> None:
    for pubkey in (files["pem"], f"310-v1={files['pem']}", f"310={files['pem']}"):
        code, out, err = run("keyfile", "verify", files["zip"], "--pubkey", pubkey)
        assert code == 0, err
        assert "keys:            4" in out
    # One of several keys may verify; the stranger bound elsewhere is not consulted.
    code, _, _ = run(
        "keyfile",
        "verify",
        files["zip"],
        "--pubkey",
        f"262-v1={files['other']}",
        "--pubkey",
        files["pem"],
    )
    assert code == 0
    assert_refused(
        run("keyfile", "verify", files["zip"], "--pubkey", f"310-v2={files['pem']}"), R.NO_KEY
    )
    assert_refused(
        run("keyfile", "verify", files["zip"], "--pubkey", f"310-v1={files['other']}"),
        R.BAD_SIGNATURE,
    )
    code, out, _ = run(
        "keyfile", "verify", files["bin"], "--sig", files["sig"], "--pubkey", files["pem"]
    )
    assert code == 0
    assert "keys:            4" in out


def test_verify_missing_member_and_not_a_zip(files: dict[str, Path], tmp_path: Path) -> None:
    only_bin = tmp_path / "only-bin.zip"
    only_bin.write_bytes(rezip([("export.bin", files["bin"].read_bytes())]))
    line = assert_refused(
        run("keyfile", "verify", only_bin, "--pubkey", files["pem"]), R.MISSING_MEMBER
    )
    assert "export.sig" in line
    extra = tmp_path / "extra.zip"
    extra.write_bytes(rezip([*members(files["zip"].read_bytes()).items(), ("evil.sh", b"")]))
    assert "evil.sh" in assert_refused(
        run("keyfile", "verify", extra, "--pubkey", files["pem"]), R.EXTRA_MEMBER
    )
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"this is not a zip" * 20)
    assert_refused(run("keyfile", "verify", junk, "--pubkey", files["pem"]), R.NOT_A_ZIP)
    assert_refused(run("keyfile", "show", junk), R.NOT_A_ZIP)


def test_verify_refuses_oversized_file_without_reading(
    files: dict[str, Path], tmp_path: Path
) -> None:
    huge = tmp_path / "huge.zip"
    with huge.open("wb") as handle:  # sparse: no disk space used
        handle.truncate(MAX_EXPORT_ARCHIVE_BYTES + 1)
    line = assert_refused(run("keyfile", "verify", huge, "--pubkey", files["pem"]), R.TOO_LARGE)
    assert str(MAX_EXPORT_ARCHIVE_BYTES + 1) in line
    assert_refused(run("keyfile", "show", huge), R.TOO_LARGE)
    big_bin = tmp_path / "big.bin"
    with big_bin.open("wb") as handle:
        handle.truncate(MAX_EXPORT_BIN_BYTES + 1)
    assert_refused(
        run("keyfile", "verify", big_bin, "--sig", files["sig"], "--pubkey", files["pem"]),
        R.TOO_LARGE,
    )


def test_verify_usage_errors(files: dict[str, Path], tmp_path: Path) -> None:
    code, _, err = run("keyfile", "verify", tmp_path / "absent.zip", "--pubkey", files["pem"])
    assert code == 2
    assert "absent.zip" in err
    code, _, err = run("keyfile", "verify", files["zip"], "--pubkey", tmp_path / "absent.pem")
    assert code == 2
    assert "--pubkey" in err
    assert "absent.pem" in err
    code, _, err = run("keyfile", "verify", files["zip"], "--pubkey", files["zip"])
    assert code == 2
    assert "public key" in err
    code, _, err = run("keyfile", "verify", files["zip"])
    assert code == 2
    assert "--pubkey" in err


@pytest.mark.shared_data
def test_show_json_unsigned_sample(gaen_exports: Path) -> None:
    code, out, err = run("keyfile", "show", "--json", gaen_exports / UNSIGNED)
    assert code == 0, err
    document = json.loads(out)
    assert document["verified"] is False
    assert document["region"] == "US"
    assert document["key_count"] == len(document["keys"]) == 50
    assert document["signature_infos"] == []
    by_key = {key["key_data"]: key for key in document["keys"]}
    assert by_key["e0fa5d183b8557b8589bb1ca21c2682b"] == {
        "key_data": "e0fa5d183b8557b8589bb1ca21c2682b",
        "rolling_start": 2676096,
        "rolling_start_time": "2020-11-18T00:00:00Z",
        "rolling_period": 144,
        "transmission_risk_level": 2,
        "report_type": "CONFIRMED_TEST",
        "days_since_onset": 10,
    }
    assert by_key["e2821a8b22447f1ad3d04fdf31b052c9"]["days_since_onset"] == -6
    assert (
        by_key["e2821a8b22447f1ad3d04fdf31b052c9"]["report_type"] == "CONFIRMED_CLINICAL_DIAGNOSIS"
    )


@pytest.mark.shared_data
def test_show_text_bare_export_bin(gaen_exports: Path) -> None:
    code, out, err = run("keyfile", "show", gaen_exports / f"{INTERNALS}/app_res_raw_export.bin")
    assert code == 0, err
    assert out.startswith("UNVERIFIED")
    assert "keys (110):" in out
    row = next(
        line for line in out.splitlines() if line.startswith("2b714d3ec93c14e5d345003e59027aea")
    )
    assert row.split()[1:4] == ["2646801", "2020-04-28T13:30:00Z", "89"]


def test_show_written_archive(files: dict[str, Path]) -> None:
    code, out, _ = run("keyfile", "show", "--json", files["zip"])
    assert code == 0
    document = json.loads(out)
    assert document["verified"] is False
    assert sorted(key["key_data"] for key in document["keys"]) == sorted(
        key.key_data.hex() for key in make_keys(4)
    )
    assert document["signature_infos"] == [
        {"key_id": "310", "key_version": "v1", "algorithm": "1.2.840.10045.4.3.2"}
    ]
    code, out, _ = run("keyfile", "show", files["bin"])
    assert code == 0
    assert "UNVERIFIED" in out
    assert "keys (4):" in out


@pytest.mark.parametrize("command", [[], ["verify"], ["show"]])
def test_help(command: list[str]) -> None:
    code, out, _ = run("keyfile", *command, "-h")
    assert code == 0
    assert "Usage:" in out
