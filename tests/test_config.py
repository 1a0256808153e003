"""The TOML configuration: defaults, a full file, and one test per kind of mistake."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

import bluezoned.config as config_module
from bluezoned.config import Config, ExposureSettings, load_config
from bluezoned.errors import ConfigError, InvalidInput


@pytest.fixture
def pem(tmp_path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1()).public_key()
    path = tmp_path / "authority.pem"
    path.write_bytes(
        key.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    return path


def der_base64(pem: Path) -> str:
    key = serialization.load_pem_public_key(pem.read_bytes())
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return base64.b64encode(der).decode()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "bluezoned.toml"
    path.write_text(text, encoding="utf-8")
    return path


SOURCE = """
[[sources]]
name = "vn"
url = "https://keys.example/exports/exposureKeyExport-VN/index.txt"
base_url = "https://keys.example/exports"
region = "VN"
keys = [{id = "452", version = "v1", pem = "authority.pem"}]
"""


def test_full_file_is_read(tmp_path: Path, pem: Path) -> None:
    text = (
        SOURCE
        + f"""
[[sources]]
name = "de"
format = "cwa"
url = "https://svc.example/version/v1/diagnosis-keys/country/DE"
keys = [{{id = "262", version = "v1", pem_base64 = "{der_base64(pem)}"}}]

[schedule]
interval_minutes = 60
jitter_minutes = 10

[limits]
max_file_bytes = 1048576
read_timeout = 5
retries = 2

