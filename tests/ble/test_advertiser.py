"""The BlueZ advertiser against the simulated bluetoothd on a private system bus."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from bluezoned.ble.bluez import defs
from bluezoned.ble.bluez.advertiser import BluezAdvertiser
from bluezoned.ble.supervision import RotationPolicy
from bluezoned.const import BLUEZONE_SERVICE_UUID, EN_SERVICE_UUID
from bluezoned.errors import AdvertisementRejected, BluetoothUnavailable, BluetoothUnavailableReason
from bluezoned.sim.bluez import AdapterConfig, SimulatedBluez
from tests.ble._helpers import CountingPayload
from tests.fixtures_bluez import HCI0_ADDRESS, wait_until

SLOW = RotationPolicy(3600, 3600)
FAST = RotationPolicy(0.05, 0.1)


def _advertiser(payload: CountingPayload, **kw: object) -> BluezAdvertiser:
    kw.setdefault("rotation", SLOW)
    kw.setdefault("call_timeout", 2.0)
    kw.setdefault("retry_base", 0.02)
    kw.setdefault("retry_cap", 0.2)
    return BluezAdvertiser("hci0", payload, **kw)  # type: ignore[arg-type]


def registered_now(adv: BluezAdvertiser) -> bool:
    """The advertiser's registration state, read afresh."""
    return adv.stats.registered


async def test_registers_a_28_byte_broadcast_beacon_and_unregisters(bluez: SimulatedBluez) -> None:
    payload = CountingPayload()
    adv = _advertiser(payload, clock=lambda: 1_800_000_000.0)
    stop = await adv.start()
    (registered,) = bluez.advertisements("hci0")
    assert payload.calls[0] == 1_800_000_000.0
    props = registered.properties
    assert props["Type"] == "broadcast"
    assert props["ServiceUUIDs"] == [EN_SERVICE_UUID]
    assert props["ServiceData"] == {EN_SERVICE_UUID: adv.service_data}
    assert "LocalName" not in props
    assert "Includes" not in props
    assert len(registered.ad) == 28
    assert registered.ad[:4] == bytes.fromhex("03036ffd")
    assert registered.ad[4:8] == bytes.fromhex("17166ffd")
    assert registered.ad[8:] == adv.service_data
    assert adv.stats.registered
    assert adv.stats.active_instances == 1
    assert adv.adapter == "hci0"
    # exported before registering: bluetoothd's GetAll came back before the reply
    assert any(c.member == defs.REGISTER_ADVERTISEMENT for c in bluez.calls)
    await stop()
    assert bluez.advertisements() == []
    assert not registered_now(adv)  # a call: mypy keeps no narrowing across the await
    await stop()  # idempotent


async def test_adapter_selected_by_mac(bluez: SimulatedBluez) -> None:
    adv = BluezAdvertiser(HCI0_ADDRESS.lower(), CountingPayload(), rotation=SLOW)
    stop = await adv.start()
    try:
        assert adv.adapter == "hci0"
        assert len(bluez.advertisements("hci0")) == 1
    finally:
        await stop()


async def test_rotation_changes_payload_and_address_together(bluez: SimulatedBluez) -> None:
    payload = CountingPayload()
    adv = _advertiser(payload, rotation=FAST)
    stop = await adv.start()
    try:
        seen: list[tuple[str, bytes]] = []

        def record() -> bool:
            ads = bluez.advertisements("hci0")
            if ads and (not seen or seen[-1] != (ads[0].address, ads[0].ad)):
                seen.append((ads[0].address, ads[0].ad))
            return adv.stats.rotations >= 3

        await wait_until(record, what="three rotations")
        # never a payload change without an address change, nor the reverse
        addresses = [a for a, _ in seen]
        payloads = [p for _, p in seen]
        assert len(set(addresses)) == len(addresses)
        assert len(set(payloads)) == len(payloads)
        assert len(bluez.advertisements("hci0")) == 1
        # rotated by re-registering, never refreshed in place
        assert all(len(a.history) == 1 for a in bluez.advertisements())
    finally:
        await stop()
    assert bluez.advertisements() == []


async def test_bluezone_legacy_mode_adds_a_second_advert(bluez: SimulatedBluez) -> None:
    adv = _advertiser(CountingPayload(), bluezone=lambda now: b"BZ" + bytes(10))
    stop = await adv.start()
    try:
        ads = {tuple(a.properties["ServiceUUIDs"]): a for a in bluez.advertisements("hci0")}
        assert set(ads) == {(EN_SERVICE_UUID,), (BLUEZONE_SERVICE_UUID,)}
        legacy = ads[(BLUEZONE_SERVICE_UUID,)]
        assert legacy.properties["ManufacturerData"] == {0x22B5: b"BZ" + bytes(10)}
        assert len(legacy.ad) == 20
    finally:
        await stop()
    assert bluez.advertisements() == []


