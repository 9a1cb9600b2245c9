//! Streaming digests with fixed memory: sha256, blake3, xxh3_128, sha1, md5.
//!
//! [`Algorithm`] names a digest; [`Algorithm::hasher`] gives a [`StreamHasher`] fed with byte
//! slices; [`hash_reader`] / [`hash_file`] stream any reader through one reusable buffer, so
//! memory stays the same however large the file. Digests are lowercase hex, identical to
//! `hashlib`, `b3sum` and `xxhsum -H2` (xxh3_128 in its canonical big-endian form).
//!
//! sha256 uses SHA-NI when the CPU has it: sha2 0.11 detects it at run time (cpufeatures), there is
//! no cargo feature to turn on.

use std::fmt;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::Path;

use sha2::Digest;

use crate::error::{CoreError, Result};

pub mod sha256_lanes;

/// Size of the read buffer for streaming files: large enough that syscalls are a small share of
/// the time, small enough to stay in L2 and to give each worker thread its own.
pub const BUFFER_SIZE: usize = 256 * 1024;

/// Files at least this large are hashed with blake3's multi-threaded `update_rayon`, chunk by
/// chunk; below it the per-chunk fan-out costs more than it saves.
pub const BLAKE3_PARALLEL_MIN: u64 = 4 * 1024 * 1024;

/// Chunk size fed to blake3's `update_rayon` for big files (it splits each chunk across threads).
pub const BLAKE3_PARALLEL_CHUNK: usize = 1024 * 1024;

/// A digest algorithm, by its canonical name.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Algorithm {
    Sha256,
    Blake3,
    Xxh3_128,
    Sha1,
    Md5,
}

impl Algorithm {
    /// Every algorithm, in the order error messages list them.
    pub const ALL: [Algorithm; 5] =
        [Algorithm::Sha256, Algorithm::Blake3, Algorithm::Xxh3_128, Algorithm::Sha1, Algorithm::Md5];

    pub fn name(self) -> &'static str {
        match self {
            Algorithm::Sha256 => "sha256",
            Algorithm::Blake3 => "blake3",
            Algorithm::Xxh3_128 => "xxh3_128",
            Algorithm::Sha1 => "sha1",
            Algorithm::Md5 => "md5",
        }
    }

    /// Parse a canonical name; an unknown one is an error that lists the valid names.
    pub fn from_name(name: &str) -> Result<Algorithm> {
        Algorithm::ALL.into_iter().find(|a| a.name() == name).ok_or_else(|| {
            let valid: Vec<&str> = Algorithm::ALL.iter().map(|a| a.name()).collect();
            CoreError::invalid(format!("unknown hash algorithm {name:?}; valid names: {}", valid.join(", ")))
        })
    }

    /// Length of the hex digest (twice the digest size in bytes).
    pub fn hex_len(self) -> usize {
        match self {
            Algorithm::Sha256 | Algorithm::Blake3 => 64,
            Algorithm::Sha1 => 40,
            Algorithm::Xxh3_128 | Algorithm::Md5 => 32,
        }
    }

    pub fn hasher(self) -> StreamHasher {
        match self {
            Algorithm::Sha256 => StreamHasher::Sha256(sha2::Sha256::new()),
            Algorithm::Blake3 => StreamHasher::Blake3(Box::new(blake3::Hasher::new())),
            Algorithm::Xxh3_128 => StreamHasher::Xxh3(Box::new(xxhash_rust::xxh3::Xxh3::new())),
            Algorithm::Sha1 => StreamHasher::Sha1(sha1::Sha1::new()),
            Algorithm::Md5 => StreamHasher::Md5(md5::Md5::new()),
        }
    }
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// An in-progress digest of one of the [`Algorithm`]s.
pub enum StreamHasher {
    Sha256(sha2::Sha256),
    Blake3(Box<blake3::Hasher>),
    Xxh3(Box<xxhash_rust::xxh3::Xxh3>),
    Sha1(sha1::Sha1),
    Md5(md5::Md5),
}

