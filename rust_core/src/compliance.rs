//! Kubernetes workload manifests straight to typed fact columns: the fast path of
//! `secmon.compliance.scan_k8s`.
//!
//! The Python path reads each file, parses it into Python objects, normalizes every workload into a
//! Pod-shaped dict (`secmon.compliance.k8s.normalize_workload`) and then walks those dicts once per
//! fact to build Polars columns. For 10,000 manifests that is ~1 s of YAML-to-object conversion and
//! ~2 s of per-value Python (measured). Here the files are read and parsed on all cores (rayon), the
//! same normalization is applied to a small owned document tree, and only the facts the checks ask
//! for (a [`ScopeSpec`], derived from the checks) come back, column by column.
//!
//! **Exactness by refusal.** This path reproduces the Python path's answers only for inputs it
//! fully understands. A file holding anything else is *handed back* ([`Batch::fallback`]) and
//! the caller runs the Python path on it, so errors, warnings and odd values come out exactly as
//! before. Handed back: unreadable or non-UTF-8 files, JSON text, Helm templates, YAML that
//! Kubernetes' YAML 1.1 reader and a YAML 1.2 parser could read differently (the Python path's
//! own `_fast_path_safe` test: `yes/no/on/off`, octal-looking and exponent numbers, merge keys,
//! tags, directives, YAML 1.1 line breaks), aliases, non-string or duplicate keys, numbers other
//! than plain decimals, objects that are not workloads (RBAC, lists, unknown kinds, control-plane
//! static pods), and facts whose Python spelling this module does not produce (non-integral
//! floats or nested objects read as strings, non-ASCII capabilities or images).
//!
//! Facts follow YAML 1.1 as Kubernetes reads manifests: a file whose plain scalars would resolve
//! differently under YAML 1.2 never takes this path.

use std::borrow::Cow;
use std::collections::HashSet;

use rayon::prelude::*;
use regex::Regex;
use saphyr_parser::{Event, Parser, ScalarStyle};

/// The type a fact is coerced to (`secmon.compliance.conditions.DType`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DType {
    Bool,
    Num,
    Int,
    Str,
    StrList,
}

impl DType {
    pub fn from_name(name: &str) -> Option<DType> {
        Some(match name {
            "bool" => DType::Bool,
            "num" => DType::Num,
            "int" => DType::Int,
            "str" => DType::Str,
            "strlist" => DType::StrList,
            _ => return None,
        })
    }
}

/// The facts of one level and its nested `for_*` scopes (`conditions.Schema`).
#[derive(Clone, Debug, Default)]
pub struct ScopeSpec {
    pub fields: Vec<(Vec<String>, DType)>,
    pub scopes: Vec<(Vec<String>, ScopeSpec)>,
}

/// One typed column; `None` is an absent (or not representable) fact.
#[derive(Debug, PartialEq)]
pub enum Column {
    Bool(Vec<Option<bool>>),
    Num(Vec<Option<f64>>),
    Int(Vec<Option<i64>>),
    Str(Vec<Option<String>>),
    /// Flattened values and one length per row (-1 for an absent list).
    StrList { values: Vec<String>, lengths: Vec<i64> },
}

/// The rows of one scope: fact columns in [`ScopeSpec::fields`] order, and for child scopes the
/// parent row and the element's path in the source object.
#[derive(Debug)]
pub struct ScopeColumns {
    pub columns: Vec<Column>,
    pub parents: Vec<i64>,
    pub paths: Vec<String>,
    pub children: Vec<ScopeColumns>,
}

/// Workload rows of the files this module understood, and the files it handed back.
#[derive(Debug)]
pub struct Batch {
    pub facts: ScopeColumns,
    /// Per workload row: index of its file in the input, display name, document start line and
    /// the path of the pod spec inside the object.
    pub file_index: Vec<u32>,
    pub names: Vec<String>,
    pub lines: Vec<i64>,
    pub locations: Vec<String>,
    /// Input indexes of files the caller must check with the Python path, ascending.
    pub fallback: Vec<u32>,
}

/// A parsed YAML value: what the Python path's loaders give, for the inputs accepted here.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Seq(Vec<Value>),
    /// Keys in document order (Python dicts keep insertion order; `types` and mapping scopes
    /// depend on it).
    Map(Vec<(String, Value)>),
}

/// "Hand this file to the Python path."
#[derive(Debug)]
pub struct Refused;

type Accept<T> = std::result::Result<T, Refused>;

impl Value {
    fn get(&self, key: &str) -> Option<&Value> {
        match self {
            Value::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    /// `dict.get(key)` where a YAML null counts as absent (as `None` does in Python).
    fn get_present(&self, key: &str) -> Option<&Value> {
        self.get(key).filter(|v| !matches!(v, Value::Null))
    }

    fn set(&mut self, key: &str, value: Value) {
        if let Value::Map(entries) = self {
            if let Some(slot) = entries.iter_mut().find(|(k, _)| k == key) {
                slot.1 = value;
            } else {
                entries.push((key.to_string(), value));
            }
        }
    }

    fn is_map(&self) -> bool {
        matches!(self, Value::Map(_))
    }

    /// Python truthiness, for `x or {}`.
    fn truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Seq(items) => !items.is_empty(),
            Value::Map(entries) => !entries.is_empty(),
        }
    }
}

fn empty_map() -> Value {
    Value::Map(Vec::new())
}

/// `_as_dict`: the value if it is a mapping, else an empty one.
fn as_map(value: Option<&Value>) -> Value {
    match value {
        Some(v @ Value::Map(_)) => v.clone(),
        _ => empty_map(),
    }
}

