"""``bluezoned sim``: a simulated Bluetooth world on a private system bus, in the foreground."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from pathlib import Path
from typing import TYPE_CHECKING, Final

import click

from bluezoned.cli._common import CONTEXT_SETTINGS, translate_errors

if TYPE_CHECKING:
    from bluezoned.sim.bluez import SimulatedBluez
    from bluezoned.sim.world import World

FIRST_ADAPTER_ADDRESS: Final = 0x001A7DDA7113
"""hci0's simulated controller address; hciN gets this plus N."""
MAX_ADAPTERS: Final = 16
MAX_DEVICES: Final = 5_000
"""500 devices at 4 adverts/s is the kiosk case; 10x that still fits the simulator's device cap."""


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--devices",
    type=click.IntRange(0, MAX_DEVICES),
    default=10,
    show_default=True,
    help="Virtual phones sending GAEN beacons.",
)
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Seed of keys, movement and radio."
)
@click.option(
    "--adapters",
    type=click.IntRange(1, MAX_ADAPTERS),
    default=1,
    show_default=True,
    help="Simulated controllers hci0..hciK-1; they hear each other's advertisements.",
)
@click.option(
    "--speed",
    type=click.FloatRange(min=0.01),
    default=1.0,
    show_default=True,
    help="Simulated seconds per real second (key rotation and movement; adverts scale too).",
)
@click.option(
    "--experimental/--no-experimental",
    default=True,
    show_default=True,
    help="Offer AdvertisementMonitorManager1 (bluetoothd -E), needed for passive scans.",
)
@click.option(
    "--temporary-timeout",
    type=click.FloatRange(min=0.1),
    default=30.0,
    show_default=True,
    help="main.conf TemporaryTimeout: seconds a device lives after its last advert.",
)
@click.option(
    "--max-advertisements",
    type=click.IntRange(1, 255),
    default=5,
    show_default=True,
    help="Advertising instances per adapter (SupportedInstances).",
)
@click.option(
    "--duration",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Stop after this many seconds [default: run until Ctrl-C or SIGTERM].",
)
@click.option(
    "--keys-out",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="On exit, write each person's keys to DIR/person-N.json in the publish-API form "
    "(as `bluezoned keys export --json` prints), to play a diagnosis.",
)
@click.option(
    "--stats-every",
    type=click.FloatRange(min=0),
    default=0.0,
    help="Print world statistics every so many seconds [default: never].",
)
def sim(
    devices: int,
    seed: int,
    adapters: int,
    speed: float,
    experimental: bool,
    temporary_timeout: float,
    max_advertisements: int,
    duration: float,
    keys_out: Path | None,
    stats_every: float,
) -> None:
    """Run a private system bus, a simulated BlueZ and a world of beacons; point bleak at it.

    Prints the bus address and an ``export DBUS_SYSTEM_BUS_ADDRESS=...`` line, then READY.
    """
    from bluezoned.sim.bluez import AdapterConfig, SimulatedBluez
    from bluezoned.sim.bus import PrivateSystemBus
    from bluezoned.sim.world import World

    configs = [
        AdapterConfig(
            name=f"hci{i}",
            address=_mac(FIRST_ADAPTER_ADDRESS + i),
            experimental=experimental,
            max_advertisements=max_advertisements,
        )
        for i in range(adapters)
    ]
    with translate_errors():
        bus = PrivateSystemBus(set_env=False)
        bus.start()
        try:
            click.echo(f"private system bus: {bus.address}")
            for config in configs:
                click.echo(f"  adapter {config.name} {config.address}")
            click.echo(f"  world: {devices} device(s), seed {seed}, speed {speed:g}x")
            click.echo(f"export DBUS_SYSTEM_BUS_ADDRESS={bus.address}")

            async def serve() -> None:
                bluez = SimulatedBluez(
                    bus.address, adapters=configs, temporary_timeout=temporary_timeout, seed=seed
                )
                await bluez.start()
                world = World(bluez, devices=devices, seed=seed, speed=speed)
                try:
                    await world.start()
                    click.echo("READY")
                    await _wait_for_stop(duration, stats_every, bluez, world)
                finally:
                    await world.stop()
                    await bluez.stop()
                    if keys_out is not None:
                        _write_keys(keys_out, world)

            asyncio.run(serve())
        finally:
            bus.stop()
    click.echo("stopped")


async def _wait_for_stop(
    duration: float, stats_every: float, bluez: SimulatedBluez, world: World
) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(signum, stop.set)
    if duration > 0:
        loop.call_later(duration, stop.set)
    try:
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), stats_every or None)
            if stats_every and not stop.is_set():
                s = world.stats
                click.echo(
                    f"t={world.now:.0f}s adverts={s.adverts} delivered={s.delivered} "
                    f"kept={s.kept} missed={s.missed} "
                    f"listening={[n for n in bluez.adapter_names if bluez.is_listening(n)]}"
                )
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                loop.remove_signal_handler(signum)


def _write_keys(directory: Path, world: World) -> None:
    from bluezoned.models import DiagnosisKey
    from bluezoned.sync.upload import publish_key_objects

    directory.mkdir(parents=True, exist_ok=True)
    for person in world.people:
        person.schedule.at(world.unix_time)  # a phone holds today's key even before its 1st advert
        keys = [
            DiagnosisKey(t.key_data, t.rolling_start, t.rolling_period)
            for t in person.schedule.teks
        ]
        document = {"temporaryExposureKeys": publish_key_objects(keys)}
        (directory / f"{person.name}.json").write_text(json.dumps(document, indent=2) + "\n")
    click.echo(f"keys of {len(world.people)} people written to {directory}")


def _mac(value: int) -> str:
    return ":".join(f"{(value >> shift) & 0xFF:02X}" for shift in range(40, -1, -8))
