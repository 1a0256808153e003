"""The answer to "was I exposed?": stored exposures combined as the Corona-Warn-App combines them.

Matching scores each diagnosed key's contact alone and stores its share of CWA's per-day
normalized time (``ExposureRecord.cwa_days``). CWA decides on the *day*: the normalized time of
every window of a day, whoever sent it, is summed and mapped with the day levels (CWA v2: HIGH
from 9 minutes). Two 5-minute contacts on one day are HIGH together though each alone is LOW;
:func:`verdict` adds the stored shares up per day to give that answer. Exposures stored before
the shares existed (schema < 5) keep their own level.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bluezoned.exposure.presets import CWA_V2, RISK_HIGH, RISK_LOW, CwaParameters
from bluezoned.exposure.risk import DayTotal, cwa_day_totals
from bluezoned.store import ExposureRecord

__all__ = ["Verdict", "verdict"]


@dataclass(frozen=True, slots=True)
class Verdict:
    """The overall risk of a set of exposures and the days behind it."""

    risk_level: int | None
    """RISK_HIGH when any day is HIGH, else RISK_LOW, or the level of an exposure stored without
    day shares when that is higher; None when no exposure could be scored (none at all, or
    only keys CWA cannot score, such as revoked ones)."""
    days: tuple[DayTotal, ...]
    """CWA's per-day sums over all exposures, oldest day first (days with no share left out)."""
    close_contacts: int
    """Exposures the engine decided were close contacts under its own rule."""

    @property
    def days_high(self) -> int:
        """Days whose summed normalized time CWA rates HIGH."""
        return sum(d.risk_level == RISK_HIGH for d in self.days)


def verdict(exposures: Sequence[ExposureRecord], params: CwaParameters = CWA_V2) -> Verdict:
    """Combine ``exposures`` per UTC day with the CWA parameters ``params``."""
    shares = [share for e in exposures if e.cwa_days for share in e.cwa_days]
    days = cwa_day_totals(shares, params)
    levels = [e.risk_level for e in exposures if e.cwa_days is None and e.risk_level is not None]
    if any(e.cwa_days is not None for e in exposures):
        levels.append(RISK_HIGH if any(d.risk_level == RISK_HIGH for d in days) else RISK_LOW)
    level = max(levels) if levels else None
    return Verdict(level, days, sum(e.close_contact is True for e in exposures))
