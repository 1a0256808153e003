"""Radio throughput: adverts/s from the bleak detection callback into the aggregator and store.

1. In-process: the scanner's real detection callback fed bleak ``AdvertisementData`` objects
   (500 devices, rotating RPIs), then queue drain, aggregator and ``Store.add_buckets``; the
   baseline, in the same run, is a loop handing the same objects to a no-op callback.
2. End to end: the simulated BlueZ (``bluezoned.sim``) on a private dbus-daemon injects
   adverts carrying 0xFD6F service data; they travel BlueZ -> D-Bus -> bleak -> scanner ->
   aggregator -> store, and the CPU time of this process (``resource.getrusage``, which
   includes the simulator in-process) and of the dbus-daemon is reported per advert.

Both are compared with the border-kiosk load: 500 devices x 4 adverts/s = 2,000 adverts/s.
Run: ``python bench/bench_radio.py [--adverts N] [--e2e-seconds S] [--json]``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bleak.backends.device import BLEDevice
from bleak.backends.scanner import AdvertisementData

from bluezoned.ble.aggregator import Aggregator, Writer
from bluezoned.ble.scanner import BleakSightingScanner
from bluezoned.ble.tasks import cancel_and_wait
from bluezoned.const import EN_SERVICE_UUID, SECONDS_PER_INTERVAL
from bluezoned.models import SightingBucket
from bluezoned.sim.bus import PrivateSystemBus, find_dbus_daemon
from bluezoned.store import Store

KIOSK_DEVICES = 500
KIOSK_ADVERTS_PER_DEVICE = 4.0
KIOSK_RATE = KIOSK_DEVICES * KIOSK_ADVERTS_PER_DEVICE
PI_SLOWDOWN = (4.0, 6.0)
"""Assumed per-core slowdown of a Raspberry Pi-class CPU against this machine."""


def _rpi(device: int, t: float) -> bytes:
    return hashlib.blake2b(
        f"{device}:{int(t) // SECONDS_PER_INTERVAL}".encode(), digest_size=16
    ).digest()


def make_adverts(n: int, t0: float) -> list[tuple[BLEDevice, AdvertisementData]]:
    """``n`` adverts from KIOSK_DEVICES devices, 4 per device per second of simulated time."""
    out = []
    for i in range(n):
        device = i % KIOSK_DEVICES
        t = t0 + i / KIOSK_RATE
        address = f"3A:00:00:00:{device >> 8:02X}:{device & 0xFF:02X}"
        props: dict[str, Any] = {"Address": address, "RSSI": -60 - device % 30}
        adv = AdvertisementData(
            local_name=None,
            manufacturer_data={},
            service_data={EN_SERVICE_UUID: _rpi(device, t) + b"\x40\x08\x00\x00"},
            service_uuids=[EN_SERVICE_UUID],
            tx_power=None,
            rssi=props["RSSI"],
            platform_data=(f"/org/bluez/hci0/dev_{address.replace(':', '_')}", props),
        )
        out.append((BLEDevice(address, None, {}), adv))
    return out


def _pipeline(
    adverts: list[tuple[BLEDevice, AdvertisementData]], t0: float, writer: Writer | None
) -> tuple[float, int]:
    """Feed the scanner's real callback; with a writer, drain into an aggregator every 1000."""
    now = [t0]
    scanner = BleakSightingScanner("hci0", queue_size=10_000, clock=lambda: now[0])
    callback = scanner._callback(scanner._generation)  # the exact function bleak calls
    aggregator = Aggregator(writer) if writer is not None else None
    start = time.perf_counter()
    for i, (device, adv) in enumerate(adverts):
        now[0] = t0 + i / KIOSK_RATE
        callback(device, adv)
        if i % 1000 == 999:
            batch = scanner.drain()
            if aggregator is not None:
                aggregator.add_many(batch)
                aggregator.tick(now[0])
    if aggregator is not None:
        aggregator.add_many(scanner.drain())
        aggregator.flush()
    elapsed = time.perf_counter() - start
    if scanner.stats.accepted != len(adverts):
        raise RuntimeError(f"only {scanner.stats.accepted} of {len(adverts)} adverts accepted")
    return elapsed, aggregator.stats.buckets_written if aggregator is not None else 0


