"""Alerts: the command hook (argv + env, no shell, timeout), once per exposure, the desktop notification."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from bluezoned.alerts import desktop_notify, raise_alerts
from bluezoned.config import AlertsConfig
from bluezoned.store import ExposureRecord, Store

NOW = 1_700_000_000.0
HOOK = """
import json, os, sys
with open(os.environ["HOOK_OUT"], "a") as out:
    out.write(json.dumps({"argv": sys.argv[1:], "env": dict(os.environ)}) + "\\n")
"""


def exposure(risk: int | None = 2, offset: float = 0.0) -> ExposureRecord:
    return ExposureRecord(
        key_data=os.urandom(16),
        rolling_start=2_833_200,
        start=NOW - 7200 + offset,
        end=NOW - 5400 + offset,
        duration_seconds=900,
        sightings=40,
        created=NOW,
        risk_level=risk,
    )


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "state" / "bluezoned.db"


@pytest.fixture
def store(db: Path) -> Iterator[Store]:
    opened = Store.open(db)
    yield opened
    opened.close()


@pytest.fixture
def hook(tmp_path: Path) -> tuple[AlertsConfig, Path]:
    script = tmp_path / "hook.py"
    script.write_text(HOOK)
    out = tmp_path / "calls.jsonl"
    settings = AlertsConfig(
        command=(sys.executable, str(script), "--pin", "17", "$(touch pwned); echo hi"),
        env={"HOOK_OUT": str(out), "LED_PIN": "17"},
        timeout=10,
        desktop_notifications=False,
    )
    return settings, out


def calls(out: Path) -> list[dict[str, object]]:
    if not out.exists():
        return []
    return [json.loads(line) for line in out.read_text().splitlines()]


async def test_hook_gets_argv_and_env_without_a_shell(
    store: Store, hook: tuple[AlertsConfig, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    settings, out = hook
    store.add_exposure(exposure(risk=3))
    report = await raise_alerts(store, settings, NOW)
    assert report is not None
    assert (report.event, report.exposures, report.risk_level) == ("exposure", 1, 3)
    assert report.hook_returncode == 0
    assert report.hook_error is None
    (call,) = calls(out)
    assert call["argv"] == ["--pin", "17", "$(touch pwned); echo hi"]
    assert not (tmp_path / "pwned").exists()
    env = call["env"]
    assert isinstance(env, dict)
    assert env["LED_PIN"] == "17"
    assert env["BLUEZONED_EVENT"] == "exposure"
    assert env["BLUEZONED_EXPOSURES"] == "1"
    assert env["BLUEZONED_RISK_LEVEL"] == "3"
    assert env["BLUEZONED_PREVIOUS_RISK_LEVEL"] == ""
    assert env["BLUEZONED_DURATION_SECONDS"] == "900"
    assert env["BLUEZONED_FIRST_START"] == "2023-11-14T20:13:20Z"


async def test_each_exposure_alerts_once_across_a_reopen(
    db: Path, hook: tuple[AlertsConfig, Path]
) -> None:
    settings, out = hook
    with Store.open(db) as store:
        store.add_exposure(exposure())
        assert await raise_alerts(store, settings, NOW) is not None
        assert await raise_alerts(store, settings, NOW + 1) is None
        assert store.summary(NOW).exposures_alerted == 1
    with Store.open(db) as store:
        assert await raise_alerts(store, settings, NOW + 2) is None
        (stored,) = store.exposures()
        assert stored.alerted_at == NOW
    assert len(calls(out)) == 1


@pytest.mark.parametrize(("second", "event"), [(4, "risk_rise"), (1, "exposure")])
async def test_only_a_higher_risk_level_is_announced_as_a_rise(
    store: Store, hook: tuple[AlertsConfig, Path], second: int, event: str
) -> None:
    settings, out = hook
    store.add_exposure(exposure(risk=1))
    await raise_alerts(store, settings, NOW)
    store.add_exposure(exposure(risk=second, offset=60))
    report = await raise_alerts(store, settings, NOW + 60)
    assert report is not None
    assert (report.event, report.risk_level, report.previous_risk_level) == (event, second, 1)
    env = calls(out)[-1]["env"]
    assert isinstance(env, dict)
    assert env["BLUEZONED_EVENT"] == event
    assert env["BLUEZONED_PREVIOUS_RISK_LEVEL"] == "1"


async def test_a_second_low_contact_that_makes_the_day_high_is_a_rise(
    store: Store, hook: tuple[AlertsConfig, Path]
) -> None:
    settings, out = hook
    day = int(NOW // 86_400)
    store.add_exposure(replace(exposure(risk=1), cwa_days=((day, 7.0),)))
    first = await raise_alerts(store, settings, NOW)
    assert first is not None
    assert first.risk_level == 1
    # LOW alone too, but CWA sums the day: 7 + 6 = 13 normalized minutes is HIGH
    store.add_exposure(replace(exposure(risk=1, offset=60), cwa_days=((day, 6.0),)))
    report = await raise_alerts(store, settings, NOW + 60)
    assert report is not None
    assert (report.event, report.risk_level, report.previous_risk_level) == ("risk_rise", 2, 1)
    assert calls(out)[-1]["env"]["BLUEZONED_RISK_LEVEL"] == "2"  # type: ignore[index]


async def test_the_notification_says_the_risk_and_the_close_contacts(store: Store) -> None:
    shown: list[tuple[str, str]] = []

    async def notifier(summary: str, body: str, limit_seconds: float) -> bool:
        shown.append((summary, body))
        return True

    settings = AlertsConfig(desktop_notifications=True)
    day = int(NOW // 86_400)
    store.add_exposure(replace(exposure(risk=1), cwa_days=((day, 7.0),), close_contact=True))
    await raise_alerts(store, settings, NOW, notifier=notifier)
    store.add_exposure(replace(exposure(risk=1, offset=60), cwa_days=((day, 6.0),)))
    await raise_alerts(store, settings, NOW + 60, notifier=notifier)
    (first_summary, first), (rise_summary, rise) = shown
    assert first_summary == "Possible exposure"
    assert first.startswith("1 new exposure(s), about 15 min heard in all, first on ")
    assert "; 1 close contact(s) by the exposure engine's rule" in first
    assert first.endswith("; risk LOW (Corona-Warn-App v2, each day's exposures summed)")
    assert rise_summary == "Exposure risk has risen"
    assert "close contact" not in rise
    assert rise.endswith(
        "; risk HIGH (Corona-Warn-App v2, each day's exposures summed), up from LOW"
    )


async def test_a_hung_hook_is_killed_and_a_missing_one_reported(
    store: Store, tmp_path: Path
) -> None:
    store.add_exposure(exposure())
    hung = AlertsConfig(
        command=(sys.executable, "-c", "import time; time.sleep(30)"),
        timeout=0.3,
        desktop_notifications=False,
    )
    started = asyncio.get_running_loop().time()
    report = await raise_alerts(store, hung, NOW)
    assert report is not None
    assert "killed" in (report.hook_error or "")
    assert asyncio.get_running_loop().time() - started < 5
    store.add_exposure(exposure(offset=120))
    missing = AlertsConfig(command=(str(tmp_path / "absent"),), desktop_notifications=False)
    report = await raise_alerts(store, missing, NOW)
    assert report is not None
    assert "cannot start" in (report.hook_error or "")
    assert store.exposures(unalerted_only=True) == []  # announced in the log and in status


async def test_notification_is_skipped_quietly_without_a_session_bus(
    monkeypatch: pytest.MonkeyPatch, store: Store
) -> None:
    monkeypatch.delenv("DBUS_SESSION_BUS_ADDRESS", raising=False)
    assert await desktop_notify("Possible exposure", "test", 1.0) is False
    store.add_exposure(exposure())
    report = await raise_alerts(store, AlertsConfig(), NOW)
    assert report is not None
    assert report.notified is False
    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/nonexistent/bus")
    assert await desktop_notify("Possible exposure", "test", 1.0) is False


@pytest.fixture
def session_bus(tmp_path: Path) -> Iterator[str]:
    daemon = shutil.which("dbus-daemon")
    if daemon is None or not Path("/usr/share/dbus-1/session.conf").exists():
        pytest.skip("dbus-daemon is not installed")
    address = f"unix:path={tmp_path}/bus"
    process = subprocess.Popen(
        [daemon, "--session", "--nofork", "--nopidfile", f"--address={address}", "--print-address"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        process.stdout.readline()
        yield address
    finally:
        process.terminate()
        process.wait(timeout=5)
        if process.stdout is not None:
            process.stdout.close()


async def test_notification_reaches_org_freedesktop_notifications(
    session_bus: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from dbus_fast import BusType, Message
    from dbus_fast.aio import MessageBus

    monkeypatch.setenv("DBUS_SESSION_BUS_ADDRESS", session_bus)
    received: list[list[object]] = []
    server = await MessageBus(bus_address=session_bus, bus_type=BusType.SESSION).connect()

    def handler(message: Message) -> bool:
        if message.member == "Notify":
            received.append(list(message.body))
            server.send(Message.new_method_return(message, "u", [7]))
            return True
        return False

    server.add_message_handler(handler)
    await server.request_name("org.freedesktop.Notifications")
    try:
        assert await desktop_notify("Possible exposure", "1 new exposure", 2.0) is True
    finally:
        server.disconnect()
    (body,) = received
    assert body[0] == "bluezoned"
    assert body[3:5] == ["Possible exposure", "1 new exposure"]


def test_example_gpio_hook_reads_the_alert_env(tmp_path: Path) -> None:
    hook = Path(__file__).resolve().parent.parent / "contrib" / "hooks" / "gpio-alert.py"
    env = {
        **os.environ,
        "BLUEZONED_EVENT": "risk_rise",
        "BLUEZONED_EXPOSURES": "2",
        "BLUEZONED_RISK_LEVEL": "3",
    }
    done = subprocess.run(
        [sys.executable, str(hook), "--led-pin", "17", "--buzzer-pin", "27", "--dry-run"],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert lines[0] == "bluezoned alert: risk_rise, 2 exposure(s), risk level 3"
    assert "pin 17 on" in lines
    assert "pin 27 on" in lines
    assert lines[-2:] == ["pin 17 released", "pin 27 released"]


async def test_the_hook_spans_every_new_exposure(
    store: Store, hook: tuple[AlertsConfig, Path]
) -> None:
    settings, out = hook
    store.add_exposure(exposure(offset=600))
    store.add_exposure(exposure(offset=-600))
    store.add_exposure(exposure())
    await raise_alerts(store, settings, NOW)
    env = calls(out)[-1]["env"]
    assert isinstance(env, dict)
    assert env["BLUEZONED_EXPOSURES"] == "3"
    assert env["BLUEZONED_FIRST_START"] == "2023-11-14T20:03:20Z"  # NOW - 7200 - 600
    assert env["BLUEZONED_LAST_END"] == "2023-11-14T20:53:20Z"  # NOW - 5400 + 600
    assert env["BLUEZONED_DURATION_SECONDS"] == "2700"
