//! The payload of baseline format 2: the rows, one after another, in a fixed little-endian
//! record layout that Python can also read and write with `struct` (`secmon/fim/payload.py` is
//! the slow twin, byte for byte).
//!
//! Why not Parquet any more: writing and reading it needs Polars in the process, and importing
//! Polars alone cost more than the whole Rust scan of /usr/share. These records encode 47k rows
//! in a few milliseconds and need no dependency; the file's digest/HMAC (checked before the
//! payload is parsed) protects them, and the parser still bounds-checks every field so a
//! verified but malformed payload is an error naming the row, never a panic.
//!
//! A row:
//!
//! ```text
//! u16 present        bit i set = field i below is present (not null)
//! u32 len, bytes     path_bytes
//! then each present field, in this order:
//!   0 path (text)      u32 len + UTF-8   only when it is not the lossy form of path_bytes
//!   1 type             u8 index into EntryType::ALL
//!   2 size u64  3 mode u32  4 uid u32  5 gid u32  6 inode u64  7 dev u64  8 nlink u64
//!   9 mtime_ns i64  10 ctime_ns i64
//!   11 target  12 digest  13 error  14 xattrs  15 capabilities   u32 len + UTF-8
//! ```

use super::FimRow;
use crate::error::{CoreError, Result};
use crate::walk::EntryType;

const PATH: u16 = 1 << 0;
const TYPE: u16 = 1 << 1;
const SIZE: u16 = 1 << 2;
const MODE: u16 = 1 << 3;
const UID: u16 = 1 << 4;
const GID: u16 = 1 << 5;
const INODE: u16 = 1 << 6;
const DEV: u16 = 1 << 7;
const NLINK: u16 = 1 << 8;
const MTIME: u16 = 1 << 9;
const CTIME: u16 = 1 << 10;
const TARGET: u16 = 1 << 11;
const DIGEST: u16 = 1 << 12;
const ERROR: u16 = 1 << 13;
const XATTRS: u16 = 1 << 14;
const CAPS: u16 = 1 << 15;

fn type_code(kind: EntryType) -> u8 {
    EntryType::ALL.iter().position(|&k| k == kind).unwrap_or(EntryType::ALL.len() - 1) as u8
}

/// Where an encoded row goes: a growing buffer, a byte count, or a pre-sized slice. One row
/// layout ([`encode_row`]) serves all three, so the size computed is the size written.
trait Sink {
    fn put(&mut self, bytes: &[u8]);
}

impl Sink for Vec<u8> {
    fn put(&mut self, bytes: &[u8]) {
        self.extend_from_slice(bytes);
    }
}

struct Count(usize);

impl Sink for Count {
    fn put(&mut self, bytes: &[u8]) {
        self.0 += bytes.len();
    }
}

struct Fill<'a> {
    out: &'a mut [u8],
    at: usize,
}

impl Sink for Fill<'_> {
    fn put(&mut self, bytes: &[u8]) {
        self.out[self.at..self.at + bytes.len()].copy_from_slice(bytes);
        self.at += bytes.len();
    }
}

fn put_bytes(out: &mut impl Sink, bytes: &[u8]) {
    out.put(&(bytes.len() as u32).to_le_bytes());
    out.put(bytes);
}

fn encode_row(row: &FimRow, out: &mut impl Sink) {
    let mut present = 0u16;
    let mut set = |bit: u16, yes: bool| {
        if yes {
            present |= bit;
        }
    };
    set(PATH, row.path_text.is_some());
    set(TYPE, row.kind.is_some());
    set(SIZE, row.size.is_some());
    set(MODE, row.mode.is_some());
    set(UID, row.uid.is_some());
    set(GID, row.gid.is_some());
    set(INODE, row.inode.is_some());
    set(DEV, row.dev.is_some());
    set(NLINK, row.nlink.is_some());
    set(MTIME, row.mtime_ns.is_some());
    set(CTIME, row.ctime_ns.is_some());
    set(TARGET, row.target.is_some());
    set(DIGEST, row.digest.is_some());
    set(ERROR, row.error.is_some());
    set(XATTRS, row.xattrs.is_some());
    set(CAPS, row.capabilities.is_some());
    out.put(&present.to_le_bytes());
    put_bytes(out, &row.path_bytes);
    if let Some(text) = &row.path_text {
        put_bytes(out, text.as_bytes());
    }
    if let Some(kind) = row.kind {
        out.put(&[type_code(kind)]);
    }
    macro_rules! put_int {
        ($($field:ident),*) => {$(
            if let Some(v) = row.$field {
                out.put(&v.to_le_bytes());
            }
        )*};
    }
    put_int!(size, mode, uid, gid, inode, dev, nlink, mtime_ns, ctime_ns);
    for text in [&row.target, &row.digest, &row.error, &row.xattrs, &row.capabilities].into_iter().flatten() {
        put_bytes(out, text.as_bytes());
    }
}

