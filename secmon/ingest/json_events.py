"""Normalizing JSON records into events: generic logs, CloudTrail, Okta and Kubernetes audit.

The record itself becomes the event (raw fields stay addressable, e.g. ``@userIdentity.arn``);
standard attributes are *added* next to them, never overwriting a value already present (records
that already went through Datadog's pipelines, like ``cloudtrail-stratus``, keep theirs).

- Generic: ``timestamp`` from the first of Datadog's reserved date attributes that reads as a date
  (``@timestamp``, ``timestamp``, ``_timestamp``, ``Timestamp``, ``eventTime``, ``date``,
  ``published_date``, ``syslog.timestamp``), else from :data:`FALLBACK_DATE_ATTRIBUTES` (Okta's
  ``published``, Azure's ``time``, Windows' ``TimeCreated``, ...); ``message`` from
  ``message``/``msg``/``log``; ``status`` from ``status``/``severity``/``level``/``syslog.severity``
  normalized to Datadog's names; ``host`` from ``host``/``hostname``/``syslog.hostname``;
  ``service`` from ``service``/``syslog.appname``/``dd.service``; ``source`` from ``ddsource``;
  ``tags`` from ``ddtags`` (``"k:v,k2:v2"``) when ``tags`` is absent.
- CloudTrail (``eventSource`` + ``eventName`` + ``eventTime``; also inside the ``detail`` of an
  EventBridge event whose ``detail-type`` ends in "via CloudTrail", which becomes the event):
  ``source``/``service`` ``cloudtrail``, ``evt.name`` <- ``eventName``, ``evt.outcome`` ``failure``
  when ``errorCode`` is present else ``success``, ``network.client.ip`` <- ``sourceIPAddress`` when
  it is an IP (it can be ``AWS Internal`` or a service host name, which are not clients),
  ``http.useragent`` <- ``userAgent``, ``usr.id`` <- ``userIdentity.arn``, ``usr.name`` <-
  ``userIdentity.userName`` or, for assumed roles, the role name
  (``sessionContext.sessionIssuer.userName``). The first four are what Datadog's CloudTrail pipeline
  produces (checked against ``cloudtrail-stratus``); ``usr.*`` is ours, Datadog leaves the identity
  in ``userIdentity``.
- Okta System Log (``eventType`` and an ``actor`` object): ``source`` ``okta``, ``evt.name`` <-
  ``eventType``, ``evt.outcome`` <- ``outcome.result`` (as written: ``SUCCESS``, ``FAILURE``, ...),
  ``usr.email``/``usr.name``/``usr.id`` <- ``actor.alternateId``/``displayName``/``id``,
  ``network.client.ip`` <- ``client.ipAddress``, ``http.useragent`` <- the raw user agent,
  ``network.client.geoip`` (country, subdivision and city names, location) <- Okta's
  ``client.geographicalContext``, ``message`` <- ``displayMessage``: what Datadog's Okta pipeline
  gives its rules (``source:okta @evt.name:user.session.start @evt.outcome:FAILURE``).
- Kubernetes audit (``kind: Event``, ``apiVersion: audit.k8s.io/*``): ``source``
  ``kubernetes.audit``, ``usr.name`` <- ``user.username``, ``network.client.ip`` <-
  ``sourceIPs[0]``, ``evt.name`` <- ``verb``, ``http.useragent`` <- ``userAgent``,
  ``http.status_code`` <- ``responseStatus.code``, ``evt.outcome`` from that code (< 400 success),
  ``timestamp`` <- ``requestReceivedTimestamp`` (else ``stageTimestamp``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

from secmon.ingest.base import SYSLOG_SEVERITIES
from secmon.ingest.messages import is_ip
from secmon.ingest.paths import set_default
from secmon.ingest.timestamps import TimestampError, is_plausible_ms, parse_any

Event = dict[str, Any]

RESERVED_DATE_ATTRIBUTES: tuple[str, ...] = (
    "@timestamp",
    "timestamp",
    "_timestamp",
    "Timestamp",
    "eventTime",
    "date",
    "published_date",
    "syslog.timestamp",
)
# Not Datadog's reserved date attributes but the dates other sources' pipelines remap (Datadog's
# Okta, Azure and Windows integrations among them). Read only when a record has none of the
# reserved ones, and only a value that reads as a date from 1990 to 2100 (a "time" holding a
# duration is skipped): a record with none is still rejected, not dated "now".
FALLBACK_DATE_ATTRIBUTES: tuple[str, ...] = (
    "published",  # Okta System Log
    "time",  # Azure activity and resource logs
    "TimeCreated",  # Windows event logs (EVTX as JSON, Sysmon)
    "UtcTime",  # Sysmon's own
    "EventTime",  # NXLog
    "ts",  # Zeek, zap
    "@t",  # Serilog's compact JSON
    "datetime",
    # SaaS audit logs and security products, as their APIs export them:
    "created_at",  # GitHub audit log, Asana, Zendesk, Tines, Anthropic, ...
    "createdAt",  # Wiz, GuardDuty findings
    "CreatedAt",  # AWS Security Hub (ASFF)
    "createdDateTime",  # Microsoft Graph (Entra ID sign-ins and audits, security alerts)
    "CreationTime",  # Microsoft 365 management activity API
    "created",  # Snyk, MongoDB Atlas
    "id.time",  # Google Workspace Admin SDK activities
    "date_create",  # Slack audit logs (epoch seconds)
    "data.date",  # Auth0
    "metadata.eventCreationTime",  # CrowdStrike event streams (epoch milliseconds)
    "event.timestamp",  # Notion
    "event.time",  # Zscaler ZIA
    "messageTime",  # Proofpoint TAP
    "effective_at",  # OpenAI audit logs
    "unixTime",  # osquery results
    "EVENT_TIMESTAMP",  # Snowflake login history
    "TIMESTAMP_DERIVED",  # Salesforce event log files
    "generatedDateTime",  # DocuSign Connect
    "Datetime",  # Cloudflare firewall events
    "EdgeStartTimestamp",  # Cloudflare HTTP requests
    "query_timestamp",  # Route 53 Resolver query logs
    "occurred_at",
    "occurredAt",
    "p_event_time",  # Panther's normalized event time, in records exported from it
)
_MESSAGE_ATTRIBUTES = ("message", "msg", "log")
_STATUS_ATTRIBUTES = ("status", "severity", "level", "syslog.severity")
_HOST_ATTRIBUTES = ("host", "hostname", "syslog.hostname")
_SERVICE_ATTRIBUTES = ("service", "syslog.appname", "dd.service")

# Datadog's status remapper: syslog severity numbers and the usual words, by prefix.
_STATUS_WORDS: dict[str, str] = {
    "emerg": "emergency", "emergency": "emergency", "f": "emergency", "fatal": "emergency",
    "a": "alert", "alert": "alert",
    "c": "critical", "crit": "critical", "critical": "critical",
    "e": "error", "err": "error", "error": "error",
    "w": "warning", "warn": "warning", "warning": "warning",
    "n": "notice", "notice": "notice",
    "i": "info", "info": "info", "information": "info", "informational": "info",
    "d": "debug", "debug": "debug", "trace": "debug", "verbose": "debug",
    "o": "ok", "ok": "ok", "s": "ok", "success": "ok",
}


class MissingTimestamp(ValueError):
    """No date attribute at all (counted as ``missing_timestamp``)."""


def lookup(record: Event, path: str) -> Any:
    """Value at a dotted path: nested first, then a literal dotted key; None when absent."""
    if "." not in path:
        return record.get(path)
    node: Any = record
    for part in path.split("."):
        if not isinstance(node, dict):
            node = None
            break
        node = node.get(part)
        if node is None:
            break
    if node is None:
        return record.get(path)
    return node


def _first(record: Event, names: tuple[str, ...]) -> Any:
    for name in names:
        value = lookup(record, name)
        if value is not None:
            return value
    return None


def normalize_status(value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 7:
        return SYSLOG_SEVERITIES[value]
    text = str(value).strip().lower()
    if text.isdigit() and int(text) <= 7:
        return SYSLOG_SEVERITIES[int(text)]
    return _STATUS_WORDS.get(text) or _STATUS_WORDS.get(text[:1], text) if text else "info"


def _timestamp(record: Event, names: tuple[str, ...]) -> int:
    """The first of ``names`` that holds a readable date. An attribute that is there but is not a
    date (``"date": "Monday"``) is skipped for the next one; only when none reads is the record
    rejected, naming the first unreadable value."""
    first_error: TimestampError | None = None
    for name in names:
        value = lookup(record, name)
        if value is None:
            continue
        try:
            return parse_any(value)
        except TimestampError as exc:
            if first_error is None:
                first_error = TimestampError(f"{name}: {exc}")
    if first_error is not None:
        raise first_error
    raise MissingTimestamp("no date attribute (" + ", ".join(names) + ")")


def normalize_cloudtrail(record: Event) -> Event:
    record["timestamp"] = parse_any(record["eventTime"])
    record.setdefault("source", "cloudtrail")
    record.setdefault("service", "cloudtrail")
    set_default(record, ("evt", "name"), record["eventName"])
    set_default(record, ("evt", "outcome"), "failure" if record.get("errorCode") else "success")
    ip = record.get("sourceIPAddress")
    if isinstance(ip, str) and is_ip(ip):
        set_default(record, ("network", "client", "ip"), ip)
    agent = record.get("userAgent")
    if agent is not None:
        set_default(record, ("http", "useragent"), agent)
    identity = record.get("userIdentity")
    if isinstance(identity, dict):
        arn = identity.get("arn")
        if arn is not None:
            set_default(record, ("usr", "id"), arn)
        name = identity.get("userName")
        if name is None:
            # Only objects are looked into (a string sessionContext raised AttributeError).
            context = identity.get("sessionContext")
            issuer = context.get("sessionIssuer") if isinstance(context, dict) else None
            name = issuer.get("userName") if isinstance(issuer, dict) else None
        if name is not None:
            set_default(record, ("usr", "name"), name)
    return record


def normalize_k8s_audit(record: Event) -> Event:
    record["timestamp"] = _timestamp(record, ("requestReceivedTimestamp", "stageTimestamp", "timestamp"))
    record.setdefault("source", "kubernetes.audit")
    user = record.get("user")
    if isinstance(user, dict) and user.get("username") is not None:
        set_default(record, ("usr", "name"), user["username"])
    ips = record.get("sourceIPs")
    if isinstance(ips, list) and ips:
        set_default(record, ("network", "client", "ip"), ips[0])
    if record.get("verb") is not None:
        set_default(record, ("evt", "name"), record["verb"])
    if record.get("userAgent") is not None:
        set_default(record, ("http", "useragent"), record["userAgent"])
    response = record.get("responseStatus")
    if isinstance(response, dict) and isinstance(response.get("code"), int):
        code = response["code"]
        set_default(record, ("http", "status_code"), code)
        set_default(record, ("evt", "outcome"), "success" if code < 400 else "failure")
    return record


# Okta System Log -> Datadog's standard attributes, as Datadog's Okta pipeline maps them (its
# rules read ``@evt.name``, ``@evt.outcome:FAILURE``, ``@usr.email``): (raw path, target path).
_OKTA_COPIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("eventType", ("evt", "name")),
    ("outcome.result", ("evt", "outcome")),
    ("actor.alternateId", ("usr", "email")),
    ("actor.displayName", ("usr", "name")),
    ("actor.id", ("usr", "id")),
    ("client.ipAddress", ("network", "client", "ip")),
    ("client.userAgent.rawUserAgent", ("http", "useragent")),
    ("client.geographicalContext.country", ("network", "client", "geoip", "country", "name")),
    ("client.geographicalContext.state", ("network", "client", "geoip", "subdivision", "name")),
    ("client.geographicalContext.city", ("network", "client", "geoip", "city", "name")),
    ("client.geographicalContext.geolocation.lat", ("network", "client", "geoip", "location", "latitude")),
    ("client.geographicalContext.geolocation.lon", ("network", "client", "geoip", "location", "longitude")),
    ("displayMessage", ("message",)),
)


def _any_case(record: Event) -> Callable[[str], Any]:
    """``lookup`` in ``record`` that also finds a top-level name written in another letter case:
    data lakes that lower-case column names store Okta's ``eventType`` as ``eventtype`` and
    Microsoft 365's ``CreationTime`` as ``creationtime`` (nested names keep their case there).
    The record's keys are lower-cased once, on the first name not found as written."""
    lowered: dict[str, str] | None = None

    def find(path: str) -> Any:
        nonlocal lowered
        value = lookup(record, path)
        if value is not None or "." in path:
            return value
        if lowered is None:
            lowered = {key.lower(): key for key in record if isinstance(key, str)}
        key = lowered.get(path.lower())
        return None if key is None else record[key]

    return find


