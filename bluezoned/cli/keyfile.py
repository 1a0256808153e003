"""``bluezoned keyfile``: verify and inspect diagnosis-key export files (protocol.md §5)."""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Final

import click

from bluezoned.cli._common import CONTEXT_SETTINGS, translate_errors, utc_text
from bluezoned.const import (
    EXPORT_HEADER,
    MAX_EXPORT_ARCHIVE_BYTES,
    MAX_EXPORT_BIN_BYTES,
    MAX_EXPORT_SIG_BYTES,
    MAX_PEM_BYTES,
    SECONDS_PER_INTERVAL,
)
from bluezoned.errors import InvalidInput, KeyFileRejected, KeyFileRejectReason
from bluezoned.exposure.keyfile import (
    KeyExport,
    SignerInfo,
    TrustedKey,
    VerifiedExport,
    load_trusted_key,
    parse_export_bin,
    read_export_archive,
    read_export_archive_unverified,
    verify_export,
)
from bluezoned.files import FileTooLarge, read_bounded
from bluezoned.models import DiagnosisKey

"""A P-256 public key PEM is under 200 bytes; anything far larger is the wrong file."""
_BINDING: Final = re.compile(r"(?P<id>[A-Za-z0-9_]+)(?:-(?P<version>[A-Za-z0-9_]+))?=(?P<path>.+)")
_FILE: Final = click.Path(exists=True, dir_okay=False, path_type=Path)

JsonValue = str | int | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


@click.group(context_settings=CONTEXT_SETTINGS)
def keyfile() -> None:
    """Diagnosis-key export files: verify signatures, inspect contents."""


