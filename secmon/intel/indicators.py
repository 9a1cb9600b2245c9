"""Indicator lists and the detection rule that matches them."""

from __future__ import annotations

import ipaddress
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import polars as pl

from secmon.detect.compiled import CompiledRule
from secmon.errors import InputError
from secmon.rules.loader import rule_from_dict
from secmon.signals.model import lookup_path

INTEL_RULE_ID = "threat-intel-ip-match"
IP_ATTRIBUTE = "network.client.ip"
DESTINATION_RULE_ID = "threat-intel-destination-ip-match"
DESTINATION_ATTRIBUTE = "network.destination.ip"
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
_V4_MAPPED_BLOCK = ipaddress.IPv6Network("::ffff:0:0/96")


@dataclass
class IndicatorSet:
    """IP indicators from one or more lists; ``list_names[i]`` names the list with id ``i``."""

    list_names: list[str] = field(default_factory=list)
    networks: list[tuple[Network, int]] = field(default_factory=list)
    rejected: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)

    @property
    def exact_addresses(self) -> list[str]:
        return [str(net.network_address) for net, _ in self.networks if net.prefixlen == net.max_prefixlen]

    @property
    def has_ranges(self) -> bool:
        return any(net.prefixlen != net.max_prefixlen for net, _ in self.networks)

    def add_list(self, name: str, lines: Sequence[str]) -> None:
        list_id = len(self.list_names)
        self.list_names.append(name)
        for number, raw in enumerate(lines, start=1):
            entry = raw.split("#", 1)[0].split(";", 1)[0].strip()
            if not entry:
                continue
            entry = entry.split()[0]
            try:
                network = ipaddress.ip_network(entry, strict=False)
            except ValueError:
                self.rejected["not an IP address or CIDR"] += 1
                if len(self.examples) < 5:
                    self.examples.append(f"{name}:{number}: {entry!r}")
                continue
            self.networks.append((network, list_id))

    def native(self) -> Any:
        """The native longest-prefix set (built once, shared by every chunk)."""
        from secmon._core import IpSet

        ipset = IpSet()
        by_list: dict[int, list[str]] = {}
        for network, list_id in self.networks:
            by_list.setdefault(list_id, []).append(str(network))
        for list_id, entries in sorted(by_list.items()):
            ipset.add(entries, list_id)
        return ipset

    def lookup_slow(self, text: str | None) -> int:
        """The obvious twin of the native lookup: longest matching prefix, -1 when none."""
        if not text:
            return -1
        try:
            address = ipaddress.ip_address(text.strip())
        except ValueError:
            return -1
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        best: tuple[int, int] = (-1, -1)
        for network, list_id in self.networks:
            mapped = network.version == 6 and network.subnet_of(_V4_MAPPED_BLOCK)  # type: ignore[arg-type]
            if mapped:  # ::ffff:a.b.c.d/n is the IPv4 network a.b.c.d/(n-96)
                network = ipaddress.IPv4Network((int(network.network_address) & 0xFFFFFFFF, network.prefixlen - 96))
            if address.version == network.version and address in network and network.prefixlen > best[0]:
                best = (network.prefixlen, list_id)
        return best[1]


def load_indicators(paths: Sequence[str | Path]) -> IndicatorSet:
    indicators = IndicatorSet()
    for raw in paths:
        path = Path(raw)
        try:
            text = path.read_text(encoding="utf-8", errors="replace")
        except IsADirectoryError:
            raise InputError(f"{path}: an intel list is a file, not a directory") from None
        indicators.add_list(path.name, text.splitlines())
    if not indicators.networks:
        raise InputError(f"no IP indicators in {', '.join(map(str, paths))}")
    return indicators


# The address a rule looks up -> what its rule says: a listed client (a known attacker coming
# in) and a listed destination (a connection out to a known command-and-control server, Feodo's
# lists are of those; network logs such as Zeek's and W3C's name the destination).
_INTEL_RULES: dict[str, dict[str, Any]] = {
    IP_ATTRIBUTE: {"id": INTEL_RULE_ID, "name": "Client IP listed in threat intel", "tactic": "tactic:TA0001-initial-access"},
    DESTINATION_ATTRIBUTE: {"id": DESTINATION_RULE_ID, "name": "Destination IP listed in threat intel",
                            "tactic": "tactic:TA0011-command-and-control"},
}