def is_okta(record: Event) -> bool:
    """An Okta System Log event (``/api/v1/logs``, event hooks, log streams)."""
    event_type = record.get("eventType", record.get("eventtype"))
    return isinstance(event_type, str) and isinstance(record.get("actor"), dict)


def _copy_fields(record: Event, copies: tuple[tuple[str, tuple[str, ...]], ...], find: Callable[[str], Any]) -> None:
    """Copy each raw field ``find`` finds onto its standard attribute, scalars only (a boolean, an
    object or a list is no name, address or code), never over a value already there."""
    for raw, target in copies:
        value = find(raw)
        if value is not None and not isinstance(value, (dict, list, bool)):
            set_default(record, target, value)


# Zeek's fields (its JSON logs, and its TSV logs read by ``secmon.ingest.zeek``) -> Datadog's
# attributes, as Datadog's Zeek pipeline maps them; the raw fields stay (``@id.orig_h`` works).
_ZEEK_COPIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("id.orig_h", ("network", "client", "ip")),
    ("id.orig_p", ("network", "client", "port")),
    ("id.resp_h", ("network", "destination", "ip")),
    ("id.resp_p", ("network", "destination", "port")),
    ("method", ("http", "method")),
    ("uri", ("http", "url")),
    ("status_code", ("http", "status_code")),
    ("user_agent", ("http", "useragent")),
    ("referrer", ("http", "referer")),
    ("query", ("dns", "question", "name")),
)


