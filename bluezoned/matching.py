"""Glue between the store and the pure engine: match pending key files, score each contact, store the exposures.

A composition module (like the daemon): it reads unmatched key files and sightings from the
store, hands arrays to ``exposure.matcher`` and ``exposure.contacts``/``exposure.risk`` and
writes one ``ExposureRecord`` per matched key, together with the matched keys and the files'
``matched_at``, in one store transaction (``Store.complete_matching``). It is resumable:
:func:`match_new_keys` matches every file the store holds as unmatched, so a run that crashed
between storing a file and matching it is finished by the next call (the sync worker calls it
at the start of every run; the daemon calls ``match_new_keys(store, now)`` at start-up).

Per exposure:

* RSSI is each 10-s bucket's ``rssi_max``: the engine's level and CWA v2's weighting both use
  the minimum attenuation, and the bucket maximum gives exactly the per-unit minimum, where
  the bucket mean would raise it by the fading inside the bucket.
* TX power is the decrypted AEM of each sighting; time is the bucket's first sighting.
* ``duration_seconds`` is the engine's observed duration: the seconds of observation units
  that hold a sighting (60-s slices when scanning densely, GAEN scan weights when sparse), not
  the first-to-last span (which counts the gaps) nor ``minutes_close`` (a path-loss estimate).
* ``risk_level`` is the Corona-Warn-App v2 result of the contact's exposure windows, with the
  key's report type, days since onset and TRL: 2 (HIGH) when CWA rates it HIGH, else 1 (LOW,
  also below CWA's own LOW threshold); None for a key whose report type CWA cannot score
  (e.g. revoked). ``risk_score`` is CWA's normalized time: TRL value times weighted minutes,
  summed over the windows (HIGH from 9 in one day). Each contact is scored alone here;
  ``cwa_days`` keeps its normalized time per UTC day, which ``verdict.py`` sums over all
  exposures as CWA sums a day's windows.
* ``minutes_close`` (with its 80 % interval), ``close_contact`` and ``close_score`` are the
  engine's estimate and decision for its rule (``distance_m``, ``threshold_minutes``): the
  configuration's ``[exposure]`` settings (:func:`engine_config`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace
from typing import Final

import numpy as np
import numpy.typing as npt

from bluezoned.config import ExposureSettings
from bluezoned.const import MATCH_PARALLEL_MIN_KEYS, RETENTION_DAYS, SECONDS_PER_DAY
from bluezoned.errors import InvalidInput, KeyFileRejected
from bluezoned.exposure.bulk import BACKEND_NUMBA, choose_backend
from bluezoned.exposure.contacts import (
    Contact,
    EngineConfig,
    analyze_contact,
    calibrated_config,
    exposure_windows,
)
from bluezoned.exposure.keyfile import PublishedKeys, all_keys, read_export_archive_unverified
from bluezoned.exposure.keys import interval_number
from bluezoned.exposure.matcher import (
    KeyArrays,
    KeyContact,
    MatchConfig,
    MatchResult,
    SightingArrays,
    match,
    match_parallel,
    select_keys,
)
from bluezoned.exposure.presets import (
    CWA_V2,
    INFECTIOUSNESS_NONE,
    INFECTIOUSNESS_STANDARD,
    PROXIMITY_CALIBRATIONS,
    CwaParameters,
)
from bluezoned.exposure.risk import (
    cwa_risk,
    key_window_metadata,
)
from bluezoned.models import DiagnosisKey, SightingBucket
from bluezoned.store import ExposureRecord, ProcessedFile, Store, StoredDiagnosisKey

__all__ = [
    "INFECTIOUSNESS_WHEN_ONSET_MISSING",
    "ContactScore",
    "engine_config",
    "match_new_keys",
    "score_contact",
]

_log = logging.getLogger(__name__)

FloatArray = npt.NDArray[np.float64]

DEFAULT_ENGINE: Final = EngineConfig()
DEFAULT_MATCH: Final = MatchConfig()

INFECTIOUSNESS_WHEN_ONSET_MISSING: Final = INFECTIOUSNESS_STANDARD
"""GAEN's ``infectiousnessWhenDaysSinceOnsetMissing`` for keys carrying neither days since
onset nor a decodable TRL: CWA maps them to NONE (window dropped), which would hide every
exposure from servers that publish bare keys; STANDARD scores them as an ordinary case."""


def engine_config(settings: ExposureSettings) -> EngineConfig:
    """The engine configuration of a configuration file's ``[exposure]`` settings."""
    config = replace(
        DEFAULT_ENGINE,
        distance_m=settings.distance_m,
        minutes=settings.minutes,
        rx_correction=settings.rx_correction,
    )
    if settings.calibration is None:
        return config
    return calibrated_config(
        PROXIMITY_CALIBRATIONS[settings.calibration], config, rx_model=settings.rx_model
    )


