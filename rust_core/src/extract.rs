//! Field extraction from NDJSON lines: the event table of `secmon.ingest.events.to_frame` built
//! straight from raw bytes, one string (or list-of-string) column per attribute path.
//!
//! Each selected line is validated completely (a line orjson would reject is `Malformed`) but only
//! the requested paths are materialized: a trie of path components steers a single pass over the
//! line, values outside the trie are skipped by a validating lexer without being built. Lines
//! where a requested key repeats in one object (orjson keeps the last value, at the first key's
//! position) take a slow path through a small document tree, which is also what renders objects
//! as compact JSON.
//!
//! Value rules (the contract `tests/core/test_extract.py` checks against the Python twin):
//! - a path is looked up nested first, then as a literal dotted key at the top level; JSON null
//!   is missing;
//! - a walk that meets an array before the path ends resolves the rest of the path on every
//!   element and collects the results in order (arrays of arrays flatten); a path ending on an
//!   array yields its elements; such a row's value is a list (possibly empty), JSON nulls dropped;
//! - strings as they are, integers in decimal, floats as Python's `repr`, `true`/`false`,
//!   objects (and arrays inside lists) as compact JSON the way `json.dumps` writes them.
//!
//! Lines are split as [`crate::matcher`] splits them: a trailing separator starts no line.
//!
//! With [`FieldPaths::normalizing`] each row is instead the event ingest's `normalize_record`
//! makes of the line (CloudTrail, Kubernetes audit and generic records; see `extract/normalize.rs`), or
//! [`LineStatus::NeedsPython`] where that is not reproduced exactly.

use std::borrow::Cow;
use std::sync::Arc;

use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::matcher;

mod normalize;
mod select;

pub use normalize::normalized_json;

/// How a line ended up in the table (the `__status` column).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub enum LineStatus {
    Ok = 0,
    /// Not JSON as orjson reads it (also after replacing invalid UTF-8).
    Malformed = 1,
    /// Valid JSON whose top level is not an object.
    NotObject = 2,
    /// Empty or only ASCII whitespace (Python's `bytes.isspace`).
    Blank = 3,
    /// Invalid UTF-8 replaced by U+FFFD, then parsed: the row's values are good.
    Repaired = 4,
    /// A JSON object whose normalization (ingest's `normalize_record`) the extractor does not
    /// reproduce exactly (odd timestamp, scalar in the way of a nested attribute, repeated or
    /// escaped keys, ...): its path columns are null, the caller parses it in Python.
    NeedsPython = 5,
}

/// orjson refuses documents nested deeper than this.
const MAX_DEPTH: usize = 1024;

// --- paths ---------------------------------------------------------------------------------------

/// One trie node: the object keys that lead further and the slot whose walk ends here.
#[derive(Debug, Default, Clone)]
struct Node {
    children: Vec<(Box<[u8]>, u32)>,
    /// The slot (path index, or `n + path` for a literal dotted key) whose walk ends at this node.
    terminal: Option<u32>,
    /// Every slot whose walk reaches this node (ends here or continues below).
    slots: Vec<u32>,
    /// Open-addressing table of the children by [`KeyWords`] (a power of two long, at most half
    /// full; empty when there are no children).
    index: Vec<IndexEntry>,
    /// `64 - log2(index.len())`: the hash's top bits pick the first probe.
    shift: u32,
}

/// A key as (length, first word, last word): for keys of up to 16 bytes the words cover every
/// byte, so equal triples mean equal keys and a lookup compares three integers instead of
/// calling `memcmp` (most keys of log records are short).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct KeyWords {
    head: u64,
    tail: u64,
    len: u32,
}

impl KeyWords {
    #[inline(always)]
    fn of(key: &[u8]) -> KeyWords {
        let n = key.len();
        let load8 = |at: usize| u64::from_le_bytes(key[at..at + 8].try_into().unwrap());
        let load4 = |at: usize| u32::from_le_bytes(key[at..at + 4].try_into().unwrap()) as u64;
        let (head, tail) = if n >= 8 {
            (load8(0), load8(n - 8))
        } else if n >= 4 {
            (load4(0), load4(n - 4))
        } else if n > 0 {
            // 1 to 3 bytes: the first, the middle and the last are all of them.
            (key[0] as u64 | (key[n / 2] as u64) << 8 | (key[n - 1] as u64) << 16, 0)
        } else {
            (0, 0)
        };
        KeyWords { head, tail, len: n as u32 }
    }

    #[inline(always)]
    fn hash(&self) -> u64 {
        const K: u64 = 0x9e37_79b9_7f4a_7c15;
        (self.head ^ self.tail.rotate_left(29) ^ (self.len as u64).rotate_left(58)).wrapping_mul(K)
    }
}

/// One position of [`Node::index`]: a child's key words and its position in `children`
/// (`EMPTY` in `child`: a free position).
#[derive(Debug, Clone, Copy)]
struct IndexEntry {
    key: KeyWords,
    child: u32,
}

const EMPTY: u32 = u32::MAX;

impl Node {
    fn build_index(&mut self) {
        if self.children.is_empty() {
            return;
        }
        let size = (self.children.len() * 2).next_power_of_two().max(2);
        let free = IndexEntry { key: KeyWords { head: 0, tail: 0, len: 0 }, child: EMPTY };
        self.index = vec![free; size];
        self.shift = 64 - size.trailing_zeros();
        for (c, (key, _)) in self.children.iter().enumerate() {
            let words = KeyWords::of(key);
            let mut at = (words.hash() >> self.shift) as usize;
            while self.index[at].child != EMPTY {
                at = (at + 1) & (size - 1);
            }
            self.index[at] = IndexEntry { key: words, child: c as u32 };
        }
    }

    /// The position in `children` of the child under `key`.
    #[inline]
    fn find(&self, key: &[u8]) -> Option<usize> {
        if self.index.is_empty() {
            return None;
        }
        let words = KeyWords::of(key);
        let mask = self.index.len() - 1;
        let mut at = (words.hash() >> self.shift) as usize;
        loop {
            let entry = &self.index[at];
            if entry.key == words && entry.child != EMPTY {
                // Past 16 bytes the words leave a middle part uncompared.
                if words.len <= 16 || *self.children[entry.child as usize].0 == *key {
                    return Some(entry.child as usize);
                }
            } else if entry.child == EMPTY {
                return None;
            }
            at = (at + 1) & mask;
        }
    }

    /// The obvious search [`Node::find`] must agree with.
    #[cfg(test)]
    fn find_slow(&self, key: &[u8]) -> Option<usize> {
        self.children.iter().position(|(k, _)| **k == *key)
    }
}

/// A compiled set of attribute paths: columns in order, plus the trie that drives the parser.
/// Names past `columns` are hidden: walked and recorded like the others (the normalization
/// reads them) but never turned into columns.
#[derive(Debug, Clone)]
pub struct FieldPaths {
    names: Vec<String>,
    columns: usize,
    nodes: Vec<Node>,
    /// Set by [`FieldPaths::normalizing`]: rows get ingest's record normalization.
    plan: Option<normalize::Plan>,
}

impl FieldPaths {
    /// Paths as `to_frame` takes them: a leading `@` is dropped and duplicates are kept once,
    /// in first-seen order.
    pub fn new<I, S>(paths: I) -> Result<FieldPaths>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut names: Vec<String> = Vec::new();
        for path in paths {
            let path = path.as_ref();
            let name = path.strip_prefix('@').unwrap_or(path);
            if !names.iter().any(|n| n == name) {
                names.push(name.to_owned());
            }
        }
        Self::build(names, Vec::new())
    }

    /// Paths as [`FieldPaths::new`] takes them, for rows that get ingest's record normalization
    /// (`secmon.ingest.json_events.normalize_record`): the raw attributes it reads are walked as
    /// hidden paths, and a row the normalization cannot reproduce exactly gets
    /// [`LineStatus::NeedsPython`].
    pub fn normalizing<I, S>(paths: I) -> Result<FieldPaths>
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let plain = Self::new(paths)?;
        let hidden = normalize::RAW_PATHS.iter().map(|s| s.to_string()).collect();
        let mut out = Self::build(plain.names, hidden)?;
        out.plan = Some(normalize::Plan::new(&out.names, out.columns));
        Ok(out)
    }

    /// The trie over `columns` (column names) then `hidden` (walked, not output; each kept once
    /// and never stripped of `@`, so `@timestamp` is the key itself).
    fn build(columns: Vec<String>, hidden: Vec<String>) -> Result<FieldPaths> {
        let mut names = columns;
        let n_columns = names.len();
        for name in hidden {
            if !names.contains(&name) {
                names.push(name);
            }
        }
        for reserved in ["__line", "__status"] {
            if names.iter().any(|n| n == reserved) {
                return Err(CoreError::invalid(format!(
                    "path {reserved:?} collides with the column of the same name that extract_fields adds"
                )));
            }
        }
        let n = names.len() as u32;
        let mut nodes = vec![Node::default()];
        for (p, name) in names.iter().enumerate() {
            let mut node = 0usize;
            nodes[0].slots.push(p as u32);
            for part in name.split('.') {
                node = child_of(&mut nodes, node, part.as_bytes());
                nodes[node].slots.push(p as u32);
            }
            nodes[node].terminal = Some(p as u32);
            if name.contains('.') {
                // The literal dotted key at the top level (a key with a dot is never a component).
                let lit = child_of(&mut nodes, 0, name.as_bytes());
                nodes[lit].terminal = Some(n + p as u32);
                nodes[lit].slots.push(n + p as u32);
            }
        }
        for node in &mut nodes {
            node.build_index();
        }
        Ok(FieldPaths { names, columns: n_columns, nodes, plan: None })
    }

    /// Column names (paths without `@`, each once).
    pub fn names(&self) -> &[String] {
        &self.names[..self.columns]
    }

    /// The number of columns.
    pub fn len(&self) -> usize {
        self.columns
    }

    pub fn is_empty(&self) -> bool {
        self.columns == 0
    }

    /// Paths walked, hidden ones included (slot `p` and, for its literal dotted key, `walked + p`).
    fn walked(&self) -> usize {
        self.names.len()
    }
}

fn child_of(nodes: &mut Vec<Node>, node: usize, key: &[u8]) -> usize {
    if let Some(&(_, c)) = nodes[node].children.iter().find(|(k, _)| &**k == key) {
        return c as usize;
    }
    nodes.push(Node::default());
    let c = nodes.len() - 1;
    nodes[node].children.push((key.into(), c as u32));
    c
}

// --- lexer ---------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fail {
    /// orjson would reject the line.
    Malformed,
    /// A requested key repeats inside one object: redo the line on the document tree.
    DuplicateKey,
}

type Lex<T> = std::result::Result<T, Fail>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Str { escaped: bool },
    Num,
    True,
    False,
    Null,
    Object,
    Array,
}

/// A value by its byte span in the line (strings without their quotes).
#[derive(Debug, Clone, Copy)]
struct Span {
    kind: Kind,
    start: u32,
    end: u32,
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

#[inline(always)]
fn has_zero_byte(v: u64) -> u64 {
    v.wrapping_sub(ONES) & !v & HIGHS
}

struct Lexer<'a> {
    s: &'a [u8],
    i: usize,
}

