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

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, Input, MatchKind};
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
        Ok(Matcher {
            patterns,
            ascii_case_insensitive: self.ascii_case_insensitive,
            automaton,
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

    /// Every (line, pattern) pair present in `hay`, each once, sorted by line then pattern.
    pub fn match_lines(&self, hay: &[u8], sep: u8, opts: ScanOptions) -> Result<LineMatches> {
        check_line_limit(hay)?;
        let Some(ac) = &self.automaton else {
            return Ok(LineMatches::default());
        };
        let chunks = split_chunks(hay, sep, opts);
        if chunks.len() <= 1 {
            let mut out = LineMatches::default();
            self.scan_chunk(ac, hay, sep, &mut Seen::new(ac.patterns_len()), &mut out);
            return Ok(out);
        }
        let parts: Vec<(u32, LineMatches)> = chunks
            .par_iter()
            .map_init(
                || Seen::new(ac.patterns_len()),
                |seen, &(a, b)| {
                    let mut part = LineMatches::default();
                    let lines = self.scan_chunk(ac, &hay[a..b], sep, seen, &mut part);
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
        check_line_limit(hay)?;
        let Some(ac) = &self.automaton else {
            return Ok(vec![false; count_lines(hay, sep)]);
        };
        let chunks = split_chunks(hay, sep, opts);
        if chunks.len() <= 1 {
            return Ok(any_in_chunk(ac, hay, sep));
        }
        let parts: Vec<Vec<bool>> = chunks
            .par_iter()
            .map(|&(a, b)| any_in_chunk(ac, &hay[a..b], sep))
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

fn check_line_limit(hay: &[u8]) -> Result<()> {
    // Line numbers are u32; only a buffer longer than that can have more lines.
    if hay.len() > u32::MAX as usize {
        let n = count_lines(hay, b'\n').max(memchr::memchr_iter(b'\r', hay).count());
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
    ];

    fn configs() -> Vec<(AutomatonChoice, ScanOptions)> {
        let mut out = Vec::new();
        for choice in [
            AutomatonChoice::Auto,
            AutomatonChoice::Dfa,
            AutomatonChoice::Nfa,
        ] {
            out.push((choice, ScanOptions::sequential()));
            for chunk in [1, 2, 3, 7] {
                out.push((
                    choice,
                    ScanOptions {
                        parallel: true,
                        chunk_bytes: chunk,
                    },
                ));
            }
        }
        out
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
            for (choice, opts) in configs() {
                let m = MatcherBuilder::new()
                    .ascii_case_insensitive(icase)
                    .automaton(choice)
                    .build(pats)
                    .unwrap();
                let got = m.match_lines(hay, sep, opts).unwrap();
                let pairs: Vec<(u32, u32)> = got
                    .lines
                    .iter()
                    .copied()
                    .zip(got.patterns.iter().copied())
                    .collect();
                assert_eq!(pairs, expected.to_vec(), "case {ci} {choice:?} {opts:?}");
                let n = count_lines(hay, sep);
                let mut any = vec![false; n];
                for &(l, _) in expected {
                    any[l as usize] = true;
                }
                assert_eq!(
                    m.any_lines(hay, sep, opts).unwrap(),
                    any,
                    "any_lines case {ci} {choice:?} {opts:?}"
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

    /// A small deterministic generator (xorshift) so the randomized twin test needs no crate.
    struct Rng(u64);
    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0
        }
        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    #[test]
    fn random_inputs_agree_with_the_naive_twin_in_every_configuration() {
        let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
        let alphabet = b"abAB\n;";
        for round in 0..300 {
            let n_pats = rng.below(6) as usize;
            let pats: Vec<Vec<u8>> = (0..n_pats)
                .map(|_| {
                    (0..1 + rng.below(3))
                        .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                        .collect()
                })
                .collect();
            let hay: Vec<u8> = (0..rng.below(40))
                .map(|_| alphabet[rng.below(alphabet.len() as u64) as usize])
                .collect();
            let sep = if round % 2 == 0 { b'\n' } else { b';' };
            let icase = round % 3 == 0;
            let refs: Vec<&[u8]> = pats.iter().map(|p| p.as_slice()).collect();
            let expected = naive_pairs(&refs, &hay, sep, icase);
            for (choice, opts) in configs() {
                let m = MatcherBuilder::new()
                    .ascii_case_insensitive(icase)
                    .automaton(choice)
                    .build(&refs)
                    .unwrap();
                let got = m.match_lines(&hay, sep, opts).unwrap();
                let pairs: Vec<(u32, u32)> = got
                    .lines
                    .iter()
                    .copied()
                    .zip(got.patterns.iter().copied())
                    .collect();
                assert_eq!(
                    pairs, expected,
                    "round {round}: {pats:?} in {hay:?} sep {sep} icase {icase}"
                );
            }
        }
    }
}
