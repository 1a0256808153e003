"""``bluezoned exposures``: each stored exposure with the engine's estimate, and the risk by day."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import click

from bluezoned.cli._common import (
    CONTEXT_SETTINGS,
    CliState,
    pass_state,
    risk_name,
    translate_errors,
    utc_text,
)
from bluezoned.const import SECONDS_PER_DAY
from bluezoned.store import ExposureRecord, Store
from bluezoned.verdict import Verdict, verdict


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object (see below).")
@pass_state
def exposures(state: CliState, as_json: bool) -> None:
    """List the contacts with diagnosed people this device found, and the risk by day.

    Each exposure shows when it was heard and two readings of it: the exposure engine's
    estimate of the minutes spent within its distance (with an 80 % interval) and its
    close-contact decision, and the Corona-Warn-App v2 rating. The overall risk is CWA's: each
    day's exposures are summed before the day is rated, as the app sums its windows. Opens the
    store read-only; without a store there is nothing to list.

    \b
    --json: {"risk": "high"|"low"|null, "close_contacts": N, "days": [...], "exposures": [...]}
      days[]       date (UTC), normalized_time (CWA minutes summed over the day's exposures),
                   risk ("high", "low" or null: under CWA's lowest day level)
      exposures[]  start, end (unix seconds), observed_minutes, sightings, min_attenuation (dB),
                   risk and normalized_time (CWA v2, this contact alone), distance_m and
                   threshold_minutes (the engine's rule), minutes_close, minutes_close_low,
                   minutes_close_high, close_contact, close_score (null for exposures found
                   before bluezoned kept the estimate), alerted (unix seconds or null)
    """
    database = state.database
    found: list[ExposureRecord] = []
    with translate_errors():
        if database.exists():
            with Store.open(database, read_only=True) as store:
                found = store.exposures()
    combined = verdict(found)
    report = _report(found, combined)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(_human(report))


def _report(found: list[ExposureRecord], combined: Verdict) -> dict[str, Any]:
    return {
        "risk": risk_name(combined.risk_level),
        "close_contacts": combined.close_contacts,
        "days": [
            {
                "date": _date(d.day),
                "normalized_time": d.normalized_time,
                "risk": risk_name(d.risk_level),
            }
            for d in combined.days
        ],
        "exposures": [
            {
                "start": e.start,
                "end": e.end,
                "observed_minutes": round(e.duration_seconds / 60.0, 2),
                "sightings": e.sightings,
                "min_attenuation": e.min_attenuation,
                "risk": risk_name(e.risk_level),
                "normalized_time": e.risk_score,
                "distance_m": e.distance_m,
                "threshold_minutes": e.threshold_minutes,
                "minutes_close": _round(e.minutes_close),
                "minutes_close_low": _round(e.minutes_close_low),
                "minutes_close_high": _round(e.minutes_close_high),
                "close_contact": e.close_contact,
                "close_score": _round(e.close_score, 3),
                "alerted": e.alerted_at,
            }
            for e in found
        ],
    }


def _human(r: dict[str, Any]) -> str:
    if not r["exposures"]:
        return "no exposure found"
    risk = (r["risk"] or "unscored").upper()
    lines = [
        f"{len(r['exposures'])} exposure(s) to a diagnosed person; overall risk {risk} "
        "(Corona-Warn-App v2, each day's exposures summed)"
    ]
    for e in r["exposures"]:
        lines.append(
            f"{utc_text(e['start'])} .. {utc_text(e['end'])}: heard {e['observed_minutes']:.1f} "
            f"min in {e['sightings']} sightings, min attenuation {e['min_attenuation']} dB"
        )
        if e["minutes_close"] is not None:
            decision = "CLOSE CONTACT" if e["close_contact"] else "not a close contact"
            lines.append(
                f"  engine: about {e['minutes_close']:.1f} min within {e['distance_m']:g} m "
                f"(80% {e['minutes_close_low']:.1f}-{e['minutes_close_high']:.1f}): {decision} "
                f"by its rule of {e['threshold_minutes']:g} min (score {e['close_score']:.2f})"
            )
        if e["risk"] is None:
            lines.append("  CWA v2: not scored (a report type CWA does not rate)")
        else:
            lines.append(
                f"  CWA v2: {e['risk'].upper()} on its own "
                f"(normalized time {e['normalized_time'] or 0.0:.1f} min)"
            )
    if r["days"]:
        lines.append("by day (UTC; CWA v2 normalized minutes summed over the day's exposures):")
        for d in r["days"]:
            rated = d["risk"].upper() if d["risk"] else "below LOW"
            lines.append(f"  {d['date']}  {d['normalized_time']:6.1f}  {rated}")
    return "\n".join(lines)


def _date(day: int) -> str:
    return dt.datetime.fromtimestamp(day * SECONDS_PER_DAY, dt.UTC).date().isoformat()


def _round(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(value, digits)
