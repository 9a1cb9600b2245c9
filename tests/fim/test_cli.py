"""``secmon fim``: exit codes, output formats, --update, key files, user errors without tracebacks."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from secmon.cli import main


@pytest.fixture()
def tree(tmp_path: Path) -> Path:
    root = tmp_path / "tree"
    (root / "bin").mkdir(parents=True)
    (root / "bin" / "tool").write_bytes(b"ELF")
    (root / "notes.swp").write_text("swap")
    return root


def test_baseline_check_update_cycle(tmp_path: Path, tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = str(tmp_path / "db")
    assert main(["fim", "baseline", str(tree), "--db", db, "--exclude", "*.swp"]) == 0
    assert "entries" in capsys.readouterr().err
    assert main(["fim", "check", "--db", db, "--fail-on-change"]) == 0
    assert capsys.readouterr().out.strip() == "no changes"
    (tree / "bin" / "tool").write_bytes(b"EVIL")
    (tree / "other.swp").write_text("excluded, never reported")
    assert main(["fim", "check", "--db", db, "--fail-on-change"]) == 1
    table = capsys.readouterr().out
    assert f"modified  {tree}/bin/tool  content,size,mtime,ctime" in table and ".swp" not in table
    assert main(["fim", "check", "--db", db, "--format", "events"]) == 0
    events = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # The excluded file is not reported, but creating it did change its directory's mtime.
    assert [(e["source"], e["file"]["path"], e["file"]["attributes"]) for e in events] == [
        ("fim", str(tree), ["mtime", "ctime"]),
        ("fim", f"{tree}/bin/tool", ["content", "size", "mtime", "ctime"]),
    ]
    assert main(["fim", "check", "--db", db, "--update", "--format", "json"]) == 0
    assert len(json.loads(capsys.readouterr().out)) == 2
    assert main(["fim", "check", "--db", db, "--format", "json", "--fail-on-change"]) == 0
    assert json.loads(capsys.readouterr().out) == []


def test_config_paths_absent_on_this_host_are_notes_and_show_up_added_later(
    tmp_path: Path, tree: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    preload = tmp_path / "ld.so.preload"
    config = tmp_path / "fim.yaml"
    config.write_text(f"paths: [{tree}, {preload}]\n")
    db = str(tmp_path / "db")
    assert main(["fim", "baseline", "--config", str(config), "--db", db]) == 0
    assert f"{preload}: not present, skipped" in capsys.readouterr().err
    preload.write_text("/tmp/evil.so\n")
    assert main(["fim", "check", "--db", db, "--format", "json"]) == 0
    changes = json.loads(capsys.readouterr().out)
    assert [(c["path"], c["change"]) for c in changes] == [(str(preload), "added")]
    # The same path typed on the command line must exist.
    preload.unlink()
    assert main(["fim", "baseline", str(preload), "--db", db]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_key_file_signs_and_is_required(tmp_path: Path, tree: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db, key = str(tmp_path / "db"), tmp_path / "key"
    key.write_text("s3cret\n")
    assert main(["fim", "baseline", str(tree), "--db", db, "--key-file", str(key)]) == 0
    assert main(["fim", "check", "--db", db, "--key-file", str(key)]) == 0
    capsys.readouterr()
    assert main(["fim", "check", "--db", db]) == 2
    assert "failed its integrity check: it is signed with HMAC-SHA256" in capsys.readouterr().err
    Path(db).write_bytes(Path(db).read_bytes()[:-1])
    assert main(["fim", "check", "--db", db, "--key-file", str(key)]) == 2
    err = capsys.readouterr().err
    assert f"baseline {db} failed its integrity check: truncated" in err and "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["fim", "check", "--db", "{tmp}/absent"], "does not exist; create it with"),
        (["fim", "baseline", "{tmp}/nowhere", "--db", "{tmp}/db"], "path {tmp}/nowhere does not exist"),
        (["fim", "baseline", "relative/path", "--db", "{tmp}/db"], "must be absolute"),
        (["fim", "baseline", "--config", "{tmp}/bad.yaml", "--db", "{tmp}/db"], "{tmp}/bad.yaml: hash: unknown hash algorithm 'crc'"),
        (["fim", "baseline", "/", "--root", "{tmp}/noroot", "--db", "{tmp}/db"], "does not exist"),
        (["fim", "check", "--image-tar", "{tmp}/bad.yaml", "--db", "{tmp}/db"], "not a tar archive"),
    ],
)
def test_user_errors_exit_2_with_a_clear_message(tmp_path: Path, tree: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str) -> None:
    (tmp_path / "bad.yaml").write_text("hash: crc\n")
    if "--image-tar" in argv:
        main(["fim", "baseline", str(tree), "--db", str(tmp_path / "db")])
        capsys.readouterr()
    assert main([a.replace("{tmp}", str(tmp_path)) for a in argv]) == 2
    err = capsys.readouterr().err
    assert message.replace("{tmp}", str(tmp_path)) in err, err
    assert "Traceback" not in err
