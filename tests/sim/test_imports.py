"""The simulator is product code with a narrow import surface: no bleak, click or store."""

from __future__ import annotations

import json
import subprocess
import sys

FORBIDDEN = ["bleak", "click", "bluezoned.store", "sqlite3", "sqlite_utils"]


def test_sim_imports_no_client_cli_or_store() -> None:
    code = (
        "import sys, json; import bluezoned.sim, bluezoned.sim.world; "
        f"print(json.dumps([m for m in {FORBIDDEN!r} if m in sys.modules]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
