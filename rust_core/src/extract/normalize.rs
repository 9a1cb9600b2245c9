//! Ingest's record normalization (`secmon/ingest/json_events.py`, `normalize_record`) on the
//! extractor's slots: CloudTrail records, Kubernetes audit events and generic records get their
//! timestamp and standard attributes (`evt.name`, `network.client.ip`, `usr.name`, `status`, ...)
//! without a Python object per line.
//!
//! Why here and not as Polars expressions over extra raw columns: the rules hinge on JSON types
//! (`isinstance(code, int)`, a scalar in the way of `evt`, a key present with `null`), which text
//! columns have lost, while the walk already holds every value's kind and span; one more pass
//! over a dozen slots per line costs little next to the parse itself.
//!
//! The contract is exactness, not coverage: [`Plan::derive`] either produces the event-table row
//! that `to_frame([normalize_record(orjson.loads(line))])` produces, or says no and the line goes
//! to the Python twin. It says no, conservatively, for: timestamps outside the ISO-8601/epoch
//! forms below, non-ASCII text where Python's Unicode rules (`\d`, `strip`, `lower`) would
//! differ, a scalar or array in the way of a nested target, lists and objects where a scalar is
//! copied, `sourceIPAddress` that might be IPv6, record lists (`Records`, `items`), EventBridge
//! envelopes (`detail-type`).

use std::borrow::Cow;

use super::{int_value, float_value, push_span_text, push_unescaped, ColumnBuilder, Kind, Mode, Slots, Span};

/// The raw attributes normalization reads (walked as hidden paths); `R` names their positions.
pub(super) const RAW_PATHS: &[&str] = &[
    "@timestamp", "timestamp", "_timestamp", "Timestamp", "eventTime", "date", "published_date", "syslog.timestamp",
    "message", "msg", "log",
    "status", "severity", "level", "syslog.severity",
    "host", "hostname", "syslog.hostname",
    "service", "syslog.appname", "dd.service",
    "source", "ddsource", "tags", "ddtags",
    "eventSource", "eventName", "errorCode", "sourceIPAddress", "userAgent",
    "userIdentity", "userIdentity.arn", "userIdentity.userName", "userIdentity.sessionContext",
    "userIdentity.sessionContext.sessionIssuer", "userIdentity.sessionContext.sessionIssuer.userName",
    "kind", "apiVersion", "requestReceivedTimestamp", "stageTimestamp", "user", "user.username", "sourceIPs", "verb",
    "responseStatus", "responseStatus.code",
    "evt", "evt.name", "evt.outcome", "network", "network.client", "network.client.ip",
    "http", "http.useragent", "http.status_code", "usr", "usr.id", "usr.name",
    "Records", "items", "detail-type", "eventType", "eventtype", "actor", "uid", "id.orig_h", "action", "_document_id",
];

/// Positions in [`RAW_PATHS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(usize)]
enum R {
    AtTimestamp, Timestamp, UTimestamp, CapTimestamp, EventTime, Date, PublishedDate, SyslogTimestamp,
    Message, Msg, Log,
    Status, Severity, Level, SyslogSeverity,
    Host, Hostname, SyslogHostname,
    Service, SyslogAppname, DdService,
    Source, Ddsource, Tags, Ddtags,
    EventSource, EventName, ErrorCode, SourceIpAddress, UserAgent,
    UserIdentity, IdentityArn, IdentityUserName, SessionContext, SessionIssuer, IssuerUserName,
    Kind, ApiVersion, RequestReceived, StageTimestamp, User, UserUsername, SourceIps, Verb,
    ResponseStatus, ResponseCode,
    Evt, EvtName, EvtOutcome, Network, NetworkClient, ClientIp,
    Http, HttpUseragent, HttpStatusCode, Usr, UsrId, UsrName,
    Records, Items, DetailType, EventType, LowerEventType, Actor, Uid, IdOrigH, Action, DocumentId,
}

const N_RAW: usize = R::DocumentId as usize + 1;
const _: () = assert!(N_RAW == RAW_PATHS.len());

// Ingest's attribute lists, in its order (`json_events.py`).
const GENERIC_DATES: &[R] = &[
    R::AtTimestamp, R::Timestamp, R::UTimestamp, R::CapTimestamp, R::EventTime, R::Date, R::PublishedDate,
    R::SyslogTimestamp,
];
const K8S_DATES: &[R] = &[R::RequestReceived, R::StageTimestamp, R::Timestamp];
const MESSAGE_ALIASES: &[R] = &[R::Msg, R::Log];
const STATUS_ATTRIBUTES: &[R] = &[R::Status, R::Severity, R::Level, R::SyslogSeverity];
const HOST_ALIASES: &[R] = &[R::Hostname, R::SyslogHostname];
const SERVICE_ALIASES: &[R] = &[R::SyslogAppname, R::DdService];

/// Targets normalization may fill and the objects `_set_nested` walks (or creates) above them.
const NESTED_TARGETS: &[(R, &[R])] = &[
    (R::EvtName, &[R::Evt]),
    (R::EvtOutcome, &[R::Evt]),
    (R::ClientIp, &[R::Network, R::NetworkClient]),
    (R::HttpUseragent, &[R::Http]),
    (R::HttpStatusCode, &[R::Http]),
    (R::UsrId, &[R::Usr]),
    (R::UsrName, &[R::Usr]),
];
/// The components of each nested target (in `NESTED_TARGETS` order).
const TARGET_COMPONENTS: &[&[&str]] = &[
    &["evt", "name"],
    &["evt", "outcome"],
    &["network", "client", "ip"],
    &["http", "useragent"],
    &["http", "status_code"],
    &["usr", "id"],
    &["usr", "name"],
];

fn target_index(target: R) -> usize {
    NESTED_TARGETS.iter().position(|(t, _)| *t == target).expect("a nested target")
}

