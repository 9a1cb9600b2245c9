//! Parallel file-tree walker: one [`Entry`] per filesystem entry (the roots included), with the
//! lstat fields, symlink targets, optional digests and a per-entry error instead of a failed walk.
//!
//! Two phases. The walk: directories fan out as rayon tasks, each listing its directory through
//! a descriptor of its own and handling the children relative to it (`fstatat`, `readlinkat`,
//! `openat`: one name to resolve, not the full path). A single-link regular file (with algorithms
//! other than sha256, a small one) is opened as soon as the listing names it and hashed while the
//! directory is open (its row's stat is the `fstat` of the open file: one stat call and one path
//! lookup fewer than stat-ing it first).
//! Then the hashing phase, for hard links and (with algorithms other than sha256) big files:
//! largest first, pulled by every worker from one shared queue, so the last seconds are small
//! files and both cores stay busy to the end. sha256 goes through [`hash::sha256_lanes`]: each
//! worker keeps four files in flight, big ones included, and interleaves their SHA-NI rounds
//! (sixteen files in AVX-512 lanes where the CPU has it, with files of [`WIDE_MAX_SIZE`] and more
//! hashed apart as soon as they are met); during the walk a worker's lanes carry over from
//! one directory to the next. Hard links (same dev, inode,
//! size, mtime and ctime) are read once, the other names get the same digest.
//!
//! With previous digests (path -> size, mtime, ctime, inode, mode, digest) an unchanged regular
//! file keeps its old digest without being opened.
//!
//! Nothing on the way is fatal except a root that cannot be stat-ed: permission denied, files
//! vanishing mid-walk, symlink loops and special files become rows with a `type` and an `error`.
//! Fifos, sockets and devices are never opened; regular files are opened with `O_NONBLOCK` and
//! re-checked with fstat, so a file swapped for a fifo cannot block the walk either.

use std::ffi::{CStr, CString, OsStr};
use std::fs::{self, Metadata};
use std::io::ErrorKind;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::collections::HashMap;
use std::fs::File;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use rayon::prelude::*;

use crate::error::{CoreError, Result};
use crate::hash::sha256_lanes::{self, LaneHasher, LaneResult};
use crate::fim::xattrs::{read_xattrs_from, XattrRead, XattrSource};
use crate::hash::{self, Algorithm, SizedDigest};

/// What kind of filesystem object an entry is (from the `S_IFMT` bits of its mode).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EntryType {
    File,
    Dir,
    Symlink,
    Fifo,
    Socket,
    CharDevice,
    BlockDevice,
    Unknown,
}

impl EntryType {
    pub const ALL: [EntryType; 8] = [
        EntryType::File,
        EntryType::Dir,
        EntryType::Symlink,
        EntryType::Fifo,
        EntryType::Socket,
        EntryType::CharDevice,
        EntryType::BlockDevice,
        EntryType::Unknown,
    ];

    pub fn name(self) -> &'static str {
        match self {
            EntryType::File => "file",
            EntryType::Dir => "dir",
            EntryType::Symlink => "symlink",
            EntryType::Fifo => "fifo",
            EntryType::Socket => "socket",
            EntryType::CharDevice => "char_device",
            EntryType::BlockDevice => "block_device",
            EntryType::Unknown => "unknown",
        }
    }

    pub fn from_mode(mode: u32) -> EntryType {
        match mode & libc::S_IFMT {
            libc::S_IFREG => EntryType::File,
            libc::S_IFDIR => EntryType::Dir,
            libc::S_IFLNK => EntryType::Symlink,
            libc::S_IFIFO => EntryType::Fifo,
            libc::S_IFSOCK => EntryType::Socket,
            libc::S_IFCHR => EntryType::CharDevice,
            libc::S_IFBLK => EntryType::BlockDevice,
            _ => EntryType::Unknown,
        }
    }
}

/// The stat fields the walker reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stat {
    pub size: u64,
    /// Full `st_mode`, type bits included.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    pub inode: u64,
    pub dev: u64,
    pub nlink: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
}

impl Stat {
    /// The fields of a raw `stat` (what `fstatat` / `fstat` fill in).
    pub fn from_stat64(st: &libc::stat64) -> Stat {
        Stat {
            size: st.st_size as u64,
            mode: st.st_mode,
            uid: st.st_uid,
            gid: st.st_gid,
            inode: st.st_ino,
            dev: st.st_dev,
            nlink: st.st_nlink,
            mtime_ns: st.st_mtime.saturating_mul(1_000_000_000).saturating_add(st.st_mtime_nsec),
            ctime_ns: st.st_ctime.saturating_mul(1_000_000_000).saturating_add(st.st_ctime_nsec),
        }
    }

    pub fn from_metadata(m: &Metadata) -> Stat {
        Stat {
            size: m.size(),
            mode: m.mode(),
            uid: m.uid(),
            gid: m.gid(),
            inode: m.ino(),
            dev: m.dev(),
            nlink: m.nlink(),
            mtime_ns: m.mtime().saturating_mul(1_000_000_000).saturating_add(m.mtime_nsec()),
            ctime_ns: m.ctime().saturating_mul(1_000_000_000).saturating_add(m.ctime_nsec()),
        }
    }
}

/// One row of a scan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The path as raw bytes (lossless for non-UTF-8 names); [`Entry::path`] is its UTF-8 form.
    pub path_bytes: Vec<u8>,
    /// Whether `path_bytes` is valid UTF-8 (most are: then `path` borrows it, no copy).
    pub utf8: bool,
    pub kind: EntryType,
    /// None when the entry could not be stat-ed (it vanished, or stat was refused).
    pub stat: Option<Stat>,
    /// Symlink target for entries that are symlinks themselves (followed or not).
    pub target: Option<Vec<u8>>,
    /// Hex digest of a regular file when an algorithm was asked for and the file could be read.
    pub digest: Option<String>,
    pub error: Option<String>,
    /// Extended attributes, when the scan was asked to read them ([`ScanBuilder::xattrs`]).
    pub xattrs: Option<XattrRead>,
}

impl Entry {
    fn new(path_bytes: Vec<u8>, kind: EntryType) -> Entry {
        let utf8 = std::str::from_utf8(&path_bytes).is_ok();
        Entry { path_bytes, utf8, kind, stat: None, target: None, digest: None, error: None, xattrs: None }
    }

    /// The path as UTF-8, invalid sequences replaced by U+FFFD.
    pub fn path(&self) -> std::borrow::Cow<'_, str> {
        String::from_utf8_lossy(&self.path_bytes)
    }

    /// Order by `path`, then by raw bytes (two names can share a lossy form). For UTF-8 names
    /// the lossy form is the bytes themselves, so only odd names pay for a conversion.
    pub fn cmp_path(&self, other: &Entry) -> std::cmp::Ordering {
        if self.utf8 && other.utf8 {
            return self.path_bytes.cmp(&other.path_bytes);
        }
        self.path().as_bytes().cmp(other.path().as_bytes()).then_with(|| self.path_bytes.cmp(&other.path_bytes))
    }
}

/// What an earlier scan knew about a regular file: its digest is reused while these match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PreviousStat {
    pub size: u64,
    pub mtime_ns: i64,
    pub ctime_ns: i64,
    pub inode: u64,
    pub mode: u32,
}

impl PreviousStat {
    fn matches(&self, stat: &Stat) -> bool {
        self.size == stat.size
            && self.mtime_ns == stat.mtime_ns
            && self.ctime_ns == stat.ctime_ns
            && self.inode == stat.inode
            && self.mode == stat.mode
    }
}

/// The digests of an earlier scan, packed: paths and digests in two byte arenas and an
/// open-addressing index of (path hash, row). No allocation per file, so loading 100k files
/// takes milliseconds. The index used to be a sorted (hash, row) list searched by bisection:
/// on the /usr re-scan (112k files) that search was 9% of the profile (17 dependent cache
/// misses per lookup); a table slot is one miss, then the path compare.
#[derive(Clone, Debug, Default)]
pub struct PreviousScan {
    paths: Vec<u8>,
    path_ends: Vec<usize>,
    digests: Vec<u8>,
    digest_ends: Vec<usize>,
    stats: Vec<PreviousStat>,
    /// Power-of-two table of (upper 32 bits of the path's xxh3, row + 1); 0 marks a free slot.
    /// Built once, on the first lookup (or by `seal`), after the last push.
    index: OnceLock<Vec<(u32, u32)>>,
}

impl PreviousScan {
    pub fn len(&self) -> usize {
        self.stats.len()
    }

    pub fn is_empty(&self) -> bool {
        self.stats.is_empty()
    }

    pub fn push(&mut self, path: &[u8], stat: PreviousStat, digest: &str) {
        self.paths.extend_from_slice(path);
        self.path_ends.push(self.paths.len());
        self.digests.extend_from_slice(digest.as_bytes());
        self.digest_ends.push(self.digests.len());
        self.stats.push(stat);
        self.index = OnceLock::new();
    }

    fn path(&self, row: usize) -> &[u8] {
        let start = if row == 0 { 0 } else { self.path_ends[row - 1] };
        &self.paths[start..self.path_ends[row]]
    }

    fn digest(&self, row: usize) -> &str {
        let start = if row == 0 { 0 } else { self.digest_ends[row - 1] };
        // Only whole `&str`s were pushed, so every row is valid UTF-8 on its own.
        std::str::from_utf8(&self.digests[start..self.digest_ends[row]]).unwrap_or("")
    }

    /// Build the lookup index now (otherwise the first lookup does).
    pub fn seal(&self) {
        self.table();
    }

    fn table(&self) -> &[(u32, u32)] {
        self.index.get_or_init(|| {
            // At most half full: probe sequences stay short.
            let slots = (self.len() * 2).next_power_of_two().max(16);
            let mask = slots - 1;
            let mut table = vec![(0u32, 0u32); slots];
            for row in 0..self.len() {
                let path = self.path(row);
                let hash = xxhash_rust::xxh3::xxh3_64(path);
                let mut slot = hash as usize & mask;
                loop {
                    let (tag, entry) = table[slot];
                    if entry == 0 {
                        table[slot] = ((hash >> 32) as u32, row as u32 + 1);
                        break;
                    }
                    if tag == (hash >> 32) as u32 && self.path(entry as usize - 1) == path {
                        // Pushed twice: the later row wins.
                        table[slot].1 = row as u32 + 1;
                        break;
                    }
                    slot = (slot + 1) & mask;
                }
            }
            table
        })
    }

