"""A virtual phone's key schedule and movement (pure, no bus)."""

from __future__ import annotations

import numpy as np

from bluezoned.exposure.keys import (
    decrypt_aem,
    derive_aemk,
    derive_rpik,
    interval_number,
    rpi_interval,
    unpack_metadata,
)
from bluezoned.sim.world import BeaconSchedule, Walker

T0 = 1_700_000_000.0  # a Tuesday, 22:13 UTC


def test_rpi_and_address_rotate_together_every_10_to_20_minutes() -> None:
    schedule = BeaconSchedule(np.random.default_rng(0), tx_power=-20)
    changes = []
    previous = schedule.at(T0)
    for step in range(1, 6 * 3600):  # six hours, second by second
        beacon = schedule.at(T0 + step)
        if beacon.rpi != previous.rpi or beacon.address != previous.address:
            assert beacon.rpi != previous.rpi
            assert beacon.address != previous.address
            changes.append(step)
        previous = beacon
    gaps = np.diff([0, *changes])
    assert gaps.min() >= 600
    assert gaps.max() <= 1200
    assert int(beacon.address[:2], 16) >> 6 == 0  # non-resolvable private address


def test_beacons_decrypt_under_the_phones_own_keys() -> None:
    schedule = BeaconSchedule(np.random.default_rng(1), tx_power=-12)
    for t in (T0, T0 + 3 * 3600, T0 + 26 * 3600):  # crosses two UTC midnights
        beacon = schedule.at(t)
        tek = schedule.teks[-1]
        assert rpi_interval(derive_rpik(tek.key_data), beacon.rpi) == interval_number(t)
        metadata = unpack_metadata(decrypt_aem(derive_aemk(tek.key_data), beacon.rpi, beacon.aem))
        assert metadata.tx_power == -12
        assert len(beacon.service_data) == 20
    assert len(schedule.teks) == 3
    assert schedule.teks[1].rolling_period == 144 - 7  # made at 01:13 UTC, valid to midnight


def test_walker_stays_in_the_room_and_moves_at_walking_speed() -> None:
    walker = Walker(np.random.default_rng(2), (10.0, 8.0), pause_s=(0.0, 1.0))
    points = [walker.position(t * 0.5) for t in range(2_000)]
    xs, ys = np.array(points).T
    assert 0 <= xs.min() <= xs.max() <= 10
    assert 0 <= ys.min() <= ys.max() <= 8
    steps = np.hypot(np.diff(xs), np.diff(ys)) / 0.5
    assert steps.max() <= 1.2 + 1e-9
    assert steps.mean() > 0.1


def test_static_walker_does_not_move() -> None:
    walker = Walker(np.random.default_rng(3), (10.0, 8.0), static=True)
    assert walker.position(0.0) == walker.position(1e6)