def match_new_keys(
    store: Store,
    now: float,
    parsed: Mapping[bytes, Sequence[DiagnosisKey]] | None = None,
    *,
    engine: EngineConfig = DEFAULT_ENGINE,
    params: CwaParameters = CWA_V2,
    match_config: MatchConfig = DEFAULT_MATCH,
) -> list[ExposureRecord]:
    """Match every unmatched key file (keys from ``parsed`` by SHA-256, else from its stored bytes); return the new exposures.

    Exposures, matched keys and the files' ``matched_at`` are stored in one transaction. A
    file is matched against the sightings of the retention window made before it was
    downloaded; sightings after that are replays.
    """
    files = store.unmatched_files()
    if not files:
        return []
    loaded = [(f, _keys_of(store, f, parsed or {})) for f in files]
    found: list[tuple[ExposureRecord, StoredDiagnosisKey]] = []
    if any(keys for _, keys in loaded):
        buckets = store.sighting_buckets(since=now - RETENTION_DAYS * SECONDS_PER_DAY)
        if buckets:
            found = _match(loaded, buckets, now, engine, params, match_config)
    ids = store.complete_matching(
        [f.sha256 for f in files], [k for _, k in found], [e for e, _ in found], now
    )
    return [replace(e, id=i) for (e, _), i in zip(found, ids, strict=True)]


@dataclass(frozen=True, slots=True)
class ContactScore:
    """One matched key's sightings as the engine and the CWA v2 rules see them."""

    contact: Contact
    """The engine's summary: observed minutes, attenuations, minutes within the configured
    distance with their interval, the close-contact decision and its score."""
    risk_level: int | None
    """CWA v2's level; None for a key whose report type CWA cannot score."""
    risk_score: float | None
    """CWA's normalized time summed over the contact's windows."""
    cwa_days: tuple[tuple[int, float], ...] = ()
    """(UTC day number, normalized time) of the contact's windows CWA kept, summed per day: the
    parts :func:`bluezoned.verdict.verdict` adds up across contacts."""


def score_contact(
    key: DiagnosisKey,
    t: FloatArray,
    rssi: FloatArray,
    tx_power: FloatArray,
    *,
    calibration_confidence: int = 0,
    engine: EngineConfig = DEFAULT_ENGINE,
    params: CwaParameters = CWA_V2,
) -> ContactScore:
    """The engine's summary and the CWA v2 risk of one key's sightings."""
    contact = analyze_contact(t, rssi, tx_power, config=engine)
    report_type, infectiousness = key_window_metadata(
        None if key.report_type is None else int(key.report_type),
        key.days_since_onset,
        key.transmission_risk_level,
        infectiousness_when_onset_missing=INFECTIOUSNESS_WHEN_ONSET_MISSING,
    )
    level: int | None = None
    score: float | None = None
    days: dict[int, float] = {}
    # GAEN hands no window of a NONE-infectiousness key to the app (protocol.md §7.3).
    windows = (
        ()
        if infectiousness == INFECTIOUSNESS_NONE
        else exposure_windows(
            t,
            rssi,
            tx_power,
            config=engine,
            report_type=report_type,
            infectiousness=infectiousness,
            calibration_confidence=calibration_confidence,
        )
    )
    try:
        result = cwa_risk(windows, params)
    except InvalidInput:
        _log.info("a matched key of report type %s has no CWA risk", report_type)
    else:
        level = result.total_risk_level
        score = float(sum(w.normalized_time for w in result.windows if w is not None))
        for window, risk in zip(windows, result.windows, strict=True):
            if risk is not None:
                days[window.day] = days.get(window.day, 0.0) + risk.normalized_time
    return ContactScore(contact, level, score, tuple(sorted(days.items())))