const TOP_TARGETS: &[R] = &[R::Timestamp, R::Message, R::Status, R::Host, R::Service, R::Source, R::Tags];

const SYSLOG_SEVERITIES: [&[u8]; 8] =
    [b"emergency", b"alert", b"critical", b"error", b"warning", b"notice", b"info", b"debug"];

/// Ingest's `_STATUS_WORDS` (Datadog's status remapper words).
fn status_word(text: &[u8]) -> Option<&'static [u8]> {
    Some(match text {
        b"emerg" | b"emergency" | b"f" | b"fatal" => b"emergency",
        b"a" | b"alert" => b"alert",
        b"c" | b"crit" | b"critical" => b"critical",
        b"e" | b"err" | b"error" => b"error",
        b"w" | b"warn" | b"warning" => b"warning",
        b"n" | b"notice" => b"notice",
        b"i" | b"info" | b"information" | b"informational" => b"info",
        b"d" | b"debug" | b"trace" | b"verbose" => b"debug",
        b"o" | b"ok" | b"s" | b"success" => b"ok",
        _ => return None,
    })
}

/// Which slots and columns normalization uses, fixed per set of paths.
#[derive(Debug, Clone)]
pub(super) struct Plan {
    /// The slot of every raw attribute.
    slot: [u32; N_RAW],
    /// The column of every raw attribute that is also a requested column.
    column: [Option<u32>; N_RAW],
    /// Targets whose filling would change some other requested column: a requested column is
    /// an object above the target (`evt` holds `evt.name`) or a path below it (`tags.x` walks
    /// the list ingest makes). Rows where such a target is filled go to Python.
    blocked: [bool; N_RAW],
}

/// Why a row goes to the Python twin (the reason is not reported; the twin decides).
struct NeedsPython;

type Step<T> = std::result::Result<T, NeedsPython>;

/// What a path holds on the current line, as ingest's dict lookups see it.
#[derive(Clone, Copy, Debug)]
enum Val {
    /// The key is absent.
    Missing,
    /// The key is there with JSON null.
    Null,
    One(Span),
    /// An array is on the way or at the end (ingest sees a list, not a scalar).
    List,
}

impl Plan {
    pub(super) fn new(names: &[String], columns: usize) -> Plan {
        let mut slot = [0u32; N_RAW];
        let mut column = [None; N_RAW];
        for (r, raw) in RAW_PATHS.iter().enumerate() {
            let at = names.iter().position(|n| n == raw).expect("every raw path is walked");
            slot[r] = at as u32;
            if at < columns {
                column[r] = Some(at as u32);
            }
        }
        let requested = &names[..columns];
        let mut blocked = [false; N_RAW];
        let targets = TOP_TARGETS.iter().copied().chain(NESTED_TARGETS.iter().map(|(t, _)| *t));
        for target in targets {
            let t = RAW_PATHS[target as usize];
            blocked[target as usize] = requested.iter().any(|c| {
                (t.len() > c.len() && t.starts_with(c.as_str()) && t.as_bytes()[c.len()] == b'.')
                    || (c.len() > t.len() && c.starts_with(t) && c.as_bytes()[t.len()] == b'.')
            });
        }
        Plan { slot, column, blocked }
    }

    /// The normalized values of one line that parsed as an object (values in `slots`) into
    /// `out`; false when only the Python twin can say.
    pub(super) fn derive(&self, line: &[u8], slots: &Slots, out: &mut Derived) -> bool {
        out.clear();
        let row = Row { plan: self, line, slots };
        row.derive(out).is_ok()
    }
}

/// One line's slots seen through the plan.
struct Row<'a> {
    plan: &'a Plan,
    line: &'a [u8],
    slots: &'a Slots,
}

