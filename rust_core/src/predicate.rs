//! Rule queries evaluated natively over extracted event-table columns: one flag per (rule,
//! query) for every row, without building a Polars expression per flag.
//!
//! The programs come from `secmon/query/native.py`, which lowers a query AST the way
//! `secmon/query/polars_expr.py` compiles it, node for node: the same string operations
//! (equality, prefix, suffix, substring, Aho-Corasick, Rust regex), the same number rule, the
//! same "any item of a list" and "null is false" semantics. The Polars expressions stay the twin:
//! `tests/query/test_query_compile.py` compares both on random queries and events.
//!
//! Why: the Polars flag query of a 53-rule pack was most of a scan's main-thread time (each of
//! ~70 flags is its own expression over every row, although a row of one log source can only
//! match that source's rules). Here a row is one pass over the predicates, `And` stops at the
//! first false child (the source term comes first), and rows are split over threads.

use std::collections::BTreeMap;
use std::sync::Arc;

use aho_corasick::AhoCorasick;
use memchr::memmem;
use rayon::prelude::*;
use regex::bytes::Regex;
use rustc_hash::{FxHashMap, FxHashSet};

use crate::cidr::{parse_addr_bytes, IpTable};
use crate::error::{CoreError, Result};
use crate::extract::{Column, ColumnValues, Extracted};

/// The values of an `In` test (Fx hashing: keys are short strings, the set is built by us).
pub type ValueSet = FxHashSet<Box<[u8]>>;

/// A test of one value (one item of a list column).
#[derive(Debug, Clone)]
pub enum Test {
    Exists,
    Eq(Box<[u8]>),
    In(ValueSet),
    Prefix(Box<[u8]>),
    Suffix(Box<[u8]>),
    Contains(memmem::Finder<'static>),
    /// Starts with the first, ends with the second, and they do not overlap.
    PrefixSuffix(Box<[u8]>, Box<[u8]>),
    ContainsAny(AnyOf),
    Regex(Regex),
    /// Written as a number (`query.ast.NUMBER_PATTERN`) and within the bounds ((bound, inclusive)).
    Number { low: Option<(f64, bool)>, high: Option<(f64, bool)> },
    /// The test over the value in lower case (Unicode, as `str.to_lowercase`).
    Lower(Box<Test>),
    /// For `key:value` tags: the test over what follows the prefix; false without the prefix.
    StripPrefix(Box<[u8]>, Box<Test>),
    /// An address inside the set (IPv4 CIDR terms: values holding ':' are false).
    InIpSet { table: Arc<IpTable>, skip_colon: bool },
}

/// The needles of a [`Test::ContainsAny`], sorted, each once.
type Needles = Arc<[Box<[u8]>]>;

/// Substrings for [`Test::ContainsAny`]: the automaton, and the needles (sorted, each once) by
/// which equal tests are recognised and fused (see [`Fused`]).
#[derive(Debug, Clone)]
pub struct AnyOf {
    automaton: AhoCorasick,
    needles: Needles,
}

/// One substring automaton over the needles of every `ContainsAny` test of one column: a row's
/// value is scanned once (every match reported) and each test reads its bit, where each test
/// scanned the value again (the web rules test `http.url` for five needle sets).
#[derive(Debug)]
struct Fused {
    column: String,
    automaton: AhoCorasick,
    /// Per pattern of `automaton`: the bits of the needle sets holding it.
    sets_of: Vec<u64>,
    /// The needle sets, by bit.
    sets: Vec<Needles>,
}

/// A boolean over one row.
#[derive(Debug, Clone)]
pub enum Pred {
    Const(bool),
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Not(Box<Pred>),
    /// Some item of the column passes the test (a null row passes nothing).
    Any { column: String, test: Test },
    /// The column's first item is an address in the set (threat intel: `list.first()`).
    FirstInIpSet { column: String, table: Arc<IpTable> },
}

/// Named predicates: the flag columns of a rule set.
#[derive(Debug)]
pub struct FlagProgram {
    pub flags: Vec<(String, Pred)>,
    /// What the dispatch evaluates: (flag, its predicate without the gates the path to it
    /// decided). A flag appears once per dispatch node that lists it.
    programs: Vec<(usize, Pred)>,
    dispatch: Dispatch,
    /// The columns the dispatch tree splits on.
    gate_columns: Vec<String>,
    fused: Vec<Fused>,
}

/// Which flags a row can set: a decision tree over the exact-value gates of the flags. Most rules
/// are gated on their log source (`source:sshd ...`), and most CloudTrail rules then on the event
/// name; a row evaluating every other source's and event's rules was most of the cost (measured
/// on the default pack: 68 flags, 1.5 µs a row without the tree).
///
/// A flag reached through a value's branch does not test that gate again: the gate conjunct the
/// split was made on is dropped from its program there (the row's single value is one the gate
/// accepts). Rows whose gate value is a list (or a batch without the column) take `all`, where
/// the programs keep that gate.
#[derive(Debug, Default)]
struct Dispatch {
    /// Programs evaluated on every row that reaches this node.
    ungated: Vec<usize>,
    split: Option<Split>,
}

/// Flags gated on one column, by the values their gate accepts.
#[derive(Debug)]
struct Split {
    /// Index into [`FlagProgram::gate_columns`].
    column: usize,
    by_value: ByValue,
    /// Every program below this split, once, with this split's gate kept: for rows whose value
    /// is a list (any item may match).
    all: Vec<usize>,
}

/// The branches of a split by value: searched in order when there are few (a log source split
/// has a handful; hashing the row's value cost more than comparing it), else hashed.
#[derive(Debug)]
enum ByValue {
    Few(Vec<(Box<[u8]>, Dispatch)>),
    Many(FxHashMap<Box<[u8]>, Dispatch>),
}

/// Up to this many branches are compared one by one.
const FEW_VALUES: usize = 8;

impl ByValue {
    fn new(mut branches: Vec<(Box<[u8]>, Dispatch)>) -> ByValue {
        if branches.len() <= FEW_VALUES {
            // Deterministic order (the map's is not); values are distinct.
            branches.sort_by(|a, b| a.0.cmp(&b.0));
            ByValue::Few(branches)
        } else {
            ByValue::Many(branches.into_iter().collect())
        }
    }