# GitHub's audit log (the REST API, audit log streaming) -> Datadog's attributes: the action is
# the event's name, the actor the user, as Datadog's pipelines map an integration's own fields.
_GITHUB_COPIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("action", ("evt", "name")),
    ("actor", ("usr", "name")),
    ("actor_ip", ("network", "client", "ip")),
    ("user_agent", ("http", "useragent")),
)


def is_github_audit(record: Event) -> bool:
    """An entry of GitHub's audit log: its ``action`` and its ``_document_id``.

    The native normalizer declines every record with both keys (a superset)."""
    return isinstance(record.get("action"), str) and isinstance(record.get("_document_id"), str)


def is_zeek(record: Event) -> bool:
    """A Zeek log record that has a connection (conn, dns, http, ssl, ssh, notice, ... logs).

    The native normalizer declines every record with a ``uid`` and an ``id.orig_h`` (a superset),
    so both paths give the same event."""
    return isinstance(record.get("uid"), str) and "ts" in record and isinstance(lookup(record, "id.orig_h"), str)


@dataclass(frozen=True)
class Integration:
    """A source told by its records' own fields, whose fields are copied onto Datadog's
    attributes after the generic normalization (which dates the record), the raw fields staying
    addressable (``@outcome.result``, ``@id.orig_h``)."""

    source: str
    recognizes: Callable[[Event], bool]
    copies: tuple[tuple[str, tuple[str, ...]], ...]
    marker: str  # a key every raw line of such a record holds: the prefilter's promise for its source
    any_case: bool = False  # also find a top-level name written in another letter case

    def normalize(self, record: Event) -> Event:
        normalize_generic(record)
        record.setdefault("source", self.source)
        _copy_fields(record, self.copies, _any_case(record) if self.any_case else partial(lookup, record))
        return record