impl<'a> Lexer<'a> {
    #[inline(always)]
    fn skip_ws(&mut self) {
        while let Some(&b) = self.s.get(self.i) {
            if b == b' ' || b == b'\n' || b == b'\r' || b == b'\t' {
                self.i += 1;
            } else {
                break;
            }
        }
    }

    #[inline(always)]
    fn peek(&self) -> Lex<u8> {
        self.s.get(self.i).copied().ok_or(Fail::Malformed)
    }

    #[inline(always)]
    fn expect(&mut self, b: u8) -> Lex<()> {
        if self.s.get(self.i) == Some(&b) {
            self.i += 1;
            Ok(())
        } else {
            Err(Fail::Malformed)
        }
    }

    /// A string starting at the opening quote; returns the span between the quotes.
    ///
    /// Inlined: the common string (ASCII, no escape) is a vector scan to the closing quote and a
    /// span in registers (returned through memory, the span's odd layout stalled the caller
    /// on store forwarding); everything else continues in [`Lexer::string_rest`].
    #[inline(always)]
    fn string(&mut self) -> Lex<Span> {
        debug_assert_eq!(self.s[self.i], b'"');
        let s = self.s;
        let start = self.i + 1;
        let mut i = start;
        #[cfg(target_arch = "x86_64")]
        while i + 16 <= s.len() {
            let (special, high) = sse2::string_block(&s[i..i + 16]);
            // Non-ASCII bytes before the first special one (bits below its bit).
            let before = special.wrapping_sub(1) & !special;
            if high & before != 0 {
                break;
            }
            if special != 0 {
                i += special.trailing_zeros() as usize;
                if s[i] == b'"' {
                    self.i = i + 1;
                    return Ok(Span { kind: Kind::Str { escaped: false }, start: start as u32, end: i as u32 });
                }
                break;
            }
            i += 16;
        }
        // (end, escaped) come back in registers: a span returned through memory and merged
        // with the one above stalled every caller on store forwarding.
        let (end, escaped) = self.string_rest(start, i)?;
        Ok(Span { kind: Kind::Str { escaped }, start: start as u32, end: end as u32 })
    }

    /// The rest of a string from `i` (no byte of `start..i` is special or non-ASCII): escapes,
    /// non-ASCII text (validated as UTF-8), control characters, and the last bytes of a line.
    #[inline(never)]
    fn string_rest(&mut self, start: usize, mut i: usize) -> Lex<(usize, bool)> {
        let s = self.s;
        let mut escaped = false;
        let mut non_ascii = false;
        loop {
            // Eight bytes at a time while none is a quote, a backslash or a control character.
            while i + 8 <= s.len() {
                let v = u64::from_le_bytes(s[i..i + 8].try_into().unwrap());
                let special = has_zero_byte(v ^ (ONES * b'"' as u64))
                    | has_zero_byte(v ^ (ONES * b'\\' as u64))
                    | (v.wrapping_sub(ONES * 0x20) & !v & HIGHS);
                non_ascii |= v & HIGHS != 0;
                if special != 0 {
                    // The lowest flagged byte is exact (false positives only sit above it).
                    i += (special.trailing_zeros() / 8) as usize;
                    break;
                }
                i += 8;
            }
            let Some(&b) = s.get(i) else { return Err(Fail::Malformed) };
            match b {
                b'"' => break,
                b'\\' => {
                    escaped = true;
                    i = self.escape(i)?;
                }
                0..=0x1f => return Err(Fail::Malformed),
                _ => {
                    non_ascii |= b >= 0x80;
                    i += 1;
                }
            }
        }
        if non_ascii && std::str::from_utf8(&s[start..i]).is_err() {
            return Err(Fail::Malformed);
        }
        self.i = i + 1;
        Ok((i, escaped))
    }

    /// Validates the escape at `i` (a backslash); returns the index after it.
    fn escape(&self, i: usize) -> Lex<usize> {
        let s = self.s;
        match s.get(i + 1) {
            Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => Ok(i + 2),
            Some(b'u') => {
                let unit = hex4(s, i + 2)?;
                match unit {
                    0xD800..=0xDBFF => {
                        if s.get(i + 6) != Some(&b'\\') || s.get(i + 7) != Some(&b'u') {
                            return Err(Fail::Malformed);
                        }
                        match hex4(s, i + 8)? {
                            0xDC00..=0xDFFF => Ok(i + 12),
                            _ => Err(Fail::Malformed),
                        }
                    }
                    0xDC00..=0xDFFF => Err(Fail::Malformed),
                    _ => Ok(i + 6),
                }
            }
            _ => Err(Fail::Malformed),
        }
    }

    /// A number; infinite floats (`1e400`) are malformed, as orjson says.
    #[inline]
    fn number(&mut self) -> Lex<Span> {
        let s = self.s;
        let start = self.i;
        let mut i = start;
        if s.get(i) == Some(&b'-') {
            i += 1;
        }
        match s.get(i) {
            Some(b'0') => i += 1,
            Some(b'1'..=b'9') => {
                while matches!(s.get(i), Some(b'0'..=b'9')) {
                    i += 1;
                }
            }
            _ => return Err(Fail::Malformed),
        }
        let int_end = i;
        let mut is_int = true;
        if s.get(i) == Some(&b'.') {
            is_int = false;
            i += 1;
            let d = i;
            while matches!(s.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
            if i == d {
                return Err(Fail::Malformed);
            }
        }
        if matches!(s.get(i), Some(b'e' | b'E')) {
            is_int = false;
            i += 1;
            if matches!(s.get(i), Some(b'+' | b'-')) {
                i += 1;
            }
            let d = i;
            while matches!(s.get(i), Some(b'0'..=b'9')) {
                i += 1;
            }
            if i == d {
                return Err(Fail::Malformed);
            }
        }
        self.i = i;
        // Integers of up to 18 digits always fit; anything else is checked for overflow.
        if !is_int || int_end - start > 18 {
            let token = &s[start..i];
            if int_value(token).is_none() && !float_value(token).is_finite() {
                return Err(Fail::Malformed);
            }
        }
        Ok(Span { kind: Kind::Num, start: start as u32, end: i as u32 })
    }

    #[inline]
    fn literal(&mut self, word: &[u8]) -> Lex<()> {
        if self.s[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Fail::Malformed)
        }
    }

    /// Validates and skips any value (nothing is built).
    #[inline]
    fn skip_value(&mut self, depth: usize) -> Lex<Kind> {
        match self.peek()? {
            b'"' => Ok(self.string()?.kind),
            b'{' | b'[' => self.skip_container(depth),
            b't' => self.literal(b"true").map(|_| Kind::True),
            b'f' => self.literal(b"false").map(|_| Kind::False),
            b'n' => self.literal(b"null").map(|_| Kind::Null),
            _ => Ok(self.number()?.kind),
        }
    }

    /// Validates and skips an object or array without recursion: one bit per open container
    /// (set: an array) instead of a stack frame each, so the inlined string scan does not
    /// multiply the stack a 1024-deep document needs.
    fn skip_container(&mut self, depth: usize) -> Lex<Kind> {
        let mut arrays = [0u64; MAX_DEPTH / 64 + 1];
        let mut open = 0usize;
        let outer = if self.peek()? == b'[' { Kind::Array } else { Kind::Object };
        // At the start of a value (the first: the outer container).
        'value: loop {
            let is_array = match self.peek()? {
                b'"' => {
                    self.string()?;
                    None
                }
                b'{' => Some(false),
                b'[' => Some(true),
                b't' => {
                    self.literal(b"true")?;
                    None
                }
                b'f' => {
                    self.literal(b"false")?;
                    None
                }
                b'n' => {
                    self.literal(b"null")?;
                    None
                }
                _ => {
                    self.number()?;
                    None
                }
            };
            if let Some(is_array) = is_array {
                if depth + open >= MAX_DEPTH {
                    return Err(Fail::Malformed);
                }
                let (word, bit) = (open / 64, 1u64 << (open % 64));
                if is_array {
                    arrays[word] |= bit;
                } else {
                    arrays[word] &= !bit;
                }
                open += 1;
                self.i += 1;
                self.skip_ws();
                let close = if is_array { b']' } else { b'}' };
                if self.peek()? != close {
                    if !is_array {
                        self.member_key()?;
                    }
                    continue 'value;
                }
                // An empty container: closed below.
            } else {
                self.skip_ws();
            }
            // After a value (or at the closing bracket of an empty container).
            loop {
                if open == 0 {
                    return Ok(outer);
                }
                let top = open - 1;
                let is_array = arrays[top / 64] & (1u64 << (top % 64)) != 0;
                let close = if is_array { b']' } else { b'}' };
                match self.peek()? {
                    b',' => {
                        self.i += 1;
                        self.skip_ws();
                        if !is_array {
                            self.member_key()?;
                        }
                        continue 'value;
                    }
                    b if b == close => {
                        self.i += 1;
                        open -= 1;
                        if open > 0 {
                            self.skip_ws();
                        }
                    }
                    _ => return Err(Fail::Malformed),
                }
            }
        }
    }

    /// An object member's `"key" :` up to its value (whitespace around the colon skipped).
    #[inline]
    fn member_key(&mut self) -> Lex<()> {
        if self.peek()? != b'"' {
            return Err(Fail::Malformed);
        }
        self.string()?;
        self.skip_ws();
        self.expect(b':')?;
        self.skip_ws();
        Ok(())
    }

    /// [`Lexer::string`] behind a call, for the recursive document tree (a frame per level).
    #[inline(never)]
    fn string_outlined(&mut self) -> Lex<Span> {
        self.string()
    }

    /// The recursive twin of [`Lexer::skip_value`] (tests compare them).
    #[cfg(test)]
    fn skip_value_slow(&mut self, depth: usize) -> Lex<Kind> {
        match self.peek()? {
            b'"' => Ok(self.string_outlined()?.kind),
            b'{' => {
                if depth >= MAX_DEPTH {
                    return Err(Fail::Malformed);
                }
                self.i += 1;
                self.skip_ws();
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Ok(Kind::Object);
                }
                loop {
                    if self.peek()? != b'"' {
                        return Err(Fail::Malformed);
                    }
                    self.string_outlined()?;
                    self.skip_ws();
                    self.expect(b':')?;
                    self.skip_ws();
                    self.skip_value_slow(depth + 1)?;
                    self.skip_ws();
                    match self.peek()? {
                        b',' => {
                            self.i += 1;
                            self.skip_ws();
                        }
                        b'}' => {
                            self.i += 1;
                            return Ok(Kind::Object);
                        }
                        _ => return Err(Fail::Malformed),
                    }
                }
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return Err(Fail::Malformed);
                }
                self.i += 1;
                self.skip_ws();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Ok(Kind::Array);
                }
                loop {
                    self.skip_value_slow(depth + 1)?;
                    self.skip_ws();
                    match self.peek()? {
                        b',' => {
                            self.i += 1;
                            self.skip_ws();
                        }
                        b']' => {
                            self.i += 1;
                            return Ok(Kind::Array);
                        }
                        _ => return Err(Fail::Malformed),
                    }
                }
            }
            b't' => self.literal(b"true").map(|_| Kind::True),
            b'f' => self.literal(b"false").map(|_| Kind::False),
            b'n' => self.literal(b"null").map(|_| Kind::Null),
            _ => Ok(self.number()?.kind),
        }
    }
}

/// SSE2 (every x86-64 has it) for the string scan.
#[cfg(target_arch = "x86_64")]
mod sse2 {
    use std::arch::x86_64::*;