fn dig<'a>(value: &'a Value, path: &[&str]) -> Option<&'a Value> {
    let mut node = value;
    for key in path {
        node = node.get(key)?;
    }
    Some(node)
}

// ---------------------------------------------------------------------------------------------
// Text checks: the same decisions as `secmon.compliance.k8s` makes before parsing.

/// Python's `str.isspace` (Rust's `char::is_whitespace` lacks the ASCII separators 0x1C-0x1F).
fn py_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

fn py_strip(s: &str) -> &str {
    s.trim_matches(py_space)
}

/// The Python path's `_YAML11_SCALAR`, with `\s` widened to Python's whitespace.
fn yaml11_scalar() -> Regex {
    let s = r"[\s\x1c-\x1f]";
    let pattern = format!(
        r"(?mi)(?:^|[:\-,\[{{?]{s}){s}*(?:y|n|yes|no|on|off|[-+]?0[0-7_]+|[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+(?:\.[0-9_]*)?|[-+]?(?:[0-9][0-9_]*)?\.?[0-9_]*[eE][-+]?[0-9]+|[-+]?\.(?:inf|nan)|=){s}*(?:$|[,\]}}#]|:(?:{s}|$))"
    );
    Regex::new(&pattern).expect("static pattern")
}

const PYYAML_MARKERS: [&str; 6] = ["<<", "!!", "\u{85}", "\u{2028}", "\u{2029}", "\u{feff}"];

/// `_fast_path_safe`: no construct that YAML 1.1 and 1.2 readers could read differently.
fn yaml12_safe(text: &str, yaml11: &Regex) -> bool {
    if PYYAML_MARKERS.iter().any(|m| text.contains(m)) || text.starts_with('%') || text.contains("\n%") {
        return false;
    }
    !text.split('\n').any(|line| yaml11.is_match(line))
}

fn is_doc_marker(line: &str) -> Option<bool> {
    for (marker, is_start) in [("---", true), ("...", false)] {
        if let Some(rest) = line.strip_prefix(marker) {
            if rest.chars().next().is_none_or(py_space) {
                return Some(is_start);
            }
        }
    }
    None
}

fn has_content(lines: &[String]) -> bool {
    lines.iter().any(|x| !py_strip(x).is_empty() && !x.trim_start_matches(py_space).starts_with('#'))
}

/// `_split_documents`: document texts with their 1-based first line.
fn split_documents(text: &str) -> Vec<(String, i64)> {
    if !text.starts_with("---") && !text.starts_with("...") && !text.contains("\n---") && !text.contains("\n...") {
        return if py_strip(text).is_empty() { Vec::new() } else { vec![(text.to_string(), 1)] };
    }
    let mut docs = Vec::new();
    let mut current: Vec<String> = Vec::new();
    let mut start = 1_i64;
    for (i, line) in text.split('\n').enumerate() {
        let number = i as i64 + 1;
        if let Some(is_start) = is_doc_marker(line) {
            if has_content(&current) {
                docs.push((current.join("\n"), start));
            }
            let rest = &line[3..];
            let stripped = py_strip(rest);
            current = if is_start && !stripped.is_empty() && !stripped.starts_with('#') {
                vec![format!("   {rest}")]
            } else {
                Vec::new()
            };
            start = if current.is_empty() { number + 1 } else { number };
            continue;
        }
        current.push(line.to_string());
    }
    if has_content(&current) {
        docs.push((current.join("\n"), start));
    }
    docs
}

// ---------------------------------------------------------------------------------------------
// YAML events to values.

/// A plain scalar's value, or a refusal when it is a number spelled any way but plain decimal
/// (underscores, `0x`/`0o`/`0b`, a leading `+`, exponents): readers disagree on those.
fn resolve_plain(text: &str) -> Accept<Value> {
    match text {
        "" | "~" | "null" | "Null" | "NULL" => return Ok(Value::Null),
        "true" | "True" | "TRUE" => return Ok(Value::Bool(true)),
        "false" | "False" | "FALSE" => return Ok(Value::Bool(false)),
        _ => {}
    }
    let bytes = text.as_bytes();
    let unsigned = bytes.strip_prefix(b"-").unwrap_or(bytes);
    let first = unsigned.first().copied();
    let number_like = matches!(first, Some(b'0'..=b'9' | b'.' | b'+' | b'-' | b'_'))
        || matches!(bytes.first(), Some(b'+'));
    if !number_like {
        return Ok(Value::Str(text.to_string()));
    }
    if !unsigned.is_empty() && unsigned.iter().all(u8::is_ascii_digit) {
        // Leading zeros were already sent to the YAML 1.1 reader by `yaml12_safe` (octal).
        return text.parse::<i64>().map(Value::Int).map_err(|_| Refused);
    }
    if let Some(dot) = unsigned.iter().position(|&b| b == b'.') {
        let (int_part, frac) = (&unsigned[..dot], &unsigned[dot + 1..]);
        if !int_part.is_empty()
            && !frac.is_empty()
            && int_part.iter().all(u8::is_ascii_digit)
            && frac.iter().all(u8::is_ascii_digit)
        {
            return text.parse::<f64>().map(Value::Float).map_err(|_| Refused);
        }
    }
    // Anything else starting like a number (hex/octal/binary prefixes, underscores, a sign,
    // exponents, dates): a string only where no reader could see a number or a date.
    let body = unsigned.strip_prefix(b"+").unwrap_or(unsigned);
    let prefixed = body.len() >= 2 && body[0] == b'0' && b"xXoObB".contains(&body[1]);
    let numeric_chars = body.iter().all(|b| b.is_ascii_digit() || b"_.eE+-".contains(b));
    let dots = body.iter().filter(|&&b| b == b'.').count();
    if prefixed || (numeric_chars && dots <= 1 && body.iter().any(u8::is_ascii_digit)) || (numeric_chars && text.contains('-')) {
        Err(Refused)
    } else {
        Ok(Value::Str(text.to_string()))
    }
}

