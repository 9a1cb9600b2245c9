//! One FIM scan in Rust: the parallel walker of [`crate::walk`], then what
//! `secmon.fim.scan.scan` (the slow twin) does in Polars and Python loops: host paths to
//! reported paths (`--root`), secmon's own exclude globs, one row per path sorted by bytes, and
//! the xattrs of every entry, read on all cores and reused from the previous scan when the
//! entry's inode and ctime are unchanged (setting or removing an xattr moves the ctime).

use std::borrow::Cow;
use std::collections::HashMap;

use rayon::prelude::*;
use regex::Regex;

use super::xattrs::read_xattrs;
use super::FimRow;
use crate::error::{CoreError, Result};
use crate::hash::Algorithm;
use crate::walk::{permuted, Entry, EntryType, PreviousStat, TreeScanner};

/// What to scan and how.
#[derive(Clone, Debug, Default)]
pub struct FimScanSpec {
    /// Host paths to walk (already resolved: globs expanded, under `root_prefix`).
    pub roots: Vec<Vec<u8>>,
    /// A container root filesystem the paths are reported inside of (no trailing `/`).
    pub root_prefix: Option<Vec<u8>>,
    pub algo: Option<Algorithm>,
    /// Globs the walker applies itself (its dialect: `*` crosses `/`), so excluded trees are
    /// never walked; a subset of what `exclude_regex` removes.
    pub walker_excludes: Vec<String>,
    /// secmon's exclude globs as one regex over the reported path: what counts.
    pub exclude_regex: Option<String>,
    pub xattrs: bool,
    pub follow_symlinks: bool,
    pub one_file_system: bool,
    pub threads: Option<usize>,
}

/// The rows of an earlier scan of the same paths (reported-path space), and what to reuse.
#[derive(Clone, Copy, Debug)]
pub struct Previous<'a> {
    pub rows: &'a [FimRow],
    /// Reuse digests of regular files whose size, mtime, ctime, inode and mode are unchanged.
    pub digests: bool,
    /// Reuse xattrs of entries whose inode and ctime are unchanged.
    pub xattrs: bool,
}

fn host_path<'a>(prefix: Option<&[u8]>, shown: &'a [u8]) -> Cow<'a, [u8]> {
    match prefix {
        Some(prefix) if !prefix.is_empty() => {
            let mut out = prefix.to_vec();
            if shown != b"/" {
                out.extend_from_slice(shown);
            }
            Cow::Owned(out)
        }
        _ => Cow::Borrowed(shown),
    }
}

fn row_of(entry: Entry, prefix: Option<&[u8]>) -> FimRow {
    let path_bytes = match prefix {
        Some(prefix) if !prefix.is_empty() => {
            let cut = entry.path_bytes.get(prefix.len()..).unwrap_or(&[]);
            if cut.is_empty() {
                b"/".to_vec()
            } else {
                cut.to_vec()
            }
        }
        _ => entry.path_bytes,
    };
    let stat = entry.stat;
    let read = entry.xattrs.unwrap_or_default();
    FimRow {
        path_bytes,
        path_text: None,
        kind: Some(entry.kind),
        size: stat.map(|s| s.size),
        mode: stat.map(|s| s.mode),
        uid: stat.map(|s| s.uid),
        gid: stat.map(|s| s.gid),
        inode: stat.map(|s| s.inode),
        dev: stat.map(|s| s.dev),
        nlink: stat.map(|s| s.nlink),
        mtime_ns: stat.map(|s| s.mtime_ns),
        ctime_ns: stat.map(|s| s.ctime_ns),
        target: entry.target.map(|t| String::from_utf8_lossy(&t).into_owned()),
        digest: entry.digest,
        // As `add_xattrs` merges them: the walk's own error first.
        error: entry.error.or(read.error),
        xattrs: read.xattrs,
        capabilities: read.capabilities,
    }
}

/// Scan `spec`: rows sorted by path bytes, one per path.
pub fn scan(spec: &FimScanSpec, previous: Option<Previous<'_>>) -> Result<Vec<FimRow>> {
    let prefix = spec.root_prefix.as_deref();
    let exclude = match &spec.exclude_regex {
        Some(pattern) => Some(
            Regex::new(pattern).map_err(|e| CoreError::invalid(format!("exclude regex {pattern:?} does not compile: {e}")))?,
        ),
        None => None,
    };
    // Without earlier xattrs to reuse (a baseline, a --full-rehash check) the walker reads them
    // through the descriptors it holds (measured: flistxattr on the open file 1.1 us, llistxattr
    // by full path 1.7 us per entry); with them, `add_xattrs` reads only entries whose inode or
    // ctime moved.
    let reuse_xattrs = previous.is_some_and(|p| p.xattrs);
    let walker_xattrs = spec.xattrs && !reuse_xattrs;
    let mut builder = TreeScanner::builder();
    builder
        .xattrs(walker_xattrs)
        .algo(spec.algo)
        .follow_symlinks(spec.follow_symlinks)
        .one_file_system(spec.one_file_system)
        .threads(spec.threads);
    for pattern in &spec.walker_excludes {
        builder.exclude(pattern.clone());
    }
    if let (Some(prev), Some(_)) = (previous, spec.algo) {
        if prev.digests {
            for row in prev.rows.iter().filter(|r| r.kind == Some(EntryType::File)) {
                let (Some(size), Some(mtime_ns), Some(ctime_ns), Some(inode), Some(mode), Some(digest)) =
                    (row.size, row.mtime_ns, row.ctime_ns, row.inode, row.mode, row.digest.as_deref())
                else {
                    continue;
                };
                builder.previous(&host_path(prefix, &row.path_bytes), PreviousStat { size, mtime_ns, ctime_ns, inode, mode }, digest);
            }
        }
    }
    let scanner = builder.build()?;
    // The walker hands over rows already converted (on its workers, during the walk) and
    // unsorted: they are sorted once, here, by the reported path.
    let (mut rows, _stats) =
        if spec.roots.is_empty() { (Vec::new(), Default::default()) } else { scanner.scan_map(&spec.roots, &|e| row_of(e, prefix))? };
    if let Some(exclude) = &exclude {
        rows.retain(|row| !exclude.is_match(&row.path()));
    }
    let mut rows = sorted_by_path_bytes(rows);
    // Among rows of one path (overlapping roots) the first stays, as `unique(keep="first")`.
    rows.dedup_by(|later, first| later.path_bytes == first.path_bytes);
    if spec.xattrs && !walker_xattrs {
        add_xattrs(&mut rows, prefix, previous.filter(|p| p.xattrs).map(|p| p.rows));
    }
    Ok(rows)
}

