"""A private ``dbus-daemon`` configured like the system bus, for the simulated BlueZ (linux-ble.md §9.3).

The bus gets the default-deny ``<policy context="default">`` of ``/usr/share/dbus-1/system.conf``
and a copy of Debian's ``bluetooth.conf``, plus a rule letting the current user own
``org.bluez`` when it is not root. bleak (through dbus-fast) connects to whatever
``DBUS_SYSTEM_BUS_ADDRESS`` names, so pointing that variable at this bus is all it takes.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import selectors
import shutil
import subprocess
import tempfile
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from types import TracebackType
from typing import Final
from xml.sax.saxutils import escape

from bluezoned.errors import SimulatorError

SYSTEM_BUS_ENV: Final = "DBUS_SYSTEM_BUS_ADDRESS"
"""The variable dbus-fast (hence bleak) reads to find the system bus."""
DBUS_DAEMON_NAMES: Final = ("dbus-daemon",)
START_TIMEOUT_S: Final = 10.0
"""dbus-daemon prints its address within milliseconds; 10 s only guards a wedged machine."""
STOP_TIMEOUT_S: Final = 5.0

_SYSTEM_CONF: Final = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>system</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow user="*"/>
    <deny own="*"/>
    <deny send_type="method_call"/>
    <allow send_type="signal"/>
    <allow send_requested_reply="true" send_type="method_return"/>
    <allow send_requested_reply="true" send_type="error"/>
    <allow receive_type="method_call"/>
    <allow receive_type="method_return"/>
    <allow receive_type="error"/>
    <allow receive_type="signal"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"/>
    <allow send_destination="org.freedesktop.DBus"
           send_interface="org.freedesktop.DBus.Introspectable"/>
    <allow send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Properties"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus"
          send_member="UpdateActivationEnvironment"/>
    <deny send_destination="org.freedesktop.DBus" send_interface="org.freedesktop.DBus.Debug.Stats"/>
  </policy>
  <includedir>{policy_dir}</includedir>
</busconfig>
"""

_BLUETOOTH_CALLBACK_INTERFACES: Final = (
    "org.bluez.AdvertisementMonitor1",
    "org.bluez.Agent1",
    "org.bluez.MediaEndpoint1",
    "org.bluez.MediaPlayer1",
    "org.bluez.Profile1",
    "org.bluez.GattCharacteristic1",
    "org.bluez.GattDescriptor1",
    "org.bluez.LEAdvertisement1",
    "org.freedesktop.DBus.ObjectManager",
    "org.freedesktop.DBus.Properties",
)
"""Interfaces bluetoothd calls back on clients (Debian bookworm ``bluetooth.conf``, bluez 5.66)."""


def bluetooth_policy(bluez_user: str = "root") -> str:
    """Debian's ``bluetooth.conf``, with ``bluez_user`` (not only root) allowed to own ``org.bluez``."""
    users = ["root"] if bluez_user == "root" else ["root", bluez_user]
    blocks = []
    for user in users:
        rules = [
            '    <allow own="org.bluez"/>',
            '    <allow send_destination="org.bluez"/>',
            *(f'    <allow send_interface="{i}"/>' for i in _BLUETOOTH_CALLBACK_INTERFACES),
        ]
        blocks.append(f'  <policy user="{escape(user)}">\n' + "\n".join(rules) + "\n  </policy>")
    return (
        '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"\n'
        ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">\n<busconfig>\n'
        + "\n".join(blocks)
        + '\n  <policy group="bluetooth">\n    <allow send_destination="org.bluez"/>\n  </policy>\n'
        '  <policy context="default">\n    <allow send_destination="org.bluez"/>\n  </policy>\n'
        "</busconfig>\n"
    )


def find_dbus_daemon() -> str | None:
    """Path of the ``dbus-daemon`` executable, or None when it is not installed."""
    for name in DBUS_DAEMON_NAMES:
        found = shutil.which(name) or (
            f"/usr/bin/{name}" if os.access(f"/usr/bin/{name}", os.X_OK) else None
        )
        if found:
            return found
    return None


