//! One automaton over many literal patterns, reporting **every** pattern present in each line.
//!
//! Detection rules each own their literals, so a leftmost-first search is not enough: when "ssh"
//! and "sshd" are both patterns, a line containing "sshd" must report both. The automaton is an
//! `aho-corasick` automaton with standard (overlapping) semantics; duplicate patterns are folded to
//! one automaton pattern and expanded back to every original id when reporting.
//!
//! Lines are split on one separator byte. A trailing separator does not start a new line, a missing
//! trailing separator is fine, and a match never spans a separator: a pattern that contains the
//! separator byte can therefore never match a line (it is accepted, because the separator is chosen
//! per call, and reported nowhere). The whole buffer is searched in one pass and matches are mapped
//! to lines with `memchr`, instead of one search per line, which would pay the search set-up cost
//! for each of millions of short lines.
//!
//! Large buffers are cut into chunks at separators and searched in parallel with rayon; chunk
//! results are concatenated in order, so the output is identical to the sequential scan.
//!
//! `match_lines` and `any_lines` have a second engine for large pattern sets ([`Engine::Hashed`]).
//! The automaton walks a transition table bigger than the caches, one dependent load per byte.
//! The hashed engine splits the patterns by length: patterns of 11+ bytes (IPs, domains, most
//! rule literals) are found through the 8-byte windows starting at every 4th byte only (four keys
//! per pattern, one per start phase; 8 windows hashed and tested per AVX2 step), shorter ones
//! with Teddy (few, case-sensitive) or a per-byte gate on hashed 4-byte windows; every candidate
//! is verified against the pattern. Measured with `benchmarks/bench_matcher.py` (250 MB of
//! NDJSON logs, 2,000 patterns, one thread, CPU time of a mmapped scan, shared machine): the
//! automaton ~410 MB/s, the former per-byte gate for every pattern ~720 MB/s, this split
//! ~1,350 MB/s. Tests run every case against every engine, with and without SIMD, and with
//! each path for the shorter patterns.

use std::collections::HashMap;

use aho_corasick::{packed, AhoCorasick, AhoCorasickKind, Input, MatchKind, Span};
use rayon::prelude::*;

use crate::error::{CoreError, Result};

/// Above this many pattern bytes in total the automaton is a contiguous NFA instead of a DFA: the
/// DFA table holds (states × byte classes) entries, which for 100k+ patterns is hundreds of MB.
const DFA_MAX_PATTERN_BYTES: usize = 200_000;

/// Chunk size for the parallel scan. Large enough that the per-chunk set-up (a `seen` table the
/// size of the pattern set) is noise, small enough to balance work over a few cores.
pub const DEFAULT_CHUNK_BYTES: usize = 4 << 20;

/// Which automaton to build. `Auto` picks a DFA for small pattern sets and a contiguous NFA for
/// large ones; the other two exist so tests can run every case against both.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AutomatonChoice {
    Auto,
    Dfa,
    Nfa,
}

/// Builder of a [`Matcher`]: `MatcherBuilder::new().ascii_case_insensitive(true).build(pats)?`.
#[derive(Clone, Debug)]
pub struct MatcherBuilder {
    ascii_case_insensitive: bool,
    automaton: AutomatonChoice,
    engine: Engine,
    simd: bool,
    narrow: NarrowChoice,
    piece_bytes: usize,
}

/// Which engine `match_lines` and `any_lines` use. Both give the same answers; `find_all` and the
/// column methods always use the automaton.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Engine {
    /// `Hashed` when every pattern has at least [`WINDOW`] bytes and there are more than
    /// [`HASHED_MIN_PATTERNS`] (and at most [`HASHED_MAX_PATTERNS`]); otherwise `Automaton`.
    Auto,
    /// The Aho-Corasick automaton over the whole buffer.
    Automaton,
    /// Filters on hashed windows (8-byte windows at every 4th byte for patterns of 11+ bytes;
    /// Teddy or a per-byte 4-byte-window gate for shorter ones), candidates verified.
    Hashed,
}

impl Engine {
    pub fn name(self) -> &'static str {
        match self {
            Engine::Auto => "auto",
            Engine::Automaton => "automaton",
            Engine::Hashed => "hashed",
        }
    }
}

impl Default for MatcherBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl MatcherBuilder {
    pub fn new() -> Self {
        MatcherBuilder {
            ascii_case_insensitive: false,
            automaton: AutomatonChoice::Auto,
            engine: Engine::Auto,
            simd: true,
            narrow: NarrowChoice::Auto,
            piece_bytes: DEFAULT_PIECE_BYTES,
        }
    }

    /// Match ASCII letters regardless of case (non-ASCII bytes still match exactly).
    pub fn ascii_case_insensitive(&mut self, yes: bool) -> &mut Self {
        self.ascii_case_insensitive = yes;
        self
    }

    pub fn automaton(&mut self, choice: AutomatonChoice) -> &mut Self {
        self.automaton = choice;
        self
    }

    pub fn engine(&mut self, engine: Engine) -> &mut Self {
        self.engine = engine;
        self
    }

    /// Let the hashed engine use SIMD when the CPU has it (the default). Off: the scalar loop,
    /// which tests compare the SIMD one against.
    pub fn simd(&mut self, yes: bool) -> &mut Self {
        self.simd = yes;
        self
    }

    /// How the hashed engine searches its patterns shorter than [`WIDE_MIN_LEN`] bytes: Teddy
    /// when it applies (the default), or always the per-byte gate (its twin, for tests).
    pub fn narrow(&mut self, choice: NarrowChoice) -> &mut Self {
        self.narrow = choice;
        self
    }

    /// Size of the pieces the hashed engine scans a run of lines in (whole lines, at least one).
    /// The default suits the caches; tests make it tiny so pieces end everywhere.
    pub fn piece_bytes(&mut self, bytes: usize) -> &mut Self {
        self.piece_bytes = bytes;
        self
    }

    /// Build the matcher. Fails on an empty pattern (it would match everywhere, which is never
    /// what a rule means) and on more patterns than a `u32` id can name.
    pub fn build<I, P>(&self, patterns: I) -> Result<Matcher>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        let patterns: Vec<Vec<u8>> = patterns.into_iter().map(|p| p.as_ref().to_vec()).collect();
        if patterns.len() >= u32::MAX as usize {
            return Err(CoreError::invalid(format!(
                "{} patterns; the limit is {}",
                patterns.len(),
                u32::MAX - 1
            )));
        }
        if let Some(i) = patterns.iter().position(|p| p.is_empty()) {
            return Err(CoreError::invalid(format!(
                "pattern {i} is empty; every pattern needs at least one byte"
            )));
        }

        // Fold duplicates (under the matcher's notion of equality) to one automaton pattern.
        let fold = |p: &[u8]| -> Vec<u8> {
            if self.ascii_case_insensitive {
                p.to_ascii_lowercase()
            } else {
                p.to_vec()
            }
        };
        let mut unique_of: HashMap<Vec<u8>, u32> = HashMap::with_capacity(patterns.len());
        let mut unique: Vec<&[u8]> = Vec::with_capacity(patterns.len());
        let mut unique_index: Vec<u32> = Vec::with_capacity(patterns.len());
        for p in &patterns {
            let next = unique.len() as u32;
            let u = *unique_of.entry(fold(p)).or_insert_with(|| {
                unique.push(p);
                next
            });
            unique_index.push(u);
        }
        drop(unique_of);
        let duplicates = if unique.len() == patterns.len() {
            None
        } else {
            Some(Duplicates::new(&unique_index, unique.len()))
        };

        let automaton = if unique.is_empty() {
            None
        } else {
            let total: usize = unique.iter().map(|p| p.len()).sum();
            let kind = match self.automaton {
                AutomatonChoice::Dfa => AhoCorasickKind::DFA,
                AutomatonChoice::Nfa => AhoCorasickKind::ContiguousNFA,
                AutomatonChoice::Auto if total <= DFA_MAX_PATTERN_BYTES => AhoCorasickKind::DFA,
                AutomatonChoice::Auto => AhoCorasickKind::ContiguousNFA,
            };
            let ac = AhoCorasick::builder()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(self.ascii_case_insensitive)
                .kind(Some(kind))
                .build(&unique)
                .map_err(|e| {
                    CoreError::invalid(format!(
                        "cannot build an automaton over {} patterns: {e}",
                        unique.len()
                    ))
                })?;
            Some(ac)
        };
        let hashed = match self.engine {
            Engine::Automaton => None,
            Engine::Hashed => {
                if let Some(i) = patterns.iter().position(|p| p.len() < WINDOW) {
                    return Err(CoreError::invalid(format!(
                        "pattern {i} is {} bytes; the hashed engine needs patterns of at least {WINDOW} bytes",
                        patterns[i].len()
                    )));
                }
                Some(HashedEngine::new(
                    &unique,
                    self.ascii_case_insensitive,
                    self.simd,
                    self.narrow,
                    self.piece_bytes,
                ))
            }
            Engine::Auto => {
                let fits = unique.len() > HASHED_MIN_PATTERNS
                    && unique.len() <= HASHED_MAX_PATTERNS
                    && unique.iter().all(|p| p.len() >= WINDOW);
                fits.then(|| {
                    HashedEngine::new(
                        &unique,
                        self.ascii_case_insensitive,
                        self.simd,
                        self.narrow,
                        self.piece_bytes,
                    )
                })
            }
        };
        Ok(Matcher {
            patterns,
            ascii_case_insensitive: self.ascii_case_insensitive,
            automaton,
            hashed,
            duplicates,
        })
    }
}

/// For each automaton (unique) pattern, the original pattern ids it stands for, in CSR form.
#[derive(Debug)]
struct Duplicates {
    offsets: Vec<u32>,
    ids: Vec<u32>,
}

impl Duplicates {
    fn new(unique_index: &[u32], n_unique: usize) -> Self {
        let mut offsets = vec![0u32; n_unique + 1];
        for &u in unique_index {
            offsets[u as usize + 1] += 1;
        }
        for i in 0..n_unique {
            offsets[i + 1] += offsets[i];
        }
        let mut fill = offsets.clone();
        let mut ids = vec![0u32; unique_index.len()];
        // Original ids are visited in increasing order, so each group comes out sorted.
        for (orig, &u) in unique_index.iter().enumerate() {
            ids[fill[u as usize] as usize] = orig as u32;
            fill[u as usize] += 1;
        }
        Duplicates { offsets, ids }
    }