/// Parse one document text (no `---` markers left in it) into a value.
pub fn parse_document(text: &str) -> Accept<Value> {
    let mut parser = Parser::new_from_str(text);
    let mut stack: Vec<(Value, Option<String>)> = Vec::new();
    let mut root: Option<Value> = None;
    let mut documents = 0;
    while let Some(event) = parser.next_event() {
        let (event, _) = event.map_err(|_| Refused)?;
        let value = match event {
            Event::StreamStart | Event::StreamEnd | Event::DocumentEnd | Event::Nothing => continue,
            Event::DocumentStart(_) => {
                documents += 1;
                if documents > 1 {
                    return Err(Refused);
                }
                continue;
            }
            Event::Alias(_) => return Err(Refused),
            Event::Scalar(text, style, _, tag) => {
                if tag.is_some() {
                    return Err(Refused);
                }
                if matches!(style, ScalarStyle::Plain) {
                    resolve_plain(&text)?
                } else {
                    Value::Str(text.into_owned())
                }
            }
            Event::SequenceStart(_, tag) => {
                if tag.is_some() {
                    return Err(Refused);
                }
                stack.push((Value::Seq(Vec::new()), None));
                continue;
            }
            Event::MappingStart(_, tag) => {
                if tag.is_some() {
                    return Err(Refused);
                }
                stack.push((empty_map(), None));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let (done, pending_key) = stack.pop().ok_or(Refused)?;
                if pending_key.is_some() {
                    return Err(Refused);
                }
                done
            }
        };
        match stack.last_mut() {
            None => {
                if root.is_some() {
                    return Err(Refused);
                }
                root = Some(value);
            }
            Some((Value::Seq(items), _)) => items.push(value),
            Some((Value::Map(entries), pending)) => match pending.take() {
                None => {
                    // A key: only strings (non-string keys become non-string dict keys in Python).
                    let Value::Str(key) = value else { return Err(Refused) };
                    if key == "__path" || has_key(entries, &key) {
                        return Err(Refused);
                    }
                    *pending = Some(key);
                }
                Some(key) => entries.push((key, value)),
            },
            Some(_) => return Err(Refused),
        }
    }
    Ok(root.unwrap_or(Value::Null))
}

fn has_key(entries: &[(String, Value)], key: &str) -> bool {
    if entries.len() < 32 {
        entries.iter().any(|(k, _)| k == key)
    } else {
        // Large mappings (ConfigMap-like data) would make the linear test quadratic.
        entries.iter().map(|(k, _)| k.as_str()).collect::<HashSet<_>>().contains(key)
    }
}

// ---------------------------------------------------------------------------------------------
// Workload normalization: `secmon.compliance.k8s.normalize_workload`, same documents.

/// kind -> path of the pod template inside the object (`WORKLOAD_TEMPLATES`).
fn template_path(kind: &str) -> Option<&'static [&'static str]> {
    Some(match kind {
        "Pod" => &[],
        "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "ReplicationController" | "Job" => &["spec", "template"],
        "CronJob" => &["spec", "jobTemplate", "spec", "template"],
        "PodTemplate" => &["template"],
        _ => return None,
    })
}

const CONTROL_PLANE_BINARIES: [&str; 5] = ["kube-apiserver", "kube-controller-manager", "kube-scheduler", "etcd", "kube-proxy"];

/// One normalized workload with what the result row shows about it.
#[derive(Debug)]
pub struct Workload {
    pub doc: Value,
    pub name: String,
    pub line: i64,
    pub location: String,
}

fn annotation_profile(value: Option<&Value>) -> Option<Value> {
    let Some(Value::Str(s)) = value else { return None };
    Some(Value::Str(if s.starts_with("localhost/") {
        "Localhost".to_string()
    } else {
        match s.as_str() {
            "runtime/default" | "docker/default" => "RuntimeDefault".to_string(),
            "unconfined" => "Unconfined".to_string(),
            _ => s.clone(),
        }
    }))
}

fn first_present(values: impl IntoIterator<Item = Option<Value>>) -> Value {
    values.into_iter().flatten().find(|v| !matches!(v, Value::Null)).unwrap_or(Value::Null)
}

/// `_caps`: capability names upper case without `CAP_`; refuses what `str()` would spell oddly.
fn caps(values: Option<&Value>) -> Accept<Value> {
    let Some(Value::Seq(items)) = values else { return Ok(Value::Seq(Vec::new())) };
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        let text = match item {
            Value::Str(s) if s.is_ascii() => s.to_ascii_uppercase(),
            Value::Int(i) => i.to_string(),
            Value::Bool(b) => if *b { "TRUE" } else { "FALSE" }.to_string(),
            Value::Null => "NONE".to_string(),
            _ => return Err(Refused),
        };
        let text = text.strip_prefix("CAP_").map(str::to_string).unwrap_or(text);
        out.push(Value::Str(text));
    }
    Ok(Value::Seq(out))
}

