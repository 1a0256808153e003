"""Announce exposures: one log line, a command hook (argv + env, never a shell), a desktop notification.

The store is the memory: an exposure is announced while its ``alerted_at`` is empty and then
marked, so each exposure alerts once, also across restarts, and ``bluezoned status`` shows it.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import os
import signal
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final, Literal

from bluezoned.config import AlertsConfig
from bluezoned.const import NOTIFY_TIMEOUT_SECONDS
from bluezoned.exposure.presets import risk_level_name
from bluezoned.store import ExposureRecord, Store
from bluezoned.verdict import verdict

__all__ = ["AlertReport", "Notifier", "alert_env", "desktop_notify", "raise_alerts", "run_hook"]

_log = logging.getLogger(__name__)

NOTIFICATIONS_NAME: Final = "org.freedesktop.Notifications"
NOTIFICATIONS_PATH: Final = "/org/freedesktop/Notifications"
_URGENCY_CRITICAL: Final = 2

Notifier = Callable[[str, str, float], Awaitable[bool]]
"""``(summary, body, timeout) -> shown``; the default speaks org.freedesktop.Notifications."""
AlertEvent = Literal["exposure", "risk_rise"]


@dataclass(frozen=True, slots=True)
class AlertReport:
    """What one alert did: how many exposures, the risk levels, the hook's exit and the notification."""

    event: AlertEvent
    exposures: int
    risk_level: int | None
    previous_risk_level: int | None
    hook_returncode: int | None = None
    hook_error: str | None = None
    notified: bool = False


async def raise_alerts(
    store: Store,
    settings: AlertsConfig,
    now: float,
    *,
    notifier: Notifier | None = None,
) -> AlertReport | None:
    """Announce the store's unalerted exposures once and mark them; None when there are none."""
    everything = store.exposures()
    fresh = [e for e in everything if e.alerted_at is None]
    if not fresh:
        return None
    # The level is CWA's over every exposure: a new contact can make an earlier day HIGH.
    level = verdict(everything).risk_level
    previous = verdict([e for e in everything if e.alerted_at is not None]).risk_level
    event: AlertEvent = (
        "risk_rise"
        if previous is not None and level is not None and level > previous
        else "exposure"
    )
    summary, body = _message(fresh, level, previous, event)
    _log.warning("exposure alert: %s", body)
    hook_code: int | None = None
    hook_error: str | None = None
    if settings.command:
        env = {**os.environ, **settings.env, **alert_env(fresh, level, previous, event, now)}
        hook_code, hook_error = await run_hook(settings.command, env, settings.timeout)
        if hook_error is not None:
            _log.warning("alert hook %s: %s", settings.command[0], hook_error)
    notified = False
    if settings.desktop_notifications:
        notified = await (notifier or desktop_notify)(summary, body, NOTIFY_TIMEOUT_SECONDS)
    store.mark_alerted([e.id for e in fresh if e.id is not None], now)
    return AlertReport(event, len(fresh), level, previous, hook_code, hook_error, notified)


def alert_env(
    exposures: Sequence[ExposureRecord],
    level: int | None,
    previous: int | None,
    event: AlertEvent,
    now: float,
) -> dict[str, str]:
    """The ``BLUEZONED_*`` variables a hook receives (documented in contrib/hooks/gpio-alert.py)."""
    return {
        "BLUEZONED_EVENT": event,
        "BLUEZONED_EXPOSURES": str(len(exposures)),
        "BLUEZONED_RISK_LEVEL": "" if level is None else str(level),
        "BLUEZONED_PREVIOUS_RISK_LEVEL": "" if previous is None else str(previous),
        "BLUEZONED_FIRST_START": _iso(min(e.start for e in exposures)),
        "BLUEZONED_LAST_END": _iso(max(e.end for e in exposures)),
        "BLUEZONED_DURATION_SECONDS": str(round(sum(e.duration_seconds for e in exposures))),
        "BLUEZONED_ALERT_TIME": _iso(now),
    }


async def run_hook(
    argv: Sequence[str], env: Mapping[str, str], limit_seconds: float
) -> tuple[int | None, str | None]:
    """Run ``argv`` (no shell) with ``env``; returns (exit code, problem) and kills it on timeout."""
    try:
        process = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
            env=dict(env),
            start_new_session=True,
        )
    except OSError as exc:
        return None, f"cannot start: {exc.strerror or exc}"
    try:
        async with asyncio.timeout(limit_seconds):
            code = await process.wait()
    except TimeoutError:
        # The hook leads its own session: kill its children (a buzzer loop) with it.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        await process.wait()
        return None, f"killed after {limit_seconds:g} s"
    if code != 0:
        return code, f"exited with status {code}"
    return code, None


async def desktop_notify(summary: str, body: str, limit_seconds: float) -> bool:
    """Show a notification over the session bus; False (quietly) without a bus or a notifier."""
    if not os.environ.get("DBUS_SESSION_BUS_ADDRESS"):
        return False
    try:
        from dbus_fast import BusType, Message, MessageType, Variant
        from dbus_fast.aio import MessageBus
        from dbus_fast.errors import DBusError
    except ImportError:
        return False
    bus: MessageBus | None = None
    try:
        async with asyncio.timeout(limit_seconds):
            bus = await MessageBus(bus_type=BusType.SESSION).connect()
            reply = await bus.call(
                Message(
                    destination=NOTIFICATIONS_NAME,
                    path=NOTIFICATIONS_PATH,
                    interface=NOTIFICATIONS_NAME,
                    member="Notify",
                    signature="susssasa{sv}i",
                    body=[
                        "bluezoned",
                        0,
                        "dialog-warning",
                        summary,
                        body,
                        [],
                        {"urgency": Variant("y", _URGENCY_CRITICAL)},
                        -1,
                    ],
                )
            )
    except (TimeoutError, OSError, ValueError, DBusError) as exc:
        _log.debug("no desktop notification: %s", exc)
        return False
    finally:
        if bus is not None:
            bus.disconnect()
    return reply is not None and reply.message_type == MessageType.METHOD_RETURN


def _message(
    exposures: Sequence[ExposureRecord],
    level: int | None,
    previous: int | None,
    event: AlertEvent,
) -> tuple[str, str]:
    count = len(exposures)
    minutes = round(sum(e.duration_seconds for e in exposures) / 60)
    first = _iso(min(e.start for e in exposures))
    text = f"{count} new exposure(s), about {minutes} min heard in all, first on {first}"
    close = sum(e.close_contact is True for e in exposures)
    if close:
        text += f"; {close} close contact(s) by the exposure engine's rule"
    if level is not None:
        text += f"; risk {risk_level_name(level)} (Corona-Warn-App v2, each day's exposures summed)"
    if event == "risk_rise":
        text += f", up from {risk_level_name(previous)}"
        return "Exposure risk has risen", text
    return "Possible exposure", text


def _iso(t: float) -> str:
    return dt.datetime.fromtimestamp(t, dt.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")
