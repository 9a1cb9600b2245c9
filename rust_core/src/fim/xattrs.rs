//! Extended attributes and file capabilities of one entry, read without following symlinks, in
//! the canonical text of `secmon/fim/xattrs.py` (its twin): one JSON object per entry, names
//! sorted, values as text when they are UTF-8 without control characters (and do not start with
//! `hex:`), else `hex:...`; `security.capability` also decoded to getcap's notation.

use std::ffi::{CStr, CString};
use std::os::fd::RawFd;
use std::os::raw::c_char;
use std::sync::atomic::{AtomicBool, Ordering};

/// What reading one entry's xattrs gave: all None when it has none (or the filesystem has none).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct XattrRead {
    pub xattrs: Option<String>,
    pub capabilities: Option<String>,
    pub error: Option<String>,
}

/// Linux capability numbers (include/uapi/linux/capability.h).
pub const CAPABILITY_NAMES: [&str; 41] = [
    "cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid", "cap_kill",
    "cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable", "cap_net_bind_service",
    "cap_net_broadcast", "cap_net_admin", "cap_net_raw", "cap_ipc_lock", "cap_ipc_owner", "cap_sys_module",
    "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace", "cap_sys_pacct", "cap_sys_admin", "cap_sys_boot",
    "cap_sys_nice", "cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod", "cap_lease",
    "cap_audit_write", "cap_audit_control", "cap_setfcap", "cap_mac_override", "cap_mac_admin",
    "cap_syslog", "cap_wake_alarm", "cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf",
    "cap_checkpoint_restore",
];

/// Errors meaning "nothing to show here", not a problem to report.
fn means_none(errno: i32) -> bool {
    errno == libc::ENOTSUP || errno == libc::EOPNOTSUPP || errno == libc::ENODATA || errno == libc::ENOENT
}

fn errno() -> i32 {
    std::io::Error::last_os_error().raw_os_error().unwrap_or(0)
}

/// `strerror(errno)`, the text Python's `OSError.strerror` carries.
fn strerror(errno: i32) -> String {
    let mut buf = [0 as c_char; 256];
    // SAFETY: the XSI strerror_r (what the libc crate binds) writes a NUL-terminated message
    // into `buf`, at most its length.
    let rc = unsafe { libc::strerror_r(errno, buf.as_mut_ptr(), buf.len()) };
    if rc != 0 {
        return format!("Unknown error {errno}");
    }
    // SAFETY: NUL-terminated by strerror_r on success.
    unsafe { CStr::from_ptr(buf.as_ptr()) }.to_string_lossy().into_owned()
}

/// Call a size-then-fill xattr syscall until the buffer is big enough (values can grow between
/// the two calls). Err(errno) on failure.
fn sized_call(mut call: impl FnMut(*mut u8, usize) -> isize) -> Result<Vec<u8>, i32> {
    loop {
        let size = call(std::ptr::null_mut(), 0);
        if size < 0 {
            return Err(errno());
        }
        if size == 0 {
            return Ok(Vec::new());
        }
        let mut buf = vec![0u8; size as usize];
        let got = call(buf.as_mut_ptr(), buf.len());
        if got < 0 {
            let e = errno();
            if e == libc::ERANGE {
                continue;
            }
            return Err(e);
        }
        buf.truncate(got as usize);
        return Ok(buf);
    }
}

