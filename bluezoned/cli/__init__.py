"""The ``bluezoned`` command: a thin click shell over the library."""

from __future__ import annotations

from pathlib import Path

import click

from bluezoned import __version__
from bluezoned.cli._common import CONTEXT_SETTINGS, CliState, default_state_dir, parse_now
from bluezoned.cli.analyze import analyze
from bluezoned.cli.authority import authority
from bluezoned.cli.bench import bench
from bluezoned.cli.demo import demo
from bluezoned.cli.keyfile import keyfile
from bluezoned.cli.keys import keys
from bluezoned.cli.sightings import sightings
from bluezoned.cli.sim import sim
from bluezoned.cli.status import status
from bluezoned.cli.sync import sync


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="bluezoned")
@click.option(
    "--state-dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    envvar="BLUEZONED_STATE_DIR",
    help="Where the store lives [default: /var/lib/bluezoned as root, else the user data dir].",
)
@click.option(
    "--now",
    "now_text",
    metavar="TIME",
    default=None,
    help="Pretend it is TIME (ISO-8601 or unix seconds), e.g. to replay an old capture.",
)
@click.pass_context
def cli(ctx: click.Context, state_dir: Path | None, now_text: str | None) -> None:
    """bluezoned: proximity detection compatible with Exposure Notifications."""
    now = parse_now(now_text) if now_text is not None else None
    ctx.obj = CliState(state_dir=state_dir or default_state_dir(), now=now)


cli.add_command(analyze)
cli.add_command(authority)
cli.add_command(bench)
cli.add_command(demo)
cli.add_command(keys)
cli.add_command(keyfile)
cli.add_command(sightings)
cli.add_command(sim)
cli.add_command(status)
cli.add_command(sync)


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="bluezoned")
