"""Sigma rules compiled to secmon rules: the detection becomes one query AST, the rule a
``log_detection`` rule whose every matching event is a signal.

What Sigma means, as the specification (and pySigma) says it:

- a *selection* is a map of ``field|modifier...: value(s)`` (all must hold; a list of values is
  any of them, or all with ``|all``), a list of such maps (any), or a list of keywords (free text);
- the ``condition`` combines selections with ``and``, ``or``, ``not``, parentheses, ``1 of
  pattern*``, ``all of pattern*`` and ``them``; a list of conditions is any of them;
- strings match whole values, case-insensitively, with ``*`` and ``?`` wildcards; ``\\`` escapes
  ``*``, ``?`` and ``\\``, and any other backslash is a literal one (Windows paths);
- modifiers: ``contains``, ``startswith``, ``endswith``, ``all``, ``cased``, ``re`` (with ``i``,
  ``m``, ``s``), ``cidr``, ``exists``, ``fieldref``, ``gt``, ``gte``, ``lt``, ``lte``, ``base64``,
  ``base64offset`` (with ``wide``, ``utf16le``, ``utf16be``, ``utf16``), ``windash``; ``null`` is a
  missing field; ``'|all': [keywords]`` asks for every keyword.

Fields are read as attributes of the event as written (``CommandLine``, ``eventName``). The
``logsource`` says which events a rule reads (:func:`logsource_query`). What secmon does
not run (aggregations, correlations, ``expand`` placeholders) is an
error naming the field and the modifier, never a rule that silently matches nothing.
"""

from __future__ import annotations

import base64
import ipaddress
import re
from collections.abc import Callable, Sequence
from typing import Any

from secmon.errors import RuleError
from secmon.query.ast import And, Cidr, Compare, Exists, Field, FieldRef, Not, Or, Query, Regex, Term

# Sigma's levels as secmon's (Datadog's) severities.
LEVELS = {"informational": "info", "low": "low", "medium": "medium", "high": "high", "critical": "critical"}
_COMPARE = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}
# How a value is encoded before base64 (Sigma's ``wide`` is UTF-16LE, as PowerShell's -enc).
_ENCODINGS = {"wide": "utf-16-le", "utf16le": "utf-16-le", "utf16be": "utf-16-be", "utf16": "utf-16"}
_REGEX_FLAGS = {"i": "i", "m": "m", "s": "s"}
_WINDASH = ("-", "/", "\u2013", "\u2014", "\u2015")  # dash, slash, en dash, em dash, horizontal bar
_FLAG_START = re.compile(r"(?<!\w)[-/](?=\w)")
_CONDITION_TOKEN = re.compile(r"\s*(\(|\)|\||1 of\b|all of\b|[\w*.-]+)")


class SigmaError(ValueError):
    """A part of a Sigma rule secmon cannot compile; ``field`` says where."""

    def __init__(self, field: str, reason: str, value: Any = None) -> None:
        super().__init__(reason)
        self.field, self.reason, self.value = field, reason, value


def is_sigma(raw: Any) -> bool:
    return isinstance(raw, dict) and "detection" in raw and "logsource" in raw


def sigma_rule_dict(raw: dict[str, Any], default_id: str | None) -> tuple[dict[str, Any], Query]:
    """The Datadog-format rule (as a dict) a Sigma rule amounts to, and its compiled query."""
    for unsupported in ("correlation", "action"):
        if unsupported in raw:
            raise SigmaError(unsupported, f"Sigma's {unsupported!r} documents are not supported by secmon yet")
    detection = raw.get("detection")
    if not isinstance(detection, dict):
        raise SigmaError("detection", "a Sigma detection is a mapping of selections and a condition", detection)
    query = compile_detection(detection)
    scope = logsource_query(raw.get("logsource"))
    if scope is not None:
        query = And((scope, query))
    level = raw.get("level", "medium")
    if level not in LEVELS:
        raise SigmaError("level", f"a Sigma level is one of {', '.join(LEVELS)}", level)
    title = str(raw.get("title") or raw.get("id") or default_id or "Sigma rule")
    return {
        "id": str(raw.get("id") or default_id or title),
        "name": title,
        "type": "log_detection",
        "queries": [{"query": str(query), "aggregation": "none", "name": "sigma"}],
        "cases": [{"name": level, "status": LEVELS[level], "condition": ""}],
        "options": {"detectionMethod": "threshold", "evaluationWindow": 0, "keepAlive": 0, "maxSignalDuration": 0},
        "message": _message(raw),
        "tags": [str(t) for t in raw.get("tags") or []],
    }, query


