"""Key distribution, device side: fetch signed key exports from the configured sources.

``client`` does bounded, retrying HTTP; ``sources`` turns discovery schemes (ens index.txt,
CWA date/hour) into file lists; ``worker`` verifies, stores and matches; ``upload`` runs the
diagnosed person's verification and publish flow.
"""

from __future__ import annotations

from bluezoned.sync.client import Fetched, HttpClient, backoff_delay, open_session
from bluezoned.sync.sources import CwaSource, IndexSource, Listing, RemoteFile, parse_index
from bluezoned.sync.worker import (
    FileOutcome,
    MatchNewKeys,
    ProgressEvent,
    SourceResult,
    next_due,
    sync_all,
    sync_forever,
    sync_source,
)

__all__ = [
    "CwaSource",
    "Fetched",
    "FileOutcome",
    "HttpClient",
    "IndexSource",
    "Listing",
    "MatchNewKeys",
    "ProgressEvent",
    "RemoteFile",
    "SourceResult",
    "backoff_delay",
    "next_due",
    "open_session",
    "parse_index",
    "sync_all",
    "sync_forever",
    "sync_source",
]
