//! Records read back by position from an open file, joined by a separator: the event store's
//! samples and tie-breaks, one call per batch instead of one `pread` (and one `bytes` object) per
//! record from Python (measured: 0.3 s of the 1 s that 101k samples cost).

use std::fs::File;
use std::io;
use std::mem::ManuallyDrop;
use std::os::fd::{FromRawFd, RawFd};
use std::os::unix::fs::FileExt;

/// The records at `spans` (offset, length) of the file open as `fd`, in order, with `sep` between
/// them. A record past the end of the file (the file shrank) is `UnexpectedEof`.
pub fn read_joined(fd: RawFd, spans: &[(u64, usize)], sep: u8) -> io::Result<Vec<u8>> {
    // SAFETY: the caller keeps `fd` open for the call; ManuallyDrop never closes it.
    let file = ManuallyDrop::new(unsafe { File::from_raw_fd(fd) });
    let total = spans.iter().map(|&(_, len)| len).sum::<usize>() + spans.len().saturating_sub(1);
    let mut out = vec![0u8; total];
    let mut at = 0;
    for (i, &(offset, len)) in spans.iter().enumerate() {
        if i > 0 {
            out[at] = sep;
            at += 1;
        }
        file.read_exact_at(&mut out[at..at + len], offset)?;
        at += len;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::os::fd::AsRawFd;

    #[test]
    fn records_in_the_order_asked_and_eof_past_the_end() {
        let mut file = tempfile_in_target();
        file.write_all(b"alpha\nbeta\ngamma").unwrap();
        let fd = file.as_raw_fd();
        assert_eq!(read_joined(fd, &[(11, 5), (0, 5), (6, 4)], b'\n').unwrap(), b"gamma\nalpha\nbeta");
        assert_eq!(read_joined(fd, &[], b'\n').unwrap(), b"");
        assert_eq!(read_joined(fd, &[(3, 0)], b'\n').unwrap(), b"");
        let err = read_joined(fd, &[(0, 5), (14, 5)], b'\n').unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::UnexpectedEof);
    }

    fn tempfile_in_target() -> File {
        let path = std::env::temp_dir().join(format!("secmon-records-{}", std::process::id()));
        let file = File::options().read(true).write(true).create(true).truncate(true).open(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        file
    }
}
