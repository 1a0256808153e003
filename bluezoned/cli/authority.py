"""``bluezoned authority``: the health authority's tools."""

from __future__ import annotations

import os
import random
import stat
import time
from pathlib import Path

import click

from bluezoned.authority.db import DB_FILENAME as AUTHORITY_DB
from bluezoned.authority.db import SqliteAuthorityStore
from bluezoned.authority.keys_json import MAX_KEYS_JSON_BYTES, parse_keys_json
from bluezoned.authority.offline import publish_window
from bluezoned.authority.output import DirectoryOutput
from bluezoned.authority.server import (
    CERTIFICATE_KEY_FILE,
    TEST_TYPES,
    AuthorityConfig,
    AuthorityServer,
    certificate_kid,
    issue_code,
    load_or_create_certificate_key,
)
from bluezoned.cli._common import CONTEXT_SETTINGS, CliState, pass_state, translate_errors, utc_text
from bluezoned.const import MAX_PEM_BYTES
from bluezoned.errors import InvalidInput
from bluezoned.exposure import keyfile
from bluezoned.files import read_bounded

_FILE = click.Path(exists=True, dir_okay=False, path_type=Path)
_NAME = r"[A-Za-z0-9_]+"


@click.group(context_settings=CONTEXT_SETTINGS)
def authority() -> None:
    """Health-authority side: publish signed key exports."""


@authority.command(context_settings=CONTEXT_SETTINGS)
@click.option("--keys", "keys_path", type=_FILE, required=True, help="Keys as publish-API JSON.")
@click.option(
    "--signing-key", type=_FILE, required=True, help="P-256 private key, PEM (mode 0600)."
)
@click.option(
    "--key-id", required=True, help="verification_key_id, e.g. the MCC (452 for Vietnam)."
)
@click.option("--key-version", required=True, help="verification_key_version, e.g. v1.")
@click.option("--region", required=True, help="Region written into the exports, e.g. VN.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Output directory.",
)
@click.option(
    "--root", default=None, help="Filename root under --out [default: exposureKeyExport-REGION]."
)
@click.option(
    "--period-hours",
    type=click.Choice(["1", "2", "3", "4", "6", "8", "12", "24"]),
    default="24",
    show_default=True,
    help="Length of the export window ending at the last full hour.",
)
@pass_state
def publish(
    state: CliState,
    keys_path: Path,
    signing_key: Path,
    key_id: str,
    key_version: str,
    region: str,
    out_dir: Path,
    root: str | None,
    period_hours: str,
) -> None:
    """Sign one window of keys into export files and rewrite index.txt (for air-gapped authorities)."""
    with translate_errors():
        signer = _load_signer(signing_key, key_id, key_version)
        data = read_bounded(keys_path, MAX_KEYS_JSON_BYTES, what="a keys JSON file")
        keys = parse_keys_json(data, str(keys_path))
        root_name = root or f"exposureKeyExport-{region}"
        report = publish_window(
            keys,
            DirectoryOutput(out_dir / root_name),
            root=root_name,
            region=region,
            signers=[signer],
            now=state.current_time(),
            period_seconds=int(period_hours) * 3600,
            rng=random.SystemRandom(),
        )
    for export in report.files:
        click.echo(
            f"wrote {out_dir / root_name / export.name}: {export.real_keys} keys + {export.padding_keys} padding, "
            f"window {utc_text(export.start_timestamp)} .. {utc_text(export.end_timestamp)}"
        )
    if not report.files:
        click.echo("no publishable keys in this window: no export written")
    click.echo(f"index {out_dir / root_name / 'index.txt'}: {report.index_lines} file(s) listed")
    if report.embargoed:
        click.echo(
            f"held back {len(report.embargoed)} key(s) still valid or within 2 h of expiry: publish them later",
            err=True,
        )
    for refused in report.refused:
        click.echo(f"refused key number {refused.index + 1}: {refused.reason}", err=True)
    for name in report.unlisted:
        click.echo(f"expired, left the index: {name}")
    for name in report.deleted:
        click.echo(f"deleted expired export: {name}")