    fn originals(&self, unique: u32) -> &[u32] {
        let u = unique as usize;
        &self.ids[self.offsets[u] as usize..self.offsets[u + 1] as usize]
    }
}

/// Every (line, pattern) pair present, sorted by line then pattern id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct LineMatches {
    pub lines: Vec<u32>,
    pub patterns: Vec<u32>,
}

/// Every occurrence of every pattern, sorted by start then pattern id.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Occurrences {
    pub patterns: Vec<u32>,
    pub starts: Vec<u64>,
    pub ends: Vec<u64>,
}

/// How to scan: sequentially, or in parallel over chunks of about `chunk_bytes`.
#[derive(Clone, Copy, Debug)]
pub struct ScanOptions {
    pub parallel: bool,
    pub chunk_bytes: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            parallel: true,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
        }
    }
}

impl ScanOptions {
    pub fn sequential() -> Self {
        ScanOptions {
            parallel: false,
            chunk_bytes: DEFAULT_CHUNK_BYTES,
        }
    }
}

/// Per-scan scratch: which unique patterns were already reported for the current line. Stamping
/// with a line epoch avoids clearing the table between lines.
struct Seen {
    stamp: Vec<u32>,
    epoch: u32,
}

impl Seen {
    fn new(n: usize) -> Self {
        Seen {
            stamp: vec![0; n],
            epoch: 0,
        }
    }

    fn next_line(&mut self) {
        self.epoch = self.epoch.wrapping_add(1);
        if self.epoch == 0 {
            self.stamp.iter_mut().for_each(|s| *s = 0);
            self.epoch = 1;
        }
    }

    /// True the first time `u` is seen on the current line.
    fn first(&mut self, u: u32) -> bool {
        let s = &mut self.stamp[u as usize];
        if *s == self.epoch {
            false
        } else {
            *s = self.epoch;
            true
        }
    }
}

/// The matcher: immutable once built, `Send + Sync`, searched from many threads at once.
#[derive(Debug)]
pub struct Matcher {
    patterns: Vec<Vec<u8>>,
    ascii_case_insensitive: bool,
    automaton: Option<AhoCorasick>,
    hashed: Option<HashedEngine>,
    duplicates: Option<Duplicates>,
}

impl Matcher {
    /// Shorthand for `MatcherBuilder::new().build(patterns)`.
    pub fn new<I, P>(patterns: I) -> Result<Matcher>
    where
        I: IntoIterator<Item = P>,
        P: AsRef<[u8]>,
    {
        MatcherBuilder::new().build(patterns)
    }

    pub fn len(&self) -> usize {
        self.patterns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.patterns.is_empty()
    }

    pub fn pattern(&self, id: usize) -> Option<&[u8]> {
        self.patterns.get(id).map(|p| p.as_slice())
    }

    pub fn patterns(&self) -> &[Vec<u8>] {
        &self.patterns
    }

    pub fn ascii_case_insensitive(&self) -> bool {
        self.ascii_case_insensitive
    }

    /// The engine `match_lines` and `any_lines` use: `Automaton` or `Hashed`.
    pub fn engine(&self) -> Engine {
        if self.hashed.is_some() {
            Engine::Hashed
        } else {
            Engine::Automaton
        }
    }

    /// Every (line, pattern) pair present in `hay`, each once, sorted by line then pattern.
    pub fn match_lines(&self, hay: &[u8], sep: u8, opts: ScanOptions) -> Result<LineMatches> {
        check_line_limit(hay, sep)?;
        let Some(ac) = &self.automaton else {
            return Ok(LineMatches::default());
        };
        let n_unique = ac.patterns_len();
        let scan = |chunk: &[u8], seen: &mut Seen, out: &mut LineMatches| -> u32 {
            match &self.hashed {
                Some(he) => self.scan_chunk_hashed(he, chunk, sep, seen, out),
                None => self.scan_chunk(ac, chunk, sep, seen, out),
            }
        };
        let chunks = split_chunks(hay, sep, opts);
        if chunks.len() <= 1 {
            let mut out = LineMatches::default();
            scan(hay, &mut Seen::new(n_unique), &mut out);
            return Ok(out);
        }
        let parts: Vec<(u32, LineMatches)> = chunks
            .par_iter()
            .map_init(
                || Seen::new(n_unique),
                |seen, &(a, b)| {
                    let mut part = LineMatches::default();
                    let lines = scan(&hay[a..b], seen, &mut part);
                    (lines, part)
                },
            )
            .collect();
        let total: usize = parts.iter().map(|(_, p)| p.lines.len()).sum();
        let mut out = LineMatches {
            lines: Vec::with_capacity(total),
            patterns: Vec::with_capacity(total),
        };
        let mut base = 0u32;
        for (n_lines, part) in parts {
            out.lines.extend(part.lines.iter().map(|l| l + base));
            out.patterns.extend_from_slice(&part.patterns);
            base += n_lines;
        }
        Ok(out)
    }

    /// `scan_chunk` for the hashed engine.
    fn scan_chunk_hashed(
        &self,
        he: &HashedEngine,
        hay: &[u8],
        sep: u8,
        seen: &mut Seen,
        out: &mut LineMatches,
    ) -> u32 {
        let (pairs, n_lines) = he.line_pairs(hay, sep, seen);
        let mut found: Vec<u32> = Vec::new();
        let mut i = 0;
        while i < pairs.len() {
            let line = pairs[i].0;
            while i < pairs.len() && pairs[i].0 == line {
                found.push(pairs[i].1);
                i += 1;
            }
            self.flush_line(line, &mut found, out);
        }
        n_lines
    }

    /// Scan one run of whole lines; append its pairs (line numbers local to the run) to `out` and
    /// return how many lines the run has.
    fn scan_chunk(
        &self,
        ac: &AhoCorasick,
        hay: &[u8],
        sep: u8,
        seen: &mut Seen,
        out: &mut LineMatches,
    ) -> u32 {
        let mut seps = memchr::memchr_iter(sep, hay);
        let mut line: u32 = 0;
        let mut line_start = 0usize;
        // Position of the separator ending the current line (or the end of the buffer).
        let mut line_end = seps.next().unwrap_or(hay.len());
        let mut found: Vec<u32> = Vec::new();
        seen.next_line();
        // Overlapping matches come in order of their end, so lines are followed by match end.
        for m in ac.find_overlapping_iter(hay) {
            let end = m.end();
            if end > line_end {
                self.flush_line(line, &mut found, out);
                while end > line_end {
                    line += 1;
                    line_start = line_end + 1;
                    line_end = seps.next().unwrap_or(hay.len());
                }
                seen.next_line();
            }
            // A match starting before its line contains the separator: it is in no line.
            if m.start() < line_start {
                continue;
            }
            let u = m.pattern().as_u32();
            if seen.first(u) {
                found.push(u);
            }
        }
        self.flush_line(line, &mut found, out);
        line + count_lines(&hay[line_start..], sep) as u32
    }

    fn flush_line(&self, line: u32, found: &mut Vec<u32>, out: &mut LineMatches) {
        if found.is_empty() {
            return;
        }
        match &self.duplicates {
            None => {
                found.sort_unstable();
                out.patterns.extend_from_slice(found);
            }
            Some(dups) => {
                let start = out.patterns.len();
                for &u in found.iter() {
                    out.patterns.extend_from_slice(dups.originals(u));
                }
                out.patterns[start..].sort_unstable();
            }
        }
        out.lines.resize(out.patterns.len(), line);
        found.clear();
    }

    /// One flag per line: does any pattern occur in it?
    pub fn any_lines(&self, hay: &[u8], sep: u8, opts: ScanOptions) -> Result<Vec<bool>> {
        check_line_limit(hay, sep)?;
        let Some(ac) = &self.automaton else {
            return Ok(vec![false; count_lines(hay, sep)]);
        };
        let n_unique = ac.patterns_len();
        let scan = |chunk: &[u8], seen: &mut Seen| -> Vec<bool> {
            match &self.hashed {
                Some(he) => {
                    let (pairs, n_lines) = he.line_pairs(chunk, sep, seen);
                    let mut flags = vec![false; n_lines as usize];
                    for (line, _) in pairs {
                        flags[line as usize] = true;
                    }
                    flags
                }
                None => any_in_chunk(ac, chunk, sep),
            }
        };
        let chunks = split_chunks(hay, sep, opts);
        if chunks.len() <= 1 {
            return Ok(scan(hay, &mut Seen::new(n_unique)));
        }
        let parts: Vec<Vec<bool>> = chunks
            .par_iter()
            .map_init(
                || Seen::new(n_unique),
                |seen, &(a, b)| scan(&hay[a..b], seen),
            )
            .collect();
        Ok(parts.concat())
    }

    /// Every occurrence of every pattern anywhere in `hay` (separators are not special here),
    /// overlapping ones included, sorted by start then pattern id.
    pub fn find_all(&self, hay: &[u8]) -> Occurrences {
        let Some(ac) = &self.automaton else {
            return Occurrences::default();
        };
        let mut hits: Vec<(u64, u32, u64)> = Vec::new();
        for m in ac.find_overlapping_iter(hay) {
            let (s, e) = (m.start() as u64, m.end() as u64);
            match &self.duplicates {
                None => hits.push((s, m.pattern().as_u32(), e)),
                Some(d) => {
                    hits.extend(d.originals(m.pattern().as_u32()).iter().map(|&p| (s, p, e)))
                }
            }
        }
        hits.sort_unstable();
        let mut out = Occurrences {
            patterns: Vec::with_capacity(hits.len()),
            starts: Vec::with_capacity(hits.len()),
            ends: Vec::with_capacity(hits.len()),
        };
        for (s, p, e) in hits {
            out.patterns.push(p);
            out.starts.push(s);
            out.ends.push(e);
        }
        out
    }

    /// Every (item, pattern) pair over a sequence of separate byte strings (a string column);
    /// `None` items (nulls) match nothing. Items are independent: no separator is involved.
    pub fn match_items<'a, I>(&self, items: I) -> LineMatches
    where
        I: IntoIterator<Item = Option<&'a [u8]>>,
    {
        let mut out = LineMatches::default();
        let Some(ac) = &self.automaton else {
            return out;
        };
        let mut seen = Seen::new(ac.patterns_len());
        let mut found = Vec::new();
        for (row, item) in items.into_iter().enumerate() {
            let Some(item) = item else { continue };
            seen.next_line();
            for m in ac.find_overlapping_iter(item) {
                let u = m.pattern().as_u32();
                if seen.first(u) {
                    found.push(u);
                }
            }
            self.flush_line(row as u32, &mut found, &mut out);
        }
        out
    }

