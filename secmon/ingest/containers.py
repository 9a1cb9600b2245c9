"""Container logs as the runtime stores them: each line of the file wraps one line the container
wrote, with the runtime's time and stream.

- ``docker``: Docker's ``json-file`` driver (``/var/lib/docker/containers/<id>/<id>-json.log``):
  ``{"log": "<line>\\n", "stream": "stdout", "time": "2024-05-01T10:00:00.123456789Z"}``.
- ``cri``: containerd and CRI-O, what Kubernetes nodes keep under ``/var/log/containers`` and
  ``/var/log/pods``: ``2024-05-01T10:00:00.123456789Z stdout F <line>``.

Why: on a container host these files are the logs; an nginx container's access log, for one,
exists nowhere else. Read as plain NDJSON or text, every line was rejected or kept as bare text,
and no web rule could fire.

The wrapped lines are read as any file's lines are: their format (access log, syslog, JSON, ...)
is detected from the first lines of the file and each line parsed with it, so the web, sshd and
JSON rules apply inside containers as they do on the host. A line that format cannot read (a
container mixes its own lines with a server's, an error log on stderr beside an access log on
stdout) is kept as an event of its own: the runtime's time, the line as ``message``, ``status``
``error`` for stderr and ``info`` for stdout. Events also carry ``container.stream``, and the tags
Datadog's agent gives container logs where the file's path names them: ``container_id`` (Docker's
``containers/<id>/<id>-json.log``, CRI's ``/var/log/containers/<pod>_<namespace>_<container>-<id>.log``),
``kube_namespace``, ``pod_name`` and ``kube_container_name`` (those and
``/var/log/pods/<namespace>_<pod>_<uid>/<container>/<n>.log``). An event's time is the line's own where
its format reads one, else the runtime's.

Lines the runtime split (Docker cuts lines over 16 KiB into pieces, the last ending in a newline;
CRI tags the pieces ``P``) are read piece by piece, not joined.

The prefilter gets the wrapped format's promises, none for ``tags`` (the path's are not in the
line). Inside Docker's JSON a line is a JSON string, where ``"``, ``\\``, control characters, ``<``,
``>``, ``&`` and non-ASCII text may be escaped: a literal holding one of those is not promised.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import orjson

from secmon.ingest import stats as reasons
from secmon.ingest.base import JSON_ESCAPED, Event, LineRejected, LogFormat
from secmon.ingest.json_format import JsonFormatBase, json_object, record_event
from secmon.ingest.text import TextFormat
from secmon.ingest.timestamps import TimestampError, parse_iso8601

if TYPE_CHECKING:
    from collections.abc import Callable

    from secmon.ingest.sources import Source

# What Docker's JSON encoder may write as an escape (it escapes <, > and & for HTML, too).
_DOCKER_ESCAPED = JSON_ESCAPED | frozenset("<>&")
_CRI_LINE = re.compile(r"(\d{4}-\d\d-\d\dT\S+) (stdout|stderr) ([PF])(?: (.*))?", re.DOTALL)
_DOCKER_KEYS = ("log", "stream", "time")
_ROTATED = r"(?:\.[\w.-]*)?"  # .1, .gz, .20240501-101010.gz
_DOCKER_PATH = re.compile(r"(?:^|/)([0-9a-f]{64})/\1-json\.log" + _ROTATED + "$")
_CRI_CONTAINERS_PATH = re.compile(r"(?:^|/)([^/_]+)_([^/_]+)_([^/_]+)-([0-9a-f]{64})\.log" + _ROTATED + "$")
_CRI_PODS_PATH = re.compile(r"(?:^|/)([^/_]+)_([^/_]+)_[0-9a-f-]+/([^/_]+)/\d+\.log" + _ROTATED + "$")


def path_tags(path: str) -> list[str]:
    """The tags Datadog's agent gives a container's logs, from where the runtime keeps them."""
    m = _DOCKER_PATH.search(path)
    if m is not None:
        return [f"container_id:{m.group(1)}"]
    m = _CRI_CONTAINERS_PATH.search(path)
    if m is not None:
        pod, namespace, container, container_id = m.groups()
        return [f"container_id:{container_id}", f"kube_namespace:{namespace}", f"pod_name:{pod}",
                f"kube_container_name:{container}"]
    m = _CRI_PODS_PATH.search(path)
    if m is not None:
        namespace, pod, container = m.groups()
        return [f"kube_namespace:{namespace}", f"pod_name:{pod}", f"kube_container_name:{container}"]
    return []
# A wrapped line its format turns down for one of these is kept as a plain event, not rejected.
_KEPT_AS_PLAIN = frozenset(
    {reasons.UNPARSED_LINE, reasons.MISSING_TIMESTAMP, reasons.BAD_TIMESTAMP, reasons.MALFORMED_JSON, reasons.NOT_AN_OBJECT}
)


class ContainerFormat(LogFormat):
    """A runtime's wrapping around lines of another format (``inner``), bound per file."""

    #: The runtime's name (the format's name without its wrapped format).
    runtime = ""
    #: Characters the wrapping may write escaped (a literal holding one is not promised).
    wrapper_escapes: frozenset[str] = frozenset()

    def __init__(self, inner: LogFormat | None = None) -> None:
        self.inner = inner
        self.name = self.runtime if inner is None else f"{self.runtime}+{inner.name}"
        self.json_safe_events = inner is None or inner.json_safe_events

    def not_wrapped(self, line: str) -> LineRejected:
        """Why ``line`` (which :meth:`unwrap` turned down) gives no event."""
        return LineRejected(reasons.UNPARSED_LINE, f"not a {self.runtime} log line: {line[:200]}")

    # --- binding to the wrapped format ----------------------------------------------------------

    def unwrap(self, line: str) -> tuple[str, str, str] | None:
        """(wrapped line, stream, runtime time) of one line of the file; None if it is not one."""
        raise NotImplementedError

    def bound(self, head: bytes, detect: Callable[[bytes], LogFormat]) -> ContainerFormat:
        """This runtime's format around the format ``detect`` finds in the wrapped lines of ``head``."""
        lines = head.decode("utf-8", "replace").splitlines()
        wrapped = [found[0] for found in map(self.unwrap, lines[:-1] or lines) if found is not None]
        return type(self)(detect("\n".join(wrapped).encode()))

    # --- the prefilter's promises: the wrapped format's --------------------------------------

    def verbatim(self, path: str) -> bool:
        return path != "tags" and self.inner is not None and self.inner.verbatim(path)

    def implied_literals(self, path: str, value: str) -> list[str] | None:
        if self.inner is None or path == "tags":
            return None
        literals = self.inner.implied_literals(path, value)
        if literals is None or any(not lit.isascii() or self.wrapper_escapes.intersection(lit) for lit in literals):
            return None
        return literals

    # --- parsing ----------------------------------------------------------------------------

    def sniff(self, line: str) -> bool:
        return self.unwrap(line) is not None

    def parse_text(self, text: str, source: Source) -> Event | list[Event]:
        found = self.unwrap(text)
        if found is None:
            raise self.not_wrapped(text)
        line, stream, stamp = found
        try:
            runtime_ms = parse_iso8601(stamp)
        except TimestampError as exc:
            raise LineRejected(reasons.BAD_TIMESTAMP, f"{exc}: {text[:200]}") from None
        try:
            produced = self._parse_wrapped(line, runtime_ms, source)
        except LineRejected as rejected:
            if rejected.reason not in _KEPT_AS_PLAIN:
                raise
            produced = {"timestamp": runtime_ms, "message": line, "status": "error" if stream == "stderr" else "info"}
        tags = source.parse_state.get("container_tags")
        if tags is None:
            tags = source.parse_state["container_tags"] = path_tags(source.name)
        events: list[Event] = [produced] if isinstance(produced, dict) else produced
        for event in events:
            container = event.setdefault("container", {})
            if isinstance(container, dict):  # a JSON line's own "container" is left as it is
                container.setdefault("stream", stream)
            if tags:
                own = event.setdefault("tags", [])
                if isinstance(own, list):
                    own.extend(tag for tag in tags if tag not in own)
        return produced

    def _parse_wrapped(self, line: str, runtime_ms: int, source: Source) -> Event | list[Event]:
        inner = self.inner
        if inner is None or isinstance(inner, TextFormat):
            raise LineRejected(reasons.UNPARSED_LINE)  # plain text: kept with the runtime's time
        if isinstance(inner, JsonFormatBase):  # NDJSON, or JSON documents read a line at a time
            return _json_event(line, runtime_ms)
        return inner.parse_text(line, source)


