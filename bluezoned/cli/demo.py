"""``bluezoned demo``: the whole system on a simulated radio, for machines without Bluetooth."""

from __future__ import annotations

import tempfile
from pathlib import Path

import click

from bluezoned.cli._common import (
    CONTEXT_SETTINGS,
    EXIT_ERROR,
    CliState,
    fail,
    pass_state,
    translate_errors,
)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--dir",
    "workdir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Where the demo's stores, authority and exports go [default: a new temporary directory].",
)
@click.option(
    "--seed", type=int, default=2021, show_default=True, help="Seed of keys, world and radio."
)
@pass_state
def demo(state: CliState, workdir: Path | None, seed: int) -> None:
    """Alice meets Bob, tests positive and uploads; Bob's device finds out. Real parts, simulated radio.

    Needs dbus-daemon (no Bluetooth hardware); takes about 15 seconds. Exits 1 when Bob's
    device did not find Alice's exposure.
    """
    # The composition (bleak, aiohttp, numpy) is only loaded for this command.
    from bluezoned.demo import AUTHORITY_KEY_ID, AUTHORITY_KEY_VERSION, run_demo, unavailable_reason

    reason = unavailable_reason()
    if reason is not None:
        fail(reason, EXIT_ERROR)
    target = workdir or Path(tempfile.mkdtemp(prefix="bluezoned-demo-"))
    with translate_errors():
        outcome = run_demo(target, now=state.current_time(), seed=seed, echo=click.echo)
    click.echo("")
    click.echo(f"everything is under {target}; look around:")
    click.echo(f"  bluezoned --state-dir {outcome.bob_store.parent} status")
    click.echo(f"  bluezoned --state-dir {outcome.bob_store.parent} exposures")
    click.echo(f"  bluezoned --state-dir {outcome.alice_store.parent} keys export")
    click.echo(
        f"  bluezoned keyfile verify {outcome.export_path} "
        f"--pubkey {AUTHORITY_KEY_ID}-{AUTHORITY_KEY_VERSION}={outcome.public_key_path}"
    )
    click.echo(f"  bluezoned keyfile show {outcome.export_path}")
    if not outcome.alice_exposures:
        fail("Bob's device did not find Alice's exposure", EXIT_ERROR)