impl Row<'_> {
    /// The value at a path by the nested walk only (`record.get(k)`, `node.get(k)` chains).
    fn get(&self, r: R) -> Val {
        let s = self.plan.slot[r as usize] as usize;
        match self.slots.mode[s] {
            Mode::One => Val::One(self.slots.one[s]),
            Mode::Many => Val::List,
            Mode::Missing if self.slots.null[s] => Val::Null,
            Mode::Missing => Val::Missing,
        }
    }

    /// Ingest's `lookup`: nested through dicts first, then the literal dotted key; None when
    /// both are missing or null. Lists on the way give up (ingest stops at them; the walk does
    /// not).
    fn lookup(&self, r: R) -> Step<Option<Span>> {
        match self.get(r) {
            Val::One(span) => return Ok(Some(span)),
            Val::List => return Err(NeedsPython),
            Val::Missing | Val::Null => {}
        }
        if !RAW_PATHS[r as usize].contains('.') {
            return Ok(None);
        }
        let literal = self.plan.slot[r as usize] as usize + self.slots.mode.len() / 2;
        match self.slots.mode[literal] {
            Mode::One => Ok(Some(self.slots.one[literal])),
            Mode::Many => Err(NeedsPython),
            Mode::Missing => Ok(None),
        }
    }

    /// Ingest's `_first`: the first of `names` that is not None.
    fn first(&self, names: &[R]) -> Step<Option<Span>> {
        for &r in names {
            if let Some(span) = self.lookup(r)? {
                return Ok(Some(span));
            }
        }
        Ok(None)
    }

    /// `key in record`.
    fn present(&self, r: R) -> bool {
        !matches!(self.get(r), Val::Missing)
    }

    /// A value copied into the event as it is: scalars only (a copied object or list would be
    /// written by the twin's rules, which the extractor follows too, but such records are rare).
    fn scalar(&self, span: Span) -> Step<Span> {
        match span.kind {
            Kind::Object | Kind::Array | Kind::Null => Err(NeedsPython),
            _ => Ok(span),
        }
    }

    /// A string's text with escapes resolved; None for other kinds.
    fn text(&self, span: Span) -> Option<Cow<'_, [u8]>> {
        match span.kind {
            Kind::Str { escaped } => {
                let body = &self.line[span.start as usize..span.end as usize];
                if escaped {
                    let mut out = Vec::with_capacity(body.len());
                    push_unescaped(body, &mut out);
                    Some(Cow::Owned(out))
                } else {
                    Some(Cow::Borrowed(body))
                }
            }
            _ => None,
        }
    }

    fn derive(&self, out: &mut Derived) -> Step<()> {
        if self.present(R::Records) || self.present(R::Items) {
            return Err(NeedsPython); // ingest unwraps record lists (json_format.py)
        }
        if self.present(R::DetailType) {
            return Err(NeedsPython); // ingest unwraps CloudTrail events delivered by EventBridge
        }
        if (self.present(R::EventType) || self.present(R::LowerEventType)) && self.present(R::Actor) {
            return Err(NeedsPython); // ingest maps Okta System Log events (`is_okta`)
        }
        if self.present(R::Uid) && self.lookup(R::IdOrigH)?.is_some() {
            return Err(NeedsPython); // ingest maps Zeek's records (`is_zeek`)
        }
        if self.present(R::Action) && self.present(R::DocumentId) {
            return Err(NeedsPython); // ingest maps GitHub's audit log (`is_github_audit`)
        }
        // `timestamp` is overwritten: anything below it that a column reads would change.
        if matches!(self.get(R::Timestamp), Val::List) || matches!(self.get(R::Timestamp), Val::One(s) if s.kind == Kind::Object) {
            return Err(NeedsPython);
        }
        if self.present(R::EventSource) && self.present(R::EventName) && self.present(R::EventTime) {
            self.cloudtrail(out)
        } else if self.is_k8s_audit() {
            self.k8s_audit(out)
        } else {
            self.generic(out)
        }
    }

    /// `record.get("kind") == "Event" and str(record.get("apiVersion", "")).startswith("audit.k8s.io")`
    /// (only a string's `str` can start with a letter).
    fn is_k8s_audit(&self) -> bool {
        let is_event = matches!(self.get(R::Kind), Val::One(s) if self.text(s).is_some_and(|t| *t == *b"Event"));
        is_event && matches!(self.get(R::ApiVersion), Val::One(s) if self.text(s).is_some_and(|t| t.starts_with(b"audit.k8s.io")))
    }

    fn set_top(&self, out: &mut Derived, target: R, value: Value) -> Step<()> {
        if self.plan.blocked[target as usize] {
            return Err(NeedsPython);
        }
        if out.patching {
            out.patches.push(Patch { into: None, path: &RAW_PATHS[target as usize..=target as usize], leaf: 0, value: value.clone() });
        }
        if let Some(col) = self.plan.column[target as usize] {
            out.set(col, value);
        }
        Ok(())
    }

    /// `record.setdefault(key, value)` for a top-level key.
    fn set_default(&self, out: &mut Derived, target: R, value: Value) -> Step<()> {
        if self.present(target) {
            return Ok(());
        }
        self.set_top(out, target, value)
    }

    /// Ingest's `_set_nested`: objects above the target are walked (missing or null ones made);
    /// a value already there, even null, stays. A scalar or list in the way leaves the record as
    /// it is in ingest; here it gives up (rare, and conservative).
    fn set_nested(&self, out: &mut Derived, target: R, value: Value) -> Step<()> {
        let (_, above) = NESTED_TARGETS.iter().find(|(t, _)| *t == target).expect("a nested target");
        for &node in above.iter() {
            match self.get(node) {
                Val::Missing | Val::Null => {}
                Val::One(span) if span.kind == Kind::Object => {}
                _ => return Err(NeedsPython),
            }
        }
        if self.present(target) {
            return Ok(()); // the objects above are dicts and setdefault keeps the value
        }
        if self.plan.blocked[target as usize] {
            return Err(NeedsPython);
        }
        if out.patching {
            // Into the deepest object that is there; the missing (or null) ones are made.
            let made = above.iter().position(|&node| !matches!(self.get(node), Val::One(_))).unwrap_or(above.len());
            let into = match made {
                0 => None,
                k => match self.get(above[k - 1]) {
                    Val::One(span) => Some(span),
                    _ => unreachable!("objects above `made` are there"),
                },
            };
            out.patches.push(Patch { into, path: TARGET_COMPONENTS[target_index(target)], leaf: made, value: value.clone() });
        }
        // Filled nested, the target now hides a literal dotted key of the same name (the event
        // table looks nested first): the derived value replaces what the walk found.
        if let Some(col) = self.plan.column[target as usize] {
            out.set(col, value);
        }
        Ok(())
    }

    fn timestamp(&self, out: &mut Derived, span: Option<Span>) -> Step<()> {
        let span = span.ok_or(NeedsPython)?;
        let ms = self.parse_timestamp(span).ok_or(NeedsPython)?;
        self.set_top(out, R::Timestamp, Value::Int(ms))
    }

    /// `parse_any` on a JSON value; None where Python might answer differently or raise.
    fn parse_timestamp(&self, span: Span) -> Option<i64> {
        let token = &self.line[span.start as usize..span.end as usize];
        match span.kind {
            Kind::Num => {
                if token.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
                    epoch_float_ms(float_value(token))
                } else {
                    epoch_int_ms(int_value(token)?)
                }
            }
            Kind::Str { .. } => parse_timestamp_text(&self.text(span)?),
            _ => None,
        }
    }

    /// `_timestamp`: the first date attribute that is not None must read as a date here (one
    /// that does not would make ingest try the next, or reject the record: the twin decides).
    fn first_date(&self, names: &[R]) -> Step<Option<Span>> {
        self.first(names)
    }

    fn cloudtrail(&self, out: &mut Derived) -> Step<()> {
        match self.get(R::EventTime) {
            Val::One(span) => self.timestamp(out, Some(span))?,
            _ => return Err(NeedsPython),
        }
        self.set_default(out, R::Source, Value::Static(b"cloudtrail"))?;
        self.set_default(out, R::Service, Value::Static(b"cloudtrail"))?;
        match self.get(R::EventName) {
            Val::One(span) => self.set_nested(out, R::EvtName, Value::Span(self.scalar(span)?))?,
            _ => return Err(NeedsPython),
        }
        // "failure" if record.get("errorCode") else "success": truthiness of strings and
        // booleans only.
        let failed = match self.get(R::ErrorCode) {
            Val::Missing | Val::Null => false,
            Val::One(span) => match span.kind {
                Kind::Str { .. } => span.end > span.start,
                Kind::True => true,
                Kind::False => false,
                _ => return Err(NeedsPython),
            },
            Val::List => return Err(NeedsPython),
        };
        let outcome: &'static [u8] = if failed { b"failure" } else { b"success" };
        self.set_nested(out, R::EvtOutcome, Value::Static(outcome))?;
        if let Val::One(span) = self.get(R::SourceIpAddress) {
            if let Some(text) = self.text(span) {
                if text.contains(&b':') || !text.is_ascii() {
                    return Err(NeedsPython); // maybe IPv6 (Python's ipaddress rules), maybe Unicode digits
                }
                if is_ipv4(&text) {
                    self.set_nested(out, R::ClientIp, Value::Span(span))?;
                }
            }
        }
        match self.get(R::UserAgent) {
            Val::One(span) => self.set_nested(out, R::HttpUseragent, Value::Span(self.scalar(span)?))?,
            Val::List => return Err(NeedsPython),
            Val::Missing | Val::Null => {}
        }
        if matches!(self.get(R::UserIdentity), Val::One(s) if s.kind == Kind::Object) {
            match self.get(R::IdentityArn) {
                Val::One(span) => self.set_nested(out, R::UsrId, Value::Span(self.scalar(span)?))?,
                Val::List => return Err(NeedsPython),
                Val::Missing | Val::Null => {}
            }
            let name = match self.get(R::IdentityUserName) {
                Val::One(span) => Some(span),
                Val::List => return Err(NeedsPython),
                // Assumed roles: the role's name, when the context and issuer are objects.
                Val::Missing | Val::Null => {
                    let context = matches!(self.get(R::SessionContext), Val::One(s) if s.kind == Kind::Object);
                    let issuer = matches!(self.get(R::SessionIssuer), Val::One(s) if s.kind == Kind::Object);
                    match self.get(R::IssuerUserName) {
                        Val::One(span) if context && issuer => Some(span),
                        Val::List if context && issuer => return Err(NeedsPython),
                        _ => None,
                    }
                }
            };
            if let Some(span) = name {
                self.set_nested(out, R::UsrName, Value::Span(self.scalar(span)?))?;
            }
        }
        Ok(())
    }

    fn k8s_audit(&self, out: &mut Derived) -> Step<()> {
        // `_timestamp` over the three names: record.get only (no dotted names among them).
        let first = self.first_date(K8S_DATES)?;
        self.timestamp(out, first)?;
        self.set_default(out, R::Source, Value::Static(b"kubernetes.audit"))?;
        if matches!(self.get(R::User), Val::One(s) if s.kind == Kind::Object) {
            match self.get(R::UserUsername) {
                Val::One(span) => self.set_nested(out, R::UsrName, Value::Span(self.scalar(span)?))?,
                Val::List => return Err(NeedsPython),
                Val::Missing | Val::Null => {}
            }
        }
        if let Val::List = self.get(R::SourceIps) {
            let s = self.plan.slot[R::SourceIps as usize] as usize;
            if self.slots.null[s] {
                return Err(NeedsPython); // a null element: is it the first? (the walk drops nulls)
            }
            if let Some(&first) = self.slots.many[s].first() {
                self.set_nested(out, R::ClientIp, Value::Span(self.scalar(first)?))?;
            }
        }
        match self.get(R::Verb) {
            Val::One(span) => self.set_nested(out, R::EvtName, Value::Span(self.scalar(span)?))?,
            Val::List => return Err(NeedsPython),
            Val::Missing | Val::Null => {}
        }
        match self.get(R::UserAgent) {
            Val::One(span) => self.set_nested(out, R::HttpUseragent, Value::Span(self.scalar(span)?))?,
            Val::List => return Err(NeedsPython),
            Val::Missing | Val::Null => {}
        }
        if matches!(self.get(R::ResponseStatus), Val::One(s) if s.kind == Kind::Object) {
            if let Val::One(span) = self.get(R::ResponseCode) {
                match span.kind {
                    Kind::Num => {
                        let token = &self.line[span.start as usize..span.end as usize];
                        let is_int = !token.iter().any(|b| matches!(b, b'.' | b'e' | b'E'));
                        // Integers past 18 digits may be floats to orjson: left to the twin.
                        if is_int && token.len() > 18 {
                            return Err(NeedsPython);
                        }
                        if is_int {
                            let code = int_value(token).ok_or(NeedsPython)?;
                            self.set_nested(out, R::HttpStatusCode, Value::Span(span))?;
                            let outcome: &'static [u8] = if code < 400 { b"success" } else { b"failure" };
                            self.set_nested(out, R::EvtOutcome, Value::Static(outcome))?;
                        }
                    }
                    Kind::True | Kind::False => return Err(NeedsPython), // bool is an int to isinstance
                    _ => {}
                }
            }
        }
        Ok(())
    }

    fn generic(&self, out: &mut Derived) -> Step<()> {
        let first = self.first_date(GENERIC_DATES)?;
        self.timestamp(out, first)?;
        if !self.present(R::Message) {
            if let Some(span) = self.first(MESSAGE_ALIASES)? {
                self.set_top(out, R::Message, Value::Span(self.scalar(span)?))?;
            }
        }
        if let Some(span) = self.first(STATUS_ATTRIBUTES)? {
            let status = self.normalize_status(span).ok_or(NeedsPython)?;
            self.set_top(out, R::Status, status)?;
        }
        if !self.present(R::Host) {
            if let Some(span) = self.first(HOST_ALIASES)? {
                self.set_top(out, R::Host, Value::Span(self.scalar(span)?))?;
            }
        }
        if !self.present(R::Service) {
            if let Some(span) = self.first(SERVICE_ALIASES)? {
                self.set_top(out, R::Service, Value::Span(self.scalar(span)?))?;
            }
        }
        if self.present(R::Ddsource) && !self.present(R::Source) {
            match self.get(R::Ddsource) {
                Val::One(span) => self.set_top(out, R::Source, Value::Span(self.scalar(span)?))?,
                Val::List => return Err(NeedsPython),
                // source = None: the column stays null, the event holds "source": null.
                Val::Null => self.set_top(out, R::Source, Value::Null)?,
                Val::Missing => {}
            }
        }
        if !self.present(R::Tags) {
            match self.get(R::Ddtags) {
                Val::One(span) if matches!(span.kind, Kind::Str { .. }) => {
                    let Kind::Str { escaped: false } = span.kind else { return Err(NeedsPython) };
                    let body = &self.line[span.start as usize..span.end as usize];
                    if !body.is_ascii() {
                        return Err(NeedsPython); // str.strip() knows Unicode spaces
                    }
                    // [t.strip() for t in tags.split(",") if t.strip()]
                    let mut pieces = Vec::new();
                    let mut at = span.start as usize;
                    for part in body.split(|&b| b == b',') {
                        let (a, b) = py_strip_range(part);
                        if b > a {
                            pieces.push(((at + a) as u32, (at + b) as u32));
                        }
                        at += part.len() + 1;
                    }
                    self.set_top(out, R::Tags, Value::Pieces(pieces))?;
                }
                _ => {}
            }
        }
        Ok(())
    }

    /// Ingest's `normalize_status`; None where Python's answer is not reproduced here.
    fn normalize_status(&self, span: Span) -> Option<Value> {
        match span.kind {
            Kind::Num => {
                let token = &self.line[span.start as usize..span.end as usize];
                if token.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) || token.len() > 18 {
                    return None; // str(float) spellings
                }
                let v = int_value(token)?;
                if (0..=7).contains(&v) {
                    return Some(Value::Static(SYSLOG_SEVERITIES[v as usize]));
                }
                // str(v): digits (and '-'), which start no status word: the text itself.
                let mut text = Vec::new();
                super::push_number(token, &mut text);
                Some(Value::Owned(text))
            }
            Kind::Str { .. } => {
                let raw = self.text(span)?;
                if !raw.is_ascii() {
                    return None; // Unicode strip/lower/isdigit
                }
                let (a, b) = py_strip_range(&raw);
                let text: Vec<u8> = raw[a..b].to_ascii_lowercase();
                if text.is_empty() {
                    return Some(Value::Static(b"info"));
                }
                if text.iter().all(u8::is_ascii_digit) {
                    let digits = &text[text.iter().position(|&d| d != b'0').unwrap_or(text.len() - 1)..];
                    if digits.len() == 1 && digits[0] <= b'7' {
                        return Some(Value::Static(SYSLOG_SEVERITIES[(digits[0] - b'0') as usize]));
                    }
                }
                if let Some(word) = status_word(&text) {
                    return Some(Value::Static(word));
                }
                if let Some(word) = status_word(&text[..1]) {
                    return Some(Value::Static(word));
                }
                Some(Value::Owned(text))
            }
            _ => None, // str(True), str(dict): Python spellings
        }
    }
}

