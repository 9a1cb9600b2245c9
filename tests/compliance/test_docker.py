"""Docker collection: daemon.json + dockerd flags, inspect output, host files, audit rules."""

from __future__ import annotations

import json
import os
from pathlib import Path

import polars as pl
import pytest

from secmon.compliance import scan_docker
from secmon.errors import InputError


def _status(report, check_id: str, resource: str | None = None) -> list[str]:
    rows = report.results.filter(pl.col("check_id") == check_id)
    if resource is not None:
        rows = rows.filter(pl.col("resource") == resource)
    return rows["status"].to_list()


def test_daemon_json_and_flags(tmp_path: Path) -> None:
    root = tmp_path / "host"
    (root / "etc/docker").mkdir(parents=True)
    (root / "lib/systemd/system").mkdir(parents=True)
    (root / "etc/docker/daemon.json").write_text(json.dumps({"icc": False, "insecure-registries": [], "log-driver": "journald", "tlscacert": "/etc/docker/ca.pem"}))
    (root / "lib/systemd/system/docker.service").write_text(
        "[Service]\nExecStart=/usr/bin/dockerd -H fd:// -H tcp://0.0.0.0:2376 --insecure-registry=r:5000 --live-restore\n"
    )
    (root / "etc/docker/ca.pem").write_text("ca")
    os.chmod(root / "etc/docker/ca.pem", 0o644)
    os.chmod(root / "lib/systemd/system/docker.service", 0o644)
    (root / "etc/audit").mkdir(parents=True)
    (root / "etc/audit/audit.rules").write_text("-w /usr/bin/dockerd -k docker\n# -w /var/lib/docker -k docker\n-a exit,always -F path=/usr/bin/runc -k docker\n")
    report = scan_docker(root=str(root))
    assert report.issues == []
    assert _status(report, "2.2") == ["pass"]
    assert _status(report, "2.5") == ["fail"]  # the flag adds a registry to the empty list
    assert _status(report, "2.7") == ["fail"]  # tcp:// without tlsverify
    assert _status(report, "2.15") == ["pass"]
    assert _status(report, "2.13") == ["pass"]
    assert _status(report, "3.2", "/lib/systemd/system/docker.service") == ["pass"]
    assert _status(report, "3.10", "/etc/docker/ca.pem") == ["fail"]  # 644 grants more than 444
    assert _status(report, "1.1.3") == ["pass"]
    assert _status(report, "1.1.5") == ["fail"]  # commented-out rule does not count
    assert _status(report, "1.1.18") == ["pass"]


def test_no_tcp_socket_makes_tls_not_applicable(tmp_path: Path) -> None:
    cfg = tmp_path / "daemon.json"
    cfg.write_text("{}")
    report = scan_docker(daemon_config=str(cfg))
    assert _status(report, "2.7") == ["not_applicable"]
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputError, match="bad.json:1: invalid JSON"):
        scan_docker(daemon_config=str(bad))


CONTAINER = {
    "Id": "0123456789abcdef", "Name": "/web", "State": {"Status": "running"},
    "AppArmorProfile": "docker-default",
    "Config": {"User": "", "Healthcheck": {"Test": ["CMD", "true"]}},
    "HostConfig": {"Privileged": True, "NetworkMode": "host", "Memory": 0, "CapAdd": ["cap_sys_admin"], "PidsLimit": None,
                   "RestartPolicy": {"Name": "on-failure", "MaximumRetryCount": 0}, "SecurityOpt": ["seccomp=unconfined"],
                   "PortBindings": {"80/tcp": [{"HostIp": "", "HostPort": "80"}]}},
    "Mounts": [{"Source": "/etc", "Destination": "/host-etc", "RW": True, "Propagation": "rshared"},
               {"Source": "/var/run/docker.sock", "Destination": "/var/run/docker.sock", "RW": False}],
}
IMAGE = {"Id": "sha256:abc", "RepoTags": ["app:1"], "RootFS": {}, "Config": {"User": "1000"}}


def test_inspect_containers_and_images(tmp_path: Path) -> None:
    f = tmp_path / "inspect.json"
    f.write_text(json.dumps([CONTAINER, IMAGE, {"nope": 1}]))
    report = scan_docker(inspect_files=[str(f)])
    assert [i.reason for i in report.issues] == ["item 2 is not docker inspect output (no 'Id')"]
    fails = {r for r in report.results.filter((pl.col("status") == "fail") & (pl.col("resource") == "container/web"))["check_id"]}
    assert {"4.1", "5.4", "5.5", "5.6", "5.8", "5.10", "5.11", "5.14", "5.15", "5.20", "5.22", "5.29", "5.32", "C.5.3.3"} <= fails
    assert _status(report, "5.2", "container/web") == ["pass"]
    assert _status(report, "5.27", "container/web") == ["pass"]
    assert _status(report, "4.1-image", "image/app:1") == ["pass"]
    assert _status(report, "4.6-image", "image/app:1") == ["fail"]


def test_bad_dockerfile_reported_and_others_checked(tmp_path: Path) -> None:
    good = tmp_path / "Dockerfile"
    good.write_text("FROM alpine:3.20\nRUN apk add --no-cache curl\nUSER 10001\nHEALTHCHECK CMD true\n")
    bad = tmp_path / "Dockerfile.bad"
    bad.write_text("FROM alpine\nFROBNICATE\n")
    report = scan_docker(dockerfiles=[str(good), str(bad)])
    assert len(report.issues) == 1 and "unknown instruction 'FROBNICATE'" in str(report.issues[0]) and ":2" in str(report.issues[0])
    assert _status(report, "4.1-dockerfile", str(good)) == ["pass"]
    assert _status(report, "4.6-dockerfile", str(good)) == ["pass"]


def test_regression_docker_bench_decimal_mode_comparison(tmp_path: Path) -> None:
    # docker-bench compares `stat %a` as decimal numbers: "620" <= "644" passes although 0620
    # grants group write, which 0644 does not. Modes are compared bit by bit here.
    root = tmp_path / "host"
    (root / "etc/docker").mkdir(parents=True)
    cfg = root / "etc/docker/daemon.json"
    cfg.write_text("{}")
    os.chmod(cfg, 0o620)
    report = scan_docker(root=str(root))
    assert _status(report, "3.18", "/etc/docker/daemon.json") == ["fail"]
    os.chmod(cfg, 0o440)
    assert _status(scan_docker(root=str(root)), "3.18", "/etc/docker/daemon.json") == ["pass"]
