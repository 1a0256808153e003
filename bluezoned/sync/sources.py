"""Source adapters: turn a key server's discovery scheme into the list of files to fetch.

Each adapter lists ``RemoteFile(name, url)`` oldest first; the worker takes the set
difference against what it already processed. File names are never parsed (protocol.md §6.1):
an ``index.txt`` line is appended to the configured base URL as it is.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterable, Set
from dataclasses import dataclass
from typing import Final, Protocol

from bluezoned.config import Limits, Source
from bluezoned.errors import FetchError
from bluezoned.sync.client import HttpClient

__all__ = [
    "CwaSource",
    "IndexSource",
    "Listing",
    "RemoteFile",
    "SourceAdapter",
    "adapter_for",
    "cwa_dates",
    "cwa_hours",
    "new_files",
    "parse_index",
]

MAX_INDEX_LINE: Final = 1024
_DATE_PATTERN: Final = re.compile(r"\d{4}-\d{2}-\d{2}")


@dataclass(frozen=True, slots=True)
class RemoteFile:
    """One listed export: ``name`` as the server lists it, ``url`` the absolute URL fetched."""

    name: str
    url: str


@dataclass(frozen=True, slots=True)
class Listing:
    """What a source lists now; ``not_modified`` when the index answered 304 (nothing new)."""

    files: tuple[RemoteFile, ...]
    not_modified: bool = False
    etag: str | None = None
    last_modified: str | None = None


class SourceAdapter(Protocol):
    """Lists a source's current files; may use the stored validators for a conditional GET."""

    async def list_files(
        self, client: HttpClient, *, etag: str | None, last_modified: str | None, now: float
    ) -> Listing:
        """The files the source lists now, oldest first, or raise FetchError."""
        ...


def parse_index(data: bytes, base_url: str, source_url: str = "index.txt") -> list[RemoteFile]:
    """Lines of an ``index.txt`` (US-ASCII, one relative path per line) as files under ``base_url``."""
    try:
        text = data.decode("ascii")
    except UnicodeDecodeError as exc:
        raise FetchError(source_url, f"index is not US-ASCII: {exc}") from None
    files: list[RemoteFile] = []
    seen: set[str] = set()
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line in seen:
            continue
        if len(line) > MAX_INDEX_LINE or any(c.isspace() or ord(c) < 0x21 for c in line):
            raise FetchError(source_url, f"index line {number} is not a path")
        if "://" in line or line.startswith("/") or ".." in line.split("/"):
            # A relative line must stay under the base URL (key-distribution.md §6).
            raise FetchError(source_url, f"index line {number} leaves the base URL: {line!r}")
        seen.add(line)
        files.append(RemoteFile(line, base_url + line))
    return files


def new_files(listed: Iterable[RemoteFile], processed_urls: Set[str]) -> list[RemoteFile]:
    """The listed files whose URL was not processed yet, in listing order (oldest first)."""
    return [f for f in listed if f.url not in processed_urls]


def cwa_dates(data: bytes, url: str) -> list[str]:
    """A CWA ``/date`` index: a JSON array of ``YYYY-MM-DD`` strings, sorted oldest first."""
    items = _json_array(data, url)
    dates: list[str] = []
    for item in items:
        if not isinstance(item, str) or not _DATE_PATTERN.fullmatch(item):
            raise FetchError(url, f"not a date: {item!r}")
        try:
            dt.date.fromisoformat(item)
        except ValueError:
            raise FetchError(url, f"not a date: {item!r}") from None
        dates.append(item)
    return sorted(set(dates))


def cwa_hours(data: bytes, url: str) -> list[int]:
    """A CWA ``/date/{d}/hour`` index: a JSON array of hours 0-23, sorted."""
    items = _json_array(data, url)
    hours: set[int] = set()
    for item in items:
        if isinstance(item, bool) or not isinstance(item, int) or not 0 <= item <= 23:
            raise FetchError(url, f"not an hour: {item!r}")
        hours.add(item)
    return sorted(hours)


@dataclass(frozen=True, slots=True)
class IndexSource:
    """The ens scheme: ``url`` is index.txt, each line is appended to ``base_url``."""

    url: str
    base_url: str
    limits: Limits

    async def list_files(
        self, client: HttpClient, *, etag: str | None, last_modified: str | None, now: float
    ) -> Listing:
        """Conditional GET of the index; 304 means nothing new."""
        fetched = await client.get(
            self.url, max_bytes=self.limits.max_index_bytes, etag=etag, last_modified=last_modified
        )
        if fetched.not_modified:
            return Listing((), True, fetched.etag or etag, fetched.last_modified or last_modified)
        files = parse_index(fetched.body, self.base_url, self.url)
        return Listing(tuple(files), False, fetched.etag, fetched.last_modified)


@dataclass(frozen=True, slots=True)
class CwaSource:
    """The Corona-Warn-App tree under ``url`` (…/country/DE): day archives, then hours of days not yet packaged."""

    url: str
    limits: Limits

    async def list_files(
        self, client: HttpClient, *, etag: str | None, last_modified: str | None, now: float
    ) -> Listing:
        """Day archives listed under /date, then the hour archives of today and yesterday if no day file exists."""
        base = self.url.rstrip("/")
        date_url = f"{base}/date"
        fetched = await client.get(date_url, max_bytes=self.limits.max_index_bytes)
        dates = cwa_dates(fetched.body, date_url)
        files = [RemoteFile(f"date/{d}", f"{date_url}/{d}") for d in dates]
        today = dt.datetime.fromtimestamp(now, dt.UTC).date()
        recent = sorted({(today - dt.timedelta(days=1)).isoformat(), today.isoformat()})
        for day in recent:
            if day in dates:
                continue
            hour_url = f"{date_url}/{day}/hour"
            try:
                listed = await client.get(hour_url, max_bytes=self.limits.max_index_bytes)
            except FetchError as exc:
                if exc.status == 404:
                    continue  # no hour has been published for that day yet
                raise
            for hour in cwa_hours(listed.body, hour_url):
                files.append(RemoteFile(f"date/{day}/hour/{hour}", f"{hour_url}/{hour}"))
        return Listing(tuple(files), False, fetched.etag, fetched.last_modified)


def adapter_for(source: Source, limits: Limits) -> SourceAdapter:
    """The adapter for a configured source's format."""
    if source.format == "cwa":
        return CwaSource(source.url, limits)
    return IndexSource(source.url, source.base_url or "", limits)


def _json_array(data: bytes, url: str) -> list[object]:
    try:
        items = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FetchError(url, f"index is not JSON: {exc}") from None
    if not isinstance(items, list):
        raise FetchError(url, "index is not a JSON array")
    return items
