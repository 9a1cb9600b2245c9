//! Extended attributes and file capabilities of one entry, read without following symlinks, in
//! the canonical text of `secmon/fim/xattrs.py` (its twin): one JSON object per entry, names
//! sorted, values as text when they are UTF-8 without control characters (and do not start with
//! `hex:`), else `hex:...`; `security.capability` also decoded to getcap's notation.

use std::ffi::{CStr, CString};
use std::os::raw::c_char;

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
fn json_string(out: &mut String, text: &str) {
    let mut bytes = std::mem::take(out).into_bytes();
    crate::extract::push_quoted(text.as_bytes(), &mut bytes);
    *out = String::from_utf8(bytes).expect("escaping valid UTF-8 keeps it valid");
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

/// Read the xattrs of the entry at `path` (never following a symlink).
pub fn read_xattrs(path: &[u8]) -> XattrRead {
    let Ok(cpath) = CString::new(path) else {
        return XattrRead { error: Some("xattrs: path contains a NUL byte".into()), ..XattrRead::default() };
    };
    let listed = sized_call(|buf, len| {
        // SAFETY: `cpath` is NUL-terminated; `buf` is null with len 0 or points to `len` bytes.
        unsafe { libc::llistxattr(cpath.as_ptr(), buf as *mut c_char, len) }
    });
    let names_buf = match listed {
        Ok(buf) => buf,
        Err(e) if means_none(e) => return XattrRead::default(),
        Err(e) => return XattrRead { error: Some(format!("xattrs: {} (errno {e})", strerror(e))), ..XattrRead::default() },
    };
    let mut names: Vec<&[u8]> = names_buf.split(|&b| b == 0).filter(|n| !n.is_empty()).collect();
    if names.is_empty() {
        return XattrRead::default();
    }
    names.sort_unstable();
    names.dedup();
    let mut json = String::from("{");
    let mut capabilities = None;
    let mut first = true;
    for name in names {
        let Ok(cname) = CString::new(name) else { continue };
        let value = sized_call(|buf, len| {
            // SAFETY: both strings are NUL-terminated; `buf` is null with len 0 or `len` bytes.
            unsafe { libc::lgetxattr(cpath.as_ptr(), cname.as_ptr(), buf as *mut libc::c_void, len) }
        });
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
            json.push_str(", ");
        }
        first = false;
        json_string(&mut json, &String::from_utf8_lossy(name));
        json.push_str(": ");
        json_string(&mut json, &shown);
    }
    json.push('}');
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
        let mut out = String::new();
        json_string(&mut out, "a\"b\\c\n\u{1}\u{7f}é");
        assert_eq!(out, "\"a\\\"b\\\\c\\n\\u0001\u{7f}é\"");
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
