"""``secmon.IpSet`` against its slow twin: Python's ``ipaddress`` over every network.

The twin puts IPv4 in the IPv6 space as ``::ffff:a.b.c.d`` exactly like the set does, takes the
longest containing prefix and, on an exact tie, the smaller list id. An IPv4 address is only
looked up among the networks inside ``::ffff:0:0/96`` (as in ``ipaddress``, ``::/0`` does not hold
``1.2.3.4``).
"""

from __future__ import annotations

import ipaddress
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secmon import IpSet

DATASETS = Path(__file__).parents[2] / ".." / "shared" / "datasets"
FIREHOL = DATASETS / "threat-intel" / "firehol_level1.netset"

Net = ipaddress.IPv6Network


# --- the slow twin ----------------------------------------------------------------------------------


def twin_network(text: str) -> Net | None:
    """``ip_network(strict=False)``, minus the two forms the set documents it does not take."""
    addr, _, length = text.partition("/")
    if "%" in text or ("/" in text and not (length.isascii() and length.isdigit())):
        return None
    try:
        net = ipaddress.ip_network(text, strict=False)
    except ValueError:
        return None
    if isinstance(net, ipaddress.IPv4Network):
        return Net(f"::ffff:{net.network_address}/{96 + net.prefixlen}")
    return net


def twin_address(text: str | None) -> ipaddress.IPv6Address | None:
    if text is None or "%" in text:
        return None
    try:
        addr = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(addr, ipaddress.IPv4Address):
        return ipaddress.IPv6Address(f"::ffff:{addr}")
    return addr


V4_BLOCK = ipaddress.IPv6Network("::ffff:0:0/96")


def twin_lookup(lists: Sequence[Sequence[str]], ips: Sequence[str | None]) -> tuple[list[int], int]:
    nets = [(net, li) for li, entries in enumerate(lists) for net in map(twin_network, entries) if net is not None]
    out, invalid = [], 0
    for text in ips:
        addr = twin_address(text)
        if addr is None:
            invalid += text is not None
            out.append(-1)
            continue
        best: tuple[int, int] | None = None  # (-prefixlen, list id): smallest wins
        ipv4 = addr in V4_BLOCK
        for net, li in nets:
            if ipv4 and not net.subnet_of(V4_BLOCK):
                continue
            if addr in net and (best is None or (-net.prefixlen, li) < best):
                best = (-net.prefixlen, li)
        out.append(-1 if best is None else best[1])
    return out, invalid


# --- hypothesis ----------------------------------------------------------------------------------------

