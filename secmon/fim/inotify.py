"""A small ctypes binding to Linux inotify (no third-party package, nothing but libc).

Only what the watcher needs: init with non-blocking close-on-exec, add/remove watches, and read
every pending event in one ``read`` into (wd, mask, cookie, name) tuples.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import errno
import os
import select
import struct
from typing import NamedTuple

IN_ACCESS = 0x00000001
IN_MODIFY = 0x00000002
IN_ATTRIB = 0x00000004
IN_CLOSE_WRITE = 0x00000008
IN_CLOSE_NOWRITE = 0x00000010
IN_OPEN = 0x00000020
IN_MOVED_FROM = 0x00000040
IN_MOVED_TO = 0x00000080
IN_CREATE = 0x00000100
IN_DELETE = 0x00000200
IN_DELETE_SELF = 0x00000400
IN_MOVE_SELF = 0x00000800
IN_UNMOUNT = 0x00002000
IN_Q_OVERFLOW = 0x00004000
IN_IGNORED = 0x00008000
IN_ONLYDIR = 0x01000000
IN_DONT_FOLLOW = 0x02000000
IN_EXCL_UNLINK = 0x04000000
IN_ISDIR = 0x40000000
IN_NONBLOCK = 0o4000
IN_CLOEXEC = 0o2000000

# What a file integrity watcher needs: content, metadata, and every way an entry appears or goes.
FIM_MASK = (
    IN_MODIFY | IN_ATTRIB | IN_CLOSE_WRITE | IN_MOVED_FROM | IN_MOVED_TO | IN_CREATE | IN_DELETE
    | IN_DELETE_SELF | IN_MOVE_SELF | IN_DONT_FOLLOW | IN_ONLYDIR | IN_EXCL_UNLINK
)  # fmt: skip

_HEADER = struct.Struct("iIII")
READ_BUFFER_BYTES = 1 << 20

_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_libc.inotify_init1.argtypes = [ctypes.c_int]
_libc.inotify_init1.restype = ctypes.c_int
_libc.inotify_add_watch.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32]
_libc.inotify_add_watch.restype = ctypes.c_int
_libc.inotify_rm_watch.argtypes = [ctypes.c_int, ctypes.c_int]
_libc.inotify_rm_watch.restype = ctypes.c_int


class InotifyEvent(NamedTuple):
    wd: int
    mask: int
    cookie: int
    name: bytes


def max_user_watches() -> int | None:
    try:
        with open("/proc/sys/fs/inotify/max_user_watches") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


class Inotify:
    """One inotify instance (a file descriptor); close it when done."""

    def __init__(self) -> None:
        fd = _libc.inotify_init1(IN_NONBLOCK | IN_CLOEXEC)
        if fd < 0:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_init1 failed: {os.strerror(err)}")
        self.fd = fd

    def add_watch(self, path: bytes, mask: int = FIM_MASK) -> int:
        wd = _libc.inotify_add_watch(self.fd, path, mask)
        if wd < 0:
            err = ctypes.get_errno()
            raise OSError(err, os.strerror(err), os.fsdecode(path))
        return int(wd)

    def rm_watch(self, wd: int) -> None:
        # EINVAL: the kernel already dropped it (the directory is gone); nothing to do.
        if _libc.inotify_rm_watch(self.fd, wd) < 0 and ctypes.get_errno() != errno.EINVAL:
            err = ctypes.get_errno()
            raise OSError(err, f"inotify_rm_watch failed: {os.strerror(err)}")

    def read(self, timeout: float | None) -> list[InotifyEvent]:
        """Every event queued now, waiting up to ``timeout`` seconds for the first one."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return []
        events: list[InotifyEvent] = []
        while True:
            try:
                data = os.read(self.fd, READ_BUFFER_BYTES)
            except BlockingIOError:
                break
            offset = 0
            while offset < len(data):
                wd, mask, cookie, length = _HEADER.unpack_from(data, offset)
                offset += _HEADER.size
                name = data[offset : offset + length].rstrip(b"\0")
                offset += length
                events.append(InotifyEvent(wd, mask, cookie, name))
            if len(data) < READ_BUFFER_BYTES // 2:
                break
        return events

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1

    def __enter__(self) -> Inotify:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