    /// The earlier stat and digest of `path` (the last one pushed if it was pushed twice).
    pub fn lookup(&self, path: &[u8]) -> Option<(PreviousStat, &str)> {
        if self.is_empty() {
            return None;
        }
        let table = self.table();
        let mask = table.len() - 1;
        let hash = xxhash_rust::xxh3::xxh3_64(path);
        let mut slot = hash as usize & mask;
        loop {
            let (tag, entry) = table[slot];
            if entry == 0 {
                return None;
            }
            let row = entry as usize - 1;
            if tag == (hash >> 32) as u32 && self.path(row) == path {
                return Some((self.stats[row], self.digest(row)));
            }
            slot = (slot + 1) & mask;
        }
    }

    /// The first row whose digest is not `len` hex characters, if any.
    fn first_bad_digest(&self, len: usize) -> Option<usize> {
        // One branch-free pass over the whole arena first (vectorised): the row-by-row check was
        // 3% of a /usr re-scan profile (7 MB of digests). Only a failure looks for its row.
        let lengths_ok = self.digest_ends.iter().enumerate().all(|(row, &end)| end == (row + 1) * len);
        if lengths_ok && self.digests.iter().fold(true, |ok, b| ok & b.is_ascii_hexdigit()) {
            return None;
        }
        (0..self.len()).find(|&row| {
            let d = self.digest(row);
            d.len() != len || !d.bytes().all(|b| b.is_ascii_hexdigit())
        })
    }
}

/// Counters of one scan, for callers who want to know how much work was saved.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ScanStats {
    pub files_hashed: u64,
    pub digests_reused: u64,
    pub bytes_hashed: u64,
    /// Names of hard-linked files that took the digest of another name of the same inode
    /// (same size, mtime and ctime) instead of reading it again.
    pub digests_shared: u64,
}

/// Builds a [`TreeScanner`]: setters, then a fallible [`build`](ScanBuilder::build) that checks
/// the globs, the thread count and the previous digests.
#[derive(Clone, Debug, Default)]
pub struct ScanBuilder {
    algo: Option<Algorithm>,
    excludes: Vec<String>,
    follow_symlinks: bool,
    threads: Option<usize>,
    one_file_system: bool,
    xattrs: bool,
    /// Shared with the scanners built from it: `build` does not copy the (possibly 100k-file)
    /// arenas.
    previous: Arc<PreviousScan>,
}

impl ScanBuilder {
    pub fn new() -> ScanBuilder {
        ScanBuilder::default()
    }

    pub fn algo(&mut self, algo: Option<Algorithm>) -> &mut Self {
        self.algo = algo;
        self
    }

    /// A glob matched against the full path of every entry; a match is left out of the result
    /// and, for a directory, not descended.
    pub fn exclude(&mut self, pattern: impl Into<String>) -> &mut Self {
        self.excludes.push(pattern.into());
        self
    }

    pub fn follow_symlinks(&mut self, yes: bool) -> &mut Self {
        self.follow_symlinks = yes;
        self
    }

    /// Worker threads; None means one per core.
    pub fn threads(&mut self, threads: Option<usize>) -> &mut Self {
        self.threads = threads;
        self
    }

    /// Do not descend into directories on another device than their root.
    pub fn one_file_system(&mut self, yes: bool) -> &mut Self {
        self.one_file_system = yes;
        self
    }

    /// Read every stat-ed entry's extended attributes (never following a symlink) into
    /// [`Entry::xattrs`], through the descriptors the walk holds: the open file of a hashed
    /// file, the open directory of a listed one, else by name relative to the listed parent.
    pub fn xattrs(&mut self, yes: bool) -> &mut Self {
        self.xattrs = yes;
        self
    }

    /// The digest of a regular file in an earlier scan, by raw path bytes: reused while its
    /// stat fields are unchanged.
    pub fn previous(&mut self, path_bytes: &[u8], stat: PreviousStat, digest: &str) -> &mut Self {
        Arc::make_mut(&mut self.previous).push(path_bytes, stat, digest);
        self
    }

    pub fn build(&self) -> Result<TreeScanner> {
        let mut globs = GlobSetBuilder::new();
        for (i, pattern) in self.excludes.iter().enumerate() {
            // `*` crosses `/` (globset's default): "*.log" excludes every .log file at any depth.
            let glob = GlobBuilder::new(pattern)
                .backslash_escape(true)
                .build()
                .map_err(|e| CoreError::invalid(format!("excludes[{i}] = {pattern:?} is not a valid glob: {e}")))?;
            globs.add(glob);
        }
        let excludes = globs.build().map_err(|e| CoreError::invalid(format!("excludes: {e}")))?;
        let threads = match self.threads {
            Some(0) => return Err(CoreError::invalid("threads = 0; it must be at least 1 (or None for one per core)")),
            Some(n) if n > 1024 => return Err(CoreError::invalid(format!("threads = {n}; the limit is 1024"))),
            Some(n) => n,
            None => std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1),
        };
        if let Some(algo) = self.algo {
            if let Some(row) = self.previous.first_bad_digest(algo.hex_len()) {
                return Err(CoreError::invalid(format!(
                    "previous digest of {} is {:?}; a {algo} digest is {} hex characters (was `previous` scanned with another algorithm?)",
                    String::from_utf8_lossy(self.previous.path(row)),
                    self.previous.digest(row),
                    algo.hex_len()
                )));
            }
        }
        Ok(TreeScanner {
            algo: self.algo,
            excludes,
            follow_symlinks: self.follow_symlinks,
            threads,
            one_file_system: self.one_file_system,
            xattrs: self.xattrs,
            previous: Arc::clone(&self.previous),
        })
    }
}

/// A configured walker; [`scan`](TreeScanner::scan) can be called many times.
#[derive(Debug)]
pub struct TreeScanner {
    algo: Option<Algorithm>,
    excludes: GlobSet,
    follow_symlinks: bool,
    threads: usize,
    one_file_system: bool,
    xattrs: bool,
    previous: Arc<PreviousScan>,
}

/// The (dev, inode) of every directory from the root down to the current one: a directory
/// already on the chain, reached again through a followed symlink, is a loop.
struct Ancestor {
    dev: u64,
    inode: u64,
    parent: Option<Arc<Ancestor>>,
}

fn on_chain(chain: &Option<Arc<Ancestor>>, dev: u64, inode: u64) -> bool {
    let mut node = chain.as_deref();
    while let Some(a) = node {
        if a.dev == dev && a.inode == inode {
            return true;
        }
        node = a.parent.as_deref();
    }
    false
}

/// A directory to list: its own row (filled in with a listing error if any) and where it sits.
struct DirTask {
    entry: Entry,
    chain: Option<Arc<Ancestor>>,
    root_dev: u64,
}

struct Shared<'a, R> {
    scanner: &'a TreeScanner,
    /// Finished rows, already turned into the caller's row type by `map`.
    rows: Mutex<Vec<R>>,
    map: &'a (dyn Fn(Entry) -> R + Sync),
    /// Regular files to hash after the walk (no reusable previous digest).
    pending: Mutex<Vec<Entry>>,
    stats: Mutex<ScanStats>,
}

impl<R: Send> Shared<'_, R> {
    /// Map a batch of finished rows (on the worker that made them, while the walk goes on) and
    /// append them to the result.
    fn push_rows(&self, rows: Vec<Entry>) {
        if !rows.is_empty() {
            let mut mapped: Vec<R> = rows.into_iter().map(self.map).collect();
            self.rows.lock().unwrap_or_else(|p| p.into_inner()).append(&mut mapped);
        }
    }

    fn push_pending(&self, mut files: Vec<Entry>) {
        if !files.is_empty() {
            self.pending.lock().unwrap_or_else(|p| p.into_inner()).append(&mut files);
        }
    }

}

fn path_of(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

fn join(parent: &[u8], name: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parent.len() + 1 + name.len());
    out.extend_from_slice(parent);
    if out.last() != Some(&b'/') {
        out.push(b'/');
    }
    out.extend_from_slice(name);
    out
}

/// Strip trailing slashes ("dir/" and "dir" are the same root) but keep "/" itself.
fn normalize_root(root: &[u8]) -> Vec<u8> {
    let mut end = root.len();
    while end > 1 && root[end - 1] == b'/' {
        end -= 1;
    }
    root[..end].to_vec()
}

/// The error text of a failed operation on an entry; the prefixes are stable
/// ("permission denied", "vanished during scan", "symlink loop", "io error").
fn describe(what: &str, err: &std::io::Error) -> String {
    match err.kind() {
        ErrorKind::NotFound => "vanished during scan".to_string(),
        ErrorKind::PermissionDenied => format!("permission denied: {what}"),
        _ if err.raw_os_error() == Some(libc::ELOOP) => format!("symlink loop: {what}"),
        _ => format!("io error: {what}: {err}"),
    }
}

impl TreeScanner {
    pub fn builder() -> ScanBuilder {
        ScanBuilder::new()
    }

    pub fn algo(&self) -> Option<Algorithm> {
        self.algo
    }

    /// Walk every root. Rows are sorted by `path` (then by raw bytes), a path reached from two
    /// overlapping roots appears once. Only a root that cannot be stat-ed is an error.
    pub fn scan(&self, roots: &[Vec<u8>]) -> Result<(Vec<Entry>, ScanStats)> {
        let pool = self.pool()?;
        let (rows, stats) = self.scan_in(&pool, roots, &|entry| entry)?;
        let mut rows = pool.install(|| sorted_by_path(rows));
        rows.dedup_by(|a, b| a.path_bytes == b.path_bytes);
        Ok((rows, stats))
    }

