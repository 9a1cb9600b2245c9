//! File integrity monitoring, whole commands in Rust: scan a tree into baseline rows (walk, hash
//! and xattrs, in parallel), serialize/parse the baseline payload, and diff two trees under a
//! per-path attribute policy.
//!
//! Python (`secmon/fim/fast.py`) only parses arguments, verifies/writes the baseline file and
//! prints; the slow twins of everything here are the Polars pipeline in `secmon/fim/scan.py`,
//! `diff.py` and `payload.py`, and the tests hold them equal.
//!
//! - [`FimRow`]: one entry, the columns of `secmon.fim.scan.FRAME_SCHEMA`.
//! - [`scan`]: the walker of [`crate::walk`] plus display paths, excludes and xattrs.
//! - [`payload`]: the row encoding of baseline format 2.
//! - [`diff`]: every changed path exactly once, with the attributes that changed.
//! - [`xattrs`]: extended attributes and file capabilities in the canonical text form.

pub mod diff;
pub mod payload;
pub mod scan;
pub mod xattrs;

use std::borrow::Cow;

use crate::walk::EntryType;

/// One baseline row. `None` is a null in the frame: the stat fields are None for an entry that
/// could not be stat-ed (and, in image baselines, inode/nlink/ctime always).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FimRow {
    /// The reported path as raw bytes (lossless for non-UTF-8 names).
    pub path_bytes: Vec<u8>,
    /// The reported path text when it is not the lossy UTF-8 form of `path_bytes` (else None,
    /// which is nearly always: then [`FimRow::path`] derives it).
    pub path_text: Option<String>,
    pub kind: Option<EntryType>,
    pub size: Option<u64>,
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub inode: Option<u64>,
    pub dev: Option<u64>,
    pub nlink: Option<u64>,
    pub mtime_ns: Option<i64>,
    pub ctime_ns: Option<i64>,
    pub target: Option<String>,
    pub digest: Option<String>,
    pub error: Option<String>,
    pub xattrs: Option<String>,
    pub capabilities: Option<String>,
}

impl FimRow {
    /// The reported path as text (invalid UTF-8 replaced by U+FFFD unless stored explicitly).
    pub fn path(&self) -> Cow<'_, str> {
        match &self.path_text {
            Some(text) => Cow::Borrowed(text.as_str()),
            None => String::from_utf8_lossy(&self.path_bytes),
        }
    }
}

/// The type name as the frame spells it ("file", "dir", ...).
pub fn type_name(kind: Option<EntryType>) -> Option<&'static str> {
    kind.map(EntryType::name)
}

/// The entry type of a frame type name; None for a name no walker produces.
pub fn type_from_name(name: &str) -> Option<EntryType> {
    EntryType::ALL.iter().copied().find(|k| k.name() == name)
}
