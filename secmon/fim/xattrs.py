"""Extended attributes and file capabilities.

Xattrs are read without following symlinks and stored as one canonical JSON object per entry
(names sorted; values as text when they are UTF-8 without control characters, else ``hex:...``) so two scans compare
with one string equality. ``security.capability`` is also decoded to the ``getcap`` notation
(``cap_net_raw,cap_setuid=ep``), because a capability added to a binary is a privilege change an
admin must see by name.
"""

from __future__ import annotations

import errno
import json
import os
import re
import struct

# Linux capability numbers (include/uapi/linux/capability.h).
CAPABILITY_NAMES: tuple[str, ...] = (
    "cap_chown", "cap_dac_override", "cap_dac_read_search", "cap_fowner", "cap_fsetid", "cap_kill",
    "cap_setgid", "cap_setuid", "cap_setpcap", "cap_linux_immutable", "cap_net_bind_service",
    "cap_net_broadcast", "cap_net_admin", "cap_net_raw", "cap_ipc_lock", "cap_ipc_owner", "cap_sys_module",
    "cap_sys_rawio", "cap_sys_chroot", "cap_sys_ptrace", "cap_sys_pacct", "cap_sys_admin", "cap_sys_boot",
    "cap_sys_nice", "cap_sys_resource", "cap_sys_time", "cap_sys_tty_config", "cap_mknod", "cap_lease",
    "cap_audit_write", "cap_audit_control", "cap_setfcap", "cap_mac_override", "cap_mac_admin",
    "cap_syslog", "cap_wake_alarm", "cap_block_suspend", "cap_audit_read", "cap_perfmon", "cap_bpf",
    "cap_checkpoint_restore",
)  # fmt: skip

VFS_CAP_REVISION_MASK = 0xFF000000
VFS_CAP_FLAGS_EFFECTIVE = 0x000001
VFS_CAP_REVISIONS = {0x01000000: 1, 0x02000000: 2, 0x03000000: 3}

# Errors meaning "this filesystem/entry has no xattrs to show", not a problem to report.
_NO_XATTRS = {errno.ENOTSUP, errno.EOPNOTSUPP, errno.ENODATA, errno.ENOENT}


def _cap_names(bits: int) -> list[str]:
    names = []
    for number in range(64):
        if bits >> number & 1:
            names.append(CAPABILITY_NAMES[number] if number < len(CAPABILITY_NAMES) else f"cap_{number}")
    return names


def decode_capability(value: bytes) -> str:
    """Decode a ``security.capability`` value (struct vfs_cap_data) to getcap's notation.

    Raises ValueError for a value of the wrong size or revision.
    """
    if len(value) < 4:
        raise ValueError(f"security.capability is {len(value)} bytes; at least 4 expected")
    (magic,) = struct.unpack_from("<I", value)
    revision = VFS_CAP_REVISIONS.get(magic & VFS_CAP_REVISION_MASK)
    expected = {1: 12, 2: 20, 3: 24}
    if revision is None:
        raise ValueError(f"security.capability has unknown revision 0x{magic & VFS_CAP_REVISION_MASK:08x}")
    if len(value) != expected[revision]:
        raise ValueError(f"security.capability revision {revision} is {len(value)} bytes; {expected[revision]} expected")
    permitted, inheritable = struct.unpack_from("<II", value, 4)
    if revision >= 2:
        permitted_hi, inheritable_hi = struct.unpack_from("<II", value, 12)
        permitted |= permitted_hi << 32
        inheritable |= inheritable_hi << 32
    effective = bool(magic & VFS_CAP_FLAGS_EFFECTIVE)
    parts = []
    both = permitted & inheritable
    for bits, flags in ((both, "ip"), (permitted & ~both, "p"), (inheritable & ~both, "i")):
        if bits:
            parts.append(",".join(_cap_names(bits)) + "=" + ("e" if effective else "") + flags)
    text = " ".join(parts)
    if revision == 3:
        (rootid,) = struct.unpack_from("<I", value, 20)
        text += f" [rootid={rootid}]"
    return text


# Unicode category Cc, spelled out so the Rust twin (char::is_control) means exactly the same.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")


def _show(value: bytes) -> str:
    """Text when the value is UTF-8 without control characters (and not our own ``hex:`` marker),
    else ``hex:`` and its bytes. (Before baseline format 2 the rule was ``str.isprintable``; the two
    agree on every ASCII value, and a rule both languages compute exactly keeps the Rust reader and
    this one equal on any value.)"""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + value.hex()
    if not text.startswith("hex:") and _CONTROL.search(text) is None:
        return text
    return "hex:" + value.hex()


def read_xattrs(path: bytes) -> tuple[str | None, str | None, str | None]:
    """(xattrs JSON or None, decoded capabilities or None, error or None) for one entry."""
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError as exc:
        if exc.errno in _NO_XATTRS:
            return None, None, None
        return None, None, f"xattrs: {exc.strerror} (errno {exc.errno})"
    if not names:
        return None, None, None
    values: dict[str, str] = {}
    capabilities: str | None = None
    for name in sorted(names):
        try:
            raw = os.getxattr(path, name, follow_symlinks=False)
        except OSError as exc:
            if exc.errno in _NO_XATTRS:
                continue  # removed between list and get
            values[name] = f"error: {exc.strerror}"
            continue
        values[name] = _show(raw)
        if name == "security.capability":
            try:
                capabilities = decode_capability(raw)
            except ValueError as exc:
                capabilities = f"undecodable: {exc}"
    return json.dumps(values, sort_keys=True, ensure_ascii=False), capabilities, None