    /// Walk every root and turn each row into the caller's type with `map`, on the worker that
    /// finished the row, while the walk goes on. The rows come in no particular order, and a
    /// path reached from two overlapping roots comes once per root: a caller that sorts its
    /// own rows anyway (the FIM scan sorts by raw path bytes) saves [`scan`](Self::scan)'s
    /// sort and a second pass over every row (on /usr/share, 50k rows of ~250 bytes: sorting
    /// them, then converting and sorting them again took 20 ms after the walk).
    pub fn scan_map<R: Send>(&self, roots: &[Vec<u8>], map: &(dyn Fn(Entry) -> R + Sync)) -> Result<(Vec<R>, ScanStats)> {
        self.scan_in(&self.pool()?, roots, map)
    }

    fn scan_in<R: Send>(&self, pool: &rayon::ThreadPool, roots: &[Vec<u8>], map: &(dyn Fn(Entry) -> R + Sync)) -> Result<(Vec<R>, ScanStats)> {
        // The index of previous digests, built before the workers start (not by the first of
        // them to look something up, with the others waiting).
        self.previous.seal();
        let mut checked: Vec<(Vec<u8>, Stat)> = Vec::with_capacity(roots.len());
        for root in roots {
            if root.is_empty() {
                return Err(CoreError::invalid("a root path is empty"));
            }
            let root = normalize_root(root);
            let meta = fs::symlink_metadata(path_of(&root))
                .map_err(|e| CoreError::io(String::from_utf8_lossy(&root).into_owned(), e))?;
            checked.push((root, Stat::from_metadata(&meta)));
        }
        let shared = Shared {
            scanner: self,
            rows: Mutex::new(Vec::new()),
            map,
            pending: Mutex::new(Vec::new()),
            stats: Mutex::new(ScanStats::default()),
        };
        pool.install(|| {
            // Directories are listed breadth first (FIFO), not depth first: a big file is hashed
            // by the worker that lists its directory, and big files sit near the top of a tree
            // more often than deep in it, so they are met early and their hashing overlaps the
            // rest of the walk. Depth first, /usr/share's 76 MB package list came last and one
            // worker hashed it alone for 65 ms of a 0.35 s scan (0.33 s breadth first).
            rayon::scope_fifo(|scope| {
                for (root, lmeta) in checked {
                    if self.is_excluded(&root) {
                        continue;
                    }
                    let mut local = Listing::default();
                    shared.examine(scope, root, Ok(lmeta), None, None, None, &mut local);
                    shared.push_rows(local.rows);
                    shared.push_pending(local.pending);
                    shared.stats.lock().unwrap_or_else(|p| p.into_inner()).digests_reused += local.reused;
                }
            });
        });
        if self.algo == Some(Algorithm::Sha256) {
            shared.drain_inline_lanes(pool);
        }
        let mut rows = shared.rows.into_inner().unwrap_or_else(|p| p.into_inner());
        let pending = shared.pending.into_inner().unwrap_or_else(|p| p.into_inner());
        let mut stats = shared.stats.into_inner().unwrap_or_else(|p| p.into_inner());
        if let Some(algo) = self.algo {
            rows.extend(self.hash_pending(pool, algo, pending, &mut stats).into_iter().map(map));
        }
        Ok((rows, stats))
    }

    fn pool(&self) -> Result<rayon::ThreadPool> {
        rayon::ThreadPoolBuilder::new()
            .num_threads(self.threads)
            .thread_name(|i| format!("secmon-walk-{i}"))
            .build()
            .map_err(|e| CoreError::invalid(format!("cannot start {} walker threads: {e}", self.threads)))
    }

    fn is_excluded(&self, path: &[u8]) -> bool {
        !self.excludes.is_empty() && self.excludes.is_match(path_of(path))
    }
}

/// `rows` in [`Entry::cmp_path`] order. The sort moves 24-byte (path, row, utf8) keys and then each
/// row once, not the rows themselves: an `Entry` is ~200 bytes, and sorting them in place moved
/// them some 17 times each (5% of a /usr re-scan profile was that memmove).
fn sorted_by_path(rows: Vec<Entry>) -> Vec<Entry> {
    let mut keys: Vec<(&[u8], u32, bool)> = rows.iter().enumerate().map(|(i, e)| (e.path_bytes.as_slice(), i as u32, e.utf8)).collect();
    keys.par_sort_unstable_by(|a, b| {
        if a.2 && b.2 {
            // The common case without touching the rows: UTF-8 paths order by their bytes.
            a.0.cmp(b.0)
        } else {
            rows[a.1 as usize].cmp_path(&rows[b.1 as usize])
        }
    });
    let order: Vec<u32> = keys.into_iter().map(|(_, i, _)| i).collect();
    permuted(rows, order)
}

/// `rows` rearranged so that position `k` holds the row that was at `order[k]` (a permutation),
/// in place: each cycle of the permutation is followed once, so every row moves once and no
/// second row array is allocated (on /usr/share, a fresh 12 MB array's page faults and the two
/// moves through it were most of the sort's time).
pub(crate) fn permuted<T>(mut rows: Vec<T>, mut order: Vec<u32>) -> Vec<T> {
    debug_assert_eq!(rows.len(), order.len());
    const DONE: u32 = u32::MAX;
    for start in 0..order.len() {
        if order[start] == DONE {
            continue;
        }
        // Walk the cycle through `start`: each position takes its row from the next one.
        let mut here = start;
        loop {
            let from = order[here] as usize;
            order[here] = DONE;
            if from == start {
                break;
            }
            rows.swap(here, from);
            here = from;
        }
    }
    rows
}

/// What one directory task produced: finished rows, and regular files still to hash.
#[derive(Default)]
struct Listing {
    rows: Vec<Entry>,
    pending: Vec<Entry>,
    /// Files that kept their previous digest (added to the scan's stats once per listing).
    reused: u64,
}

/// How hashing one file ended: its digest and byte count, the digest of another name of the
/// same inode, or the row's error text.
enum Outcome {
    Digest(String, u64),
    Shared(String),
    Error(String),
}

/// Hard-linked names of one inode read once: the same inode with the same size, mtime and ctime
/// has the same bytes under every name.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct InodeKey {
    dev: u64,
    inode: u64,
    size: u64,
    mtime_ns: i64,
    ctime_ns: i64,
}

/// Files at least this large are hashed one by one in size order (largest first); smaller ones
/// are hashed per directory, opened relative to it.
pub const GROUP_MAX_SIZE: u64 = 1024 * 1024;

/// Files of one directory hashed as one job at most: large enough to pay for opening the
/// directory, small enough that the tail of the queue still balances across workers.
const GROUP_MAX_FILES: usize = 256;

/// A unit of the hashing queue.
enum Job {
    /// One large file, opened by its full path.
    One(usize),
    /// Small files of one directory (their walk order), opened relative to it.
    Dir(Vec<usize>),
}

/// `path` as (its directory, its last name): "/a/b" -> ("/a", "b"), "/a" -> ("/", "a"),
/// "a" -> (".", "a").
fn split_parent(path: &[u8]) -> (&[u8], &[u8]) {
    match path.iter().rposition(|&b| b == b'/') {
        Some(0) => (b"/", &path[1..]),
        Some(i) => (&path[..i], &path[i + 1..]),
        None => (b".", path),
    }
}

impl TreeScanner {
    /// Hash every pending file (phase two of a scan) and return them as rows. `files` comes in
    /// walk order: the pending files of one directory listing are adjacent.
    fn hash_pending(&self, pool: &rayon::ThreadPool, algo: Algorithm, files: Vec<Entry>, stats: &mut ScanStats) -> Vec<Entry> {
        let size_of = |e: &Entry| e.stat.map_or(0, |s| s.size);
        // Large files first, largest first (longest-processing-time-first): the queue ends with
        // small files, so no worker is left alone with a big file while the others idle. The
        // small ones stay in walk order, grouped by directory.
        let (mut files, small): (Vec<Entry>, Vec<Entry>) = files.into_iter().partition(|e| size_of(e) >= GROUP_MAX_SIZE);
        files.sort_unstable_by_key(|e| std::cmp::Reverse(size_of(e)));
        let large = files.len();
        files.extend(small);
        // The first name of each multiply-linked inode is hashed; the others wait for its digest.
        let mut leader_of: HashMap<InodeKey, usize> = HashMap::new();
        let mut followers: Vec<(usize, usize)> = Vec::new();
        let mut jobs: Vec<Job> = Vec::new();
        for (i, entry) in files.iter().enumerate() {
            let stat = entry.stat.expect("pending files were stat-ed");
            if stat.nlink > 1 {
                let key = InodeKey { dev: stat.dev, inode: stat.inode, size: stat.size, mtime_ns: stat.mtime_ns, ctime_ns: stat.ctime_ns };
                if let Some(&leader) = leader_of.get(&key) {
                    followers.push((i, leader));
                    continue;
                }
                leader_of.insert(key, i);
            }
            if i < large {
                jobs.push(Job::One(i));
                continue;
            }
            let parent = split_parent(&entry.path_bytes).0;
            match jobs.last_mut() {
                Some(Job::Dir(group))
                    if group.len() < GROUP_MAX_FILES && split_parent(&files[group[0]].path_bytes).0 == parent =>
                {
                    group.push(i)
                }
                _ => jobs.push(Job::Dir(vec![i])),
            }
        }
        let mut outcomes: Vec<Option<Outcome>> = (0..files.len()).map(|_| None).collect();
        for (i, outcome) in self.hash_jobs(pool, algo, &files, &jobs) {
            outcomes[i] = Some(outcome);
        }
        // A name whose leader got no digest (it vanished, was replaced, ...) is read on its own.
        let mut retry = Vec::new();
        for &(follower, leader) in &followers {
            match &outcomes[leader] {
                Some(Outcome::Digest(digest, _)) => {
                    outcomes[follower] = Some(Outcome::Shared(digest.clone()));
                    stats.digests_shared += 1;
                }
                _ => retry.push(Job::One(follower)),
            }
        }
        for (i, outcome) in self.hash_jobs(pool, algo, &files, &retry) {
            outcomes[i] = Some(outcome);
        }
        for (entry, outcome) in files.iter_mut().zip(outcomes) {
            match outcome {
                Some(Outcome::Digest(digest, bytes)) => {
                    stats.files_hashed += 1;
                    stats.bytes_hashed += bytes;
                    entry.digest = Some(digest);
                }
                Some(Outcome::Shared(digest)) => entry.digest = Some(digest),
                Some(Outcome::Error(error)) => entry.error = Some(error),
                None => unreachable!("every pending file is a job or follows one"),
            }
        }
        files
    }

