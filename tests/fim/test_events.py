"""FIM changes as events, through the detection engine, against the bundled FIM rules."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path

import pytest

from secmon.fim import check_baseline, create_baseline, default_config, to_events
from secmon.fim.diff import Change

RULES_DIR = Path(__file__).parents[2] / "secmon" / "rules" / "default" / "fim"


def _rootfs(root: Path) -> None:
    for d in ("etc/sudoers.d", "usr/bin", "usr/sbin", "root/.ssh", "home/alice/.ssh", "tmp"):
        (root / d).mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/bash\n")
    (root / "etc" / "shadow").write_text("root:*:19000:0:99999:7:::\n")
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n")
    (root / "usr" / "bin" / "ls").write_bytes(b"\x7fELF ls")
    (root / "usr" / "bin" / "cat").write_bytes(b"\x7fELF cat")
    (root / "usr" / "sbin" / "sshd").write_bytes(b"\x7fELF sshd")
    (root / "root" / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA admin\n")


def _attack(root: Path) -> None:
    with open(root / "etc" / "passwd", "a") as fh:
        fh.write("toor:x:0:0::/root:/bin/bash\n")
    (root / "etc" / "sudoers.d" / "zz").write_text("toor ALL=(ALL) NOPASSWD:ALL\n")
    (root / "etc" / "ld.so.preload").write_text("/lib/libhide.so\n")
    (root / "usr" / "bin" / "ls").write_bytes(b"\x7fELF trojan")
    shutil.copy(root / "usr" / "bin" / "cat", root / "tmp" / ".sh")
    os.chmod(root / "tmp" / ".sh", 0o4755)
    os.chmod(root / "usr" / "bin" / "cat", 0o4755)
    with open(root / "home" / "alice" / ".ssh" / "authorized_keys", "w") as fh:
        fh.write("ssh-rsa AAAA attacker\n")
    (root / "etc" / "hosts").write_text("127.0.0.1 localhost\n10.0.0.1 intranet\n")  # benign


def _changes(tmp_path: Path) -> list[Change]:
    root = tmp_path / "rootfs"
    _rootfs(root)
    config = default_config().model_copy(update={"paths": [*default_config().paths, "/tmp", "/etc/hosts"]})
    baseline, _ = create_baseline(config, root_dir=str(root), missing_ok=True)
    _attack(root)
    return check_baseline(baseline).changes


def test_event_shape(tmp_path: Path) -> None:
    changes = _changes(tmp_path)
    events = to_events(changes, host="web-1", timestamp="2024-06-01T10:00:00.000Z")
    assert len(events) == len(changes)
    by_path = {e["file"]["path"]: e for e in events}
    cat = by_path["/usr/bin/cat"]
    assert cat["source"] == "fim" and cat["host"] == "web-1" and cat["timestamp"] == "2024-06-01T10:00:00.000Z"
    assert cat["file"]["change"] == "modified" and "mode" in cat["file"]["attributes"]
    assert cat["file"]["before"]["suid"] is False and cat["file"]["after"]["suid"] is True
    assert cat["file"]["after"]["permissions"] == "4755" and cat["file"]["after"]["mode"] == stat.S_IFREG | 0o4755
    assert (cat["file"]["name"], cat["file"]["directory"]) == ("cat", "/usr/bin")
    preload = by_path["/etc/ld.so.preload"]
    assert preload["file"]["change"] == "added" and "before" not in preload["file"] and preload["file"]["after"]["size"] == 16
    assert "modified" in by_path["/usr/bin/ls"]["message"]


def test_real_fim_changes_raise_the_bundled_fim_signals(tmp_path: Path) -> None:
    secmon = pytest.importorskip("secmon")
    engine_cls = getattr(secmon, "Engine", None)
    if engine_cls is None:
        pytest.skip("secmon.Engine is not available in this tree yet")
    events = to_events(_changes(tmp_path), host="web-1", timestamp="2024-06-01T10:00:00.000Z")
    signals = engine_cls(str(RULES_DIR)).scan_events(events)
    got = sorted((s.rule_id, s.group_by["@file.path"], s.severity) for s in signals)
    assert got == [
        ("fim-authorized-keys-changed", "/home/alice/.ssh/authorized_keys", "medium"),
        ("fim-credential-files-modified", "/etc/passwd", "high"),
        ("fim-credential-files-modified", "/etc/sudoers.d/zz", "high"),
        ("fim-ld-so-preload-written", "/etc/ld.so.preload", "critical"),
        ("fim-new-setuid-binary", "/tmp/.sh", "high"),
        ("fim-new-setuid-binary", "/usr/bin/cat", "high"),
        ("fim-system-binary-replaced", "/usr/bin/ls", "high"),
    ]


def test_bundled_fim_rule_tests_pass() -> None:
    testing = pytest.importorskip("secmon.rules.testing")
    from secmon.rules.loader import load_rules

    rules = load_rules(RULES_DIR)
    results = testing.run_rule_tests([RULES_DIR], rules)
    assert len({r.case.rule_id for r in results}) == 5
    failures = [f"{r.case.rule_id}: {r.case.name}: {r.failures}" for r in results if not r.passed]
    assert not failures, failures
