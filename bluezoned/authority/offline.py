"""Publish one window of keys without a server: signed exports plus a fresh ``index.txt``."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from bluezoned.authority import publisher
from bluezoned.authority.output import ExportOutput
from bluezoned.errors import BluezonedError, InvalidInput
from bluezoned.exposure import keyfile
from bluezoned.models import DiagnosisKey

INDEX_NAME = "index.txt"


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What one publishing run did."""

    files: tuple[publisher.ExportFile, ...]
    embargoed: tuple[DiagnosisKey, ...]
    refused: tuple[publisher.RefusedKey, ...]
    index_lines: int
    unlisted: tuple[str, ...]
    deleted: tuple[str, ...]


def publish_window(
    keys: Sequence[DiagnosisKey],
    output: ExportOutput,
    *,
    root: str,
    region: str,
    signers: Sequence[keyfile.Signer],
    now: float,
    period_seconds: int,
    rng: random.Random,
) -> PublishReport:
    """Publish the window ending at the last full hour before ``now``, then rewrite the index.

    Files go out before the index names them; expired files leave the index first and are
    deleted a day later (two-step deletion, key-distribution.md §8). A window that already
    has files is refused rather than overwritten: published exports are immutable.
    """
    if period_seconds <= 0 or 86_400 % period_seconds:
        raise InvalidInput(f"the period ({period_seconds} s) must divide 24 h")
    end = int(now // 3600 * 3600)
    start = end - period_seconds
    existing = output.names()
    clash = [
        name for name in existing if (p := publisher.ExportName.parse(name)) and p.start == start
    ]
    if clash:
        raise BluezonedError(
            f"the window {start}-{end} is already published ({', '.join(clash)}); exports are immutable"
        )
    verdict = publisher.classify_keys(keys, now=now)
    files = publisher.build_exports(
        verdict.accepted,
        region=region,
        start_timestamp=start,
        end_timestamp=end,
        signers=signers,
        rng=rng,
    )
    for export in files:
        output.write(export.name, export.data)
    listed, deletable = publisher.retention_split([*existing, *(f.name for f in files)], now=now)
    index = publisher.index_text(listed, root)
    output.write(INDEX_NAME, index.encode("ascii"))
    for name in deletable:
        output.delete(name)
    unlisted = sorted(
        name
        for name in existing
        if publisher.ExportName.parse(name) and name not in listed and name not in deletable
    )
    return PublishReport(
        files=tuple(files),
        embargoed=verdict.embargoed,
        refused=verdict.refused,
        index_lines=index.count("\n"),
        unlisted=tuple(unlisted),
        deleted=tuple(deletable),
    )
