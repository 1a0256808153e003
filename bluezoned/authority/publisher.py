"""Turn accepted diagnosis keys into signed export files and an ``index.txt`` (key-distribution.md §3-§8).

Pure: keys, times and a random generator in, file names and bytes out. Writing the files
is the job of an :class:`~bluezoned.authority.output.ExportOutput`.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Final

from bluezoned.const import SECONDS_PER_DAY, SECONDS_PER_INTERVAL, TEK_LENGTH, TEK_ROLLING_PERIOD
from bluezoned.errors import InvalidInput
from bluezoned.exposure import keyfile
from bluezoned.models import DiagnosisKey

MAX_KEY_AGE_DAYS: Final = 15
"""Keys starting earlier are refused (ens MAX_INTERVAL_AGE_ON_PUBLISH = 360 h)."""
EMBARGO_SECONDS: Final = 2 * 3600
"""A still-valid key is held back until 2 h after its validity ends (ens, CWA expiry policy)."""
MIN_PADDED_KEYS: Final = 1_000
PADDING_RANGE: Final = 100
"""Files with fewer real keys are padded with fakes up to 1,000 + random 0..100 (ens §4)."""
MAX_KEYS_PER_FILE: Final = 500_000
"""ens EXPORT_FILE_MAX_RECORDS: larger windows are split into several files."""
EXPORT_RETENTION_SECONDS: Final = 14 * SECONDS_PER_DAY
"""Exports leave the index 14 days after their window ended (ens CLEANUP_TTL = 336 h)."""


@dataclass(frozen=True, slots=True)
class RefusedKey:
    """A key the publish limits refuse: its position, the API error code, and why."""

    index: int
    code: str
    """``bad_key``, ``key_too_old`` or ``key_in_future`` (docs/authority-api.md §3)."""
    reason: str


@dataclass(frozen=True, slots=True)
class KeyVerdict:
    """The keys of an upload or batch sorted into publishable, held back and refused."""

    accepted: tuple[DiagnosisKey, ...]
    embargoed: tuple[DiagnosisKey, ...]
    refused: tuple[RefusedKey, ...]


@dataclass(frozen=True, slots=True)
class ExportFile:
    """One signed export: its object name under the filename root and its bytes."""

    name: str
    data: bytes
    start_timestamp: int
    end_timestamp: int
    real_keys: int
    padding_keys: int


@dataclass(frozen=True, slots=True)
class ExportName:
    """The parts of an export object name ``<start>-<end>-<nnnnn>.zip``."""

    start: int
    end: int
    number: int

    @property
    def name(self) -> str:
        """The object name."""
        return f"{self.start}-{self.end}-{self.number:05d}.zip"

    @classmethod
    def parse(cls, name: str) -> ExportName | None:
        """Parse an object name this publisher wrote; None for anything else."""
        stem, dot, suffix = name.rpartition(".")
        parts = stem.split("-")
        if dot != "." or suffix != "zip" or len(parts) != 3 or not all(p.isdigit() for p in parts):
            return None
        return cls(int(parts[0]), int(parts[1]), int(parts[2]))


def classify_keys(keys: Sequence[DiagnosisKey], *, now: float) -> KeyVerdict:
    """Apply the publish limits: 16-byte keys, period 1..144, not older than 15 days, not in the future; embargo still-valid keys."""
    now_interval = int(now // SECONDS_PER_INTERVAL)
    oldest = now_interval - MAX_KEY_AGE_DAYS * TEK_ROLLING_PERIOD
    accepted: list[DiagnosisKey] = []
    embargoed: list[DiagnosisKey] = []
    refused: list[RefusedKey] = []
    for index, key in enumerate(keys):
        if len(key.key_data) != TEK_LENGTH:
            refused.append(
                RefusedKey(index, "bad_key", f"key is {len(key.key_data)} bytes, not 16")
            )
        elif not 1 <= key.rolling_period <= TEK_ROLLING_PERIOD:
            refused.append(
                RefusedKey(index, "bad_key", f"rolling period {key.rolling_period} outside 1..144")
            )
        elif key.rolling_start < oldest:
            refused.append(
                RefusedKey(index, "key_too_old", f"starts more than {MAX_KEY_AGE_DAYS} days ago")
            )
        elif key.rolling_start > now_interval:
            refused.append(RefusedKey(index, "key_in_future", "starts in the future"))
        elif embargo_until(key) > now:
            embargoed.append(key)
        else:
            accepted.append(key)
    return KeyVerdict(tuple(accepted), tuple(embargoed), tuple(refused))


def embargo_until(key: DiagnosisKey) -> int:
    """When a key may first be published: 2 h after its validity ends."""
    return (key.rolling_start + key.rolling_period) * SECONDS_PER_INTERVAL + EMBARGO_SECONDS


def pad_keys(keys: Sequence[DiagnosisKey], rng: random.Random) -> list[DiagnosisKey]:
    """Fake keys to add to a small batch: random bytes with a random real key's metadata.

    A batch of at least 1,000 real keys, or an empty one, gets none (key-distribution.md §4).
    """
    if not keys or len(keys) >= MIN_PADDED_KEYS:
        return []
    target = MIN_PADDED_KEYS + rng.randrange(PADDING_RANGE + 1)
    return [
        replace(rng.choice(keys), key_data=rng.randbytes(TEK_LENGTH))
        for _ in range(target - len(keys))
    ]


def build_exports(
    keys: Sequence[DiagnosisKey],
    *,
    region: str,
    start_timestamp: int,
    end_timestamp: int,
    signers: Sequence[keyfile.Signer],
    rng: random.Random,
    max_keys_per_file: int = MAX_KEYS_PER_FILE,
) -> list[ExportFile]:
    """Pad, sort, split and sign one window's keys; every file is verified before it is returned.

    Files of one window share the start and get distinct end timestamps (protocol.md §6.1).
    An empty window gives no file.
    """
    if not signers:
        raise InvalidInput("at least one signing key is needed")
    if max_keys_per_file < 1:
        raise InvalidInput("max_keys_per_file must be at least 1")
    padding = pad_keys(keys, rng)
    real_flags = [True] * len(keys) + [False] * len(padding)
    everything = sorted(
        zip([*keys, *padding], real_flags, strict=True), key=lambda pair: pair[0].key_data
    )
    trusted = [
        keyfile.TrustedKey(signer.key_id, signer.key_version, signer.private_key.public_key())
        for signer in signers
    ]
    files = []
    for number, first in enumerate(range(0, len(everything), max_keys_per_file), start=1):
        chunk = everything[first : first + max_keys_per_file]
        end = end_timestamp + number - 1
        data = keyfile.write_export_archive(
            [key for key, _ in chunk],
            region=region,
            start_timestamp=start_timestamp,
            end_timestamp=end,
            signers=signers,
        )
        # Self-check before anything is published (key-distribution.md §5).
        keyfile.read_export_archive(data, trusted)
        real = sum(1 for _, is_real in chunk if is_real)
        files.append(
            ExportFile(
                name=ExportName(start_timestamp, end, number).name,
                data=data,
                start_timestamp=start_timestamp,
                end_timestamp=end,
                real_keys=real,
                padding_keys=len(chunk) - real,
            )
        )
    return files


def index_text(names: Iterable[str], root: str) -> str:
    """``index.txt``: one ``root/name`` line per export, oldest first, newline-terminated."""
    parsed = sorted(
        (p for p in (ExportName.parse(name) for name in names) if p is not None),
        key=lambda p: (p.start, p.end, p.number),
    )
    prefix = f"{root.strip('/')}/" if root.strip("/") else ""
    return "".join(f"{prefix}{p.name}\n" for p in parsed)


def retention_split(names: Iterable[str], *, now: float) -> tuple[list[str], list[str]]:
    """(names to keep listed, names to delete): an export leaves the index 14 days after its end
    and is deleted one day later, so no client is told about a file that is gone."""
    listed: list[str] = []
    deletable: list[str] = []
    for name in names:
        parsed = ExportName.parse(name)
        if parsed is None:
            continue
        age = now - parsed.end
        if age <= EXPORT_RETENTION_SECONDS:
            listed.append(name)
        elif age > EXPORT_RETENTION_SECONDS + SECONDS_PER_DAY:
            deletable.append(name)
    return listed, deletable