/// A value as stored: text when it is UTF-8 with no control character (Unicode Cc) and does not
/// look like our own hex marker, else `hex:` and its bytes in lowercase hex.
pub fn show_value(value: &[u8]) -> String {
    if let Ok(text) = std::str::from_utf8(value) {
        if !text.starts_with("hex:") && !text.chars().any(char::is_control) {
            return text.to_string();
        }
    }
    let mut out = String::with_capacity(4 + value.len() * 2);
    out.push_str("hex:");
    for b in value {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// Append `text` as a JSON string the way Python's `json.dumps(..., ensure_ascii=False)` does
/// (the extractor's writer: control characters escaped, everything else as it is).
fn json_string(out: &mut Vec<u8>, text: &str) {
    crate::extract::push_quoted(text.as_bytes(), out);
}

fn cap_names(bits: u64) -> String {
    (0..64)
        .filter(|n| bits >> n & 1 == 1)
        .map(|n| CAPABILITY_NAMES.get(n).map_or_else(|| format!("cap_{n}"), |s| s.to_string()))
        .collect::<Vec<_>>()
        .join(",")
}

/// Decode a `security.capability` value (struct vfs_cap_data) to getcap's notation.
pub fn decode_capability(value: &[u8]) -> Result<String, String> {
    if value.len() < 4 {
        return Err(format!("security.capability is {} bytes; at least 4 expected", value.len()));
    }
    let word = |at: usize| u32::from_le_bytes([value[at], value[at + 1], value[at + 2], value[at + 3]]);
    let magic = word(0);
    let revision = match magic & 0xFF00_0000 {
        0x0100_0000 => 1,
        0x0200_0000 => 2,
        0x0300_0000 => 3,
        other => return Err(format!("security.capability has unknown revision 0x{other:08x}")),
    };
    let expected = [0, 12, 20, 24][revision];
    if value.len() != expected {
        return Err(format!("security.capability revision {revision} is {} bytes; {expected} expected", value.len()));
    }
    let mut permitted = word(4) as u64;
    let mut inheritable = word(8) as u64;
    if revision >= 2 {
        permitted |= (word(12) as u64) << 32;
        inheritable |= (word(16) as u64) << 32;
    }
    let effective = if magic & 1 != 0 { "e" } else { "" };
    let both = permitted & inheritable;
    let mut parts = Vec::new();
    for (bits, flags) in [(both, "ip"), (permitted & !both, "p"), (inheritable & !both, "i")] {
        if bits != 0 {
            parts.push(format!("{}={effective}{flags}", cap_names(bits)));
        }
    }
    let mut text = parts.join(" ");
    if revision == 3 {
        text.push_str(&format!(" [rootid={}]", word(20)));
    }
    Ok(text)
}

/// Where to read one entry's xattrs from (never following a symlink).
#[derive(Clone, Copy, Debug)]
pub enum XattrSource<'a> {
    /// An open descriptor of the entry itself: a regular file being hashed, a directory being
    /// listed (`flistxattr` / `fgetxattr`: no path to resolve).
    Fd(RawFd),
    /// `name` in the open directory `dir` (`listxattrat` / `getxattrat`, Linux 6.13+), with the
    /// entry's full `path` for kernels without those calls.
    At { dir: RawFd, name: &'a CStr, path: &'a [u8] },
    /// A full path (`llistxattr` / `lgetxattr`).
    Path(&'a [u8]),
}

/// Whether `listxattrat` / `getxattrat` answered here (cleared at the first ENOSYS/EPERM: an older
/// kernel, or a seccomp filter that does not know them).
static XATTRAT_AVAILABLE: AtomicBool = AtomicBool::new(true);

#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod at_calls {
    // The same numbers in the x86_64 and the generic (aarch64) tables.
    pub const SYS_GETXATTRAT: libc::c_long = 464;
    pub const SYS_LISTXATTRAT: libc::c_long = 465;

    /// `struct xattr_args` of <linux/xattr.h>.
    #[repr(C)]
    pub struct XattrArgs {
        pub value: u64,
        pub size: u32,
        pub flags: u32,
    }
}

/// One size-then-fill xattr call through a source; `name` None lists, Some(name) gets a value.
/// Err(errno) on failure.
fn call_source(source: XattrSource<'_>, cpath: Option<&CStr>, name: Option<&CStr>, buf: *mut u8, len: usize) -> isize {
    match source {
        XattrSource::Fd(fd) => match name {
            // SAFETY: `fd` is open; `buf` is null with len 0 or points to `len` bytes; `name` is NUL-terminated.
            None => unsafe { libc::flistxattr(fd, buf as *mut c_char, len) },
            Some(name) => unsafe { libc::fgetxattr(fd, name.as_ptr(), buf as *mut libc::c_void, len) },
        },
        #[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
        XattrSource::At { dir, name: entry, .. } => match name {
            // SAFETY: as above; the kernel reads `entry` and `name` as C strings and writes at most
            // `len` bytes to `buf` (`XattrArgs` carries the buffer for getxattrat).
            None => unsafe {
                libc::syscall(at_calls::SYS_LISTXATTRAT, dir, entry.as_ptr(), libc::AT_SYMLINK_NOFOLLOW, buf, len) as isize
            },
            Some(name) => {
                let args = at_calls::XattrArgs { value: buf as u64, size: len.min(u32::MAX as usize) as u32, flags: 0 };
                unsafe {
                    libc::syscall(
                        at_calls::SYS_GETXATTRAT,
                        dir,
                        entry.as_ptr(),
                        libc::AT_SYMLINK_NOFOLLOW,
                        name.as_ptr(),
                        &args as *const at_calls::XattrArgs,
                        std::mem::size_of::<at_calls::XattrArgs>(),
                    ) as isize
                }
            }
        },
        _ => {
            let cpath = cpath.expect("a path source has its C path");
            match name {
                // SAFETY: both strings are NUL-terminated; `buf` is null with len 0 or `len` bytes.
                None => unsafe { libc::llistxattr(cpath.as_ptr(), buf as *mut c_char, len) },
                Some(name) => unsafe { libc::lgetxattr(cpath.as_ptr(), name.as_ptr(), buf as *mut libc::c_void, len) },
            }
        }
    }
}

/// Read the xattrs of the entry at `path` (never following a symlink).
pub fn read_xattrs(path: &[u8]) -> XattrRead {
    read_xattrs_from(XattrSource::Path(path))
}

/// Read one entry's xattrs through `source`. The tree walker reads them through the descriptors
/// it holds anyway (the hashed file, the listed directory) and by name relative to the listed
/// directory, instead of by full path afterwards: a path lookup less per entry.
pub fn read_xattrs_from(source: XattrSource<'_>) -> XattrRead {
    let mut source = source;
    if let XattrSource::At { path, .. } = source {
        if !XATTRAT_AVAILABLE.load(Ordering::Relaxed) || cfg!(not(any(target_arch = "x86_64", target_arch = "aarch64"))) {
            source = XattrSource::Path(path);
        }
    }
    let cpath = match source {
        XattrSource::Path(path) => match CString::new(path) {
            Ok(c) => Some(c),
            Err(_) => return XattrRead { error: Some("xattrs: path contains a NUL byte".into()), ..XattrRead::default() },
        },
        _ => None,
    };
    let listed = sized_call(|buf, len| call_source(source, cpath.as_deref(), None, buf, len));
    let names_buf = match listed {
        Ok(buf) => buf,
        Err(e) if (e == libc::ENOSYS || e == libc::EPERM) && matches!(source, XattrSource::At { .. }) => {
            XATTRAT_AVAILABLE.store(false, Ordering::Relaxed);
            let XattrSource::At { path, .. } = source else { unreachable!() };
            return read_xattrs_from(XattrSource::Path(path));
        }
        Err(e) if means_none(e) => return XattrRead::default(),
        Err(e) => return XattrRead { error: Some(format!("xattrs: {} (errno {e})", strerror(e))), ..XattrRead::default() },
    };
    let mut names: Vec<&[u8]> = names_buf.split(|&b| b == 0).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return XattrRead::default();
    }
    names.sort_unstable();
    names.dedup();
    let mut json = b"{".to_vec();
    let mut capabilities = None;
    let mut first = true;
    for name in names {
        let Ok(cname) = CString::new(name) else { continue };
        let value = sized_call(|buf, len| call_source(source, cpath.as_deref(), Some(&cname), buf, len));
        let shown = match value {
            Ok(raw) => {
                if name == b"security.capability" {
                    capabilities = Some(decode_capability(&raw).unwrap_or_else(|e| format!("undecodable: {e}")));
                }
                show_value(&raw)
            }
            Err(e) if means_none(e) => continue, // removed between list and get
            Err(e) => format!("error: {}", strerror(e)),
        };
        if !first {
            json.extend_from_slice(b", ");
        }
        first = false;
        json_string(&mut json, &String::from_utf8_lossy(name));
        json.extend_from_slice(b": ");
        json_string(&mut json, &shown);
    }
    json.push(b'}');
    let json = String::from_utf8(json).expect("quoting valid UTF-8 keeps it valid");
    XattrRead { xattrs: Some(json), capabilities, error: None }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_show_as_text_or_hex() {
        assert_eq!(show_value(b"plain text"), "plain text");
        assert_eq!(show_value(b"nul\0"), "hex:6e756c00");
        assert_eq!(show_value(b"hex:ab"), "hex:6865783a6162");
        assert_eq!(show_value(&[0xff]), "hex:ff");
        assert_eq!(show_value("é".as_bytes()), "é");
        assert_eq!(show_value(b""), "");
    }

    #[test]
    fn json_strings_escape_like_python() {
        let mut out = Vec::new();
        json_string(&mut out, "a\"b\\c\n\u{1}\u{7f}é");
        assert_eq!(String::from_utf8(out).unwrap(), "\"a\\\"b\\\\c\\n\\u0001\u{7f}é\"");
    }

    #[test]
    fn capabilities_decode_to_getcap_notation() {
        // revision 2, effective, cap_net_raw (13) permitted.
        let mut v = vec![0u8; 20];
        v[..4].copy_from_slice(&0x0200_0001u32.to_le_bytes());
        v[4..8].copy_from_slice(&(1u32 << 13).to_le_bytes());
        assert_eq!(decode_capability(&v).unwrap(), "cap_net_raw=ep");
        assert!(decode_capability(&v[..3]).unwrap_err().contains("at least 4"));
        assert!(decode_capability(&v[..12]).unwrap_err().contains("revision 2 is 12 bytes; 20 expected"));
        v[3] = 0x09;
        assert!(decode_capability(&v).unwrap_err().contains("unknown revision 0x09000000"));
    }

    #[test]
    fn every_source_reads_the_same_xattrs() {
        use std::os::fd::AsRawFd;
        use std::os::unix::ffi::OsStrExt;
        let dir = std::env::temp_dir().join(format!("secmon-xattr-src-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("f");
        std::fs::write(&file, b"x").unwrap();
        let cfile = CString::new(file.as_os_str().as_bytes()).unwrap();
        // SAFETY: NUL-terminated strings, a 5-byte value.
        let set = unsafe { libc::setxattr(cfile.as_ptr(), c"user.secmon".as_ptr(), b"value".as_ptr().cast(), 5, 0) };
        let path = file.as_os_str().as_bytes();
        let by_path = read_xattrs_from(XattrSource::Path(path));
        if set == 0 {
            assert_eq!(by_path.xattrs.as_deref(), Some("{\"user.secmon\": \"value\"}"));
        }
        let opened = std::fs::File::open(&file).unwrap();
        let parent = std::fs::File::open(&dir).unwrap();
        assert_eq!(read_xattrs_from(XattrSource::Fd(opened.as_raw_fd())), by_path);
        let at = XattrSource::At { dir: parent.as_raw_fd(), name: c"f", path };
        assert_eq!(read_xattrs_from(at), by_path);
        // An entry that vanished reads as none, by every route.
        let gone = XattrSource::At { dir: parent.as_raw_fd(), name: c"gone", path: b"/no/such/secmon/gone" };
        assert_eq!(read_xattrs_from(gone), XattrRead::default());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn entries_without_xattrs_read_as_none() {
        let dir = std::env::temp_dir().join(format!("secmon-xattr-{}", std::process::id()));
        std::fs::write(&dir, b"x").unwrap();
        use std::os::unix::ffi::OsStrExt;
        let read = read_xattrs(dir.as_os_str().as_bytes());
        std::fs::remove_file(&dir).unwrap();
        assert_eq!(read.error, None);
        assert_eq!(read.capabilities, None);
        assert!(read_xattrs(b"/no/such/secmon/path").xattrs.is_none());
    }
}
