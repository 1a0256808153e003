"""World.run_until (a bounded run stopping exactly at the requested time) and NRPAs."""

from __future__ import annotations

from bluezoned.sim.bluez import SimulatedBluez
from bluezoned.sim.world import World


async def test_run_until_stops_exactly_and_caps_each_step(bluez: SimulatedBluez) -> None:
    world = World(bluez, devices=3, seed=2, start_time=1_700_000_000.0, speed=1000.0, static=True)
    steps: list[float] = []
    advance = world.advance

    def recording(dt: float) -> int:
        steps.append(dt)
        return advance(dt)

    world.advance = recording  # type: ignore[method-assign]
    await world.run_until(30.0, max_step_s=4.0)
    assert world.now == 30.0
    assert steps
    assert max(steps) <= 4.0
    assert world.stats.adverts >= 3 * 30 / 0.27  # every person advertised all along
    await world.run_until(30.0)  # already there: returns at once
    assert world.now == 30.0


def test_nrpa_has_top_bits_00_and_never_a_forbidden_random_part() -> None:
    from bluezoned.sim.bluez import nrpa

    assert nrpa(bytes([0xFF, 1, 2, 3, 4, 5])) == "3F:01:02:03:04:05"
    assert nrpa(bytes(6)) == "00:00:00:00:00:01"
    assert nrpa(bytes([0xC0] + [0xFF] * 5)) == "00:FF:FF:FF:FF:01"
