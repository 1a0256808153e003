"""``bluezoned demo``: the end-to-end run on simulated adverts, for machines without Bluetooth."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from bluezoned.cli._common import CONTEXT_SETTINGS, CliState, pass_state, translate_errors


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the demo's stores and files go [default: a new temporary directory].",
)
@click.option("--seed", type=int, default=2021, show_default=True, help="Seed of the simulation.")
@pass_state
def demo(state: CliState, workdir: Path | None, seed: int) -> None:
    """Two phones meet, one is diagnosed, the other finds out: the whole loop, no radio needed."""
    from bluezoned.demo import run_demo  # the composition is only loaded for this command

    target = workdir or Path(tempfile.mkdtemp(prefix="bluezoned-demo-"))
    with translate_errors():
        outcome = run_demo(target, now=state.current_time(), seed=seed, echo=click.echo)
    click.echo("")
    click.echo("look around:")
    click.echo(f"  bluezoned --state-dir {target / 'bob'} status")
    click.echo(
        f"  bluezoned keyfile verify {outcome.export_path} "
        f"--pubkey 452-v1={outcome.public_key_path}"
    )
    click.echo(f"  bluezoned keyfile show {outcome.export_path}")
