"""The CWA v2 preset against the 29 reference cases of cwa-app-android, read in place."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from bluezoned.exposure.presets import CWA_V2, RISK_HIGH, RISK_LOW, cwa_parameters_from_mapping
from bluezoned.exposure.risk import ExposureWindow, cwa_risk

CASES = "cwa-app-android/exposure-windows-risk-calculation.json"


def _load(gaen_exports: Path) -> dict[str, Any]:
    path = gaen_exports / CASES
    if not path.is_file():
        pytest.skip(f"CWA risk test cases not found at {path}")
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def _windows(case: dict[str, Any]) -> list[ExposureWindow]:
    return [
        ExposureWindow.of(
            -w["ageInDays"],
            [
                (s["minAttenuation"], s["typicalAttenuation"], s["secondsSinceLastScan"])
                for s in w["scanInstances"]
            ],
            report_type=w["reportType"],
            infectiousness=w["infectiousness"],
            calibration_confidence=w["calibrationConfidence"],
        )
        for w in case["exposureWindows"]
    ]


def _age(day: int | None) -> int | None:
    return None if day is None else -day


def test_file_configuration_is_the_shipped_preset(gaen_exports: Path) -> None:
    data = _load(gaen_exports)
    parsed = cwa_parameters_from_mapping(data["defaultRiskCalculationConfiguration"], CWA_V2.name)
    assert parsed == CWA_V2


def test_all_29_reference_cases(gaen_exports: Path) -> None:
    cases = _load(gaen_exports)["testCases"]
    assert len(cases) == 29
    failures = []
    for case in cases:
        result = cwa_risk(_windows(case), CWA_V2)
        got = {
            "expTotalRiskLevel": result.total_risk_level,
            "expAgeOfMostRecentDateWithLowRisk": _age(result.most_recent_day_low),
            "expAgeOfMostRecentDateWithHighRisk": _age(result.most_recent_day_high),
            "expNumberOfDaysWithLowRisk": result.days_low,
            "expNumberOfDaysWithHighRisk": result.days_high,
            "expTotalMinimumDistinctEncountersWithLowRisk": result.distinct_encounters_low,
            "expTotalMinimumDistinctEncountersWithHighRisk": result.distinct_encounters_high,
        }
        want = {k: v for k, v in case.items() if k.startswith("exp") and k != "exposureWindows"}
        if got != want:
            failures.append((case["description"], got, want))
    assert failures == []


def test_levels_are_cwa_enum_values() -> None:
    assert (RISK_LOW, RISK_HIGH) == (1, 2)
