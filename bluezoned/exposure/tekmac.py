"""The HMAC that binds a verification certificate to one set of keys (key-distribution.md §2.1).

Client and server compute it from the same canonical text, so it lives here, pure, once.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Iterable
from typing import Final

from bluezoned.models import DiagnosisKey

MIN_HMAC_SECRET_BYTES: Final = 16
"""The verification protocol asks for an HMAC secret of at least 128 bits (key-distribution.md §2.1)."""


def canonical_key_text(keys: Iterable[DiagnosisKey]) -> str:
    """``base64key.start.period[.trl]`` per key, sorted, joined with commas (ens verification protocol)."""
    parts = []
    for key in keys:
        text = f"{base64.b64encode(key.key_data).decode('ascii')}.{key.rolling_start}.{key.rolling_period}"
        if key.transmission_risk_level is not None:
            text += f".{key.transmission_risk_level}"
        parts.append(text)
    return ",".join(sorted(parts))


def tek_hmac(secret: bytes, keys: Iterable[DiagnosisKey]) -> bytes:
    """HMAC-SHA256 under ``secret`` of the canonical text of ``keys`` (32 bytes)."""
    return hmac.digest(secret, canonical_key_text(keys).encode("ascii"), hashlib.sha256)