    /// Does any pattern occur in `item`?
    pub fn is_match(&self, item: &[u8]) -> bool {
        self.automaton.as_ref().is_some_and(|ac| ac.is_match(item))
    }
}

/// Length of the gate's windows: every pattern of the hashed engine needs at least this many bytes.
pub const WINDOW: usize = 4;
/// `Engine::Auto` uses the automaton for few patterns: its own prefilters (memchr, Teddy) are
/// faster there than any per-byte hashing.
pub const HASHED_MIN_PATTERNS: usize = 64;
/// ... and for very many: the bucket table grows with the pattern count and leaves the caches.
pub const HASHED_MAX_PATTERNS: usize = 200_000;

/// The hashed engine scans a run of lines in pieces of about this size: both of its scans read
/// a piece while it is in L2, and the short patterns' matches buffered for the merge stay few.
pub const DEFAULT_PIECE_BYTES: usize = 128 << 10;
/// Width of the wide filter's windows.
const WIDE_WIDTH: usize = 8;
/// Distance between the starts of two windows the wide filter looks at.
const WIDE_STRIDE: usize = 4;
/// Patterns at least this long go to the wide filter: any `WIDE_WIDTH + WIDE_STRIDE - 1` bytes
/// of text hold a whole window starting at a multiple of `WIDE_STRIDE`.
pub const WIDE_MIN_LEN: usize = WIDE_WIDTH + WIDE_STRIDE - 1;
/// At most this many shorter patterns are searched with Teddy (the limit of the aho-corasick
/// crate's packed searcher); more go to the per-byte gate.
pub const TEDDY_MAX_PATTERNS: usize = 64;
/// Bitmap bits per wide key: a random window passes with probability about 1/128 (64 and 256
/// measured the same on the benchmark: most windows that pass are real key windows).
const WIDE_BITS_PER_KEY: usize = 128;
/// Multipliers of the wide filter's hash of a window's two 32-bit halves (golden ratio and
/// xxHash's PRIME32_2; any two odd constants with well-mixed high bits do).
const WIDE_MULT_LO: u32 = 0x9E37_79B1;
const WIDE_MULT_HI: u32 = 0x85EB_CA77;

/// The hashed engine: two filters over two length classes of patterns, each verified exactly.
///
/// * Patterns of [`WIDE_MIN_LEN`]+ bytes (IPs, domains, most rule literals): the [`WideFilter`]
///   looks only at the 8-byte windows starting at every 4th byte, a quarter of the positions of a
///   per-byte scan, and an 8-byte window of log text seldom collides with a key by accident.
/// * Shorter patterns: Teddy (the aho-corasick crate's SIMD packed searcher) when there are few
///   of them and case matters, else the per-byte [`GateFilter`] on hashed 4-byte windows.
///
/// The two classes are scanned one after the other over the same run of lines and their
/// (line, pattern) pairs merged line by line.
#[derive(Debug)]
struct HashedEngine {
    /// Unique patterns, lowercased when case-insensitive (indexed by unique id).
    patterns: Vec<Vec<u8>>,
    case_insensitive: bool,
    wide: Option<WideFilter>,
    narrow: Option<Narrow>,
    /// Size of the pieces a run of lines is scanned in (see `line_pairs`).
    piece_bytes: usize,
}

#[derive(Debug)]
enum Narrow {
    Teddy(TeddyNarrow),
    Gate(GateFilter),
}

/// How the hashed engine handles its shorter patterns, for tests that force each path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NarrowChoice {
    /// Teddy when it applies (case-sensitive, at most [`TEDDY_MAX_PATTERNS`], a CPU with SSSE3).
    Auto,
    /// Always the per-byte gate.
    Gate,
}

impl HashedEngine {
    fn new(
        unique: &[&[u8]],
        case_insensitive: bool,
        simd: bool,
        narrow_choice: NarrowChoice,
        piece_bytes: usize,
    ) -> Self {
        let patterns: Vec<Vec<u8>> = unique
            .iter()
            .map(|p| {
                if case_insensitive {
                    p.to_ascii_lowercase()
                } else {
                    p.to_vec()
                }
            })
            .collect();
        let (mut wide, mut narrow) = (Vec::new(), Vec::new());
        for (u, p) in patterns.iter().enumerate() {
            if p.len() >= WIDE_MIN_LEN {
                wide.push((u as u32, p.as_slice()));
            } else {
                narrow.push((u as u32, p.as_slice()));
            }
        }
        let wide = (!wide.is_empty()).then(|| WideFilter::new(&wide, simd));
        let narrow = if narrow.is_empty() {
            None
        } else {
            let teddy = (narrow_choice == NarrowChoice::Auto
                && !case_insensitive
                && narrow.len() <= TEDDY_MAX_PATTERNS)
                .then(|| TeddyNarrow::new(&narrow))
                .flatten();
            Some(match teddy {
                Some(t) => Narrow::Teddy(t),
                None => Narrow::Gate(GateFilter::new(&narrow, simd)),
            })
        };
        HashedEngine {
            patterns,
            case_insensitive,
            wide,
            narrow,
            piece_bytes: piece_bytes.max(1),
        }
    }

    /// Every (line, unique pattern) pair of one run of whole lines, sorted by line (patterns of a
    /// line unsorted, each once), and the number of lines of the run.
    ///
    /// The run is taken in pieces of about `piece_bytes` whole lines: the shorter patterns' scan
    /// collects its matches of the piece, then the wide scan runs over the same bytes (still in
    /// L2) and both streams of matches, each in order of position, are merged into one walk over
    /// the lines (one `memchr` pass for both). The piece bounds the buffered matches.
    fn line_pairs(&self, hay: &[u8], sep: u8, seen: &mut Seen) -> (Vec<(u32, u32)>, u32) {
        let mut pairs = Vec::new();
        let mut narrow_hits: Vec<Hit> = Vec::new();
        let mut n_lines = 0u32;
        let mut piece_start = 0;
        while piece_start < hay.len() {
            let piece_end = match hay.get(piece_start + self.piece_bytes..) {
                None => hay.len(),
                Some(rest) => match memchr::memchr(sep, rest) {
                    Some(i) => piece_start + self.piece_bytes + i + 1,
                    None => hay.len(),
                },
            };
            let piece = &hay[piece_start..piece_end];
            narrow_hits.clear();
            if let Some(n) = &self.narrow {
                self.scan_narrow(n, piece, |pos, start, end, unique| {
                    narrow_hits.push(Hit {
                        pos,
                        start,
                        end,
                        unique,
                    })
                });
            }
            let mut lines = PairCollector::new(piece, sep, seen, &mut pairs, n_lines);
            let mut next = 0;
            if let Some(w) = &self.wide {
                let mut on_match = |pos: usize, start: usize, end: usize, unique: u32| {
                    while let Some(h) = narrow_hits.get(next).filter(|h| h.pos <= pos) {
                        lines.push(h.pos, h.start, h.end, h.unique);
                        next += 1;
                    }
                    lines.push(pos, start, end, unique);
                };
                if self.case_insensitive {
                    w.scan::<true>(piece, &self.patterns, &mut on_match);
                } else {
                    w.scan::<false>(piece, &self.patterns, &mut on_match);
                }
            }
            for h in &narrow_hits[next..] {
                lines.push(h.pos, h.start, h.end, h.unique);
            }
            n_lines += lines.finish();
            piece_start = piece_end;
        }
        (pairs, n_lines)
    }

    fn scan_narrow(
        &self,
        narrow: &Narrow,
        hay: &[u8],
        on_match: impl FnMut(usize, usize, usize, u32),
    ) {
        let pats = self.patterns.as_slice();
        match narrow {
            Narrow::Teddy(t) => t.scan(hay, pats, on_match),
            Narrow::Gate(g) if self.case_insensitive => g.scan::<true>(hay, pats, on_match),
            Narrow::Gate(g) => g.scan::<false>(hay, pats, on_match),
        }
    }
}

/// A verified match: `pos` is where the scan found it (inside the match), `start..end` the match.
#[derive(Clone, Copy, Debug)]
struct Hit {
    pos: usize,
    start: usize,
    end: usize,
    unique: u32,
}

/// Follows lines while matches arrive in order of a position inside them (`pos`), keeping each
/// (line, pattern) pair once. A match that does not lie inside the line of `pos` holds a
/// separator and is in no line. Line numbers start at `first_line`.
struct PairCollector<'a> {
    seps: memchr::Memchr<'a>,
    hay_len: usize,
    line: u32,
    line_start: usize,
    line_end: usize,
    seen: &'a mut Seen,
    out: &'a mut Vec<(u32, u32)>,
    hay: &'a [u8],
    sep: u8,
    first_line: u32,
}

impl<'a> PairCollector<'a> {
    fn new(
        hay: &'a [u8],
        sep: u8,
        seen: &'a mut Seen,
        out: &'a mut Vec<(u32, u32)>,
        first_line: u32,
    ) -> Self {
        let mut seps = memchr::memchr_iter(sep, hay);
        let line_end = seps.next().unwrap_or(hay.len());
        seen.next_line();
        PairCollector {
            seps,
            hay_len: hay.len(),
            line: first_line,
            line_start: 0,
            line_end,
            seen,
            out,
            hay,
            sep,
            first_line,
        }
    }

    #[inline]
    fn push(&mut self, pos: usize, start: usize, end: usize, u: u32) {
        if pos > self.line_end {
            while pos > self.line_end {
                self.line += 1;
                self.line_start = self.line_end + 1;
                self.line_end = self.seps.next().unwrap_or(self.hay_len);
            }
            self.seen.next_line();
        }
        if start >= self.line_start && end <= self.line_end && self.seen.first(u) {
            self.out.push((self.line, u));
        }
    }

    /// The number of lines of the run.
    fn finish(self) -> u32 {
        self.line - self.first_line + count_lines(&self.hay[self.line_start..], self.sep) as u32
    }
}