class PrivateSystemBus:
    """A throwaway ``dbus-daemon`` playing the system bus; ``start()``/``stop()`` or ``with``."""

    def __init__(self, *, extra_policy: str | None = None, set_env: bool = True) -> None:
        self.address: str = ""
        """The bus address (``unix:path=...,guid=...``); empty until started."""
        self._extra_policy = extra_policy
        self._set_env = set_env
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._saved_env: str | None = None

    @property
    def running(self) -> bool:
        """Whether the daemon process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> str:
        """Start the daemon, export ``DBUS_SYSTEM_BUS_ADDRESS`` (if asked) and return the address."""
        if self._proc is not None:
            raise SimulatorError("the private bus is already started")
        daemon = find_dbus_daemon()
        if daemon is None:
            raise SimulatorError("dbus-daemon not found (install the 'dbus' package)")
        self._tmp = tempfile.TemporaryDirectory(prefix="bluezoned-bus-")
        root = Path(self._tmp.name)
        root.chmod(0o755)  # a non-root client (setpriv, §9.3 step 6) must reach the socket
        policy_dir = root / "system.d"
        policy_dir.mkdir()
        (policy_dir / "bluetooth.conf").write_text(bluetooth_policy(_current_user()))
        if self._extra_policy:
            (policy_dir / "zz-extra.conf").write_text(self._extra_policy)
        config = root / "system.conf"
        config.write_text(
            _SYSTEM_CONF.format(
                socket=escape(str(root / "system_bus_socket")), policy_dir=escape(str(policy_dir))
            )
        )
        self._proc = subprocess.Popen(  # noqa: S603 - our own config, absolute daemon path
            [
                daemon,
                f"--config-file={config}",
                "--nofork",
                "--nopidfile",
                "--print-address=1",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,  # "Failed to set fd limit", "Unknown group bluetooth"
        )
        try:
            self.address = self._read_address()
        except BaseException:
            self._kill()
            raise
        if self._set_env:
            self._saved_env = os.environ.get(SYSTEM_BUS_ENV)
            os.environ[SYSTEM_BUS_ENV] = self.address
        return self.address

    def stop(self) -> None:
        """Stop the daemon, restore ``DBUS_SYSTEM_BUS_ADDRESS`` and remove the temporary files."""
        if self._set_env and self.address and os.environ.get(SYSTEM_BUS_ENV) == self.address:
            if self._saved_env is None:
                os.environ.pop(SYSTEM_BUS_ENV, None)
            else:
                os.environ[SYSTEM_BUS_ENV] = self._saved_env
        self._kill()
        self.address = ""

    def __enter__(self) -> PrivateSystemBus:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _read_address(self) -> str:
        proc = self._proc
        if proc is None or proc.stdout is None:
            raise SimulatorError("dbus-daemon did not start")
        deadline = time.monotonic() + START_TIMEOUT_S
        buffer = b""
        with selectors.DefaultSelector() as selector:
            selector.register(proc.stdout, selectors.EVENT_READ)
            while b"\n" not in buffer:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise SimulatorError("dbus-daemon printed no address in time")
                if not selector.select(remaining):
                    continue
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    raise SimulatorError(f"dbus-daemon exited with code {proc.wait()}")
                buffer += chunk
        return buffer.split(b"\n", 1)[0].decode().strip()

    def _kill(self) -> None:
        proc, self._proc = self._proc, None
        if proc is not None:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(STOP_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
            if proc.stdout is not None:
                proc.stdout.close()
        tmp, self._tmp = self._tmp, None
        if tmp is not None:
            tmp.cleanup()


@contextlib.contextmanager
def private_system_bus(*, extra_policy: str | None = None) -> Iterator[str]:
    """Run a private system bus for the ``with`` block, yielding its address (sync API)."""
    bus = PrivateSystemBus(extra_policy=extra_policy)
    bus.start()
    try:
        yield bus.address
    finally:
        bus.stop()


@contextlib.asynccontextmanager
async def async_private_system_bus(*, extra_policy: str | None = None) -> AsyncIterator[str]:
    """Async form of :func:`private_system_bus`; start-up runs in a thread, off the event loop."""
    import asyncio

    bus = PrivateSystemBus(extra_policy=extra_policy)
    await asyncio.to_thread(bus.start)
    try:
        yield bus.address
    finally:
        await asyncio.to_thread(bus.stop)


def _current_user() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:  # a uid without a passwd entry (containers): only root can own org.bluez
        return "root"
