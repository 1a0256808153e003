"""Stored exposures combined per day as the Corona-Warn-App combines its windows."""

from __future__ import annotations

import pytest

from bluezoned.exposure.presets import CWA_V2, RISK_HIGH, RISK_LOW
from bluezoned.exposure.risk import cwa_day_totals
from bluezoned.store import ExposureRecord
from bluezoned.verdict import verdict

DAY = 20_400


def record(
    cwa_days: tuple[tuple[int, float], ...] | None,
    risk: int | None = RISK_LOW,
    close: bool | None = None,
) -> ExposureRecord:
    return ExposureRecord(
        bytes(16),
        2_937_600,
        0.0,
        600.0,
        600.0,
        20,
        0.0,
        risk_level=risk,
        cwa_days=cwa_days,
        close_contact=close,
    )


def test_day_totals_sum_parts_per_day_and_map_them() -> None:
    totals = cwa_day_totals([(DAY + 1, 4.0), (DAY, 3.0), (DAY + 1, 5.0), (DAY, 1.0)], CWA_V2)
    assert [(t.day, t.normalized_time, t.risk_level) for t in totals] == [
        (DAY, 4.0, None),  # under CWA v2's 5 minutes: no level
        (DAY + 1, 9.0, RISK_HIGH),
    ]
    assert cwa_day_totals([]) == ()


def test_contacts_add_up_within_a_day_not_across_days() -> None:
    same_day = verdict([record(((DAY, 7.0),)), record(((DAY, 6.0),), close=True)])
    assert same_day.risk_level == RISK_HIGH
    assert same_day.days_high == 1
    assert same_day.close_contacts == 1
    apart = verdict([record(((DAY, 7.0),)), record(((DAY + 1, 6.0),))])
    assert apart.risk_level == RISK_LOW
    assert [d.risk_level for d in apart.days] == [RISK_LOW, RISK_LOW]
    # a contact spanning midnight adds to both days
    spanning = verdict([record(((DAY, 2.0), (DAY + 1, 2.0))), record(((DAY + 1, 5.0),))])
    assert [(d.day, d.normalized_time) for d in spanning.days] == [(DAY, 2.0), (DAY + 1, 7.0)]
    assert spanning.risk_level == RISK_LOW


def test_unscored_and_older_exposures() -> None:
    assert verdict([]).risk_level is None
    # a key CWA cannot score (e.g. revoked) counts as no risk at all
    assert verdict([record(None, risk=None)]).risk_level is None
    # scored, but every window dropped: LOW, as CWA's total is
    assert verdict([record(())]).risk_level == RISK_LOW
    # stored before day shares existed: its own level counts
    older = verdict([record(None, risk=RISK_HIGH), record(((DAY, 1.0),))])
    assert older.risk_level == RISK_HIGH
    assert older.days_high == 0


@pytest.mark.parametrize("parts", [((DAY, 8.999),), ((DAY, 4.5), (DAY, 4.499))])
def test_just_under_the_day_threshold_is_low(parts: tuple[tuple[int, float], ...]) -> None:
    assert verdict([record(parts)]).risk_level == RISK_LOW