/// Does `text` equal the pattern (lowercased already when `CI`), both of the same length?
/// Patterns of 8 to 16 bytes (IPs, most keywords) are compared as two overlapping 8-byte words,
/// without a call to `memcmp` and its length dispatch.
#[inline(always)]
fn same<const CI: bool>(text: &[u8], pattern: &[u8]) -> bool {
    let n = pattern.len();
    debug_assert_eq!(text.len(), n);
    if (8..=16).contains(&n) {
        let head = |s: &[u8]| u64::from_le_bytes(s[..8].try_into().expect("8 bytes"));
        let tail = |s: &[u8]| u64::from_le_bytes(s[n - 8..n].try_into().expect("8 bytes"));
        if CI {
            fold_word(head(text)) == head(pattern) && fold_word(tail(text)) == tail(pattern)
        } else {
            head(text) == head(pattern) && tail(text) == tail(pattern)
        }
    } else if CI {
        text.eq_ignore_ascii_case(pattern)
    } else {
        text == pattern
    }
}

/// The filter of the long patterns. Each pattern gets four keys, one per phase (start position
/// modulo 4): for phase r, the rarest 8-byte window of the pattern starting at an offset o with
/// o = r (mod 4). An occurrence starting at t then holds its phase's key window at t + o, which
/// starts at a multiple of 4; so the scan hashes only the windows starting at multiples of 4, a
/// quarter of the positions of a per-byte scan, tests one bit each, and looks up the bucket of
/// candidates (exact key, offset, pattern) on a set bit. With AVX2, 8 windows are hashed with two
/// multiplies straight from two unaligned 32-byte loads (no shuffle: the windows' halves are the
/// loads' 32-bit lanes) and their bits fetched with one gather.
#[derive(Debug)]
struct WideFilter {
    /// `hash >> shift` is the bitmap bit, `hash >> bucket_shift` the bucket.
    shift: u32,
    bucket_shift: u32,
    /// 32-bit words, so the AVX2 gather reads them directly.
    bitmap: Vec<u32>,
    /// Candidates of bucket b: `candidates[bucket_start[b]..bucket_start[b + 1]]`.
    bucket_start: Vec<u32>,
    candidates: Vec<WideCandidate>,
    simd: bool,
}

#[derive(Clone, Copy, Debug)]
struct WideCandidate {
    /// The window's 8 bytes, little-endian (as the scan reads them).
    key: u64,
    unique: u32,
    /// Where the window starts inside the pattern.
    offset: u32,
}

#[inline(always)]
fn wide_hash(window: u64) -> u32 {
    (window as u32).wrapping_mul(WIDE_MULT_LO) ^ ((window >> 32) as u32).wrapping_mul(WIDE_MULT_HI)
}

/// The 8 bytes at `at` as the scan reads them (little-endian, ASCII-lowercased when `CI`).
#[inline(always)]
fn window8<const CI: bool>(hay: &[u8], at: usize) -> u64 {
    let w = u64::from_le_bytes(hay[at..at + 8].try_into().expect("8 bytes"));
    if CI {
        fold_word(w)
    } else {
        w
    }
}

/// ASCII-lowercase the 8 bytes of `w` at once (SWAR): bytes in 'A'..='Z' get 0x20 added, every
/// other byte (those >= 0x80 included) is kept.
#[inline(always)]
fn fold_word(w: u64) -> u64 {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low7 = w & !HIGH;
    // Per byte (of its low 7 bits): >= 'A' sets bit 7 of (low7 + (0x80 - 'A')), > 'Z' sets bit 7
    // of (low7 + (0x80 - 'Z' - 1)); neither add carries into the next byte.
    let ge_a = low7 + ONES * (0x80 - b'A' as u64);
    let gt_z = low7 + ONES * (0x80 - b'Z' as u64 - 1);
    let upper = ge_a & !gt_z & !w & HIGH;
    w | (upper >> 2)
}

impl WideFilter {
    fn new(members: &[(u32, &[u8])], simd: bool) -> Self {
        let mut keyed: Vec<(u32, WideCandidate)> = Vec::with_capacity(members.len() * WIDE_STRIDE);
        for &(unique, p) in members {
            for phase in 0..WIDE_STRIDE {
                // Rarest window of this phase; on ties the later one (pattern ends are specific).
                let offsets: Vec<usize> = (phase..p.len() - WIDE_WIDTH + 1)
                    .step_by(WIDE_STRIDE)
                    .collect();
                let offset = offsets
                    .into_iter()
                    .rev()
                    .min_by_key(|&o| {
                        p[o..o + WIDE_WIDTH]
                            .iter()
                            .map(|&b| commonness(b))
                            .sum::<u32>()
                    })
                    .expect("pattern of at least WIDE_MIN_LEN bytes");
                let key =
                    u64::from_le_bytes(p[offset..offset + WIDE_WIDTH].try_into().expect("8 bytes"));
                keyed.push((
                    wide_hash(key),
                    WideCandidate {
                        key,
                        unique,
                        offset: offset as u32,
                    },
                ));
            }
        }
        // At most 2^24 bits (2 MB): beyond, the bitmap leaves L2 and every gather waits on L3.
        let bits = (usize::BITS - (keyed.len().max(1) * WIDE_BITS_PER_KEY - 1).leading_zeros())
            .clamp(12, 24);
        let shift = 32 - bits;
        // About one key per bucket: the bucket table stays a few bytes per key (32 KB for 2,000
        // patterns), so a verification seldom misses the caches twice.
        let bucket_bits = (usize::BITS - (keyed.len().max(1) - 1).leading_zeros()).clamp(4, bits);
        let bucket_shift = 32 - bucket_bits;
        // Within a bucket, by (unique, offset): the scan's order of checks is then fixed.
        keyed.sort_unstable_by_key(|&(h, c)| (h >> bucket_shift, c.unique, c.offset));
        let mut bitmap = vec![0u32; (1usize << bits) / 32];
        let mut bucket_start = vec![0u32; (1usize << bucket_bits) + 1];
        for &(h, _) in &keyed {
            let bit = (h >> shift) as usize;
            bitmap[bit / 32] |= 1 << (bit % 32);
            bucket_start[(h >> bucket_shift) as usize + 1] += 1;
        }
        for b in 0..bucket_start.len() - 1 {
            bucket_start[b + 1] += bucket_start[b];
        }
        #[cfg(target_arch = "x86_64")]
        let simd = simd && std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let simd = false;
        WideFilter {
            shift,
            bucket_shift,
            bitmap,
            bucket_start,
            candidates: keyed.into_iter().map(|(_, c)| c).collect(),
            simd,
        }
    }

    /// Call `on_match(window_start, start, end, unique_id)` for every occurrence of every long
    /// pattern, in order of `window_start` (a multiple of 4 inside the occurrence).
    #[inline]
    fn scan<const CI: bool>(
        &self,
        hay: &[u8],
        patterns: &[Vec<u8>],
        mut on_match: impl FnMut(usize, usize, usize, u32),
    ) {
        let mut from = 0;
        #[cfg(target_arch = "x86_64")]
        if self.simd {
            // SAFETY: `simd` is only true when the CPU has AVX2 (checked in `new`).
            from = unsafe { self.scan_avx2::<CI>(hay, patterns, &mut on_match) };
        }
        self.scan_scalar::<CI>(hay, from, patterns, &mut on_match);
    }

    /// Windows starting at `from, from + 4, ...` (`from` a multiple of 4), one at a time.
    fn scan_scalar<const CI: bool>(
        &self,
        hay: &[u8],
        from: usize,
        patterns: &[Vec<u8>],
        on_match: &mut impl FnMut(usize, usize, usize, u32),
    ) {
        let mut at = from;
        while at + WIDE_WIDTH <= hay.len() {
            let w = window8::<CI>(hay, at);
            let h = wide_hash(w);
            let bit = (h >> self.shift) as usize;
            // `bit < 2^(32 - shift) = 32 * bitmap.len()`, so the index is in range.
            if self.bitmap[bit / 32] & (1 << (bit % 32)) != 0 {
                self.verify::<CI>(hay, at, w, h, patterns, on_match);
            }
            at += WIDE_STRIDE;
        }
    }

    /// 8 windows per step: the windows starting at `at + 4k` (k = 0..8) have their low halves in
    /// the 32-bit lanes of the 32 bytes at `at` and their high halves in those of the 32 bytes at
    /// `at + 4`. Returns the first window start left for the scalar loop.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn scan_avx2<const CI: bool>(
        &self,
        hay: &[u8],
        patterns: &[Vec<u8>],
        on_match: &mut impl FnMut(usize, usize, usize, u32),
    ) -> usize {
        use std::arch::x86_64::*;
        const STEP: usize = 8 * WIDE_STRIDE;
        let mult_lo = _mm256_set1_epi32(WIDE_MULT_LO as i32);
        let mult_hi = _mm256_set1_epi32(WIDE_MULT_HI as i32);
        let shift = _mm_cvtsi32_si128(self.shift as i32);
        let low5 = _mm256_set1_epi32(31);
        let bitmap = self.bitmap.as_ptr() as *const i32;
        let (before_upper, after_upper, case_bit) = (
            _mm256_set1_epi8(b'A' as i8 - 1),
            _mm256_set1_epi8(b'Z' as i8 + 1),
            _mm256_set1_epi8(0x20),
        );
        let fold = |v: __m256i| -> __m256i {
            // Signed compares: bytes >= 0x80 are negative and never upper case.
            let upper = _mm256_and_si256(
                _mm256_cmpgt_epi8(v, before_upper),
                _mm256_cmpgt_epi8(after_upper, v),
            );
            _mm256_or_si256(v, _mm256_and_si256(upper, case_bit))
        };
        let base = hay.as_ptr();
        let mut at = 0usize;
        // Reads bytes at .. at + 36.
        while at + STEP + WIDE_STRIDE <= hay.len() {
            let mut lo = _mm256_loadu_si256(base.add(at) as *const __m256i);
            let mut hi = _mm256_loadu_si256(base.add(at + WIDE_STRIDE) as *const __m256i);
            if CI {
                lo = fold(lo);
                hi = fold(hi);
            }
            let h = _mm256_xor_si256(
                _mm256_mullo_epi32(lo, mult_lo),
                _mm256_mullo_epi32(hi, mult_hi),
            );
            let bit = _mm256_srl_epi32(h, shift);
            let words = _mm256_i32gather_epi32::<4>(bitmap, _mm256_srli_epi32::<5>(bit));
            // Move bit (bit % 32) of each word to the lane's sign: shift left by 31 - bit % 32.
            let top = _mm256_sllv_epi32(words, _mm256_xor_si256(_mm256_and_si256(bit, low5), low5));
            let hits = _mm256_movemask_ps(_mm256_castsi256_ps(top)) as u32;
            if hits != 0 {
                self.block_hits::<CI>(hay, at, hits, patterns, on_match);
            }
            at += STEP;
        }
        at
    }

    #[cold]
    #[inline(never)]
    fn block_hits<const CI: bool>(
        &self,
        hay: &[u8],
        first: usize,
        mut hits: u32,
        patterns: &[Vec<u8>],
        on_match: &mut impl FnMut(usize, usize, usize, u32),
    ) {
        while hits != 0 {
            let at = first + WIDE_STRIDE * hits.trailing_zeros() as usize;
            hits &= hits - 1;
            let w = window8::<CI>(hay, at);
            self.verify::<CI>(hay, at, w, wide_hash(w), patterns, on_match);
        }
    }

    #[inline(never)]
    fn verify<const CI: bool>(
        &self,
        hay: &[u8],
        at: usize,
        window: u64,
        h: u32,
        patterns: &[Vec<u8>],
        on_match: &mut impl FnMut(usize, usize, usize, u32),
    ) {
        let b = (h >> self.bucket_shift) as usize;
        let bucket =
            &self.candidates[self.bucket_start[b] as usize..self.bucket_start[b + 1] as usize];
        for c in bucket {
            if c.key != window {
                continue;
            }
            let Some(start) = at.checked_sub(c.offset as usize) else {
                continue;
            };
            let pattern = &patterns[c.unique as usize];
            let end = start + pattern.len();
            if end <= hay.len() && same::<CI>(&hay[start..end], pattern) {
                on_match(at, start, end, c.unique);
            }
        }
    }
}

