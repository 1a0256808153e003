"""``bluezoned status``: what the local store holds, read-only."""

from __future__ import annotations

import json
from pathlib import Path
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
from bluezoned.store import Store, StoreSummary
from bluezoned.verdict import Verdict, verdict


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--json", "as_json", is_flag=True, help="Print one flat JSON object (see below).")
@pass_state
def status(state: CliState, as_json: bool) -> None:
    """Show what the store holds: own keys, sightings, downloaded keys, exposures.

    Opens the store read-only; without a store it reports zeros and creates nothing.

    \b
    --json keys (times are unix seconds, null when there is nothing):
      state_dir, database      paths
      exists                   false when no store was created yet
      schema, schema_pending   applied / not yet applied migrations
      database_bytes           database file plus its write-ahead log
      bucket_seconds           sighting bucket width (null without a store)
      own_keys, own_keys_reported
      sighting_buckets, sightings (adverts), distinct_rpis
      first_sighting, last_sighting
      diagnosis_keys, processed_files
      exposures, exposures_unalerted
      exposures_high_risk      exposures the Corona-Warn-App v2 rules rate HIGH on their own
      days_high_risk           days whose exposures together CWA v2 rates HIGH
      risk                     "high", "low" or null (no exposure): the answer to "was I exposed?",
                               CWA v2's, which sums each day's exposures before rating the day
      close_contacts           exposures the engine decided were close contacts (its own rule;
                               `bluezoned exposures` lists them)
      last_exposure            end of the latest contact with a diagnosed person
      files_awaiting_match     key files downloaded but not matched yet (the next sync finishes them)
      now                      the time the report is for (--now or the clock)
    """
    now = state.current_time()
    database = state.database
    summary: StoreSummary | None = None
    combined: Verdict | None = None
    with translate_errors():
        if database.exists():
            with Store.open(database, read_only=True) as store:
                summary = store.summary(now)
                combined = verdict(store.exposures())
    report = _report(state.state_dir, database, summary, combined, now)
    if as_json:
        click.echo(json.dumps(report, indent=2))
    else:
        click.echo(_human(report))


def _report(
    state_dir: Path,
    database: Path,
    summary: StoreSummary | None,
    combined: Verdict | None,
    now: float,
) -> dict[str, Any]:
    """The flat JSON object; every key is present whether or not the store exists."""
    s = summary
    return {
        "state_dir": str(state_dir),
        "database": str(database),
        "exists": s is not None,
        "schema": s.schema_version if s else 0,
        "schema_pending": s.schema_pending if s else 0,
        "database_bytes": s.size_bytes if s else 0,
        "bucket_seconds": s.bucket_seconds if s else None,
        "own_keys": s.own_keys if s else 0,
        "own_keys_reported": s.own_keys_reported if s else 0,
        "sighting_buckets": s.sighting_buckets if s else 0,
        "sightings": s.sightings if s else 0,
        "distinct_rpis": s.distinct_rpis if s else 0,
        "first_sighting": s.first_sighting if s else None,
        "last_sighting": s.last_sighting if s else None,
        "diagnosis_keys": s.diagnosis_keys if s else 0,
        "processed_files": s.processed_files if s else 0,
        "exposures": s.exposures if s else 0,
        "exposures_unalerted": s.exposures_unalerted if s else 0,
        "exposures_high_risk": s.exposures_high_risk if s else 0,
        "days_high_risk": combined.days_high if combined else 0,
        "risk": risk_name(combined.risk_level) if combined else None,
        "close_contacts": combined.close_contacts if combined else 0,
        "last_exposure": s.last_exposure_end if s else None,
        "files_awaiting_match": s.files_awaiting_match if s else 0,
        "now": now,
    }


def _human(r: dict[str, Any]) -> str:
    if r["exists"]:
        database = f"{r['database']} ({_size(r['database_bytes'])}, schema {r['schema']})"
        if r["schema_pending"]:
            database += f"; {r['schema_pending']} migration(s) pending until the next write"
    else:
        database = f"{r['database']} (no store yet)"
    sightings = f"{r['sightings']} in {r['sighting_buckets']} buckets, {r['distinct_rpis']} RPIs"
    if r["first_sighting"] is not None:
        sightings += f", {utc_text(r['first_sighting'])} .. {utc_text(r['last_sighting'])}"
    if r["exposures"]:
        answer = f"EXPOSED: {r['exposures']} contact(s) with a diagnosed person"
        if r["risk"]:
            answer += f", {r['risk'].upper()} risk"
        answer += f"; the latest ended {utc_text(r['last_exposure'])}"
    else:
        answer = "no exposure found"
    files = f"{r['processed_files']} key files"
    if r["files_awaiting_match"]:
        files += f" ({r['files_awaiting_match']} awaiting matching)"
    lines = [
        ("exposure", answer),
        ("state dir", r["state_dir"]),
        ("database", database),
        ("own keys", f"{r['own_keys']} ({r['own_keys_reported']} reported)"),
        ("sightings", sightings),
        ("downloaded", f"{files}; {r['diagnosis_keys']} matched keys kept"),
        (
            "exposures",
            f"{r['exposures']} ({r['exposures_unalerted']} not yet alerted, "
            f"{r['close_contacts']} close by the engine's rule); `bluezoned exposures` lists them",
        ),
        ("now", utc_text(r["now"])),
    ]
    width = max(len(label) for label, _ in lines)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in lines)


def _size(n: int) -> str:
    size = float(n)
    for unit in ("B", "KiB", "MiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