def in_process(n: int, store_dir: Path, repeats: int = 3) -> dict[str, float]:
    """Adverts/s (best of ``repeats``) through the callback, + aggregator, + store; no-op baseline."""
    t0 = 1_795_953_600.0
    adverts = make_adverts(n, t0)

    def noop(_device: BLEDevice, _adv: AdvertisementData) -> None:
        return None

    def baseline() -> float:
        start = time.perf_counter()
        for device, adv in adverts:
            noop(device, adv)
        return time.perf_counter() - start

    def null_writer(_batch: list[SightingBucket]) -> None:
        return None

    results: dict[str, float] = {}
    results["baseline_noop_per_s"] = n / min(baseline() for _ in range(repeats))
    results["callback_per_s"] = n / min(_pipeline(adverts, t0, None)[0] for _ in range(repeats))
    results["callback_aggregator_per_s"] = n / min(
        _pipeline(adverts, t0, null_writer)[0] for _ in range(repeats)
    )
    best = float("inf")
    for r in range(repeats):
        with Store.open(store_dir / f"bench-{r}.db") as store:
            elapsed, rows = _pipeline(adverts, t0, store.add_buckets)
            best = min(best, elapsed)
    results["callback_aggregator_store_per_s"] = n / best
    results["rows_written"] = float(rows)
    return results


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) used so far by process ``pid``, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


SIM_CHILD = """
import asyncio, hashlib, json, resource, sys, time
from bluezoned.sim.bluez import AdapterConfig, SimulatedBluez, en_report

async def main(rate, seconds, devices):
    sim = SimulatedBluez(adapters=[AdapterConfig()], temporary_timeout=3600, max_devices=100_000)
    await sim.start()
    print("READY", flush=True)
    while not sim.discovery_clients("hci0"):
        await asyncio.sleep(0.01)
    tick, sent = 0.005, 0
    t0 = time.perf_counter()
    while (elapsed := time.perf_counter() - t0) < seconds:
        due = int(elapsed * rate)
        while sent < due:
            d = sent % devices
            rpi = hashlib.blake2b(d.to_bytes(4, "big"), digest_size=16).digest()
            address = f"3A:00:00:00:{d >> 8:02X}:{d & 0xFF:02X}"
            sim.report("hci0", en_report(address, rpi + bytes.fromhex("40080000"), -60 - d % 30, flags=None))
            sent += 1
        await asyncio.sleep(tick)
    wall = time.perf_counter() - t0
    u = resource.getrusage(resource.RUSAGE_SELF)
    print(json.dumps({"sent": sent, "wall": wall, "sim_cpu": u.ru_utime + u.ru_stime,
                      "kept": sim.stats["reports_kept"]}), flush=True)
    await asyncio.sleep(1.0)
    await sim.stop()

asyncio.run(main(float(sys.argv[1]), float(sys.argv[2]), int(sys.argv[3])))
"""