    /// Bit masks over 16 bytes: which are a quote, a backslash or a control character (below
    /// 0x20), and which are not ASCII.
    #[inline(always)]
    pub(super) fn string_block(block: &[u8]) -> (u32, u32) {
        assert!(block.len() >= 16);
        // SAFETY: SSE2 is part of x86-64; the load reads 16 bytes the assert keeps in bounds.
        unsafe {
            let v = _mm_loadu_si128(block.as_ptr() as *const __m128i);
            let quote = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'"' as i8));
            let backslash = _mm_cmpeq_epi8(v, _mm_set1_epi8(b'\\' as i8));
            // b <= 0x1f exactly when max(b, 0x1f) == 0x1f (unsigned).
            let limit = _mm_set1_epi8(0x1f);
            let control = _mm_cmpeq_epi8(_mm_max_epu8(v, limit), limit);
            let special = _mm_or_si128(_mm_or_si128(quote, backslash), control);
            (_mm_movemask_epi8(special) as u32, _mm_movemask_epi8(v) as u32)
        }
    }
}

fn hex4(s: &[u8], i: usize) -> Lex<u32> {
    let digits = s.get(i..i + 4).ok_or(Fail::Malformed)?;
    let mut v = 0u32;
    for &d in digits {
        let x = match d {
            b'0'..=b'9' => d - b'0',
            b'a'..=b'f' => d - b'a' + 10,
            b'A'..=b'F' => d - b'A' + 10,
            _ => return Err(Fail::Malformed),
        };
        v = v * 16 + x as u32;
    }
    Ok(v)
}

// --- numbers as Python writes them ---------------------------------------------------------------

/// The integer a JSON integer token denotes when orjson keeps it an int (i64 or u64 range).
fn int_value(token: &[u8]) -> Option<i128> {
    // Up to 18 digits (every such integer fits): a plain loop, not `str::parse` (the epoch
    // timestamps of most records come through here).
    let digits = token.strip_prefix(b"-").unwrap_or(token);
    if !digits.is_empty() && digits.len() <= 18 && digits.iter().all(u8::is_ascii_digit) {
        let v = digits.iter().fold(0i64, |v, d| v * 10 + i64::from(d - b'0'));
        return Some(if digits.len() < token.len() { -i128::from(v) } else { i128::from(v) });
    }
    if token.iter().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        return None;
    }
    let text = std::str::from_utf8(token).ok()?;
    let v: i128 = if token.len() > 40 { return None } else { text.parse().ok()? };
    (i64::MIN as i128..=u64::MAX as i128).contains(&v).then_some(v)
}

fn float_value(token: &[u8]) -> f64 {
    // JSON number grammar is a subset of what `f64::from_str` accepts; it rounds correctly.
    std::str::from_utf8(token).ok().and_then(|t| t.parse().ok()).unwrap_or(f64::NAN)
}

/// A validated number token as `str(int)` or `repr(float)` writes it.
fn push_number(token: &[u8], out: &mut Vec<u8>) {
    let is_int = !token.iter().any(|b| matches!(b, b'.' | b'e' | b'E'));
    if is_int && (token.len() <= 18 || int_value(token).is_some()) {
        if token == b"-0" {
            out.push(b'0');
        } else {
            out.extend_from_slice(token);
        }
        return;
    }
    push_py_float(float_value(token), out);
}

/// `repr(x)` of a finite float: the shortest digits that round-trip, positional when the
/// decimal exponent is in [-4, 16), else `d.ddde+XX` with at least two exponent digits.
pub fn push_py_float(x: f64, out: &mut Vec<u8>) {
    use std::io::Write;
    let mut sci = Vec::with_capacity(32);
    // `{:e}` is Rust's shortest round-trip representation in scientific form: "-1.25e-7".
    write!(sci, "{x:e}").unwrap();
    let (mantissa, exp) = {
        let e = sci.iter().position(|&b| b == b'e').unwrap();
        let exp: i32 = std::str::from_utf8(&sci[e + 1..]).unwrap().parse().unwrap();
        (&sci[..e], exp)
    };
    let (negative, mantissa) = match mantissa.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, mantissa),
    };
    let mut digits: Vec<u8> = mantissa.iter().copied().filter(|&b| b != b'.').collect();
    even_on_tie(x.abs(), &mut digits, exp);
    if negative {
        out.push(b'-');
    }
    if (-4..16).contains(&exp) {
        if exp >= 0 {
            let int_len = exp as usize + 1;
            if digits.len() <= int_len {
                out.extend_from_slice(&digits);
                out.extend(std::iter::repeat_n(b'0', int_len - digits.len()));
                out.extend_from_slice(b".0");
            } else {
                out.extend_from_slice(&digits[..int_len]);
                out.push(b'.');
                out.extend_from_slice(&digits[int_len..]);
            }
        } else {
            out.extend_from_slice(b"0.");
            out.extend(std::iter::repeat_n(b'0', (-exp - 1) as usize));
            out.extend_from_slice(&digits);
        }
    } else {
        out.push(digits[0]);
        if digits.len() > 1 {
            out.push(b'.');
            out.extend_from_slice(&digits[1..]);
        }
        write!(out, "e{}{:02}", if exp < 0 { '-' } else { '+' }, exp.abs()).unwrap();
    }
}

/// When two shortest digit strings both read back as `x` and `x` lies exactly halfway between
/// them, Python's `repr` (David Gay's dtoa) takes the one with the even last digit while Rust's
/// `{:e}` takes the upper one: 562949953421312.25 prints as `...312.2` in Python, `...312.3` in
/// Rust. Only in that case are the digits moved down to the even neighbour.
fn even_on_tie(x: f64, digits: &mut Vec<u8>, exp: i32) {
    let last = *digits.last().expect("at least one digit");
    if (last - b'0').is_multiple_of(2) {
        return;
    }
    let mut lower = digits.clone();
    *lower.last_mut().unwrap() -= 1;
    let as_text = |d: &[u8]| format!("{}.{}e{exp}", d[0] as char, std::str::from_utf8(&d[1..]).unwrap_or("0"));
    if as_text(&lower).parse::<f64>() != Ok(x) {
        return; // the lower neighbour does not round-trip: no choice to make (the common case)
    }
    // A double's exact decimal expansion has at most 767 significant digits.
    let exact = format!("{x:.800e}");
    let e = exact.find('e').unwrap();
    let exact_exp: i32 = exact[e + 1..].parse().unwrap();
    let exact_digits: Vec<u8> = exact[..e].bytes().filter(|&b| b != b'.').collect();
    let mut midpoint = lower.clone();
    midpoint.push(b'5');
    let is_tie = exact_exp == exp
        && exact_digits.starts_with(&midpoint)
        && exact_digits[midpoint.len()..].iter().all(|&b| b == b'0');
    if is_tie {
        *digits = lower;
    }
}

/// Appends the decoded text of a validated string body (escapes resolved).
fn push_unescaped(body: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < body.len() {
        let Some(k) = memchr::memchr(b'\\', &body[i..]) else {
            out.extend_from_slice(&body[i..]);
            return;
        };
        out.extend_from_slice(&body[i..i + k]);
        i += k;
        let c = body[i + 1];
        i += 2;
        let simple = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 8,
            b'f' => 12,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            _ => {
                let mut code = hex4(body, i).unwrap();
                i += 4;
                if (0xD800..0xDC00).contains(&code) {
                    let low = hex4(body, i + 2).unwrap();
                    i += 6;
                    code = 0x10000 + ((code - 0xD800) << 10) + (low - 0xDC00);
                }
                let ch = char::from_u32(code).unwrap();
                let mut buf = [0u8; 4];
                out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                continue;
            }
        };
        out.push(simple);
    }
}

/// Appends a string as `json.dumps(ensure_ascii=False)` quotes it.
pub fn push_quoted(text: &[u8], out: &mut Vec<u8>) {
    out.push(b'"');
    for &b in text {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            8 => out.extend_from_slice(b"\\b"),
            12 => out.extend_from_slice(b"\\f"),
            0..=0x1f => {
                const HEX: &[u8; 16] = b"0123456789abcdef";
                out.extend_from_slice(b"\\u00");
                out.push(HEX[(b >> 4) as usize]);
                out.push(HEX[(b & 15) as usize]);
            }
            _ => out.push(b),
        }
    }
    out.push(b'"');
}

// --- document tree (slow path, and compact JSON of objects) --------------------------------------

#[derive(Debug)]
enum Json<'a> {
    Null,
    True,
    False,
    Num(&'a [u8]),
    Str(Cow<'a, [u8]>),
    Arr(Vec<Json<'a>>),
    /// Keys in first-seen order, the last duplicate's value (a Python dict built key by key).
    Obj(Vec<(Cow<'a, [u8]>, Json<'a>)>),
}

fn string_text<'a>(s: &'a [u8], span: Span) -> Cow<'a, [u8]> {
    let body = &s[span.start as usize..span.end as usize];
    match span.kind {
        Kind::Str { escaped: true } => {
            let mut out = Vec::with_capacity(body.len());
            push_unescaped(body, &mut out);
            Cow::Owned(out)
        }
        _ => Cow::Borrowed(body),
    }
}

impl<'a> Lexer<'a> {
    fn tree(&mut self, depth: usize) -> Lex<Json<'a>> {
        match self.peek()? {
            b'"' => {
                let span = self.string_outlined()?;
                Ok(Json::Str(string_text(self.s, span)))
            }
            b'{' => {
                if depth >= MAX_DEPTH {
                    return Err(Fail::Malformed);
                }
                self.i += 1;
                self.skip_ws();
                let mut members: Vec<(Cow<'a, [u8]>, Json<'a>)> = Vec::new();
                if self.peek()? == b'}' {
                    self.i += 1;
                    return Ok(Json::Obj(members));
                }
                loop {
                    if self.peek()? != b'"' {
                        return Err(Fail::Malformed);
                    }
                    let key = string_text(self.s, self.string_outlined()?);
                    self.skip_ws();
                    self.expect(b':')?;
                    self.skip_ws();
                    let value = self.tree(depth + 1)?;
                    match members.iter_mut().find(|(k, _)| *k == key) {
                        Some(slot) => slot.1 = value,
                        None => members.push((key, value)),
                    }
                    self.skip_ws();
                    match self.peek()? {
                        b',' => {
                            self.i += 1;
                            self.skip_ws();
                        }
                        b'}' => {
                            self.i += 1;
                            return Ok(Json::Obj(members));
                        }
                        _ => return Err(Fail::Malformed),
                    }
                }
            }
            b'[' => {
                if depth >= MAX_DEPTH {
                    return Err(Fail::Malformed);
                }
                self.i += 1;
                self.skip_ws();
                let mut items = Vec::new();
                if self.peek()? == b']' {
                    self.i += 1;
                    return Ok(Json::Arr(items));
                }
                loop {
                    items.push(self.tree(depth + 1)?);
                    self.skip_ws();
                    match self.peek()? {
                        b',' => {
                            self.i += 1;
                            self.skip_ws();
                        }
                        b']' => {
                            self.i += 1;
                            return Ok(Json::Arr(items));
                        }
                        _ => return Err(Fail::Malformed),
                    }
                }
            }
            b't' => self.literal(b"true").map(|_| Json::True),
            b'f' => self.literal(b"false").map(|_| Json::False),
            b'n' => self.literal(b"null").map(|_| Json::Null),
            _ => {
                let span = self.number()?;
                Ok(Json::Num(&self.s[span.start as usize..span.end as usize]))
            }
        }
    }
}