def _message(raw: dict[str, Any]) -> str:
    lines = [str(raw.get("description") or raw.get("title") or "").strip()]
    status, author = raw.get("status"), raw.get("author")
    lines.append(f"Sigma rule {raw.get('id', '')}" + (f" ({status})" if status else "") + (f", by {author}" if author else "") + ".")
    for heading, key in (("False positives", "falsepositives"), ("References", "references")):
        items = raw.get(key) or []
        if isinstance(items, list) and items:
            lines.append(f"{heading}:\n" + "\n".join(f"- {item}" for item in items))
    return "\n\n".join(line for line in lines if line)


# --- the logsource --------------------------------------------------------------------------------

SYSMON = "Microsoft-Windows-Sysmon/Operational"
# Windows event categories (Sigma's taxonomy) as the channel and event ids that carry them.
_WINDOWS_CATEGORIES: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {
    "process_creation": ((SYSMON, (1,)), ("Security", (4688,))),
    "process_termination": ((SYSMON, (5,)),),
    "network_connection": ((SYSMON, (3,)),),
    "file_change": ((SYSMON, (2,)),),
    "driver_load": ((SYSMON, (6,)),),
    "image_load": ((SYSMON, (7,)),),
    "create_remote_thread": ((SYSMON, (8,)),),
    "raw_access_thread": ((SYSMON, (9,)),),
    "process_access": ((SYSMON, (10,)),),
    "file_event": ((SYSMON, (11,)),),
    "registry_add": ((SYSMON, (12,)),),
    "registry_delete": ((SYSMON, (12,)),),
    "registry_set": ((SYSMON, (13,)),),
    "registry_rename": ((SYSMON, (14,)),),
    "registry_event": ((SYSMON, (12, 13, 14)),),
    "create_stream_hash": ((SYSMON, (15,)),),
    "pipe_created": ((SYSMON, (17, 18)),),
    "wmi_event": ((SYSMON, (19, 20, 21)),),
    "dns_query": ((SYSMON, (22,)),),
    "file_delete": ((SYSMON, (23, 26)),),
    "clipboard_capture": ((SYSMON, (24,)),),
    "process_tampering": ((SYSMON, (25,)),),
    "file_block": ((SYSMON, (27, 28)),),
    "sysmon_status": ((SYSMON, (4, 16)),),
    "sysmon_error": ((SYSMON, (255,)),),
    "ps_module": (("Microsoft-Windows-PowerShell/Operational", (4103,)),),
    "ps_script": (("Microsoft-Windows-PowerShell/Operational", (4104,)),),
    "ps_classic_start": (("Windows PowerShell", (400,)),),
    "ps_classic_provider_start": (("Windows PowerShell", (600,)),),
    "ps_classic_script": (("Windows PowerShell", (800,)),),
}
# Windows services (Sigma's taxonomy) as the channel their events come in.
_WINDOWS_CHANNELS = {
    "security": "Security", "system": "System", "application": "Application", "sysmon": SYSMON,
    "powershell": "Microsoft-Windows-PowerShell/Operational", "powershell-classic": "Windows PowerShell",
    "windefend": "Microsoft-Windows-Windows Defender/Operational", "taskscheduler": "Microsoft-Windows-TaskScheduler/Operational",
    "wmi": "Microsoft-Windows-WMI-Activity/Operational", "dns-server": "DNS Server", "bits-client": "Microsoft-Windows-Bits-Client/Operational",
    "codeintegrity-operational": "Microsoft-Windows-CodeIntegrity/Operational", "ntlm": "Microsoft-Windows-NTLM/Operational",
    "firewall-as": "Microsoft-Windows-Windows Firewall With Advanced Security/Firewall", "openssh": "OpenSSH/Operational",
    "smbclient-security": "Microsoft-Windows-SmbClient/Security", "dhcp": "Microsoft-Windows-DHCP-Server/Operational",
    "terminalservices-localsessionmanager": "Microsoft-Windows-TerminalServices-LocalSessionManager/Operational",
    "driver-framework": "Microsoft-Windows-DriverFrameworks-UserMode/Operational", "capi2": "Microsoft-Windows-CAPI2/Operational",
    "msexchange-management": "MSExchange Management", "ldap": "Microsoft-Windows-LDAP-Client/Debug",
    "appxdeployment-server": "Microsoft-Windows-AppXDeploymentServer/Operational", "lsa-server": "Microsoft-Windows-LSA/Operational",
    "shell-core": "Microsoft-Windows-Shell-Core/Operational", "vhdmp": "Microsoft-Windows-VHDMP/Operational",
    "diagnosis-scripted": "Microsoft-Windows-Diagnosis-Scripted/Operational", "printservice-admin": "Microsoft-Windows-PrintService/Admin",
    "printservice-operational": "Microsoft-Windows-PrintService/Operational", "iis-configuration": "Microsoft-IIS-Configuration/Operational",
    "security-mitigations": "Microsoft-Windows-Security-Mitigations/KernelMode",
}
# Other products and services as the ``source`` secmon's parsers give their events.
_SOURCES: dict[tuple[str, str | None], tuple[str, ...]] = {
    ("aws", None): ("cloudtrail",), ("okta", None): ("okta",), ("github", None): ("github",),
    ("kubernetes", None): ("kubernetes.audit",), ("zeek", None): ("zeek",),
    ("linux", "auditd"): ("auditd",), ("linux", "sshd"): ("sshd", "sshd-session"), ("linux", "sudo"): ("sudo",),
    ("linux", "cron"): ("cron", "CRON", "crond"),
    ("linux", "auth"): ("sshd", "sshd-session", "sudo", "su", "login", "passwd", "useradd", "usermod", "userdel", "groupadd",
                        "gpasswd", "chpasswd", "systemd-logind", "pam"),
}
_WEB_SOURCES = ("nginx", "apache", "access_log", "iis")