    /// Run `jobs` on every worker of `pool`, each pulling the next job from one shared counter.
    fn hash_jobs(&self, pool: &rayon::ThreadPool, algo: Algorithm, files: &[Entry], jobs: &[Job]) -> Vec<(usize, Outcome)> {
        if jobs.is_empty() {
            return Vec::new();
        }
        let cursor = AtomicUsize::new(0);
        let per_worker = pool.broadcast(|_| {
            let mut out: Vec<(usize, Outcome)> = Vec::new();
            let mut opener = Opener { scanner: self, files, jobs, cursor: &cursor, dir: None, group: &[], next_in_group: 0 };
            if algo == Algorithm::Sha256 {
                // The opener hands the lanes opened files; one that cannot be opened is answered
                // here and the next one taken.
                let mut failed: Vec<(usize, Outcome)> = Vec::new();
                LaneHasher::new().run(
                    || {
                        let (i, file) = opener.next_file(&mut failed)?;
                        Some((i, file, files[i].stat.map_or(0, |s| s.size)))
                    },
                    |(i, result)| out.push((i, sized_outcome(result, files[i].stat.map_or(0, |s| s.size)))),
                );
                out.append(&mut failed);
            } else {
                let mut failed: Vec<(usize, Outcome)> = Vec::new();
                while let Some((i, mut file)) = opener.next_file(&mut failed) {
                    let size = files[i].stat.map_or(0, |s| s.size);
                    out.push((i, sized_outcome(hash::hash_open_file_sized(&mut file, algo, size), size)));
                }
                out.append(&mut failed);
            }
            out
        });
        per_worker.into_iter().flatten().collect()
    }

    /// Open a regular file found by the walk (relative to `dir` when given, by its last name),
    /// refusing anything that took its place since.
    fn open_for_hash(&self, entry: &Entry, dir: Option<&File>) -> std::result::Result<File, String> {
        let stat = entry.stat.expect("pending files were stat-ed");
        let name = if dir.is_some() { split_parent(&entry.path_bytes).1 } else { &entry.path_bytes[..] };
        let (file, meta) = hash::open_regular_nonblocking_at(dir, path_of(name), self.follow_symlinks).map_err(|e| match e.raw_os_error() {
            // Without follow, O_NOFOLLOW refuses a symlink put in the file's place.
            Some(libc::ELOOP) if !self.follow_symlinks => "replaced during scan".to_string(),
            _ if e.kind() == ErrorKind::InvalidInput => format!("replaced during scan: {e}"),
            _ => describe("opening file", &e),
        })?;
        if meta.ino() != stat.inode || meta.dev() != stat.dev {
            return Err("replaced during scan".to_string());
        }
        Ok(file)
    }
}

/// One worker's view of the job queue, as a stream of opened files.
struct Opener<'a> {
    scanner: &'a TreeScanner,
    files: &'a [Entry],
    jobs: &'a [Job],
    cursor: &'a AtomicUsize,
    /// The directory of the current group (None: open by full path).
    dir: Option<File>,
    group: &'a [usize],
    next_in_group: usize,
}

impl Opener<'_> {
    /// The next file that opens; files that do not are answered in `failed`.
    fn next_file(&mut self, failed: &mut Vec<(usize, Outcome)>) -> Option<(usize, File)> {
        loop {
            while self.next_in_group < self.group.len() {
                let i = self.group[self.next_in_group];
                self.next_in_group += 1;
                match self.scanner.open_for_hash(&self.files[i], self.dir.as_ref()) {
                    Ok(file) => return Some((i, file)),
                    Err(error) => failed.push((i, Outcome::Error(error))),
                }
            }
            let job = self.jobs.get(self.cursor.fetch_add(1, Ordering::Relaxed))?;
            self.next_in_group = 0;
            match job {
                Job::One(i) => {
                    self.dir = None;
                    self.group = std::slice::from_ref(i);
                }
                Job::Dir(group) => {
                    let parent = split_parent(&self.files[group[0]].path_bytes).0;
                    // A directory that no longer opens: each file is tried by its full path, so
                    // each gets its own error (vanished, permission denied, ...).
                    self.dir = open_directory(parent).ok();
                    self.group = group;
                }
            }
        }
    }
}

fn open_directory(path: &[u8]) -> std::io::Result<File> {
    use std::os::unix::fs::OpenOptionsExt;
    fs::OpenOptions::new().read(true).custom_flags(libc::O_DIRECTORY | libc::O_CLOEXEC).open(path_of(path))
}

/// The row's digest or error for a sized hash of `size` bytes.
fn sized_outcome(result: std::io::Result<SizedDigest>, size: u64) -> Outcome {
    match result {
        Ok(SizedDigest::Digest(digest)) => Outcome::Digest(digest, size),
        Ok(SizedDigest::Shorter { read }) => Outcome::Error(format!("changed during scan: {read} bytes, not the {size} of its stat")),
        Ok(SizedDigest::Longer) => Outcome::Error(format!(
            "changed during scan: more than the {size} bytes of its stat (growing, or a pseudo file)"
        )),
        Err(e) => Outcome::Error(describe("reading file", &e)),
    }
}