/// `parse_image`: name, tag and digest of an image reference.
fn parse_image(image: Option<&Value>, pattern: &Regex) -> Accept<Value> {
    let Some(Value::Str(reference)) = image else { return Ok(empty_map()) };
    if reference.is_empty() {
        return Ok(empty_map());
    }
    if !reference.is_ascii() || reference.bytes().any(|b| b.is_ascii_control() && !b" \t\n\r\x0b\x0c".contains(&b)) {
        return Err(Refused);
    }
    let Some(m) = pattern.captures(py_strip(reference)) else {
        return Ok(Value::Map(vec![("name".into(), Value::Str(reference.clone()))]));
    };
    let text = |name: &str| m.name(name).map(|x| x.as_str().to_string());
    let (mut name, mut tag, digest) = (text("name").unwrap_or_default(), text("tag"), text("digest"));
    if tag.as_deref().is_some_and(|t| t.contains('/')) {
        name = format!("{name}:{}", tag.take().unwrap_or_default());
    }
    let opt = |v: Option<String>| v.map_or(Value::Null, Value::Str);
    Ok(Value::Map(vec![("name".into(), Value::Str(name)), ("tag".into(), opt(tag)), ("digest".into(), opt(digest))]))
}

fn image_pattern() -> Regex {
    Regex::new(r"^(?P<name>[^@]+?)(?::(?P<tag>[\w][\w.-]{0,127}))?(?:@(?P<digest>[A-Za-z0-9_+.-]+:[0-9a-fA-F]+))?$").expect("static pattern")
}

/// `f"{value}"` for the values accepted here (None spells "None").
fn py_format(value: Option<&Value>) -> Accept<String> {
    match value {
        None | Some(Value::Null) => Ok("None".to_string()),
        Some(Value::Str(s)) => Ok(s.clone()),
        Some(Value::Int(i)) => Ok(i.to_string()),
        Some(_) => Err(Refused),
    }
}

/// `object_name`: `Kind/namespace/name` or `Kind/name`.
fn object_name(obj: &Value, kind: &str) -> Accept<String> {
    let meta = obj.get("metadata").filter(|m| m.is_map());
    let ns = meta.and_then(|m| m.get("namespace"));
    let name = match meta.and_then(|m| m.get("name")) {
        None => "<unnamed>".to_string(),
        some => py_format(some)?,
    };
    match ns {
        Some(v) if v.truthy() => Ok(format!("{kind}/{}/{name}", py_format(Some(v))?)),
        _ => Ok(format!("{kind}/{name}")),
    }
}

/// `{**a, **b}` of two optional mappings the way `normalize_workload` guards it.
fn merged(a: Option<&Value>, b: Option<&Value>) -> Accept<Value> {
    let mut out = empty_map();
    for part in [a, b].into_iter().flatten() {
        match part {
            Value::Map(entries) => {
                for (k, v) in entries {
                    out.set(k, v.clone());
                }
            }
            other if !other.truthy() => {}
            _ => return Err(Refused), // `{**[1]}` raises in Python: leave it to that path
        }
    }
    Ok(out)
}

fn is_control_plane(container: &Value) -> bool {
    let as_list = |key: &str| -> Option<Vec<Value>> {
        match container.get(key) {
            None => Some(Vec::new()),
            Some(v) if !v.truthy() => Some(Vec::new()),
            Some(Value::Seq(items)) => Some(items.clone()),
            Some(_) => None,
        }
    };
    let (Some(command), Some(args)) = (as_list("command"), as_list("args")) else { return false };
    match command.first().or(args.first()) {
        Some(Value::Str(argv0)) => {
            let binary = argv0.rsplit('/').next().unwrap_or(argv0);
            CONTROL_PLANE_BINARIES.contains(&binary)
        }
        _ => false,
    }
}