/// Python's `str.strip()` whitespace among ASCII characters (`\x1c`-`\x1f` are spaces to it).
fn is_py_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | 0x0b | 0x0c | b'\r' | 0x1c..=0x1f)
}

/// `(start, end)` of `text.strip()` (ASCII text).
fn py_strip_range(text: &[u8]) -> (usize, usize) {
    let start = text.iter().position(|&b| !is_py_space(b)).unwrap_or(text.len());
    let end = text.iter().rposition(|&b| !is_py_space(b)).map_or(start, |e| e + 1);
    (start, end.max(start))
}

/// `messages.is_ip` for text without `:`: the IPv4 regex, octets 0-255 without leading zeros.
fn is_ipv4(text: &[u8]) -> bool {
    let mut octets = 0;
    for part in text.split(|&b| b == b'.') {
        octets += 1;
        let ok = match part {
            [d] => d.is_ascii_digit(),
            [a, b] => matches!(a, b'1'..=b'9') && b.is_ascii_digit(),
            [a, b, c] => {
                part.iter().all(u8::is_ascii_digit) && *a != b'0' && {
                    let v = (a - b'0') as u32 * 100 + (b - b'0') as u32 * 10 + (c - b'0') as u32;
                    v <= 255
                }
            }
            _ => false,
        };
        if !ok {
            return false;
        }
    }
    octets == 4
}