@dataclass(frozen=True)
class IntelRule(CompiledRule):
    """A compiled rule whose 'query' is membership of one address attribute (the client's, or the
    destination's) in the indicator lists."""

    indicators: IndicatorSet = field(default_factory=IndicatorSet)
    ipset: Any = None
    attribute: str = IP_ATTRIBUTE

    @classmethod
    def build(cls, indicators: IndicatorSet, index: int, attribute: str = IP_ATTRIBUTE, ipset: Any = None) -> IntelRule:
        """The rule for ``attribute``; ``ipset``: the native set, when another rule built it."""
        lists = ", ".join(indicators.list_names)
        what = _INTEL_RULES[attribute]
        rule = rule_from_dict({
            "id": what["id"],
            "name": what["name"],
            "queries": [{"query": f"@{attribute}:*", "groupByFields": [f"@{attribute}"], "aggregation": "count", "name": "hit"}],
            "cases": [{"name": "listed", "status": "high", "condition": "hit > 0"}],
            "options": {"detectionMethod": "threshold", "evaluationWindow": 0, "keepAlive": 3600, "maxSignalDuration": 86400},
            "message": f"{{{{@{attribute}}}}} is listed in threat intel ({lists}).",
            "tags": ["source:intel", "security:attack", what["tactic"]],
        }, file="<intel>")
        base = CompiledRule.compile(rule, index)  # type: ignore[arg-type]
        return cls(rule=base.rule, index=index, queries=base.queries, requires=(), suppresses=(), cases=base.cases,
                   indicators=indicators, ipset=ipset if ipset is not None else indicators.native(), attribute=attribute)

    @classmethod
    def build_all(cls, indicators: IndicatorSet, first_index: int) -> tuple[IntelRule, ...]:
        """The client rule and the destination rule, sharing one native set."""
        client = cls.build(indicators, first_index)
        return client, cls.build(indicators, first_index + 1, DESTINATION_ATTRIBUTE, client.ipset)

    @property
    def attribute_paths(self) -> frozenset[str]:  # type: ignore[override]
        return frozenset({"timestamp", self.attribute})

    def flag_expressions(self, schema: Mapping[str, pl.DataType]) -> list[pl.Expr]:
        name = self.flag_column(0)
        dtype = schema.get(self.attribute)
        if dtype is None:
            return [pl.lit(False).alias(name)]
        column = pl.col(self.attribute).list.first() if isinstance(dtype, pl.List) else pl.col(self.attribute).cast(pl.String)
        ipset = self.ipset
        listed = column.map_batches(lambda s: pl.Series((ipset.lookup(s) >= 0)), return_dtype=pl.Boolean)
        return [listed.fill_null(False).alias(name)]

    def native_flags(self) -> list[tuple[str, tuple[Any, ...]]]:
        return [(self.flag_column(0), ("first_in_ipset", self.attribute, self.ipset))]

    def matches_event(self, event: dict, query_index: int) -> bool:
        value = lookup_path(event, self.attribute)
        if isinstance(value, list):
            value = value[0] if value else None
        return self.indicators.lookup_slow(value if isinstance(value, str) else None) >= 0

    def prefilter_literals(
        self, verbatim: Callable[[str], bool], implied: Callable[[str, str], list[str] | None] | None = None
    ) -> list[bytes] | None:
        if implied is not None and implied(self.attribute, "192.0.2.1") == []:
            return []  # the input format never names such an address: this rule needs no line
        # A range has no literal; an IPv6 address has several spellings (zeros, '::').
        if self.indicators.has_ranges or not verbatim(self.attribute):
            return None
        if any(network.version == 6 for network, _ in self.indicators.networks):
            return None
        return [address.encode() for address in self.indicators.exact_addresses]
