"""The fast engine (prefilter, native flags, Polars) against the reference twin, on random events and rules.

The principle in DESIGN.md: the same event stream gives the same signals in any order, any
chunking, with the prefilter on or off, with rule queries evaluated natively or as Polars
expressions, and the same as the slow obvious engine.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from unittest.mock import patch

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon.detect import engine as engine_module
from secmon.detect import kept
from secmon.detect.engine import Engine
from secmon.detect.reference import reference_detect
from secmon.detect.rule_frame import EID, TS
from secmon.rules.loader import rule_from_dict

BASE_MS = 1_700_000_000_000
USERS = ["root", "admin", "alice", "bob"]
IPS = ["10.0.0.1", "10.0.0.2", "203.0.113.7", "2001:db8::1"]

QUERIES = [
    "source:sshd @evt.outcome:failure",
    "source:sshd @evt.outcome:success",
    "@evt.name:authentication",
    "source:(sshd OR pam) -@usr.name:root",
    "@usr.name:adm*",
    "@http.status_code:[400 TO 499]",
    "@network.client.ip:10.0.0.1 OR @network.client.ip:203.0.113.7",
    '"invalid user"',
    "env:prod",
]
# Bare names other than reserved attributes are tag keys (``env``), read from the attribute of
# that name where an event has no such tag (``team``).
GROUP_FIELDS = [[], ["@network.client.ip"], ["@usr.name"], ["@network.client.ip", "@usr.name"], ["env"], ["env", "team"], ["host"]]
TAG_SETS = [[], ["env:prod"], ["env:dev", "team:red"], ["env:prod", "env:dev"], ["env:"], ["team:blue", "envoy:x"]]


def event_strategy() -> st.SearchStrategy[dict]:
    return st.builds(
        lambda ts, source, outcome, user, ip, status, bytes_, invalid, tags, team: {
            "timestamp": BASE_MS + ts * 1000,
            "source": source,
            "host": "web-1" if invalid else "web-2",
            **({"tags": tags} if tags is not None else {}),
            **({"team": team} if team is not None else {}),
            "message": ("Failed password for invalid user " if invalid else "Accepted password for ") + user,
            "evt": {"name": "authentication", "outcome": outcome},
            "usr": {"name": user},
            "network": {"client": {"ip": ip}},
            "http": {"status_code": status, "bytes": bytes_},
        },
        st.integers(0, 900),
        st.sampled_from(["sshd", "pam", "nginx"]),
        st.sampled_from(["success", "failure"]),
        st.sampled_from(USERS),
        st.sampled_from(IPS),
        st.sampled_from([200, 404, 403, 500]),
        st.integers(0, 5000),
        st.booleans(),
        st.one_of(st.none(), st.sampled_from(TAG_SETS)),
        st.sampled_from([None, "green"]),
    )


@st.composite
def rule_strategy(draw: st.DrawFn, index: int = 0) -> dict:
    method = draw(st.sampled_from(["threshold", "threshold", "new_value"]))
    group = draw(st.sampled_from(GROUP_FIELDS))
    n_queries = 1 if method == "new_value" else draw(st.integers(1, 2))
    optional_group_by = draw(st.booleans())
    queries = []
    for i in range(n_queries):
        aggregation = "new_value" if method == "new_value" else draw(st.sampled_from(["count", "cardinality", "sum", "max", "none"]))
        query = {"query": draw(st.sampled_from(QUERIES)), "groupByFields": group, "aggregation": aggregation,
                 "hasOptionalGroupByFields": optional_group_by}
        if aggregation == "cardinality":
            query["distinctFields"] = [draw(st.sampled_from(["@usr.name", "@network.client.ip", "env"]))]
        if aggregation in ("sum", "max"):
            query["metrics"] = ["@http.bytes"]
        if aggregation == "new_value":
            query["metrics"] = draw(st.sampled_from([["@network.client.ip"], ["@usr.name"], ["@usr.name", "@network.client.ip"], ["env"]]))
        queries.append(query)
    names = "ab"[:n_queries]
    if method == "new_value":
        cases = [{"status": "medium"}]
        options = {"detectionMethod": "new_value", "keepAlive": draw(st.sampled_from([0, 60, 600])),
                   "maxSignalDuration": 900,
                   "newValueOptions": {"learningDuration": draw(st.sampled_from([0, 0.001])),
                                       "forgetAfter": draw(st.sampled_from([0.002, 1]))}}
    else:
        cases = []
        for severity in draw(st.lists(st.sampled_from(["critical", "high", "low"]), min_size=1, max_size=2, unique=True)):
            terms = [f"{n} {draw(st.sampled_from(['>', '>=']))} {draw(st.integers(0, 4))}" for n in names]
            cases.append({"status": severity, "condition": draw(st.sampled_from([" && ", " || "])).join(terms)})
        keep_alive = draw(st.sampled_from([0, 30, 300]))
        options = {"detectionMethod": "threshold", "evaluationWindow": draw(st.sampled_from([0, 1, 60, 300])),
                   "keepAlive": keep_alive, "maxSignalDuration": draw(st.sampled_from([keep_alive, 600, 86400]))}
    options["decreaseCriticalityBasedOnEnv"] = draw(st.booleans())
    rule = {"id": f"rule-{index}", "name": f"random rule {index}", "queries": queries, "cases": cases, "options": options,
            "message": "{{@usr.name}} from {{@network.client.ip}}"}
    if draw(st.booleans()):
        rule["filters"] = [{"action": draw(st.sampled_from(["suppress", "require"])), "query": draw(st.sampled_from(QUERIES))}]
    return rule


def as_rules(raw_rules: list[dict]):
    return [rule_from_dict(raw, file="<random>") for raw in raw_rules]


def keys(signals) -> list:
    return sorted(s.key() for s in signals)


@settings(max_examples=int(__import__("os").environ.get("SECMON_FUZZ", 60)), deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(event_strategy(), max_size=60), st.lists(st.integers(0, 10**6), min_size=1, max_size=3).flatmap(
    lambda seeds: st.tuples(*[rule_strategy(i) for i in range(len(seeds))])))
def test_engine_matches_reference_on_random_events(events: list[dict], raw_rules: tuple[dict, ...]) -> None:
    rules = as_rules(list(raw_rules))
    fast = Engine(rules).scan_events(events)
    slow = reference_detect(rules, events)
    assert keys(fast) == keys(slow)
    assert [s.samples for s in sorted(fast, key=lambda s: s.key())] == [s.samples for s in sorted(slow, key=lambda s: s.key())]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(st.lists(event_strategy(), max_size=60), rule_strategy(0), st.integers(1, 7))
def test_detection_in_group_slices_gives_the_same_signals(events: list[dict], raw_rule: dict, slice_rows: int) -> None:
    """A rule with more kept rows than ``slice_rows`` is detected one slice of its groups at a
    time (a slice per ``slice_rows`` rows): the signals and samples must not change."""
    rules = as_rules([raw_rule])
    whole = sorted(Engine(rules).scan_events(events), key=lambda s: s.key())
    sliced = sorted(Engine(rules, slice_rows=slice_rows).scan_events(events), key=lambda s: s.key())
    assert [s.key() for s in sliced] == [s.key() for s in whole]
    assert [s.samples for s in sliced] == [s.samples for s in whole]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(event_strategy(), min_size=1, max_size=80), rule_strategy(), st.randoms(use_true_random=False),
       st.integers(1, 4000))
def test_order_chunking_and_prefilter_do_not_change_signals(tmp_path: Path, events: list[dict], raw_rule: dict,
                                                             rnd: random.Random, chunk_bytes: int) -> None:
    rules = as_rules([raw_rule])
    expected = keys(Engine(rules).scan_events(events))
    shuffled = list(events)
    rnd.shuffle(shuffled)
    log = tmp_path / f"events-{rnd.randrange(10**9)}.ndjson"
    log.write_text("".join(json.dumps(e) + "\n" for e in shuffled))
    for prefilter, native_flags in ((True, True), (False, True), (True, False)):
        engine = Engine(rules, prefilter=prefilter, chunk_bytes=chunk_bytes, native_flags=native_flags)
        found = keys(engine.detect([log]).signals)
        assert found == expected, f"prefilter={prefilter} native_flags={native_flags} chunk_bytes={chunk_bytes}"
    # The prefilter left out of chunks whose first line passes it (probes of one line), and of
    # every chunk but the smallest.
    for max_pass in (0.5, -1.0):
        with patch.object(engine_module, "PREFILTER_MAX_PASS", max_pass), patch.object(engine_module, "PREFILTER_PROBE_BYTES", 1):
            found = keys(Engine(rules, chunk_bytes=chunk_bytes).detect([log]).signals)
        assert found == expected, f"prefilter probed, max pass {max_pass}, chunk_bytes={chunk_bytes}"
    # Kept rows written after every chunk (a file per chunk and rule), then read in group slices.
    with patch.object(kept, "BUFFER_BYTES", 0):
        found = keys(Engine(rules, chunk_bytes=chunk_bytes, slice_rows=3).detect([log]).signals)
    assert found == expected, f"kept rows spilled per chunk, chunk_bytes={chunk_bytes}"


def test_float_group_values_are_written_like_the_event_table() -> None:
    """Regression: the reference wrote 1e-05 as "0.00001" (orjson) while the event table writes
    "1e-05" (json), so the two engines disagreed on small float group-by values."""
    rule = rule_from_dict({
        "id": "by-size", "name": "by size",
        "queries": [{"query": "@evt.outcome:failure", "groupByFields": ["@size"], "aggregation": "count"}],
        "cases": [{"status": "low", "condition": "a > 0"}],
        "options": {"evaluationWindow": 0, "keepAlive": 0, "maxSignalDuration": 0},
    })
    events = [{"timestamp": BASE_MS, "evt": {"outcome": "failure"}, "size": value} for value in (1e-05, 1e-07, 0.0001, 1.5, 7)]
    fast = Engine([rule]).scan_events(events)
    assert keys(fast) == keys(reference_detect([rule], events))
    assert sorted(s.group_by["@size"] for s in fast) == ["0.0001", "1.5", "1e-05", "1e-07", "7"]


def test_kept_files_are_read_in_runs_of_about_pass_bytes(tmp_path: Path) -> None:
    sizes = [5, 3, 0, 9, 12, 1, 1, 1]
    files = []
    for i, size in enumerate(sizes):
        path = tmp_path / f"f{i}"
        path.write_bytes(b"x" * size)
        files.append(str(path))
    batches = kept._batches_of(files, 8)
    assert [f for batch in batches for f in batch] == files  # every file once, in order
    assert [[sizes[files.index(f)] for f in batch] for batch in batches] == [[5, 3, 0], [9], [12], [1, 1, 1]]
    assert kept._batches_of([], 8) == []


@pytest.mark.parametrize("hash_of", ["real", "three values", "one value"])
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", None, ""]), st.sampled_from(["x", None]), st.integers(0, 5)), max_size=60))
def test_rows_sorted_by_group_hash_keep_each_group_together_in_time_order(
    monkeypatch: pytest.MonkeyPatch, hash_of: str, rows: list[tuple[str | None, str | None, int]]
) -> None:
    """``sorted_by_group`` sorts on a hash of the group values; whatever the hash (colliding ones
    included), each group's rows come together in (time, event id) order, as sorting on the
    values gives them."""
    from secmon.detect import rule_frame

    if hash_of != "real":
        mod = 3 if hash_of == "three values" else 1
        monkeypatch.setattr(rule_frame, "group_hash", lambda key: key.hash(seed=0) % mod)
    frame = pl.DataFrame(
        {"g0": [r[0] for r in rows], "g1": [r[1] for r in rows], TS: [r[2] for r in rows], EID: list(range(len(rows)))[::-1]},
        schema={"g0": pl.String, "g1": pl.String, TS: pl.Int64, EID: pl.Int64},
    )
    for groups in (["g0"], ["g0", "g1"]):
        got = rule_frame.sorted_by_group(frame, groups)
        runs = got.select(pl.struct(groups).rle_id().alias("run"), *groups, TS, EID)
        by_value = frame.sort([*groups, TS, EID], nulls_last=True)
        assert runs["run"].n_unique() == by_value.select(pl.struct(groups).rle_id()).to_series().n_unique()
        for part in runs.partition_by("run", maintain_order=True):
            assert part.select(TS, EID).rows() == sorted(part.select(TS, EID).rows())


def test_the_prefilter_probe_reads_the_share_of_lines_it_passes() -> None:
    from secmon._core import Matcher

    matcher = Matcher([b"needle"], ascii_case_insensitive=True)
    mostly = b"".join(b"a NEEDLE here\n" if i % 10 else b"nothing\n" for i in range(400))
    rarely = b"".join(b"a needle here\n" if i % 10 == 0 else b"nothing\n" for i in range(400))
    with patch.object(engine_module, "PREFILTER_PROBE_BYTES", 1000):
        assert not engine_module._worth_prefiltering(matcher, mostly)  # 90% pass: extract them all
        assert engine_module._worth_prefiltering(matcher, rarely)
        assert engine_module._worth_prefiltering(matcher, mostly[:1500])  # small: no probe