@keyfile.command(context_settings=CONTEXT_SETTINGS)
@click.argument("file", type=_FILE)
@click.option(
    "--pubkey",
    "pubkeys",
    multiple=True,
    required=True,
    metavar="[KEYID[-VERSION]=]PEM",
    help="Accepted public key (PEM or base64). Bare PATH accepts any signer; "
    "KEYID-VERSION=PATH (e.g. 310-v1=pub.pem) only that signer. Repeatable.",
)
@click.option(
    "--sig",
    "sig_path",
    type=_FILE,
    default=None,
    help="export.sig shipped beside a bare export.bin given as FILE.",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def verify(file: Path, pubkeys: tuple[str, ...], sig_path: Path | None, as_json: bool) -> None:
    """Verify FILE (a zip, or a bare export.bin with --sig); exit 3 when it is refused."""
    trusted = [_load_pubkey(value) for value in pubkeys]
    with translate_errors():
        if sig_path is None:
            result = read_export_archive(_read_file(file, MAX_EXPORT_ARCHIVE_BYTES), trusted)
        else:
            export_bin = _read_file(file, MAX_EXPORT_BIN_BYTES)
            export_sig = _read_file(sig_path, MAX_EXPORT_SIG_BYTES)
            result = verify_export(export_bin, export_sig, trusted)
    if as_json:
        click.echo(json.dumps(_verified_json(file, result), indent=2))
    else:
        click.echo(_verified_text(file, result))


@keyfile.command(context_settings=CONTEXT_SETTINGS)
@click.argument("file", type=_FILE)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object.")
def show(file: Path, as_json: bool) -> None:
    """Print FILE's header and every key WITHOUT checking its signature (zip or export.bin)."""
    with translate_errors():
        data = _read_file(file, MAX_EXPORT_ARCHIVE_BYTES)
        if data.startswith(EXPORT_HEADER):
            if len(data) > MAX_EXPORT_BIN_BYTES:
                raise KeyFileRejected(
                    KeyFileRejectReason.TOO_LARGE,
                    f"{file} is {len(data)} bytes, the bound is {MAX_EXPORT_BIN_BYTES}",
                )
            export = parse_export_bin(data)
        else:
            export = read_export_archive_unverified(data)
    sha256 = hashlib.sha256(data).hexdigest()
    if as_json:
        document: dict[str, JsonValue] = {"verified": False, "file": str(file), "sha256": sha256}
        document.update(_export_json(export))
        document["keys"] = [_key_json(key) for key in export.keys]
        document["revised_keys"] = [_key_json(key) for key in export.revised_keys]
        click.echo(json.dumps(document, indent=2))
        return
    lines = [
        "UNVERIFIED: the signature was not checked; do not match against these keys.",
        f"file:            {file}",
        f"sha256:          {sha256}",
        *_export_lines(export),
        "signature infos: "
        + ("; ".join(_signer_text(info) for info in export.signature_infos) or "(none)"),
    ]
    for title, keys in (("keys", export.keys), ("revised keys", export.revised_keys)):
        if keys or title == "keys":
            lines += ["", f"{title} ({len(keys)}):", *_key_table(keys)]
    click.echo("\n".join(lines))


def _load_pubkey(value: str) -> TrustedKey:
    """A ``--pubkey`` value as a TrustedKey, or a usage error naming the problem."""
    binding = _BINDING.fullmatch(value)
    key_id, version, path = (
        (binding["id"], binding["version"], binding["path"]) if binding else (None, None, value)
    )
    try:
        pem = read_bounded(path, MAX_PEM_BYTES, what="a PEM public key")
    except InvalidInput as exc:
        raise click.BadParameter(str(exc), param_hint="--pubkey") from exc
    try:
        return load_trusted_key(pem, key_id=key_id, key_version=version)
    except InvalidInput as exc:
        raise click.BadParameter(f"{path}: {exc}", param_hint="--pubkey") from exc


def _read_file(path: Path, bound: int) -> bytes:
    """The file's bytes; TOO_LARGE, without reading it, when its size exceeds ``bound``."""
    try:
        return read_bounded(path, bound, what="this key file")
    except FileTooLarge as exc:
        raise KeyFileRejected(KeyFileRejectReason.TOO_LARGE, str(exc)) from exc
    except InvalidInput as exc:
        reason = getattr(exc.__cause__, "strerror", None) or str(exc)
        raise click.FileError(str(path), reason) from exc


def _iso(seconds: int | None) -> str | None:
    """ISO-8601 UTC with a Z, ``None`` when absent or beyond what datetime can show."""
    if seconds is None:
        return None
    try:
        return utc_text(seconds)
    except (OverflowError, OSError, ValueError):
        return None


def _stamp(seconds: int | None) -> str:
    """``ISO (unix)`` for text output."""
    if seconds is None:
        return "(absent)"
    return f"{_iso(seconds) or '(out of range)'} ({seconds})"


def _signer_text(info: SignerInfo) -> str:
    """``key id '310' version 'v1', algorithm 1.2.840.10045.4.3.2``."""
    return f"{info.describe()}, algorithm {info.algorithm or '(none)'}"


def _signer_json(info: SignerInfo) -> dict[str, JsonValue]:
    """A SignerInfo as JSON."""
    return {"key_id": info.key_id, "key_version": info.key_version, "algorithm": info.algorithm}


def _export_lines(export: KeyExport) -> list[str]:
    """Header fields as aligned text lines."""
    batch = f"{_or_absent(export.batch_num)}/{_or_absent(export.batch_size)}"
    return [
        f"region:          {export.region if export.region is not None else '(absent)'}",
        f"batch:           {batch}",
        f"start:           {_stamp(export.start_timestamp)}",
        f"end:             {_stamp(export.end_timestamp)}",
        f"keys:            {len(export.keys)}",
        f"revised keys:    {len(export.revised_keys)}",
    ]


def _export_json(export: KeyExport) -> dict[str, JsonValue]:
    """Header fields as JSON."""
    return {
        "region": export.region,
        "batch_num": export.batch_num,
        "batch_size": export.batch_size,
        "start_timestamp": export.start_timestamp,
        "start": _iso(export.start_timestamp),
        "end_timestamp": export.end_timestamp,
        "end": _iso(export.end_timestamp),
        "key_count": len(export.keys),
        "revised_key_count": len(export.revised_keys),
        "signature_infos": [_signer_json(info) for info in export.signature_infos],
    }


def _verified_text(file: Path, result: VerifiedExport) -> str:
    """The human summary of an accepted file."""
    lines = [
        f"verified: {file}",
        f"signer:          {_signer_text(result.signer)}",
        f"sha256:          {result.sha256}",
        f"export.bin:      sha256 {result.bin_sha256}",
        *_export_lines(result.export),
    ]
    return "\n".join(lines)


def _verified_json(file: Path, result: VerifiedExport) -> dict[str, JsonValue]:
    """The JSON summary of an accepted file (no key list: use ``show`` for that)."""
    document: dict[str, JsonValue] = {
        "verified": True,
        "file": str(file),
        "sha256": result.sha256,
        "bin_sha256": result.bin_sha256,
        "signer": _signer_json(result.signer),
    }
    document.update(_export_json(result.export))
    return document


def _key_json(key: DiagnosisKey) -> dict[str, JsonValue]:
    """One key as JSON; absent optional fields are null."""
    return {
        "key_data": key.key_data.hex(),
        "rolling_start": key.rolling_start,
        "rolling_start_time": _iso(key.rolling_start * SECONDS_PER_INTERVAL),
        "rolling_period": key.rolling_period,
        "transmission_risk_level": key.transmission_risk_level,
        "report_type": key.report_type.name if key.report_type is not None else None,
        "days_since_onset": key.days_since_onset,
    }


def _key_table(keys: Sequence[DiagnosisKey]) -> list[str]:
    """Keys as a fixed-width table with a heading row."""
    row = "{:<32}  {:>10}  {:<20}  {:>6}  {:>3}  {:<28}  {:>5}"
    lines = [row.format("KEY", "ENIN", "START (UTC)", "PERIOD", "TRL", "REPORT TYPE", "ONSET")]
    for key in keys:
        lines.append(
            row.format(
                key.key_data.hex(),
                key.rolling_start,
                _iso(key.rolling_start * SECONDS_PER_INTERVAL) or "(out of range)",
                key.rolling_period,
                _or_absent(key.transmission_risk_level, "-"),
                key.report_type.name if key.report_type is not None else "-",
                _or_absent(key.days_since_onset, "-"),
            ).rstrip()
        )
    return lines


def _or_absent(value: int | None, absent: str = "?") -> str:
    """``str(value)`` or a placeholder."""
    return absent if value is None else str(value)
