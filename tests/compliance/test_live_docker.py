"""Live mode over a Docker-API-shaped HTTP server on a real unix socket (no Docker needed)."""

from __future__ import annotations

import json
import socketserver
import threading
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import polars as pl

from secmon.compliance import scan_docker

CONTAINER = {"Id": "c0ffee", "Name": "/api", "State": {"Status": "running"}, "Config": {"User": "app"},
             "HostConfig": {"Privileged": True, "Memory": 268435456, "PidsLimit": 100}, "Mounts": []}
IMAGE = {"Id": "sha256:feed", "RepoTags": ["api:1"], "RootFS": {}, "Config": {"User": ""}}
ROUTES = {
    "/containers/json?all=1": [{"Id": "c0ffee"}],
    "/containers/c0ffee/json": CONTAINER,
    "/images/json": [{"Id": "sha256:feed"}],
    "/images/sha256:feed/json": IMAGE,
}


class _Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        body = ROUTES.get(self.path)
        data = json.dumps(body if body is not None else {"message": "no such route"}).encode()
        self.send_response(200 if body is not None else 404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def address_string(self) -> str:
        return "unix"

    def log_message(self, *args: object) -> None:
        pass


class _UnixHTTPServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True


def test_live_socket(tmp_path: Path) -> None:
    sock = tmp_path / "docker.sock"
    server = _UnixHTTPServer(str(sock), _Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        report = scan_docker(live_socket=str(sock))
    finally:
        server.shutdown()
        server.server_close()
    res = report.results
    assert res.filter((pl.col("check_id") == "5.5") & (pl.col("resource") == "container/api"))["status"].to_list() == ["fail"]
    assert res.filter((pl.col("check_id") == "5.11") & (pl.col("resource") == "container/api"))["status"].to_list() == ["pass"]
    assert res.filter((pl.col("check_id") == "4.1-image") & (pl.col("resource") == "image/api:1"))["status"].to_list() == ["fail"]
