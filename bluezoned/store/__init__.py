"""The local SQLite store (sqlite-utils, WAL, versioned migrations) and the capture parser."""

from __future__ import annotations

from bluezoned.const import DB_FILENAME
from bluezoned.store.capture import (
    CAPTURE_COLUMNS,
    MAX_CAPTURE_BYTES,
    Capture,
    parse_capture,
    parse_capture_bytes,
)
from bluezoned.store.migrations import MIGRATION_NAMES
from bluezoned.store.store import (
    ExposureRecord,
    OwnKey,
    ProcessedFile,
    PurgeResult,
    Store,
    StoredDiagnosisKey,
    StoreSummary,
    SyncState,
    bucket_start,
    fold_sightings,
)

__all__ = [
    "CAPTURE_COLUMNS",
    "DB_FILENAME",
    "MAX_CAPTURE_BYTES",
    "MIGRATION_NAMES",
    "Capture",
    "ExposureRecord",
    "OwnKey",
    "ProcessedFile",
    "PurgeResult",
    "Store",
    "StoreSummary",
    "StoredDiagnosisKey",
    "SyncState",
    "bucket_start",
    "fold_sightings",
    "parse_capture",
    "parse_capture_bytes",
]