impl<'a, R: Send> Shared<'a, R> {
    /// Turn one path (with its lstat result) into a row; a directory to descend is spawned as a
    /// task, a regular file without a reusable digest waits for the hashing phase. `at` is the
    /// open parent directory and the entry's name in it (None for a root): a symlink's target is
    /// read relative to it. `chain` is the parent's ancestor chain (None for a root), `root_dev`
    /// the device of the root it belongs to (None for a root).
    #[allow(clippy::too_many_arguments)]
    fn examine<'s>(
        &'s self,
        scope: &rayon::ScopeFifo<'s>,
        path: Vec<u8>,
        lstat: std::io::Result<Stat>,
        at: Option<(&DirHandle, &CStr)>,
        chain: Option<&Option<Arc<Ancestor>>>,
        root_dev: Option<u64>,
        out: &mut Listing,
    ) {
        let scanner = self.scanner;
        let mut stat = match lstat {
            Ok(stat) => stat,
            Err(e) => {
                let mut entry = Entry::new(path, EntryType::Unknown);
                entry.error = Some(describe("stat", &e));
                out.rows.push(entry);
                return;
            }
        };
        let mut entry = Entry::new(path, EntryType::from_mode(stat.mode));
        let lstat_mode = stat.mode;
        if entry.kind == EntryType::Symlink {
            let target = match at {
                Some((dir, name)) => dir.read_link(name),
                None => fs::read_link(path_of(&entry.path_bytes)).map(|t| t.into_os_string().into_encoded_bytes()),
            };
            match target {
                Ok(target) => entry.target = Some(target),
                Err(e) => entry.error = Some(describe("reading symlink", &e)),
            }
            if scanner.follow_symlinks && entry.error.is_none() {
                match fs::metadata(path_of(&entry.path_bytes)) {
                    Ok(m) => {
                        stat = Stat::from_metadata(&m);
                        entry.kind = EntryType::from_mode(stat.mode);
                    }
                    Err(e) if e.kind() == ErrorKind::NotFound => {
                        entry.error = Some("broken symlink: target does not exist".to_string());
                    }
                    Err(e) => entry.error = Some(describe("following symlink", &e)),
                }
            }
        }
        entry.stat = Some(stat);
        let root_dev = root_dev.unwrap_or(stat.dev);
        let is_dir = entry.kind == EntryType::Dir;
        let parent_chain = if is_dir { chain.cloned().flatten() } else { None };
        let is_loop = is_dir && scanner.follow_symlinks && on_chain(&parent_chain, stat.dev, stat.inode);
        let other_fs = is_dir && scanner.one_file_system && stat.dev != root_dev;
        // A directory that will be listed has its xattrs read through the listing's descriptor
        // (not a symlink followed to it: the row's xattrs are the link's own, as lgetxattr's).
        let read_when_listed = is_dir && !is_loop && !other_fs && stat.mode == lstat_mode;
        if scanner.xattrs && !read_when_listed {
            entry.xattrs = Some(match at {
                Some((dir, name)) => read_xattrs_from(XattrSource::At { dir: dir.fd(), name, path: &entry.path_bytes }),
                None => read_xattrs_from(XattrSource::Path(&entry.path_bytes)),
            });
        }
        match entry.kind {
            EntryType::Dir => {
                if is_loop {
                    entry.error = Some("symlink loop: directory is its own ancestor".to_string());
                    out.rows.push(entry);
                    return;
                }
                if other_fs {
                    out.rows.push(entry);
                    return;
                }
                let chain = Some(Arc::new(Ancestor { dev: stat.dev, inode: stat.inode, parent: parent_chain }));
                let task = DirTask { entry, chain, root_dev };
                scope.spawn_fifo(move |scope| self.list_dir(scope, task));
            }
            EntryType::File if scanner.algo.is_some() => {
                if let Some((prev, digest)) = scanner.previous.lookup(&entry.path_bytes) {
                    if prev.matches(&stat) {
                        entry.digest = Some(digest.to_string());
                        out.reused += 1;
                        out.rows.push(entry);
                        return;
                    }
                }
                out.pending.push(entry);
            }
            _ => out.rows.push(entry),
        }
    }

    /// List one directory through its own descriptor and examine every child relative to it.
    ///
    /// Small regular files are hashed here, while the directory is open, instead of in the
    /// hashing phase: a child that `readdir` says is a regular file is opened relative to the
    /// directory at once and its row's stat is the `fstat` of that open file. Measured on
    /// /usr/share (42k files under 64 KiB, page cache, CPU per file): `fstatat` then (later)
    /// `openat` + `fstat` + two reads + `close` cost 1.7 + 5.3 us; `openat` + `fstat` + reads +
    /// `close` alone 5.3 us: one path lookup and one stat call fewer per file, and no second
    /// opening of the directory for the hashing phase. With sha256 the files stream through the
    /// four SHA-NI lanes as the listing hands them out, big files too, so at most four are open
    /// at a time. Hard-linked files (read once per inode in the hashing phase) and, with other
    /// algorithms, big files (hashed largest first there) wait for that phase; files with an
    /// entry in `previous` (reused without being opened) take the `fstatat` path.
    fn list_dir<'s>(&'s self, scope: &rayon::ScopeFifo<'s>, task: DirTask) {
        let DirTask { mut entry, chain, root_dev } = task;
        let mut out = Listing::default();
        let wants_xattrs = self.scanner.xattrs && entry.xattrs.is_none();
        match DirHandle::open(&entry.path_bytes) {
            Err(e) => {
                entry.error = Some(describe("listing directory", &e));
                if wants_xattrs {
                    entry.xattrs = Some(read_xattrs_from(XattrSource::Path(&entry.path_bytes)));
                }
            }
            Ok(mut dir) => {
                let scanner = self.scanner;
                if wants_xattrs {
                    entry.xattrs = Some(read_xattrs_from(XattrSource::Fd(dir.fd())));
                }
                let parent = &entry.path_bytes;
                let mut listing_error: Option<String> = None;
                // Regular files opened by the listing, hashed as they come (with sha256 they
                // may finish during a later listing of this worker, or at the end of the walk).
                let mut finished: Vec<LaneResult<Entry>> = Vec::new();
                // With sha256 on a CPU with the 16-lane kernel, big files are kept out of the
                // wide lanes (where a file moves at 1/16 of the core's rate) and hashed at once,
                // up to LANES together, to the end: see WIDE_MAX_SIZE.
                let wide = scanner.algo == Some(Algorithm::Sha256) && sha256_lanes::wide_available();
                let mut big: Vec<(Entry, File, u64)> = Vec::new();
                let mut finished_big: Vec<LaneResult<Entry>> = Vec::new();
                let mut next_file = || -> Option<(Entry, File, u64)> {
                    loop {
                        let (name, d_type) = match dir.next_name() {
                            None => return None,
                            Some(Err(e)) => {
                                listing_error = Some(describe("listing directory", &e));
                                return None;
                            }
                            Some(Ok(item)) => item,
                        };
                        let child = join(parent, name.to_bytes());
                        if scanner.is_excluded(&child) {
                            continue;
                        }
                        let previous = if d_type == libc::DT_REG && scanner.algo.is_some() { scanner.previous.lookup(&child) } else { None };
                        if let Some((prev, digest)) = previous {
                            // Known from the previous scan: stat it by name, and if nothing moved
                            // keep its digest without opening it (else `examine` decides).
                            let lstat = dir.stat_at(&name);
                            if let Ok(stat) = &lstat {
                                if stat.mode & libc::S_IFMT == libc::S_IFREG && prev.matches(stat) {
                                    let mut row = Entry::new(child, EntryType::File);
                                    row.stat = Some(*stat);
                                    row.digest = Some(digest.to_string());
                                    if scanner.xattrs {
                                        row.xattrs = Some(read_xattrs_from(XattrSource::At { dir: dir.fd(), name: &name, path: &row.path_bytes }));
                                    }
                                    out.reused += 1;
                                    out.rows.push(row);
                                    continue;
                                }
                            }
                            self.examine(scope, child, lstat, Some((&dir, &name)), Some(&chain), Some(root_dev), &mut out);
                            continue;
                        }
                        if d_type == libc::DT_REG && scanner.algo.is_some() {
                            if let Some((file, stat)) = dir.open_regular(&name) {
                                let mut row = Entry::new(child, EntryType::File);
                                row.stat = Some(stat);
                                if scanner.xattrs {
                                    row.xattrs = Some(read_xattrs_from(XattrSource::Fd(file.as_raw_fd())));
                                }
                                // With sha256 a big file joins the lanes too: it is read
                                // beside the small files and the walk goes on, rather than
                                // waiting for the hashing phase, whose tail is the biggest file
                                // alone on one core (on /usr/share, a 76 MB file: 0.07 s of a
                                // 0.40 s scan; inline, 0.34 s). Other algorithms hash one file
                                // at a time, so big files stay in the phase, largest first.
                                let lanes = scanner.algo == Some(Algorithm::Sha256);
                                if stat.nlink <= 1 && wide && stat.size >= WIDE_MAX_SIZE {
                                    big.push((row, file, stat.size));
                                    if big.len() == sha256_lanes::LANES {
                                        hash_to_the_end(&mut big, &mut finished_big);
                                    }
                                    continue;
                                }
                                if stat.nlink <= 1 && (lanes || stat.size < GROUP_MAX_SIZE) {
                                    return Some((row, file, stat.size));
                                }
                                // Hashed in the hashing phase (largest first, or once per inode).
                                out.pending.push(row);
                                continue;
                            }
                        }
                        let lstat = dir.stat_at(&name);
                        self.examine(scope, child, lstat, Some((&dir, &name)), Some(&chain), Some(root_dev), &mut out);
                    }
                };
                match scanner.algo {
                    Some(Algorithm::Sha256) => INLINE_LANES.with(|cell| match cell.try_borrow_mut() {
                        Ok(mut lanes) => lanes.feed(&mut next_file, |result| finished.push(result)),
                        // Not expected (nothing in a listing re-enters it); a hasher of its own
                        // that finishes here is correct too.
                        Err(_) => LaneHasher::new().run(&mut next_file, |result| finished.push(result)),
                    }),
                    Some(algo) => {
                        while let Some((row, mut file, size)) = next_file() {
                            let eof = eof_hint(&row, &file);
                            finished.push((row, hash::hash_open_file_sized_eof(&mut file, algo, size, eof)));
                        }
                    }
                    None => while next_file().is_some() {},
                }
                hash_to_the_end(&mut big, &mut finished_big);
                finished.append(&mut finished_big);
                self.record_hashed(finished, &mut out.rows);
                if let Some(error) = listing_error {
                    entry.error = Some(error);
                }
            }
        }
        if out.reused > 0 {
            self.stats.lock().unwrap_or_else(|p| p.into_inner()).digests_reused += out.reused;
        }
        out.rows.push(entry);
        self.push_rows(out.rows);
        self.push_pending(out.pending);
    }
}

impl<R: Send> Shared<'_, R> {
    /// Rows of files hashed during a listing (or drained from a worker's lanes at the end).
    fn record_hashed(&self, finished: Vec<LaneResult<Entry>>, rows: &mut Vec<Entry>) {
        if finished.is_empty() {
            return;
        }
        let mut stats = ScanStats::default();
        for (mut row, result) in finished {
            let size = row.stat.map_or(0, |s| s.size);
            match sized_outcome(result, size) {
                Outcome::Digest(digest, bytes) => {
                    stats.files_hashed += 1;
                    stats.bytes_hashed += bytes;
                    row.digest = Some(digest);
                }
                Outcome::Shared(digest) => row.digest = Some(digest),
                Outcome::Error(error) => row.error = Some(error),
            }
            rows.push(row);
        }
        let mut total = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        total.files_hashed += stats.files_hashed;
        total.bytes_hashed += stats.bytes_hashed;
    }

    /// After the walk: every worker completes the files still in its lanes.
    fn drain_inline_lanes(&self, pool: &rayon::ThreadPool) {
        pool.broadcast(|_| {
            let mut finished = Vec::new();
            INLINE_LANES.with(|cell| cell.borrow_mut().finish(|result| finished.push(result)));
            let mut rows = Vec::new();
            self.record_hashed(finished, &mut rows);
            self.push_rows(rows);
        });
    }
}

/// With sha256 on a CPU with the 16-lane kernel ([`sha256_lanes::wide_available`]), regular files
/// of at least this size are not fed to a worker's wide lanes but hashed as soon as their
/// directory's listing meets them, up to [`sha256_lanes::LANES`] at a time through SHA-NI, to the
/// end. In a wide lane a file moves at a sixteenth of the core's rate (~0.16 GB/s): a 76 MB file
/// met early would still be hashing when the walk ends, one core finishing it alone; 4 MiB
/// takes ~25 ms there, and hashed apart a file of this size costs SHA-NI's lower throughput
/// (1.75 against 2.6 GB/s per core) only on the few bytes of few files.
pub const WIDE_MAX_SIZE: u64 = 4 << 20;

/// Hash the files of `batch` (opened by a listing) through SHA-NI lanes, to the end.
fn hash_to_the_end(batch: &mut Vec<(Entry, File, u64)>, finished: &mut Vec<LaneResult<Entry>>) {
    if batch.is_empty() {
        return;
    }
    let mut queue = batch.drain(..);
    BIG_FILE_LANES.with(|cell| match cell.try_borrow_mut() {
        Ok(mut lanes) => lanes.run(|| queue.next(), |result| finished.push(result)),
        Err(_) => LaneHasher::new().run(|| queue.next(), |result| finished.push(result)),
    });
}

fn eof_hint(entry: &Entry, file: &File) -> bool {
    entry.stat.is_some_and(|s| hash::short_read_is_eof(file, s.dev))
}

thread_local! {
    /// Per worker, the SHA-NI lanes that hash big files to the end (see [`WIDE_MAX_SIZE`]).
    static BIG_FILE_LANES: std::cell::RefCell<LaneHasher<Entry>> = std::cell::RefCell::new(LaneHasher::new().with_eof_hint(eof_hint));

    /// One lane hasher per worker for the small files hashed during the listings (16 lanes
    /// where the CPU has the AVX-512 kernel, else four): its 64 KiB buffers are allocated once,
    /// and its lanes stay full across directories.
    /// Scans build a pool of their own, so a worker's lanes only ever hold files of its scan;
    /// [`Shared::drain_inline_lanes`] empties them before the pool ends.
    static INLINE_LANES: std::cell::RefCell<LaneHasher<Entry>> = std::cell::RefCell::new(LaneHasher::wide().with_eof_hint(eof_hint));
}