def _json_event(line: str, runtime_ms: int) -> Event:
    """A wrapped JSON line, normalized as NDJSON is; without a date of its own, the runtime's."""
    record = json_object(line)
    try:
        return record_event(record)
    except LineRejected as rejected:
        if rejected.reason != reasons.MISSING_TIMESTAMP:
            raise
    record["timestamp"] = runtime_ms
    return record_event(record)


class DockerJsonFormat(ContainerFormat):
    runtime = "docker"
    description = 'Docker json-file container logs ({"log": ..., "stream": ..., "time": ...}); the wrapped lines\' format detected per file'
    wrapper_escapes = _DOCKER_ESCAPED

    def unwrap(self, line: str) -> tuple[str, str, str] | None:
        if not line.startswith("{"):
            return None
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            return None
        if type(record) is not dict:
            return None
        text, stream, stamp = (record.get(key) for key in _DOCKER_KEYS)
        if not (isinstance(text, str) and isinstance(stream, str) and isinstance(stamp, str)):
            return None
        return text.removesuffix("\n").removesuffix("\r"), stream, stamp

    def not_wrapped(self, line: str) -> LineRejected:
        try:
            orjson.loads(line)
        except orjson.JSONDecodeError as exc:
            return LineRejected(reasons.MALFORMED_JSON, f"{exc}: {line[:200]}")
        return super().not_wrapped(line)


class CriFormat(ContainerFormat):
    runtime = "cri"
    description = "CRI container logs (containerd, CRI-O: /var/log/containers, /var/log/pods); the wrapped lines' format detected per file"

    def unwrap(self, line: str) -> tuple[str, str, str] | None:
        m = _CRI_LINE.fullmatch(line)
        if m is None:
            return None
        stamp, stream, _tag, text = m.groups()
        return text or "", stream, stamp