// --- timestamps (secmon/ingest/timestamps.py) ----------------------------------------------------

const SECONDS_BELOW: i128 = 100_000_000_000; // 1e11
const MILLIS_BELOW: i128 = 100_000_000_000_000; // 1e14
const MICROS_BELOW: i128 = 100_000_000_000_000_000; // 1e17

/// `epoch_to_ms` of a Python int.
fn epoch_int_ms(v: i128) -> Option<i64> {
    let magnitude = v.abs();
    let ms = if magnitude < SECONDS_BELOW {
        v * 1000
    } else if magnitude < MILLIS_BELOW {
        v
    } else if magnitude < MICROS_BELOW {
        v.div_euclid(1000)
    } else {
        v.div_euclid(1_000_000)
    };
    i64::try_from(ms).ok()
}

/// `epoch_to_ms` of a Python float: `int(round(v * 1000))` (ties to even) for seconds, else
/// truncation then floor division.
fn epoch_float_ms(v: f64) -> Option<i64> {
    if !v.is_finite() {
        return None;
    }
    let magnitude = v.abs();
    if magnitude < 1e11 {
        return Some((v * 1000.0).round_ties_even() as i64);
    }
    if magnitude >= 9.0e18 {
        return None; // past i64: ingest's table would overflow; the twin reports it
    }
    let whole = v.trunc() as i128; // int(v)
    let ms = if magnitude < 1e14 {
        whole
    } else if magnitude < 1e17 {
        whole.div_euclid(1000)
    } else {
        whole.div_euclid(1_000_000)
    };
    i64::try_from(ms).ok()
}