OKTA = Integration("okta", is_okta, _OKTA_COPIES, "eventType", any_case=True)
ZEEK = Integration("zeek", is_zeek, _ZEEK_COPIES, "orig_h")
GITHUB_AUDIT = Integration("github", is_github_audit, _GITHUB_COPIES, "_document_id")
INTEGRATIONS = (OKTA, ZEEK, GITHUB_AUDIT)

# source -> text every raw JSON line whose record normalization names that source holds (beside
# the name itself, which a record may carry as its own ``source``).
SOURCE_MARKERS: dict[str, tuple[str, ...]] = {
    "cloudtrail": ("eventSource",),
    "kubernetes.audit": ("audit.k8s.io",),
    **{integration.source: (integration.marker,) for integration in INTEGRATIONS},
}


def _fallback_timestamp(record: Event) -> int:
    find = _any_case(record)
    for name in FALLBACK_DATE_ATTRIBUTES:
        value = find(name)
        if value is None or isinstance(value, bool):
            continue
        try:
            ms = parse_any(value)
        except (TimestampError, ValueError, TypeError, OverflowError):
            continue  # not a date: a fallback name may hold anything
        if is_plausible_ms(ms):
            return ms
    raise MissingTimestamp(
        f"no date attribute (none of Datadog's {len(RESERVED_DATE_ATTRIBUTES)}, e.g. timestamp, @timestamp, date; nor of"
        f" {len(FALLBACK_DATE_ATTRIBUTES)} date fields of known sources, e.g. published, time, created_at)"
    )