[alerts]
command = ["/usr/local/bin/hook", "--pin", "17"]
env = {{LED_PIN = "17"}}
timeout = 10
desktop_notifications = false
"""
    )
    config = load_config(write(tmp_path, text))
    vn, de = config.sources
    assert (vn.name, vn.format, vn.region) == ("vn", "index", "VN")
    assert vn.base_url == "https://keys.example/exports/"
    assert vn.trusted_keys[0].key_id == "452"
    assert de.format == "cwa"
    assert de.trusted_keys[0].key_version == "v1"
    assert config.schedule.interval_seconds == 3600
    assert config.schedule.jitter_seconds == 600
    assert config.limits.max_file_bytes == 1048576
    assert config.limits.read_timeout == 5
    assert config.limits.retries == 2
    assert config.alerts.command == ("/usr/local/bin/hook", "--pin", "17")
    assert config.alerts.env == {"LED_PIN": "17"}
    assert config.alerts.desktop_notifications is False
    assert config.source("de") is de
    with pytest.raises(InvalidInput, match="configured: vn, de"):
        config.source("fr")


def test_defaults(tmp_path: Path, pem: Path) -> None:
    config = load_config(write(tmp_path, SOURCE))
    assert config.schedule.interval_seconds == 4 * 3600
    assert config.schedule.jitter_seconds == 30 * 60
    assert config.limits == Config().limits
    assert config.alerts.command == ()
    assert config.alerts.desktop_notifications is True
    assert config.exposure == ExposureSettings(2.0, 15.0, 0.0, None, None)


def test_exposure_settings(tmp_path: Path, pem: Path) -> None:
    plain = load_config(
        write(tmp_path, SOURCE + "[exposure]\ndistance_m = 1.5\nminutes = 10\nrx_correction = -3\n")
    )
    assert plain.exposure == ExposureSettings(1.5, 10.0, -3.0)
    fitted = load_config(
        write(
            tmp_path,
            SOURCE + '[exposure]\ncalibration = "dp3t-exp05-2m-15min"\nrx_model = "SM-G973F"\n',
        )
    )
    assert fitted.exposure == ExposureSettings(2.0, 15.0, 0.0, "dp3t-exp05-2m-15min", "SM-G973F")


@pytest.mark.parametrize(
    ("text", "key", "message"),
    [
        ("[[sources]\n", "", "not valid TOML"),
        ("colour = 1\n", "colour", "unknown key"),
        ("sources = 3\n", "sources", "array of tables"),
        (
            "[[sources]]\nurl = 'https://a/i'\nbase_url='https://a/'\nkeys=[{pem='authority.pem'}]\n",
            "sources[0].name",
            "is required",
        ),
        (SOURCE.replace('name = "vn"', 'name = "a b"'), "sources[0].name", "letters"),
        (SOURCE + SOURCE, "sources[1].name", "used twice"),
        (
            SOURCE.replace(
                "https://keys.example/exports/exposureKeyExport-VN/index.txt", "ftp://x/i"
            ),
            "sources[0].url",
            "not an http",
        ),
        (
            SOURCE.replace('region = "VN"', 'region = "VN"\nformat = "zip"'),
            "sources[0].format",
            "one of",
        ),
        (
            SOURCE.replace('base_url = "https://keys.example/exports"\n', ""),
            "sources[0].base_url",
            "is required",
        ),
        (
            SOURCE.replace(
                'keys = [{id = "452", version = "v1", pem = "authority.pem"}]', "keys = []"
            ),
            "sources[0].keys",
            "at least one",
        ),
        (
            SOURCE.replace('pem = "authority.pem"', 'pem = "missing.pem"'),
            "sources[0].keys[0].pem",
            "cannot read",
        ),
        (
            SOURCE.replace('pem = "authority.pem"', 'pem = "bluezoned.toml"'),
            "sources[0].keys[0].pem",
            "not a PEM",
        ),
        (
            SOURCE.replace('pem = "authority.pem"', 'pem_base64 = "!!"'),
            "sources[0].keys[0].pem_base64",
            "not base64",
        ),
        (
            SOURCE.replace('pem = "authority.pem"', 'pem = "authority.pem", pem_base64 = "AA=="'),
            "sources[0].keys[0]",
            "exactly one",
        ),
        (SOURCE.replace('id = "452"', 'id = "4/5"'), "sources[0].keys[0].pem", "key id"),
        (SOURCE.replace('id = "452"', 'kid = "452"'), "sources[0].keys[0].kid", "unknown key"),
        (SOURCE + "[schedule]\ninterval_minutes = 0\n", "schedule.interval_minutes", "between"),
        (
            SOURCE + "[schedule]\ninterval_minutes = 'often'\n",
            "schedule.interval_minutes",
            "a number",
        ),
        (
            SOURCE + "[schedule]\ninterval_minutes = 30\njitter_minutes = 30\n",
            "schedule.jitter_minutes",
            "smaller",
        ),
        (SOURCE + "[limits]\nmax_file_bytes = 1.5\n", "limits.max_file_bytes", "an integer"),
        (SOURCE + "[limits]\nmax_file_bytes = 10\n", "limits.max_file_bytes", "between"),
        (SOURCE + "[limits]\nretries = true\n", "limits.retries", "an integer"),
        (SOURCE + "[limits]\nmax_run_bytes = -1\n", "limits.max_run_bytes", "between"),
        (SOURCE + "[limits]\nread_timeout = 0\n", "limits.read_timeout", "between"),
        ("limits = 3\n" + SOURCE, "limits", "must be a table"),
        (SOURCE + "[alerts]\ncommand = 'notify-send hi'\n", "alerts.command", "no shell"),
        (SOURCE + "[alerts]\ncommand = [1]\n", "alerts.command", "list of strings"),
        (SOURCE + "[alerts]\ncommand = ['']\n", "alerts.command", "empty"),
        (SOURCE + "[alerts]\nenv = {'A-B' = 'x'}\n", "alerts.env.A-B", "not a valid"),
        (SOURCE + "[alerts]\nenv = {A = 1}\n", "alerts.env.A", "must be a string"),
        (
            SOURCE + "[alerts]\ndesktop_notifications = 'yes'\n",
            "alerts.desktop_notifications",
            "true or false",
        ),
        (SOURCE + "[exposure]\ndistance = 2\n", "exposure.distance", "unknown key"),
        (SOURCE + "[exposure]\ndistance_m = 0\n", "exposure.distance_m", "between"),
        (SOURCE + "[exposure]\nminutes = 'long'\n", "exposure.minutes", "a number"),
        (SOURCE + "[exposure]\nrx_correction = 99\n", "exposure.rx_correction", "between"),
        (SOURCE + "[exposure]\nrx_model = 'SM-G973F'\n", "exposure.rx_model", "needs"),
        (SOURCE + "[exposure]\ncalibration = 'mine'\n", "exposure.calibration", "shipped"),
        (
            SOURCE + "[exposure]\ncalibration = 'dp3t-exp34-2m-15min'\n",
            "exposure.calibration",
            "duty-cycled",
        ),
        (
            SOURCE + "[exposure]\ncalibration = 'dp3t-exp05-2m-15min'\nminutes = 10\n",
            "exposure.minutes",
            "contradicts",
        ),
    ],
)
def test_each_mistake_names_the_file_and_the_key(
    tmp_path: Path, pem: Path, text: str, key: str, message: str
) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.path == str(path)
    assert caught.value.key == key
    assert message in str(caught.value)
    assert str(path) in str(caught.value)


def test_missing_and_non_utf8_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "absent.toml")
    path = tmp_path / "bad.toml"
    path.write_bytes(b"a = '\xff'\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(path)


def test_relative_pem_is_found_beside_the_config(tmp_path: Path, pem: Path) -> None:
    sub = tmp_path / "etc"
    sub.mkdir()
    shutil.move(pem, sub / "authority.pem")
    config = load_config(write(sub, SOURCE))
    assert len(config.sources[0].trusted_keys) == 1


def test_oversized_pem_is_refused_not_truncated(tmp_path: Path, pem: Path) -> None:
    pem.write_bytes(pem.read_bytes() + b"\n" * (64 * 1024))
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, SOURCE))
    assert caught.value.key == "sources[0].keys[0].pem"
    assert "larger than 65536 bytes, the bound for a PEM public key" in str(caught.value)


@pytest.mark.parametrize(
    ("key", "low", "high", "step"),
    [(k, lo, hi, 1) for k, (lo, hi) in config_module._LIMIT_COUNTS.items()]
    + [(k, lo, hi, 0.05) for k, (lo, hi) in config_module._LIMIT_SECONDS.items()],
)
def test_limits_accept_both_ends_of_their_range_and_nothing_past(
    tmp_path: Path, pem: Path, key: str, low: float, high: float, step: float
) -> None:
    for value in (low, high):
        limits = load_config(write(tmp_path, SOURCE + f"[limits]\n{key} = {value!r}\n")).limits
        assert getattr(limits, key) == value
    for value in (low - step, high + step):
        with pytest.raises(ConfigError, match="between") as caught:
            load_config(write(tmp_path, SOURCE + f"[limits]\n{key} = {value!r}\n"))
        assert caught.value.key == f"limits.{key}"
