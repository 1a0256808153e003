"""The committed protobuf module is exactly what the vendored schema generates (``make proto``)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

PROTO_DIR = Path(__file__).resolve().parents[2] / "bluezoned" / "exposure" / "proto"


def test_generated_module_matches_schema(tmp_path: Path) -> None:
    pytest.importorskip("grpc_tools", reason="grpcio-tools (a dev extra) regenerates the module")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "grpc_tools.protoc",
            f"-I{PROTO_DIR}",
            f"--python_out={tmp_path}",
            f"--pyi_out={tmp_path}",
            str(PROTO_DIR / "export.proto"),
        ],
        check=True,
    )
    for name in ("export_pb2.py", "export_pb2.pyi"):
        assert (tmp_path / name).read_bytes() == (PROTO_DIR / name).read_bytes(), (
            f"{name} is stale: run `make proto`"
        )