    #[inline]
    fn get(&self, value: &[u8]) -> Option<&Dispatch> {
        match self {
            ByValue::Few(branches) => branches.iter().find(|(v, _)| same_bytes(v, value)).map(|(_, d)| d),
            ByValue::Many(map) => map.get(value),
        }
    }
}

/// A split is made when at least this many flags share a gate column.
const MIN_SPLIT: usize = 2;

/// One evaluated flag: a bit per row, Arrow's boolean layout (LSB first).
#[derive(Debug)]
pub struct Flag {
    pub name: String,
    pub bits: Vec<u8>,
}

impl Flag {
    /// Whether the flag is set for row `row`.
    pub fn is_set(&self, row: usize) -> bool {
        self.bits[row / 8] & (1 << (row % 8)) != 0
    }
}

/// A predicate with its columns resolved to the batch's columns (None: the batch lacks it).
enum Bound<'a> {
    Const(bool),
    And(Vec<Bound<'a>>),
    Or(Vec<Bound<'a>>),
    Not(Box<Bound<'a>>),
    Any(&'a Column, &'a Test),
    /// A `ContainsAny` test answered by fused automaton `.1`, bit `.2` (`.3` for list items).
    AnyOf(&'a Column, usize, u64, &'a Test),
    FirstInIpSet(&'a Column, &'a IpTable),
}

/// Rows per parallel task: a multiple of 8, so that every task fills whole bytes of the bitmaps.
const ROWS_PER_TASK: usize = 4096;

/// The exact values `pred` requires `column`'s single value to take, when it is false for any
/// other value (a conjunct `column:value` or `column:(a OR b)`); None when it has no such gate.
fn gate_values<'p>(pred: &'p Pred, column: &str) -> Option<Vec<&'p [u8]>> {
    match pred {
        Pred::Any { column: c, test: Test::Eq(v) } if c == column => Some(vec![&v[..]]),
        Pred::Any { column: c, test: Test::In(set) } if c == column => Some(set.iter().map(|v| &v[..]).collect()),
        Pred::And(children) => children.iter().find_map(|c| gate_values(c, column)),
        _ => None,
    }
}

/// The columns `pred` is gated on (see [`gate_values`]).
fn gate_columns(pred: &Pred) -> Vec<&str> {
    match pred {
        Pred::Any { column, test: Test::Eq(_) | Test::In(_) } => vec![column.as_str()],
        Pred::And(children) => children.iter().flat_map(gate_columns).collect(),
        _ => Vec::new(),
    }
}

/// `pred` without the conjunct [`gate_values`] finds for `column` (that conjunct is true).
fn strip_gate(pred: &Pred, column: &str) -> Pred {
    match pred {
        Pred::Any { column: c, test: Test::Eq(_) | Test::In(_) } if c == column => Pred::Const(true),
        Pred::And(children) => {
            let at = children.iter().position(|c| gate_values(c, column).is_some()).expect("a gated predicate");
            let mut rest: Vec<Pred> = Vec::with_capacity(children.len());
            for (k, child) in children.iter().enumerate() {
                match if k == at { strip_gate(child, column) } else { child.clone() } {
                    Pred::Const(true) => {}
                    kept => rest.push(kept),
                }
            }
            match rest.len() {
                0 => Pred::Const(true),
                1 => rest.pop().unwrap(),
                _ => Pred::And(rest),
            }
        }
        _ => unreachable!("strip_gate on a predicate without a gate on {column}"),
    }
}

/// Programs registered while the dispatch tree is built.
struct Programs(Vec<(usize, Pred)>);

impl Programs {
    fn add(&mut self, flag: usize, pred: Pred) -> usize {
        self.0.push((flag, pred));
        self.0.len() - 1
    }
}

impl Dispatch {
    /// No gate: every flag on every row (the obvious twin the tests compare with).
    #[cfg(test)]
    fn every_flag(flags: &[(String, Pred)]) -> (Dispatch, Vec<(usize, Pred)>) {
        let programs: Vec<(usize, Pred)> = flags.iter().enumerate().map(|(f, (_, p))| (f, p.clone())).collect();
        (Dispatch { ungated: (0..flags.len()).collect(), split: None }, programs)
    }

