"""The canonical key text and HMAC shared by the upload client and the authority server."""

from __future__ import annotations

import hashlib
import hmac

from bluezoned.exposure.tekmac import canonical_key_text, tek_hmac
from bluezoned.models import DiagnosisKey

A = DiagnosisKey(bytes(16), 2649980, 1, transmission_risk_level=8)
B = DiagnosisKey(b"\xff" * 16, 2649866, 114)


def test_canonical_text_sorts_and_omits_absent_risk() -> None:
    assert canonical_key_text([A, B]) == canonical_key_text([B, A])
    assert (
        canonical_key_text([B, A])
        == "/////////////////////w==.2649866.114,AAAAAAAAAAAAAAAAAAAAAA==.2649980.1.8"
    )


def test_hmac_is_sha256_over_the_canonical_text() -> None:
    secret = b"s" * 32
    expected = hmac.new(secret, canonical_key_text([A, B]).encode(), hashlib.sha256).digest()
    assert tek_hmac(secret, [B, A]) == expected
    assert tek_hmac(secret, [A]) != expected
    assert tek_hmac(b"t" * 32, [A, B]) != expected