pub fn normalize_workload(obj: &Value, kind: &str, template_at: &[&str], image: &Regex) -> Accept<(Value, String)> {
    let template = if template_at.is_empty() { Some(obj) } else { dig(obj, template_at) };
    let template = template.filter(|t| t.is_map()).cloned().unwrap_or_else(empty_map);
    let spec = as_map(template.get("spec"));
    let tmeta = as_map(template.get("metadata"));
    let meta = as_map(obj.get("metadata"));
    let spec_path = template_at.iter().copied().chain(["spec"]).collect::<Vec<_>>().join(".");
    let annotations = if template_at.is_empty() {
        match meta.get("annotations") {
            Some(v @ Value::Map(_)) => v.clone(),
            Some(v) if v.truthy() => empty_map(), // `x or {}` then "not a dict" -> {}
            _ => empty_map(),
        }
    } else {
        merged(meta.get("annotations"), tmeta.get("annotations"))?
    };
    let pod_sc = as_map(spec.get("securityContext"));
    let mut containers = Vec::new();
    for (field, role) in [("containers", "container"), ("initContainers", "init"), ("ephemeralContainers", "ephemeral")] {
        let Some(Value::Seq(items)) = spec.get(field) else { continue };
        for (i, c) in items.iter().enumerate() {
            if !c.is_map() {
                continue;
            }
            if is_control_plane(c) {
                return Err(Refused); // a static pod of the control plane: the Python path makes process resources
            }
            let sc = as_map(c.get("securityContext"));
            let name = py_format(c.get("name"))?;
            let seccomp = first_present([
                dig(&sc, &["seccompProfile", "type"]).cloned(),
                dig(&pod_sc, &["seccompProfile", "type"]).cloned(),
                annotation_profile(annotations.get(&format!("container.seccomp.security.alpha.kubernetes.io/{name}"))),
                annotation_profile(annotations.get("seccomp.security.alpha.kubernetes.io/pod")),
            ]);
            let apparmor = first_present([
                dig(&sc, &["appArmorProfile", "type"]).cloned(),
                annotation_profile(annotations.get(&format!("container.apparmor.security.beta.kubernetes.io/{name}"))),
                dig(&pod_sc, &["appArmorProfile", "type"]).cloned(),
            ]);
            let inherit = |key: &str| first_present([sc.get(key).cloned(), pod_sc.get(key).cloned()]);
            let effective = Value::Map(vec![
                ("runAsNonRoot".into(), inherit("runAsNonRoot")),
                ("runAsUser".into(), inherit("runAsUser")),
                ("runAsGroup".into(), inherit("runAsGroup")),
                ("seccompProfile".into(), seccomp),
                ("appArmorProfile".into(), apparmor),
                ("seLinuxOptions".into(), inherit("seLinuxOptions")),
                (
                    "windowsHostProcess".into(),
                    first_present([dig(&sc, &["windowsOptions", "hostProcess"]).cloned(), dig(&pod_sc, &["windowsOptions", "hostProcess"]).cloned()]),
                ),
            ]);
            let cap_sets = as_map(sc.get("capabilities"));
            let mut doc = c.clone();
            doc.set("__path", Value::Str(format!("{spec_path}.{field}[{i}]")));
            doc.set("role", Value::Str(role.to_string()));
            doc.set("caps", Value::Map(vec![("add".into(), caps(cap_sets.get("add"))?), ("drop".into(), caps(cap_sets.get("drop"))?)]));
            doc.set("image_ref", parse_image(c.get("image"), image)?);
            doc.set("effective", effective);
            containers.push(doc);
        }
    }
    let mut volumes = Vec::new();
    if let Some(Value::Seq(items)) = spec.get("volumes") {
        for (i, v) in items.iter().enumerate() {
            let Value::Map(entries) = v else { continue };
            let types = entries.iter().filter(|(k, _)| k != "name").map(|(k, _)| Value::Str(k.clone())).collect();
            let mut doc = v.clone();
            doc.set("__path", Value::Str(format!("{spec_path}.volumes[{i}]")));
            doc.set("types", Value::Seq(types));
            volumes.push(doc);
        }
    }
    let label_ok = |v: Option<&Value>| v.is_none_or(|v| v.is_map() || !v.truthy());
    let labels = if label_ok(meta.get("labels")) && label_ok(tmeta.get("labels")) {
        merged(meta.get("labels"), tmeta.get("labels"))?
    } else {
        empty_map()
    };
    let sysctls = match pod_sc.get("sysctls") {
        Some(v @ Value::Seq(_)) => v.clone(),
        _ => Value::Seq(Vec::new()),
    };
    let doc = Value::Map(vec![
        ("kind".into(), Value::Str(kind.to_string())),
        ("namespace".into(), meta.get("namespace").cloned().unwrap_or(Value::Null)),
        ("name".into(), meta.get("name").cloned().unwrap_or(Value::Null)),
        ("metadata".into(), meta),
        ("labels".into(), labels),
        ("annotations".into(), annotations),
        ("spec".into(), spec),
        ("containers".into(), Value::Seq(containers)),
        ("volumes".into(), Value::Seq(volumes)),
        ("sysctls".into(), sysctls),
    ]);
    Ok((doc, spec_path))
}

/// The top-level objects of a parsed document, lists flattened (`parse_manifest_text.add`).
fn collect_objects(doc: Value, line: i64, out: &mut Vec<(Value, i64)>) -> Accept<()> {
    match doc {
        Value::Null => Ok(()),
        Value::Seq(items) => items.into_iter().try_for_each(|item| collect_objects(item, line, out)),
        obj @ Value::Map(_) => {
            out.push((obj, line));
            Ok(())
        }
        _ => Err(Refused),
    }
}

/// Everything this module needs from one file's text, or a refusal.
pub fn file_workloads(raw: &str, yaml11: &Regex, image: &Regex) -> Accept<Vec<Workload>> {
    // Python reads text files with universal newlines.
    let text: Cow<str> = if raw.contains('\r') { Cow::Owned(raw.replace("\r\n", "\n").replace('\r', "\n")) } else { Cow::Borrowed(raw) };
    if text.contains("{{") || text.trim_start_matches(py_space).starts_with(['{', '[']) || !yaml12_safe(&text, yaml11) {
        return Err(Refused);
    }
    let mut objects = Vec::new();
    for (doc_text, line) in split_documents(&text) {
        collect_objects(parse_document(&doc_text)?, line, &mut objects)?;
    }
    let mut out = Vec::with_capacity(objects.len());
    for (obj, line) in objects {
        let Some(Value::Str(kind)) = obj.get("kind") else { return Err(Refused) };
        let Some(template_at) = template_path(kind) else { return Err(Refused) };
        let name = object_name(&obj, kind)?;
        let (doc, location) = normalize_workload(&obj, kind, template_at, image)?;
        out.push(Workload { doc, name, line, location });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Facts: `secmon.compliance.facts.lookup / elements` and `conditions.coerce`.

fn lookup<'a>(doc: &'a Value, path: &[String]) -> Option<&'a Value> {
    if path.len() == 1 && path[0] == "item" && !doc.is_map() {
        return Some(doc).filter(|v| !matches!(v, Value::Null));
    }
    let mut node = doc;
    for key in path {
        node = node.get_present(key)?;
    }
    Some(node)
}

