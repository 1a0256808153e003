"""``bluezoned keys``: inspect the key schedule; export and upload own keys after a diagnosis."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys
from typing import Final

import click

from bluezoned.cli._common import (
    CONTEXT_SETTINGS,
    EXIT_USAGE,
    CliState,
    fail,
    pass_state,
    translate_errors,
)
from bluezoned.const import SECONDS_PER_INTERVAL, UPLOAD_DEFAULT_DAYS
from bluezoned.exposure import keys as schedule
from bluezoned.models import DiagnosisKey
from bluezoned.store import Store
from bluezoned.sync.upload import (
    finish_upload,
    keys_to_upload,
    publish_key_objects,
    upload_keys,
)

_CHUNK: Final = 144
MAX_DERIVE_COUNT: Final = 1_000_000


def parse_hex(value: str, length: int, option: str) -> bytes:
    """Hex text of exactly ``length`` bytes (case and a 0x prefix ignored) or a usage error."""
    text = value.strip().lower().removeprefix("0x")
    try:
        data = bytes.fromhex(text)
    except ValueError as exc:
        raise click.BadParameter(f"{value!r} is not hex", param_hint=option) from exc
    if len(data) != length:
        raise click.BadParameter(
            f"must be {length} bytes ({2 * length} hex digits), got {len(data)}", param_hint=option
        )
    return data


@click.group(context_settings=CONTEXT_SETTINGS)
def keys() -> None:
    """Temporary Exposure Keys and the identifiers derived from them."""


@keys.command(context_settings=CONTEXT_SETTINGS)
@click.option("--tek", "tek_hex", required=True, metavar="HEX", help="The 16-byte TEK in hex.")
@click.option(
    "--interval",
    type=click.IntRange(0, 2**32 - 1),
    required=True,
    metavar="ENIN",
    help="First ENIntervalNumber (unix seconds / 600).",
)
@click.option(
    "--count",
    type=click.IntRange(1, MAX_DERIVE_COUNT),
    default=1,
    show_default=True,
    help="How many consecutive intervals.",
)
@click.option(
    "--metadata", "metadata_hex", metavar="HEX", help="4 metadata bytes; adds the AEM column."
)
def derive(tek_hex: str, interval: int, count: int, metadata_hex: str | None) -> None:
    """Print ``ENIN RPI [AEM]`` for each interval, lowercase hex."""
    tek = parse_hex(tek_hex, 16, "--tek")
    metadata = parse_hex(metadata_hex, 4, "--metadata") if metadata_hex is not None else None
    if interval + count - 1 > 2**32 - 1:
        raise click.BadParameter("interval + count runs past 2^32-1", param_hint="--count")
    with translate_errors():
        rpik = schedule.derive_rpik(tek)
        aemk = schedule.derive_aemk(tek) if metadata is not None else None
        for first in range(interval, interval + count, _CHUNK):
            n = min(_CHUNK, interval + count - first)
            rpis = schedule.split_rpis(schedule.derive_rpis(rpik, first, n))
            lines = []
            for offset, rpi in enumerate(rpis):
                line = f"{first + offset} {rpi.hex()}"
                if aemk is not None and metadata is not None:
                    line += " " + schedule.encrypt_aem(aemk, rpi, metadata).hex()
                lines.append(line)
            click.echo("\n".join(lines))


@keys.command("export", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--days",
    type=click.IntRange(1, 30),
    default=UPLOAD_DEFAULT_DAYS,
    show_default=True,
    help="Keys valid during the last DAYS days.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the publish-API JSON form.")
@pass_state
def export(state: CliState, days: int, as_json: bool) -> None:
    """Print this device's own keys of the last DAYS days (the store is opened read-only).

    \b
    --json prints {"temporaryExposureKeys": [{"key", "rollingStartNumber", "rollingPeriod"}]},
    the form the publish API and `bluezoned authority publish --keys` take.
    """
    now = state.current_time()
    with translate_errors(), Store.open(state.database, read_only=True) as store:
        current = schedule.interval_number(now)
        own = [
            k
            for k in store.own_keys(since_interval=current - days * 144)
            if k.tek.rolling_start <= current
        ]
    keys = [DiagnosisKey(k.tek.key_data, k.tek.rolling_start, k.tek.rolling_period) for k in own]
    if as_json:
        click.echo(json.dumps({"temporaryExposureKeys": publish_key_objects(keys)}, indent=2))
        return
    for item, key in zip(publish_key_objects(keys), own, strict=True):
        note = "  reported" if key.reported else ""
        click.echo(
            f"{_day(key.tek.rolling_start)}  {item['rollingStartNumber']}"
            f"  {item['rollingPeriod']:>3}  {item['key']}{note}"
        )


@keys.command("upload", context_settings=CONTEXT_SETTINGS)
@click.option("--server", required=True, metavar="URL", help="The health authority's server.")
@click.option("--code", required=True, metavar="CODE", help="The verification code you were given.")
@click.option(
    "--days",
    type=click.IntRange(1, 30),
    default=UPLOAD_DEFAULT_DAYS,
    show_default=True,
    help="Upload keys of the last DAYS days.",
)
@click.option("--yes", is_flag=True, help="Consent without asking (for scripts).")
@pass_state
def upload(state: CliState, server: str, code: str, days: int, yes: bool) -> None:
    """Upload your keys after a positive test, with your consent.

    Only your daily keys leave the device: no identity, no location, no sightings. The code
    is exchanged for a certificate bound to an HMAC of exactly these keys, then the keys are
    published. Afterwards they are marked reported and a fresh key starts at the next
    interval: a reported key is never used again.
    """
    if not server.startswith(("http://", "https://")):
        raise click.BadParameter("must be an http(s) URL", param_hint="--server")
    now = state.current_time()
    with translate_errors(), Store.open(state.database) as store:
        chosen = keys_to_upload(store.own_keys(), now, days)
        if not chosen:
            fail("no unreported own keys of the last days to upload; nothing was sent", 1)
        first, last = _day(chosen[0].rolling_start), _day(chosen[-1].rolling_start)
        click.echo(
            f"About to send {len(chosen)} daily key(s), {first} to {last}, to {server}.\n"
            "Devices that met you in that time will be warned; nothing else leaves this device."
        )
        if not yes:
            if not _stdin_is_tty():
                fail(
                    "no consent: stdin is not a terminal; pass --yes to upload from a script",
                    EXIT_USAGE,
                )
            if not click.confirm("Upload these keys?", default=False):
                fail("nothing was uploaded", 1)
        result = asyncio.run(upload_keys(server, code, chosen))
        fresh = finish_upload(store, chosen, now)
    click.echo(
        f"Uploaded {len(result.keys)} key(s) ({result.test_type}); the authority inserted "
        f"{result.inserted}. A fresh key starts at interval {fresh.rolling_start}."
    )


def _stdin_is_tty() -> bool:
    return sys.stdin.isatty()


def _day(enin: int) -> str:
    return dt.datetime.fromtimestamp(enin * SECONDS_PER_INTERVAL, dt.UTC).date().isoformat()