/// Encode rows (in the order given) into a payload: one row after the other into a growing
/// buffer, the slow twin of [`encode_into`].
pub fn encode(rows: &[FimRow]) -> Vec<u8> {
    let mut out = Vec::new();
    for row in rows {
        encode_row(row, &mut out);
    }
    out
}

/// Rows encoded per parallel part of [`encode_into`].
const PART_ROWS: usize = 4096;

/// The payload's length in parts of [`PART_ROWS`] rows, sized on all cores: their sum is the
/// payload's length, and [`encode_into`] writes each part at its place.
pub fn part_lengths(rows: &[FimRow]) -> Vec<usize> {
    use rayon::prelude::*;
    rows.par_chunks(PART_ROWS)
        .map(|part| {
            let mut count = Count(0);
            for row in part {
                encode_row(row, &mut count);
            }
            count.0
        })
        .collect()
}

/// [`encode`] into `out` (the sum of `lengths` bytes, `lengths` from [`part_lengths`]), each
/// part written into its own stretch on all cores. The caller hands the final buffer (a Python
/// `bytes`) so the payload is written once, not built and then copied (the copy and a second
/// 9 MB buffer were half of a /usr/share baseline's 15 ms encoding).
pub fn encode_into(rows: &[FimRow], lengths: &[usize], out: &mut [u8]) {
    use rayon::prelude::*;
    assert_eq!(lengths.iter().sum::<usize>(), out.len(), "encode_into: the buffer must be the parts' length");
    let mut stretches: Vec<&mut [u8]> = Vec::with_capacity(lengths.len());
    let mut rest = out;
    for &len in lengths {
        let (head, tail) = rest.split_at_mut(len);
        stretches.push(head);
        rest = tail;
    }
    rows.par_chunks(PART_ROWS).zip(stretches).for_each(|(part, stretch)| {
        let mut fill = Fill { out: stretch, at: 0 };
        for row in part {
            encode_row(row, &mut fill);
        }
        assert_eq!(fill.at, fill.out.len(), "encode_into: a part's length is what part_lengths sized");
    });
}

/// Rows encoded per part of [`encode_streamed`]: small enough that the sink starts soon after
/// the encoding does, large enough that handing parts over costs nothing measurable.
const STREAM_PART_ROWS: usize = 1024;

/// [`encode`] in parts encoded on all cores, each part handed to `sink` in payload order as soon
/// as it and every part before it are done. The sink (hashing and writing the baseline file)
/// then runs beside the encoding instead of after it: on /usr/share, encoding 9 MB, hashing it
/// and writing it one after the other took 18 ms. The first error of `sink` ends the stream
/// and is returned (the parts still being encoded are dropped).
/// The sink owns each part (a writer on another thread can keep it while this one hashes it).
pub fn encode_streamed<E>(rows: &[FimRow], mut sink: impl FnMut(std::sync::Arc<Vec<u8>>) -> std::result::Result<(), E>) -> std::result::Result<(), E> {
    use rayon::prelude::*;
    let parts = rows.len().div_ceil(STREAM_PART_ROWS);
    let (done, finished) = std::sync::mpsc::channel::<(usize, Vec<u8>)>();
    std::thread::scope(|scope| {
        // The encoding runs on the rayon pool, driven from a thread of its own, so this thread
        // (not a pool worker) is free to take the parts as they come.
        scope.spawn(move || {
            rows.par_chunks(STREAM_PART_ROWS).enumerate().for_each_with(done, |done, (i, part)| {
                let mut bytes = Vec::new();
                for row in part {
                    encode_row(row, &mut bytes);
                }
                // An error from the sink dropped the receiver: the rest is not needed.
                let _ = done.send((i, bytes));
            });
        });
        let mut waiting: Vec<Option<Vec<u8>>> = (0..parts).map(|_| None).collect();
        let mut next = 0;
        for (i, bytes) in finished {
            waiting[i] = Some(bytes);
            while let Some(bytes) = waiting.get_mut(next).and_then(Option::take) {
                sink(std::sync::Arc::new(bytes))?;
                next += 1;
            }
        }
        Ok(())
    })
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
    row: usize,
}

