"""The scan's event store and spilled kept rows, and the tie-breaking they make lazy."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import orjson
import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secmon.detect.engine import Engine
from secmon.detect.event_store import CANONICAL, RAW_NDJSON, EventStore, canonical_json
from secmon.detect.kept import KeptRows, pack_buckets
from secmon.detect.reference import reference_detect
from secmon.ingest.json_events import normalize_record
from secmon.rules.loader import rule_from_dict

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=10,
)


@given(st.lists(st.dictionaries(st.text(max_size=6), json_values, max_size=5), max_size=20), st.randoms())
def test_store_gives_back_each_event_as_canonical_json(records: list[dict], rnd: random.Random) -> None:
    with EventStore() as store:
        events = [{**r, "timestamp": 1_700_000_000_000 + i} for i, r in enumerate(records)]
        # Half stored canonical, half as raw NDJSON lines (normalized on the way out).
        canon_refs, canon_lens = store.append([canonical_json(e).encode() for e in events[::2]], CANONICAL)
        raw_refs, raw_lens = store.append([orjson.dumps(e) for e in events[1::2]], RAW_NDJSON)
        refs = np.concatenate([canon_refs, raw_refs])
        lens = np.concatenate([canon_lens, raw_lens])
        expected = [canonical_json(e) for e in events[::2]]
        expected += [canonical_json(normalize_record(orjson.loads(orjson.dumps(e)))) for e in events[1::2]]
        order = list(range(len(refs)))
        rnd.shuffle(order)
        assert store.canonical(refs[order], lens[order]) == [expected[i] for i in order]
        assert (canon_refs & 1 == CANONICAL).all() and (raw_refs & 1 == RAW_NDJSON).all()
        # ``events`` skips the canonical text: the same values, a fresh dict per position asked.
        twice = order + order
        events_back = store.events(refs[twice], lens[twice])
        assert events_back == [orjson.loads(expected[i]) for i in twice]
        assert len({id(e) for e in events_back}) == len(events_back)


def test_tie_keys_are_the_digest_words_in_any_batching(monkeypatch: pytest.MonkeyPatch) -> None:
    """The two uint64 tie columns are the 16-byte digest of each event's canonical JSON (raw
    lines normalized first), sort as the digests do, and do not depend on the batching."""
    from secmon.detect import event_store

    rnd = random.Random(5)
    events = [{"timestamp": 1, "n": rnd.randrange(50), "s": "x" * rnd.randrange(3)} for _ in range(37)]
    with EventStore() as store:
        refs, lens = store.append([canonical_json(e).encode() for e in events], CANONICAL)
        raw_refs, raw_lens = store.append([orjson.dumps(e) for e in events], RAW_NDJSON)
        digest = event_store.tie_digest
        expected = [digest(canonical_json(e)) for e in events]
        expected_raw = [digest(canonical_json(normalize_record(orjson.loads(orjson.dumps(e))))) for e in events]
        for batch in (1, 5, 4096):
            monkeypatch.setattr(event_store, "TIE_BATCH", batch)
            for r, n, want in ((refs, lens, expected), (raw_refs, raw_lens, expected_raw)):
                high, low = store.tie_keys(r, n)
                assert high.dtype == low.dtype == np.uint64
                assert [int(h).to_bytes(8, "big") + int(w).to_bytes(8, "big") for h, w in zip(high, low)] == want
        high, low = store.tie_keys(refs, lens)
        by_words = sorted(range(len(events)), key=lambda i: (int(high[i]), int(low[i])))
        assert [expected[i] for i in by_words] == sorted(expected)


@given(st.lists(st.integers(0, 1000), min_size=1, max_size=7), st.integers(1, 3))
def test_packed_slices_hold_every_bucket_once_and_are_balanced(rows: list[int], slices: int) -> None:
    """Every non-empty bucket in exactly one slice, at most ``slices`` slices, and the heaviest
    slice within the 4/3 bound of greedy largest-first packing against the best packing (found
    by trying every assignment)."""
    import itertools

    packed = pack_buckets(np.array(rows, dtype=np.int64), slices)
    assert len(packed) <= slices
    assert sorted(b for members in packed for b in members) == [b for b, n in enumerate(rows) if n]
    heaviest = max((sum(rows[b] for b in members) for members in packed), default=0)
    best = min(max(sum(n for n, k in zip(rows, assign) if k == s) for s in range(slices))
               for assign in itertools.product(range(slices), repeat=len(rows)))
    assert heaviest * 3 <= best * 4


def test_kept_rows_cast_every_part_to_one_schema_and_read_one_rule(tmp_path: Path) -> None:
    rule = rule_from_dict({
        "id": "r", "name": "r", "queries": [{"query": "source:a", "groupByFields": ["@usr.name"]}],
        "cases": [{"status": "low", "condition": "a > 0"}],
    }, file="<t>")
    engine = Engine([rule], temp_dir=str(tmp_path))
    schema = engine._kept_schema()
    flag = engine.compiled[0].flag_column(0)
    with KeptRows(schema, engine.compiled, str(tmp_path)) as kept:
        kept.add(pl.DataFrame({"timestamp": [1, 2], "usr.name": ["x", None], flag: [True, False],
                               "__eid": [0, 1], "__ref": [0, 2], "__len": [3, 3]}))
        kept.add(pl.DataFrame({"timestamp": [3], "usr.name": [None], flag: [True],  # an all-null part
                               "__eid": [2], "__ref": [4], "__len": [3]}))
        rows = kept.for_rule(engine.compiled[0]).collect()
        assert kept.height == 3 and any(tmp_path.iterdir())
        assert rows.columns == ["timestamp", "__eid", "__ref", "__len", "usr.name", flag]
        assert rows["__eid"].to_list() == [0, 2]
    assert not any(tmp_path.iterdir()), "a scan leaves no temporary files behind"


def _tie_events(n: int, seed: int) -> list[dict]:
    """Events crowded into a few milliseconds: most rows of a group tie on time."""
    rnd = random.Random(seed)
    return [{
        "timestamp": 1_700_000_000_000 + rnd.randrange(3),
        "source": "sshd",
        "message": f"Failed password for u{rnd.randrange(5)}",
        "evt": {"outcome": "failure"},
        "network": {"client": {"ip": rnd.choice(["10.0.0.1", "10.0.0.2"])}},
        "extra": rnd.randrange(1000),
    } for _ in range(n)]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.integers(1, 40), st.integers(0, 10**6), st.sampled_from([[], ["@network.client.ip"]]),
       st.sampled_from(["threshold", "new_value"]), st.integers(1, 3000))
def test_samples_of_tied_events_do_not_depend_on_order_chunking_or_path(
    tmp_path: Path, n: int, seed: int, group_by: list[str], method: str, chunk_bytes: int,
) -> None:
    query = {"query": "source:sshd", "groupByFields": group_by}
    if method == "new_value":
        query |= {"aggregation": "new_value", "metrics": ["@message"]}
    rule = rule_from_dict({
        "id": "ties", "name": "ties", "queries": [query], "cases": [{"status": "low", "condition": "a > 0"} if method == "threshold" else {"status": "low"}],
        "options": {"detectionMethod": method, "evaluationWindow": 60, "keepAlive": 60, "maxSignalDuration": 600},
    }, file="<t>")
    events = _tie_events(n, seed)
    shuffled = list(events)
    random.Random(seed).shuffle(shuffled)
    log = tmp_path / f"ties-{seed}-{n}.ndjson"
    log.write_text("".join(json.dumps(e) + "\n" for e in shuffled))

    def outcome(signals: list) -> list:
        return sorted((s.key(), json.dumps(s.samples, sort_keys=True)) for s in signals)

    expected = outcome(reference_detect([rule], events))
    assert outcome(Engine([rule]).scan_events(events)) == expected
    for native in (True, False):
        engine = Engine([rule], chunk_bytes=chunk_bytes, native_json=native)
        assert outcome(engine.detect([log]).signals) == expected, f"native_json={native}"


def test_streamed_signals_are_the_detected_signals(tmp_path: Path) -> None:
    events = _tie_events(60, 3) + [{**e, "timestamp": e["timestamp"] + 10**6, "source": "nginx"} for e in _tie_events(20, 4)]
    log = tmp_path / "events.ndjson"
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    rules = [rule_from_dict({
        "id": f"r{i}", "name": f"r{i}", "queries": [{"query": query, "groupByFields": ["@network.client.ip"]}],
        "cases": [{"status": "low", "condition": "a > 2"}],
        "options": {"evaluationWindow": 60, "keepAlive": 60, "maxSignalDuration": 600},
    }, file="<t>") for i, query in enumerate(["source:sshd", "source:nginx", "Failed"])]
    engine = Engine(rules, temp_dir=str(tmp_path))
    streamed = list(engine.signals([log]))
    assert streamed and engine.stats.lines_read == len(events)
    assert sorted(s.key() for s in streamed) == sorted(s.key() for s in engine.detect([log]).signals)
    assert [p.name for p in tmp_path.iterdir()] == ["events.ndjson"], "the scan's spill files are gone"


def test_streamed_signals_closed_early_stop_the_detection_worker(tmp_path: Path) -> None:
    """A consumer that stops after the first signal: the worker finding spans ahead stops too,
    and the scan's spill files are removed."""
    import threading

    events = _tie_events(60, 3)
    log = tmp_path / "events.ndjson"
    log.write_text("".join(json.dumps(e) + "\n" for e in events))
    rules = [rule_from_dict({
        "id": f"r{i}", "name": f"r{i}", "queries": [{"query": "source:sshd", "groupByFields": ["@network.client.ip"]}],
        "cases": [{"status": "low", "condition": f"a > {i}"}],
        "options": {"evaluationWindow": 60, "keepAlive": 60, "maxSignalDuration": 600},
    }, file="<t>") for i in range(6)]
    signals = Engine(rules, temp_dir=str(tmp_path), slice_rows=10).signals([log])
    assert next(signals) is not None
    signals.close()
    assert not [t for t in threading.enumerate() if t.name == "secmon-rules"]
    assert [p.name for p in tmp_path.iterdir()] == ["events.ndjson"], "the scan's spill files are gone"


