"""The diagnosed person's upload (docs/authority-api.md): code -> token -> certificate -> publish.

The verification endpoints never see keys (only an HMAC of them under a fresh random secret);
the publish endpoint never sees the code. Secrets and keys are never logged.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiohttp

from bluezoned.const import (
    TEK_ROLLING_PERIOD,
    UPLOAD_HMAC_SECRET_BYTES,
    UPLOAD_MAX_KEYS,
    UPLOAD_PADDING_MIN_BYTES,
    UPLOAD_PADDING_RANGE_BYTES,
    UPLOAD_REQUEST_TIMEOUT,
)
from bluezoned.errors import InvalidInput, UploadRejected
from bluezoned.exposure.keys import day_start_interval, interval_number, new_tek
from bluezoned.exposure.tekmac import MIN_HMAC_SECRET_BYTES, tek_hmac
from bluezoned.models import DiagnosisKey, Tek
from bluezoned.store import OwnKey, Store

__all__ = [
    "UploadResult",
    "finish_upload",
    "keys_to_upload",
    "publish_key_objects",
    "upload_keys",
]

_log = logging.getLogger(__name__)

MAX_RESPONSE_BYTES: Final = 64 * 1024
"""Answers are a token or a JWT plus 1-2 KiB of padding."""


@dataclass(frozen=True, slots=True)
class UploadResult:
    """A publish the authority accepted: how many keys it inserted, under which test type."""

    inserted: int
    keys: tuple[DiagnosisKey, ...]
    test_type: str
    symptom_date: str | None
    health_authority: str


def keys_to_upload(own: Sequence[OwnKey], now: float, days: int) -> list[DiagnosisKey]:
    """Unreported own keys of the last ``days`` days (today's included, none in the future), newest 30."""
    if days < 1:
        raise InvalidInput("days must be at least 1")
    current = interval_number(now)
    oldest = current - days * TEK_ROLLING_PERIOD
    chosen = [
        DiagnosisKey(k.tek.key_data, k.tek.rolling_start, k.tek.rolling_period)
        for k in own
        if not k.reported and k.tek.rolling_end > oldest and k.tek.rolling_start <= current
    ]
    chosen.sort(key=lambda k: k.rolling_start)
    return chosen[-UPLOAD_MAX_KEYS:]


def publish_key_objects(keys: Sequence[DiagnosisKey]) -> list[dict[str, Any]]:
    """Keys in the publish-API JSON form: base64 ``key``, ``rollingStartNumber``, ``rollingPeriod``."""
    objects: list[dict[str, Any]] = []
    for key in keys:
        item: dict[str, Any] = {
            "key": base64.b64encode(key.key_data).decode("ascii"),
            "rollingStartNumber": key.rolling_start,
            "rollingPeriod": key.rolling_period,
        }
        if key.transmission_risk_level is not None:
            item["transmissionRisk"] = key.transmission_risk_level
        objects.append(item)
    return objects


async def upload_keys(
    server: str,
    code: str,
    keys: Sequence[DiagnosisKey],
    *,
    session: aiohttp.ClientSession | None = None,
    secret: bytes | None = None,
    padding: Callable[[], str] | None = None,
) -> UploadResult:
    """Run the verification flow against ``server`` (its base URL) and publish ``keys``."""
    if not 1 <= len(keys) <= UPLOAD_MAX_KEYS:
        raise InvalidInput(f"upload 1 to {UPLOAD_MAX_KEYS} keys, not {len(keys)}")
    code = code.strip()
    if not code or len(code) > 64 or not code.isprintable():
        raise InvalidInput("the verification code is empty or malformed")
    secret = secret if secret is not None else secrets.token_bytes(UPLOAD_HMAC_SECRET_BYTES)
    if len(secret) < MIN_HMAC_SECRET_BYTES:
        raise InvalidInput(f"the HMAC secret must have at least {MIN_HMAC_SECRET_BYTES} bytes")
    pad = padding or _padding
    base = server.rstrip("/")
    if session is None:
        timeout = aiohttp.ClientTimeout(total=UPLOAD_REQUEST_TIMEOUT)
        async with aiohttp.ClientSession(
            timeout=timeout, cookie_jar=aiohttp.DummyCookieJar()
        ) as own_session:
            return await _flow(own_session, base, code, keys, secret, pad)
    return await _flow(session, base, code, keys, secret, pad)


def finish_upload(
    store: Store, keys: Sequence[DiagnosisKey], now: float, random16: bytes | None = None
) -> Tek:
    """Mark ``keys`` reported and store a fresh TEK from the next interval; returns the new key.

    A reported key is never used again: the daemon advertises the newest unreported key.
    """
    store.mark_reported([k.key_data for k in keys], now)
    fresh = new_tek(random16 or secrets.token_bytes(16), interval_number(now) + 1)
    store.add_own_key(fresh, now)
    return fresh


async def _flow(
    session: aiohttp.ClientSession,
    base: str,
    code: str,
    keys: Sequence[DiagnosisKey],
    secret: bytes,
    pad: Callable[[], str],
) -> UploadResult:
    verified = await _post(
        session, f"{base}/api/verify", "verify", {"code": code, "padding": pad()}
    )
    token = _text(verified, "token", "verify")
    test_type = _text(verified, "testtype", "verify")
    symptom_date = verified.get("symptomDate")
    if symptom_date is not None and not isinstance(symptom_date, str):
        raise UploadRejected("verify", 200, "bad_response", "symptomDate is not a string")
    if test_type == "negative":
        raise UploadRejected("verify", 200, "negative_test", "a negative test publishes no keys")
    # Checked before the single-use token is spent on a certificate.
    onset = _onset_interval(symptom_date)
    mac = base64.b64encode(tek_hmac(secret, keys)).decode("ascii")
    certified = await _post(
        session,
        f"{base}/api/certificate",
        "certificate",
        {"token": token, "ekeyhmac": mac, "padding": pad()},
    )
    certificate = _text(certified, "certificate", "certificate")
    issuer = _issuer(certificate)
    body = {
        "temporaryExposureKeys": publish_key_objects(keys),
        "healthAuthorityID": issuer,
        "verificationPayload": certificate,
        "hmacKey": base64.b64encode(secret).decode("ascii"),
        "symptomOnsetInterval": onset,
        "padding": pad(),
    }
    published = await _post(session, f"{base}/v1/publish", "publish", body)
    inserted = published.get("insertedExposures")
    if isinstance(inserted, bool) or not isinstance(inserted, int):
        raise UploadRejected("publish", 200, "bad_response", "no insertedExposures count")
    _log.info("uploaded %d key(s), %d inserted", len(keys), inserted)
    return UploadResult(inserted, tuple(keys), test_type, symptom_date, issuer)


async def _post(
    session: aiohttp.ClientSession, url: str, step: str, body: dict[str, Any]
) -> dict[str, Any]:
    try:
        async with session.post(url, json=body) as response:
            data = await response.content.read(MAX_RESPONSE_BYTES + 1)
            status = response.status
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise UploadRejected(step, None, "unreachable", str(exc) or type(exc).__name__) from None
    if len(data) > MAX_RESPONSE_BYTES:
        raise UploadRejected(step, status, "bad_response", "answer too large")
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError):
        document = None
    if not isinstance(document, dict):
        raise UploadRejected(step, status, "bad_response", "answer is not a JSON object")
    if status != 200:
        code = document.get("code")
        error = document.get("error")
        raise UploadRejected(
            step,
            status,
            code if isinstance(code, str) else "error",
            error if isinstance(error, str) else "",
        )
    return document


def _text(document: dict[str, Any], field: str, step: str) -> str:
    value = document.get(field)
    if not isinstance(value, str) or not value:
        raise UploadRejected(step, 200, "bad_response", f"no {field!r} in the answer")
    return value


def _issuer(certificate: str) -> str:
    """The ``iss`` claim, read without verifying: the key server verifies, the device only routes."""
    try:
        payload = certificate.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError, binascii.Error):
        raise UploadRejected("certificate", 200, "bad_response", "not a JWT") from None
    issuer = claims.get("iss") if isinstance(claims, dict) else None
    if not isinstance(issuer, str) or not issuer:
        raise UploadRejected("certificate", 200, "bad_response", "the certificate names no issuer")
    return issuer


def _onset_interval(symptom_date: str | None) -> int:
    if not symptom_date:
        return 0
    try:
        return day_start_interval(symptom_date)
    except InvalidInput:
        raise UploadRejected("verify", 200, "bad_response", "symptomDate is not a date") from None


def _padding() -> str:
    size = UPLOAD_PADDING_MIN_BYTES + secrets.randbelow(UPLOAD_PADDING_RANGE_BYTES)
    return base64.b64encode(secrets.token_bytes(size * 3 // 4)).decode("ascii")[:size]