def _load_signer(path: Path, key_id: str, key_version: str) -> keyfile.Signer:
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        click.echo(
            f"warning: {path} is readable by others (mode {stat.S_IMODE(mode):04o}); chmod 600 it",
            err=True,
        )
    if not os.access(path, os.R_OK):
        raise InvalidInput(f"{path}: not readable")
    try:
        pem = read_bounded(path, MAX_PEM_BYTES, what="a PEM private key")
        return keyfile.load_signer(pem, key_id, key_version)
    except InvalidInput as exc:
        raise InvalidInput(f"{path}: {exc}") from exc


@authority.command("issue-code", context_settings=CONTEXT_SETTINGS)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="The server's data directory.",
)
@click.option("--test-type", type=click.Choice(TEST_TYPES), default="confirmed", show_default=True)
@click.option(
    "--symptom-date", metavar="YYYY-MM-DD", default=None, help="Day symptoms started, if known."
)
@pass_state
def issue_code_command(
    state: CliState, data_dir: Path, test_type: str, symptom_date: str | None
) -> None:
    """Print a fresh 8-digit verification code for a diagnosed person (valid 15 minutes)."""
    with translate_errors():
        store = SqliteAuthorityStore(data_dir / AUTHORITY_DB)
        try:
            code = issue_code(
                store,
                test_type=test_type,
                symptom_date=symptom_date,
                now=state.current_time(),
                rng=random.SystemRandom(),
            )
        finally:
            store.close()
    click.echo(code)


@authority.command(context_settings=CONTEXT_SETTINGS)
@click.option(
    "--data-dir",
    type=click.Path(file_okay=False, path_type=Path),
    required=True,
    help="Database, certificate key and exports.",
)
@click.option(
    "--signing-key",
    type=_FILE,
    required=True,
    help="P-256 private key that signs exports, PEM (mode 0600).",
)
@click.option("--key-id", required=True, help="verification_key_id of the export signatures.")
@click.option(
    "--key-version", required=True, help="verification_key_version of the export signatures."
)
@click.option("--region", required=True, help="Region written into the exports.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--issuer",
    default=None,
    help="Certificate issuer and healthAuthorityID [default: bluezoned-REGION].",
)
@click.option(
    "--period-hours",
    type=click.Choice(["1", "2", "4", "6", "12", "24"]),
    default="1",
    show_default=True,
    help="Export window length.",
)
def serve(
    data_dir: Path,
    signing_key: Path,
    key_id: str,
    key_version: str,
    region: str,
    host: str,
    port: int,
    issuer: str | None,
    period_hours: str,
) -> None:
    """Run the authority server: verification, publish, export worker and static exports."""
    from aiohttp import web  # only this command needs the web stack

    with translate_errors():
        signer = _load_signer(signing_key, key_id, key_version)
        certificate_key = load_or_create_certificate_key(data_dir / CERTIFICATE_KEY_FILE)
        store = SqliteAuthorityStore(data_dir / AUTHORITY_DB)
        config = AuthorityConfig(
            region=region,
            issuer=issuer or f"bluezoned-{region}",
            signers=(signer,),
            certificate_key=certificate_key,
            certificate_kid=certificate_kid(certificate_key),
            root=f"exposureKeyExport-{region}",
            period_seconds=int(period_hours) * 3600,
        )
        output = DirectoryOutput(data_dir / "exports" / config.root)
        server = AuthorityServer(
            config=config, store=store, output=output, clock=time.time, rng=random.SystemRandom()
        )
        click.echo(
            f"serving on http://{host}:{port}/ (index /exports/{config.root}/index.txt,"
            f" files in {output.directory})"
        )
        web.run_app(server.app(), host=host, port=port, print=None)
        store.close()