# Few base addresses, so prefixes nest, collide and sit at each other's edges.
V4_BASES = ["10.0.0.0", "10.0.0.255", "10.1.0.0", "192.168.1.1", "0.0.0.0", "255.255.255.255", "1.2.3.4"]
V6_BASES = ["::", "2001:db8::", "2001:db8::1", "::ffff:10.0.0.1", "fe80::1", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff"]
BAD = ["", " ", "01.2.3.4", "1.2.3.04", " 10.0.0.1", "10.0.0.1 ", "1.2.3", "1.2.3.256", "::g", "10.0.0.0/33",
       "::/129", "10.0.0.0/", "10.0.0.0/-1", "10.0.0.0/+8", "10.0.0.0/255.0.0.0", "fe80::1%eth0", "1.2.3.4/ 8",
       "abc", "1:2:3:4:5:6:7:8:9", "١.٢.٣.٤"]

v4_net = st.builds(lambda a, n: f"{a}/{n}", st.sampled_from(V4_BASES), st.sampled_from([0, 1, 8, 16, 23, 24, 31, 32]))
v6_net = st.builds(lambda a, n: f"{a}/{n}", st.sampled_from(V6_BASES), st.sampled_from([0, 1, 32, 64, 96, 104, 127, 128]))
entry = st.one_of(v4_net, v6_net, st.sampled_from(V4_BASES + V6_BASES), st.sampled_from(BAD))
address = st.one_of(
    st.sampled_from(V4_BASES + V6_BASES + BAD),
    st.builds(lambda *o: ".".join(map(str, o)), *[st.sampled_from([0, 1, 10, 168, 192, 255])] * 4),
    st.ip_addresses().map(str),
    st.none(),
)


@settings(max_examples=300, deadline=None)
@given(lists=st.lists(st.lists(entry, max_size=8), max_size=4), ips=st.lists(address, max_size=20))
def test_random_sets_agree_with_the_ipaddress_twin(lists: list[list[str]], ips: list[str | None]) -> None:
    expected, invalid = twin_lookup(lists, ips)
    s = IpSet.from_lists(lists, strict=False)
    assert s.skipped == sum(twin_network(e) is None for entries in lists for e in entries)
    got, got_invalid = s.lookup_with_stats(ips)
    assert got.dtype == np.int32
    assert got.tolist() == expected
    assert got_invalid == invalid
    assert s.lookup(pl.Series(ips, dtype=pl.String)).tolist() == expected


@settings(max_examples=100, deadline=None)
@given(entries=st.lists(entry, min_size=1, max_size=10))
def test_strict_add_accepts_exactly_what_the_twin_parses(entries: list[str]) -> None:
    bad = [i for i, e in enumerate(entries) if twin_network(e) is None]
    s = IpSet()
    if bad:
        with pytest.raises(ValueError, match=rf"entry {bad[0]} \(.*\) of list 2 is not a valid address or CIDR"):
            s.add(entries, 2)
        assert len(s) == 0, "a failed strict add adds nothing"
    else:
        assert s.add(entries, 2) == 0
        assert len(s) == len(entries)


# --- named cases ---------------------------------------------------------------------------------------


def test_longest_prefix_wins_and_ties_go_to_the_smaller_list() -> None:
    s = IpSet.from_lists([["10.0.0.0/8", "2001:db8::/32"], ["10.1.0.0/16"], ["10.1.0.0/16", "10.1.2.3"]])
    got = s.lookup(["10.1.2.3", "10.1.2.4", "10.2.0.0", "11.0.0.0", "2001:db8::1", "::ffff:10.1.2.3", "bad", None])
    assert got.tolist() == [2, 1, 0, -1, 0, 2, -1, -1]


def test_ipv6_bogons_do_not_cover_ipv4() -> None:
    """Regression: ``::/8`` in an IPv6 bogon list flagged every IPv4 address."""
    s = IpSet.from_lists([["::/8", "2001:db8::/32"]])
    assert s.lookup(["10.0.0.1", "::ffff:10.0.0.1", "::1", "2001:db8::5"]).tolist() == [-1, -1, 0, 0]


def test_mapped_ipv4_and_whole_space_prefixes() -> None:
    s = IpSet()
    s.add(["::/0"], 0)
    s.add(["0.0.0.0/0"], 1)
    s.add(["1.2.3.4/32"], 2)
    assert s.lookup(["1.2.3.4", "::ffff:1.2.3.4", "8.8.8.8", "2001:db8::1"]).tolist() == [2, 2, 1, 0]


def test_host_bits_are_cleared_like_strict_false() -> None:
    s = IpSet.from_lists([["192.168.1.77/24"]])
    assert s.lookup(["192.168.1.1", "192.168.2.1"]).tolist() == [0, -1]


def test_bad_entries_are_named_or_counted() -> None:
    s = IpSet()
    with pytest.raises(ValueError, match=r"entry 1 \(\"01\.2\.3\.4\"\) of list 0 is not a valid address or CIDR"):
        s.add(["10.0.0.0/8", "01.2.3.4"], 0)
    assert s.add(["10.0.0.0/8", "01.2.3.4", " 1.1.1.1", "1.1.1.1/40"], 0, strict=False) == 3
    assert len(s) == 1 and s.skipped == 3
    with pytest.raises(ValueError, match="list_id -1 is out of range"):
        s.add(["1.1.1.1"], -1)
    with pytest.raises(TypeError, match="entry 0 is int"):
        s.add([5], 0)  # type: ignore[list-item]
    with pytest.raises(TypeError, match="not a single string"):
        s.add("10.0.0.0/8", 0)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="item 1 is int"):
        s.lookup(["1.1.1.1", 7])  # type: ignore[list-item]


def test_load_netset_reads_comments_blank_lines_and_names_bad_lines(tmp_path: Path) -> None:
    good = tmp_path / "good.netset"
    good.write_text("# header\n\n10.0.0.0/8\n  192.168.0.1  \n2001:db8::/32 # inline comment\r\n")
    s = IpSet()
    assert s.load_netset(good, 4) == 0
    assert len(s) == 3
    assert s.lookup(["10.9.9.9", "192.168.0.1", "2001:db8::7", "8.8.8.8"]).tolist() == [4, 4, 4, -1]
    bad = tmp_path / "bad.netset"
    bad.write_text("10.0.0.0/8\n# fine\n10.0.0.0/77\n")
    with pytest.raises(ValueError, match=r"bad\.netset:3: \"10\.0\.0\.0/77\" is not a valid address or CIDR"):
        s.load_netset(bad, 5)
    assert s.load_netset(str(bad), 5, strict=False) == 1
    with pytest.raises(FileNotFoundError):
        s.load_netset(tmp_path / "missing.netset", 0)