    /// The tree for `subset` ((flag, predicate left to test) pairs), splitting on the gate column
    /// most of them share (not one an ancestor split on), while at least [`MIN_SPLIT`] do.
    fn build(subset: Vec<(usize, Pred)>, used: &mut Vec<String>, columns: &mut Vec<String>, programs: &mut Programs) -> Dispatch {
        let mut counts: BTreeMap<String, usize> = BTreeMap::new();
        for (_, pred) in &subset {
            let mut gated = gate_columns(pred);
            gated.sort_unstable();
            gated.dedup();
            for c in gated.into_iter().filter(|c| !used.iter().any(|u| u == c)) {
                *counts.entry(c.to_string()).or_default() += 1;
            }
        }
        // Ties go to the first name, so the tree does not depend on hashing.
        let best = counts.into_iter().filter(|&(_, n)| n >= MIN_SPLIT).max_by(|a, b| a.1.cmp(&b.1).then(b.0.cmp(&a.0)));
        let Some((column, _)) = best else {
            let ungated = subset.into_iter().map(|(f, pred)| programs.add(f, pred)).collect();
            return Dispatch { ungated, split: None };
        };
        let mut ungated = Vec::new();
        let mut by_value: FxHashMap<Box<[u8]>, Vec<(usize, Pred)>> = FxHashMap::default();
        let mut all = Vec::new();
        for (f, pred) in subset {
            let values: Option<Vec<Box<[u8]>>> = gate_values(&pred, &column).map(|vs| vs.into_iter().map(Box::from).collect());
            match values {
                Some(values) => {
                    let stripped = strip_gate(&pred, &column);
                    for v in values {
                        let list = by_value.entry(v).or_default();
                        if list.last().map(|(g, _)| *g) != Some(f) {
                            list.push((f, stripped.clone()));
                        }
                    }
                    all.push(programs.add(f, pred));
                }
                None => ungated.push(programs.add(f, pred)),
            }
        }
        let index = columns.iter().position(|c| *c == column).unwrap_or_else(|| {
            columns.push(column.clone());
            columns.len() - 1
        });
        used.push(column);
        let by_value = ByValue::new(by_value.into_iter().map(|(v, sub)| (v, Dispatch::build(sub, used, columns, programs))).collect());
        used.pop();
        Dispatch { ungated, split: Some(Split { column: index, by_value, all }) }
    }

    /// Calls `visit` with every program row `row` evaluates.
    fn visit(&self, row: usize, gates: &[Option<&Column>], visit: &mut impl FnMut(usize)) {
        self.ungated.iter().for_each(|&p| visit(p));
        let Some(split) = &self.split else { return };
        match gates[split.column].map(|c| items(c, row)) {
            Some(None) => {} // null: no gated flag holds
            Some(Some(Items::One(value))) => {
                if let Some(next) = split.by_value.get(value) {
                    next.visit(row, gates, visit);
                }
            }
            // A list (any item may pass a gate) or a column the batch lacks: every flag below.
            Some(Some(Items::List(..))) | None => split.all.iter().for_each(|&p| visit(p)),
        }
    }
}

impl FlagProgram {
    pub fn new(flags: Vec<(String, Pred)>) -> FlagProgram {
        let mut gate_columns = Vec::new();
        let mut programs = Programs(Vec::new());
        let subset = flags.iter().enumerate().map(|(f, (_, p))| (f, p.clone())).collect();
        let dispatch = Dispatch::build(subset, &mut Vec::new(), &mut gate_columns, &mut programs);
        let fused = Fused::plan(&programs.0);
        FlagProgram { flags, programs: programs.0, dispatch, gate_columns, fused }
    }

