"""LogFormat.verbatim is a promise to the prefilter: every value it calls verbatim must occur in
the raw line, or a rule literal would skip lines that match. Checked on every real line we have."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from secmon.ingest import FORMATS, IngestStats, Source, split_lines
from secmon.ingest.events import scalar_text

def leaves(node: Any, prefix: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from leaves(value, f"{prefix}{key}.")
    else:
        yield prefix[:-1], node


def check_source(source: Source) -> int:
    """Parse line by line; return how many (path, value) promises were checked."""
    fmt = source.format
    checked = 0
    for chunk in source.chunks(1 << 20):
        lines = split_lines(chunk.data)
        for i, raw in enumerate(lines):
            text = raw.decode("utf-8", "replace")
            for event in fmt.parse(chunk, np.array([i]), IngestStats()):
                for path, value in leaves(event):
                    if not fmt.verbatim(path) or isinstance(value, (list, float)) or value is None:
                        continue
                    shown = scalar_text(value)
                    assert shown is not None
                    if fmt.escaped_chars & set(shown) or (fmt.name in ("ndjson", "json") and not shown.isascii()):
                        continue  # may be escaped in the raw line: the prefilter never searches for it
                    assert shown in text, f"{source.name}:{chunk.first_line + i}: {path}={shown!r} not in raw line"
                    checked += 1
    return checked


@pytest.mark.parametrize(
    "relative",
    [
        "loghub/OpenSSH/OpenSSH_2k.log",
        "loghub/Linux/Linux_2k.log",
        "loghub/Apache/Apache_2k.log",
        "cloudtrail-invictus/events.jsonl",
        "cloudtrail-stratus/events.jsonl",
    ],
)
def test_verbatim_values_occur_in_the_raw_line(dataset: Callable[[str], Path], relative: str) -> None:
    path = dataset(relative)
    assert check_source(Source(str(path), path=path, year=2015)) > 500


def test_verbatim_on_access_logs() -> None:
    data = (
        b'10.0.0.1 - alice [10/Oct/2000:13:55:36 +0000] "POST /login?next=/ HTTP/1.1" 401 17 "https://x/" "curl/8"\n'
        b'10.0.0.2 - - [10/Oct/2000:13:55:37 +0000] "GET /a\\"b HTTP/1.1" 200 5 "-" "ua \\"q\\""\n'
    )
    source = Source("access", data=data)
    assert source.format is FORMATS["access_log"]
    # /a"b is unescaped from /a\"b: a value holding a character the format escapes is never
    # searched for (raw_safe), so only the others are promises.
    assert check_source(source) == 15


def test_derived_attributes_are_never_called_verbatim() -> None:
    for name in ("syslog", "ndjson", "json", "access_log", "apache_error", "text"):
        fmt = FORMATS[name]
        for derived in ("timestamp", "evt.outcome", "source"):
            assert not fmt.verbatim(derived), (name, derived)


def check_implied(source: Source) -> int:
    """Every (path, value) of every event: the format's implied literals occur in the raw line."""
    fmt = source.format
    checked = 0
    for chunk in source.chunks(1 << 20):
        for i, raw in enumerate(split_lines(chunk.data)):
            lowered = raw.decode("utf-8", "replace").lower()
            for event in fmt.parse(chunk, np.array([i]), IngestStats()):
                for path, value in leaves(event):
                    if isinstance(value, list) or value is None:
                        continue
                    shown = scalar_text(value)
                    assert shown is not None
                    literals = fmt.implied_literals(path, shown)
                    if literals is None:
                        continue
                    assert literals, f"{path}={shown!r} called impossible but line {i + 1} yields it"
                    assert any(lit.lower() in lowered for lit in literals), (
                        f"{source.name}:{chunk.first_line + i}: {path}={shown!r} implies {literals}, not in the line"
                    )
                    checked += 1
    return checked


def assert_prefilter_promises_hold(path: Path, **source_options: Any) -> None:
    """Both promises a format makes the prefilter (verbatim values, implied literals) hold on
    every line of the file at ``path``, over more than 500 values each."""
    assert check_source(Source(str(path), path=path, **source_options)) > 500
    assert check_implied(Source(str(path), path=path, **source_options)) > 500