impl StreamHasher {
    pub fn update(&mut self, data: &[u8]) {
        match self {
            StreamHasher::Sha256(h) => h.update(data),
            StreamHasher::Blake3(h) => {
                h.update(data);
            }
            StreamHasher::Xxh3(h) => h.update(data),
            StreamHasher::Sha1(h) => h.update(data),
            StreamHasher::Md5(h) => h.update(data),
        }
    }

    /// Like [`update`](Self::update), but blake3 splits the input across the rayon pool of the
    /// calling thread. Worth it only for large slices.
    pub fn update_parallel(&mut self, data: &[u8]) {
        match self {
            StreamHasher::Blake3(h) => {
                h.update_rayon(data);
            }
            other => other.update(data),
        }
    }

    pub fn algorithm(&self) -> Algorithm {
        match self {
            StreamHasher::Sha256(_) => Algorithm::Sha256,
            StreamHasher::Blake3(_) => Algorithm::Blake3,
            StreamHasher::Xxh3(_) => Algorithm::Xxh3_128,
            StreamHasher::Sha1(_) => Algorithm::Sha1,
            StreamHasher::Md5(_) => Algorithm::Md5,
        }
    }

    /// The lowercase hex digest.
    pub fn finish_hex(self) -> String {
        match self {
            StreamHasher::Sha256(h) => to_hex(&h.finalize()),
            StreamHasher::Blake3(h) => h.finalize().to_hex().to_string(),
            // XXH128's canonical form (xxhsum, python-xxhash hexdigest) is the u128 big-endian.
            StreamHasher::Xxh3(h) => format!("{:032x}", h.digest128()),
            StreamHasher::Sha1(h) => to_hex(&h.finalize()),
            StreamHasher::Md5(h) => to_hex(&h.finalize()),
        }
    }
}

fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for &b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 0xf) as usize] as char);
    }
    out
}

/// HMAC-SHA256 (RFC 2104), streamed: what Python's `hmac.new(key, digestmod=hashlib.sha256)`
/// computes, for callers that hash in Rust what they write (a signed baseline file).
#[derive(Clone)]
pub struct HmacSha256 {
    inner: sha2::Sha256,
    /// The key block XOR 0x5c, hashed before the inner digest at the end.
    outer_pad: [u8; 64],
}

impl HmacSha256 {
    pub fn new(key: &[u8]) -> HmacSha256 {
        // A key longer than the block is replaced by its digest; shorter ones are zero-padded.
        let mut block = [0u8; 64];
        if key.len() > block.len() {
            block[..32].copy_from_slice(&sha2::Sha256::digest(key));
        } else {
            block[..key.len()].copy_from_slice(key);
        }
        let mut inner = sha2::Sha256::new();
        inner.update(block.map(|b| b ^ 0x36));
        HmacSha256 { inner, outer_pad: block.map(|b| b ^ 0x5c) }
    }

    pub fn update(&mut self, data: &[u8]) {
        self.inner.update(data);
    }

    pub fn finish_hex(self) -> String {
        let mut outer = sha2::Sha256::new();
        outer.update(self.outer_pad);
        outer.update(self.inner.finalize());
        to_hex(&outer.finalize())
    }
}

/// Hex digest of an in-memory byte slice.
pub fn hash_bytes(data: &[u8], algo: Algorithm) -> String {
    let mut hasher = algo.hasher();
    if algo == Algorithm::Blake3 && data.len() as u64 >= BLAKE3_PARALLEL_MIN {
        hasher.update_parallel(data);
    } else {
        hasher.update(data);
    }
    hasher.finish_hex()
}