/// The shorter patterns when few and case-sensitive: Teddy finds the leftmost position where one
/// of them starts; every short pattern starting there is checked (a table by first byte), and the
/// search resumes one byte later, so overlapping matches are all seen.
#[derive(Debug)]
struct TeddyNarrow {
    searcher: packed::Searcher,
    /// Unique ids of the short patterns, by their first byte.
    by_first_byte: Vec<Vec<u32>>,
}

impl TeddyNarrow {
    fn new(members: &[(u32, &[u8])]) -> Option<Self> {
        let mut builder = packed::Config::new()
            .match_kind(packed::MatchKind::LeftmostFirst)
            .builder();
        for &(_, p) in members {
            builder.add(p);
        }
        let searcher = builder.build()?;
        let mut by_first_byte = vec![Vec::new(); 256];
        for &(u, p) in members {
            by_first_byte[p[0] as usize].push(u);
        }
        Some(TeddyNarrow {
            searcher,
            by_first_byte,
        })
    }

    /// Call `on_match(start, start, end, unique_id)` for every occurrence, in order of start.
    fn scan(
        &self,
        hay: &[u8],
        patterns: &[Vec<u8>],
        mut on_match: impl FnMut(usize, usize, usize, u32),
    ) {
        let mut from = 0;
        while from < hay.len() {
            let Some(m) = self.searcher.find_in(hay, Span::from(from..hay.len())) else {
                break;
            };
            let start = m.start();
            for &u in &self.by_first_byte[hay[start] as usize] {
                let pattern = &patterns[u as usize];
                if hay[start..].starts_with(pattern) {
                    on_match(start, start, start + pattern.len(), u);
                }
            }
            from = start + 1;
        }
    }
}

/// The per-byte gate for shorter patterns (4 bytes or more) that Teddy does not take. Each
/// pattern is represented by one window of itself (its "key"): 8 bytes for patterns of 8 bytes or
/// more, 4 bytes for shorter ones, chosen to be made of uncommon bytes. The scan hashes the 4-byte
/// windows ending at every byte of the haystack and tests one bit of a bitmap each; only on a set
/// bit are the exact 4- or 8-byte keys and then the candidates of that bucket compared with the
/// text. Every window is independent of the previous one, so the CPU overlaps the work of many
/// bytes, and the bitmaps stay in L1/L2.
#[derive(Debug)]
struct GateFilter {
    /// First stage, tested at every byte: one bit per hashed 4-byte window (a short pattern's key,
    /// or the last 4 bytes of a long pattern's key). Small enough to stay in L1/L2.
    gate_shift: u32,
    gate: Vec<u64>,
    short: Option<KeyFilter>,
    long: Option<KeyFilter>,
    /// Test the gate 8 windows at a time with AVX2 (detected at build time; tests turn it off to
    /// run the scalar loop, its twin).
    simd: bool,
}

const BITS_PER_KEY: usize = 512;
/// Gate bits per key: the gate is checked at every byte, so it trades selectivity for size.
const GATE_BITS_PER_KEY: usize = 128;
/// Multiplier of the gate's 32-bit hash (Knuth's golden-ratio constant).
const GATE_MULTIPLIER: u32 = 0x9E37_79B1;
/// Bitmap bits per bucket of candidates (the bucket table is this much smaller than the bitmap).
const BITS_PER_BUCKET_LOG2: u32 = 4;

/// The keys of one window width.
#[derive(Debug)]
struct KeyFilter {
    width: usize,
    /// `hash >> bitmap_shift` indexes the bitmap, `hash >> bucket_shift` the buckets.
    bitmap_shift: u32,
    bucket_shift: u32,
    bitmap: Vec<u64>,
    /// Candidates of bucket b: `candidates[bucket_start[b]..bucket_start[b + 1]]`.
    bucket_start: Vec<u32>,
    candidates: Vec<Candidate>,
}

#[derive(Clone, Copy, Debug)]
struct Candidate {
    /// The window's bytes as the scan reads them (big-endian order of arrival).
    key: u64,
    unique: u32,
    /// Where the window starts inside the pattern.
    offset: u32,
}

/// How common a byte is in log text (lower is rarer): keys are chosen to minimise the sum, so
/// their windows seldom occur by chance. JSON punctuation and lowercase letters are everywhere.
fn commonness(b: u8) -> u32 {
    match b {
        b'a'..=b'z' | b' ' | b'"' | b':' | b',' | b'_' | b'{' | b'}' => 4,
        b'0'..=b'9' => 3,
        b'A'..=b'Z' | b'.' | b'-' | b'/' | b'=' => 2,
        _ => 1,
    }
}

