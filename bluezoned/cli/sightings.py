"""``bluezoned sightings``: sightings held in the store (importing a capture from another device)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from bluezoned.cli._common import CONTEXT_SETTINGS, CliState, pass_state, translate_errors
from bluezoned.const import RETENTION_DAYS
from bluezoned.errors import InvalidInput
from bluezoned.files import FileTooLarge, read_bounded
from bluezoned.store import MAX_CAPTURE_BYTES, Store, parse_capture_bytes


@click.group(context_settings=CONTEXT_SETTINGS)
def sightings() -> None:
    """Sightings of Exposure Notification beacons held in the store."""


@sightings.command("import", context_settings=CONTEXT_SETTINGS)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")
@pass_state
def import_capture(state: CliState, file: Path, as_json: bool) -> None:
    """Replay a CSV capture FILE from another device into the store.

    FILE needs a header naming the columns t,rpi,aem,rssi (any order): unix seconds,
    16-byte RPI in hex, 4-byte AEM in hex, RSSI in dBm. A file with any bad line is refused
    as a whole (exit 4, each bad line named) and nothing is imported. Rows older than the
    retention window (relative to --now) are skipped and counted.
    """
    source = click.format_filename(file)
    with translate_errors():
        data = _read_capture(file, source)
        capture = parse_capture_bytes(data, now=state.current_time(), source=source)
        del data
        database = state.database
        with Store.open(database) as store:
            buckets = store.record_sightings(capture.sightings)
    if as_json:
        result = {
            "file": source,
            "database": str(database),
            "rows": capture.rows,
            "sightings": len(capture.sightings),
            "buckets": buckets,
            "skipped_old": capture.skipped_old,
        }
        click.echo(json.dumps(result, indent=2))
        return
    message = f"imported {len(capture.sightings)} sightings into {buckets} buckets"
    if capture.skipped_old:
        message += f" ({capture.skipped_old} rows older than {RETENTION_DAYS} days skipped)"
    click.echo(message)


def _read_capture(file: Path, source: str) -> bytes:
    """The file's bytes, refused before reading it all when it exceeds the capture bound."""
    try:
        return read_bounded(file, MAX_CAPTURE_BYTES, what="a capture")
    except FileTooLarge as exc:
        raise InvalidInput(
            f"{source}: larger than the {MAX_CAPTURE_BYTES} bytes a capture may have; split it"
        ) from exc