def test_lookup_of_a_polars_column_with_nulls_and_garbage() -> None:
    s = IpSet.from_lists([["10.0.0.0/8"]])
    column = pl.Series(["10.0.0.1", None, "not an ip", "10.0.0.1" + "x" * 100, "11.0.0.1"])
    ids, invalid = s.lookup_with_stats(column)
    assert ids.tolist() == [0, -1, -1, -1, -1]
    assert invalid == 2


def test_adding_after_a_lookup_rebuilds_the_table() -> None:
    s = IpSet()
    assert s.lookup(["10.0.0.1"]).tolist() == [-1]
    s.add(["10.0.0.0/8"], 3)
    assert s.lookup(["10.0.0.1"]).tolist() == [3]


def test_many_threads_look_up_at_once() -> None:
    s = IpSet.from_lists([[f"10.{i}.0.0/16" for i in range(256)], ["10.7.7.0/24"]])
    ips = [f"10.{i % 256}.7.{i % 200}" for i in range(20_000)]
    expected = s.lookup(ips).tolist()
    with ThreadPoolExecutor(4) as pool:
        assert all(r.tolist() == expected for r in pool.map(lambda _: s.lookup(ips), range(8)))


def dotted(n: int) -> str:
    return f"{n >> 24}.{n >> 16 & 255}.{n >> 8 & 255}.{n & 255}"


def test_a_million_prefixes_build_and_look_up_quickly() -> None:
    rng = np.random.default_rng(1)
    addrs = rng.integers(0, 2**32, size=1_000_000, dtype=np.uint64).tolist()
    lengths = rng.integers(8, 33, size=200_000).tolist()
    entries = [f"{dotted(a)}/{n}" for a, n in zip(addrs, lengths, strict=False)] + [dotted(a) for a in addrs[200_000:]]
    queries = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).tolist()
    ips = pl.Series([dotted(q) for q in queries])
    s = IpSet()
    started = time.perf_counter()
    s.add(entries, 0)
    s.lookup(ips[:1])  # builds the table
    built = time.perf_counter() - started
    started = time.perf_counter()
    ids = s.lookup(ips)
    looked = time.perf_counter() - started
    assert built < 20, f"building 1M prefixes took {built:.1f} s"
    assert looked < 2, f"200k lookups took {looked:.2f} s"
    # The twin, vectorised: the address is in some [start, end] range of the entries.
    masks = [(2**32 - 1) ^ (2 ** (32 - n) - 1) for n in lengths] + [2**32 - 1] * (len(addrs) - 200_000)
    starts = np.array(addrs, dtype=np.uint64) & np.array(masks, dtype=np.uint64)
    ends = starts | (~np.array(masks, dtype=np.uint64) & np.uint64(2**32 - 1))
    for i in range(0, 200_000, 4_000):
        q = np.uint64(queries[i])
        expected = 0 if bool(np.any((starts <= q) & (q <= ends))) else -1
        assert ids[i] == expected, ips[i]
    assert s.lookup([entries[0].split("/")[0], dotted(addrs[-1])]).tolist() == [0, 0]


# --- the real FireHOL level1 list ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def firehol() -> Path:
    if not FIREHOL.exists():
        pytest.skip(f"dataset not found: {FIREHOL} (the shared datasets folder is absent)")
    return FIREHOL


def test_firehol_level1_known_hits(firehol: Path) -> None:
    s = IpSet()
    assert s.load_netset(firehol, 0) == 0
    assert len(s) == 2892  # SOURCE.md: 2,892 entries
    got = s.lookup(["103.99.0.122", "5.188.10.180", "192.168.10.20", "10.8.8.10", "172.16.5.4", "3.225.16.109", "52.45.102.28"])
    assert got.tolist() == [0, 0, 0, 0, 0, -1, -1]


def test_firehol_level1_agrees_with_the_twin(firehol: Path) -> None:
    entries = [
        line.split("#")[0].strip() for line in firehol.read_text().splitlines() if line.split("#")[0].strip()
    ]
    nets = [ipaddress.ip_network(e, strict=False) for e in entries]
    rng = np.random.default_rng(7)
    # Edges of real entries plus random addresses.
    ips = [str(n.network_address) for n in nets[::7]]
    ips += [str(n.broadcast_address + 1) for n in nets[::11] if int(n.broadcast_address) < 2**32 - 1]
    ips += [str(ipaddress.IPv4Address(int(x))) for x in rng.integers(0, 2**32, size=500)]
    s = IpSet.from_lists([entries])
    ranges = [(int(n.network_address), int(n.broadcast_address)) for n in nets]
    values = [int(ipaddress.ip_address(ip)) for ip in ips]
    expected = [0 if any(a <= v <= b for a, b in ranges) else -1 for v in values]
    assert s.lookup(ips).tolist() == expected
