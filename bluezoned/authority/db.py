"""The authority's database: codes, tokens, used certificates, uploaded keys, export windows.

One machine: SQLite (WAL) via sqlite-utils, used from one thread. A national deployment
implements :class:`AuthorityStore` on PostgreSQL with the same tables (key-distribution.md §9);
the server only talks to the protocol.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

from bluezoned.errors import StoreError
from bluezoned.models import DiagnosisKey, ReportType

DB_FILENAME = "authority.db"
MIGRATIONS = Migrations("bluezoned-authority")


@MIGRATIONS()
def m0001_verification_and_keys(db: Database) -> None:
    """Codes and tokens (hashes only), used certificate ids, uploaded keys, exported windows."""
    db.execute(
        "CREATE TABLE codes (code_hash BLOB PRIMARY KEY, test_type TEXT NOT NULL,"
        " symptom_date TEXT, issued_at REAL NOT NULL, expires_at REAL NOT NULL, used_at REAL)"
    )
    db.execute(
        "CREATE TABLE tokens (token_hash BLOB PRIMARY KEY, test_type TEXT NOT NULL,"
        " symptom_date TEXT, expires_at REAL NOT NULL, used_at REAL)"
    )
    db.execute("CREATE TABLE used_certificates (jti TEXT PRIMARY KEY, expires_at REAL NOT NULL)")
    db.execute(
        "CREATE TABLE keys (key_data BLOB NOT NULL CHECK (length(key_data) = 16),"
        " rolling_start INTEGER NOT NULL, rolling_period INTEGER NOT NULL,"
        " trl INTEGER, report_type INTEGER, days_since_onset INTEGER,"
        " created_hour INTEGER NOT NULL, available_at INTEGER NOT NULL,"
        " PRIMARY KEY (key_data, rolling_start)) WITHOUT ROWID"
    )
    db.execute("CREATE INDEX keys_available ON keys (available_at)")
    db.execute(
        "CREATE TABLE export_windows (start INTEGER NOT NULL, end INTEGER NOT NULL,"
        " files INTEGER NOT NULL, keys INTEGER NOT NULL, exported_at REAL NOT NULL,"
        " PRIMARY KEY (start, end))"
    )


@dataclass(frozen=True, slots=True)
class Grant:
    """What a redeemed code or token entitles to: the test type and optional symptom date."""

    test_type: str
    symptom_date: str | None


@dataclass(frozen=True, slots=True)
class UploadedKey:
    """A key accepted from a publish request, with when it may be exported."""

    key: DiagnosisKey
    created_hour: int
    available_at: int


class AuthorityStore(Protocol):
    """What the server needs from its database; SQLite here, PostgreSQL at national scale."""

    def add_code(self, code_hash: bytes, grant: Grant, issued_at: float, expires_at: float) -> None:
        """Store a new verification code (hash only)."""

    def redeem_code(self, code_hash: bytes, now: float) -> Grant | None:
        """Use a code once; None when unknown, used or expired."""

    def add_token(self, token_hash: bytes, grant: Grant, expires_at: float) -> None:
        """Store a token (hash only) handed out for a redeemed code."""

    def redeem_token(self, token_hash: bytes, now: float) -> Grant | None:
        """Use a token once; None when unknown, used or expired."""

    def publish(
        self, jti: str, certificate_expires: float, keys: Sequence[UploadedKey]
    ) -> int | None:
        """Consume certificate ``jti`` and store its keys in one transaction; None if it was used."""

    def keys_available(self, start: int, end: int) -> list[DiagnosisKey]:
        """Keys whose export time falls in ``[start, end)``."""

    def oldest_available(self) -> int | None:
        """The earliest export time of any stored key."""

    def exported_windows(self) -> set[tuple[int, int]]:
        """Windows already exported."""

    def record_window(self, start: int, end: int, files: int, keys: int, now: float) -> None:
        """Remember that a window was exported."""

    def purge(self, before: float) -> int:
        """Delete keys, codes, tokens and certificate ids that expired before ``before``."""


class SqliteAuthorityStore:
    """:class:`AuthorityStore` on one SQLite file (mode 0600); use from a single thread."""

    def __init__(self, path: Path) -> None:
        """Open (creating, mode 0600, and migrating) the database at ``path``."""
        self.path = path
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600)
            os.close(fd)
            os.chmod(path, 0o600)
            conn = sqlite3.connect(path, timeout=5, check_same_thread=False)
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"{path}: cannot open the authority database: {exc}") from exc
        self._db = Database(conn, execute_plugins=False)
        self._db.enable_wal()
        MIGRATIONS.apply(self._db)

    def close(self) -> None:
        """Close the connection."""
        self._db.close()

    def add_code(self, code_hash: bytes, grant: Grant, issued_at: float, expires_at: float) -> None:
        """Store a new verification code (hash only)."""
        with self._db.atomic():
            self._db.execute(
                "INSERT INTO codes (code_hash, test_type, symptom_date, issued_at, expires_at)"
                " VALUES (?, ?, ?, ?, ?)",
                (code_hash, grant.test_type, grant.symptom_date, issued_at, expires_at),
            )

    def redeem_code(self, code_hash: bytes, now: float) -> Grant | None:
        """Use a code once; None when unknown, used or expired."""
        return self._redeem("codes", "code_hash", code_hash, now)

    def add_token(self, token_hash: bytes, grant: Grant, expires_at: float) -> None:
        """Store a token (hash only) handed out for a redeemed code."""
        with self._db.atomic():
            self._db.execute(
                "INSERT INTO tokens (token_hash, test_type, symptom_date, expires_at) VALUES (?, ?, ?, ?)",
                (token_hash, grant.test_type, grant.symptom_date, expires_at),
            )

    def redeem_token(self, token_hash: bytes, now: float) -> Grant | None:
        """Use a token once; None when unknown, used or expired."""
        return self._redeem("tokens", "token_hash", token_hash, now)

    def publish(
        self, jti: str, certificate_expires: float, keys: Sequence[UploadedKey]
    ) -> int | None:
        """Consume certificate ``jti`` and store its keys in one transaction; None if it was used."""
        with self._db.atomic():
            used = self._db.execute(
                "INSERT INTO used_certificates (jti, expires_at) VALUES (?, ?) ON CONFLICT (jti) DO NOTHING",
                (jti, certificate_expires),
            ).rowcount
            if not used:
                return None
            rows = [
                (
                    k.key.key_data,
                    k.key.rolling_start,
                    k.key.rolling_period,
                    k.key.transmission_risk_level,
                    None if k.key.report_type is None else int(k.key.report_type),
                    k.key.days_since_onset,
                    k.created_hour,
                    k.available_at,
                )
                for k in keys
            ]
            return self._db.conn.executemany(
                "INSERT INTO keys (key_data, rolling_start, rolling_period, trl, report_type,"
                " days_since_onset, created_hour, available_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (key_data, rolling_start) DO NOTHING",
                rows,
            ).rowcount

    def keys_available(self, start: int, end: int) -> list[DiagnosisKey]:
        """Keys whose export time falls in ``[start, end)``."""
        rows = self._db.query(
            "SELECT key_data, rolling_start, rolling_period, trl, report_type, days_since_onset"
            " FROM keys WHERE available_at >= ? AND available_at < ?",
            (start, end),
        )
        return [
            DiagnosisKey(
                key_data=row["key_data"],
                rolling_start=row["rolling_start"],
                rolling_period=row["rolling_period"],
                transmission_risk_level=row["trl"],
                report_type=None if row["report_type"] is None else ReportType(row["report_type"]),
                days_since_onset=row["days_since_onset"],
            )
            for row in rows
        ]

    def oldest_available(self) -> int | None:
        """The earliest export time of any stored key."""
        row = next(self._db.query("SELECT MIN(available_at) AS oldest FROM keys"))
        return None if row["oldest"] is None else int(row["oldest"])

    def exported_windows(self) -> set[tuple[int, int]]:
        """Windows already exported."""
        return {
            (row["start"], row["end"])
            for row in self._db.query("SELECT start, end FROM export_windows")
        }

    def record_window(self, start: int, end: int, files: int, keys: int, now: float) -> None:
        """Remember that a window was exported."""
        with self._db.atomic():
            self._db.execute(
                "INSERT INTO export_windows (start, end, files, keys, exported_at) VALUES (?, ?, ?, ?, ?)",
                (start, end, files, keys, now),
            )

    def purge(self, before: float) -> int:
        """Delete keys, codes, tokens and certificate ids that expired before ``before``."""
        deleted = 0
        with self._db.atomic():
            for sql, params in (
                ("DELETE FROM keys WHERE (rolling_start + rolling_period) * 600 < ?", (before,)),
                ("DELETE FROM codes WHERE expires_at < ?", (before,)),
                ("DELETE FROM tokens WHERE expires_at < ?", (before,)),
                ("DELETE FROM used_certificates WHERE expires_at < ?", (before,)),
                ("DELETE FROM export_windows WHERE end < ?", (before,)),
            ):
                deleted += self._db.execute(sql, params).rowcount
        return deleted

    def _redeem(self, table: str, column: str, digest: bytes, now: float) -> Grant | None:
        with self._db.atomic():
            rows = list(
                self._db.query(
                    f"UPDATE {table} SET used_at = ? WHERE {column} = ? AND used_at IS NULL"  # noqa: S608 - fixed names
                    " AND expires_at > ? RETURNING test_type, symptom_date",
                    (now, digest, now),
                )
            )
        return Grant(rows[0]["test_type"], rows[0]["symptom_date"]) if rows else None
