#!/usr/bin/env python3
"""Example bluezoned alert hook: light an LED and sound a buzzer on a Raspberry Pi.

Configure it in bluezoned.toml (the hook runs without a shell, with a timeout)::

    [alerts]
    command = ["/usr/local/bin/gpio-alert.py", "--led-pin", "17", "--buzzer-pin", "27"]
    env = {ALERT_SECONDS = "20"}
    timeout = 30

bluezoned sets these environment variables for the hook:

    BLUEZONED_EVENT                "exposure" (new exposures) or "risk_rise" (higher risk level)
    BLUEZONED_EXPOSURES            how many new exposures this alert covers
    BLUEZONED_RISK_LEVEL           the overall risk level now, every stored exposure's
                                   CWA day sums included ("" when unscored)
    BLUEZONED_PREVIOUS_RISK_LEVEL  the overall level of the exposures alerted before ("" when none)
    BLUEZONED_FIRST_START          ISO-8601 UTC start of the earliest exposure
    BLUEZONED_LAST_END             ISO-8601 UTC end of the latest exposure
    BLUEZONED_DURATION_SECONDS     total exposure time
    BLUEZONED_ALERT_TIME           ISO-8601 UTC time of the alert

Pattern: the LED blinks for ALERT_SECONDS (default 10); once a second for "exposure", four
times a second for "risk_rise"; the buzzer beeps once per blink for the first three.
Uses gpiozero when it is installed, else the kernel's /sys/class/gpio interface (BCM
numbers; on kernels without it, install gpiozero). ``--dry-run`` prints what it would do.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

SYSFS = Path("/sys/class/gpio")


class SysfsPin:
    """One output pin through /sys/class/gpio (exported on first use, unexported on close)."""

    def __init__(self, number: int) -> None:
        self.number = number
        self.path = SYSFS / f"gpio{number}"
        self.exported = False
        if not self.path.exists():
            (SYSFS / "export").write_text(str(number))
            self.exported = True
            for _ in range(50):  # udev may need a moment to set permissions
                if (self.path / "direction").exists():
                    break
                time.sleep(0.02)
        (self.path / "direction").write_text("out")

    def set(self, on: bool) -> None:
        (self.path / "value").write_text("1" if on else "0")

    def close(self) -> None:
        self.set(False)
        if self.exported:
            (SYSFS / "unexport").write_text(str(self.number))


class GpiozeroPin:
    """One output pin through gpiozero."""

    def __init__(self, number: int) -> None:
        from gpiozero import DigitalOutputDevice

        self.device = DigitalOutputDevice(number)

    def set(self, on: bool) -> None:
        if on:
            self.device.on()
        else:
            self.device.off()

    def close(self) -> None:
        self.device.off()
        self.device.close()


class DryPin:
    """Prints instead of switching."""

    def __init__(self, number: int) -> None:
        self.number = number

    def set(self, on: bool) -> None:
        sys.stdout.write(f"pin {self.number} {'on' if on else 'off'}\n")

    def close(self) -> None:
        sys.stdout.write(f"pin {self.number} released\n")


def open_pin(number: int, dry_run: bool) -> SysfsPin | GpiozeroPin | DryPin:
    if dry_run:
        return DryPin(number)
    try:
        return GpiozeroPin(number)
    except ImportError:
        return SysfsPin(number)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--led-pin", type=int, default=int(os.environ.get("LED_PIN", "17")))
    parser.add_argument("--buzzer-pin", type=int, default=None)
    parser.add_argument(
        "--seconds", type=float, default=float(os.environ.get("ALERT_SECONDS", "10"))
    )
    parser.add_argument("--dry-run", action="store_true")
    args = parser.parse_args()

    event = os.environ.get("BLUEZONED_EVENT", "exposure")
    count = os.environ.get("BLUEZONED_EXPOSURES", "?")
    level = os.environ.get("BLUEZONED_RISK_LEVEL", "")
    sys.stdout.write(f"bluezoned alert: {event}, {count} exposure(s), risk level {level or '-'}\n")
    period = 0.25 if event == "risk_rise" else 1.0
    blinks = max(1, int(args.seconds / period))
    if args.dry_run:
        blinks = min(blinks, 3)
        period = 0.0

    led = open_pin(args.led_pin, args.dry_run)
    buzzer = open_pin(args.buzzer_pin, args.dry_run) if args.buzzer_pin is not None else None
    try:
        for blink in range(blinks):
            led.set(True)
            if buzzer is not None and blink < 3:
                buzzer.set(True)
            time.sleep(period / 2)
            led.set(False)
            if buzzer is not None:
                buzzer.set(False)
            time.sleep(period / 2)
    finally:
        led.close()
        if buzzer is not None:
            buzzer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