def logsource_query(logsource: Any) -> Query | None:
    """What an event must be for a rule of ``logsource`` to read it; None: any event. Windows
    categories and services are channels and event ids (Sysmon's, the Security log's, ...; any
    other Windows rule names its events by its own fields); the products secmon parses are its
    sources (``source:cloudtrail``), a Linux service the program that logs; a product secmon does
    not know is ``source:<product>`` (JSON records name theirs with ``ddsource``), so that its
    rules do not read every other log."""
    if not isinstance(logsource, dict):
        raise SigmaError("logsource", "a Sigma logsource is a mapping (product, service, category)", logsource)
    product, service, category = (str(v).lower() if v is not None else None for v in
                                  (logsource.get("product"), logsource.get("service"), logsource.get("category")))
    if product == "windows":
        if category in _WINDOWS_CATEGORIES:
            return _any_of([_all_of([_exact("Channel", channel), _any_of([Term(Field("EventID"), str(i)) for i in ids])])
                            for channel, ids in _WINDOWS_CATEGORIES[category]])
        if service in _WINDOWS_CHANNELS:
            return _exact("Channel", _WINDOWS_CHANNELS[service])
        return None  # another channel: the rule's own fields (EventID, Provider_Name) say which events
    if category == "webserver":
        return _sources(_WEB_SOURCES)
    if product is None:
        return None
    if product == "linux":
        # A Linux service is the program that logs (syslog's tag, secmon's source).
        return None if service in (None, "syslog") else _sources(_SOURCES.get((product, service), (service,)))  # type: ignore[arg-type]
    sources = _SOURCES.get((product, service)) or _SOURCES.get((product, None)) or (product,)
    if product == "zeek" and service:
        return _all_of([_sources(sources), _exact("_path", service)])  # Zeek's log name
    return _sources(sources)


def _exact(path: str, value: str) -> Query:
    return Term(Field(path), value, "phrase")


def _sources(names: Sequence[str]) -> Query:
    return _any_of([_exact("source", name) for name in names])


