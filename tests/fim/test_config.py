"""Config validation: errors name the file, the field, the value and the reason."""

from __future__ import annotations

from pathlib import Path

import pytest

from secmon.fim import FimConfigError, default_config, load_config, parse_config
from secmon.fim.globs import ExcludeMatcher, glob_matches

BAD_CONFIGS = [
    ("paths: [etc]", "paths.0", "must be absolute", "etc"),
    ("hash: crc32", "hash", "unknown hash algorithm 'crc32'", "crc32"),
    ("rules: [{match: '/x/**', attributes: everything}]", "rules.0.attributes", "unknown attribute preset 'everything'", "everything"),
    ("rules: [{match: '/x/**', attributes: [content, colour]}]", "rules.0.attributes", "unknown attribute(s) 'colour'", None),
    ("rules: [{match: '/x/**', attributes: full, types: [door]}]", "rules.0.types.0", "Input should be", "door"),
    ("pathz: [/etc]", "pathz", "Extra inputs are not permitted", None),
    ("- /etc", "(top level)", "a FIM config must be a mapping", "list"),
    ("paths: [/etc", "line 1", "invalid YAML", None),
]


@pytest.mark.parametrize(("text", "field", "reason", "value"), BAD_CONFIGS)
def test_bad_config_names_file_field_value_and_reason(tmp_path: Path, text: str, field: str, reason: str, value: str | None) -> None:
    path = tmp_path / "fim.yaml"
    path.write_text(text)
    with pytest.raises(FimConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: {field}"), message
    assert reason in message, message
    if value is not None:
        assert repr(value) in message, message


def test_default_config_covers_the_usual_suspects() -> None:
    config = default_config()
    for path in ("/etc/passwd", "/etc/shadow", "/etc/sudoers.d", "/etc/ld.so.preload", "/usr/bin", "/root/.ssh", "/home/*/.ssh", "/etc/cron.d", "/etc/systemd/system"):
        assert path in config.paths
    policy = config.policy()
    assert policy.select("/usr/bin/ls", "file")[0] == frozenset({"type", "content", "mode", "uid", "gid", "size", "inode", "target", "xattrs"})
    assert policy.select("/var/log/auth.log", "file")[1] is True
    assert "mtime" not in policy.select("/etc/cron.d", "dir")[0]
    assert "mtime" in policy.select("/etc/passwd", "file")[0]


@pytest.mark.parametrize(
    ("pattern", "path", "matches"),
    [
        ("*.swp", "/a/b/.x.swp", True),
        ("*.swp", "/a/b.swp/c", False),
        ("/a/*", "/a/b", True),
        ("/a/*", "/a/b/c", False),
        ("/a/**", "/a/b/c", True),
        ("/a/**/c", "/a/c", True),
        ("/a/**/c", "/a/x/y/c", True),
        ("b?", "/x/bc", True),
        ("b?", "/x/b/", False),
        ("[!x]y", "/q/zy", True),
        ("[!x]y", "/q/xy", False),
        ("a[", "/q/a[", True),
    ],
)
def test_glob_table(pattern: str, path: str, matches: bool) -> None:
    assert glob_matches(pattern, path) is matches
    assert ExcludeMatcher([pattern]).excluded(path) is matches


def test_parse_config_accepts_none_hash() -> None:
    assert parse_config({"hash": "none"}).hash is None