def _keys_of(
    store: Store, file: ProcessedFile, parsed: Mapping[bytes, Sequence[DiagnosisKey]]
) -> Sequence[DiagnosisKey]:
    keys = parsed.get(file.sha256)
    if keys is not None:
        return keys
    data = store.pending_key_file_data(file.sha256)
    if data is None:
        _log.warning("key file %s: no stored bytes to match; marking it matched", file.name)
        return ()
    try:
        # Verified before it was stored; the store is the device's own (mode 0600).
        export = read_export_archive_unverified(data)
    except KeyFileRejected as exc:
        _log.warning(
            "key file %s: stored bytes unreadable (%s); marking it matched", file.name, exc
        )
        return ()
    return all_keys(export)


def _match(
    loaded: Sequence[tuple[ProcessedFile, Sequence[DiagnosisKey]]],
    buckets: Sequence[SightingBucket],
    now: float,
    engine: EngineConfig,
    params: CwaParameters,
    match_config: MatchConfig,
) -> list[tuple[ExposureRecord, StoredDiagnosisKey]]:
    counts = [len(file_keys) for _, file_keys in loaded]
    owner = np.repeat(np.arange(len(loaded)), counts)
    first = np.cumsum([0, *counts])
    columns = [_key_columns(file_keys) for _, file_keys in loaded]
    published = KeyArrays(
        key_data=np.concatenate([c[0] for c in columns]),
        rolling_start=np.concatenate([c[1] for c in columns]),
        rolling_period=np.concatenate([c[2] for c in columns]),
        published_at=np.repeat(np.array([f.processed_at for f, _ in loaded]), counts),
    )
    sightings = SightingArrays.from_buckets(buckets)
    keep = np.flatnonzero(
        select_keys(
            published,
            now_interval=interval_number(now),
            oldest_sighting_interval=interval_number(float(sightings.t.min())),
        )
    )
    if keep.size == 0:
        return []
    result = _run_match(published.subset(keep), sightings, match_config)
    found = []
    for contact in result.contacts():
        index = int(keep[contact.key_index])
        file, file_keys = loaded[int(owner[index])]
        key = file_keys[index - int(first[owner[index]])]
        record = _exposure(key, contact, buckets, now, engine, params)
        found.append((record, StoredDiagnosisKey(key, file.source, file.sha256, now)))
    return found


def _key_columns(
    keys: Sequence[DiagnosisKey],
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """A file's key bytes, first intervals and periods: read off a parsed file, else built."""
    if isinstance(keys, PublishedKeys):
        return keys.key_data, keys.rolling_start, keys.rolling_period
    built = KeyArrays.from_keys(keys)
    return built.key_data, built.rolling_start, built.rolling_period


def _run_match(keys: KeyArrays, sightings: SightingArrays, config: MatchConfig) -> MatchResult:
    workers = os.cpu_count() or 1
    # The numba kernel releases the GIL, so threads use every core without pickling.
    if (
        workers > 1
        and len(keys) >= MATCH_PARALLEL_MIN_KEYS
        and choose_backend(len(keys), config.backend) == BACKEND_NUMBA
    ):
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return match_parallel(keys, sightings, config, executor=pool, tasks=workers)
    return match(keys, sightings, config)


def _exposure(
    key: DiagnosisKey,
    contact: KeyContact,
    buckets: Sequence[SightingBucket],
    now: float,
    engine: EngineConfig,
    params: CwaParameters,
) -> ExposureRecord:
    hit = [buckets[int(i)] for i in contact.sighting_index]
    scored = score_contact(
        key,
        np.array([b.first_seen for b in hit], dtype=np.float64),
        np.array([b.rssi_max for b in hit], dtype=np.float64),
        contact.tx_power.astype(np.float64),
        calibration_confidence=int(contact.calibration_confidence.max(initial=0)),
        engine=engine,
        params=params,
    )
    interval = scored.contact.minutes_within[engine.distance_m]
    return ExposureRecord(
        key_data=key.key_data,
        rolling_start=key.rolling_start,
        start=min(b.first_seen for b in hit),
        end=max(b.last_seen for b in hit),
        duration_seconds=scored.contact.observed_minutes * 60.0,
        sightings=sum(b.count for b in hit),
        created=now,
        min_attenuation=round(scored.contact.min_att),
        risk_level=scored.risk_level,
        risk_score=scored.risk_score,
        distance_m=engine.distance_m,
        threshold_minutes=scored.contact.decision_threshold,
        minutes_close=scored.contact.minutes_close,
        minutes_close_low=interval[1],
        minutes_close_high=interval[2],
        close_contact=scored.contact.tc4tl,
        close_score=scored.contact.score,
        cwa_days=scored.cwa_days if scored.risk_level is not None else None,
    )
