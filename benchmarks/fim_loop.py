"""The FIM benchmark's naive contender, run as its own process: ``python -m benchmarks.fim_loop TREE``.

It imports only what the loop uses, so its time is the loop's and the interpreter's, not the
harness's. Prints ``[entries, digest]`` as JSON, the answer the harness compares.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import sys


def python_loop_baseline(root: str) -> tuple[int, str]:
    """The obvious sequential FIM: os.walk, lstat every entry, sha256 every regular file."""
    entries = 0
    digests: list[str] = []
    os.lstat(root)
    entries += 1
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            try:
                st = os.lstat(path)
            except OSError:
                continue
            entries += 1
            os.listxattr(path, follow_symlinks=False)  # AIDE and secmon record xattrs too
            if stat.S_ISLNK(st.st_mode):
                os.readlink(path)
            elif stat.S_ISREG(st.st_mode):
                h = hashlib.sha256()
                try:
                    with open(path, "rb", buffering=0) as fh:
                        while chunk := fh.read(1 << 20):
                            h.update(chunk)
                except OSError:
                    continue
                digests.append(h.hexdigest())
    return entries, digest_of(digests)


def digest_of(hex_digests: list[str]) -> str:
    """One digest over the sorted file digests: the answer every contender must agree on."""
    return hashlib.sha256("\n".join(sorted(hex_digests)).encode()).hexdigest()


if __name__ == "__main__":
    print(json.dumps(python_loop_baseline(sys.argv[1])))
