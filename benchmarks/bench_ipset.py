"""Benchmark ``IpSet``: longest-prefix lookup of IPv4 address strings over many tagged prefixes.

Prefixes: FireHOL level1 (list 0, when the shared datasets are present) plus seeded random
prefixes /20../32 spread over lists 1..3. Addresses: seeded random IPv4 strings, a tenth of them
drawn inside listed prefixes. Contenders, each in a fresh process:
- ``secmon``: ``IpSet`` built from the lists, ``lookup`` of a Polars string column;
- ``python dict per prefix length``: the classic longest-prefix match, one dict per prefix length,
  probed from /32 down (``ipaddress`` parses the entries, ``int`` math the addresses).
Both answer the per-list hit counts and a checksum of the ids; the run fails unless they agree.
"""

from __future__ import annotations

import ipaddress
import random
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

from benchmarks.harness import Measurement, Table, cpu_note, measure_python

SEED = 99
FIREHOL = Path(__file__).parents[1] / ".." / "shared" / "datasets" / "threat-intel" / "firehol_level1.netset"
FULL = (1_000_000, 2_000_000)  # (prefixes, addresses)
SMOKE = (10_000, 20_000)


def _dotted(n: int) -> str:
    return f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def make_lists(n_prefixes: int) -> list[list[str]]:
    lists: list[list[str]] = [[]]
    if FIREHOL.exists():
        lists[0] = [e for e in (line.split("#")[0].strip() for line in FIREHOL.read_text().splitlines()) if e]
    rng = random.Random(f"ipset-lists-{SEED}")
    lists += [[], [], []]
    for _ in range(n_prefixes):
        length = rng.choice([20, 24, 24, 28, 32, 32, 32, 32])
        lists[rng.randrange(1, 4)].append(f"{_dotted(rng.getrandbits(32))}/{length}")
    return lists


def make_addresses(n: int, lists: list[list[str]]) -> list[str]:
    rng = random.Random(f"ipset-addresses-{SEED}")
    flat = [e for entries in lists for e in entries]
    out = []
    for _ in range(n):
        if rng.random() < 0.1:
            net = ipaddress.ip_network(rng.choice(flat), strict=False)
            out.append(_dotted(int(net.network_address) + rng.randrange(net.num_addresses)))
        else:
            out.append(_dotted(rng.getrandbits(32)))
    return out


def _answer(ids: list[int]) -> tuple[tuple[int, ...], int]:
    counts = [0] * 5
    for i in ids:
        counts[i + 1] += 1
    return tuple(counts), sum(k * (i + 2) for k, i in enumerate(ids)) % ((1 << 61) - 1)


# Each contender returns (answer, seconds building, seconds looking up).
def secmon_lookup(n_prefixes: int, n_addresses: int) -> tuple[Any, float, float]:
    import numpy  # noqa: F401  (imported by the first returned array; keep it out of the timing)
    import polars as pl

    from secmon import IpSet

    lists = make_lists(n_prefixes)
    column = pl.Series(make_addresses(n_addresses, lists))
    started = time.perf_counter()
    ipset = IpSet.from_lists(lists)
    ipset.lookup(column[:1])  # the table is built on first lookup
    built = time.perf_counter()
    ids = ipset.lookup(column)
    done = time.perf_counter()
    return _answer(ids.tolist()), built - started, done - built


def python_dict_lookup(n_prefixes: int, n_addresses: int) -> tuple[Any, float, float]:
    lists = make_lists(n_prefixes)
    addresses = make_addresses(n_addresses, lists)
    started = time.perf_counter()
    by_length: dict[int, dict[int, int]] = {}
    for list_id, entries in enumerate(lists):
        for entry in entries:
            net = ipaddress.ip_network(entry, strict=False)
            table = by_length.setdefault(net.prefixlen, {})
            key = int(net.network_address) >> (32 - net.prefixlen)
            # Same prefix in two lists: the smaller list id wins, as in IpSet.
            if key not in table or list_id < table[key]:
                table[key] = list_id
    lengths = sorted(by_length, reverse=True)
    built = time.perf_counter()
    ids = []
    for text in addresses:
        a, b, c, d = (int(x) for x in text.split("."))
        value = a << 24 | b << 16 | c << 8 | d
        found = -1
        for length in lengths:
            hit = by_length[length].get(value >> (32 - length))
            if hit is not None:
                found = hit
                break
        ids.append(found)
    done = time.perf_counter()
    return _answer(ids), built - started, done - built


def _measure(name: str, target: str, *args: Any) -> tuple[Measurement, float]:
    m = measure_python(name, target, *args)
    answer, build_seconds, lookup_seconds = m.answer
    return replace(m, seconds=lookup_seconds, answer=answer), build_seconds


def run(smoke: bool) -> list[Table]:
    n_prefixes, n_addresses = SMOKE if smoke else FULL
    table = Table(
        title=f"IpSet.lookup: {n_addresses:,} IPv4 strings over {n_prefixes:,} random prefixes"
        + (" + FireHOL level1" if FIREHOL.exists() else ""),
        reference="secmon",
        items_processed=n_addresses,
        item_unit="lookups",
    )
    builds = {}
    for name, target in (
        ("secmon", "benchmarks.bench_ipset:secmon_lookup"),
        ("python dict per prefix length", "benchmarks.bench_ipset:python_dict_lookup"),
    ):
        measurement, builds[name] = _measure(name, target, n_prefixes, n_addresses)
        table.add(measurement)
    table.assert_agree()
    counts = table.rows[0].answer[0]
    table.notes.append(
        f"Hits per list (none, FireHOL, 1, 2, 3): {counts}, identical for both. Times are lookups only; "
        "building took " + ", ".join(f"{n} {s:.2f} s" for n, s in builds.items()) + f"; {cpu_note()}."
    )
    return [table]
