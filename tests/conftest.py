"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.fixtures_bluez"]

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED_DIR = Path(os.environ.get("BLUEZONED_SHARED", REPO_ROOT.parent / "shared"))
"""The project's shared reference folder, read in place and never copied into the repo."""
GAEN_EXPORTS = SHARED_DIR / "data" / "gaen-exports"
TEST_DATA = Path(__file__).resolve().parent / "data"


@pytest.fixture
def gaen_exports() -> Path:
    """The real GAEN export samples in ../shared/data/gaen-exports, or a clean skip."""
    if not GAEN_EXPORTS.is_dir():
        pytest.skip(f"shared data not found at {GAEN_EXPORTS} (set BLUEZONED_SHARED)")
    return GAEN_EXPORTS
