"""Run one command and report its own peak memory: ``python -m benchmarks.launch REPORT -- argv...``.

Linux keeps a process's peak RSS across fork and exec, so a command forked straight from a big
benchmark process would report that process's peak as its own. This small launcher is the parent
instead: it forks the command, waits for it with ``wait4`` and writes ``seconds maxrss_bytes
exit_code`` to REPORT.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time


def main() -> int:
    report, separator, *argv = sys.argv[1:]
    assert separator == "--", "usage: python -m benchmarks.launch REPORT -- argv..."
    shell = os.environ.pop("SECMON_LAUNCH_SHELL", "") == "1"
    start = time.perf_counter()
    proc = subprocess.Popen(argv[0] if shell else argv, shell=shell)
    _, status, usage = os.wait4(proc.pid, 0)
    seconds = time.perf_counter() - start
    with open(report, "w") as fh:
        fh.write(f"{seconds} {usage.ru_maxrss * 1024} {os.waitstatus_to_exitcode(status)}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