# --- the detection ------------------------------------------------------------------------------


def compile_detection(detection: dict[str, Any]) -> Query:
    selections = {name: value for name, value in detection.items() if name not in ("condition", "timeframe")}
    if "timeframe" in detection:
        raise SigmaError("detection.timeframe", "Sigma aggregations over a timeframe are not supported by secmon yet", detection["timeframe"])
    compiled = {name: _selection(f"detection.{name}", value) for name, value in selections.items()}
    condition = detection.get("condition")
    conditions = condition if isinstance(condition, list) else [condition]
    if not conditions or not all(isinstance(c, str) and c.strip() for c in conditions):
        raise SigmaError("detection.condition", "a Sigma condition is an expression over the selections", condition)
    return _any_of([_Condition(text, compiled).parse() for text in conditions])


def _selection(where: str, value: Any) -> Query:
    if isinstance(value, dict):
        if not value:
            raise SigmaError(where, "an empty selection matches nothing")
        return _all_of([_field_query(f"{where}.{spec}", str(spec), items) for spec, items in value.items()])
    if isinstance(value, list):
        if value and all(isinstance(item, dict) for item in value):
            return _any_of([_selection(f"{where}[{i}]", item) for i, item in enumerate(value)])
        if any(isinstance(item, (dict, list)) for item in value):
            raise SigmaError(where, "a selection list holds maps or keywords, not both", value)
        return _any_of([_keyword(where, item) for item in value])
    if isinstance(value, (str, int, float)):
        return _keyword(where, value)
    raise SigmaError(where, "a selection is a map, a list of maps or a list of keywords", value)


def _keyword(where: str, value: Any) -> Query:
    """Free text: the value anywhere in the message, in any case."""
    pattern = _pattern(str(value))
    if not pattern.strip("*"):
        raise SigmaError(where, "an empty keyword matches every event", value)
    if not any(_is_wildcard(pattern, i) for i in range(len(pattern))):
        return Term(None, _unescaped(pattern))  # free text: a substring of the message, in any case
    return Term(None, pattern, "wildcard")


def _field_query(where: str, spec: str, items: Any) -> Query:
    name, *modifiers = spec.split("|")
    values = items if isinstance(items, list) else [items]
    if not name:
        # '|all': [keywords]: every keyword, anywhere in the message.
        if modifiers != ["all"]:
            raise SigmaError(where, "keywords take the 'all' modifier only", spec)
        return _all_of([_keyword(where, value) for value in values])
    field = Field(name)
    known = {"all", "contains", "startswith", "endswith", "cased", "re", "cidr", "exists", "fieldref", "base64", "base64offset",
             "windash", *_ENCODINGS, *_COMPARE, *_REGEX_FLAGS}
    for modifier in modifiers:
        if modifier not in known:
            raise SigmaError(where, f"Sigma's {modifier!r} modifier is not supported by secmon yet", spec)
    if not values:
        raise SigmaError(where, "an empty list of values matches nothing", items)
    leaves = [_value_query(where, field, modifiers, value) for value in values]
    return _all_of(leaves) if "all" in modifiers else _any_of(leaves)


