"""The gRPC contract compiles with the pinned grpcio-tools and follows the style rules."""

from __future__ import annotations

import re
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parents[1] / "proto"


def test_protos_compile(tmp_path: Path) -> None:
    from grpc_tools import protoc

    files = sorted(str(p.relative_to(PROTO_DIR)) for p in PROTO_DIR.rglob("*.proto"))
    assert files
    code = protoc.main(["protoc", f"-I{PROTO_DIR}", f"--python_out={tmp_path}", f"--grpc_python_out={tmp_path}", *files])
    assert code == 0
    assert (tmp_path / "secmon" / "v1" / "ingest_pb2_grpc.py").exists()


def test_enums_start_with_unspecified_and_package_is_versioned() -> None:
    for proto in PROTO_DIR.rglob("*.proto"):
        text = proto.read_text()
        assert "package secmon.v1;" in text
        for name, body in re.findall(r"enum (\w+) \{([^}]*)\}", text):
            first = re.search(r"(\w+) = 0;", body)
            assert first and first.group(1).endswith("_UNSPECIFIED"), f"{proto.name}: {name}"
