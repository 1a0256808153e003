"""The store-to-matcher glue: a planted contact is found, stored once and alertable."""

from __future__ import annotations

import os
from pathlib import Path

from bluezoned.exposure.keys import derive_aemk, encrypt_aem, interval_start, rpis_of
from bluezoned.matching import match_new_keys
from bluezoned.models import DiagnosisKey, Sighting, Tek
from bluezoned.store import Store

DAY = 2_833_056  # 2023-11-14 00:00 UTC, a multiple of 144
NOW = interval_start(DAY + 144) + 3600.0
METADATA = bytes([0x40, 0x08, 0x00, 0x00])  # version 1.0, TX power 8 dBm


def plant(store: Store, tek: Tek, first: int, count: int, rssi: int = -60) -> None:
    aemk = derive_aemk(tek.key_data)
    rpis = rpis_of(tek)
    sightings = []
    for interval in range(first, first + count):
        rpi = rpis[interval - tek.rolling_start]
        aem = encrypt_aem(aemk, rpi, METADATA)
        for second in range(0, 300, 30):
            sightings.append(Sighting(interval_start(interval) + second, rpi, aem, rssi))
    store.record_sightings(sightings)


def test_planted_contact_is_found_and_stored(tmp_path: Path) -> None:
    tek = Tek(os.urandom(16), DAY)
    stranger = Tek(os.urandom(16), DAY)
    with Store.open(tmp_path / "b.db") as store:
        plant(store, tek, DAY + 60, 3)
        keys = [DiagnosisKey(tek.key_data, DAY), DiagnosisKey(stranger.key_data, DAY)]
        (found,) = match_new_keys(store, keys, NOW)
        assert found.key_data == tek.key_data
        assert found.id is not None
        assert found.start == interval_start(DAY + 60)
        assert found.sightings == 30
        assert found.min_attenuation == 8 - (-60)
        assert found.duration_seconds > 0
        assert [e.id for e in store.exposures(unalerted_only=True)] == [found.id]
        assert match_new_keys(store, [], NOW) == []


def test_no_sightings_no_work(tmp_path: Path) -> None:
    with Store.open(tmp_path / "b.db") as store:
        assert match_new_keys(store, [DiagnosisKey(os.urandom(16), DAY)], NOW) == []
