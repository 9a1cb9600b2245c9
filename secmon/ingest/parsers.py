"""User-defined parsers: a YAML file of regular expressions with named groups.

```yaml
parsers:
  - name: myapp                       # required: [A-Za-z0-9_.-]+, not a built-in format name
    source: myapp                     # optional: the event's ``source`` (default: the name)
    service: billing                  # optional: the event's ``service``
    detect: '^\\d{4}-\\d\\d-\\d\\d .* myapp\\['   # optional: lines this parser claims in format detection
    patterns:                         # required: tried in order, anchored at the line start
      - '(?P<ts>\\S+ \\S+) login (?P<evt__outcome>ok|failed) user=(?P<usr__name>\\S+) ip=(?P<network__client__ip>\\S+)'
    fields:                           # optional: group name -> attribute path
      ts: myapp.time                  #   (default: the group name with "__" read as ".")
    casts:                            # optional: attribute path -> number | integer | float | boolean | string
      http.status_code: integer
    timestamp:                        # required unless a group is named ``timestamp``
      field: ts                       #   the group holding the time
      format: '%Y-%m-%d %H:%M:%S'     #   strptime format, or iso8601, or epoch (s/ms/us/ns by magnitude)
      timezone: '+02:00'              #   for times without a zone: UTC (default) or +HH:MM / -HH:MM
    static:                           # optional: constant attributes added to every event
      evt.name: authentication
```

The line is the ``message`` unless a group maps to ``message``. A group that did not take part in
the match is left out (missing attribute). Problems in the file raise :class:`ParserFileError`
(a :class:`~secmon.errors.ParserConfigError`) naming file, parser, field and reason; every error
of a file is collected before raising.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from secmon.errors import ParserConfigError
from secmon.ingest import stats as reasons
from secmon.ingest.formats import BUILTIN_FORMATS, FORMATS, LineRejected, LogFormat
from secmon.ingest.timestamps import TimestampError, parse_any, parse_iso8601

if TYPE_CHECKING:
    from secmon.ingest.sources import Source

Event = dict[str, Any]

BAD_VALUE = "bad_value"
CASTS = ("number", "integer", "float", "boolean", "string")
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_PATH = re.compile(r"[A-Za-z_@][\w@-]*(?:\.[A-Za-z_@][\w@-]*)*")
_ZONE = re.compile(r"([+-])(\d{2}):?(\d{2})")
_PARSER_KEYS = frozenset({"name", "source", "service", "detect", "patterns", "fields", "casts", "timestamp", "static"})
_TIMESTAMP_KEYS = frozenset({"field", "format", "timezone"})


class ParserFileError(ParserConfigError):
    """One problem in a user parser file: file, parser, field path, reason."""

    def __init__(self, file: str, parser: str, field: str, reason: str, value: object = None) -> None:
        self.file = file
        self.parser = parser
        self.field = field
        self.reason = reason
        self.value = value
        shown = "" if value is None else f" (got {value!r})"
        super().__init__(f"{file}: parser {parser!r}: {field}: {reason}{shown}")


class ParserFileErrors(ParserConfigError):
    """Every error of one parser file, collected in one pass."""

    def __init__(self, errors: list[ParserFileError]) -> None:
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        super().__init__(f"{len(errors)} parser error(s):\n{lines}")


def _set_path(event: Event, path: tuple[str, ...], value: Any) -> None:
    node = event
    for part in path[:-1]:
        child = node.get(part)
        if type(child) is not dict:
            child = node[part] = {}
        node = child
    node[path[-1]] = value


def _cast(kind: str, text: str) -> Any:
    if kind == "string":
        return text
    if kind == "integer":
        return int(text)
    if kind == "float":
        return float(text)
    if kind == "number":
        try:
            return int(text)
        except ValueError:
            return float(text)
    lowered = text.strip().lower()
    if lowered in ("true", "yes", "1", "on"):
        return True
    if lowered in ("false", "no", "0", "off"):
        return False
    raise ValueError(f"not a boolean: {text!r}")


class UserFormat(LogFormat):
    """A format defined by a user parser file (see the module docstring)."""

    json_safe_events = False  # a cast may make a float JSON has no spelling for ("nan", "inf")

    def __init__(
        self,
        name: str,
        *,
        patterns: list[re.Pattern[str]],
        fields: dict[str, tuple[str, ...]],
        casts: dict[str, str],
        timestamp_group: str,
        timestamp_format: str,
        timezone: dt.timezone,
        static: dict[tuple[str, ...], Any],
        source: str,
        service: str | None,
        detect: re.Pattern[str] | None,
        origin: str,
    ) -> None:
        self.name = name
        self.description = f"user parser from {origin}"
        self.patterns = patterns
        self.fields = fields
        self.casts = casts
        self.timestamp_group = timestamp_group
        self.timestamp_format = timestamp_format
        self.timezone = timezone
        self.static = static
        self.source = source
        self.service = service
        self.detect = detect
        captured = {".".join(p) for g, p in fields.items() if g != timestamp_group}
        # Captured text is copied as is; casts, statics, source and the timestamp are computed.
        self.verbatim_paths = frozenset(p for p in captured | {"message"} if p not in casts)

    def sniff(self, line: str) -> bool:
        return self.detect is not None and self.detect.search(line) is not None

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if path == "source":
            return None if value == self.source else []
        if path == "service" and self.service is not None:
            return None if value == self.service else []
        for static_path, static_value in self.static.items():
            if ".".join(static_path) == path:
                shown = ("true" if static_value else "false") if isinstance(static_value, bool) else str(static_value)
                return None if value == shown else []
        return super().implied_literals(path, value)

    def _timestamp(self, text: str) -> int:
        fmt = self.timestamp_format
        if fmt == "iso8601":
            return parse_iso8601(text)
        if fmt == "epoch":
            return parse_any(text)
        try:
            moment = dt.datetime.strptime(text, fmt)
        except ValueError as exc:
            raise TimestampError(str(exc)) from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.timezone)
        return int(moment.timestamp() * 1000)

    def parse_text(self, text: str, source: Source) -> Event:
        for pattern in self.patterns:
            m = pattern.match(text)
            if m is not None:
                break
        else:
            raise LineRejected(reasons.UNPARSED_LINE, text)
        groups = m.groupdict()
        stamp = groups.get(self.timestamp_group)
        if stamp is None:
            raise LineRejected(reasons.MISSING_TIMESTAMP, text)
        try:
            ts = self._timestamp(stamp)
        except TimestampError as exc:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text}") from None
        event: Event = {"timestamp": ts, "source": self.source, "message": text}
        if self.service is not None:
            event["service"] = self.service
        for path, value in self.static.items():
            _set_path(event, path, value)
        for group, path in self.fields.items():
            if group == self.timestamp_group:
                continue
            value = groups.get(group)
            if value is None:
                continue
            dotted = ".".join(path)
            kind = self.casts.get(dotted)
            if kind is not None:
                try:
                    value = _cast(kind, value)
                except ValueError:
                    raise LineRejected(BAD_VALUE, f"{dotted}: {value!r} is not a {kind}: {text}") from None
            _set_path(event, path, value)
        return event


def _check_path(errors: list[ParserFileError], file: str, parser: str, where: str, path: Any) -> tuple[str, ...] | None:
    if not isinstance(path, str) or not _PATH.fullmatch(path.removeprefix("@")):
        errors.append(ParserFileError(file, parser, where, "not an attribute path like network.client.ip", path))
        return None
    if path.removeprefix("@") == "timestamp":
        errors.append(ParserFileError(file, parser, where, "timestamp is set by the timestamp: section", path))
        return None
    return tuple(path.removeprefix("@").split("."))


def _build(spec: Any, index: int, file: str, taken: set[str], errors: list[ParserFileError]) -> UserFormat | None:
    label = f"parsers[{index}]"
    if not isinstance(spec, dict):
        errors.append(ParserFileError(file, label, label, "must be a mapping", spec))
        return None
    name = spec.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        errors.append(ParserFileError(file, label, f"{label}.name", "required, letters, digits, _ . - only", name))
        return None
    before = len(errors)

    def problem(field: str, reason: str, value: object = None) -> None:
        errors.append(ParserFileError(file, name, field, reason, value))

    if name in BUILTIN_FORMATS:
        problem("name", f"is a built-in format ({', '.join(sorted(BUILTIN_FORMATS))})", name)
    if name in taken:
        problem("name", "defined twice in this file", name)
    taken.add(name)
    for key in spec:
        if key not in _PARSER_KEYS:
            problem(str(key), "unknown key; valid keys: " + ", ".join(sorted(_PARSER_KEYS)))
    before_patterns = len(errors)
    raw_patterns = spec.get("patterns")
    if isinstance(raw_patterns, str):
        raw_patterns = [raw_patterns]
    patterns: list[re.Pattern[str]] = []
    if not isinstance(raw_patterns, list) or not raw_patterns:
        problem("patterns", "required: a list of regular expressions", raw_patterns)
        raw_patterns = []
    for k, text in enumerate(raw_patterns):
        if not isinstance(text, str):
            problem(f"patterns[{k}]", "must be a string", text)
            continue
        try:
            patterns.append(re.compile(text))
        except re.error as exc:
            problem(f"patterns[{k}]", f"invalid regular expression: {exc}", text)
    if len(errors) > before_patterns:
        return None  # group names are unknown: checks that depend on them would only add noise
    groups: list[str] = []
    for pattern in patterns:
        groups.extend(g for g in pattern.groupindex if g not in groups)
    mapping = spec.get("fields") or {}
    if not isinstance(mapping, dict):
        problem("fields", "must be a mapping group -> attribute path", mapping)
        mapping = {}
    for group in mapping:
        if group not in groups:
            problem(f"fields.{group}", "no pattern has a group of that name", group)
    ts_spec = spec.get("timestamp")
    ts_group = "timestamp"
    ts_format = "epoch_or_iso"
    timezone = dt.timezone.utc
    if ts_spec is None:
        if "timestamp" not in groups:
            problem("timestamp", "required unless a pattern has a group named timestamp")
    elif not isinstance(ts_spec, dict):
        problem("timestamp", "must be a mapping with field, format, timezone", ts_spec)
    else:
        for key in ts_spec:
            if key not in _TIMESTAMP_KEYS:
                problem(f"timestamp.{key}", "unknown key; valid keys: " + ", ".join(sorted(_TIMESTAMP_KEYS)))
        ts_group = ts_spec.get("field", "timestamp")
        if ts_group not in groups:
            problem("timestamp.field", "no pattern has a group of that name", ts_group)
        ts_format = ts_spec.get("format", "iso8601")
        if not isinstance(ts_format, str) or not ts_format:
            problem("timestamp.format", "must be iso8601, epoch or a strptime format", ts_format)
        elif ts_format not in ("iso8601", "epoch") and "%" not in ts_format:
            problem("timestamp.format", "must be iso8601, epoch or a strptime format with % codes", ts_format)
        zone = ts_spec.get("timezone", "UTC")
        if zone in ("UTC", "Z", "utc"):
            timezone = dt.timezone.utc
        elif isinstance(zone, str) and (zm := _ZONE.fullmatch(zone)) is not None:
            sign = -1 if zm.group(1) == "-" else 1
            timezone = dt.timezone(sign * dt.timedelta(hours=int(zm.group(2)), minutes=int(zm.group(3))))
        else:
            problem("timestamp.timezone", "must be UTC or an offset like +02:00", zone)
    if ts_format == "epoch_or_iso":
        ts_format = "epoch"  # a group named timestamp: epoch numbers or ISO 8601 (parse_any)
    fields: dict[str, tuple[str, ...]] = {}
    for group in groups:
        if group == ts_group:
            continue
        target = mapping.get(group, group.replace("__", "."))
        path = _check_path(errors, file, name, f"fields.{group}", target)
        if path is not None:
            fields[group] = path
    casts_spec = spec.get("casts") or {}
    casts: dict[str, str] = {}
    if not isinstance(casts_spec, dict):
        problem("casts", "must be a mapping attribute path -> type", casts_spec)
        casts_spec = {}
    captured = {".".join(p) for p in fields.values()}
    for path, kind in casts_spec.items():
        if kind not in CASTS:
            problem(f"casts.{path}", f"unknown type; valid: {', '.join(CASTS)}", kind)
        elif str(path).removeprefix("@") not in captured:
            problem(f"casts.{path}", "no group is mapped to this attribute", path)
        else:
            casts[str(path).removeprefix("@")] = kind
    static_spec = spec.get("static") or {}
    static: dict[tuple[str, ...], Any] = {}
    if not isinstance(static_spec, dict):
        problem("static", "must be a mapping attribute path -> value", static_spec)
        static_spec = {}
    for path, value in static_spec.items():
        parts = _check_path(errors, file, name, f"static.{path}", path)
        if parts is not None:
            if not isinstance(value, (str, int, float, bool)):
                problem(f"static.{path}", "must be a string, number or boolean", value)
            static[parts] = value
    detect = None
    if spec.get("detect") is not None:
        try:
            detect = re.compile(str(spec["detect"]))
        except re.error as exc:
            problem("detect", f"invalid regular expression: {exc}", spec["detect"])
    source = spec.get("source", name)
    service = spec.get("service")
    for key, value in (("source", source), ("service", service)):
        if value is not None and not isinstance(value, str):
            problem(key, "must be a string", value)
    if len(errors) > before:
        return None
    return UserFormat(
        name,
        patterns=patterns,
        fields=fields,
        casts=casts,
        timestamp_group=ts_group,
        timestamp_format=ts_format,
        timezone=timezone,
        static=static,
        source=source,
        service=service,
        detect=detect,
        origin=file,
    )


def load_parsers(path: str | Path) -> dict[str, UserFormat]:
    """Read and validate a parser file; raises ParserFileError / ParserFileErrors."""
    file = str(path)
    try:
        document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ParserFileError(file, "-", "(file)", f"not valid YAML: {exc}") from None
    except UnicodeDecodeError as exc:
        raise ParserFileError(file, "-", "(file)", f"not UTF-8 text: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("parsers"), list):
        raise ParserFileError(file, "-", "parsers", "the file must hold a mapping with a list under 'parsers'")
    errors: list[ParserFileError] = []
    taken: set[str] = set()
    built: dict[str, UserFormat] = {}
    for index, spec in enumerate(document["parsers"]):
        fmt = _build(spec, index, file, taken, errors)
        if fmt is not None:
            built[fmt.name] = fmt
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise ParserFileErrors(errors)
    return built


def register_parsers(path: str | Path) -> list[str]:
    """Load a parser file and add its formats to :data:`FORMATS` (replacing earlier user
    parsers of the same name); returns their names."""
    built = load_parsers(path)
    FORMATS.update(built)
    return list(built)


def unregister_parsers(names: list[str]) -> None:
    """Remove user parsers from :data:`FORMATS` (built-in formats cannot be removed)."""
    for name in names:
        if name not in BUILTIN_FORMATS:
            FORMATS.pop(name, None)