#[inline(always)]
fn hash(key: u64) -> u64 {
    key.wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

impl KeyFilter {
    fn new(width: usize, members: &[(u32, &[u8])]) -> Self {
        let bits =
            (usize::BITS - (members.len().max(1) * BITS_PER_KEY - 1).leading_zeros()).clamp(10, 24);
        let bitmap_shift = 64 - bits;
        let bucket_bits = bits - BITS_PER_BUCKET_LOG2;
        let bucket_shift = 64 - bucket_bits;
        let n_buckets = 1usize << bucket_bits;
        let mut keyed: Vec<(u64, Candidate)> = Vec::with_capacity(members.len());
        for &(unique, p) in members {
            // The gate sees only the last 4 bytes of a key window, so pick the window whose last
            // 4 bytes are rarest; on ties the later one (pattern ends are more specific).
            let offset = (0..=p.len() - width)
                .rev()
                .min_by_key(|&o| {
                    p[o + width - WINDOW..o + width]
                        .iter()
                        .map(|&b| commonness(b))
                        .sum::<u32>()
                })
                .expect("pattern at least as long as the window");
            let key = p[offset..offset + width]
                .iter()
                .fold(0u64, |k, &b| (k << 8) | u64::from(b));
            keyed.push((
                hash(key),
                Candidate {
                    key,
                    unique,
                    offset: offset as u32,
                },
            ));
        }
        keyed.sort_unstable_by_key(|&(h, c)| (h >> bucket_shift, c.unique));
        let mut bitmap = vec![0u64; (1usize << bits).div_ceil(64)];
        let mut bucket_start = vec![0u32; n_buckets + 1];
        for &(h, _) in &keyed {
            let bit = (h >> bitmap_shift) as usize;
            bitmap[bit / 64] |= 1 << (bit % 64);
            bucket_start[(h >> bucket_shift) as usize + 1] += 1;
        }
        for b in 0..n_buckets {
            bucket_start[b + 1] += bucket_start[b];
        }
        let candidates = keyed.into_iter().map(|(_, c)| c).collect();
        KeyFilter {
            width,
            bitmap_shift,
            bucket_shift,
            bitmap,
            bucket_start,
            candidates,
        }
    }

    #[inline(always)]
    fn passes(&self, key: u64) -> bool {
        let bit = (hash(key) >> self.bitmap_shift) as usize;
        // SAFETY-free fast path: the index is below the bitmap size by construction of the shift.
        self.bitmap[bit / 64] & (1 << (bit % 64)) != 0
    }
}

impl GateFilter {
    fn new(members: &[(u32, &[u8])], simd: bool) -> Self {
        let (mut short, mut long) = (Vec::new(), Vec::new());
        for &(u, p) in members {
            if p.len() >= 8 {
                long.push((u, p));
            } else {
                short.push((u, p));
            }
        }
        let short = (!short.is_empty()).then(|| KeyFilter::new(WINDOW, &short));
        let long = (!long.is_empty()).then(|| KeyFilter::new(8, &long));
        let gate_keys: Vec<u32> = short
            .iter()
            .chain(long.iter())
            .flat_map(|f| f.candidates.iter().map(|c| c.key as u32))
            .collect();
        let bits = (usize::BITS - (gate_keys.len().max(1) * GATE_BITS_PER_KEY - 1).leading_zeros())
            .clamp(10, 24);
        let gate_shift = 32 - bits;
        let mut gate = vec![0u64; (1usize << bits).div_ceil(64)];
        for key in gate_keys {
            let bit = (key.wrapping_mul(GATE_MULTIPLIER) >> gate_shift) as usize;
            gate[bit / 64] |= 1 << (bit % 64);
        }
        #[cfg(target_arch = "x86_64")]
        let simd = simd && std::arch::is_x86_feature_detected!("avx2");
        #[cfg(not(target_arch = "x86_64"))]
        let simd = false;
        GateFilter {
            gate_shift,
            gate,
            short,
            long,
            simd,
        }
    }

    /// Call `on_match(window_end, start, end, unique_id)` for every occurrence of every pattern,
    /// in order of `window_end` (the last byte of the pattern's key window in the text).
    #[inline]
    fn scan<const CI: bool>(
        &self,
        hay: &[u8],
        patterns: &[Vec<u8>],
        mut on_match: impl FnMut(usize, usize, usize, u32),
    ) {
        let mut from = 0;
        #[cfg(target_arch = "x86_64")]
        if self.simd {
            // SAFETY: `simd` is only true when the CPU has AVX2 (checked in `new`).
            from = unsafe { self.scan_avx2::<CI>(hay, patterns, &mut on_match) };
        }
        self.scan_scalar::<CI>(hay, from.min(hay.len()), patterns, &mut on_match);
    }

    /// The gate for window ends `from..`, one byte at a time.
    fn scan_scalar<const CI: bool>(
        &self,
        hay: &[u8],
        from: usize,
        patterns: &[Vec<u8>],
        on_match: &mut impl FnMut(usize, usize, usize, u32),
    ) {
        let fold = |b: u8| if CI { b.to_ascii_lowercase() } else { b };
        let gate = self.gate.as_slice();
        let mut w: u32 = 0;
        // Prime the window with the bytes before `from`.
        for &b in &hay[from.saturating_sub(WINDOW - 1)..from] {
            w = (w << 8) | u32::from(fold(b));
        }
        for (i, &b) in hay.iter().enumerate().skip(from) {
            w = (w << 8) | u32::from(fold(b));
            let bit = (w.wrapping_mul(GATE_MULTIPLIER) >> self.gate_shift) as usize;
            // `bit < 2^(32 - gate_shift) = 64 * gate.len()`, so the index is in range.
            if gate[bit / 64] & (1 << (bit % 64)) != 0 && i + 1 >= WINDOW {
                self.second_stage::<CI>(hay, i, w, patterns, on_match);
            }
        }
    }

    /// The gate for 8 window ends at a time: one 16-byte load is shuffled into eight big-endian
    /// 4-byte windows, hashed with one multiply, and their bits fetched with one gather. Returns
    /// the first window end left for the scalar loop.
    #[cfg(target_arch = "x86_64")]
    #[target_feature(enable = "avx2")]
    unsafe fn scan_avx2<const CI: bool>(
        &self,
        hay: &[u8],
        patterns: &[Vec<u8>],
        on_match: &mut impl FnMut(usize, usize, usize, u32),
    ) -> usize {
        use std::arch::x86_64::*;
        // Lane k holds bytes [k, k+1, k+2, k+3] of the block as a big-endian u32 (the scalar
        // loop's `w` for the window ending at byte k+3), so byte k+3 is the lane's lowest.
        let windows = _mm256_setr_epi8(
            3, 2, 1, 0, 4, 3, 2, 1, 5, 4, 3, 2, 6, 5, 4, 3, //
            7, 6, 5, 4, 8, 7, 6, 5, 9, 8, 7, 6, 10, 9, 8, 7,
        );
        let multiplier = _mm256_set1_epi32(GATE_MULTIPLIER as i32);
        let shift = _mm_cvtsi32_si128(self.gate_shift as i32);
        let low5 = _mm256_set1_epi32(31);
        let one = _mm256_set1_epi32(1);
        let gate = self.gate.as_ptr() as *const i32; // little-endian: bit b is in u32 word b / 32
        let (before_upper, after_upper, case_bit) = (
            _mm_set1_epi8(b'A' as i8 - 1),
            _mm_set1_epi8(b'Z' as i8 + 1),
            _mm_set1_epi8(0x20),
        );
        // Block b covers window ends start+3 .. start+10 and reads bytes start .. start+15.
        let mut start = 0usize;
        while start + 16 <= hay.len() {
            let mut bytes = _mm_loadu_si128(hay.as_ptr().add(start) as *const __m128i);
            if CI {
                // Signed compares: bytes >= 0x80 are negative and never upper case.
                let upper = _mm_and_si128(
                    _mm_cmpgt_epi8(bytes, before_upper),
                    _mm_cmpgt_epi8(after_upper, bytes),
                );
                bytes = _mm_or_si128(bytes, _mm_and_si128(upper, case_bit));
            }
            let w = _mm256_shuffle_epi8(_mm256_broadcastsi128_si256(bytes), windows);
            let bit = _mm256_srl_epi32(_mm256_mullo_epi32(w, multiplier), shift);
            let words = _mm256_i32gather_epi32::<4>(gate, _mm256_srli_epi32::<5>(bit));
            let set = _mm256_and_si256(_mm256_srlv_epi32(words, _mm256_and_si256(bit, low5)), one);
            let hits = _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_cmpeq_epi32(set, one))) as u32;
            if hits != 0 {
                self.block_hits::<CI>(hay, start + WINDOW - 1, hits, patterns, on_match);
            }
            start += 8;
        }
        start + WINDOW - 1
    }

    /// Window ends `first + k` for each bit k of `hits` passed the gate.
    #[cold]
    #[inline(never)]
    fn block_hits<const CI: bool>(
        &self,
        hay: &[u8],
        first: usize,
        mut hits: u32,
        patterns: &[Vec<u8>],
        on_match: &mut impl FnMut(usize, usize, usize, u32),
    ) {
        while hits != 0 {
            let i = first + hits.trailing_zeros() as usize;
            hits &= hits - 1;
            let w = hay[i + 1 - WINDOW..=i].iter().fold(0u32, |k, &b| {
                (k << 8) | u32::from(if CI { b.to_ascii_lowercase() } else { b })
            });
            self.second_stage::<CI>(hay, i, w, patterns, on_match);
        }
    }

    /// Past the gate: the exact filters of each width, then the candidates themselves.
    #[cold]
    #[inline(never)]
    fn second_stage<const CI: bool>(
        &self,
        hay: &[u8],
        i: usize,
        w: u32,
        patterns: &[Vec<u8>],
        on_match: &mut impl FnMut(usize, usize, usize, u32),
    ) {
        if let Some(f) = &self.short {
            if f.passes(u64::from(w)) {
                self.verify::<CI>(f, hay, i, u64::from(w), patterns, on_match);
            }
        }
        if let Some(f) = &self.long {
            if i + 1 >= 8 {
                let w8 = hay[i + 1 - 8..=i].iter().fold(0u64, |k, &b| {
                    (k << 8) | u64::from(if CI { b.to_ascii_lowercase() } else { b })
                });
                if f.passes(w8) {
                    self.verify::<CI>(f, hay, i, w8, patterns, on_match);
                }
            }
        }
    }

    #[cold]
    #[inline(never)]
    fn verify<const CI: bool>(
        &self,
        f: &KeyFilter,
        hay: &[u8],
        i: usize,
        key: u64,
        patterns: &[Vec<u8>],
        on_match: &mut impl FnMut(usize, usize, usize, u32),
    ) {
        let b = (hash(key) >> f.bucket_shift) as usize;
        let bucket = &f.candidates[f.bucket_start[b] as usize..f.bucket_start[b + 1] as usize];
        for c in bucket {
            if c.key != key {
                continue;
            }
            let Some(start) = (i + 1).checked_sub(f.width + c.offset as usize) else {
                continue;
            };
            let pattern = &patterns[c.unique as usize];
            let end = start + pattern.len();
            if end > hay.len() {
                continue;
            }
            if same::<CI>(&hay[start..end], pattern) {
                on_match(i, start, end, c.unique);
            }
        }
    }
}

/// The scan for `any_lines`: a non-overlapping standard search reports the match that *ends*
/// first, so when that match runs past the current line's separator no match lies wholly inside
/// the rest of the line, and the search restarts at the next line. A line with a match is skipped
/// at once: no further matches in it are looked at.
fn any_in_chunk(ac: &AhoCorasick, hay: &[u8], sep: u8) -> Vec<bool> {
    let mut flags = vec![false; count_lines(hay, sep)];
    let mut seps = memchr::memchr_iter(sep, hay);
    let mut line = 0usize;
    let mut line_end = seps.next().unwrap_or(hay.len());
    let mut pos = 0usize;
    while pos < hay.len() {
        let Some(m) = ac.find(Input::new(hay).range(pos..)) else {
            break;
        };
        while m.start() > line_end {
            line += 1;
            line_end = seps.next().unwrap_or(hay.len());
        }
        if m.end() <= line_end {
            flags[line] = true;
        }
        // Either the line is decided, or nothing more can match inside it: go to the next line.
        pos = line_end + 1;
        line += 1;
        line_end = seps.next().unwrap_or(hay.len());
    }
    flags
}

/// Number of lines: separators, plus one for a last line without a trailing separator.
pub fn count_lines(hay: &[u8], sep: u8) -> usize {
    let n = memchr::memchr_iter(sep, hay).count();
    match hay.last() {
        Some(&last) if last != sep => n + 1,
        _ => n,
    }
}

/// Byte ranges (without the separator) of the chosen lines, in the order asked; an index past the
/// last line is an error naming it.
pub fn select_lines(hay: &[u8], sep: u8, wanted: &[u32]) -> Result<Vec<(usize, usize)>> {
    let mut order: Vec<usize> = (0..wanted.len()).collect();
    order.sort_unstable_by_key(|&i| wanted[i]);
    let mut ranges = vec![(0usize, 0usize); wanted.len()];
    let mut seps = memchr::memchr_iter(sep, hay);
    let mut line = 0u32;
    let mut start = 0usize;
    let mut end = seps.next().unwrap_or(hay.len());
    for i in order {
        let target = wanted[i];
        while line < target && end < hay.len() {
            line += 1;
            start = end + 1;
            end = seps.next().unwrap_or(hay.len());
        }
        // `start >= len` means the buffer ended: a trailing separator starts no line.
        if line != target || start >= hay.len() {
            return Err(CoreError::invalid(format!(
                "line index {target} (position {i}) is out of range: the buffer has {} lines",
                count_lines(hay, sep)
            )));
        }
        ranges[i] = (start, end);
    }
    Ok(ranges)
}