/// The whole line as a tree (top-level whitespace allowed, nothing after the value).
fn parse_tree(line: &[u8]) -> Lex<Json<'_>> {
    let mut lx = Lexer { s: line, i: 0 };
    lx.skip_ws();
    let doc = lx.tree(0)?;
    lx.skip_ws();
    if lx.i != line.len() {
        return Err(Fail::Malformed);
    }
    Ok(doc)
}

/// Compact JSON (`separators=(",", ":")`, `ensure_ascii=False`, floats as `repr`).
fn push_compact(value: &Json<'_>, out: &mut Vec<u8>) {
    match value {
        Json::Null => out.extend_from_slice(b"null"),
        Json::True => out.extend_from_slice(b"true"),
        Json::False => out.extend_from_slice(b"false"),
        Json::Num(token) => push_number(token, out),
        Json::Str(text) => push_quoted(text, out),
        Json::Arr(items) => {
            out.push(b'[');
            for (k, item) in items.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                push_compact(item, out);
            }
            out.push(b']');
        }
        Json::Obj(members) => {
            out.push(b'{');
            for (k, (key, item)) in members.iter().enumerate() {
                if k > 0 {
                    out.push(b',');
                }
                push_quoted(key, out);
                out.push(b':');
                push_compact(item, out);
            }
            out.push(b'}');
        }
    }
}

/// One value as event-table text: strings as they are, the rest as compact JSON.
fn push_tree_text(value: &Json<'_>, out: &mut Vec<u8>) {
    match value {
        Json::Str(text) => out.extend_from_slice(text),
        other => push_compact(other, out),
    }
}

/// What a path resolves to on one event.
enum Found<'t, 'a> {
    Missing,
    One(&'t Json<'a>),
    /// The walk met an array: the values collected on the way (no nulls).
    Many(Vec<&'t Json<'a>>),
}

/// The obvious recursive walk of the value rules (used on duplicate-key lines).
fn walk<'t, 'a>(node: &'t Json<'a>, parts: &[&[u8]]) -> Found<'t, 'a> {
    match node {
        Json::Null => Found::Missing,
        // The path ends on an array: its elements are the values (inner arrays stay whole).
        Json::Arr(items) if parts.is_empty() => {
            Found::Many(items.iter().filter(|v| !matches!(v, Json::Null)).collect())
        }
        Json::Arr(items) => {
            let mut out = Vec::new();
            for item in items {
                match walk(item, parts) {
                    Found::Missing => {}
                    Found::One(v) => out.push(v),
                    Found::Many(vs) => out.extend(vs),
                }
            }
            Found::Many(out)
        }
        _ if parts.is_empty() => Found::One(node),
        Json::Obj(members) => match members.iter().find(|(k, _)| &**k == parts[0]) {
            Some((_, child)) => walk(child, &parts[1..]),
            None => Found::Missing,
        },
        _ => Found::Missing,
    }
}

fn lookup<'t, 'a>(doc: &'t Json<'a>, path: &str) -> Found<'t, 'a> {
    let parts: Vec<&[u8]> = path.split('.').map(str::as_bytes).collect();
    let Json::Obj(members) = doc else { return Found::Missing };
    let nested = walk(doc, &parts);
    if !matches!(nested, Found::Missing) || parts.len() == 1 {
        return nested;
    }
    match members.iter().find(|(k, _)| &**k == path.as_bytes()) {
        Some((_, child)) => walk(child, &[]),
        None => Found::Missing,
    }
}

// --- columns -------------------------------------------------------------------------------------

/// One output column while it is built, sparse: only rows that hold a value cost anything (a
/// rule pack asks for many paths and each log type fills a few). Items (one for a scalar, any
/// number for a list) share one byte buffer; whether the column is a list is decided at the end.
#[derive(Debug, Default, Clone)]
pub struct ColumnBuilder {
    data: Vec<u8>,
    /// Byte offset of every item start, plus the end (len items + 1).
    item_offsets: Vec<i64>,
    /// The rows (local to this builder) holding a value, ascending.
    present_rows: Vec<u32>,
    /// Index of the first item of each present row.
    present_items: Vec<u32>,
    any_list: bool,
}

impl ColumnBuilder {
    fn new() -> Self {
        ColumnBuilder { item_offsets: vec![0], ..Default::default() }
    }

    fn with_capacity(data: usize, items: usize, present: usize) -> Self {
        let mut item_offsets = Vec::with_capacity(items.max(1));
        item_offsets.push(0);
        ColumnBuilder {
            data: Vec::with_capacity(data),
            item_offsets,
            present_rows: Vec::with_capacity(present),
            present_items: Vec::with_capacity(present),
            any_list: false,
        }
    }

    /// The index the next item will get (pass it to `end_value`).
    #[inline]
    fn next_item(&self) -> u32 {
        (self.item_offsets.len() - 1) as u32
    }

    #[inline]
    fn end_item(&mut self) {
        self.item_offsets.push(self.data.len() as i64);
    }

    /// Row `row` holds the items from `first` on (a list when `list`).
    #[inline]
    fn end_value(&mut self, row: u32, first: u32, list: bool) {
        self.present_rows.push(row);
        self.present_items.push(first);
        self.any_list |= list;
    }

}

/// One column from the builders of consecutive runs of lines (`row_bases[k]`: the first row of
/// run k). Text is not copied: each run's byte buffer becomes one data buffer of the views.
///
/// A column without any value shares `zeros` (a rule pack asks for many paths a batch of one
/// log source never fills; each had its own zeroed views, 16 bytes a row).
fn finish_column(name: String, parts: Vec<ColumnBuilder>, row_bases: &[usize], rows: usize, zeros: Option<&Arc<Vec<u128>>>) -> Column {
    if let Some(zeros) = zeros.filter(|_| parts.iter().all(|p| p.present_rows.is_empty())) {
        debug_assert_eq!(zeros.len(), rows);
        let values = ColumnValues::Scalar(Strings::View { views: Arc::clone(zeros), buffers: Vec::new(), sizes: Vec::new() });
        let validity = (rows > 0).then(|| vec![0u8; rows.div_ceil(8)]);
        return Column { name, rows, null_count: rows, validity, values };
    }
    let mut validity = vec![0u8; rows.div_ceil(8)];
    let mut present = 0usize;
    for (part, &base) in parts.iter().zip(row_bases) {
        for &r in &part.present_rows {
            let r = base + r as usize;
            validity[r / 8] |= 1 << (r % 8);
        }
        present += part.present_rows.len();
    }
    let null_count = rows - present;
    let validity = (null_count > 0).then_some(validity);
    let values = if parts.iter().any(|p| p.any_list) {
        // Row r starts at its first item; a row without a value starts (and ends) where the
        // next value does, so list offsets are filled forward from each present row.
        let mut list_offsets: Vec<i32> = Vec::with_capacity(rows + 1);
        let mut item_base = 0u32;
        for (part, &base) in parts.iter().zip(row_bases) {
            for (&r, &first) in part.present_rows.iter().zip(&part.present_items) {
                list_offsets.resize(base + r as usize + 1, (item_base + first) as i32);
            }
            item_base += part.next_item();
        }
        list_offsets.resize(rows + 1, item_base as i32);
        let items = parts.into_iter().map(|p| (p.item_offsets, p.data)).collect();
        ColumnValues::List { list_offsets, items: Strings::items(items, VIEW_LIMIT) }
    } else if parts.iter().all(|p| p.data.len() <= VIEW_LIMIT) {
        // Each present row holds exactly one item. The views in one sequential pass (rows
        // without a value are zero, an empty inline view), not zeroed and then scattered.
        let mut views: Vec<u128> = Vec::with_capacity(rows);
        let mut buffers = Vec::new();
        for (p, &base) in parts.into_iter().zip(row_bases) {
            let buffer = buffers.len() as u32;
            for (&r, &i) in p.present_rows.iter().zip(&p.present_items) {
                views.resize(base + r as usize, 0);
                let (a, b) = (p.item_offsets[i as usize] as usize, p.item_offsets[i as usize + 1] as usize);
                views.push(view_of(&p.data, a, b, buffer));
            }
            if !p.data.is_empty() {
                buffers.push(p.data); // only inline (empty) strings otherwise: no buffer needed
            }
        }
        views.resize(rows, 0);
        let sizes = buffers.iter().map(|b| b.len() as i64).collect();
        ColumnValues::Scalar(Strings::View { views: Arc::new(views), buffers, sizes })
    } else {
        // Each present row holds exactly one item.
        let rows_of = parts
            .into_iter()
            .zip(row_bases)
            .map(|(p, &base)| {
                let spans = p
                    .present_rows
                    .iter()
                    .zip(&p.present_items)
                    .map(|(&r, &i)| (base + r as usize, p.item_offsets[i as usize], p.item_offsets[i as usize + 1]))
                    .collect();
                (spans, p.data)
            })
            .collect();
        ColumnValues::Scalar(Strings::rows(rows, rows_of, VIEW_LIMIT))
    };
    Column { name, rows, null_count, validity, values }
}

/// A finished column in Arrow layout (the binding exports these buffers without copying).
#[derive(Debug)]
pub struct Column {
    pub name: String,
    pub rows: usize,
    pub null_count: usize,
    /// Arrow validity bitmap (LSB first); `None` when no row is null.
    pub validity: Option<Vec<u8>>,
    pub values: ColumnValues,
}

#[derive(Debug)]
pub enum ColumnValues {
    /// One string per row.
    Scalar(Strings),
    /// `List(string)`: rows + 1 offsets into the items.
    List { list_offsets: Vec<i32>, items: Strings },
}

/// A string array without nulls of its own (the column's validity covers the rows).
#[derive(Debug)]
pub enum Strings {
    /// `Utf8View`, Polars' own string layout (it imports these without a conversion pass): one
    /// 16-byte view per string, inline up to 12 bytes, else (prefix, buffer, offset) into one of
    /// `buffers` (one per run of lines, so parallel runs are never concatenated). `sizes` is the
    /// C interface's trailing buffer of data-buffer lengths.
    View { views: Arc<Vec<u128>>, buffers: Vec<Vec<u8>>, sizes: Vec<i64> },
    /// `LargeUtf8` (64-bit offsets): when one run holds more text than a view offset addresses.
    Large { offsets: Vec<i64>, data: Vec<u8> },
}

// Views are built with `u128::from_le_bytes` so their memory is Arrow's layout (length first).
#[cfg(not(target_endian = "little"))]
compile_error!("extract.rs builds Arrow string views for little-endian targets only");

/// A view addresses its data buffer with an int32 offset.
const VIEW_LIMIT: usize = i32::MAX as usize;

#[inline]
fn view_of(data: &[u8], start: usize, end: usize, buffer: u32) -> u128 {
    let len = end - start;
    let mut bytes = [0u8; 16];
    bytes[..4].copy_from_slice(&(len as u32).to_le_bytes());
    if len <= 12 {
        bytes[4..4 + len].copy_from_slice(&data[start..end]);
    } else {
        bytes[4..8].copy_from_slice(&data[start..start + 4]);
        bytes[8..12].copy_from_slice(&buffer.to_le_bytes());
        bytes[12..16].copy_from_slice(&(start as u32).to_le_bytes());
    }
    u128::from_le_bytes(bytes)
}