def normalize_generic(record: Event) -> Event:
    try:
        record["timestamp"] = _timestamp(record, RESERVED_DATE_ATTRIBUTES)
    except MissingTimestamp:
        record["timestamp"] = _fallback_timestamp(record)
    if "message" not in record:
        message = _first(record, _MESSAGE_ATTRIBUTES)
        if message is not None:
            record["message"] = message
    status = _first(record, _STATUS_ATTRIBUTES)
    if status is not None:
        record["status"] = normalize_status(status)
    if "host" not in record:
        host = _first(record, _HOST_ATTRIBUTES)
        if host is not None:
            record["host"] = host
    if "service" not in record:
        service = _first(record, _SERVICE_ATTRIBUTES)
        if service is not None:
            record["service"] = service
    if "ddsource" in record and "source" not in record:
        record["source"] = record["ddsource"]
    tags = record.get("ddtags")
    if isinstance(tags, str) and "tags" not in record:
        record["tags"] = [t.strip() for t in tags.split(",") if t.strip()]
    return record


def _is_cloudtrail(record: Event) -> bool:
    return "eventSource" in record and "eventName" in record and "eventTime" in record


def normalize_record(record: Event) -> Event:
    """Turn one JSON object into an event (raises MissingTimestamp/TimestampError): the record
    itself, changed in place; for a CloudTrail event EventBridge delivered, the event inside."""
    if _is_cloudtrail(record):
        return normalize_cloudtrail(record)
    detail = record.get("detail")
    if type(detail) is dict and str(record.get("detail-type", "")).endswith("via CloudTrail") and _is_cloudtrail(detail):
        return normalize_cloudtrail(detail)
    if record.get("kind") == "Event" and str(record.get("apiVersion", "")).startswith("audit.k8s.io"):
        return normalize_k8s_audit(record)
    for integration in INTEGRATIONS:
        if integration.recognizes(record):
            return integration.normalize(record)
    return normalize_generic(record)


def unwrap_document(document: Any) -> list[Any]:
    """Records of a JSON document: ``{"Records": [...]}`` (CloudTrail), ``{"items": [...]}``
    (Kubernetes ``EventList``), a top-level array, or a single object."""
    if isinstance(document, list):
        return document
    if isinstance(document, dict):
        records = document.get("Records")
        if isinstance(records, list):
            return records
        items = document.get("items")
        if isinstance(items, list) and str(document.get("kind", "")).endswith("List"):
            return items
    return [document]


__all__ = [
    "FALLBACK_DATE_ATTRIBUTES",
    "MissingTimestamp",
    "RESERVED_DATE_ATTRIBUTES",
    "TimestampError",
    "lookup",
    "normalize_record",
    "normalize_status",
    "unwrap_document",
]
