"""The authority's HTTP server: verification, publish, the export worker and static files.

The API is documented in ``docs/authority-api.md``. Blocking work (SQLite, signing) runs
on one worker thread that owns the database; time and randomness are injected.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import concurrent.futures
import contextlib
import hashlib
import hmac
import json
import logging
import os
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

import jwt
from aiohttp import web
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from bluezoned.authority import publisher
from bluezoned.authority.db import AuthorityStore, Grant, UploadedKey
from bluezoned.authority.keys_json import parse_key_object
from bluezoned.authority.offline import INDEX_NAME
from bluezoned.authority.output import ExportOutput
from bluezoned.const import MAX_PEM_BYTES, TEK_ROLLING_PERIOD
from bluezoned.errors import InvalidInput
from bluezoned.exposure import keyfile
from bluezoned.exposure.keys import day_start_interval
from bluezoned.exposure.tekmac import MIN_HMAC_SECRET_BYTES, tek_hmac
from bluezoned.files import read_bounded
from bluezoned.models import DiagnosisKey, ReportType

_log = logging.getLogger(__name__)
_T = TypeVar("_T")

CODE_DIGITS: Final = 8
CODE_LIFETIME: Final = 15 * 60
TOKEN_LIFETIME: Final = 24 * 3600
CERTIFICATE_LIFETIME: Final = 15 * 60
"""Verification lifetimes of Google's verification server (key-distribution.md §2.1)."""
MAX_REQUEST_BYTES: Final = 64 * 1024
MAX_KEYS_PER_PUBLISH: Final = 30
MAX_KEYS_PER_START: Final = 3
"""ens publish limits (key-distribution.md §2.2)."""
MIN_WINDOW_AGE: Final = 2 * 3600
"""A window is exported only once it ended 2 h ago (ens MIN_WINDOW_AGE)."""
MAX_TRACKED_PEERS: Final = 10_000
"""Peers whose wrong codes are remembered: bounded, since anyone can send from many addresses."""
FAILED_ATTEMPTS_PER_MINUTE: Final = 10
"""Wrong codes tolerated per client address per minute: 10^8 codes make guessing hopeless."""
AUDIENCE: Final = "bluezoned-publish"
_TEST_TYPES: Final = {
    "confirmed": ReportType.CONFIRMED_TEST,
    "likely": ReportType.CONFIRMED_CLINICAL_DIAGNOSIS,
}
_DEFAULT_TRL: Final = {"confirmed": 2, "likely": 4}
"""Transmission risk when the client gives none (ens)."""
TEST_TYPES: Final = ("confirmed", "likely", "negative")


@dataclass(frozen=True, slots=True)
class AuthorityConfig:
    """Everything the server is configured with."""

    region: str
    issuer: str
    signers: tuple[keyfile.Signer, ...]
    certificate_key: ec.EllipticCurvePrivateKey
    certificate_kid: str
    root: str
    period_seconds: int = 3600
    export_every_seconds: float = 60.0


CERTIFICATE_KEY_FILE: Final = "certificate-key.pem"


def load_or_create_certificate_key(path: Path) -> ec.EllipticCurvePrivateKey:
    """The key that signs verification certificates: read from ``path``, or made there (mode 0600)."""
    try:
        if path.exists():
            pem = read_bounded(path, MAX_PEM_BYTES, what="a PEM private key")
            key = serialization.load_pem_private_key(pem, password=None)
            if not isinstance(key, ec.EllipticCurvePrivateKey):
                raise InvalidInput(f"{path}: not an EC private key")
            return key
        path.parent.mkdir(parents=True, exist_ok=True)
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as handle:
            handle.write(pem)
        return key
    except (OSError, ValueError) as exc:
        raise InvalidInput(f"{path}: cannot read or create the certificate key: {exc}") from exc


def certificate_kid(key: ec.EllipticCurvePrivateKey) -> str:
    """A stable key id: the first 16 hex digits of the SHA-256 of the public key."""
    public = key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(public).hexdigest()[:16]


def hash_secret(value: str) -> bytes:
    """SHA-256 of a code or token: the database never holds the secret itself."""
    return hashlib.sha256(value.encode("utf-8")).digest()