/// `parse_any` on a string: `str.strip()`, then `-?\d+(?:\.\d+)?` as an epoch number, else ISO
/// 8601 by `parse_iso8601`. ASCII only (Python's `\d` and `strip` are Unicode-aware).
pub(super) fn parse_timestamp_text(raw: &[u8]) -> Option<i64> {
    if !raw.is_ascii() {
        return None;
    }
    let (a, b) = py_strip_range(raw);
    let text = &raw[a..b];
    if is_decimal_number(text) {
        let s = std::str::from_utf8(text).ok()?;
        if text.contains(&b'.') {
            return epoch_float_ms(s.parse::<f64>().ok()?);
        }
        let digits = text.iter().filter(|b| b.is_ascii_digit()).count();
        if digits > 30 {
            return None;
        }
        return epoch_int_ms(s.parse::<i128>().ok()?);
    }
    parse_iso8601(text)
}

/// `-?\d+(?:\.\d+)?` in full.
fn is_decimal_number(text: &[u8]) -> bool {
    let body = text.strip_prefix(b"-").unwrap_or(text);
    let (int, frac) = match body.iter().position(|&b| b == b'.') {
        Some(dot) => (&body[..dot], Some(&body[dot + 1..])),
        None => (body, None),
    };
    !int.is_empty()
        && int.iter().all(u8::is_ascii_digit)
        && frac.is_none_or(|f| !f.is_empty() && f.iter().all(u8::is_ascii_digit))
}

/// `timestamps._ISO` in full on stripped ASCII text, then `parse_iso8601`'s arithmetic:
/// `(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?\s*(Z|z|[+-]\d{2}(?::?\d{2})?)?`
/// Each optional part is taken greedily: when it can start it must (what follows could not
/// match the rest of the pattern otherwise), so no backtracking is needed.
pub(super) fn parse_iso8601(s: &[u8]) -> Option<i64> {
    let digits = |at: usize, n: usize| -> Option<i64> {
        let part = s.get(at..at + n)?;
        part.iter().all(u8::is_ascii_digit).then(|| part.iter().fold(0i64, |v, d| v * 10 + (d - b'0') as i64))
    };
    let year = digits(0, 4)?;
    (s.get(4) == Some(&b'-')).then_some(())?;
    let month = digits(5, 2)?;
    (s.get(7) == Some(&b'-')).then_some(())?;
    let day = digits(8, 2)?;
    let mut i = 10;
    let mut ms = day_ms(year, month, day)?;
    // (?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d+))?)?)?
    if matches!(s.get(i), Some(b'T' | b' ')) && digits(i + 1, 2).is_some() && s.get(i + 3) == Some(&b':') && digits(i + 4, 2).is_some() {
        let hour = digits(i + 1, 2)?;
        let minute = digits(i + 4, 2)?;
        i += 6;
        let mut second = 0;
        let mut fraction: &[u8] = b"";
        if s.get(i) == Some(&b':') && digits(i + 1, 2).is_some() {
            second = digits(i + 1, 2)?;
            i += 3;
            if matches!(s.get(i), Some(b'.' | b',')) && s.get(i + 1).is_some_and(u8::is_ascii_digit) {
                let start = i + 1;
                i = start;
                while s.get(i).is_some_and(u8::is_ascii_digit) {
                    i += 1;
                }
                fraction = &s[start..i];
            }
        }
        if hour > 23 || minute > 59 || second > 60 {
            return None;
        }
        ms += ((hour * 60 + minute) * 60 + second) * 1000;
        // int((fraction + "000")[:3]): truncated below the millisecond.
        let mut frac_ms = 0;
        for k in 0..3 {
            frac_ms = frac_ms * 10 + fraction.get(k).map_or(0, |d| (d - b'0') as i64);
        }
        ms += frac_ms;
    }
    // \s*
    while s.get(i).is_some_and(|&b| is_py_space(b)) {
        i += 1;
    }
    // (Z|z|[+-]\d{2}(?::?\d{2})?)?
    match s.get(i) {
        Some(b'Z' | b'z') => i += 1,
        Some(&sign @ (b'+' | b'-')) => {
            let hours = digits(i + 1, 2)?;
            i += 3;
            let mut minutes = 0;
            if s.get(i) == Some(&b':') && digits(i + 1, 2).is_some() {
                minutes = digits(i + 1, 2)?;
                i += 3;
            } else if let Some(m) = digits(i, 2) {
                minutes = m;
                i += 2;
            }
            let offset = (hours * 60 + minutes) * 60_000;
            ms -= if sign == b'-' { -offset } else { offset };
        }
        _ => {}
    }
    (i == s.len()).then_some(ms)
}