    /// Every flag over every row of `batch`.
    pub fn evaluate(&self, batch: &Extracted) -> Vec<Flag> {
        let rows = batch.lines.len();
        let find = |name: &str| batch.columns.iter().find(|c| c.name == name);
        let bound: Vec<(usize, Bound<'_>)> = self.programs.iter().map(|(f, p)| (*f, bind(p, &batch.columns, &self.fused))).collect();
        let gates: Vec<Option<&Column>> = self.gate_columns.iter().map(|name| find(name)).collect();
        let starts: Vec<usize> = (0..rows).step_by(ROWS_PER_TASK).collect();
        let parts: Vec<Vec<Vec<u8>>> = starts
            .par_iter()
            .map(|&start| {
                let end = (start + ROWS_PER_TASK).min(rows);
                let mut ctx = Context { scratch: Vec::new(), fused: &self.fused, masks: vec![(usize::MAX, 0); self.fused.len()] };
                let mut bits = vec![vec![0u8; (end - start).div_ceil(8)]; self.flags.len()];
                for row in start..end {
                    let k = row - start;
                    self.dispatch.visit(row, &gates, &mut |p| {
                        let (f, program) = &bound[p];
                        if program.holds(row, &mut ctx) {
                            bits[*f][k / 8] |= 1 << (k % 8);
                        }
                    });
                }
                bits
            })
            .collect();
        self.flags
            .iter()
            .enumerate()
            .map(|(f, (name, _))| Flag { name: name.clone(), bits: parts.iter().flat_map(|p| p[f].iter().copied()).collect() })
            .collect()
    }
}

/// An `and` (`unit` true) or an `or` (`unit` false) of `children` bound: children that are
/// `unit` drop out, one that is the other constant decides it, and one child left stands alone.
fn bind_all<'a>(
    children: &'a [Pred],
    columns: &'a [Column],
    fused: &[Fused],
    unit: bool,
    make: fn(Vec<Bound<'a>>) -> Bound<'a>,
) -> Bound<'a> {
    let mut kept = Vec::with_capacity(children.len());
    for child in children {
        match bind(child, columns, fused) {
            Bound::Const(b) if b == unit => {}
            Bound::Const(b) => return Bound::Const(b),
            b => kept.push(b),
        }
    }
    match kept.len() {
        0 => Bound::Const(unit),
        1 => kept.pop().unwrap(),
        _ => make(kept),
    }
}

/// `pred` over the batch's columns, with what the batch decides folded in: a column the batch
/// lacks, or whose rows are all null, passes no test.
fn bind<'a>(pred: &'a Pred, columns: &'a [Column], fused: &[Fused]) -> Bound<'a> {
    let find = |name: &str| columns.iter().find(|c| c.name == name).filter(|c| c.null_count < c.rows);
    match pred {
        Pred::Const(b) => Bound::Const(*b),
        Pred::And(children) => bind_all(children, columns, fused, true, Bound::And),
        Pred::Or(children) => bind_all(children, columns, fused, false, Bound::Or),
        Pred::Not(child) => match bind(child, columns, fused) {
            Bound::Const(b) => Bound::Const(!b),
            b => Bound::Not(Box::new(b)),
        },
        Pred::Any { column, test } => match find(column) {
            None => Bound::Const(false),
            Some(c) => match test {
                Test::ContainsAny(any_of) => match Fused::find(fused, column, &any_of.needles) {
                    Some((k, bit)) => Bound::AnyOf(c, k, bit, test),
                    None => Bound::Any(c, test),
                },
                _ => Bound::Any(c, test),
            },
        },
        Pred::FirstInIpSet { column, table } => find(column).map_or(Bound::Const(false), |c| Bound::FirstInIpSet(c, table)),
    }
}

impl Bound<'_> {
    fn holds(&self, row: usize, ctx: &mut Context<'_>) -> bool {
        match self {
            Bound::Const(b) => *b,
            Bound::And(children) => children.iter().all(|c| c.holds(row, ctx)),
            Bound::Or(children) => children.iter().any(|c| c.holds(row, ctx)),
            Bound::Not(child) => !child.holds(row, ctx),
            Bound::Any(column, test) => match items(column, row) {
                None => false,
                Some(Items::One(value)) => test.passes(value, &mut ctx.scratch),
                Some(Items::List(values, range)) => range.into_iter().any(|k| test.passes(values.bytes(k), &mut ctx.scratch)),
            },
            Bound::AnyOf(column, k, bit, test) => match items(column, row) {
                None => false,
                Some(Items::One(value)) => ctx.fused_mask(*k, row, value) & bit != 0,
                Some(Items::List(values, range)) => range.into_iter().any(|i| test.passes(values.bytes(i), &mut ctx.scratch)),
            },
            Bound::FirstInIpSet(column, table) => {
                let first = match items(column, row) {
                    None => None,
                    Some(Items::One(value)) => Some(value),
                    Some(Items::List(values, range)) => (!range.is_empty()).then(|| values.bytes(range.start)),
                };
                first.and_then(parse_addr_bytes).is_some_and(|addr| table.lookup(addr) >= 0)
            }
        }
    }
}

/// What one task's evaluation keeps between tests: a buffer for lower-casing, and the fused
/// automata's answers for the current row.
struct Context<'a> {
    scratch: Vec<u8>,
    fused: &'a [Fused],
    /// Per fused automaton: (row, mask of the needle sets found in its value).
    masks: Vec<(usize, u64)>,
}

impl Context<'_> {
    fn fused_mask(&mut self, k: usize, row: usize, value: &[u8]) -> u64 {
        let (at, mask) = self.masks[k];
        if at == row {
            return mask;
        }
        let fused = &self.fused[k];
        let all = if fused.sets.len() == 64 { u64::MAX } else { (1u64 << fused.sets.len()) - 1 };
        let mut mask = 0u64;
        for m in fused.automaton.find_overlapping_iter(value) {
            mask |= fused.sets_of[m.pattern().as_usize()];
            if mask == all {
                break;
            }
        }
        self.masks[k] = (row, mask);
        mask
    }
}