def new_code(rng: random.Random) -> str:
    """A fresh 8-digit verification code."""
    return f"{rng.randrange(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def issue_code(
    store: AuthorityStore,
    *,
    test_type: str,
    symptom_date: str | None,
    now: float,
    rng: random.Random,
) -> str:
    """Store (as a hash) and return a code valid for 15 minutes."""
    if test_type not in TEST_TYPES:
        raise InvalidInput(f"test type {test_type!r} is not one of {', '.join(TEST_TYPES)}")
    if symptom_date is not None:
        day_start_interval(symptom_date)  # refuses a malformed date before a code exists
    code = new_code(rng)
    store.add_code(hash_secret(code), Grant(test_type, symptom_date), now, now + CODE_LIFETIME)
    return code


@dataclass
class AuthorityServer:
    """The aiohttp application and its export worker, around one store and one worker thread."""

    config: AuthorityConfig
    store: AuthorityStore
    output: ExportOutput
    clock: Callable[[], float]
    rng: random.Random
    _executor: concurrent.futures.ThreadPoolExecutor = field(
        default_factory=lambda: concurrent.futures.ThreadPoolExecutor(
            1, thread_name_prefix="authority-db"
        )
    )
    _failures: dict[str, list[float]] = field(default_factory=dict)
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    def app(self) -> web.Application:
        """The web application: API routes, static exports, and the export worker on startup."""
        application = web.Application(client_max_size=MAX_REQUEST_BYTES)
        application.router.add_post("/api/verify", self._verify)
        application.router.add_post("/api/certificate", self._certificate)
        application.router.add_post("/v1/publish", self._publish)
        application.router.add_get("/exports/{root}/{name}", self._static)
        application.on_startup.append(self._start_worker)
        application.on_cleanup.append(self._stop_worker)
        return application

    async def export_once(self) -> list[publisher.ExportFile]:
        """Export every closed window not yet exported, then rewrite the index; returns new files."""
        return await self._run(self._export_windows, self.clock())

    # --- handlers -----------------------------------------------------------------------

    async def _verify(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        code = body.get("code")
        peer = request.remote or "?"
        if self._too_many_failures(peer):
            return _error(429, "rate_limited", "too many wrong codes; wait a minute")
        if not isinstance(code, str) or not code.isdigit() or len(code) != CODE_DIGITS:
            return _error(400, "bad_request", f"'code' must be {CODE_DIGITS} digits")
        now = self.clock()
        grant = await self._run(self.store.redeem_code, hash_secret(code), now)
        if grant is None:
            self._note_failure(peer, now)
            return _error(401, "code_invalid", "the code is unknown, used or expired")
        token = base64.urlsafe_b64encode(self.rng.randbytes(32)).decode().rstrip("=")
        await self._run(self.store.add_token, hash_secret(token), grant, now + TOKEN_LIFETIME)
        return _reply(
            self.rng,
            {"token": token, "testtype": grant.test_type, "symptomDate": grant.symptom_date},
        )

    async def _certificate(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        token, mac_text = body.get("token"), body.get("ekeyhmac")
        mac = _b64(mac_text)
        if not isinstance(token, str) or mac is None or len(mac) != 32:
            return _error(
                400, "bad_request", "'token' and a base64 'ekeyhmac' of 32 bytes are required"
            )
        now = self.clock()
        grant = await self._run(self.store.redeem_token, hash_secret(token), now)
        if grant is None:
            return _error(401, "token_invalid", "the token is unknown, used or expired")
        onset = day_start_interval(grant.symptom_date) if grant.symptom_date else 0
        claims = {
            "iss": self.config.issuer,
            "aud": AUDIENCE,
            "iat": int(now),
            "nbf": int(now),
            "exp": int(now) + CERTIFICATE_LIFETIME,
            "jti": base64.urlsafe_b64encode(self.rng.randbytes(16)).decode().rstrip("="),
            "tekmac": base64.b64encode(mac).decode(),
            "reportType": grant.test_type,
            "symptomOnsetInterval": onset,
        }
        certificate = jwt.encode(
            claims,
            self.config.certificate_key,
            algorithm="ES256",
            headers={"kid": self.config.certificate_kid},
        )
        return _reply(self.rng, {"certificate": certificate})

    async def _publish(self, request: web.Request) -> web.Response:
        body = await _json_body(request)
        now = self.clock()
        try:
            claims = self._check_certificate(body, now)
            keys = self._check_keys(body, claims, now)
        except _Refusal as refusal:
            return _error(refusal.status, refusal.code, refusal.message)
        created_hour = int(now // 3600 * 3600)
        uploads = [
            UploadedKey(
                key,
                created_hour,
                max(created_hour, publisher.embargo_until(key)),
            )
            for key in keys
        ]
        inserted = await self._run(
            self.store.publish, str(claims["jti"]), float(claims["exp"]), uploads
        )
        if inserted is None:
            return _error(401, "certificate_used", "this certificate was already used")
        return _reply(self.rng, {"insertedExposures": inserted})

    async def _static(self, request: web.Request) -> web.StreamResponse:
        root, name = request.match_info["root"], request.match_info["name"]
        if root != self.config.root or (
            name != INDEX_NAME and publisher.ExportName.parse(name) is None
        ):
            raise web.HTTPNotFound()
        data = await self._run(self.output.read, name)
        if data is None:
            raise web.HTTPNotFound()
        etag = f'"{hashlib.sha256(data).hexdigest()[:32]}"'
        if name == INDEX_NAME:
            headers = {"Cache-Control": "no-cache, max-age=0", "ETag": etag}
            content_type = "text/plain"
        else:
            headers = {"Cache-Control": "public, max-age=86400, immutable", "ETag": etag}
            content_type = "application/zip"
        if etag in request.headers.get("If-None-Match", ""):
            return web.Response(status=304, headers=headers)
        return web.Response(
            body=data,
            headers=headers,
            content_type=content_type,
            charset="us-ascii" if name == INDEX_NAME else None,
        )

    # --- checks ---------------------------------------------------------------------------

    def _check_certificate(self, body: dict[str, Any], now: float) -> dict[str, Any]:
        certificate = body.get("verificationPayload")
        if not isinstance(certificate, str):
            raise _Refusal(
                400, "bad_request", "'verificationPayload' (the certificate) is required"
            )
        try:
            header = jwt.get_unverified_header(certificate)
            if (
                header.get("kid") != self.config.certificate_kid
                or body.get("healthAuthorityID") != self.config.issuer
            ):
                raise _Refusal(401, "certificate_invalid", "unknown issuer or key id")
            # Time claims are checked against the injected clock below, not PyJWT's.
            claims: dict[str, Any] = jwt.decode(
                certificate,
                self.config.certificate_key.public_key(),
                algorithms=["ES256"],
                audience=AUDIENCE,
                issuer=self.config.issuer,
                options={
                    "verify_exp": False,
                    "verify_nbf": False,
                    "verify_iat": False,
                    "require": ["exp", "nbf", "jti", "tekmac"],
                },
            )
        except jwt.PyJWTError as exc:
            raise _Refusal(401, "certificate_invalid", f"certificate refused: {exc}") from exc
        if not float(claims["nbf"]) <= now < float(claims["exp"]):
            raise _Refusal(
                401, "certificate_invalid", "the certificate has expired or is not yet valid"
            )
        if claims.get("reportType") not in _TEST_TYPES:
            raise _Refusal(400, "negative_test", "a negative test does not allow publishing keys")
        return claims

    def _check_keys(
        self, body: dict[str, Any], claims: dict[str, Any], now: float
    ) -> list[DiagnosisKey]:
        items = body.get("temporaryExposureKeys")
        if not isinstance(items, list) or not 1 <= len(items) <= MAX_KEYS_PER_PUBLISH:
            raise _Refusal(400, "bad_key_count", f"send 1 to {MAX_KEYS_PER_PUBLISH} keys")
        try:
            keys = [parse_key_object(item) for item in items]
        except ValueError as exc:
            raise _Refusal(400, "bad_key", str(exc)) from exc
        secret = _b64(body.get("hmacKey"))
        expected = _b64(claims.get("tekmac"))
        if secret is None or len(secret) < MIN_HMAC_SECRET_BYTES:
            raise _Refusal(
                400,
                "bad_request",
                f"'hmacKey' must be base64 of at least {MIN_HMAC_SECRET_BYTES} bytes",
            )
        if expected is None or not hmac.compare_digest(tek_hmac(secret, keys), expected):
            raise _Refusal(400, "hmac_mismatch", "the keys do not match the certificate's HMAC")
        starts = [key.rolling_start for key in keys]
        if max(starts.count(start) for start in starts) > MAX_KEYS_PER_START:
            raise _Refusal(
                400, "bad_key", f"more than {MAX_KEYS_PER_START} keys share one start interval"
            )
        verdict = publisher.classify_keys(keys, now=now)
        for refused in verdict.refused:
            raise _Refusal(400, refused.code, refused.reason)
        test_type = str(claims["reportType"])
        onset = int(claims.get("symptomOnsetInterval") or 0)
        return [
            DiagnosisKey(
                key_data=key.key_data,
                rolling_start=key.rolling_start,
                rolling_period=key.rolling_period,
                transmission_risk_level=(
                    key.transmission_risk_level
                    if key.transmission_risk_level is not None
                    else _DEFAULT_TRL[test_type]
                ),
                report_type=_TEST_TYPES[test_type],
                days_since_onset=(
                    max(-14, min(14, (key.rolling_start - onset) // TEK_ROLLING_PERIOD))
                    if onset
                    else None
                ),
            )
            for key in keys
        ]

    def _too_many_failures(self, peer: str) -> bool:
        now = self.clock()
        recent = [t for t in self._failures.get(peer, []) if now - t < 60]
        if recent:
            self._failures[peer] = recent
        else:
            self._failures.pop(peer, None)
        return len(recent) >= FAILED_ATTEMPTS_PER_MINUTE

    def _note_failure(self, peer: str, now: float) -> None:
        # Addresses are attacker-chosen: past the cap, forget the peers without a recent failure.
        if peer not in self._failures and len(self._failures) >= MAX_TRACKED_PEERS:
            for stale in [p for p, times in self._failures.items() if now - times[-1] >= 60]:
                del self._failures[stale]
            if len(self._failures) >= MAX_TRACKED_PEERS:
                self._failures.pop(next(iter(self._failures)))
        self._failures.setdefault(peer, []).append(now)

    # --- export worker --------------------------------------------------------------------

    def _export_windows(self, now: float) -> list[publisher.ExportFile]:
        period = self.config.period_seconds
        output = self.output
        done = self.store.exported_windows()
        oldest = self.store.oldest_available()
        written: list[publisher.ExportFile] = []
        if oldest is not None:
            last_closed_end = int((now - MIN_WINDOW_AGE) // period * period)
            start = max(
                int(oldest // period * period), last_closed_end - publisher.EXPORT_RETENTION_SECONDS
            )
            while start + period <= last_closed_end:
                end = start + period
                if (start, end) not in done:
                    keys = self.store.keys_available(start, end)
                    files = publisher.build_exports(
                        keys,
                        region=self.config.region,
                        start_timestamp=start,
                        end_timestamp=end,
                        signers=self.config.signers,
                        rng=self.rng,
                    )
                    for export in files:
                        output.write(export.name, export.data)
                    self.store.record_window(start, end, len(files), len(keys), now)
                    written += files
                start = end
        listed, deletable = publisher.retention_split(output.names(), now=now)
        output.write(INDEX_NAME, publisher.index_text(listed, self.config.root).encode("ascii"))
        for name in deletable:
            output.delete(name)
        self.store.purge(now - publisher.EXPORT_RETENTION_SECONDS)
        return written

    async def _start_worker(self, _: web.Application) -> None:
        task = asyncio.create_task(self._worker_loop(), name="export-worker")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _stop_worker(self, _: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._executor.shutdown(wait=True)

    async def _worker_loop(self) -> None:
        while True:
            try:
                files = await self.export_once()
                if files:
                    _log.info("exported %d file(s)", len(files))
            except Exception:  # noqa: BLE001 - one failed run must not stop publishing for good
                _log.exception("export run failed; retrying next period")
            await asyncio.sleep(self.config.export_every_seconds)

    async def _run(self, func: Callable[..., _T], *args: Any) -> _T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, lambda: func(*args))


class _Refusal(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise web.HTTPBadRequest(
            text=json.dumps({"error": f"not JSON: {exc}", "code": "bad_request"})
        ) from exc
    if not isinstance(body, dict):
        raise web.HTTPBadRequest(
            text=json.dumps({"error": "expected a JSON object", "code": "bad_request"})
        )
    return body


def _b64(value: object) -> bytes | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None


def _padding(rng: random.Random) -> str:
    return base64.b64encode(rng.randbytes(768 + rng.randrange(768))).decode()


def _reply(rng: random.Random, payload: dict[str, Any]) -> web.Response:
    return web.json_response({**payload, "padding": _padding(rng)})


def _error(status: int, code: str, message: str) -> web.Response:
    padding = base64.b64encode(random.SystemRandom().randbytes(768)).decode()
    return web.json_response({"error": message, "code": code, "padding": padding}, status=status)
