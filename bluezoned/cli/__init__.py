"""The ``bluezoned`` command: a thin click shell over the library."""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Final

import click

from bluezoned import __version__
from bluezoned.cli._common import CONTEXT_SETTINGS, CliState, default_state_dir, parse_now

COMMANDS: Final = {
    "analyze": "bluezoned.cli.analyze:analyze",
    "authority": "bluezoned.cli.authority:authority",
    "bench": "bluezoned.cli.bench:bench",
    "demo": "bluezoned.cli.demo:demo",
    "exposures": "bluezoned.cli.exposures:exposures",
    "keyfile": "bluezoned.cli.keyfile:keyfile",
    "keys": "bluezoned.cli.keys:keys",
    "sightings": "bluezoned.cli.sightings:sightings",
    "sim": "bluezoned.cli.sim:sim",
    "status": "bluezoned.cli.status:status",
    "sync": "bluezoned.cli.sync:sync",
}
"""Command name -> "module:attribute". A command's module is imported only when it runs (or
when help lists it): ``bluezoned status`` need not load the authority's HTTP server."""


class LazyGroup(click.Group):
    """A click group whose subcommands are imported from :data:`COMMANDS` on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        """Every command name, without importing any."""
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        """The command, importing its module now."""
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, attribute = COMMANDS[cmd_name].split(":")
        command = getattr(importlib.import_module(module), attribute)
        if not isinstance(command, click.Command):
            raise TypeError(f"{COMMANDS[cmd_name]} is not a click command")
        return command


@click.group(cls=LazyGroup, context_settings=CONTEXT_SETTINGS)
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


def main() -> None:
    """Console-script entry point."""
    cli(prog_name="bluezoned")