/// (global row, start, end) of each present string of one run, and the run's text.
type RunRows = (Vec<(usize, i64, i64)>, Vec<u8>);

impl Strings {
    /// `rows` strings, every row not listed empty; views while each run's text fits `limit`.
    fn rows(rows: usize, runs: Vec<RunRows>, limit: usize) -> Strings {
        if runs.iter().all(|(_, data)| data.len() <= limit) {
            // Zeroed memory is an empty view: rows without a value cost no write.
            let mut views = vec![0u128; rows];
            let mut buffers = Vec::new();
            for (spans, data) in runs {
                if data.is_empty() {
                    continue; // only inline (empty) strings, no buffer needed
                }
                let buffer = buffers.len() as u32;
                for (r, a, b) in spans {
                    views[r] = view_of(&data, a as usize, b as usize, buffer);
                }
                buffers.push(data);
            }
            let sizes = buffers.iter().map(|b| b.len() as i64).collect();
            Strings::View { views: Arc::new(views), buffers, sizes }
        } else {
            let mut offsets = Vec::with_capacity(rows + 1);
            let mut data = Vec::new();
            for (spans, run) in runs {
                for (r, a, b) in spans {
                    offsets.resize(r + 1, data.len() as i64);
                    data.extend_from_slice(&run[a as usize..b as usize]);
                }
            }
            offsets.resize(rows + 1, data.len() as i64);
            Strings::Large { offsets, data }
        }
    }

    /// Every item of every run ((items + 1 byte offsets, text) each), in order.
    fn items(runs: Vec<(Vec<i64>, Vec<u8>)>, limit: usize) -> Strings {
        if runs.iter().all(|(_, data)| data.len() <= limit) {
            let mut views = Vec::with_capacity(runs.iter().map(|(o, _)| o.len() - 1).sum());
            let mut buffers = Vec::new();
            for (offsets, data) in runs {
                let buffer = buffers.len() as u32;
                views.extend(offsets.windows(2).map(|w| view_of(&data, w[0] as usize, w[1] as usize, buffer)));
                if !data.is_empty() {
                    buffers.push(data);
                }
            }
            let sizes = buffers.iter().map(|b| b.len() as i64).collect();
            Strings::View { views: Arc::new(views), buffers, sizes }
        } else {
            let mut offsets = vec![0i64];
            let mut all = Vec::new();
            for (run_offsets, data) in runs {
                let base = all.len() as i64;
                offsets.extend(run_offsets[1..].iter().map(|o| o + base));
                all.extend_from_slice(&data);
            }
            Strings::Large { offsets, data: all }
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Strings::View { views, .. } => views.len(),
            Strings::Large { offsets, .. } => offsets.len() - 1,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// String `i`.
    pub fn get(&self, i: usize) -> &str {
        std::str::from_utf8(self.bytes(i)).expect("extracted text is UTF-8")
    }

    /// The bytes of string `i` (UTF-8).
    #[inline(always)]
    pub fn bytes(&self, i: usize) -> &[u8] {
        match self {
            Strings::View { views, buffers, .. } => {
                let view = &views[i];
                let len = *view as u32 as usize;
                if len <= 12 {
                    let start = (view as *const u128 as *const u8).wrapping_add(4);
                    // SAFETY: the inline bytes are bytes 4..4+len of `views[i]` itself (the
                    // target is little-endian, checked at compile time above).
                    unsafe { std::slice::from_raw_parts(start, len) }
                } else {
                    let buffer = (*view >> 64) as u32 as usize;
                    let offset = (*view >> 96) as u32 as usize;
                    &buffers[buffer][offset..offset + len]
                }
            }
            Strings::Large { offsets, data } => &data[offsets[i] as usize..offsets[i + 1] as usize],
        }
    }
}

impl Column {
    /// Row `i` as text items (`None` when null): a test and debugging view.
    pub fn row(&self, i: usize) -> Option<Vec<&str>> {
        if !self.is_valid(i) {
            return None;
        }
        Some(match &self.values {
            ColumnValues::Scalar(strings) => vec![strings.get(i)],
            ColumnValues::List { list_offsets, items } => {
                (list_offsets[i]..list_offsets[i + 1]).map(|k| items.get(k as usize)).collect()
            }
        })
    }

    /// Whether row `row` holds a value (is not null).
    #[inline(always)]
    pub fn is_valid(&self, row: usize) -> bool {
        self.validity.as_ref().is_none_or(|bits| bits[row / 8] & (1 << (row % 8)) != 0)
    }

    pub fn is_list(&self) -> bool {
        matches!(self.values, ColumnValues::List { .. })
    }
}

/// The result of [`extract_fields`]: one row per selected line.
#[derive(Debug)]
pub struct Extracted {
    pub columns: Vec<Column>,
    pub lines: Vec<u32>,
    pub status: Vec<u8>,
    /// Rule flags over the rows, when a [`crate::predicate::FlagProgram`] was evaluated.
    pub flags: Vec<crate::predicate::Flag>,
}

// --- the fast pass -------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Missing,
    One,
    Many,
}

/// Per-slot results of one line, reused from line to line; only touched slots are reset.
struct Slots {
    mode: Vec<Mode>,
    one: Vec<Span>,
    many: Vec<Vec<Span>>,
    /// Slots that left `Missing` on this line, in the order they did.
    touched: Vec<u32>,
    /// Slots whose walk met a JSON null (the key is there: ingest's `in`/`setdefault` see it),
    /// or, for a path ending on an array, a null element.
    null: Vec<bool>,
    null_touched: Vec<u32>,
    /// A stack of "key seen" bits of the objects being walked, for children past the 64th
    /// (the first 64 are a word on the walker's stack).
    seen: Vec<u64>,
}

impl Slots {
    fn new(n: usize) -> Self {
        let blank = Span { kind: Kind::Num, start: 0, end: 0 };
        Slots {
            mode: vec![Mode::Missing; n],
            one: vec![blank; n],
            many: vec![Vec::new(); n],
            touched: Vec::new(),
            null: vec![false; n],
            null_touched: Vec::new(),
            seen: Vec::new(),
        }
    }

    fn reset(&mut self) {
        for &slot in &self.touched {
            let slot = slot as usize;
            if self.mode[slot] == Mode::Many {
                self.many[slot].clear();
            }
            self.mode[slot] = Mode::Missing;
        }
        self.touched.clear();
        for &slot in &self.null_touched {
            self.null[slot as usize] = false;
        }
        self.null_touched.clear();
        self.seen.clear(); // a failed walk leaves its words
    }

    #[inline]
    fn record_null(&mut self, slot: u32) {
        if !std::mem::replace(&mut self.null[slot as usize], true) {
            self.null_touched.push(slot);
        }
    }

    #[inline(always)]
    fn record(&mut self, slot: u32, span: Span) {
        let s = slot as usize;
        match self.mode[s] {
            Mode::Many => self.many[s].push(span),
            Mode::Missing => {
                self.touched.push(slot);
                self.mode[s] = Mode::One;
                self.one[s] = span;
            }
            Mode::One => self.one[s] = span,
        }
    }

    fn mark_lists(&mut self, slots: &[u32]) {
        for &slot in slots {
            let s = slot as usize;
            if self.mode[s] == Mode::Missing {
                self.touched.push(slot);
            }
            self.mode[s] = Mode::Many;
        }
    }
}

struct Walker<'p, 'a> {
    lx: Lexer<'a>,
    nodes: &'p [Node],
    slots: &'p mut Slots,
    /// A key spelled with an escape was met in an object the walk entered.
    escaped_key: bool,
}

impl Walker<'_, '_> {
    /// A value reached by the walk of the slots of `node`.
    fn value(&mut self, node: usize, depth: usize) -> Lex<()> {
        let nodes = self.nodes;
        let n = &nodes[node];
        let start = self.lx.i;
        let kind = match self.lx.peek()? {
            b'{' if !n.children.is_empty() => {
                self.object(node, depth)?;
                Kind::Object
            }
            b'[' => {
                self.slots.mark_lists(&n.slots);
                self.array(node, depth, true)?;
                return Ok(());
            }
            b'"' => {
                let span = self.lx.string()?;
                if let Some(slot) = n.terminal {
                    self.slots.record(slot, span);
                }
                return Ok(());
            }
            _ => self.lx.skip_value(depth)?,
        };
        if let Some(slot) = n.terminal {
            if kind != Kind::Null {
                let span = Span { kind, start: start as u32, end: self.lx.i as u32 };
                self.slots.record(slot, span);
            } else {
                self.slots.record_null(slot);
            }
        }
        Ok(())
    }

    /// An array met by the walk: the rest of the path is resolved on every element; when the path
    /// ends here (`ends_here`) the elements themselves are the values.
    fn array(&mut self, node: usize, depth: usize, ends_here: bool) -> Lex<()> {
        if depth >= MAX_DEPTH {
            return Err(Fail::Malformed);
        }
        let nodes = self.nodes;
        let n = &nodes[node];
        let terminal = if ends_here { n.terminal } else { None };
        let descend = !n.children.is_empty();
        self.lx.i += 1;
        self.lx.skip_ws();
        if self.lx.peek()? == b']' {
            self.lx.i += 1;
            return Ok(());
        }
        loop {
            let start = self.lx.i;
            let kind = match self.lx.peek()? {
                b'{' if descend => {
                    self.object(node, depth + 1)?;
                    Kind::Object
                }
                b'[' if descend => {
                    self.array(node, depth + 1, false)?;
                    Kind::Array
                }
                b'"' => self.lx.string()?.kind,
                _ => self.lx.skip_value(depth + 1)?,
            };
            if let Some(slot) = terminal {
                if kind != Kind::Null {
                    let span = match kind {
                        Kind::Str { .. } => Span { kind, start: start as u32 + 1, end: self.lx.i as u32 - 1 },
                        _ => Span { kind, start: start as u32, end: self.lx.i as u32 },
                    };
                    self.slots.record(slot, span);
                } else {
                    self.slots.record_null(slot);
                }
            }
            self.lx.skip_ws();
            match self.lx.peek()? {
                b',' => {
                    self.lx.i += 1;
                    self.lx.skip_ws();
                }
                b']' => {
                    self.lx.i += 1;
                    return Ok(());
                }
                _ => return Err(Fail::Malformed),
            }
        }
    }