@pytest.mark.parametrize(
    "relative",
    [
        "loghub/OpenSSH/OpenSSH_2k.log",
        "loghub/Linux/Linux_2k.log",
        "loghub/Apache/Apache_2k.log",
        "cloudtrail-invictus/events.jsonl",
        "cloudtrail-stratus/events.jsonl",
    ],
)
def test_implied_literals_occur_in_the_raw_line(dataset: Callable[[str], Path], relative: str) -> None:
    path = dataset(relative)
    assert check_implied(Source(str(path), path=path, year=2015)) > 500


def test_implied_literals_table() -> None:
    syslog, ndjson, access = FORMATS["syslog"], FORMATS["ndjson"], FORMATS["access_log"]
    assert syslog.implied_literals("evt.outcome", "failure") == ["Failed ", "authentication failure", "COMMAND="]
    assert syslog.implied_literals("evt.outcome", "maybe") == []
    assert syslog.implied_literals("source", "sshd") == ["sshd"]
    assert syslog.implied_literals("timestamp", "1") is None
    assert syslog.implied_literals("usr.name", 'a"b') is None
    assert syslog.implied_literals("usr.name", "\ufffd\ufffd") is None  # invalid UTF-8, replaced
    assert syslog.implied_literals("source", "d\u00e9mon") is None  # lower-cased beyond ASCII
    assert ndjson.implied_literals("source", "cloudtrail") == ["eventSource", "cloudtrail"]
    assert ndjson.implied_literals("evt.outcome", "failure") == ["errorCode", "responseStatus", "failure"]
    assert ndjson.implied_literals("http.url", "/a/b") is None  # "/" may be written "\/" in JSON
    assert ndjson.implied_literals("x", "1.5") is None and ndjson.implied_literals("x", "404") == ["404"]
    assert ndjson.implied_literals("x", "caf\u00e9") is None
    assert access.implied_literals("source", "access_log") is None
    assert access.implied_literals("source", "nginx") == []
    assert FORMATS["apache_error"].implied_literals("status", "error") == ["error]"]


def _get(event: dict[str, Any], path: str) -> Any:
    node: Any = event
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@pytest.mark.parametrize(
    ("relative", "terms"),
    [
        ("loghub/OpenSSH/OpenSSH_2k.log", [("evt.outcome", "failure"), ("source", "sshd"), ("usr.name", "root"),
                                           ("network.client.ip", "183.62.140.253"), ("evt.name", "authentication")]),
        ("loghub/Linux/Linux_2k.log", [("evt.outcome", "failure"), ("network.client.host", "zummit.com"),
                                       ("pam.module", "pam_unix"), ("source", "su")]),
        ("cloudtrail-invictus/events.jsonl", [("source", "cloudtrail"), ("evt.name", "GetPasswordData"),
                                              ("evt.outcome", "failure"), ("evt.outcome", "success"),
                                              ("network.client.ip", "192.168.10.20")]),
    ],
)
def test_prefiltering_with_implied_literals_loses_no_event(
    dataset: Callable[[str], Path], relative: str, terms: list[tuple[str, str]]
) -> None:
    """What the engine does: keep only raw lines holding a literal, parse them, filter. It must
    find exactly the events that parsing everything and filtering finds."""
    path = dataset(relative)
    for attribute, value in terms:
        source = Source(str(path), path=path, year=2015)
        literals = source.format.implied_literals(attribute, value)
        assert literals, (attribute, value)
        wanted = [lit.lower().encode() for lit in literals]
        everything, prefiltered = [], []
        for chunk in source.chunks(1 << 16):
            lines = split_lines(chunk.data)
            candidates = [i for i, raw in enumerate(lines) if any(w in raw.lower() for w in wanted)]
            everything += [e for e in source.format.parse(chunk, None, IngestStats()) if _get(e, attribute) == value]
            prefiltered += [
                e for e in source.format.parse(chunk, np.array(candidates, dtype=np.uint32), IngestStats())
                if _get(e, attribute) == value
            ]
        assert everything, (attribute, value)
        assert prefiltered == everything, (attribute, value)