/// Epoch milliseconds of midnight UTC of a proleptic Gregorian date (`datetime.date` rules:
/// years 1-9999); None when there is no such day.
fn day_ms(year: i64, month: i64, day: i64) -> Option<i64> {
    if !(1..=9999).contains(&year) || !(1..=12).contains(&month) || day < 1 {
        return None;
    }
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days_in_month = [31, if leap { 29 } else { 28 }, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
    if day > days_in_month[(month - 1) as usize] {
        return None;
    }
    // Days from civil (H. Hinnant's algorithm).
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    Some(days * 86_400_000)
}

// --- derived values ------------------------------------------------------------------------------

/// A value normalization gives a column.
#[derive(Debug, Clone)]
pub(super) enum Value {
    /// A value of the line, written by the event-table rules.
    Span(Span),
    Static(&'static [u8]),
    Owned(Vec<u8>),
    /// Epoch milliseconds, in decimal.
    Int(i64),
    /// Byte ranges of the line: the items of a list (ingest's `tags` from `ddtags`).
    Pieces(Vec<(u32, u32)>),
    /// JSON null (missing in the table).
    Null,
}

/// One change normalization makes to the record, for writing the normalized event as JSON.
#[derive(Debug, Clone)]
struct Patch {
    /// The object the members go into (None: the record itself).
    into: Option<Span>,
    /// The target's components; `path[leaf..]` are written (objects made on the way).
    path: &'static [&'static str],
    leaf: usize,
    value: Value,
}

/// The derived values of the current row, by column.
#[derive(Debug)]
pub(super) struct Derived {
    replaced: Vec<bool>,
    values: Vec<(u32, Value)>,
    /// Whether `patches` are kept (only [`normalized_json`] writes events).
    patching: bool,
    patches: Vec<Patch>,
}

impl Derived {
    pub(super) fn new(columns: usize) -> Derived {
        Derived { replaced: vec![false; columns], values: Vec::new(), patching: false, patches: Vec::new() }
    }

    fn clear(&mut self) {
        for (col, _) in self.values.drain(..) {
            self.replaced[col as usize] = false;
        }
        self.patches.clear();
    }

    fn set(&mut self, col: u32, value: Value) {
        if let Some(at) = self.values.iter().position(|(c, _)| *c == col) {
            self.values[at].1 = value;
        } else {
            self.replaced[col as usize] = true;
            self.values.push((col, value));
        }
    }

    /// Whether the normalization gives column `col` its value on this row.
    #[inline]
    pub(super) fn replaces(&self, col: usize) -> bool {
        !self.values.is_empty() && self.replaced[col]
    }

    /// Writes the derived values of row `row` into their columns.
    pub(super) fn emit(&self, line: &[u8], row: u32, columns: &mut [ColumnBuilder]) {
        for (col, value) in &self.values {
            if let Value::Null = value {
                continue;
            }
            let col = &mut columns[*col as usize];
            let first = col.next_item();
            let mut list = false;
            match value {
                Value::Span(span) => push_span_text(line, *span, &mut col.data),
                Value::Static(text) => col.data.extend_from_slice(text),
                Value::Owned(text) => col.data.extend_from_slice(text),
                Value::Int(ms) => col.data.extend_from_slice(itoa::Buffer::new().format(*ms).as_bytes()),
                Value::Null => unreachable!("skipped above"),
                Value::Pieces(pieces) => {
                    list = true;
                    for &(a, b) in pieces {
                        col.data.extend_from_slice(&line[a as usize..b as usize]);
                        col.end_item();
                    }
                }
            }
            if !list {
                col.end_item();
            }
            col.end_value(row, first, list);
        }
    }
}

// --- the normalized event as JSON ----------------------------------------------------------------

/// The normalized record of a line as JSON text: the line itself with the members normalization
/// adds written into their objects (before each object's closing brace) and the ones it replaces
/// (`timestamp`, `status`, a null object made an object) written again after the old ones, which
/// a JSON reader's last-wins rule then drops. `orjson.loads` of it is the dict
/// `normalize_record(orjson.loads(line))` is, so `orjson.dumps(..., OPT_SORT_KEYS)` of both are
/// equal; the Python side only pays for that re-serialization.
pub(super) fn write_normalized(line: &[u8], derived: &Derived, out: &mut Vec<u8>) {
    // (position of the closing brace, whether the object has members, patches going there)
    let mut targets: Vec<(usize, bool, Vec<&Patch>)> = Vec::new();
    for patch in &derived.patches {
        let (open, close) = match patch.into {
            Some(span) => (span.start as usize, span.end as usize - 1),
            None => {
                let open = line.iter().position(|&b| b == b'{').expect("a record is an object");
                (open, line.iter().rposition(|&b| b == b'}').expect("a record is an object"))
            }
        };
        match targets.iter_mut().find(|(c, _, _)| *c == close) {
            Some((_, _, patches)) => patches.push(patch),
            None => {
                let inner = &line[open + 1..close];
                let has_members = inner.iter().any(|&b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'));
                targets.push((close, has_members, vec![patch]));
            }
        }
    }
    targets.sort_by_key(|(close, _, _)| *close);
    let mut at = 0;
    for (close, has_members, patches) in &targets {
        out.extend_from_slice(&line[at..*close]);
        if *has_members {
            out.push(b',');
        }
        let members: Vec<(&[&str], &Value)> = patches.iter().map(|p| (&p.path[p.leaf..], &p.value)).collect();
        write_members(line, &members, out);
        at = *close;
    }
    out.extend_from_slice(&line[at..]);
}

/// Members `"a":{"b":v1,"c":v2}` from (components, value) pairs, grouped by first component in
/// order of appearance (the last value wins where a path repeats, as in the dict).
fn write_members(line: &[u8], members: &[(&[&str], &Value)], out: &mut Vec<u8>) {
    let mut done: Vec<&str> = Vec::new();
    for (path, _) in members {
        let head = path[0];
        if done.contains(&head) {
            continue;
        }
        if !done.is_empty() {
            out.push(b',');
        }
        done.push(head);
        write_json_string(head.as_bytes(), out);
        out.push(b':');
        let same: Vec<(&[&str], &Value)> = members.iter().filter(|(p, _)| p[0] == head).map(|(p, v)| (&p[1..], *v)).collect();
        if let Some((_, value)) = same.iter().rev().find(|(rest, _)| rest.is_empty()) {
            write_value(line, value, out);
        } else {
            out.push(b'{');
            write_members(line, &same, out);
            out.push(b'}');
        }
    }
}

fn write_value(line: &[u8], value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Span(span) => {
            let token = &line[span.start as usize..span.end as usize];
            if let Kind::Str { .. } = span.kind {
                out.push(b'"'); // the body as it is in the line: valid JSON string text
                out.extend_from_slice(token);
                out.push(b'"');
            } else {
                out.extend_from_slice(token);
            }
        }
        Value::Static(text) => write_json_string(text, out),
        Value::Owned(text) => write_json_string(text, out),
        Value::Int(ms) => out.extend_from_slice(itoa::Buffer::new().format(*ms).as_bytes()),
        Value::Null => out.extend_from_slice(b"null"),
        Value::Pieces(pieces) => {
            out.push(b'[');
            for (k, &(a, b)) in pieces.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                write_json_string(&line[a as usize..b as usize], out);
            }
            out.push(b']');
        }
    }
}