def _value_query(where: str, field: Field, modifiers: list[str], value: Any) -> Query:
    mods = set(modifiers)
    if "fieldref" in mods:
        if mods != {"fieldref"} or not isinstance(value, str) or not value:
            raise SigmaError(where, "'fieldref' names another field, with no other modifier", value)
        return FieldRef(field, Field(value))
    if "exists" in mods:
        if not isinstance(value, bool):
            raise SigmaError(where, "'exists' takes true or false", value)
        return Exists(field) if value else Not(Exists(field))
    if value is None:
        return Not(Exists(field))
    if compare := [m for m in modifiers if m in _COMPARE]:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SigmaError(where, f"'{compare[0]}' compares with a number", value)
        return Compare(field, _COMPARE[compare[0]], str(value))  # type: ignore[arg-type]
    if "cidr" in mods:
        try:
            return Cidr(field, (str(ipaddress.ip_network(str(value), strict=False)),))
        except ValueError:
            raise SigmaError(where, "'cidr' takes a network such as 10.0.0.0/8", value) from None
    if isinstance(value, bool):
        return Term(field, "true" if value else "false")
    if isinstance(value, (int, float)) and not mods & {"contains", "startswith", "endswith", "re", "base64", "base64offset", "windash"}:
        return Term(field, str(value))  # a number is matched as the event table writes it
    text = str(value)
    if "re" in mods:
        flags = "".join(sorted(_REGEX_FLAGS[m] for m in mods & set(_REGEX_FLAGS) if m != "i"))
        pattern = f"(?{flags}){text}" if flags else text
        _check_regex(where, pattern)
        return Regex(field, pattern, insensitive="i" in mods)
    insensitive = "cased" not in mods
    variants = [_pattern(text)]
    if "windash" in mods:
        variants = [v for base in variants for v in _windash(base)]
    encodings = [m for m in modifiers if m in _ENCODINGS]
    if encodings and not mods & {"base64", "base64offset"}:
        raise SigmaError(where, f"'{encodings[0]}' encodes a value for base64 or base64offset", modifiers)
    encoding = _ENCODINGS[encodings[0]] if encodings else "utf-8"
    if "base64offset" in mods:
        variants = [b for v in variants for b in _base64_offsets(_unescaped(v).encode(encoding))]
        mods = mods | {"contains"}
    elif "base64" in mods:
        variants = [_escape(base64.b64encode(_unescaped(v).encode(encoding)).decode()) for v in variants]
    return _any_of([_matching(field, v, mods, insensitive) for v in dict.fromkeys(variants)])


def _check_regex(where: str, pattern: str) -> None:
    """``pattern`` must be a regular expression for both engines: Rust's ``regex`` (the native
    core and Polars; no look-around, no back-references) and Python's ``re`` (the reference)."""
    import polars as pl

    try:
        re.compile(pattern)
        pl.Series([""]).str.contains(pattern)
    except (re.error, pl.exceptions.ComputeError) as exc:
        lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
        reason = next((line.removeprefix("error: ") for line in lines if line.startswith("error:")), lines[0] if lines else type(exc).__name__)
        raise SigmaError(where, f"not a regular expression secmon runs (Rust's regex syntax): {reason}", pattern) from None


def _matching(field: Field, pattern: str, mods: set[str], insensitive: bool) -> Query:
    """``pattern`` (secmon's wildcard syntax) matched as Sigma's match modifier says."""
    if "contains" in mods:
        pattern = f"*{pattern}*"
    elif "startswith" in mods:
        pattern = f"{pattern}*"
    elif "endswith" in mods:
        pattern = f"*{pattern}"
    wildcards = [i for i in range(len(pattern)) if _is_wildcard(pattern, i)]
    if not wildcards:
        return Term(field, _unescaped(pattern), "phrase", insensitive=insensitive)
    if all(pattern[i] == "*" for i in wildcards) and len(wildcards) == len(pattern):
        return Exists(field)  # only '*': any value
    return Term(field, pattern, "wildcard", insensitive=insensitive)


# --- values ---------------------------------------------------------------------------------------


def _pattern(text: str) -> str:
    """A Sigma string as secmon's wildcard pattern: ``*`` and ``?`` stay wildcards, ``\\*``,
    ``\\?`` and ``\\\\`` stay escapes, and any other backslash is a literal one (escaped)."""
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\":
            nxt = text[i + 1] if i + 1 < len(text) else ""
            if nxt in ("*", "?", "\\"):
                out.append("\\" + nxt)
                i += 2
                continue
            out.append("\\\\")
        else:
            out.append(ch)
        i += 1
    return "".join(out)


def _is_wildcard(pattern: str, index: int) -> bool:
    """Whether ``pattern[index]`` is an unescaped ``*`` or ``?``."""
    if pattern[index] not in "*?":
        return False
    backslashes = 0
    while index - backslashes - 1 >= 0 and pattern[index - backslashes - 1] == "\\":
        backslashes += 1
    return backslashes % 2 == 0


def _unescaped(pattern: str) -> str:
    return re.sub(r"\\(.)", r"\1", pattern)


def _escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("*", "\\*").replace("?", "\\?")