/// A directory open for listing: `getdents64` over a descriptor of our own, so its children can
/// be stat-ed, opened and their links read relative to it (one name to resolve, not the full
/// path). Raw `getdents64` rather than `fdopendir`/`readdir`: glibc's `fdopendir` spends an
/// `fstat` and an `fcntl` per directory checking what we already know.
struct DirHandle {
    fd: std::os::fd::OwnedFd,
    /// `getdents64` records; `buffer[next..filled]` not handed out yet.
    buffer: Vec<u8>,
    next: usize,
    filled: usize,
    done: bool,
}

/// Bytes of directory records fetched per `getdents64` (what glibc's readdir uses).
const DIRENT_BUFFER: usize = 32 * 1024;

impl DirHandle {
    fn open(path: &[u8]) -> std::io::Result<DirHandle> {
        use std::os::fd::FromRawFd;
        let cpath = CString::new(path).map_err(|_| std::io::Error::new(ErrorKind::InvalidInput, "path contains a NUL byte"))?;
        // Listing a directory moves its access time as reading a file does: O_NOATIME here too.
        let fd = hash::open_for_reading_at(libc::AT_FDCWD, &cpath, libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC)?;
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let fd = unsafe { std::os::fd::OwnedFd::from_raw_fd(fd) };
        Ok(DirHandle { fd, buffer: vec![0u8; DIRENT_BUFFER], next: 0, filled: 0, done: false })
    }

    fn fd(&self) -> libc::c_int {
        self.fd.as_raw_fd()
    }

    /// The next child's name and `d_type` ("." and ".." skipped); None at the end.
    fn next_name(&mut self) -> Option<std::io::Result<(CString, u8)>> {
        loop {
            if self.next >= self.filled {
                if self.done {
                    return None;
                }
                // SAFETY: `buffer` has `buffer.len()` writable bytes; the descriptor is an open directory.
                let n = unsafe { libc::syscall(libc::SYS_getdents64, self.fd(), self.buffer.as_mut_ptr(), self.buffer.len()) };
                if n < 0 {
                    let err = std::io::Error::last_os_error();
                    if err.kind() == ErrorKind::Interrupted {
                        continue;
                    }
                    self.done = true;
                    return Some(Err(err));
                }
                if n == 0 {
                    self.done = true;
                    return None;
                }
                self.next = 0;
                self.filled = n as usize;
            }
            // struct linux_dirent64 { u64 d_ino; i64 d_off; u16 d_reclen; u8 d_type; char d_name[]; }
            let record = &self.buffer[self.next..self.filled];
            let reclen = u16::from_ne_bytes([record[16], record[17]]) as usize;
            let d_type = record[18];
            let name_bytes = &record[19..reclen];
            let name_len = name_bytes.iter().position(|&b| b == 0).unwrap_or(name_bytes.len());
            self.next += reclen;
            let name = &name_bytes[..name_len];
            if name == b"." || name == b".." {
                continue;
            }
            // A kernel record's name has no NUL inside (it ends at the first one).
            return Some(Ok((CString::new(name).expect("no NUL in a directory entry name"), d_type)));
        }
    }

