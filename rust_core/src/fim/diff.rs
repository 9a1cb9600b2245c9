//! Compare two scans: every changed path exactly once, with the attributes that changed, under a
//! per-path attribute policy (first matching rule, else the default). The twin is
//! `secmon.fim.diff.diff_frames_slow` (dicts and a loop); `diff_frames` (Polars) is another.
//!
//! Entries a scan could not see are not guessed about: a path whose lstat failed (no mode), or
//! that lies under a directory that could not be listed, is neither added nor removed.

use std::fs::File;
use std::io::Read;
use std::path::Path;

use regex::Regex;

use super::FimRow;
use crate::error::{CoreError, Result};
use crate::hash::{self, Algorithm};
use crate::walk::EntryType;

/// Attribute names in reporting order; bit i of an [`AttributeSet`] is `ATTRIBUTES[i]`.
pub const ATTRIBUTES: [&str; 12] =
    ["type", "content", "mode", "uid", "gid", "size", "mtime", "ctime", "inode", "target", "nlink", "xattrs"];

/// A set of attribute names as bits of [`ATTRIBUTES`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct AttributeSet(pub u16);

impl AttributeSet {
    /// The set of these names; an unknown name is an error listing the valid ones.
    pub fn from_names<S: AsRef<str>>(names: &[S]) -> Result<AttributeSet> {
        let mut bits = 0u16;
        for name in names {
            let name = name.as_ref();
            let i = ATTRIBUTES.iter().position(|a| *a == name).ok_or_else(|| {
                CoreError::invalid(format!("unknown attribute {name:?}; valid: {}", ATTRIBUTES.join(", ")))
            })?;
            bits |= 1 << i;
        }
        Ok(AttributeSet(bits))
    }

    pub fn contains(self, i: usize) -> bool {
        self.0 >> i & 1 == 1
    }

    pub fn names(self) -> Vec<&'static str> {
        (0..ATTRIBUTES.len()).filter(|&i| self.contains(i)).map(|i| ATTRIBUTES[i]).collect()
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }
}

const CONTENT: usize = 1;

/// One selection rule: paths matching `regex` (and of one of `types`) use `attributes`.
#[derive(Clone, Debug)]
pub struct PolicyRule {
    pub regex: Regex,
    pub types: Option<Vec<EntryType>>,
    pub attributes: AttributeSet,
    pub growing: bool,
}

impl PolicyRule {
    /// `regex` is matched against the whole reported path with `.` matching newlines too.
    pub fn new(regex: &str, types: Option<Vec<EntryType>>, attributes: AttributeSet, growing: bool) -> Result<PolicyRule> {
        let regex = Regex::new(&format!("(?s){regex}"))
            .map_err(|e| CoreError::invalid(format!("policy rule regex {regex:?} does not compile: {e}")))?;
        Ok(PolicyRule { regex, types, attributes, growing })
    }
}

#[derive(Clone, Debug)]
pub struct Policy {
    pub rules: Vec<PolicyRule>,
    pub default_attributes: AttributeSet,
    pub default_growing: bool,
}

impl Policy {
    /// The attribute set and growing flag for one path (the first rule that matches).
    pub fn select(&self, path: &str, kind: Option<EntryType>) -> (AttributeSet, bool) {
        for rule in &self.rules {
            if let Some(types) = &rule.types {
                if !kind.is_some_and(|k| types.contains(&k)) {
                    continue;
                }
            }
            if rule.regex.is_match(path) {
                return (rule.attributes, rule.growing);
            }
        }
        (self.default_attributes, self.default_growing)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChangeKind {
    Added,
    Removed,
    Modified,
}

impl ChangeKind {
    pub fn name(self) -> &'static str {
        match self {
            ChangeKind::Added => "added",
            ChangeKind::Removed => "removed",
            ChangeKind::Modified => "modified",
        }
    }
}

/// One changed path: indices into the before/after rows and the changed attributes (empty for
/// added and removed entries).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Change {
    pub kind: ChangeKind,
    pub before: Option<usize>,
    pub after: Option<usize>,
    pub attributes: AttributeSet,
}