def _windash(pattern: str) -> list[str]:
    """The pattern with each dash or slash that starts a word (a command-line flag) written as
    each of the characters Windows programs accept there."""
    if not _FLAG_START.search(pattern):
        return [pattern]
    return [_FLAG_START.sub(lambda _m, d=dash: d, pattern) for dash in _WINDASH]


def _base64_offsets(data: bytes) -> list[str]:
    """The three base64 forms of ``data`` as it may sit inside a longer encoded value (Sigma's
    ``base64offset``): encoded at each of the three byte offsets, with the characters that
    depend on the unknown neighbours cut off."""
    out = []
    for offset in range(3):
        encoded = base64.b64encode(b"\x00" * offset + data).decode()
        start = (0, 2, 3)[offset]
        end = len(encoded) - (0, 3, 2)[(len(data) + offset) % 3]
        out.append(_escape(encoded[start:end]))
    return out


def _all_of(children: Sequence[Query]) -> Query:
    return children[0] if len(children) == 1 else And(tuple(children))


def _any_of(children: Sequence[Query]) -> Query:
    return children[0] if len(children) == 1 else Or(tuple(children))


# --- the condition --------------------------------------------------------------------------------


class _Condition:
    """A Sigma condition over compiled selections: ``or`` < ``and`` < ``not`` < atoms."""

    def __init__(self, text: str, selections: dict[str, Query]) -> None:
        self.text = text
        self.selections = selections
        self.tokens = self._tokens(text)
        self.at = 0

    def _tokens(self, text: str) -> list[str]:
        tokens, pos = [], 0
        while pos < len(text):
            if text[pos:].strip() == "":
                break
            m = _CONDITION_TOKEN.match(text, pos)
            if m is None:
                raise SigmaError("detection.condition", f"unexpected {text[pos:].strip()[:20]!r} in condition {text!r}", text)
            tokens.append(m.group(1))
            if m.group(1) == "|":
                break  # an aggregation follows: refused by name when parsing reaches it
            pos = m.end()
        return tokens

    def parse(self) -> Query:
        query = self._or()
        if self.at < len(self.tokens):
            token = self.tokens[self.at]
            if token == "|":
                raise SigmaError("detection.condition", "Sigma aggregations ('| count() ...') are not supported by secmon yet", self.text)
            raise SigmaError("detection.condition", f"unexpected {token!r} in condition {self.text!r}", self.text)
        return query

    def _peek(self) -> str | None:
        return self.tokens[self.at] if self.at < len(self.tokens) else None

    def _take(self) -> str:
        token = self._peek()
        if token is None:
            raise SigmaError("detection.condition", f"condition {self.text!r} ends early", self.text)
        self.at += 1
        return token

    def _binary(self, word: str, operand: Callable[[], Query], combine: Callable[[Sequence[Query]], Query]) -> Query:
        parts = [operand()]
        while self._peek() == word:
            self.at += 1
            parts.append(operand())
        return combine(parts)

    def _or(self) -> Query:
        return self._binary("or", self._and, _any_of)

    def _and(self) -> Query:
        return self._binary("and", self._not, _all_of)

    def _not(self) -> Query:
        if self._peek() == "not":
            self.at += 1
            return Not(self._not())
        return self._atom()

    def _atom(self) -> Query:
        token = self._take()
        if token == "(":
            inner = self._or()
            if self._take() != ")":
                raise SigmaError("detection.condition", f"expected ')' in condition {self.text!r}", self.text)
            return inner
        if token in ("1 of", "all of"):
            target = self._take()
            names = [n for n in self.selections if not n.startswith("_")] if target == "them" else [
                n for n in self.selections if re.fullmatch(re.escape(target).replace(r"\*", ".*"), n)]
            if not names:
                raise SigmaError("detection.condition", f"{token} {target!r} names no selection", self.text)
            found = [self.selections[n] for n in names]
            return _any_of(found) if token == "1 of" else _all_of(found)
        if token in self.selections:
            return self.selections[token]
        raise SigmaError("detection.condition", f"condition {self.text!r} names {token!r}, which is not a selection", self.text)


def sigma_error(file: str, prefix: str, exc: SigmaError) -> RuleError:
    return RuleError(file, prefix + exc.field, exc.reason, exc.value)