    /// An object whose keys may continue some walk.
    fn object(&mut self, node: usize, depth: usize) -> Lex<()> {
        if depth >= MAX_DEPTH {
            return Err(Fail::Malformed);
        }
        let nodes = self.nodes;
        let this = &nodes[node];
        let children = &this.children;
        // Which children were seen in this object: a repeat means orjson's last-wins rule applies.
        // Children past the 64th get words on the slots' stack (taken when first needed).
        let mut seen: u64 = 0;
        let mut seen_more: Option<usize> = None;
        self.lx.i += 1;
        self.lx.skip_ws();
        if self.lx.peek()? == b'}' {
            self.lx.i += 1;
            return Ok(());
        }
        let mut key_buf: Vec<u8> = Vec::new();
        loop {
            if self.lx.peek()? != b'"' {
                return Err(Fail::Malformed);
            }
            let key = self.lx.string()?;
            let s = self.lx.s;
            let body = &s[key.start as usize..key.end as usize];
            let key_bytes: &[u8] = if let Kind::Str { escaped: true } = key.kind {
                self.escaped_key = true;
                key_buf.clear();
                push_unescaped(body, &mut key_buf);
                &key_buf
            } else {
                body
            };
            let found = this.find(key_bytes);
            self.lx.skip_ws();
            self.lx.expect(b':')?;
            self.lx.skip_ws();
            match found {
                Some(c) => {
                    if c < 64 {
                        if seen & (1 << c) != 0 {
                            return Err(Fail::DuplicateKey);
                        }
                        seen |= 1 << c;
                    } else {
                        let stack = &mut self.slots.seen;
                        let base = *seen_more.get_or_insert_with(|| {
                            let base = stack.len();
                            stack.resize(base + children.len() / 64, 0);
                            base
                        });
                        let (word, bit) = (base + c / 64 - 1, 1u64 << (c % 64));
                        if stack[word] & bit != 0 {
                            return Err(Fail::DuplicateKey);
                        }
                        stack[word] |= bit;
                    }
                    self.value(children[c].1 as usize, depth + 1)?;
                }
                None => {
                    self.lx.skip_value(depth + 1)?;
                }
            }
            self.lx.skip_ws();
            match self.lx.peek()? {
                b',' => {
                    self.lx.i += 1;
                    self.lx.skip_ws();
                }
                b'}' => {
                    self.lx.i += 1;
                    if let Some(base) = seen_more {
                        self.slots.seen.truncate(base);
                    }
                    return Ok(());
                }
                _ => return Err(Fail::Malformed),
            }
        }
    }
}

/// Python's `bytes.isspace` on every byte (an empty line is blank too).
fn is_blank(line: &[u8]) -> bool {
    line.iter().all(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r' | 0x0b | 0x0c))
}

/// Builds the rows of a run of lines.
struct RowBuilder<'p> {
    paths: &'p FieldPaths,
    slots: Slots,
    columns: Vec<ColumnBuilder>,
    lines: Vec<u32>,
    status: Vec<u8>,
    /// The values normalization gives the current row, by column (normalizing paths only).
    derived: normalize::Derived,
    escaped_key: bool,
}

/// The buffer lengths of each column of the last run of lines: (text bytes, items, rows with a
/// value).
#[derive(Debug, Default)]
struct RunSizes(Vec<[usize; 3]>);

impl RunSizes {
    fn remember(&mut self, rows: &RowBuilder<'_>) {
        self.0.clear();
        self.0.extend(rows.columns.iter().map(|c| [c.data.len(), c.item_offsets.len(), c.present_rows.len()]));
    }
}

impl<'p> RowBuilder<'p> {
    /// A builder for `lines` lines whose column buffers start as large as `sizes` says the
    /// previous run's ended (plus an eighth): growing them by doubling copied every run's text
    /// about once more and touched twice the fresh memory.
    fn new(paths: &'p FieldPaths, lines: usize, sizes: &RunSizes) -> Self {
        let grown = |n: usize| n + n / 8;
        let columns = (0..paths.len())
            .map(|c| match sizes.0.get(c) {
                Some(&[data, items, present]) => ColumnBuilder::with_capacity(grown(data), grown(items), grown(present)),
                None => ColumnBuilder::new(),
            })
            .collect();
        RowBuilder {
            paths,
            slots: Slots::new(2 * paths.walked()),
            columns,
            lines: Vec::with_capacity(lines),
            status: Vec::with_capacity(lines),
            derived: normalize::Derived::new(paths.len()),
            escaped_key: false,
        }
    }

    fn push_line(&mut self, index: u32, line: &[u8]) {
        self.lines.push(index);
        if is_blank(line) {
            return self.null_row(LineStatus::Blank);
        }
        match self.fast(line) {
            Ok(status) => {
                if status != LineStatus::Ok {
                    return self.null_row(status);
                }
                if let Some(plan) = &self.paths.plan {
                    // Escaped keys: ingest sees the decoded key, which the walk also looks up;
                    // still, such records are rare enough to leave to the Python twin.
                    let normalized = !self.escaped_key && plan.derive(line, &self.slots, &mut self.derived);
                    if !normalized {
                        return self.null_row(LineStatus::NeedsPython);
                    }
                }
                self.emit_fast(line);
                self.status.push(LineStatus::Ok as u8);
            }
            Err(_) if self.paths.plan.is_some() => {
                // Repeated keys and repaired UTF-8 take the document tree here; with
                // normalization such a line goes to the Python twin (malformed stays malformed).
                let malformed = std::str::from_utf8(line).is_ok() && parse_tree(line).is_err();
                self.null_row(if malformed { LineStatus::Malformed } else { LineStatus::NeedsPython });
            }
            Err(fail) => {
                // A repeated key can sit on a line that is also malformed or invalid UTF-8.
                if fail == Fail::DuplicateKey && self.slow(line, LineStatus::Ok) {
                    return;
                }
                if std::str::from_utf8(line).is_ok() {
                    return self.null_row(LineStatus::Malformed);
                }
                let repaired = String::from_utf8_lossy(line).into_owned();
                if !self.slow(repaired.as_bytes(), LineStatus::Repaired) {
                    self.null_row(LineStatus::Malformed);
                }
            }
        }
    }

    fn null_row(&mut self, status: LineStatus) {
        self.status.push(status as u8);
    }

    /// The local row number of the line being added (its `lines` entry is already pushed).
    fn row(&self) -> u32 {
        (self.lines.len() - 1) as u32
    }

    /// The single pass; `Ok` leaves the values in `self.slots`.
    fn fast(&mut self, line: &[u8]) -> Lex<LineStatus> {
        let (is_object, escaped_key) = walk_line(self.paths, &mut self.slots, line)?;
        self.escaped_key = escaped_key;
        Ok(if is_object { LineStatus::Ok } else { LineStatus::NotObject })
    }

    fn emit_fast(&mut self, line: &[u8]) {
        let n = self.paths.walked();
        let columns = self.paths.len();
        let row = self.row();
        let slots = &self.slots;
        let derived = &self.derived;
        for &slot in &slots.touched {
            let slot = slot as usize;
            // The literal dotted key counts only when the nested walk found nothing.
            let p = if slot < n { slot } else { slot - n };
            if slot >= n && slots.mode[p] != Mode::Missing {
                continue;
            }
            if p >= columns || derived.replaces(p) {
                continue; // a hidden path, or a column the normalization gives a value
            }
            let col = &mut self.columns[p];
            let first = col.next_item();
            match slots.mode[slot] {
                Mode::Missing => continue,
                Mode::One => {
                    push_span_text(line, slots.one[slot], &mut col.data);
                    col.end_item();
                    col.end_value(row, first, false);
                }
                Mode::Many => {
                    for &span in &slots.many[slot] {
                        push_span_text(line, span, &mut col.data);
                        col.end_item();
                    }
                    col.end_value(row, first, true);
                }
            }
        }
        if self.paths.plan.is_some() {
            self.derived.emit(line, row, &mut self.columns);
        }
    }

    /// The document-tree path: duplicate requested keys, or a line repaired from invalid UTF-8.
    /// Returns false (and adds nothing) when the line does not parse.
    fn slow(&mut self, line: &[u8], ok_status: LineStatus) -> bool {
        let Ok(doc) = parse_tree(line) else { return false };
        if !matches!(doc, Json::Obj(_)) {
            self.null_row(LineStatus::NotObject);
            return true;
        }
        self.status.push(ok_status as u8);
        let row = self.row();
        for (name, col) in self.paths.names.iter().zip(&mut self.columns) {
            let first = col.next_item();
            match lookup(&doc, name) {
                Found::Missing => {}
                Found::One(value) => {
                    push_tree_text(value, &mut col.data);
                    col.end_item();
                    col.end_value(row, first, false);
                }
                Found::Many(values) => {
                    for value in values {
                        push_tree_text(value, &mut col.data);
                        col.end_item();
                    }
                    col.end_value(row, first, true);
                }
            }
        }
        true
    }
}

/// The single pass over one line: (whether it is an object, whether an escaped key was met);
/// the values are left in `slots`.
fn walk_line(paths: &FieldPaths, slots: &mut Slots, line: &[u8]) -> Lex<(bool, bool)> {
    slots.reset();
    let mut w = Walker { lx: Lexer { s: line, i: 0 }, nodes: &paths.nodes, slots, escaped_key: false };
    w.lx.skip_ws();
    let is_object = if w.lx.peek()? == b'{' {
        w.object(0, 0)?;
        true
    } else {
        w.lx.skip_value(0)?;
        false
    };
    w.lx.skip_ws();
    if w.lx.i != line.len() {
        return Err(Fail::Malformed);
    }
    Ok((is_object, w.escaped_key))
}

/// A recorded value as event-table text.
#[inline]
fn push_span_text(line: &[u8], span: Span, out: &mut Vec<u8>) {
    let body = &line[span.start as usize..span.end as usize];
    match span.kind {
        Kind::Str { escaped: false } => out.extend_from_slice(body),
        Kind::Str { escaped: true } => push_unescaped(body, out),
        Kind::Num => push_number(body, out),
        Kind::True => out.extend_from_slice(b"true"),
        Kind::False => out.extend_from_slice(b"false"),
        Kind::Null => {}
        Kind::Object | Kind::Array => {
            let tree = parse_tree(body).expect("a value the fast pass validated parses again");
            push_compact(&tree, out);
        }
    }
}

// --- driver --------------------------------------------------------------------------------------

/// How many threads [`extract_fields`] may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Threads {
    /// rayon's global pool, when the input is large enough to pay for it.
    Default,
    /// Exactly this many (1: the calling thread only).
    Exactly(usize),
}

/// Lines per parallel task: large enough to amortize a task, small enough to balance two cores.
const LINES_PER_TASK: usize = 4096;
/// More threads than this is a mistake, not a configuration (each is an OS thread).
const MAX_THREADS: usize = 256;
/// Below this many selected bytes one thread does it all.
const PARALLEL_MIN_BYTES: usize = 1 << 20;

/// The event table of the selected lines of `hay` (all lines when `line_idx` is `None`; indices
/// must be strictly ascending and in range).
pub fn extract_fields(
    hay: &[u8],
    sep: u8,
    paths: &FieldPaths,
    line_idx: Option<&[u32]>,
    threads: Threads,
) -> Result<Extracted> {
    let lines: Vec<(u32, usize, usize)> = match line_idx {
        Some(wanted) => {
            if let Some(k) = wanted.windows(2).position(|w| w[0] >= w[1]) {
                return Err(CoreError::invalid(format!(
                    "line_idx must be strictly ascending: position {} holds {} after {}",
                    k + 1,
                    wanted[k + 1],
                    wanted[k]
                )));
            }
            let ranges = matcher::select_lines(hay, sep, wanted)?;
            wanted.iter().zip(ranges).map(|(&i, (a, b))| (i, a, b)).collect()
        }
        None => all_lines(hay, sep)?,
    };
    let selected_bytes: usize = lines.iter().map(|&(_, a, b)| b - a).sum();
    let run = |sizes: &mut RunSizes, part: &[(u32, usize, usize)]| {
        let mut rows = RowBuilder::new(paths, part.len(), sizes);
        for &(i, a, b) in part {
            rows.push_line(i, &hay[a..b]);
        }
        sizes.remember(&rows);
        rows
    };
    let sequential = |lines: &[(u32, usize, usize)]| {
        let mut sizes = RunSizes::default();
        lines.chunks(LINES_PER_TASK).map(|part| run(&mut sizes, part)).collect()
    };
    let parallel = |lines: &[(u32, usize, usize)]| lines.par_chunks(LINES_PER_TASK).map_init(RunSizes::default, run).collect();
    // Runs of lines even on one thread: each run's text stays a small buffer of its own.
    let parts: Vec<RowBuilder<'_>> = match threads {
        Threads::Exactly(0) => return Err(CoreError::invalid("threads must be at least 1, got 0")),
        Threads::Exactly(n) if n > MAX_THREADS => {
            return Err(CoreError::invalid(format!("threads must be at most {MAX_THREADS}, got {n}")))
        }
        Threads::Exactly(1) => sequential(&lines),
        _ if selected_bytes < PARALLEL_MIN_BYTES => sequential(&lines),
        Threads::Default => parallel(&lines),
        Threads::Exactly(n) => {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(n)
                .build()
                .map_err(|e| CoreError::invalid(format!("cannot start {n} threads: {e}")))?;
            pool.install(|| parallel(&lines))
        }
    };
    Ok(assemble(paths, parts))
}

