"""Glue between the store and the pure matcher: match newly downloaded keys, store the exposures.

A composition module (like the daemon): it reads sightings from the store, hands arrays to
``exposure.matcher`` and writes one ``ExposureRecord`` per matched key and contact. It has
the signature of ``sync.worker.MatchNewKeys``. Risk scoring is left to the risk engine:
``risk_level`` stays None here.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bluezoned.const import RETENTION_DAYS, SECONDS_PER_DAY
from bluezoned.exposure.keys import interval_number
from bluezoned.exposure.matcher import KeyArrays, SightingArrays, match, select_keys
from bluezoned.models import DiagnosisKey
from bluezoned.store import ExposureRecord, Store

__all__ = ["match_new_keys"]


def match_new_keys(store: Store, keys: Sequence[DiagnosisKey], now: float) -> list[ExposureRecord]:
    """Match ``keys`` against the stored sightings of the retention window; store and return the exposures."""
    if not keys:
        return []
    buckets = store.sighting_buckets(since=now - RETENTION_DAYS * SECONDS_PER_DAY)
    if not buckets:
        return []
    sightings = SightingArrays.from_buckets(buckets)
    # Sightings after the download cannot come from the key's owner: treat them as replays.
    all_keys = KeyArrays.from_keys(keys, published_at=now)
    keep = np.flatnonzero(
        select_keys(
            all_keys,
            now_interval=interval_number(now),
            oldest_sighting_interval=interval_number(float(sightings.t.min())),
        )
    )
    if keep.size == 0:
        return []
    result = match(all_keys.subset(keep), sightings)
    found: list[ExposureRecord] = []
    for contact in result.contacts():
        key = keys[int(keep[contact.key_index])]
        hit = [buckets[int(i)] for i in contact.sighting_index]
        attenuations = [
            int(tx) - b.rssi_max for tx, b in zip(contact.tx_power.tolist(), hit, strict=True)
        ]
        record = ExposureRecord(
            key_data=key.key_data,
            rolling_start=key.rolling_start,
            start=min(b.first_seen for b in hit),
            end=max(b.last_seen for b in hit),
            duration_seconds=float(len({b.bucket for b in hit}) * store.bucket_seconds),
            sightings=sum(b.count for b in hit),
            created=now,
            min_attenuation=min(attenuations) if attenuations else None,
        )
        record_id = store.add_exposure(record)
        found.append(
            ExposureRecord(
                record.key_data,
                record.rolling_start,
                record.start,
                record.end,
                record.duration_seconds,
                record.sightings,
                record.created,
                record.min_attenuation,
                id=record_id,
            )
        )
    return found