impl<'a> Reader<'a> {
    fn fail(&self, what: &str) -> CoreError {
        CoreError::invalid(format!("baseline payload row {}: {what} at byte {}", self.row, self.at))
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8]> {
        if self.data.len() - self.at < n {
            return Err(self.fail(&format!("truncated {what} ({n} bytes needed, {} left)", self.data.len() - self.at)));
        }
        let out = &self.data[self.at..self.at + n];
        self.at += n;
        Ok(out)
    }

    fn array<const N: usize>(&mut self, what: &str) -> Result<[u8; N]> {
        let bytes = self.take(N, what)?;
        let mut out = [0u8; N];
        out.copy_from_slice(bytes);
        Ok(out)
    }

    fn bytes(&mut self, what: &str) -> Result<&'a [u8]> {
        let len = u32::from_le_bytes(self.array::<4>(what)?) as usize;
        self.take(len, what)
    }

    fn text(&mut self, what: &str) -> Result<String> {
        let start = self.at;
        let bytes = self.bytes(what)?;
        match std::str::from_utf8(bytes) {
            Ok(text) => Ok(text.to_string()),
            Err(e) => {
                self.at = start;
                Err(self.fail(&format!("{what} is not UTF-8 ({e})")))
            }
        }
    }
}

/// Parse a payload into rows; any malformation is an `InvalidArgument` naming the row and byte.
pub fn decode(payload: &[u8]) -> Result<Vec<FimRow>> {
    let mut r = Reader { data: payload, at: 0, row: 0 };
    let mut rows = Vec::new();
    while r.at < payload.len() {
        let present = u16::from_le_bytes(r.array::<2>("field mask")?);
        let mut row = FimRow { path_bytes: r.bytes("path_bytes")?.to_vec(), ..FimRow::default() };
        let has = |bit: u16| present & bit != 0;
        if has(PATH) {
            row.path_text = Some(r.text("path")?);
        }
        if has(TYPE) {
            let [code] = r.array::<1>("type")?;
            row.kind = Some(*EntryType::ALL.get(code as usize).ok_or_else(|| r.fail(&format!("unknown type code {code}")))?);
        }
        macro_rules! get_int {
            ($($bit:ident $field:ident $ty:ty),*) => {$(
                if has($bit) {
                    row.$field = Some(<$ty>::from_le_bytes(r.array(stringify!($field))?));
                }
            )*};
        }
        get_int!(SIZE size u64, MODE mode u32, UID uid u32, GID gid u32, INODE inode u64, DEV dev u64,
                 NLINK nlink u64, MTIME mtime_ns i64, CTIME ctime_ns i64);
        macro_rules! get_text {
            ($($bit:ident $field:ident),*) => {$(
                if has($bit) {
                    row.$field = Some(r.text(stringify!($field))?);
                }
            )*};
        }
        get_text!(TARGET target, DIGEST digest, ERROR error, XATTRS xattrs, CAPS capabilities);
        rows.push(row);
        r.row += 1;
    }
    Ok(rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Vec<FimRow> {
        vec![
            FimRow {
                path_bytes: b"/etc/passwd".to_vec(),
                kind: Some(EntryType::File),
                size: Some(1234),
                mode: Some(0o100644),
                uid: Some(0),
                gid: Some(0),
                inode: Some(42),
                dev: Some(2049),
                nlink: Some(1),
                mtime_ns: Some(-5),
                ctime_ns: Some(1_700_000_000_000_000_000),
                digest: Some("ab".repeat(32)),
                xattrs: Some("{\"user.x\": \"é\"}".into()),
                ..FimRow::default()
            },
            FimRow { path_bytes: b"/\xff".to_vec(), path_text: Some("odd".into()), error: Some("vanished during scan".into()), ..FimRow::default() },
            FimRow { path_bytes: Vec::new(), kind: Some(EntryType::Unknown), target: Some(String::new()), ..FimRow::default() },
        ]
    }

    #[test]
    fn encode_into_writes_what_encode_builds() {
        // More rows than one parallel part, each shape of the sample repeated.
        let rows: Vec<FimRow> = (0..3 * PART_ROWS + 17).map(|i| sample()[i % sample().len()].clone()).collect();
        for n in [0, 1, PART_ROWS, rows.len()] {
            let expected = encode(&rows[..n]);
            let lengths = part_lengths(&rows[..n]);
            assert_eq!(lengths.iter().sum::<usize>(), expected.len());
            let mut out = vec![0xAAu8; expected.len()];
            encode_into(&rows[..n], &lengths, &mut out);
            assert_eq!(out, expected, "{n} rows");
        }
    }

    #[test]
    fn encode_streamed_hands_over_what_encode_builds_in_order() {
        let rows: Vec<FimRow> = (0..5 * STREAM_PART_ROWS + 3).map(|i| sample()[i % sample().len()].clone()).collect();
        for n in [0, 1, STREAM_PART_ROWS - 1, STREAM_PART_ROWS, STREAM_PART_ROWS + 1, rows.len()] {
            let mut streamed = Vec::new();
            let mut parts = 0;
            encode_streamed(&rows[..n], |part| {
                streamed.extend_from_slice(&part);
                parts += 1;
                Ok::<(), ()>(())
            })
            .unwrap();
            assert_eq!(streamed, encode(&rows[..n]), "{n} rows");
            assert_eq!(parts, n.div_ceil(STREAM_PART_ROWS));
        }
        // The sink's first error ends the stream.
        let mut calls = 0;
        let err = encode_streamed(&rows, |_| {
            calls += 1;
            if calls == 2 {
                Err("disk full")
            } else {
                Ok(())
            }
        });
        assert_eq!((err, calls), (Err("disk full"), 2));
    }

    #[test]
    fn round_trip_keeps_every_field_and_null() {
        let rows = sample();
        assert_eq!(decode(&encode(&rows)).unwrap(), rows);
        assert_eq!(decode(b"").unwrap(), Vec::<FimRow>::new());
    }

    #[test]
    fn every_truncation_is_an_error_naming_the_row() {
        let data = encode(&sample());
        let boundaries: Vec<usize> = (1..=sample().len()).map(|n| encode(&sample()[..n]).len()).collect();
        for cut in 0..data.len() {
            let result = decode(&data[..cut]);
            if cut == 0 || boundaries.contains(&cut) {
                assert!(result.is_ok(), "cut {cut}");
            } else {
                let err = result.unwrap_err().to_string();
                assert!(err.starts_with("baseline payload row "), "{err}");
            }
        }
    }

    #[test]
    fn bad_type_code_and_bad_utf8_are_named() {
        let mut data = encode(&[FimRow { path_bytes: b"/a".to_vec(), kind: Some(EntryType::Dir), ..FimRow::default() }]);
        let last = data.len() - 1;
        data[last] = 200;
        assert!(decode(&data).unwrap_err().to_string().contains("unknown type code 200"));
        let mut data = encode(&[FimRow { path_bytes: b"/a".to_vec(), digest: Some("zz".into()), ..FimRow::default() }]);
        let last = data.len() - 1;
        data[last] = 0xff;
        assert!(decode(&data).unwrap_err().to_string().contains("digest is not UTF-8"));
    }
}