fn all_lines(hay: &[u8], sep: u8) -> Result<Vec<(u32, usize, usize)>> {
    let mut out = Vec::with_capacity(hay.len() / 256 + 1);
    let mut start = 0usize;
    for end in memchr::memchr_iter(sep, hay).chain(std::iter::once(hay.len())) {
        if end == hay.len() && start >= hay.len() {
            break; // a trailing separator starts no line
        }
        let index = u32::try_from(out.len())
            .map_err(|_| CoreError::invalid(format!("the buffer has more than {} lines", u32::MAX)))?;
        out.push((index, start, end));
        start = end + 1;
    }
    Ok(out)
}

/// The batch from the runs of lines, in order (columns finished in parallel, text not copied).
fn assemble(paths: &FieldPaths, parts: Vec<RowBuilder<'_>>) -> Extracted {
    let mut row_bases = Vec::with_capacity(parts.len());
    let mut lines = Vec::new();
    let mut status = Vec::new();
    let mut by_column: Vec<Vec<ColumnBuilder>> = (0..paths.len()).map(|_| Vec::with_capacity(parts.len())).collect();
    for part in parts {
        row_bases.push(lines.len());
        lines.extend_from_slice(&part.lines);
        status.extend_from_slice(&part.status);
        for (c, col) in part.columns.into_iter().enumerate() {
            by_column[c].push(col);
        }
    }
    let rows = lines.len();
    let empty = |parts: &Vec<ColumnBuilder>| parts.iter().all(|p| p.present_rows.is_empty());
    let zeros = by_column.iter().any(empty).then(|| Arc::new(vec![0u128; rows]));
    let columns = by_column
        .into_par_iter()
        .zip(paths.names.par_iter())
        .map(|(parts, name)| finish_column(name.clone(), parts, &row_bases, rows, zeros.as_ref()))
        .collect();
    Extracted { columns, lines, status, flags: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync() {
        assert_send_sync::<FieldPaths>();
        assert_send_sync::<Extracted>();
    }

    #[test]
    fn trie_lookup_agrees_with_a_linear_search() {
        // Keys that differ only in the middle (the words of long keys do not cover it), in the
        // length, in one byte at either end, the empty key, and many children (probing).
        let mut keys: Vec<Vec<u8>> = vec![Vec::new(), b"a".to_vec(), b"ab".to_vec(), b"abc".to_vec(), b"acc".to_vec()];
        for len in 1..=40 {
            let base: Vec<u8> = (0..len).map(|i| b'a' + (i % 26) as u8).collect();
            keys.push(base.clone());
            for at in [0, len / 2, len - 1] {
                let mut k = base.clone();
                k[at] = b'Z';
                keys.push(k);
            }
        }
        keys.sort();
        keys.dedup();
        let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
        for children in [0usize, 1, 3, 7, 64, 65, 200, keys.len()] {
            let mut node = Node::default();
            let mut pool = keys.clone();
            for c in 0..children.min(pool.len()) {
                let k = pool.swap_remove(rng.below(pool.len()));
                node.children.push((k.into(), c as u32));
            }
            node.build_index();
            for k in &keys {
                assert_eq!(node.find(k), node.find_slow(k), "{children} children, key {:?}", String::from_utf8_lossy(k));
            }
            for _ in 0..2000 {
                let len = rng.below(24);
                let k: Vec<u8> = (0..len).map(|_| b"abcZ"[rng.below(4)]).collect();
                assert_eq!(node.find(&k), node.find_slow(&k));
            }
        }
    }

    /// A random JSON value (nested up to `depth`), with whitespace here and there.
    fn random_json(rng: &mut XorShift, depth: usize, out: &mut Vec<u8>) {
        let ws = |rng: &mut XorShift, out: &mut Vec<u8>| {
            if rng.below(4) == 0 {
                out.extend_from_slice(&b" \t\r\n"[..1 + rng.below(4)]);
            }
        };
        ws(rng, out);
        match rng.below(if depth == 0 { 6 } else { 8 }) {
            0 => out.extend_from_slice(b"\"a string long enough for a vector\""),
            1 => out.extend_from_slice(b"\"k\\u00e9\\n\""),
            2 => out.extend_from_slice(b"-12.5e3"),
            3 => out.extend_from_slice(b"true"),
            4 => out.extend_from_slice(b"null"),
            5 => out.extend_from_slice(b"0"),
            6 => {
                out.push(b'[');
                for k in 0..rng.below(4) {
                    if k > 0 {
                        out.push(b',');
                    }
                    random_json(rng, depth - 1, out);
                }
                ws(rng, out);
                out.push(b']');
            }
            _ => {
                out.push(b'{');
                for k in 0..rng.below(4) {
                    if k > 0 {
                        out.push(b',');
                    }
                    ws(rng, out);
                    out.extend_from_slice(if rng.below(2) == 0 { b"\"a\"" } else { b"\"b\\\"c\"" });
                    ws(rng, out);
                    out.push(b':');
                    random_json(rng, depth - 1, out);
                }
                ws(rng, out);
                out.push(b'}');
            }
        }
        ws(rng, out);
    }

    #[test]
    fn skipping_without_recursion_agrees_with_the_recursive_twin() {
        let mut rng = XorShift(0x1234_5678_9abc_def1);
        let tokens: &[&[u8]] = &[b"{", b"}", b"[", b"]", b",", b":", b"\"", b"1", b"tru", b" ", b"\\", b"\x01"];
        for round in 0..20_000 {
            let mut doc = Vec::new();
            random_json(&mut rng, 5, &mut doc);
            // Most documents are mutated: a token inserted, or the end cut off.
            match rng.below(3) {
                0 => {}
                1 => {
                    let at = rng.below(doc.len() + 1);
                    let t = tokens[rng.below(tokens.len())];
                    doc.splice(at..at, t.iter().copied());
                }
                _ => doc.truncate(rng.below(doc.len() + 1)),
            }
            let start = doc.iter().position(|b| !b" \t\r\n".contains(b)).unwrap_or(doc.len());
            // Depth limits: near MAX_DEPTH too.
            let depth = if round % 2 == 0 { 0 } else { MAX_DEPTH - rng.below(6) };
            let mut fast = Lexer { s: &doc, i: start };
            let mut slow = Lexer { s: &doc, i: start };
            let (a, b) = (fast.skip_value(depth), slow.skip_value_slow(depth));
            assert_eq!(a, b, "{:?} at depth {depth}", String::from_utf8_lossy(&doc));
            if a.is_ok() {
                assert_eq!(fast.i, slow.i, "{:?}", String::from_utf8_lossy(&doc));
            }
        }
    }

    /// The string lexer without word or vector scanning.
    fn string_slow(line: &[u8], at: usize) -> Lex<Span> {
        let mut i = at + 1;
        let mut escaped = false;
        loop {
            match line.get(i) {
                None => return Err(Fail::Malformed),
                Some(b'"') => break,
                Some(b'\\') => {
                    escaped = true;
                    i = Lexer { s: line, i: 0 }.escape(i)?;
                }
                Some(0..=0x1f) => return Err(Fail::Malformed),
                Some(_) => i += 1,
            }
        }
        std::str::from_utf8(&line[at + 1..i]).map_err(|_| Fail::Malformed)?;
        Ok(Span { kind: Kind::Str { escaped }, start: at as u32 + 1, end: i as u32 })
    }

    #[test]
    fn string_scan_agrees_with_a_byte_loop() {
        // Specials at every position of the 16- and 8-byte blocks and in the tail; UTF-8 good
        // and bad (split sequences, a lone continuation, overlong), escapes good and bad.
        let pieces: &[&[u8]] = &[
            b"a", b"0123456789abcdef", b"\\\"", b"\\n", b"\\u00e9", b"\\ud83d\\ude00", b"\\ud83d", b"\\x", b"\x01",
            b"\x1f", b" ", b"\x7f", "\u{e9}".as_bytes(), "\u{1f600}".as_bytes(), b"\xc3", b"\x80", b"\xc0\xaf", b"\xff", b"\"",
        ];
        let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
        for _ in 0..20_000 {
            let mut line = b"\"".to_vec();
            for _ in 0..rng.below(12) {
                line.extend_from_slice(pieces[rng.below(pieces.len())]);
            }
            if rng.below(4) > 0 {
                line.push(b'"');
            }
            line.extend(std::iter::repeat_n(b'x', rng.below(20)));
            let fast = Lexer { s: &line, i: 0 }.string().map(|s| (s.kind, s.start, s.end));
            let slow = string_slow(&line, 0).map(|s| (s.kind, s.start, s.end));
            assert_eq!(fast, slow, "{:?}", String::from_utf8_lossy(&line));
        }
    }

    fn py_float(x: f64) -> String {
        let mut out = Vec::new();
        push_py_float(x, &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn floats_are_written_like_python_repr() {
        let table: &[(f64, &str)] = &[
            (1.5, "1.5"),
            (100.0, "100.0"),
            (0.0, "0.0"),
            (-0.0, "-0.0"),
            (1e16, "1e+16"),
            (1e15, "1000000000000000.0"),
            (9999999999999998.0, "9999999999999998.0"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (0.00012345, "0.00012345"),
            (1.2345e-5, "1.2345e-05"),
            (1e22, "1e+22"),
            (1.7976931348623157e308, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
            (0.1, "0.1"),
            (-2.5e-7, "-2.5e-07"),
            (123456789.125, "123456789.125"),
            (1.8446744073709552e19, "1.8446744073709552e+19"),
        ];
        for &(x, want) in table {
            assert_eq!(py_float(x), want, "{x:?}");
        }
    }

    #[test]
    fn short_integers_read_like_str_parse() {
        let mut tokens: Vec<String> = ["0", "-0", "007", "-", "", "+1", "1a", "999999999999999999", "-999999999999999999", "1000000000000000000"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let mut rng = XorShift(0x5151_5151_dead_beef);
        for _ in 0..20_000 {
            let len = rng.below(21);
            let mut t: String = (0..len).map(|_| char::from(b'0' + rng.below(10) as u8)).collect();
            if rng.below(3) == 0 {
                t.insert(0, '-');
            }
            tokens.push(t);
        }
        for t in &tokens {
            let slow = t.parse::<i128>().ok().filter(|v| (i64::MIN as i128..=u64::MAX as i128).contains(v));
            assert_eq!(int_value(t.as_bytes()), slow, "{t:?}");
        }
    }

    fn number_text(token: &str) -> String {
        let mut out = Vec::new();
        push_number(token.as_bytes(), &mut out);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn numbers_are_written_like_python_str() {
        let table: &[(&str, &str)] = &[
            ("0", "0"),
            ("-0", "0"),
            ("404", "404"),
            ("-17", "-17"),
            ("18446744073709551615", "18446744073709551615"),
            ("18446744073709551616", "1.8446744073709552e+19"),
            ("-9223372036854775808", "-9223372036854775808"),
            ("-9223372036854775809", "-9.223372036854776e+18"),
            ("1E2", "100.0"),
            ("1e-400", "0.0"),
            ("-0.0", "-0.0"),
            ("2.50", "2.5"),
        ];
        for &(token, want) in table {
            assert_eq!(number_text(token), want, "{token}");
        }
    }

    fn rows(lines: &str, paths: &[&str]) -> (Vec<Vec<Option<Vec<String>>>>, Vec<u8>) {
        let fp = FieldPaths::new(paths).unwrap();
        let out = extract_fields(lines.as_bytes(), b'\n', &fp, None, Threads::Exactly(1)).unwrap();
        let table = out
            .columns
            .iter()
            .map(|c| (0..c.rows).map(|i| c.row(i).map(|r| r.iter().map(|s| s.to_string()).collect())).collect())
            .collect();
        (table, out.status)
    }

    fn one(line: &str, path: &str) -> Option<Vec<String>> {
        rows(line, &[path]).0[0][0].clone()
    }

    fn v(items: &[&str]) -> Option<Vec<String>> {
        Some(items.iter().map(|s| s.to_string()).collect())
    }

    #[test]
    fn paths_resolve_by_the_value_rules() {
        // (line, path, expected items; a one-item Some for a scalar; list rows are checked below)
        let table: &[(&str, &str, Option<Vec<String>>)] = &[
            (r#"{"a":"x"}"#, "a", v(&["x"])),
            (r#"{"a":{"b":{"c":1}}}"#, "a.b.c", v(&["1"])),
            (r#"{"a.b.c":true}"#, "a.b.c", v(&["true"])),
            (r#"{"a":{"b":null},"a.b":"lit"}"#, "a.b", v(&["lit"])),
            (r#"{"a":{"b":2},"a.b":"lit"}"#, "a.b", v(&["2"])),
            (r#"{"a":null}"#, "a", None),
            (r#"{"a":5}"#, "a.b", None),
            (r#"{"a":{"b":{"x":1.0,"y":[1,"é"]}}}"#, "a.b", v(&[r#"{"x":1.0,"y":[1,"é"]}"#])),
            (r#"{"a":"\u00e9\n\"q\""}"#, "a", v(&["é\n\"q\""])),
            (r#"{"\u0061":1}"#, "a", v(&["1"])),
            (r#"{"a":1,"a":2}"#, "a", v(&["2"])),
            (r#"{"a":{"b":1},"a":{"c":2}}"#, "a.b", None),
            (r#"{"a":{"b":1,"c":2,"b":3}}"#, "a", v(&[r#"{"b":3,"c":2}"#])),
        ];
        for (line, path, want) in table {
            assert_eq!(&one(line, path), want, "{line} {path}");
        }
    }

    #[test]
    fn arrays_collect_values_along_the_walk() {
        let table: &[(&str, &str, Option<Vec<String>>)] = &[
            (r#"{"a":[1,null,"x"]}"#, "a", v(&["1", "x"])),
            (r#"{"a":[{"b":1},{"b":null},{"c":3},{"b":[2,3]},[{"b":4}]]}"#, "a.b", v(&["1", "2", "3", "4"])),
            (r#"{"a":[[1,2],[3]]}"#, "a", v(&["[1,2]", "[3]"])),
            (r#"{"a":[]}"#, "a.b", v(&[])),
            (r#"{"a":[{"b":{"c":1}}]}"#, "a.b", v(&[r#"{"c":1}"#])),
            (r#"{"a":[{"b":1,"b":2},{"b":3}]}"#, "a.b", v(&["2", "3"])),
        ];
        for (line, path, want) in table {
            assert_eq!(&one(line, path), want, "{line} {path}");
        }
    }

    #[test]
    fn statuses_follow_orjson() {
        let lines = "{\"a\":1}\n\n  \t\n[1]\n{\"a\":1e400}\n{\"a\":\"\\ud800\"}\n{\"a\":\"\x01\"}\n{\"a\":01}\n{} x\n\"s\"\n";
        let (_, status) = rows(lines, &["a"]);
        assert_eq!(status, vec![0, 3, 3, 2, 1, 1, 1, 1, 1, 2]);
        let fp = FieldPaths::new(["a"]).unwrap();
        let bad = b"{\"a\":\"x\xff\"}\n{\"a\":\xff}\n";
        let out = extract_fields(bad, b'\n', &fp, None, Threads::Exactly(1)).unwrap();
        assert_eq!(out.status, vec![4, 1]);
        // Regression: a repeated key on a line with invalid UTF-8 was reported malformed.
        let dup = b"{\"a\":null,\"a\":[1,2],\"b\":\"\xff\"}\n{\"a\":1,\"a\":2,}\n[1]\n";
        let again = extract_fields(dup, b'\n', &fp, None, Threads::Exactly(1)).unwrap();
        assert_eq!(again.status, vec![4, 1, 2]);
        assert_eq!(again.columns[0].row(0), Some(vec!["1", "2"]));
        assert_eq!(out.columns[0].row(0), Some(vec!["x\u{fffd}"]));
    }

    #[test]
    fn repeated_keys_past_the_64th_wanted_child_keep_the_last_value() {
        // 130 wanted keys in one object: keys past the 64th are tracked on the `seen` stack, per
        // object. A line repeating one takes the slow path (last value wins, as in orjson), and
        // the same keys again in a nested object or on the next line are no repeat.
        let names: Vec<String> = (0..130).map(|k| format!("k{k}")).collect();
        let mut paths: Vec<&str> = names.iter().map(String::as_str).collect();
        paths.push("o.k100");
        let members = |value: &dyn Fn(&str) -> String| names.iter().map(|n| format!("\"{n}\":\"{}\"", value(n))).collect::<Vec<_>>().join(",");
        let once = format!("{{{}}}", members(&|n| n.to_string()));
        // Every key twice (so repeats land on both sides of the 64th child), the second value kept.
        let twice = format!("{{{},{}}}", members(&|n| n.to_string()), members(&|n| format!("{n}!")));
        let nested = format!("{{\"o\":{once},\"k100\":\"top\"}}");
        let (table, status) = rows(&[once.as_str(), &twice, &nested, &once].join("\n"), &paths);
        let column = |name: &str| &table[paths.iter().position(|p| *p == name).unwrap()];
        assert_eq!(status, [LineStatus::Ok as u8; 4]);
        for name in &names {
            let again = format!("{name}!");
            let want = if name == "k100" { v(&["top"]) } else { None };
            assert_eq!(column(name), &[v(&[name]), v(&[&again]), want, v(&[name])], "{name}");
        }
        assert_eq!(column("o.k100"), &[None, None, v(&["k100"]), None]);
    }

    #[test]
    fn views_and_large_offsets_hold_the_same_strings() {
        // Two runs; strings inline (<= 12 bytes) and in buffers, rows without values between.
        let run_a = b"shortexactly12bytesa much longer string than twelve".to_vec();
        let run_b = b"second run, long enough".to_vec();
        let rows_of = || {
            vec![
                (vec![(1, 0, 5), (3, 5, 17), (4, 17, 19)], run_a.clone()),
                (vec![(6, 0, run_b.len() as i64)], run_b.clone()),
                (vec![], Vec::new()),
            ]
        };
        let views = Strings::rows(8, rows_of(), usize::MAX);
        let large = Strings::rows(8, rows_of(), 0);
        assert!(matches!(views, Strings::View { .. }) && matches!(large, Strings::Large { .. }));
        let all = |s: &Strings| (0..s.len()).map(|i| s.get(i).to_string()).collect::<Vec<_>>();
        assert_eq!(all(&views), all(&large));
        assert_eq!(all(&views), ["", "short", "", "exactly12byt", "es", "", "second run, long enough", ""]);
        let items_of = || vec![(vec![0i64, 5, 17, 19, run_a.len() as i64], run_a.clone()), (vec![0, 6], b"second".to_vec())];
        let (iv, il) = (Strings::items(items_of(), usize::MAX), Strings::items(items_of(), 0));
        assert_eq!(all(&iv), all(&il));
        assert_eq!(all(&iv), ["short", "exactly12byt", "es", "a much longer string than twelve", "second"]);
    }

    #[test]
    fn depth_limit_is_orjsons() {
        let ok = format!("{{\"a\":{}1{}}}", "[".repeat(1023), "]".repeat(1023));
        let deep = format!("{{\"a\":{}1{}}}", "[".repeat(1024), "]".repeat(1024));
        let (_, status) = rows(&format!("{ok}\n{deep}\n"), &["a", "b"]);
        assert_eq!(status, vec![0, 1]);
        // The walk itself through nested arrays (a path goes on below `a`), and objects.
        let (_, status) = rows(&format!("{ok}\n{deep}\n"), &["a.b"]);
        assert_eq!(status, vec![0, 1]);
        let objects = |n: usize| format!("{{\"a\":{}1{}}}", "{\"b\":".repeat(n), "}".repeat(n));
        let (_, status) = rows(&format!("{}\n{}\n", objects(1023), objects(1024)), &["a.c", "x"]);
        assert_eq!(status, vec![0, 1]);
    }

    #[test]
    fn selected_lines_and_threads_agree() {
        let mut text = String::new();
        for i in 0..20_000 {
            text.push_str(&format!("{{\"n\":{i},\"o\":{{\"k\":[{i},\"{i}\"]}}}}\n"));
        }
        let fp = FieldPaths::new(["n", "o.k"]).unwrap();
        let one = extract_fields(text.as_bytes(), b'\n', &fp, None, Threads::Exactly(1)).unwrap();
        let many = extract_fields(text.as_bytes(), b'\n', &fp, None, Threads::Exactly(2)).unwrap();
        assert_eq!(one.lines, many.lines);
        for (a, b) in one.columns.iter().zip(&many.columns) {
            assert_eq!((0..a.rows).map(|i| a.row(i)).collect::<Vec<_>>(), (0..b.rows).map(|i| b.row(i)).collect::<Vec<_>>());
        }
        let picked: Vec<u32> = (0..20_000).step_by(7).collect();
        let sel = extract_fields(text.as_bytes(), b'\n', &fp, Some(&picked), Threads::Default).unwrap();
        assert_eq!(sel.lines, picked);
        assert_eq!(sel.columns[0].row(1), Some(vec!["7"]));
        assert!(extract_fields(text.as_bytes(), b'\n', &fp, Some(&[3, 3]), Threads::Default).is_err());
        assert!(extract_fields(text.as_bytes(), b'\n', &fp, Some(&[20_000]), Threads::Default).is_err());
    }
}
