"""Threat-intel matching: IP indicator lists (FireHOL netset/ipset, plain lists) against events.

``secmon scan --intel FILE`` loads every list into one native :class:`secmon._core.IpSet`
(longest prefix wins) and adds two detection rules: ``threat-intel-ip-match`` raises one signal
per listed client address, ``threat-intel-destination-ip-match`` one per listed destination (a
connection out to a listed server, in network logs), deduplicated with keepAlive like any rule. Exact addresses also feed
the line prefilter; a list with ranges (CIDRs) turns the prefilter off for the inputs, since a
range has no literal to look for.
"""

from secmon.intel.indicators import IndicatorSet, IntelRule, load_indicators

__all__ = ["IndicatorSet", "IntelRule", "load_indicators"]