@pytest.mark.parametrize(
    "error", [defs.ERROR_FAILED, defs.ERROR_INVALID_LENGTH, defs.ERROR_NOT_PERMITTED]
)
async def test_rejected_registration_rolls_back(bluez: SimulatedBluez, error: str) -> None:
    bluez.fail_next("RegisterAdvertisement", error)
    adv = _advertiser(CountingPayload())
    with pytest.raises(AdvertisementRejected) as info:
        await adv.start()
    assert info.value.error_name == error
    assert adv.stats.failures[error] == 1
    assert bluez.advertisements() == []
    # nothing left behind: a fresh start works
    stop = await adv.start()
    assert len(bluez.advertisements()) == 1
    await stop()


async def test_no_free_instance_is_not_permitted(
    bluez_factory: Callable[..., Awaitable[SimulatedBluez]],
) -> None:
    bluez = await bluez_factory(adapters=[AdapterConfig(max_advertisements=1)])
    adv = _advertiser(CountingPayload(), bluezone=lambda now: bytes(12))
    with pytest.raises(AdvertisementRejected) as info:
        await adv.start()
    assert info.value.error_name == defs.ERROR_NOT_PERMITTED
    assert bluez.advertisements() == []  # the first instance was unregistered again


async def test_missing_adapter_is_unavailable(bluez: SimulatedBluez) -> None:
    adv = BluezAdvertiser("hci7", CountingPayload())
    with pytest.raises(BluetoothUnavailable) as info:
        await adv.start()
    assert info.value.reason is BluetoothUnavailableReason.NO_ADAPTER


async def test_release_on_adapter_removal_then_reregistration(bluez: SimulatedBluez) -> None:
    adv = _advertiser(CountingPayload())
    stop = await adv.start()
    try:
        config = bluez.remove_adapter("hci0")
        await wait_until(
            lambda: adv.stats.releases >= 1 and not adv.stats.registered, what="Release"
        )
        bluez.add_adapter(config)
        await wait_until(lambda: len(bluez.advertisements("hci0")) == 1, what="re-registration")
        assert adv.stats.recoveries == 1
        assert adv.stats.registered
    finally:
        await stop()
    assert bluez.advertisements() == []


@pytest.mark.parametrize("graceful", [False, True])
async def test_reregisters_after_bluetoothd_restart(bluez: SimulatedBluez, graceful: bool) -> None:
    payload = CountingPayload()
    adv = _advertiser(payload)
    stop = await adv.start()
    try:
        first = adv.service_data
        await bluez.restart(downtime=0.05, graceful=graceful)
        await wait_until(lambda: len(bluez.advertisements("hci0")) == 1, what="re-registration")
        assert adv.stats.recoveries >= 1
        # a new registration is a new address, so it carries a new payload too
        assert adv.service_data != first
    finally:
        await stop()


async def test_failed_rotation_is_retried(bluez: SimulatedBluez) -> None:
    adv = _advertiser(CountingPayload(), rotation=RotationPolicy(0.05, 0.05))
    stop = await adv.start()
    try:
        bluez.fail_next(
            "RegisterAdvertisement", defs.ERROR_FAILED, "Failed to parse advertisement."
        )
        await wait_until(lambda: adv.stats.failures[defs.ERROR_FAILED] == 1, what="the failure")
        await wait_until(
            lambda: adv.stats.recoveries >= 1 and adv.stats.registered, what="recovery"
        )
        assert len(bluez.advertisements("hci0")) == 1
    finally:
        await stop()
    assert bluez.advertisements() == []


async def test_powered_off_adapter_is_advertised_on_again_when_powered(
    bluez: SimulatedBluez,
) -> None:
    adv = _advertiser(CountingPayload())
    stop = await adv.start()
    try:
        # whether bluetoothd kept the registration or not, the advertiser re-asserts it
        bluez.set_powered("hci0", False)
        await wait_until(lambda: adv.stats.recoveries >= 1, what="a re-registration")
        bluez.set_powered("hci0", True)
        await wait_until(lambda: adv.stats.registered, what="registered")
        assert len(bluez.advertisements("hci0")) == 1
    finally:
        await stop()
