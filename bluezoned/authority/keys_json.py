"""Parse diagnosis keys given as JSON in the publish-API form (key-distribution.md §2.2)."""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Final

from bluezoned.const import TEK_LENGTH, TEK_ROLLING_PERIOD
from bluezoned.errors import BadRecords, InvalidInput
from bluezoned.models import DiagnosisKey, ReportType

MAX_KEYS_JSON_BYTES: Final = 64 * 1024 * 1024
"""About a million keys in the JSON form; a larger file is the wrong file."""
_INT32: Final = 2**31


def parse_keys_json(data: bytes, source: str = "<keys>") -> list[DiagnosisKey]:
    """Keys from ``{"temporaryExposureKeys": [...]}`` or a bare list of key objects.

    Each object: ``key`` (base64 of 16 bytes), ``rollingStartNumber``, optional
    ``rollingPeriod`` (default 144), ``transmissionRisk`` (0..8), ``reportType`` (number or
    name such as ``CONFIRMED_TEST``), ``daysSinceOnsetOfSymptoms`` (-14..14). Any bad key
    refuses the whole file: BadRecords names each one by its position (1-based).
    """
    if len(data) > MAX_KEYS_JSON_BYTES:
        raise InvalidInput(
            f"{source}: {len(data)} bytes, more than the {MAX_KEYS_JSON_BYTES} allowed"
        )
    try:
        document = json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"{source}: not JSON: {exc}") from exc
    items = document.get("temporaryExposureKeys") if isinstance(document, dict) else document
    if not isinstance(items, list):
        raise InvalidInput(
            f"{source}: expected a list of keys or an object with 'temporaryExposureKeys'"
        )
    keys: list[DiagnosisKey] = []
    problems: list[tuple[int, str]] = []
    for position, item in enumerate(items, start=1):
        try:
            keys.append(parse_key_object(item))
        except ValueError as exc:
            problems.append((position, str(exc)))
    if problems:
        raise BadRecords(f"{source} (key number)", problems, len(problems), "nothing was published")
    return keys


def parse_key_object(item: Any) -> DiagnosisKey:
    """One key object of the publish-API form; ValueError naming the bad field."""
    if not isinstance(item, dict):
        raise ValueError("not a JSON object")
    unknown = set(item) - {
        "key",
        "rollingStartNumber",
        "rollingPeriod",
        "transmissionRisk",
        "reportType",
        "daysSinceOnsetOfSymptoms",
    }
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")
    try:
        key_data = base64.b64decode(str(item["key"]), validate=True)
    except KeyError:
        raise ValueError("'key' is missing") from None
    except binascii.Error as exc:
        raise ValueError(f"'key' is not base64: {exc}") from exc
    if len(key_data) != TEK_LENGTH:
        raise ValueError(f"'key' decodes to {len(key_data)} bytes, not {TEK_LENGTH}")
    if "rollingStartNumber" not in item:
        raise ValueError("'rollingStartNumber' is missing")
    start = _integer(item, "rollingStartNumber", 0, _INT32 - 1, default=None)
    period = _integer(item, "rollingPeriod", 1, TEK_ROLLING_PERIOD, default=TEK_ROLLING_PERIOD)
    if start is None:
        raise ValueError("'rollingStartNumber' is null")
    trl = _integer(item, "transmissionRisk", 0, 8, default=None)
    onset = _integer(item, "daysSinceOnsetOfSymptoms", -14, 14, default=None)
    return DiagnosisKey(
        key_data=key_data,
        rolling_start=start,
        rolling_period=period if period is not None else TEK_ROLLING_PERIOD,
        transmission_risk_level=trl,
        report_type=_report_type(item.get("reportType")),
        days_since_onset=onset,
    )


def _integer(
    item: dict[str, Any], name: str, low: int, high: int, default: int | None
) -> int | None:
    value: object = item.get(name, default)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"'{name}' must be an integer, got {value!r}")
    if not low <= value <= high:
        raise ValueError(f"'{name}' {value} outside {low}..{high}")
    return value


def _report_type(value: Any) -> ReportType | None:
    if value is None:
        return None
    try:
        if isinstance(value, str) and not value.isdigit():
            return ReportType[value.upper()]
        return ReportType(int(value))
    except (KeyError, ValueError):
        raise ValueError(
            f"'reportType' {value!r} is not one of {', '.join(t.name for t in ReportType)}"
        ) from None