impl Fused {
    /// One automaton per column tested by `ContainsAny` more than once (in any programs), over
    /// at most 64 distinct needle sets.
    fn plan(programs: &[(usize, Pred)]) -> Vec<Fused> {
        fn leaves<'p>(pred: &'p Pred, out: &mut Vec<(&'p str, &'p Needles)>) {
            match pred {
                Pred::And(children) | Pred::Or(children) => children.iter().for_each(|c| leaves(c, out)),
                Pred::Not(child) => leaves(child, out),
                Pred::Any { column, test: Test::ContainsAny(any_of) } => out.push((column, &any_of.needles)),
                _ => {}
            }
        }
        let mut found = Vec::new();
        programs.iter().for_each(|(_, p)| leaves(p, &mut found));
        let mut by_column: BTreeMap<&str, (usize, Vec<Needles>)> = BTreeMap::new();
        for (column, needles) in found {
            let (uses, sets) = by_column.entry(column).or_default();
            *uses += 1;
            if !sets.iter().any(|s| s == needles) {
                sets.push(Arc::clone(needles));
            }
        }
        let mut out = Vec::new();
        for (column, (uses, sets)) in by_column {
            if uses < 2 || sets.len() > 64 {
                continue;
            }
            let mut patterns: Vec<&[u8]> = Vec::new();
            let mut sets_of: Vec<u64> = Vec::new();
            for (bit, set) in sets.iter().enumerate() {
                for needle in set.iter() {
                    match patterns.iter().position(|p| *p == &needle[..]) {
                        Some(i) => sets_of[i] |= 1 << bit,
                        None => {
                            patterns.push(needle);
                            sets_of.push(1 << bit);
                        }
                    }
                }
            }
            // Standard semantics: the overlapping search reports every occurrence of every needle.
            let Ok(automaton) = AhoCorasick::new(&patterns) else { continue };
            out.push(Fused { column: column.to_string(), automaton, sets_of, sets });
        }
        out
    }

    /// (automaton, bit) answering `column`'s test for `needles`.
    fn find(fused: &[Fused], column: &str, needles: &Needles) -> Option<(usize, u64)> {
        let k = fused.iter().position(|f| f.column == column)?;
        let bit = fused[k].sets.iter().position(|s| s == needles)?;
        Some((k, 1 << bit))
    }
}

enum Items<'a> {
    One(&'a [u8]),
    List(&'a crate::extract::Strings, std::ops::Range<usize>),
}

#[inline(always)]
fn items(column: &Column, row: usize) -> Option<Items<'_>> {
    if !column.is_valid(row) {
        return None;
    }
    Some(match &column.values {
        ColumnValues::Scalar(strings) => Items::One(strings.bytes(row)),
        ColumnValues::List { list_offsets, items } => {
            Items::List(items, list_offsets[row] as usize..list_offsets[row + 1] as usize)
        }
    })
}

impl Test {
    fn passes(&self, value: &[u8], scratch: &mut Vec<u8>) -> bool {
        match self {
            Test::Exists => true,
            Test::Eq(text) => same_bytes(value, text),
            Test::In(set) => set.contains(value),
            Test::Prefix(text) => value.starts_with(text),
            Test::Suffix(text) => value.ends_with(text),
            Test::Contains(finder) => finder.find(value).is_some(),
            Test::PrefixSuffix(head, tail) => {
                value.len() >= head.len() + tail.len() && value.starts_with(head) && value.ends_with(tail)
            }
            Test::ContainsAny(any_of) => any_of.automaton.is_match(value),
            Test::Regex(regex) => regex.is_match(value),
            Test::Number { low, high } => number(value).is_some_and(|x| {
                low.is_none_or(|(b, inclusive)| if inclusive { x >= b } else { x > b })
                    && high.is_none_or(|(b, inclusive)| if inclusive { x <= b } else { x < b })
            }),
            Test::Lower(inner) => {
                if value.is_ascii() {
                    scratch.clear();
                    scratch.extend(value.iter().map(u8::to_ascii_lowercase));
                    inner.passes(scratch, &mut Vec::new())
                } else {
                    // Extracted text is UTF-8 (the extractor validates or repairs every line).
                    let text = std::str::from_utf8(value).expect("extracted text is UTF-8");
                    inner.passes(text.to_lowercase().as_bytes(), &mut Vec::new())
                }
            }
            Test::StripPrefix(prefix, inner) => value.strip_prefix(&prefix[..]).is_some_and(|rest| inner.passes(rest, scratch)),
            Test::InIpSet { table, skip_colon } => {
                !(*skip_colon && value.contains(&b':')) && parse_addr_bytes(value).is_some_and(|a| table.lookup(a) >= 0)
            }
        }
    }
}

/// `a == b` without a `memcmp` call for values of up to 16 bytes (two possibly overlapping
/// words cover them): equality tests on short values (sources, event names, outcomes) are most
/// of the tests a row runs.
#[inline(always)]
fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    let word = |s: &[u8], at: usize| u64::from_le_bytes(s[at..at + 8].try_into().unwrap());
    let half = |s: &[u8], at: usize| u32::from_le_bytes(s[at..at + 4].try_into().unwrap());
    match n {
        0 => true,
        1..=3 => a[0] == b[0] && a[n / 2] == b[n / 2] && a[n - 1] == b[n - 1],
        4..=7 => half(a, 0) == half(b, 0) && half(a, n - 4) == half(b, n - 4),
        8..=16 => word(a, 0) == word(b, 0) && word(a, n - 8) == word(b, n - 8),
        _ => a == b,
    }
}