/// `rows` in path-bytes order, rows of equal paths in their order in `rows` (a stable sort). The
/// (path, index) keys are sorted on all cores, then each row is moved once: a row is ~290
/// bytes, and sorting the rows themselves moved each many times.
fn sorted_by_path_bytes(rows: Vec<FimRow>) -> Vec<FimRow> {
    let mut keys: Vec<(&[u8], u32)> = rows.iter().enumerate().map(|(i, r)| (r.path_bytes.as_slice(), i as u32)).collect();
    keys.par_sort_unstable();
    let order: Vec<u32> = keys.into_iter().map(|(_, i)| i).collect();
    permuted(rows, order)
}

/// For each row, the index of the previous row with the same path. Both sides are normally
/// sorted by path bytes (scans and payloads are), so one merge pass does it; a previous tree in
/// another order falls back to a hash map.
fn match_previous(rows: &[FimRow], previous: &[FimRow]) -> Vec<Option<usize>> {
    if previous.windows(2).all(|w| w[0].path_bytes <= w[1].path_bytes) {
        let mut out = Vec::with_capacity(rows.len());
        let mut j = 0;
        for row in rows {
            while j < previous.len() && previous[j].path_bytes < row.path_bytes {
                j += 1;
            }
            // The last of equal paths, as a later duplicate wins in a hash map built in order.
            let mut found = None;
            let mut k = j;
            while k < previous.len() && previous[k].path_bytes == row.path_bytes {
                found = Some(k);
                k += 1;
            }
            out.push(found);
        }
        return out;
    }
    let index: HashMap<&[u8], usize> = previous.iter().enumerate().map(|(i, r)| (r.path_bytes.as_slice(), i)).collect();
    rows.iter().map(|r| index.get(r.path_bytes.as_slice()).copied()).collect()
}

fn add_xattrs(rows: &mut [FimRow], prefix: Option<&[u8]>, previous: Option<&[FimRow]>) {
    let previous = previous.unwrap_or(&[]);
    let matches = if previous.is_empty() { vec![None; rows.len()] } else { match_previous(rows, previous) };
    rows.par_iter_mut().zip(matches).with_min_len(64).for_each(|(row, old)| {
        if row.mode.is_none() {
            return;
        }
        if let Some(old) = old.map(|i| &previous[i]) {
            if old.inode.is_some() && old.ctime_ns.is_some() && old.inode == row.inode && old.ctime_ns == row.ctime_ns {
                row.xattrs = old.xattrs.clone();
                row.capabilities = old.capabilities.clone();
                return;
            }
        }
        let read = read_xattrs(&host_path(prefix, &row.path_bytes));
        row.xattrs = read.xattrs;
        row.capabilities = read.capabilities;
        if row.error.is_none() {
            row.error = read.error;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sorted_by_path_bytes_is_a_stable_sort_by_path_bytes() {
        // Random paths over a small alphabet (many shared prefixes, '-' sorting before '/',
        // non-UTF-8 bytes, the empty path) with duplicates told apart by their size, so the
        // order among equal paths is checked too. A small LCG, no dependency.
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move |n: usize| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize % n
        };
        let alphabet: [&[u8]; 7] = [b"/", b"a", b"-", b"/a", b"\xff", "\u{e9}".as_bytes(), b"b"];
        for case in 0..200 {
            let rows: Vec<FimRow> = (0..next(60))
                .map(|i| {
                    let path: Vec<u8> = (0..next(6)).flat_map(|_| alphabet[next(alphabet.len())].to_vec()).collect();
                    FimRow { path_bytes: path, size: Some(i as u64), ..FimRow::default() }
                })
                .collect();
            let mut want = rows.clone();
            want.sort_by(|a, b| a.path_bytes.cmp(&b.path_bytes));
            assert_eq!(sorted_by_path_bytes(rows), want, "case {case}");
        }
    }
}