def test_samples_read_in_place_equal_samples_copied(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Kept lines of plain input files are read back from the inputs; copies in the store (gzip,
    more files than the store holds open) must give the same signals and samples. The inputs
    carry a byte-order mark and an over-long line, which shift or cut a chunk's data."""
    import gzip

    events = _tie_events(80, 11)
    texts = [json.dumps(e) + "\n" for e in events]
    plain = [tmp_path / "a.ndjson", tmp_path / "b.ndjson"]
    plain[0].write_bytes(b"\xef\xbb\xbf" + "".join(texts[:40]).encode())
    plain[1].write_bytes(("x" * 3000 + "\n" + "".join(texts[40:])).encode())
    packed = tmp_path / "both.ndjson.gz"
    packed.write_bytes(gzip.compress(plain[0].read_bytes() + plain[1].read_bytes()[3001:]))
    rule = rule_from_dict({
        "id": "r", "name": "r", "queries": [{"query": "source:sshd", "groupByFields": ["@network.client.ip"]}],
        "cases": [{"status": "low", "condition": "a > 0"}],
        "options": {"evaluationWindow": 60, "keepAlive": 60, "maxSignalDuration": 600},
    }, file="<t>")

    def outcome(paths: list[Path], chunk_bytes: int) -> list:
        signals = Engine([rule], chunk_bytes=chunk_bytes).detect(paths).signals
        return sorted((s.key(), json.dumps(s.samples, sort_keys=True)) for s in signals)

    expected = sorted((s.key(), json.dumps(s.samples, sort_keys=True)) for s in reference_detect([rule], events))
    assert expected
    for chunk_bytes in (500, 1 << 20):
        assert outcome(plain, chunk_bytes) == expected
        assert outcome([packed], chunk_bytes) == expected
    monkeypatch.setattr("secmon.detect.event_store.MAX_INPUT_FILES", 1)
    assert outcome(plain, 500) == expected


def test_an_input_truncated_during_the_scan_is_a_clear_error(tmp_path: Path) -> None:
    """Samples are read back from the input file: if it lost the bytes meanwhile, the scan says
    so (InputError naming the file) instead of parsing half a line."""
    from secmon.errors import InputError

    log = tmp_path / "auth.ndjson"
    log.write_text("".join(json.dumps(e) + "\n" for e in _tie_events(30, 5)))
    rule = rule_from_dict({
        "id": "r", "name": "r", "queries": [{"query": "source:sshd", "groupByFields": ["@network.client.ip"]}],
        "cases": [{"status": "low", "condition": "a > 0"}],
        "options": {"evaluationWindow": 60, "keepAlive": 60, "maxSignalDuration": 600},
    }, file="<t>")
    engine = Engine([rule])
    signals = engine.signals([log])
    engine._ingest = lambda source, original=engine._ingest: (original(source), log.write_bytes(b""))[0]  # type: ignore[method-assign]
    with pytest.raises(InputError, match="auth.ndjson: the file was truncated while it was scanned"):
        list(signals)