/// The value as a float when it matches `^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$`, else None.
pub fn number(value: &[u8]) -> Option<f64> {
    let digits = |from: usize| value[from..].iter().take_while(|b| b.is_ascii_digit()).count();
    let mut i = usize::from(value.first() == Some(&b'-'));
    let n = digits(i);
    if n == 0 {
        return None;
    }
    i += n;
    if value.get(i) == Some(&b'.') {
        let n = digits(i + 1);
        if n == 0 {
            return None;
        }
        i += 1 + n;
    }
    if matches!(value.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(value.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        let n = digits(i);
        if n == 0 {
            return None;
        }
        i += n;
    }
    if i != value.len() {
        return None;
    }
    // ASCII digits, signs, '.' and 'e' only: valid UTF-8, and a float Rust parses.
    std::str::from_utf8(value).ok()?.parse().ok()
}

impl Test {
    pub fn contains(needle: &[u8]) -> Test {
        Test::Contains(memmem::Finder::new(needle).into_owned())
    }

    pub fn contains_any(needles: &[Vec<u8>]) -> Result<Test> {
        let automaton = AhoCorasick::new(needles)
            .map_err(|e| CoreError::invalid(format!("cannot build the substring automaton: {e}")))?;
        let mut set: Vec<Box<[u8]>> = needles.iter().map(|n| n.clone().into_boxed_slice()).collect();
        set.sort_unstable();
        set.dedup();
        Ok(Test::ContainsAny(AnyOf { automaton, needles: set.into() }))
    }

    pub fn regex(pattern: &str) -> Result<Test> {
        Regex::new(pattern).map(Test::Regex).map_err(|e| CoreError::invalid(format!("bad regex {pattern:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::extract::{extract_fields, FieldPaths, Threads};
    use crate::test_rng::XorShift;

    fn batch(lines: &str, paths: &[&str]) -> Extracted {
        let paths = FieldPaths::new(paths).unwrap();
        extract_fields(lines.as_bytes(), b'\n', &paths, None, Threads::Exactly(1)).unwrap()
    }

    fn flags(program: Vec<(&str, Pred)>, lines: &str, paths: &[&str]) -> Vec<Vec<bool>> {
        let b = batch(lines, paths);
        let program = FlagProgram::new(program.into_iter().map(|(n, p)| (n.to_string(), p)).collect());
        program
            .evaluate(&b)
            .iter()
            .map(|f| (0..b.lines.len()).map(|r| f.is_set(r)).collect())
            .collect()
    }

    fn any(column: &str, test: Test) -> Pred {
        Pred::Any { column: column.into(), test }
    }

    #[test]
    fn short_equality_agrees_with_slice_equality() {
        let mut rng = XorShift(0x1234_5678_9abc_def1u64);
        let mut next = |n: usize| rng.below(n);
        for _ in 0..100_000 {
            let len = next(24);
            let a: Vec<u8> = (0..len).map(|_| b"ab"[next(2)]).collect();
            let mut b = a.clone();
            match next(3) {
                0 => {}
                1 if len > 0 => b[next(len)] ^= 1,
                _ => b.truncate(next(len + 1)),
            }
            assert_eq!(same_bytes(&a, &b), a == b, "{a:?} {b:?}");
        }
    }

    #[test]
    fn numbers_follow_the_query_number_pattern() {
        for ok in ["0", "-1", "1.5", "1e3", "1E+3", "-2.5e-3", "007"] {
            assert!(number(ok.as_bytes()).is_some(), "{ok}");
        }
        for bad in ["", "-", "1.", ".5", "1e", "1e+", "+1", "1 ", " 1", "0x10", "nan", "inf", "1.5.2"] {
            assert_eq!(number(bad.as_bytes()), None, "{bad}");
        }
        assert_eq!(number(b"-2.5e-3"), Some(-0.0025));
    }


    #[test]
    fn numbers_agree_with_the_pattern_on_random_text() {
        let pattern = Regex::new(r"^-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?$").unwrap();
        let mut rng = XorShift(0x0bad_5eed_1234_5678);
        for _ in 0..100_000 {
            let len = rng.below(9);
            let text: Vec<u8> = (0..len).map(|_| b"0123456789-+.eE x"[rng.below(17)]).collect();
            let want = pattern.is_match(&text).then(|| std::str::from_utf8(&text).unwrap().parse::<f64>().unwrap());
            assert_eq!(number(&text), want, "{:?}", String::from_utf8_lossy(&text));
        }
    }

    #[test]
    fn lower_agrees_with_str_to_lowercase_on_random_text() {
        // ASCII values take the byte-wise shortcut, the others `str::to_lowercase`: both must
        // give what `to_lowercase` gives (İ and Σ lower-case to other lengths).
        let alphabet = ["a", "B", "z", "Q", "0", " ", "ä", "Ä", "İ", "Σ", "ß", "K"];
        let mut rng = XorShift(0x5eed_0000_abcd_ef01);
        for _ in 0..20_000 {
            let len = rng.below(6);
            let text: String = (0..len).map(|_| alphabet[rng.below(alphabet.len())]).collect();
            let lower = text.to_lowercase();
            let test = Test::Lower(Box::new(Test::Eq(lower.as_bytes().into())));
            assert!(test.passes(text.as_bytes(), &mut Vec::new()), "{text:?}");
            let other = Test::Lower(Box::new(Test::Eq(format!("{lower}x").as_bytes().into())));
            assert!(!other.passes(text.as_bytes(), &mut Vec::new()), "{text:?}");
        }
    }

    #[test]
    fn lists_match_on_any_item_and_nulls_match_nothing() {
        let lines = "{\"a\":[\"x\",\"y\"]}\n{\"a\":\"y\"}\n{}\n{\"a\":[]}";
        let got = flags(
            vec![
                ("eq", any("a", Test::Eq(b"y".to_vec().into()))),
                ("not", Pred::Not(Box::new(any("a", Test::Eq(b"y".to_vec().into()))))),
                ("exists", any("a", Test::Exists)),
                ("missing", any("nope", Test::Exists)),
            ],
            lines,
            &["a"],
        );
        assert_eq!(got[0], [true, true, false, false]);
        assert_eq!(got[1], [false, false, true, true]);
        assert_eq!(got[2], [true, true, false, false]);
        assert_eq!(got[3], [false; 4]);
    }

    #[test]
    fn lower_case_and_prefix_suffix_overlap() {
        let lines = "{\"m\":\"Hello WORLD\"}\n{\"m\":\"aba\"}\n{\"m\":\"abba\"}\n{\"m\":\"ÄBC\"}";
        let got = flags(
            vec![
                ("lower", any("m", Test::Lower(Box::new(Test::contains(b"world"))))),
                ("ps", any("m", Test::PrefixSuffix(b"ab".to_vec().into(), b"ba".to_vec().into()))),
                ("unicode", any("m", Test::Lower(Box::new(Test::Eq("äbc".as_bytes().into()))))),
            ],
            lines,
            &["m"],
        );
        assert_eq!(got[0], [true, false, false, false]);
        assert_eq!(got[1], [false, false, true, false]);
        assert_eq!(got[2], [false, false, false, true]);
    }

    /// The gate dispatch against evaluating every flag on every row: gate values that are
    /// scalars, lists, null, absent, and values no flag is gated on.
    #[test]
    fn dispatch_agrees_with_evaluating_every_flag() {
        let sources = ["\"a\"", "\"b\"", "\"c\"", "[\"a\",\"c\"]", "[]", "null", "7"];
        let mut lines = Vec::new();
        let mut rng = XorShift(0x2545_f491_4f6c_dd1du64);
        let mut next = |n: usize| rng.below(n);
        for _ in 0..3000 {
            let mut fields = Vec::new();
            if next(5) > 0 {
                fields.push(format!("\"source\":{}", sources[next(sources.len())]));
            }
            if next(2) == 0 {
                fields.push(format!("\"x\":\"{}\"", next(3)));
            }
            lines.push(format!("{{{}}}", fields.join(",")));
        }
        let text = lines.join("\n");
        let eq = |c: &str, v: &str| any(c, Test::Eq(v.as_bytes().into()));
        let program = || -> Vec<(String, Pred)> {
            vec![
                ("a".into(), eq("source", "a")),
                ("a_x1".into(), Pred::And(vec![eq("x", "1"), eq("source", "a")])),
                ("a_x12".into(), Pred::And(vec![eq("source", "a"), any("x", Test::In([b"1".as_slice(), b"2"].iter().map(|v| (*v).into()).collect()))])),
                ("ab".into(), any("source", Test::In([b"a".as_slice(), b"b"].iter().map(|v| (*v).into()).collect()))),
                ("not_c".into(), Pred::Not(Box::new(eq("source", "c")))),
                ("x2".into(), eq("x", "2")),
                ("nested".into(), Pred::And(vec![Pred::And(vec![eq("source", "b"), eq("x", "0")])])),
                ("seven".into(), eq("source", "7")),
                // Two gates on one column: only the first is decided by the dispatch.
                ("a_and_b".into(), Pred::And(vec![eq("source", "a"), eq("source", "b")])),
                ("a_in_ab".into(), Pred::And(vec![eq("source", "a"), any("source", Test::In([b"a".as_slice(), b"b"].iter().map(|v| (*v).into()).collect()))])),
                ("in_ab_b".into(), Pred::And(vec![any("source", Test::In([b"a".as_slice(), b"b"].iter().map(|v| (*v).into()).collect())), eq("source", "b")])),
                // The gate deep in nested conjunctions, with other tests around it.
                ("deep".into(), Pred::And(vec![Pred::Not(Box::new(eq("x", "2"))), Pred::And(vec![Pred::And(vec![eq("source", "c"), any("x", Test::Exists)])])])),
                // A requested column no row fills: folded to false when bound.
                ("never_x".into(), Pred::And(vec![eq("source", "a"), any("never", Test::Exists)])),
                ("or_never".into(), Pred::Or(vec![any("never", Test::Exists), eq("source", "c")])),
                ("not_never".into(), Pred::And(vec![eq("source", "b"), Pred::Not(Box::new(any("never", Test::Eq(b"z".to_vec().into()))))])),
                // More source values than FEW_VALUES: the split on source is hashed, the one
                // on x below it is searched in order.
                ("wide".into(), any("source", Test::In(["a", "b", "c", "7", "z1", "z2", "z3", "z4", "z5", "z6"].iter().map(|v| v.as_bytes().into()).collect()))),
            ]
        };
        let b = batch(&text, &["source", "x", "never"]);
        let fast = FlagProgram::new(program());
        assert_eq!(fast.gate_columns, ["source", "x"]);
        let Some(split) = &fast.dispatch.split else { panic!("a split on source") };
        assert!(matches!(split.by_value, ByValue::Many(_)));
        let Some(ByValue::Few(_)) = split.by_value.get(b"a").and_then(|d| d.split.as_ref()).map(|s| &s.by_value) else {
            panic!("a split on x below source a")
        };
        let (dispatch, programs) = Dispatch::every_flag(&program());
        let slow = FlagProgram { flags: program(), programs, dispatch, gate_columns: Vec::new(), fused: Vec::new() };
        let naive = naive_flags(&program(), &b);
        let (fast, slow) = (fast.evaluate(&b), slow.evaluate(&b));
        for ((f, s), n) in fast.iter().zip(&slow).zip(&naive) {
            assert_eq!(f.bits, s.bits, "flag {}", f.name);
            assert_eq!(f.bits, *n, "flag {}", f.name);
        }
        let never_set = ["a_and_b", "never_x"];
        for f in &fast {
            let set = f.bits.iter().any(|&byte| byte != 0);
            assert_eq!(set, !never_set.contains(&f.name.as_str()), "flag {} set somewhere", f.name);
        }
    }

    /// Every flag's predicate on every row, straight from `Pred` (no dispatch, no binding).
    fn naive_flags(program: &[(String, Pred)], b: &Extracted) -> Vec<Vec<u8>> {
        fn holds(pred: &Pred, b: &Extracted, row: usize) -> bool {
            let column = |name: &str| b.columns.iter().find(|c| c.name == name);
            match pred {
                Pred::Const(v) => *v,
                Pred::And(children) => children.iter().all(|c| holds(c, b, row)),
                Pred::Or(children) => children.iter().any(|c| holds(c, b, row)),
                Pred::Not(child) => !holds(child, b, row),
                Pred::Any { column: name, test } => column(name).and_then(|c| c.row(row)).is_some_and(|items| {
                    items.iter().any(|item| test.passes(item.as_bytes(), &mut Vec::new()))
                }),
                Pred::FirstInIpSet { column: name, table } => column(name)
                    .and_then(|c| c.row(row))
                    .and_then(|items| items.first().and_then(|v| parse_addr_bytes(v.as_bytes())))
                    .is_some_and(|addr| table.lookup(addr) >= 0),
            }
        }
        let rows = b.lines.len();
        program
            .iter()
            .map(|(_, pred)| {
                let mut bits = vec![0u8; rows.div_ceil(8)];
                for row in 0..rows {
                    if holds(pred, b, row) {
                        bits[row / 8] |= 1 << (row % 8);
                    }
                }
                bits
            })
            .collect()
    }

    /// Fused substring automata against one automaton per test: needles overlapping each
    /// other, shared between sets, repeated sets, the empty needle, list rows, tests under `Not`
    /// and `Or`, and a column tested once (not fused).
    #[test]
    fn fused_substring_tests_agree_with_one_automaton_each() {
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15u64);
        let mut next = |n: usize| rng.below(n);
        let mut lines = Vec::new();
        for _ in 0..3000 {
            let word = |next: &mut dyn FnMut(usize) -> usize| {
                (0..next(12)).map(|_| ["a", "b", "%", ".", "/", "ab"][next(6)]).collect::<String>()
            };
            let u = match next(6) {
                0 => "null".to_string(),
                1 => format!("[\"{}\",\"{}\"]", word(&mut next), word(&mut next)),
                _ => format!("\"{}\"", word(&mut next)),
            };
            lines.push(format!("{{\"u\":{u},\"v\":\"{}\"}}", word(&mut next)));
        }
        let set = |needles: &[&str]| Test::contains_any(&needles.iter().map(|n| n.as_bytes().to_vec()).collect::<Vec<_>>()).unwrap();
        let program = || -> Vec<(String, Pred)> {
            vec![
                ("dots".into(), any("u", set(&["..", "./"]))),
                ("dots_again".into(), any("u", set(&["./", ".."]))),
                ("overlap".into(), any("u", set(&["aba", "bab", "ab"]))),
                ("pct".into(), Pred::Not(Box::new(any("u", set(&["%%", "%a"]))))),
                ("either".into(), Pred::Or(vec![any("u", set(&["b/"])), any("v", set(&["a%"]))])),
                ("empty".into(), any("u", set(&[""]))),
                ("both".into(), Pred::And(vec![any("u", set(&["a"])), any("u", set(&["b", ".."]))])),
            ]
        };
        let b = batch(&lines.join("\n"), &["u", "v"]);
        let fast = FlagProgram::new(program());
        assert_eq!(fast.fused.len(), 1, "only u is tested more than once");
        let naive = naive_flags(&program(), &b);
        for (f, n) in fast.evaluate(&b).iter().zip(&naive) {
            assert_eq!(f.bits, *n, "flag {}", f.name);
            assert!(f.bits.iter().any(|&byte| byte != 0), "flag {} set somewhere", f.name);
        }
    }

    #[test]
    fn bitmaps_cover_rows_across_tasks() {
        let rows = ROWS_PER_TASK * 2 + 13;
        let lines: Vec<String> = (0..rows).map(|i| format!("{{\"n\":\"{i}\"}}")).collect();
        let got = flags(
            vec![("odd", any("n", Test::Regex(Regex::new("[13579]$").unwrap())))],
            &lines.join("\n"),
            &["n"],
        );
        assert_eq!(got[0], (0..rows).map(|i| i % 2 == 1).collect::<Vec<_>>());
    }
}