/// Stream `reader` to its end through `buffer` (its whole length is used per read). With
/// `parallel`, each filled buffer goes to [`StreamHasher::update_parallel`].
pub fn hash_reader<R: Read>(reader: &mut R, algo: Algorithm, buffer: &mut [u8], parallel: bool) -> std::io::Result<String> {
    assert!(!buffer.is_empty(), "hash_reader needs a non-empty buffer");
    let mut hasher = algo.hasher();
    loop {
        // Fill the whole buffer before hashing, so update_parallel sees big slices even when the
        // reader returns short reads.
        let mut filled = 0;
        while filled < buffer.len() {
            match reader.read(&mut buffer[filled..]) {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        if filled == 0 {
            break;
        }
        if parallel {
            hasher.update_parallel(&buffer[..filled]);
        } else {
            hasher.update(&buffer[..filled]);
        }
        if filled < buffer.len() {
            break;
        }
    }
    Ok(hasher.finish_hex())
}

/// Hash an already opened file to its end. `size_hint` (from a stat) picks blake3's
/// multi-threaded path for big files; the digest never depends on it.
pub fn hash_open_file(file: &mut File, algo: Algorithm, size_hint: u64) -> std::io::Result<String> {
    if algo == Algorithm::Blake3 && size_hint >= BLAKE3_PARALLEL_MIN {
        let mut buffer = vec![0u8; BLAKE3_PARALLEL_CHUNK];
        return hash_reader(file, algo, &mut buffer, true);
    }
    BUFFER.with(|cell| {
        // One buffer per thread: a fresh 256 KiB allocation per file would be an mmap/munmap pair
        // for every small file of a tree walk.
        let mut buffer = cell.borrow_mut();
        hash_reader(file, algo, &mut buffer[..], false)
    })
}

/// What hashing a file against the size its stat reported found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SizedDigest {
    /// Exactly `size` bytes, then end of file: the digest matches the stat.
    Digest(String),
    /// End of file after `read` bytes, fewer than the stat said (truncated meanwhile).
    Shorter { read: u64 },
    /// More bytes than the stat said: the file grew, or it is a pseudo file (`/proc`, `/sys`)
    /// whose stat size means nothing. Reading stops there, so such files cost one extra read.
    Longer,
}

/// Hash exactly `size` bytes of an open file and check that the file ends there. The tree
/// walker uses this so a digest always belongs to the size in its row, and so a pseudo file
/// such as `/proc/PID/pagemap` (stat size 0, endless content) is never read through.
///
/// Single-threaded on purpose: the walker already hashes many files at once, and a worker
/// blocked in blake3's fork-join would steal further big-file tasks, each with its own chunk
/// buffer, so memory would grow with the nesting instead of staying fixed.
pub fn hash_open_file_sized(file: &mut File, algo: Algorithm, size: u64) -> std::io::Result<SizedDigest> {
    hash_open_file_sized_eof(file, algo, size, false)
}

/// [`hash_open_file_sized`]; with `short_read_is_eof` (from [`short_read_is_eof`]) a read that
/// returns the last bytes and less than it asked for ends the file without a read that returns 0.
pub fn hash_open_file_sized_eof(file: &mut File, algo: Algorithm, size: u64, short_read_is_eof: bool) -> std::io::Result<SizedDigest> {
    BUFFER.with(|cell| {
        let mut buffer = cell.borrow_mut();
        let mut hasher = algo.hasher();
        let mut remaining = size;
        while remaining > 0 {
            // With `short_read_is_eof` the last read asks for a page more than is left, so its
            // short answer shows the end (the request stays a whole number of pages, as below).
            let want = if short_read_is_eof {
                usize::try_from(remaining.saturating_add(1).div_ceil(4096) * 4096).unwrap_or(usize::MAX).min(buffer.len())
            } else {
                buffer.len().min(usize::try_from(remaining).unwrap_or(usize::MAX))
            };
            match file.read(&mut buffer[..want]) {
                Ok(0) => return Ok(SizedDigest::Shorter { read: size - remaining }),
                Ok(n) if n as u64 > remaining => return Ok(SizedDigest::Longer),
                Ok(n) => {
                    hasher.update(&buffer[..n]);
                    remaining -= n as u64;
                    if short_read_is_eof && remaining == 0 && n < want {
                        return Ok(SizedDigest::Digest(hasher.finish_hex()));
                    }
                }
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
        // The probe for bytes past `size` asks for a page, not one byte: some pseudo files
        // refuse reads that are not a multiple of their record size (pagemap: EINVAL).
        let probe = buffer.len().min(4096);
        loop {
            match file.read(&mut buffer[..probe]) {
                Ok(0) => return Ok(SizedDigest::Digest(hasher.finish_hex())),
                Ok(_) => return Ok(SizedDigest::Longer),
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
        }
    })
}

/// Whether, for a regular file open as `file` on device `dev`, a read that returns fewer bytes
/// than asked is the end of the file. True on the disk and memory filesystems listed here, where
/// a read of a regular file returns min(asked, size - offset); unknown on others (a FUSE or
/// network filesystem, a pseudo file of /proc or /sys), which are then read until a read returns
/// 0. One `fstatfs` per device and thread, remembered.
pub fn short_read_is_eof(file: &File, dev: u64) -> bool {
    use std::os::fd::AsRawFd;
    const TRUSTED: [i64; 9] = [
        0xEF53,      // ext2/3/4
        0x5846_5342, // xfs
        0x9123_683E, // btrfs
        0x0102_1994, // tmpfs
        0x794C_7630, // overlayfs
        0xF2F5_2010, // f2fs
        0x2FC1_2FC1, // zfs
        0x7371_7368, // squashfs
        0xE0F5_E1E2, // erofs
    ];
    FS_TRUSTS_SHORT_READS.with(|cache| {
        if let Some(&known) = cache.borrow().get(&dev) {
            return known;
        }
        // SAFETY: a zeroed statfs is a valid out-parameter; the descriptor is open.
        let mut fs: libc::statfs64 = unsafe { std::mem::zeroed() };
        let trusted = unsafe { libc::fstatfs64(file.as_raw_fd(), &mut fs) } == 0 && TRUSTED.contains(&(fs.f_type as i64));
        cache.borrow_mut().insert(dev, trusted);
        trusted
    })
}

thread_local! {
    static FS_TRUSTS_SHORT_READS: std::cell::RefCell<std::collections::HashMap<u64, bool>> = std::cell::RefCell::new(std::collections::HashMap::new());
    static BUFFER: std::cell::RefCell<Box<[u8]>> = std::cell::RefCell::new(vec![0u8; BUFFER_SIZE].into_boxed_slice());
}

/// Hex digest of the file at `path`, streamed with fixed memory. A directory is an error
/// (`EISDIR`), as is a path that is not a regular file (a fifo is refused rather than read,
/// so this never blocks).
pub fn hash_file(path: &Path, algo: Algorithm) -> Result<String> {
    let shown = path.to_string_lossy().into_owned();
    let (mut file, meta) = open_regular_nonblocking(path, true).map_err(|e| CoreError::io(shown.clone(), e))?;
    hash_open_file(&mut file, algo, meta.len()).map_err(|e| CoreError::io(shown, e))
}

/// `O_NOATIME` while it is allowed: reading a file to hash it then leaves its access time alone,
/// as AIDE does (under `relatime` a read moves an access time older than a day, so a daily scan
/// would rewrite the access time of every file it reads, and with it the evidence of who read
/// what). Only the file's owner or a process with `CAP_FOWNER` may ask for it: root normally,
/// so others never try, and the first `EPERM` (root without `CAP_FOWNER`, in a container say)
/// turns it off for the rest of the process.
static NO_ATIME: std::sync::atomic::AtomicI32 = std::sync::atomic::AtomicI32::new(-1);

fn no_atime_flag() -> libc::c_int {
    use std::sync::atomic::Ordering::Relaxed;
    match NO_ATIME.load(Relaxed) {
        -1 => {
            // SAFETY: geteuid has no preconditions.
            let flag = if unsafe { libc::geteuid() } == 0 { libc::O_NOATIME } else { 0 };
            NO_ATIME.store(flag, Relaxed);
            flag
        }
        flag => flag,
    }
}

/// `openat(dirfd, name, flags)` for reading, with [`no_atime_flag`] added, retrying `EINTR`;
/// the new descriptor or the error.
pub(crate) fn open_for_reading_at(dirfd: libc::c_int, name: &std::ffi::CStr, flags: libc::c_int) -> std::io::Result<libc::c_int> {
    loop {
        let no_atime = no_atime_flag();
        // SAFETY: `name` is a NUL-terminated string that outlives the call; `dirfd` is an open
        // directory of the caller (or AT_FDCWD).
        let fd = unsafe { libc::openat(dirfd, name.as_ptr(), flags | no_atime) };
        if fd >= 0 {
            return Ok(fd);
        }
        let err = std::io::Error::last_os_error();
        match err.raw_os_error() {
            Some(libc::EINTR) => continue,
            Some(libc::EPERM) if no_atime != 0 => NO_ATIME.store(0, std::sync::atomic::Ordering::Relaxed),
            _ => return Err(err),
        }
    }
}

/// Open `path` for reading without ever blocking: `O_NONBLOCK` makes opening a fifo return at
/// once, and the fstat that follows refuses anything but a regular file (`EISDIR` for a
/// directory, `EINVAL` otherwise). `follow` false adds `O_NOFOLLOW` (a symlink gives `ELOOP`).
/// Returns the file with its fstat, so callers need no second stat.
pub fn open_regular_nonblocking(path: &Path, follow: bool) -> std::io::Result<(File, std::fs::Metadata)> {
    open_regular_nonblocking_at(None, path, follow)
}

/// [`open_regular_nonblocking`] with `path` relative to the open directory `dir` (`openat`).
/// The tree walker opens a directory's files this way: the kernel resolves one name instead of
/// every component of the full path (path lookup was ~8% of a /usr scan's CPU profile).
pub fn open_regular_nonblocking_at(dir: Option<&File>, path: &Path, follow: bool) -> std::io::Result<(File, std::fs::Metadata)> {
    use std::os::fd::{AsRawFd, FromRawFd};
    use std::os::unix::ffi::OsStrExt;
    use std::os::unix::fs::FileTypeExt;
    let mut flags = libc::O_RDONLY | libc::O_NONBLOCK | libc::O_CLOEXEC;
    if !follow {
        flags |= libc::O_NOFOLLOW;
    }
    let name = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::other(format!("{} contains a NUL byte", path.display())))?;
    let dirfd = dir.map_or(libc::AT_FDCWD, |d| d.as_raw_fd());
    let fd = open_for_reading_at(dirfd, &name, flags)?;
    // SAFETY: `fd` was just opened and is owned by nothing else.
    let file = unsafe { File::from_raw_fd(fd) };
    let meta = file.metadata()?;
    let kind = meta.file_type();
    if kind.is_dir() {
        return Err(std::io::Error::from_raw_os_error(libc::EISDIR));
    }
    if !kind.is_file() {
        let what = if kind.is_fifo() {
            "a fifo"
        } else if kind.is_socket() {
            "a socket"
        } else if kind.is_char_device() || kind.is_block_device() {
            "a device"
        } else {
            "not a regular file"
        };
        return Err(std::io::Error::new(ErrorKind::InvalidInput, format!("not a regular file ({what})")));
    }
    Ok((file, meta))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn all_hex(data: &[u8]) -> Vec<(Algorithm, String)> {
        Algorithm::ALL.iter().map(|&a| (a, hash_bytes(data, a))).collect()
    }

    #[test]
    fn nist_abc_and_empty_vectors() {
        let cases: &[(&[u8], Algorithm, &str)] = &[
            (b"abc", Algorithm::Sha256, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
            (b"", Algorithm::Sha256, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
            (b"abc", Algorithm::Sha1, "a9993e364706816aba3e25717850c26c9cd0d89d"),
            (b"", Algorithm::Sha1, "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
            (b"abc", Algorithm::Md5, "900150983cd24fb0d6963f7d28e17f72"),
            (b"", Algorithm::Md5, "d41d8cd98f00b204e9800998ecf8427e"),
            (b"", Algorithm::Blake3, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
            (b"", Algorithm::Xxh3_128, "99aa06d3014798d86001c324468d497f"),
        ];
        for &(input, algo, want) in cases {
            assert_eq!(hash_bytes(input, algo), want, "{algo} of {:?}", String::from_utf8_lossy(input));
        }
    }

    #[test]
    fn million_a_vector() {
        let data = vec![b'a'; 1_000_000];
        assert_eq!(
            hash_bytes(&data, Algorithm::Sha256),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
        assert_eq!(hash_bytes(&data, Algorithm::Sha1), "34aa973cd4c4daa4f61eeb2bdbad27316534016f");
        assert_eq!(hash_bytes(&data, Algorithm::Md5), "7707d6ae4e027c70eea2a935c2296f21");
    }

    #[test]
    fn streaming_equals_one_shot_for_every_split() {
        let data: Vec<u8> = (0..10_000u32).map(|i| (i * 31 % 251) as u8).collect();
        for (algo, want) in all_hex(&data) {
            for buf_len in [1usize, 7, 64, 1000, 4096, 9999, 10_000, 10_001] {
                let mut buffer = vec![0u8; buf_len];
                let got = hash_reader(&mut &data[..], algo, &mut buffer, false).unwrap();
                assert_eq!(got, want, "{algo} buffer {buf_len}");
                let got = hash_reader(&mut &data[..], algo, &mut buffer, true).unwrap();
                assert_eq!(got, want, "{algo} parallel buffer {buf_len}");
            }
        }
    }

    #[test]
    fn blake3_parallel_path_equals_serial() {
        let data: Vec<u8> = (0..(BLAKE3_PARALLEL_MIN as usize + 12345)).map(|i| (i % 253) as u8).collect();
        let mut serial = blake3::Hasher::new();
        serial.update(&data);
        assert_eq!(hash_bytes(&data, Algorithm::Blake3), serial.finalize().to_hex().to_string());
    }

    #[test]
    fn sized_digest_checks_the_end_of_file() {
        let dir = std::env::temp_dir().join(format!("secmon-hash-sized-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("f");
        let data: Vec<u8> = (0..(BUFFER_SIZE + 5)).map(|i| (i % 256) as u8).collect();
        std::fs::write(&path, &data).unwrap();
        let open = || File::open(&path).unwrap();
        let n = data.len() as u64;
        assert_eq!(
            hash_open_file_sized(&mut open(), Algorithm::Sha1, n).unwrap(),
            SizedDigest::Digest(hash_bytes(&data, Algorithm::Sha1))
        );
        assert_eq!(hash_open_file_sized(&mut open(), Algorithm::Sha1, n - 1).unwrap(), SizedDigest::Longer);
        assert_eq!(hash_open_file_sized(&mut open(), Algorithm::Sha1, 0).unwrap(), SizedDigest::Longer);
        assert_eq!(hash_open_file_sized(&mut open(), Algorithm::Sha1, n + 10).unwrap(), SizedDigest::Shorter { read: n });
        std::fs::write(&path, b"").unwrap();
        assert_eq!(
            hash_open_file_sized(&mut open(), Algorithm::Md5, 0).unwrap(),
            SizedDigest::Digest("d41d8cd98f00b204e9800998ecf8427e".into())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn hmac_sha256_matches_rfc_4231() {
        // Test cases 1, 2, 4 and 6 (a key longer than the block) of RFC 4231, fed whole and in
        // uneven pieces.
        let cases: [(Vec<u8>, Vec<u8>, &str); 4] = [
            (vec![0x0b; 20], b"Hi There".to_vec(), "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"),
            (b"Jefe".to_vec(), b"what do ya want for nothing?".to_vec(), "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"),
            ((1..=25).collect(), vec![0xcd; 50], "82558a389a443c0ea4cc819899f2083a85f0faa3e578f8077a2e3ff46729665b"),
            (vec![0xaa; 131], b"Test Using Larger Than Block-Size Key - Hash Key First".to_vec(), "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"),
        ];
        for (key, message, want) in cases {
            let mut whole = HmacSha256::new(&key);
            whole.update(&message);
            assert_eq!(whole.finish_hex(), want);
            let mut pieces = HmacSha256::new(&key);
            for piece in message.chunks(7) {
                pieces.update(piece);
            }
            assert_eq!(pieces.finish_hex(), want);
        }
    }

    #[test]
    fn unknown_algorithm_lists_valid_names() {
        let err = Algorithm::from_name("sha3").unwrap_err().to_string();
        assert!(err.contains("\"sha3\""), "{err}");
        for algo in Algorithm::ALL {
            assert!(err.contains(algo.name()), "{err}");
            assert_eq!(Algorithm::from_name(algo.name()).unwrap(), algo);
            assert_eq!(hash_bytes(b"x", algo).len(), algo.hex_len());
        }
    }

    #[test]
    fn hash_file_refuses_directories_and_missing_paths() {
        let dir = std::env::temp_dir();
        match hash_file(&dir, Algorithm::Sha256) {
            Err(CoreError::Io { source, .. }) => assert_eq!(source.raw_os_error(), Some(libc::EISDIR)),
            other => panic!("expected EISDIR, got {other:?}"),
        }
        let missing = dir.join("secmon-no-such-file-for-hash-test");
        match hash_file(&missing, Algorithm::Md5) {
            Err(CoreError::Io { path, source }) => {
                assert_eq!(source.kind(), ErrorKind::NotFound);
                assert!(path.contains("secmon-no-such-file-for-hash-test"));
            }
            other => panic!("expected NotFound, got {other:?}"),
        }
    }

    #[test]
    fn trusting_short_reads_gives_the_same_outcomes() {
        // Sizes around page and buffer boundaries, each hashed as its true size, one less
        // (Longer) and more (Shorter), with and without the end-of-file shortcut.
        let path = std::env::temp_dir().join(format!("secmon-hash-eof-{}", std::process::id()));
        for n in [0u64, 1, 4095, 4096, 4097, 8191, BUFFER_SIZE as u64 - 1, BUFFER_SIZE as u64, BUFFER_SIZE as u64 + 1, 3 * BUFFER_SIZE as u64 + 5] {
            let data: Vec<u8> = (0..n).map(|i| (i * 31 % 251) as u8).collect();
            std::fs::write(&path, &data).unwrap();
            for size in [n, n.saturating_sub(1), n + 1, n + 5000] {
                for algo in [Algorithm::Sha256, Algorithm::Md5] {
                    let plain = hash_open_file_sized(&mut File::open(&path).unwrap(), algo, size).unwrap();
                    let trusted = hash_open_file_sized_eof(&mut File::open(&path).unwrap(), algo, size, true).unwrap();
                    assert_eq!(plain, trusted, "{n} bytes as size {size}, {algo}");
                }
            }
        }
        let file = File::open(&path).unwrap();
        use std::os::unix::fs::MetadataExt;
        let dev = file.metadata().unwrap().dev();
        std::fs::remove_file(&path).unwrap();
        // The temporary directory's filesystem is a common one here (ext4, tmpfs, overlayfs);
        // /proc never is.
        let _ = short_read_is_eof(&file, dev);
        let proc_file = File::open("/proc/self/status").unwrap();
        assert!(!short_read_is_eof(&proc_file, proc_file.metadata().unwrap().dev()));
    }

    #[test]
    fn stream_hasher_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<StreamHasher>();
        assert_send::<Algorithm>();
    }
}