/// Cut `hay` into runs of whole lines of about `chunk_bytes` each (one run when sequential).
fn split_chunks(hay: &[u8], sep: u8, opts: ScanOptions) -> Vec<(usize, usize)> {
    let chunk = opts.chunk_bytes.max(1);
    if !opts.parallel || hay.len() <= chunk {
        return vec![(0, hay.len())];
    }
    let mut out = Vec::with_capacity(hay.len() / chunk + 1);
    let mut start = 0;
    while start < hay.len() {
        let target = start + chunk;
        if target >= hay.len() {
            out.push((start, hay.len()));
            break;
        }
        let end = match memchr::memchr(sep, &hay[target..]) {
            Some(i) => target + i + 1,
            None => hay.len(),
        };
        out.push((start, end));
        start = end;
    }
    out
}

fn check_line_limit(hay: &[u8], sep: u8) -> Result<()> {
    // Line numbers are u32; only a buffer longer than that can have more lines.
    if hay.len() > u32::MAX as usize {
        let n = count_lines(hay, sep);
        if n > u32::MAX as usize {
            return Err(CoreError::invalid(format!(
                "the buffer has {n} lines; the limit is {}",
                u32::MAX
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_rng::XorShift;

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn matcher_is_send_and_sync() {
        assert_send_sync::<Matcher>();
        assert_send_sync::<MatcherBuilder>();
    }

    /// The obvious twin: every line, every pattern, `windows().any()`.
    fn naive_pairs(patterns: &[&[u8]], hay: &[u8], sep: u8, ci: bool) -> Vec<(u32, u32)> {
        let mut lines: Vec<&[u8]> = hay.split(|&b| b == sep).collect();
        if hay.last() == Some(&sep) || hay.is_empty() {
            lines.pop();
        }
        let eq = |a: &[u8], b: &[u8]| {
            if ci {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        let mut out = Vec::new();
        for (li, line) in lines.iter().enumerate() {
            for (pi, p) in patterns.iter().enumerate() {
                if line.len() >= p.len() && line.windows(p.len()).any(|w| eq(w, p)) {
                    out.push((li as u32, pi as u32));
                }
            }
        }
        out
    }

    // (patterns, haystack, separator, case-insensitive, expected (line, pattern) pairs)
    type Case = (
        &'static [&'static [u8]],
        &'static [u8],
        u8,
        bool,
        &'static [(u32, u32)],
    );
    const CASES: &[Case] = &[
        (&[b"a"], b"", b'\n', false, &[]),
        (&[b"a"], b"\n", b'\n', false, &[]),
        (&[b"a"], b"a", b'\n', false, &[(0, 0)]),
        (&[b"a"], b"a\n", b'\n', false, &[(0, 0)]),
        (&[b"a"], b"\n\na\n\n", b'\n', false, &[(2, 0)]),
        (
            &[b"ssh", b"sshd"],
            b"sshd: ok",
            b'\n',
            false,
            &[(0, 0), (0, 1)],
        ),
        (
            &[b"sshd", b"ssh"],
            b"sshd: ok",
            b'\n',
            false,
            &[(0, 0), (0, 1)],
        ),
        (
            &[b"abc", b"bcd", b"c"],
            b"xabcdx\nbc",
            b'\n',
            false,
            &[(0, 0), (0, 1), (0, 2), (1, 2)],
        ),
        (
            &[b"x", b"x", b"y"],
            b"y\nx",
            b'\n',
            false,
            &[(0, 2), (1, 0), (1, 1)],
        ),
        (&[b"a\nb"], b"a\nb", b'\n', false, &[]),
        (&[b"a\nb", b"a"], b"a\nb", b'\n', false, &[(0, 1)]),
        (&[b"ab"], b"a\nb", b'\n', false, &[]),
        (&[b"b", b"a\nbc"], b"a\nbc", b'\n', false, &[(1, 0)]),
        (&[b"c", b"b;c", b"a;b;c"], b"a;b;c", b';', false, &[(2, 0)]),
        (
            &[b"ERROR"],
            b"error\nErRoR\nERROR",
            b'\n',
            true,
            &[(0, 0), (1, 0), (2, 0)],
        ),
        (&[b"ERROR"], b"error\nErRoR\nERROR", b'\n', false, &[(2, 0)]),
        (
            &[b"Error", b"eRRor"],
            b"ERROR",
            b'\n',
            true,
            &[(0, 0), (0, 1)],
        ),
        (&[b"A"], b"bab", b'a', true, &[]),
        (
            &[b"\xff\xfe"],
            b"\xff\xfe\n\xfe\xff",
            b'\n',
            false,
            &[(0, 0)],
        ),
        (&[b"aa"], b"aaaa\naa", b'\n', false, &[(0, 0), (1, 0)]),
        (
            &[b"1.2.3.4"],
            b"src=1.2.3.45|dst=1.2.3.4",
            b'|',
            false,
            &[(0, 0), (1, 0)],
        ),
        (&[b"b"], b"a;b;;b;", b';', false, &[(1, 0), (3, 0)]),
        (&[], b"anything", b'\n', false, &[]),
        (
            &[b"sshd", b"sshd: ", b"hd: o"],
            b"sshd: ok\nsshd",
            b'\n',
            false,
            &[(0, 0), (0, 1), (0, 2), (1, 0)],
        ),
        (
            &[b"abcd", b"bcde", b"abcd"],
            b"xabcdex",
            b'\n',
            false,
            &[(0, 0), (0, 1), (0, 2)],
        ),
        (
            &[b"ab\ncd", b"abcd"],
            b"ab\ncd\nabcd",
            b'\n',
            false,
            &[(2, 1)],
        ),
        (
            &[b"Root", b"ADMIN"],
            b"root admin\nROOT",
            b'\n',
            true,
            &[(0, 0), (0, 1), (1, 0)],
        ),
        (
            &[b"aaaa"],
            b"aaaaaa\naaa\naaaa",
            b'\n',
            false,
            &[(0, 0), (2, 0)],
        ),
        (&[b"\xff\x00\xfe\n"], b"\xff\x00\xfe\n", b'\n', false, &[]),
        (
            &[b"1.2.3.4", b"1.2.3.45"],
            b"src=1.2.3.45|dst=1.2.3.4",
            b'|',
            false,
            &[(0, 0), (0, 1), (1, 0)],
        ),
    ];

    /// One way to build and run a matcher: every engine, the hashed engine with and without SIMD
    /// and with each handling of its shorter patterns, sequential and in tiny parallel chunks.
    #[derive(Clone, Copy, Debug)]
    struct Config {
        choice: AutomatonChoice,
        engine: Engine,
        simd: bool,
        narrow: NarrowChoice,
        piece_bytes: usize,
        opts: ScanOptions,
    }

    fn configs() -> Vec<Config> {
        let mut out = Vec::new();
        let big = DEFAULT_PIECE_BYTES;
        for (choice, engine, simd, narrow, piece_bytes) in [
            (
                AutomatonChoice::Auto,
                Engine::Auto,
                true,
                NarrowChoice::Auto,
                big,
            ),
            (
                AutomatonChoice::Dfa,
                Engine::Automaton,
                true,
                NarrowChoice::Auto,
                big,
            ),
            (
                AutomatonChoice::Nfa,
                Engine::Automaton,
                true,
                NarrowChoice::Auto,
                big,
            ),
            (
                AutomatonChoice::Auto,
                Engine::Hashed,
                true,
                NarrowChoice::Auto,
                big,
            ),
            (
                AutomatonChoice::Auto,
                Engine::Hashed,
                true,
                NarrowChoice::Auto,
                5,
            ),
            (
                AutomatonChoice::Nfa,
                Engine::Hashed,
                true,
                NarrowChoice::Gate,
                big,
            ),
            (
                AutomatonChoice::Auto,
                Engine::Hashed,
                false,
                NarrowChoice::Auto,
                big,
            ),
            (
                AutomatonChoice::Auto,
                Engine::Hashed,
                false,
                NarrowChoice::Gate,
                17,
            ),
        ] {
            let config = |opts| Config {
                choice,
                engine,
                simd,
                narrow,
                piece_bytes,
                opts,
            };
            out.push(config(ScanOptions::sequential()));
            for chunk in [1, 2, 3, 7] {
                out.push(config(ScanOptions {
                    parallel: true,
                    chunk_bytes: chunk,
                }));
            }
        }
        out
    }

    /// Build for one configuration; `None` when the hashed engine rightly refuses short patterns.
    fn build_for(pats: &[&[u8]], icase: bool, config: Config) -> Option<Matcher> {
        let Config {
            choice,
            engine,
            simd,
            narrow,
            piece_bytes,
            ..
        } = config;
        let built = MatcherBuilder::new()
            .ascii_case_insensitive(icase)
            .automaton(choice)
            .engine(engine)
            .simd(simd)
            .narrow(narrow)
            .piece_bytes(piece_bytes)
            .build(pats);
        if engine == Engine::Hashed && pats.iter().any(|p| p.len() < WINDOW) {
            let err = built.unwrap_err().to_string();
            assert!(
                err.contains("the hashed engine needs patterns of at least 4 bytes"),
                "{err}"
            );
            return None;
        }
        Some(built.unwrap())
    }

    #[test]
    fn table_of_cases_against_every_configuration() {
        for (ci, &(pats, hay, sep, icase, expected)) in CASES.iter().enumerate() {
            let naive = naive_pairs(pats, hay, sep, icase);
            assert_eq!(
                naive,
                expected.to_vec(),
                "case {ci}: the naive twin disagrees with the table"
            );
            for config in configs() {
                let Some(m) = build_for(pats, icase, config) else {
                    continue;
                };
                let got = m.match_lines(hay, sep, config.opts).unwrap();
                let pairs: Vec<(u32, u32)> = got
                    .lines
                    .iter()
                    .copied()
                    .zip(got.patterns.iter().copied())
                    .collect();
                assert_eq!(pairs, expected.to_vec(), "case {ci} {config:?}");
                let n = count_lines(hay, sep);
                let mut any = vec![false; n];
                for &(l, _) in expected {
                    any[l as usize] = true;
                }
                assert_eq!(
                    m.any_lines(hay, sep, config.opts).unwrap(),
                    any,
                    "any_lines case {ci} {config:?}"
                );
            }
        }
    }

    #[test]
    fn empty_pattern_is_rejected_with_its_index() {
        let err = Matcher::new([b"a".as_slice(), b"b", b""]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "pattern 2 is empty; every pattern needs at least one byte"
        );
    }

    #[test]
    fn count_lines_follows_the_trailing_separator_rule() {
        for (hay, n) in [
            (&b""[..], 0),
            (b"\n", 1),
            (b"a", 1),
            (b"a\n", 1),
            (b"a\n\nb", 3),
            (b"\n\n", 2),
        ] {
            assert_eq!(count_lines(hay, b'\n'), n, "{hay:?}");
        }
    }

    #[test]
    fn select_lines_returns_ranges_in_the_order_asked() {
        let hay = b"zero\none\n\nthree";
        let got = select_lines(hay, b'\n', &[3, 0, 2, 3]).unwrap();
        let text: Vec<&[u8]> = got.iter().map(|&(a, b)| &hay[a..b]).collect();
        assert_eq!(text, vec![&b"three"[..], b"zero", b"", b"three"]);
        let err = select_lines(hay, b'\n', &[4]).unwrap_err();
        assert!(err.to_string().contains("line index 4"), "{err}");
        assert!(select_lines(b"a\n", b'\n', &[1]).is_err());
        assert!(select_lines(b"", b'\n', &[0]).is_err());
        assert_eq!(select_lines(b"\n", b'\n', &[0]).unwrap(), vec![(0, 0)]);
    }

    #[test]
    fn find_all_reports_overlapping_and_duplicate_occurrences() {
        let m = Matcher::new([b"aa".as_slice(), b"a", b"aa"]).unwrap();
        let occ = m.find_all(b"aaa");
        let got: Vec<(u32, u64, u64)> = (0..occ.patterns.len())
            .map(|i| (occ.patterns[i], occ.starts[i], occ.ends[i]))
            .collect();
        assert_eq!(
            got,
            vec![
                (0, 0, 2),
                (1, 0, 1),
                (2, 0, 2),
                (0, 1, 3),
                (1, 1, 2),
                (2, 1, 3),
                (1, 2, 3)
            ]
        );
    }

    #[test]
    fn match_items_skips_nulls_and_keeps_row_numbers() {
        let m = Matcher::new([b"x".as_slice()]).unwrap();
        let got = m.match_items([Some(&b"x"[..]), None, Some(b"ax"), Some(b"")]);
        assert_eq!(got.lines, vec![0, 2]);
    }

    #[test]
    fn random_inputs_agree_with_the_naive_twin_in_every_configuration() {
        let mut rng = XorShift(0x9E37_79B9_7F4A_7C15);
        for round in 0..1500 {
            // Long patterns need a tinier alphabet to occur at all.
            let alphabet: &[u8] = if round % 2 == 0 {
                b"abAB\n;"
            } else {
                b"aAb\n;"
            };
            let hay: Vec<u8> = (0..rng.below(80))
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            // Even rounds: short random patterns. Odd rounds: 4..11 bytes (both hashed-engine
            // filters), half of them cut from the haystack so they do occur.
            let n_pats = rng.below(7);
            let pats: Vec<Vec<u8>> = (0..n_pats)
                .map(|_| {
                    let len = if round % 2 == 0 {
                        1 + rng.below(3)
                    } else {
                        4 + rng.below(8)
                    };
                    if round % 2 == 1 && rng.below(2) == 0 && hay.len() >= len {
                        let at = rng.below(hay.len() - len + 1);
                        hay[at..at + len].to_vec()
                    } else {
                        (0..len)
                            .map(|_| alphabet[rng.below(alphabet.len())])
                            .collect()
                    }
                })
                .collect();
            let sep = if round % 4 < 2 { b'\n' } else { b';' };
            let icase = round % 3 == 0;
            let refs: Vec<&[u8]> = pats.iter().map(|p| p.as_slice()).collect();
            let expected = naive_pairs(&refs, &hay, sep, icase);
            for config in configs() {
                let Some(m) = build_for(&refs, icase, config) else {
                    continue;
                };
                let got = m.match_lines(&hay, sep, config.opts).unwrap();
                let pairs: Vec<(u32, u32)> = got
                    .lines
                    .iter()
                    .copied()
                    .zip(got.patterns.iter().copied())
                    .collect();
                assert_eq!(
                    pairs, expected,
                    "round {round}: {pats:?} in {hay:?} sep {sep} icase {icase} {config:?}"
                );
            }
        }
    }

    fn pairs_of(got: &LineMatches) -> Vec<(u32, u32)> {
        got.lines
            .iter()
            .copied()
            .zip(got.patterns.iter().copied())
            .collect()
    }

    /// Every configuration agrees with the naive twin on `match_lines` and `any_lines`.
    fn check_every_configuration(pats: &[&[u8]], hay: &[u8], sep: u8, icase: bool, what: &str) {
        let expected = naive_pairs(pats, hay, sep, icase);
        let mut any = vec![false; count_lines(hay, sep)];
        for &(l, _) in &expected {
            any[l as usize] = true;
        }
        for config in configs() {
            let Some(m) = build_for(pats, icase, config) else {
                continue;
            };
            let got = m.match_lines(hay, sep, config.opts).unwrap();
            assert_eq!(
                pairs_of(&got),
                expected,
                "{what}: {pats:?} in {hay:?} icase {icase} {config:?}"
            );
            assert_eq!(
                m.any_lines(hay, sep, config.opts).unwrap(),
                any,
                "any_lines {what}: {pats:?} in {hay:?} icase {icase} {config:?}"
            );
        }
    }

    #[test]
    fn fold_word_lowercases_ascii_letters_only() {
        let mut rng = XorShift(0x1234_5678_9ABC_DEF1);
        for b in 0..=255u8 {
            for at in 0..8 {
                let mut bytes = rng.next_u64().to_le_bytes();
                bytes[at] = b;
                let expected = u64::from_le_bytes(bytes.map(|x| x.to_ascii_lowercase()));
                assert_eq!(
                    fold_word(u64::from_le_bytes(bytes)),
                    expected,
                    "byte {b:#x} at {at}"
                );
            }
        }
    }

    /// The wide filter looks at windows starting at multiples of 4 and the SIMD loop at blocks of
    /// 32 windows' bytes: put patterns of every length around the wide limit at every offset of a
    /// line, at the buffer's end, right before and across a separator, in lines shorter than a
    /// SIMD block.
    #[test]
    fn patterns_at_every_offset_block_boundary_and_line_end() {
        let source = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
        for len in [4, 5, 7, 8, 10, 11, 12, 15, 16, 19, 24] {
            let pat = &source[..len];
            let other = &source[len - 4..len + 7];
            for at in 0..72 {
                let mut line = vec![b'.'; at];
                line.extend_from_slice(pat);
                line.extend_from_slice(b"..");
                let mut hay = line.clone();
                hay.push(b'\n');
                hay.extend_from_slice(b"ab\n.\n");
                hay.extend_from_slice(&line[..at + len]); // the pattern ends the buffer
                let pats: [&[u8]; 2] = [pat, other];
                check_every_configuration(&pats, &hay, b'\n', false, "offset");
                check_every_configuration(
                    &pats,
                    &hay.to_ascii_lowercase(),
                    b'\n',
                    true,
                    "offset ci",
                );
                // A separator inside the occurrence: no match there.
                let mut cut = hay.clone();
                cut[at + len / 2] = b'\n';
                check_every_configuration(&pats, &cut, b'\n', false, "cut");
            }
        }
    }

    #[test]
    fn case_insensitive_bytes_at_or_above_0x80_never_fold() {
        // 0xC1 | 0x20 = 0xE1 and '@' | 0x20 = '`': neither pair may match the other.
        let pats: [&[u8]; 4] = [
            b"\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1",
            b"@@@@[[[[@@@@",
            b"\xc1\xc1Ab",
            b"abcdefghijklm",
        ];
        let hay = b"\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\xe1\n\
            ````{{{{````````{{{{````````{{{{````````{{{{````````{{{{````````\n\
            \xe1\xe1aB \xc1\xc1aB ABCDEFGHIJKLM abcdefghijklm aBcDeFgHiJkLm \xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1\xc1";
        check_every_configuration(&pats, hay, b'\n', true, "0x80");
        check_every_configuration(&pats, hay, b'\n', false, "0x80 cs");
    }

    #[test]
    fn more_short_patterns_than_teddy_takes_use_the_gate_and_agree() {
        let words: Vec<Vec<u8>> = (0..TEDDY_MAX_PATTERNS + 10)
            .map(|i| format!("k{i:03}").into_bytes())
            .chain((0..80).map(|i| format!("long-pattern-{i:03}").into_bytes()))
            .collect();
        let refs: Vec<&[u8]> = words.iter().map(|w| w.as_slice()).collect();
        let hay: Vec<u8> = (0..400)
            .flat_map(|i| {
                format!(
                    "x k{:03} long-pattern-{:03}k{:03}\n",
                    i % 97,
                    i % 83,
                    i % 71
                )
                .into_bytes()
            })
            .collect();
        check_every_configuration(&refs, &hay, b'\n', false, "many short");
        check_every_configuration(&refs, &hay, b'\n', true, "many short ci");
    }

    #[test]
    fn random_long_inputs_agree_with_the_naive_twin_in_every_configuration() {
        let mut rng = XorShift(0xD1B5_4A32_D192_ED03);
        // Letters on both sides of the case range, bytes >= 0x80 whose 0x20 bit differs.
        let alphabets: [&[u8]; 3] = [b"aA\n;", b"abAB@[\xc1\xe1\n;", b"aAzZ`{\n;"];
        for round in 0..400 {
            let alphabet = alphabets[round % 3];
            let hay: Vec<u8> = (0..rng.below(300))
                .map(|_| alphabet[rng.below(alphabet.len())])
                .collect();
            let pats: Vec<Vec<u8>> = (0..1 + rng.below(8))
                .map(|_| {
                    let len = 4 + rng.below(21);
                    if rng.below(4) != 0 && hay.len() >= len {
                        let at = rng.below(hay.len() - len + 1);
                        hay[at..at + len].to_vec()
                    } else {
                        (0..len)
                            .map(|_| alphabet[rng.below(alphabet.len())])
                            .collect()
                    }
                })
                .collect();
            let refs: Vec<&[u8]> = pats.iter().map(|p| p.as_slice()).collect();
            let sep = if round % 4 < 2 { b'\n' } else { b';' };
            check_every_configuration(&refs, &hay, sep, round % 5 < 2, &format!("round {round}"));
        }
    }
}