fn format_path(path: &[String]) -> String {
    path.iter().map(|p| if p.contains('.') { format!("\"{p}\"") } else { p.clone() }).collect::<Vec<_>>().join(".")
}

/// `elements`: a list's items, a mapping's `{key, value}` pairs, a scalar as itself. Items are
/// borrowed: copying every container per scope cost as much as parsing (measured).
fn elements<'a>(doc: &'a Value, scope: &[String], parent_path: &str) -> Vec<(Cow<'a, Value>, String)> {
    let prefix = if parent_path.is_empty() { format_path(scope) } else { format!("{parent_path}.{}", format_path(scope)) };
    match lookup(doc, scope) {
        None => Vec::new(),
        Some(Value::Seq(items)) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let at = match item.get("__path") {
                    Some(Value::Str(p)) => p.clone(),
                    _ => format!("{prefix}[{i}]"),
                };
                (Cow::Borrowed(item), at)
            })
            .collect(),
        Some(Value::Map(entries)) => entries
            .iter()
            .map(|(k, v)| {
                let pair = Value::Map(vec![("key".into(), Value::Str(k.clone())), ("value".into(), v.clone())]);
                (Cow::Owned(pair), format!("{prefix}.{k}"))
            })
            .collect(),
        Some(scalar) => vec![(Cow::Borrowed(scalar), prefix)],
    }
}

/// `coerce(raw, "str")` for the values whose Python spelling is produced exactly here.
fn as_text(value: &Value) -> Accept<Option<String>> {
    Ok(match value {
        Value::Null => None,
        Value::Bool(b) => Some(if *b { "true" } else { "false" }.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 2f64.powi(53) => Some(format!("{}", *f as i64)),
        Value::Str(s) => Some(s.clone()),
        Value::Seq(_) | Value::Map(_) => {
            // A presence test (`hostPath: exists`) reads an object as text: Python spells it with
            // json.dumps(sort_keys=True), and so does the evidence.
            let mut out = String::new();
            write_json(value, &mut out)?;
            Some(out)
        }
        Value::Float(_) => return Err(Refused), // repr() of fractions
    })
}

/// `json.dumps(value, sort_keys=True)`: ", " and ": " separators, ASCII-only escapes.
fn write_json(value: &Value, out: &mut String) -> Accept<()> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Int(i) => out.push_str(&i.to_string()),
        // repr() of an integral float below 1e16 is "N.0"; other floats are left to Python.
        Value::Float(f) if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e16 => out.push_str(&format!("{}.0", *f as i64)),
        Value::Float(_) => return Err(Refused),
        Value::Str(s) => write_json_string(s, out),
        Value::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json(item, out)?;
            }
            out.push(']');
        }
        Value::Map(entries) => {
            let mut sorted: Vec<&(String, Value)> = entries.iter().collect();
            sorted.sort_by(|a, b| a.0.cmp(&b.0)); // UTF-8 byte order is code point order
            out.push('{');
            for (i, (k, v)) in sorted.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_json_string(k, out);
                out.push_str(": ");
                write_json(v, out)?;
            }
            out.push('}');
        }
    }
    Ok(())
}

fn write_json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if !(' '..='~').contains(&c) => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{:04x}", unit));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

fn as_number(value: &Value) -> Accept<Option<f64>> {
    let number = match value {
        Value::Int(i) => *i as f64,
        Value::Float(f) => *f,
        Value::Str(s) => {
            let t = py_strip(s);
            if !t.is_ascii() {
                return Err(Refused); // Python's \d and float() accept other scripts' digits
            }
            if !is_python_number(t) {
                return Ok(None);
            }
            t.parse::<f64>().map_err(|_| Refused)?
        }
        _ => return Ok(None),
    };
    Ok(number.is_finite().then_some(number))
}