    /// lstat of a child (`fstatat` with `AT_SYMLINK_NOFOLLOW`).
    fn stat_at(&self, name: &CStr) -> std::io::Result<Stat> {
        // SAFETY: a zeroed `stat` is a valid out-parameter; `name` is NUL-terminated.
        let mut st: libc::stat64 = unsafe { std::mem::zeroed() };
        let rc = unsafe { libc::fstatat64(self.fd(), name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
        Ok(Stat::from_stat64(&st))
    }

    /// A child's symlink target (`readlinkat`).
    fn read_link(&self, name: &CStr) -> std::io::Result<Vec<u8>> {
        let mut buf = vec![0u8; 256];
        loop {
            // SAFETY: `buf` has `buf.len()` writable bytes; `name` is NUL-terminated.
            let n = unsafe { libc::readlinkat(self.fd(), name.as_ptr(), buf.as_mut_ptr().cast(), buf.len()) };
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            let n = n as usize;
            if n < buf.len() {
                buf.truncate(n);
                return Ok(buf);
            }
            // Possibly truncated: try again with room to spare.
            let bigger = buf.len() * 4;
            buf.resize(bigger, 0);
        }
    }

    /// Open a child that the listing says is a regular file, without following a symlink and
    /// without blocking, and fstat it. None when it does not open or is no longer a regular
    /// file: the caller then stat-s it by name, so its row (and error) is what it would be
    /// without this shortcut.
    fn open_regular(&self, name: &CStr) -> Option<(File, Stat)> {
        use std::os::fd::FromRawFd;
        let flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOFOLLOW | libc::O_NOCTTY;
        let fd = hash::open_for_reading_at(self.fd(), name, flags).ok()?;
        // SAFETY: `fd` was just opened and is owned by nothing else.
        let file = unsafe { File::from_raw_fd(fd) };
        // SAFETY: as in `stat_at`.
        let mut st: libc::stat64 = unsafe { std::mem::zeroed() };
        if unsafe { libc::fstat64(fd, &mut st) } != 0 {
            return None;
        }
        let stat = Stat::from_stat64(&st);
        (stat.mode & libc::S_IFMT == libc::S_IFREG).then_some((file, stat))
    }
}


#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    struct TempDir(std::path::PathBuf);

    impl TempDir {
        fn new(tag: &str) -> TempDir {
            use std::sync::atomic::{AtomicU32, Ordering};
            static COUNTER: AtomicU32 = AtomicU32::new(0);
            let n = COUNTER.fetch_add(1, Ordering::Relaxed);
            let dir = std::env::temp_dir().join(format!("secmon-walk-{tag}-{}-{n}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            TempDir(dir)
        }
        fn bytes(&self) -> Vec<u8> {
            self.0.as_os_str().as_bytes().to_vec()
        }
    }

    impl Drop for TempDir {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn scan(root: &TempDir, configure: impl FnOnce(&mut ScanBuilder)) -> Vec<Entry> {
        let mut builder = TreeScanner::builder();
        configure(&mut builder);
        builder.build().unwrap().scan(&[root.bytes()]).unwrap().0
    }

    fn find<'e>(rows: &'e [Entry], root: &TempDir, rel: &str) -> &'e Entry {
        let want = format!("{}/{rel}", root.0.display());
        rows.iter().find(|e| e.path() == want).unwrap_or_else(|| panic!("no row {want}"))
    }

    #[test]
    fn rows_cover_every_entry_sorted_with_types_and_digests() {
        let t = TempDir::new("basic");
        fs::create_dir_all(t.0.join("a/b")).unwrap();
        fs::write(t.0.join("a/b/f.txt"), b"abc").unwrap();
        fs::write(t.0.join("empty"), b"").unwrap();
        symlink("a/b/f.txt", t.0.join("link")).unwrap();
        symlink("nowhere", t.0.join("dangling")).unwrap();
        let rows = scan(&t, |b| {
            b.algo(Some(Algorithm::Sha256));
        });
        let paths: Vec<String> = rows.iter().map(|e| e.path().into_owned()).collect();
        let mut sorted = paths.clone();
        sorted.sort();
        assert_eq!(paths, sorted);
        assert_eq!(rows.len(), 7, "{paths:?}");
        assert_eq!(rows[0].path_bytes, t.bytes());
        assert_eq!(rows[0].kind, EntryType::Dir);
        let f = find(&rows, &t, "a/b/f.txt");
        assert_eq!(f.digest.as_deref(), Some("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
        assert_eq!(f.stat.unwrap().size, 3);
        assert_eq!(f.stat.unwrap().mode & libc::S_IFMT, libc::S_IFREG);
        let link = find(&rows, &t, "link");
        assert_eq!(link.kind, EntryType::Symlink);
        assert_eq!(link.target.as_deref(), Some(&b"a/b/f.txt"[..]));
        assert_eq!(link.digest, None);
        assert_eq!(find(&rows, &t, "dangling").error, None);
        assert_eq!(find(&rows, &t, "empty").digest.as_deref().map(|d| &d[..8]), Some("e3b0c442"));
    }

    #[test]
    fn follow_symlinks_reports_loops_and_broken_links_as_rows() {
        let t = TempDir::new("loop");
        fs::create_dir_all(t.0.join("d")).unwrap();
        symlink("..", t.0.join("d/up")).unwrap();
        symlink("self", t.0.join("self")).unwrap();
        symlink("nowhere", t.0.join("dangling")).unwrap();
        let rows = scan(&t, |b| {
            b.follow_symlinks(true);
        });
        let up = find(&rows, &t, "d/up");
        assert_eq!(up.kind, EntryType::Dir);
        assert!(up.error.as_deref().unwrap().starts_with("symlink loop"), "{up:?}");
        assert!(find(&rows, &t, "self").error.as_deref().unwrap().starts_with("symlink loop"));
        assert!(find(&rows, &t, "dangling").error.as_deref().unwrap().starts_with("broken symlink"));
        assert_eq!(rows.len(), 5);
    }

    #[test]
    fn excluded_directories_are_neither_listed_nor_descended() {
        let t = TempDir::new("excl");
        fs::create_dir_all(t.0.join("keep/skip/deep")).unwrap();
        fs::write(t.0.join("keep/x.log"), b"1").unwrap();
        fs::write(t.0.join("keep/x.txt"), b"1").unwrap();
        let rows = scan(&t, |b| {
            b.exclude("**/skip").exclude("*.log");
        });
        let rel: Vec<String> = rows.iter().map(|e| e.path()[t.0.as_os_str().len()..].to_string()).collect();
        assert_eq!(rel, vec!["", "/keep", "/keep/x.txt"]);
    }

    #[test]
    fn previous_digest_is_reused_only_when_stat_fields_match() {
        let t = TempDir::new("prev");
        fs::write(t.0.join("f"), b"abc").unwrap();
        let first = scan(&t, |b| {
            b.algo(Some(Algorithm::Md5));
        });
        let f = find(&first, &t, "f").clone();
        let st = f.stat.unwrap();
        let fake = "0".repeat(32);
        let prev = |size: u64| PreviousStat { size, mtime_ns: st.mtime_ns, ctime_ns: st.ctime_ns, inode: st.inode, mode: st.mode };
        let reused = scan(&t, |b| {
            b.algo(Some(Algorithm::Md5)).previous(b"/elsewhere", prev(st.size), &"1".repeat(32));
            b.previous(&f.path_bytes, prev(st.size), &fake);
        });
        assert_eq!(find(&reused, &t, "f").digest.as_deref(), Some(fake.as_str()));
        let rehashed = scan(&t, |b| {
            b.algo(Some(Algorithm::Md5)).previous(&f.path_bytes, prev(st.size + 1), &fake);
        });
        assert_eq!(find(&rehashed, &t, "f").digest, f.digest);
    }

    #[test]
    fn bad_options_are_clear_errors() {
        let err = TreeScanner::builder().exclude("a[").build().unwrap_err().to_string();
        assert!(err.contains("excludes[0]") && err.contains("a["), "{err}");
        let err = TreeScanner::builder().threads(Some(0)).build().unwrap_err().to_string();
        assert!(err.contains("threads = 0"), "{err}");
        let mut b = TreeScanner::builder();
        b.algo(Some(Algorithm::Sha256)).previous(
            b"/x",
            PreviousStat { size: 0, mtime_ns: 0, ctime_ns: 0, inode: 0, mode: 0 },
            "abc",
        );
        let err = b.build().unwrap_err().to_string();
        assert!(err.contains("/x") && err.contains("64"), "{err}");
        let scanner = TreeScanner::builder().build().unwrap();
        match scanner.scan(&[b"/no/such/secmon/root".to_vec()]) {
            Err(CoreError::Io { path, source }) => {
                assert_eq!(path, "/no/such/secmon/root");
                assert_eq!(source.kind(), ErrorKind::NotFound);
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    #[test]
    fn overlapping_roots_give_each_path_once() {
        let t = TempDir::new("overlap");
        fs::create_dir_all(t.0.join("a")).unwrap();
        fs::write(t.0.join("a/f"), b"").unwrap();
        let mut sub = t.bytes();
        sub.extend_from_slice(b"/a/");
        let (rows, _) = TreeScanner::builder().build().unwrap().scan(&[t.bytes(), sub]).unwrap();
        assert_eq!(rows.len(), 3);
    }

    #[test]
    fn previous_scan_lookup_finds_every_path_and_no_other() {
        let mut prev = PreviousScan::default();
        let stat = |i: u64| PreviousStat { size: i, mtime_ns: 0, ctime_ns: 0, inode: i, mode: 0 };
        let paths: Vec<Vec<u8>> = (0..2000u64).map(|i| format!("/p/{i}").into_bytes()).collect();
        for (i, p) in paths.iter().enumerate() {
            prev.push(p, stat(i as u64), &format!("{i:x}"));
        }
        prev.push(b"", stat(7), "empty");
        prev.seal();
        for (i, p) in paths.iter().enumerate() {
            let (s, d) = prev.lookup(p).unwrap();
            assert_eq!((s.size, d), (i as u64, format!("{i:x}").as_str()));
        }
        assert_eq!(prev.lookup(b"").map(|(_, d)| d), Some("empty"));
        assert!(prev.lookup(b"/p/2000").is_none());
        assert!(prev.lookup(b"/p/").is_none());
        // A path pushed again answers with its last push; a push after a lookup is seen.
        prev.push(b"/p/5", stat(99), "again");
        assert_eq!(prev.lookup(b"/p/5").map(|(s, d)| (s.size, d)), Some((99, "again")));
        assert_eq!(prev.lookup(b"/p/6").map(|(_, d)| d), Some("6"));
        assert!(PreviousScan::default().lookup(b"/p/5").is_none());
    }

    #[test]
    fn first_bad_digest_names_the_row() {
        let stat = PreviousStat { size: 0, mtime_ns: 0, ctime_ns: 0, inode: 0, mode: 0 };
        let build = |digests: &[&str]| {
            let mut prev = PreviousScan::default();
            for (i, d) in digests.iter().enumerate() {
                prev.push(format!("/{i}").as_bytes(), stat, d);
            }
            prev
        };
        assert_eq!(build(&["0a", "Ff", "99"]).first_bad_digest(2), None);
        assert_eq!(build(&["0a", "fg", "99"]).first_bad_digest(2), Some(1));
        assert_eq!(build(&["0a", "99", "f"]).first_bad_digest(2), Some(2));
        assert_eq!(build(&["0a", "999", "f"]).first_bad_digest(2), Some(1));
        assert_eq!(build(&[]).first_bad_digest(64), None);
    }

    #[test]
    fn split_parent_gives_the_directory_to_open_and_the_name_in_it() {
        let cases: [(&[u8], &[u8], &[u8]); 5] =
            [(b"/a/b", b"/a", b"b"), (b"/a", b"/", b"a"), (b"a", b".", b"a"), (b"t/a/\xff", b"t/a", b"\xff"), (b"./x", b".", b"x")];
        for (path, dir, name) in cases {
            assert_eq!(split_parent(path), (dir, name), "{:?}", String::from_utf8_lossy(path));
        }
    }

    #[test]
    fn hard_link_whose_first_name_fails_is_read_under_its_other_name() {
        // Two rows share an inode key; the first (the one that is hashed) has vanished, so the
        // second must be read on its own rather than inherit nothing.
        let t = TempDir::new("links");
        fs::write(t.0.join("real"), b"abc").unwrap();
        let real = find(&scan(&t, |_| {}), &t, "real").clone();
        let mut gone = real.clone();
        gone.path_bytes = join(&t.bytes(), b"gone");
        let mut stat = real.stat.unwrap();
        stat.nlink = 2;
        gone.stat = Some(stat);
        let mut linked = real.clone();
        linked.stat = Some(stat);
        for algo in [Algorithm::Sha256, Algorithm::Md5] {
            let scanner = TreeScanner::builder().algo(Some(algo)).threads(Some(2)).build().unwrap();
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            let mut stats = ScanStats::default();
            let rows = scanner.hash_pending(&pool, algo, vec![gone.clone(), linked.clone()], &mut stats);
            let by_path = |p: &[u8]| rows.iter().find(|e| e.path_bytes == p).unwrap().clone();
            assert_eq!(by_path(&gone.path_bytes).error.as_deref(), Some("vanished during scan"));
            assert_eq!(by_path(&linked.path_bytes).digest, Some(hash::hash_bytes(b"abc", algo)));
            assert_eq!((stats.files_hashed, stats.digests_shared), (1, 0));
            // Both names present: one read, one shared.
            let mut twin = linked.clone();
            twin.path_bytes = join(&t.bytes(), b"real");
            let mut stats = ScanStats::default();
            let rows = scanner.hash_pending(&pool, algo, vec![linked.clone(), twin], &mut stats);
            assert!(rows.iter().all(|e| e.digest == Some(hash::hash_bytes(b"abc", algo))));
            assert_eq!((stats.files_hashed, stats.digests_shared), (1, 1));
        }
    }

    #[test]
    fn cmp_path_orders_like_lossy_string_then_bytes() {
        let names: [&[u8]; 9] = [b"/a", b"/a-b", b"/a/b", b"/\xff", b"/\xfe", "/\u{fffd}".as_bytes(), b"/\xc3", b"/z", "/é".as_bytes()];
        let mut entries: Vec<Entry> = names.iter().map(|n| Entry::new(n.to_vec(), EntryType::File)).collect();
        entries.sort_by(Entry::cmp_path);
        let mut slow: Vec<(String, Vec<u8>)> =
            names.iter().map(|n| (String::from_utf8_lossy(n).into_owned(), n.to_vec())).collect();
        slow.sort();
        let fast: Vec<Vec<u8>> = entries.into_iter().map(|e| e.path_bytes).collect();
        assert_eq!(fast, slow.into_iter().map(|(_, b)| b).collect::<Vec<_>>());
    }

    #[test]
    fn files_hashed_during_the_listing_count_once_and_match_the_phase_two_path() {
        // Small single-link files are hashed while their directory is open (with sha256 the big
        // file too); a hard-linked pair goes through the hashing phase. Every algorithm, one and
        // two threads.
        let t = TempDir::new("inline");
        fs::create_dir_all(t.0.join("d/e")).unwrap();
        let small: Vec<(String, Vec<u8>)> =
            (0..40).map(|i| (format!("d/{}f{i}", if i % 3 == 0 { "e/" } else { "" }), vec![i as u8; i * 997 % 70_000])).collect();
        for (rel, data) in &small {
            fs::write(t.0.join(rel), data).unwrap();
        }
        let big = vec![7u8; GROUP_MAX_SIZE as usize + 5];
        fs::write(t.0.join("big"), &big).unwrap();
        fs::write(t.0.join("linked"), b"shared bytes").unwrap();
        fs::hard_link(t.0.join("linked"), t.0.join("d/linked2")).unwrap();
        for algo in Algorithm::ALL {
            for threads in [1, 2] {
                let scanner = TreeScanner::builder().algo(Some(algo)).threads(Some(threads)).build().unwrap();
                let (rows, stats) = scanner.scan(&[t.bytes()]).unwrap();
                for (rel, data) in &small {
                    assert_eq!(find(&rows, &t, rel).digest, Some(hash::hash_bytes(data, algo)), "{algo} {rel}");
                }
                assert_eq!(find(&rows, &t, "big").digest, Some(hash::hash_bytes(&big, algo)));
                assert_eq!(find(&rows, &t, "d/linked2").digest, Some(hash::hash_bytes(b"shared bytes", algo)));
                // 40 small + big + one read of the linked inode; the other name shares it.
                assert_eq!((stats.files_hashed, stats.digests_shared, stats.digests_reused), (42, 1, 0), "{algo} x{threads}");
                let bytes: u64 = small.iter().map(|(_, d)| d.len() as u64).sum::<u64>() + big.len() as u64 + 12;
                assert_eq!(stats.bytes_hashed, bytes);
            }
        }
    }

    #[test]
    fn big_files_kept_out_of_the_wide_lanes_equal_hashing_them_alone() {
        // Files of WIDE_MAX_SIZE and more are hashed apart (at most LANES open at a time): five
        // single-link ones in one directory (a batch of four, then the rest at the end of the
        // listing) between small files, and a hard-linked pair (hashing phase); one and two workers.
        let t = TempDir::new("bigfiles");
        fs::create_dir_all(t.0.join("d")).unwrap();
        let mut files: Vec<(String, Vec<u8>)> = Vec::new();
        for i in 0..6usize {
            let len = WIDE_MAX_SIZE as usize + [0, 1, 63, 64, 4097, 65_536][i];
            files.push((format!("d/big{i}"), (0..len).map(|j| (j * 31 + i) as u8).collect()));
        }
        files.push(("d/just_under".to_string(), vec![3u8; WIDE_MAX_SIZE as usize - 1]));
        for i in 0..40usize {
            files.push((format!("d/small{i}"), vec![i as u8; i * 1013 % 9000]));
        }
        for (rel, data) in &files {
            fs::write(t.0.join(rel), data).unwrap();
        }
        fs::hard_link(t.0.join("d/big5"), t.0.join("big5_again")).unwrap();
        for threads in [1, 2] {
            let scanner = TreeScanner::builder().algo(Some(Algorithm::Sha256)).threads(Some(threads)).build().unwrap();
            let (rows, stats) = scanner.scan(&[t.bytes()]).unwrap();
            for (rel, data) in &files {
                assert_eq!(find(&rows, &t, rel).digest, Some(hash::hash_bytes(data, Algorithm::Sha256)), "{rel} x{threads}");
            }
            assert_eq!(find(&rows, &t, "big5_again").digest, find(&rows, &t, "d/big5").digest);
            assert_eq!((stats.files_hashed, stats.digests_shared), (files.len() as u64, 1), "x{threads}");
        }
    }

    #[test]
    fn dir_handle_opens_only_regular_files_and_never_blocks() {
        let t = TempDir::new("dirhandle");
        fs::write(t.0.join("file"), b"x").unwrap();
        fs::create_dir(t.0.join("sub")).unwrap();
        symlink("file", t.0.join("link")).unwrap();
        let fifo = CString::new(t.0.join("fifo").as_os_str().as_bytes()).unwrap();
        assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o600) }, 0);
        let mut dir = DirHandle::open(&t.bytes()).unwrap();
        let mut names = Vec::new();
        while let Some(item) = dir.next_name() {
            names.push(item.unwrap());
        }
        names.sort();
        let listed: Vec<(&[u8], u8)> = names.iter().map(|(n, ty)| (n.to_bytes(), *ty)).collect();
        assert_eq!(listed, vec![(&b"fifo"[..], libc::DT_FIFO), (b"file", libc::DT_REG), (b"link", libc::DT_LNK), (b"sub", libc::DT_DIR)]);
        let (_, stat) = dir.open_regular(c"file").unwrap();
        assert_eq!((stat.size, stat.mode & libc::S_IFMT), (1, libc::S_IFREG));
        assert_eq!(dir.stat_at(c"file").unwrap(), stat);
        for other in [c"fifo", c"sub", c"link", c"missing"] {
            assert!(dir.open_regular(other).is_none(), "{other:?}");
        }
        assert_eq!(dir.read_link(c"link").unwrap(), b"file");
        assert_eq!(dir.stat_at(c"missing").unwrap_err().kind(), ErrorKind::NotFound);
        // A long target takes more than one readlinkat.
        let long = "x".repeat(3000);
        symlink(&long, t.0.join("long")).unwrap();
        assert_eq!(dir.read_link(c"long").unwrap(), long.as_bytes());
        assert_eq!(DirHandle::open(&join(&t.bytes(), b"file")).err().and_then(|e| e.raw_os_error()), Some(libc::ENOTDIR));
    }

    #[test]
    fn a_listed_directory_renamed_away_is_still_listed_through_its_descriptor() {
        let t = TempDir::new("renamed");
        fs::create_dir(t.0.join("d")).unwrap();
        fs::write(t.0.join("d/f"), b"abc").unwrap();
        let mut dir = DirHandle::open(&join(&t.bytes(), b"d")).unwrap();
        fs::rename(t.0.join("d"), t.0.join("moved")).unwrap();
        let (name, _) = dir.next_name().unwrap().unwrap();
        assert_eq!(name.to_bytes(), b"f");
        let (mut file, stat) = dir.open_regular(&name).unwrap();
        assert_eq!(stat.size, 3);
        assert_eq!(hash::hash_open_file_sized(&mut file, Algorithm::Sha256, 3).unwrap(), SizedDigest::Digest(hash::hash_bytes(b"abc", Algorithm::Sha256)));
    }

    #[test]
    fn sorted_by_path_equals_sorting_the_rows() {
        let names: [&[u8]; 12] =
            [b"/a", b"/a-b", b"/a/b", b"/\xff", b"/\xfe", "/\u{fffd}".as_bytes(), b"/\xc3", b"/z", "/\u{e9}".as_bytes(), b"/a", b"/", b"/a/\xff"];
        // Every rotation of the list, so the sort starts from many orders.
        for start in 0..names.len() {
            let rows: Vec<Entry> = names.iter().cycle().skip(start).take(names.len()).map(|n| Entry::new(n.to_vec(), EntryType::File)).collect();
            let mut want = rows.clone();
            want.sort_by(Entry::cmp_path);
            let got = sorted_by_path(rows);
            let paths = |v: &[Entry]| v.iter().map(|e| e.path_bytes.clone()).collect::<Vec<_>>();
            assert_eq!(paths(&got), paths(&want), "rotation {start}");
        }
    }

    #[test]
    fn scanning_leaves_access_times_alone_when_root() {
        // O_NOATIME needs the owner or CAP_FOWNER: as another user the flag is never asked for.
        if unsafe { libc::geteuid() } != 0 {
            return;
        }
        let t = TempDir::new("atime");
        fs::create_dir_all(t.0.join("d")).unwrap();
        fs::write(t.0.join("d/file"), vec![5u8; 5000]).unwrap();
        let old = libc::timespec { tv_sec: 946_684_800, tv_nsec: 0 }; // 2000-01-01: relatime would move it
        let keep = libc::timespec { tv_sec: 0, tv_nsec: libc::UTIME_OMIT };
        for rel in ["d", "d/file"] {
            let path = CString::new(t.0.join(rel).into_os_string().into_encoded_bytes()).unwrap();
            assert_eq!(unsafe { libc::utimensat(libc::AT_FDCWD, path.as_ptr(), [old, keep].as_ptr(), 0) }, 0);
        }
        let atime = |rel: &str| fs::metadata(t.0.join(rel)).unwrap().atime();
        let rows = scan(&t, |b| {
            b.algo(Some(Algorithm::Sha256));
        });
        assert!(find(&rows, &t, "d/file").digest.is_some());
        assert_eq!((atime("d"), atime("d/file")), (946_684_800, 946_684_800));
    }

    #[test]
    fn permuted_equals_gathering_by_index() {
        // Random permutations (a small LCG, no dependency) and the edge shapes: identity,
        // reversal, one long cycle, empty.
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) as usize
        };
        let mut orders: Vec<Vec<u32>> = vec![vec![], vec![0], (0..9).collect(), (0..9).rev().collect(), (1..9).chain([0]).collect()];
        for n in [2usize, 3, 17, 300] {
            for _ in 0..20 {
                let mut order: Vec<u32> = (0..n as u32).collect();
                for i in (1..n).rev() {
                    order.swap(i, next() % (i + 1));
                }
                orders.push(order);
            }
        }
        for order in orders {
            let rows: Vec<String> = (0..order.len()).map(|i| format!("row{i}")).collect();
            let gathered: Vec<String> = order.iter().map(|&i| rows[i as usize].clone()).collect();
            assert_eq!(permuted(rows, order.clone()), gathered, "{order:?}");
        }
    }

    #[test]
    fn scan_map_gives_the_rows_of_scan_unsorted() {
        // Overlapping roots (each path once per root that reaches it), a hard link (hashing
        // phase), files hashed inline, links and an empty directory; one and two workers.
        let t = TempDir::new("scanmap");
        fs::create_dir_all(t.0.join("a/b/empty")).unwrap();
        for i in 0..30 {
            fs::write(t.0.join(if i % 2 == 0 { format!("a/f{i}") } else { format!("a/b/f{i}") }), vec![i as u8; i * 301]).unwrap();
        }
        fs::hard_link(t.0.join("a/f0"), t.0.join("a/b/again")).unwrap();
        symlink("f2", t.0.join("a/link")).unwrap();
        let roots = vec![t.bytes(), join(&t.bytes(), b"a/b")];
        for threads in [1, 2] {
            let scanner = TreeScanner::builder().algo(Some(Algorithm::Sha256)).threads(Some(threads)).build().unwrap();
            let (sorted, _) = scanner.scan(&roots).unwrap();
            let (mut mapped, stats) = scanner.scan_map(&roots, &|e| (e.path_bytes.clone(), e)).unwrap();
            assert_eq!(stats.files_hashed + stats.digests_shared, 2 * 31 - 15, "x{threads}");
            mapped.sort_by(|a, b| a.1.cmp_path(&b.1));
            let before = mapped.len();
            mapped.dedup_by(|a, b| a.0 == b.0);
            // a/b, its 16 entries and the hard link's second name are reached from both roots.
            assert_eq!(before - mapped.len(), 1 + 15 + 1 + 1);
            assert!(mapped.iter().all(|(path, e)| *path == e.path_bytes));
            assert_eq!(mapped.into_iter().map(|(_, e)| e).collect::<Vec<_>>(), sorted, "x{threads}");
        }
    }

    #[test]
    fn public_types_are_send_and_sync() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<TreeScanner>();
        assert_send_sync::<Entry>();
        assert_send_sync::<ScanBuilder>();
    }
}