async def end_to_end_run(
    rate: float, seconds: float, store_dir: Path, bus_pid: int
) -> dict[str, float]:
    """One run: a simulated bluetoothd (child process) sends ``rate`` adverts/s to our scanner."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        SIM_CHILD,
        str(rate),
        str(seconds),
        str(KIOSK_DEVICES),
        stdout=asyncio.subprocess.PIPE,
    )
    assert child.stdout is not None
    if (await child.stdout.readline()).strip() != b"READY":
        raise RuntimeError("simulated BlueZ did not start")
    with Store.open(store_dir / f"e2e-{rate:.0f}.db") as store:
        aggregator = Aggregator(store.add_buckets)
        scanner = BleakSightingScanner("hci0", mode="active", queue_size=10_000)
        stop = await scanner.start()

        async def consume() -> None:
            last_tick = time.time()
            while True:
                aggregator.add(await scanner.get())
                aggregator.add_many(scanner.drain())
                now = time.time()
                if now - last_tick >= 1.0:
                    aggregator.tick(now)
                    last_tick = now

        consumer = asyncio.create_task(consume())
        cpu0, bus0, wall0 = _cpu(), _proc_cpu(bus_pid), time.perf_counter()
        line = await child.stdout.readline()
        sim = json.loads(line)
        previous = -1
        while scanner.stats.received != previous:  # let the backlog drain
            previous = scanner.stats.received
            await asyncio.sleep(0.2)
        wall = time.perf_counter() - wall0
        cpu, bus_cpu = _cpu() - cpu0, _proc_cpu(bus_pid) - bus0
        await cancel_and_wait(consumer)
        await stop()
        aggregator.add_many(scanner.drain())
        aggregator.flush()
        await child.wait()
        stats = scanner.stats
        return {
            "offered_per_s": sim["sent"] / sim["wall"],
            "delivered_per_s": stats.received / wall,
            "delivered_fraction": stats.received / max(1, sim["sent"]),
            "sightings": float(aggregator.stats.sightings),
            "rows_written": float(aggregator.stats.buckets_written),
            "overflow": float(stats.overflow),
            "daemon_cpu_share_of_one_core": cpu / wall,
            "daemon_cpu_us_per_advert": 1e6 * cpu / max(1, stats.received),
            "dbus_daemon_cpu_share": bus_cpu / wall,
            "sim_bluetoothd_cpu_share": sim["sim_cpu"] / sim["wall"],
        }


async def end_to_end(seconds: float, store_dir: Path, rates: list[float]) -> dict[str, Any] | None:
    """Adverts/s and CPU share from the simulated BlueZ through D-Bus and bleak into the store."""
    if find_dbus_daemon() is None:
        return None
    bus = PrivateSystemBus()
    bus.start()
    try:
        pid = bus._proc.pid if bus._proc is not None else 0  # the daemon's CPU is reported too
        return {
            f"{rate:.0f}/s": await end_to_end_run(rate, seconds, store_dir, pid) for rate in rates
        }
    finally:
        bus.stop()


def report(results: dict[str, Any]) -> str:
    """Human-readable summary with headroom over the kiosk load and a Pi-class estimate."""
    lines = []
    ip = results["in_process"]
    lines.append(
        f"in-process, {results['adverts']:,} adverts (kiosk load = {KIOSK_RATE:,.0f} adverts/s):"
    )
    for key in (
        "baseline_noop_per_s",
        "callback_per_s",
        "callback_aggregator_per_s",
        "callback_aggregator_store_per_s",
    ):
        rate = ip[key]
        lines.append(
            f"  {key:34s} {rate:12,.0f}/s  headroom x{rate / KIOSK_RATE:8.1f}"
            f"  Pi-class ~{rate / PI_SLOWDOWN[1]:,.0f}-{rate / PI_SLOWDOWN[0]:,.0f}/s"
        )
    e2e = results.get("end_to_end")
    if e2e:
        lines.append("end to end (simulated bluetoothd process -> dbus-daemon -> bleak -> store):")
        for offered, run in e2e.items():
            lines.append(f"  offered {offered}:")
            for key, value in run.items():
                lines.append(f"    {key:32s} {value:12,.3f}")
            share = run["daemon_cpu_share_of_one_core"]
            if run["delivered_fraction"] > 0.99 and share > 0:
                ceiling = run["delivered_per_s"] / share
                lines.append(
                    f"    => one core would carry ~{ceiling:,.0f} adverts/s"
                    f" (x{ceiling / KIOSK_RATE:.1f} the kiosk load);"
                    f" Pi-class ~{ceiling / PI_SLOWDOWN[1]:,.0f}-{ceiling / PI_SLOWDOWN[0]:,.0f}/s"
                )
    elif e2e is None:
        lines.append("end to end: not run (dbus-daemon is not installed)")
    else:
        lines.append("end to end: no rates given")
    return "\n".join(lines)


def main() -> None:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--adverts", type=int, default=100_000)
    parser.add_argument("--e2e-seconds", type=float, default=5.0)
    parser.add_argument("--rates", type=float, nargs="*", default=[KIOSK_RATE, 4 * KIOSK_RATE])
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        results: dict[str, Any] = {"adverts": args.adverts, "cpu_count": os.cpu_count()}
        results["in_process"] = in_process(args.adverts, Path(tmp))
        results["end_to_end"] = asyncio.run(end_to_end(args.e2e_seconds, Path(tmp), args.rates))
    print(json.dumps(results, indent=2) if args.json else report(results))


if __name__ == "__main__":
    main()