fn write_json_string(text: &[u8], out: &mut Vec<u8>) {
    super::push_quoted(text, out);
}

/// The normalized records of the selected lines as JSON (see [`write_normalized`]); None for a
/// line whose normalization only Python reproduces (or that is not a JSON object).
pub fn normalized_json(hay: &[u8], sep: u8, line_idx: &[u32]) -> crate::error::Result<Vec<Option<Vec<u8>>>> {
    // No columns: nothing blocks a derivation, and the changes to the record do not depend on
    // which columns a table has.
    let paths = super::FieldPaths::normalizing(std::iter::empty::<&str>())?;
    let plan = paths.plan.as_ref().expect("normalizing paths have a plan");
    let ranges = crate::matcher::select_lines(hay, sep, line_idx)?;
    let mut slots = Slots::new(2 * paths.walked());
    let mut derived = Derived::new(0);
    derived.patching = true;
    let mut out = Vec::with_capacity(ranges.len());
    for (a, b) in ranges {
        let line = &hay[a..b];
        let Ok((true, escaped_key)) = super::walk_line(&paths, &mut slots, line) else {
            out.push(None);
            continue;
        };
        if escaped_key || !plan.derive(line, &slots, &mut derived) {
            out.push(None);
            continue;
        }
        let mut text = Vec::with_capacity(line.len() + 128);
        write_normalized(line, &derived, &mut text);
        out.push(Some(text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_dates_follow_parse_iso8601() {
        let table: &[(&str, Option<i64>)] = &[
            ("2023-07-10T12:00:42Z", Some(1_688_990_442_000)),
            ("2023-07-10 12:00:42.123456789+02:00", Some(1_688_983_242_123)),
            ("2023-07-10", Some(1_688_947_200_000)),
            ("2023-07-10-05", Some(1_688_947_200_000 + 5 * 3_600_000)),
            ("2023-07-10 Z", Some(1_688_947_200_000)),
            ("2023-07-10T12:00", Some(1_688_990_400_000)),
            ("2023-07-10T12:00:60", Some(1_688_990_460_000)),
            ("2023-07-10T12:00:00,5z", Some(1_688_990_400_500)),
            ("2023-07-10T12:00:00+0599", Some(1_688_990_400_000 - (5 * 60 + 99) * 60_000)),
            ("2024-02-29T00:00:00Z", Some(1_709_164_800_000)),
            ("1969-12-31T23:59:59.999Z", Some(-1)),
            ("0001-01-01", Some(-62_135_596_800_000)),
            ("2023-02-29", None),
            ("0000-01-01", None),
            ("2023-07-10T24:00:00Z", None),
            ("2023-07-10T12:00:00.Z", None),
            ("2023-07-10T12:00:00+053", None),
            ("2023-07-10t12:00:00", None),
            ("2023-7-10", None),
            ("2023-07-10T12", None),
        ];
        for &(text, want) in table {
            assert_eq!(parse_iso8601(text.as_bytes()), want, "{text}");
        }
    }

    #[test]
    fn epoch_numbers_follow_epoch_to_ms() {
        assert_eq!(epoch_int_ms(1_700_000_000), Some(1_700_000_000_000));
        assert_eq!(epoch_int_ms(1_700_000_000_123), Some(1_700_000_000_123));
        assert_eq!(epoch_int_ms(-1_700_000_000_123_456), Some(-1_700_000_000_124));
        assert_eq!(epoch_float_ms(1_700_000_000.000_5), Some(1_700_000_000_000));
        assert_eq!(epoch_float_ms(0.0025), Some(2));
        assert_eq!(epoch_float_ms(-1.7e14), Some(-170_000_000_000));
        assert_eq!(parse_timestamp_text(b" 1700000000 "), Some(1_700_000_000_000));
        assert_eq!(parse_timestamp_text(b"1.5"), Some(1500));
        assert_eq!(parse_timestamp_text(b"1e9"), None);
    }

    #[test]
    fn ipv4_is_the_regex_of_messages_is_ip() {
        for ok in ["0.0.0.0", "255.255.255.255", "10.0.0.1", "192.168.10.20"] {
            assert!(is_ipv4(ok.as_bytes()), "{ok}");
        }
        for bad in ["256.0.0.1", "01.2.3.4", "1.2.3", "1.2.3.4.5", "", "a.b.c.d", "1..2.3", "1.2.3.4 "] {
            assert!(!is_ipv4(bad.as_bytes()), "{bad}");
        }
    }
}