/// Reads the digest of the first `size` bytes of a file now (growing logs): files are looked up
/// at `root_prefix` + reported path.
#[derive(Clone, Debug)]
pub struct PrefixReader {
    pub root_prefix: Vec<u8>,
    pub algo: Algorithm,
}

impl PrefixReader {
    fn digest(&self, path_bytes: &[u8], size: u64) -> Option<String> {
        use std::os::unix::ffi::OsStrExt;
        let mut host = self.root_prefix.clone();
        host.extend_from_slice(path_bytes);
        let path = Path::new(std::ffi::OsStr::from_bytes(&host));
        // O_NONBLOCK + a regular-file check: a file swapped for a fifo cannot block the check.
        let (file, _) = hash::open_regular_nonblocking(path, true).ok()?;
        let mut limited = File::take(file, size);
        let mut hasher = self.algo.hasher();
        let mut buffer = vec![0u8; 1 << 20];
        let mut read = 0u64;
        loop {
            match limited.read(&mut buffer) {
                Ok(0) => break,
                Ok(n) => {
                    hasher.update(&buffer[..n]);
                    read += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(_) => return None,
            }
        }
        (read == size).then(|| hasher.finish_hex())
    }
}

/// Paths a scan could not see: (lstat failed, prefixes of directories that could not be listed).
fn unknown_paths(rows: &[FimRow]) -> (std::collections::HashSet<&[u8]>, Vec<Vec<u8>>) {
    let failed = rows.iter().filter(|r| r.mode.is_none()).map(|r| r.path_bytes.as_slice()).collect();
    let unlisted = rows
        .iter()
        .filter(|r| r.kind == Some(EntryType::Dir) && r.error.is_some())
        .map(|r| {
            let mut end = r.path_bytes.len();
            while end > 0 && r.path_bytes[end - 1] == b'/' {
                end -= 1;
            }
            let mut prefix = r.path_bytes[..end].to_vec();
            prefix.push(b'/');
            prefix
        })
        .collect();
    (failed, unlisted)
}

fn is_unknown(path: &[u8], unknown: &(std::collections::HashSet<&[u8]>, Vec<Vec<u8>>)) -> bool {
    unknown.0.contains(path) || unknown.1.iter().any(|prefix| path.starts_with(prefix))
}

/// The attributes that differ between two states of one path, before the growing-log check.
fn changed_attributes(b: &FimRow, a: &FimRow, monitored: AttributeSet, growing: bool) -> AttributeSet {
    let mut bits = 0u16;
    let differs = [
        b.kind != a.kind,
        matches!((&b.digest, &a.digest), (Some(x), Some(y)) if x != y),
        b.mode != a.mode,
        b.uid != a.uid,
        b.gid != a.gid,
        if growing { matches!((b.size, a.size), (Some(old), Some(new)) if new < old) } else { b.size != a.size },
        b.mtime_ns != a.mtime_ns,
        b.ctime_ns != a.ctime_ns,
        b.inode != a.inode,
        b.target != a.target,
        b.nlink != a.nlink,
        b.xattrs != a.xattrs,
    ];
    for (i, d) in differs.into_iter().enumerate() {
        if d && monitored.contains(i) {
            bits |= 1 << i;
        }
    }
    AttributeSet(bits)
}

/// Changes from `before` to `after`, sorted by path bytes. `prefix_reader` enables the
/// growing-log check (None when the baseline has no digests).
pub fn diff(before: &[FimRow], after: &[FimRow], policy: &Policy, prefix_reader: Option<&PrefixReader>) -> Vec<Change> {
    let sorted_seen = |rows: &[FimRow]| -> Vec<usize> {
        let mut idx: Vec<usize> = (0..rows.len()).filter(|&i| rows[i].mode.is_some()).collect();
        idx.sort_by(|&x, &y| rows[x].path_bytes.cmp(&rows[y].path_bytes));
        idx
    };
    let (b_idx, a_idx) = (sorted_seen(before), sorted_seen(after));
    let (unknown_b, unknown_a) = (unknown_paths(before), unknown_paths(after));
    let mut changes = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < b_idx.len() || j < a_idx.len() {
        let order = match (b_idx.get(i), a_idx.get(j)) {
            (Some(&x), Some(&y)) => before[x].path_bytes.cmp(&after[y].path_bytes),
            (Some(_), None) => std::cmp::Ordering::Less,
            _ => std::cmp::Ordering::Greater,
        };
        match order {
            std::cmp::Ordering::Less => {
                let x = b_idx[i];
                i += 1;
                if !is_unknown(&before[x].path_bytes, &unknown_a) {
                    changes.push(Change { kind: ChangeKind::Removed, before: Some(x), after: None, attributes: AttributeSet(0) });
                }
            }
            std::cmp::Ordering::Greater => {
                let y = a_idx[j];
                j += 1;
                if !is_unknown(&after[y].path_bytes, &unknown_b) {
                    changes.push(Change { kind: ChangeKind::Added, before: None, after: Some(y), attributes: AttributeSet(0) });
                }
            }
            std::cmp::Ordering::Equal => {
                let (x, y) = (b_idx[i], a_idx[j]);
                i += 1;
                j += 1;
                let (b, a) = (&before[x], &after[y]);
                let (monitored, growing) = policy.select(&a.path(), a.kind);
                let mut attrs = changed_attributes(b, a, monitored, growing);
                if growing && attrs.contains(CONTENT) {
                    if let (Some(reader), Some(old), Some(new), Some(digest)) = (prefix_reader, b.size, a.size, &b.digest) {
                        if new >= old && reader.digest(&a.path_bytes, old).as_deref() == Some(digest.as_str()) {
                            attrs.0 &= !(1 << CONTENT);
                        }
                    }
                }
                if !attrs.is_empty() {
                    changes.push(Change { kind: ChangeKind::Modified, before: Some(x), after: Some(y), attributes: attrs });
                }
            }
        }
    }
    changes
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(path: &str, size: u64, digest: &str) -> FimRow {
        FimRow {
            path_bytes: path.as_bytes().to_vec(),
            kind: Some(EntryType::File),
            size: Some(size),
            mode: Some(0o100644),
            digest: Some(digest.into()),
            ..FimRow::default()
        }
    }

    fn everything() -> Policy {
        Policy { rules: vec![], default_attributes: AttributeSet((1 << ATTRIBUTES.len()) - 1), default_growing: false }
    }

    #[test]
    fn added_removed_modified_each_once_in_path_order() {
        let before = vec![row("/b", 1, "x"), row("/a", 1, "x")];
        let after = vec![row("/c", 1, "x"), row("/b", 2, "y")];
        let changes = diff(&before, &after, &everything(), None);
        let shown: Vec<(&str, Vec<&str>)> = changes.iter().map(|c| (c.kind.name(), c.attributes.names())).collect();
        assert_eq!(shown, vec![("removed", vec![]), ("modified", vec!["content", "size"]), ("added", vec![])]);
    }

    #[test]
    fn unseen_entries_are_neither_added_nor_removed() {
        let mut dir = row("/d", 0, "x");
        dir.kind = Some(EntryType::Dir);
        dir.error = Some("permission denied: listing directory".into());
        let before = vec![row("/d/f", 1, "x"), row("/gone", 1, "x")];
        let mut failed = row("/gone", 1, "x");
        failed.mode = None;
        let after = vec![dir.clone(), failed];
        let changes = diff(&before, &after, &everything(), None);
        assert_eq!(changes.len(), 1);
        assert_eq!((changes[0].kind, changes[0].after), (ChangeKind::Added, Some(0)));
    }

    #[test]
    fn policy_picks_the_first_matching_rule() {
        let only_mode = AttributeSet::from_names(&["type", "mode"]).unwrap();
        let policy = Policy {
            rules: vec![PolicyRule::new("^/logs/.*$", None, only_mode, false).unwrap()],
            default_attributes: everything().default_attributes,
            default_growing: false,
        };
        let changes = diff(&[row("/logs/a", 1, "x")], &[row("/logs/a", 5, "y")], &policy, None);
        assert!(changes.is_empty());
        assert!(AttributeSet::from_names(&["colour"]).unwrap_err().to_string().contains("unknown attribute \"colour\""));
    }
}
