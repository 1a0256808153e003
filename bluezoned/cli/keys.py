"""``bluezoned keys``: inspect the key schedule."""

from __future__ import annotations

from typing import Final

import click

from bluezoned.cli._common import CONTEXT_SETTINGS, translate_errors
from bluezoned.exposure import keys as schedule

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