/// `_NUMBER.fullmatch`: `[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?` over ASCII.
fn is_python_number(t: &str) -> bool {
    let b = t.as_bytes();
    let mut i = usize::from(matches!(b.first(), Some(b'+' | b'-')));
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let int_digits = digits(&mut i);
    if int_digits > 0 {
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    } else {
        if i >= b.len() || b[i] != b'.' {
            return false;
        }
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Str(s) => match py_strip(s).to_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn as_list(value: &Value) -> Accept<Option<Vec<String>>> {
    Ok(Some(match value {
        Value::Null => return Ok(None),
        Value::Str(s) => s.split(',').map(py_strip).filter(|p| !p.is_empty()).map(str::to_string).collect(),
        Value::Seq(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items {
                if let Some(text) = as_text(item)? {
                    out.push(text);
                }
            }
            out
        }
        Value::Map(entries) => entries.iter().map(|(k, _)| k.clone()).collect(),
        scalar => as_text(scalar)?.into_iter().collect(),
    }))
}

struct ColumnBuilder {
    column: Column,
}

impl ColumnBuilder {
    fn new(dtype: DType) -> Self {
        let column = match dtype {
            DType::Bool => Column::Bool(Vec::new()),
            DType::Num => Column::Num(Vec::new()),
            DType::Int => Column::Int(Vec::new()),
            DType::Str => Column::Str(Vec::new()),
            DType::StrList => Column::StrList { values: Vec::new(), lengths: Vec::new() },
        };
        ColumnBuilder { column }
    }

    fn push(&mut self, raw: Option<&Value>) -> Accept<()> {
        let raw = raw.filter(|v| !matches!(v, Value::Null));
        match &mut self.column {
            Column::Bool(v) => v.push(raw.and_then(as_bool)),
            Column::Num(v) => v.push(match raw {
                None | Some(Value::Bool(_)) => None,
                Some(x) => as_number(x)?,
            }),
            Column::Int(v) => v.push(match raw {
                None | Some(Value::Bool(_)) => None,
                // Python compares the exact integer with 2**62, not its float.
                Some(Value::Int(i)) => Some(*i).filter(|i| i.unsigned_abs() < 1 << 62),
                Some(x) => as_number(x)?.filter(|n| n.fract() == 0.0 && n.abs() < 2f64.powi(62)).map(|n| n as i64),
            }),
            Column::Str(v) => v.push(match raw {
                None => None,
                Some(x) => as_text(x)?,
            }),
            Column::StrList { values, lengths } => match raw.map(as_list).transpose()?.flatten() {
                None => lengths.push(-1),
                Some(items) => {
                    lengths.push(items.len() as i64);
                    values.extend(items);
                }
            },
        }
        Ok(())
    }
}

/// Fact rows of one scope for `docs` (with their paths and parent rows), recursively.
fn scope_columns<V: std::ops::Deref<Target = Value>>(docs: &[(V, String)], parents: Vec<i64>, spec: &ScopeSpec) -> Accept<ScopeColumns> {
    let mut columns = Vec::with_capacity(spec.fields.len());
    for (path, dtype) in &spec.fields {
        let mut builder = ColumnBuilder::new(*dtype);
        for (doc, _) in docs {
            builder.push(lookup(doc, path))?;
        }
        columns.push(builder.column);
    }
    let mut children = Vec::with_capacity(spec.scopes.len());
    for (scope, child_spec) in &spec.scopes {
        let mut child_docs = Vec::new();
        let mut child_parents = Vec::new();
        for (row, (doc, at)) in docs.iter().enumerate() {
            for item in elements(doc, scope, at) {
                child_docs.push(item);
                child_parents.push(row as i64);
            }
        }
        children.push(scope_columns(&child_docs, child_parents, child_spec)?);
    }
    Ok(ScopeColumns { columns, parents, paths: docs.iter().map(|(_, p)| p.clone()).collect(), children })
}

/// Rows of `part` after those of `into`; `parent_offset` is how many rows the parent level had
/// before its own part was appended (the part's parent indexes are local to it).
fn append(into: &mut ScopeColumns, part: ScopeColumns, parent_offset: i64) {
    let offset = into.paths.len() as i64;
    into.parents.extend(part.parents.into_iter().map(|p| p + parent_offset));
    into.paths.extend(part.paths);
    for (dst, src) in into.columns.iter_mut().zip(part.columns) {
        match (dst, src) {
            (Column::Bool(a), Column::Bool(b)) => a.extend(b),
            (Column::Num(a), Column::Num(b)) => a.extend(b),
            (Column::Int(a), Column::Int(b)) => a.extend(b),
            (Column::Str(a), Column::Str(b)) => a.extend(b),
            (Column::StrList { values: a, lengths: la }, Column::StrList { values: b, lengths: lb }) => {
                a.extend(b);
                la.extend(lb);
            }
            _ => unreachable!("columns of one spec have one type"),
        }
    }
    for (dst, src) in into.children.iter_mut().zip(part.children) {
        append(dst, src, offset);
    }
}

fn empty_columns(spec: &ScopeSpec) -> ScopeColumns {
    ScopeColumns {
        columns: spec.fields.iter().map(|(_, d)| ColumnBuilder::new(*d).column).collect(),
        parents: Vec::new(),
        paths: Vec::new(),
        children: spec.scopes.iter().map(|(_, s)| empty_columns(s)).collect(),
    }
}

type FileRows = (Vec<Workload>, ScopeColumns);

fn file_rows(raw: &[u8], spec: &ScopeSpec, yaml11: &Regex, image: &Regex) -> Accept<FileRows> {
    let text = std::str::from_utf8(raw).map_err(|_| Refused)?;
    let mut workloads = file_workloads(text, yaml11, image)?;
    let docs: Vec<(Cow<Value>, String)> = workloads.iter_mut().map(|w| (Cow::Owned(std::mem::replace(&mut w.doc, Value::Null)), String::new())).collect();
    let columns = scope_columns(&docs, Vec::new(), spec)?;
    Ok((workloads, columns))
}

/// Read, parse, normalize and extract every file in parallel; files it refuses come back in
/// [`Batch::fallback`]. Rows are in input order, objects in file order.
pub fn workload_facts(files: &[Vec<u8>], spec: &ScopeSpec) -> Batch {
    let yaml11 = yaml11_scalar();
    let image = image_pattern();
    let per_file: Vec<Accept<FileRows>> = files
        .par_iter()
        .map(|path| {
            use std::os::unix::ffi::OsStrExt;
            let raw = std::fs::read(std::path::Path::new(std::ffi::OsStr::from_bytes(path))).map_err(|_| Refused)?;
            file_rows(&raw, spec, &yaml11, &image)
        })
        .collect();
    let mut batch = Batch {
        facts: empty_columns(spec),
        file_index: Vec::new(),
        names: Vec::new(),
        lines: Vec::new(),
        locations: Vec::new(),
        fallback: Vec::new(),
    };
    for (index, result) in per_file.into_iter().enumerate() {
        match result {
            Err(Refused) => batch.fallback.push(index as u32),
            Ok((workloads, columns)) => {
                append(&mut batch.facts, columns, 0);
                for w in workloads {
                    batch.file_index.push(index as u32);
                    batch.names.push(w.name);
                    batch.lines.push(w.line);
                    batch.locations.push(w.location);
                }
            }
        }
    }
    batch
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(text: &str) -> Accept<Vec<Workload>> {
        file_workloads(text, &yaml11_scalar(), &image_pattern())
    }

    #[test]
    fn plain_scalars_resolve_like_both_readers_or_refuse() {
        for (text, expected) in [
            ("5", Some(Value::Int(5))),
            ("-5", Some(Value::Int(-5))),
            ("1.5", Some(Value::Float(1.5))),
            ("true", Some(Value::Bool(true))),
            ("~", Some(Value::Null)),
            ("nginx:1.25", Some(Value::Str("nginx:1.25".into()))),
            ("500m", Some(Value::Str("500m".into()))),
            ("10.0.0.1", Some(Value::Str("10.0.0.1".into()))),
            ("0x1F", None),
            ("1_000", None),
            ("+1", None),
            ("0o17", None),
            ("99999999999999999999", None),
        ] {
            assert_eq!(resolve_plain(text).ok(), expected, "{text}");
        }
    }

    #[test]
    fn yaml11_booleans_and_json_and_helm_are_refused() {
        assert!(facts("kind: Pod\nspec:\n  hostNetwork: yes\n").is_err());
        assert!(facts("{\"kind\": \"Pod\"}").is_err());
        assert!(facts("kind: Pod\nmetadata:\n  name: {{ .x }}\n").is_err());
        assert!(facts("kind: Role\n").is_err());
        assert!(facts("a: &x 1\nb: *x\n").is_err());
        assert!(facts("kind: Pod\nkind: Pod\n").is_err());
    }

    #[test]
    fn multi_document_lines_and_names() {
        let w = facts("# c\n---\nkind: Pod\nmetadata: {name: a, namespace: prod}\n---\n---\nkind: Job\nmetadata:\n  name: j\n").unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!((w[0].name.as_str(), w[0].line, w[0].location.as_str()), ("Pod/prod/a", 3, "spec"));
        assert_eq!((w[1].name.as_str(), w[1].line, w[1].location.as_str()), ("Job/j", 7, "spec.template.spec"));
    }

    #[test]
    fn containers_get_effective_values_caps_and_image() {
        let w = facts(
            "kind: Pod\nspec:\n  securityContext: {runAsUser: 1000}\n  containers:\n  - name: c\n    image: reg:5000/app\n    securityContext:\n      capabilities: {add: [cap_sys_admin]}\n",
        )
        .unwrap();
        let c = &w[0].doc.get("containers").unwrap();
        let Value::Seq(items) = c else { panic!() };
        assert_eq!(dig(&items[0], &["effective", "runAsUser"]), Some(&Value::Int(1000)));
        assert_eq!(dig(&items[0], &["caps", "add"]), Some(&Value::Seq(vec![Value::Str("SYS_ADMIN".into())])));
        assert_eq!(dig(&items[0], &["image_ref", "name"]), Some(&Value::Str("reg:5000/app".into())));
        assert_eq!(dig(&items[0], &["image_ref", "tag"]), Some(&Value::Null));
        assert_eq!(items[0].get("__path"), Some(&Value::Str("spec.containers[0]".into())));
    }

    #[test]
    fn child_rows_of_later_files_point_at_their_own_parents() {
        let spec = ScopeSpec { fields: vec![], scopes: vec![(vec!["containers".into()], ScopeSpec::default())] };
        let dir = std::env::temp_dir().join(format!("secmon-compliance-append-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let mut files = Vec::new();
        for (i, n) in [1, 2, 1].iter().enumerate() {
            let containers: String = (0..*n).map(|j| format!("  - name: c{j}\n")).collect();
            let path = dir.join(format!("{i}.yaml"));
            std::fs::write(&path, format!("kind: Pod\nspec:\n  containers:\n{containers}")).unwrap();
            files.push(path.to_str().unwrap().as_bytes().to_vec());
        }
        let batch = workload_facts(&files, &spec);
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(batch.fallback.is_empty());
        assert_eq!(batch.facts.children[0].parents, vec![0, 1, 1, 2]);
    }

    #[test]
    fn public_types_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Batch>();
        check::<ScopeSpec>();
        check::<Value>();
    }

    #[test]
    fn python_number_syntax() {
        for (t, ok) in [("1", true), ("1.", true), (".5", true), ("-1e5", true), ("1e", false), ("e5", false), (".", false), ("", false)] {
            assert_eq!(is_python_number(t), ok, "{t}");
        }
    }

    #[test]
    fn objects_read_as_text_are_spelled_like_json_dumps() {
        let v = Value::Map(vec![
            ("path".into(), Value::Str("/var/run/docker.sock".into())),
            ("b".into(), Value::Seq(vec![Value::Int(1), Value::Null, Value::Bool(true), Value::Float(2.0)])),
            ("a\"é".into(), Value::Str("tab\there \u{1F600}\u{7f}".into())),
        ]);
        assert_eq!(
            as_text(&v).unwrap().unwrap(),
            r#"{"a\"\u00e9": "tab\there \ud83d\ude00\u007f", "b": [1, null, true, 2.0], "path": "/var/run/docker.sock"}"#
        );
    }

    #[test]
    fn control_plane_static_pods_are_refused() {
        assert!(facts("kind: Pod\nspec:\n  containers:\n  - name: a\n    command: [/usr/local/bin/kube-apiserver, --x=1]\n").is_err());
    }
}
