"""Measure contenders side by side and print one table per case.

Every contender runs in a fresh process, so its peak memory (``ru_maxrss``) is its own and one
contender's warm caches or heap never flatter another. Python contenders are ``"module:function"``
names run in a spawned interpreter; external tools are argv lists run through ``os.wait4``.
A case asserts that every contender produced the same answer (a hit count, a digest list) before
it reports speed: a fast wrong engine fails the run.
"""

from __future__ import annotations

import importlib
import multiprocessing
import os
import queue as queue_module
import resource
import subprocess
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Measurement:
    name: str
    seconds: float
    peak_rss_bytes: int
    answer: Any = None


def _own_peak_rss() -> int:
    """This process's peak RSS since its exec (VmHWM belongs to the address space; ru_maxrss would
    include the peak of the process it was forked from)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class AnswerLater:
    """A contender's answer to be computed once its time is taken: ``return AnswerLater(digest,
    signals)``. Checking answers is the harness's work, not the contender's (a digest of 68k
    signals took 0.2 s, 6% of the 1M-event scan's time); every contender of a case uses it alike."""

    def __init__(self, compute: Callable[..., Any], *args: Any) -> None:
        self.compute = compute
        self.args = args

    def __call__(self) -> Any:
        return self.compute(*self.args)


def _run_in_child(target: str, args: tuple[Any, ...], queue: Any) -> None:
    try:
        module_name, _, func_name = target.partition(":")
        func: Callable[..., Any] = getattr(importlib.import_module(module_name), func_name)
        start = time.perf_counter()
        answer = func(*args)
        seconds = time.perf_counter() - start
        if isinstance(answer, AnswerLater):
            answer = answer()
        queue.put(("ok", (seconds, _own_peak_rss(), answer)))
    except BaseException:  # report the failure to the parent instead of leaving it waiting
        queue.put(("error", traceback.format_exc()))


def measure_python(name: str, target: str, *args: Any, timeout: float = 3600.0) -> Measurement:
    """Run ``target`` ("module:function") with ``args`` in a spawned interpreter."""
    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=_run_in_child, args=(target, args, queue))
    proc.start()
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                status, payload = queue.get(timeout=1.0)
                break
            except queue_module.Empty:
                if not proc.is_alive():
                    raise RuntimeError(f"contender {name!r} ({target}) died with exit code {proc.exitcode}") from None
                if time.monotonic() > deadline:
                    proc.kill()
                    raise TimeoutError(f"contender {name!r} ({target}) took longer than {timeout:.0f} s") from None
    finally:
        proc.join(timeout=60)
    if status == "error":
        raise RuntimeError(f"contender {name!r} ({target}) failed:\n{payload}")
    seconds, peak, answer = payload
    return Measurement(name, seconds, peak, answer)


def measure_command(
    name: str,
    argv: Sequence[str] | str,
    *,
    shell: bool = False,
    answer_from: Callable[[bytes], Any] | None = None,
    env: dict[str, str] | None = None,
    cwd: str | None = None,
    check: bool = True,
) -> Measurement:
    """Run an external command, timed and measured by a small launcher process (see
    ``benchmarks/launch.py``: a command forked from this big process would inherit its peak RSS)."""
    import tempfile

    with tempfile.TemporaryFile() as out_file, tempfile.TemporaryFile() as err_file, \
            tempfile.NamedTemporaryFile("r") as report:
        launcher = [sys.executable, "-m", "benchmarks.launch", report.name, "--"]
        child_env = dict(os.environ if env is None else env)
        child_env["PYTHONPATH"] = os.pathsep.join(filter(None, [_ROOT, child_env.get("PYTHONPATH")]))
        if shell:
            child_env["SECMON_LAUNCH_SHELL"] = "1"
        argv_list = [argv] if isinstance(argv, str) else list(argv)
        proc = subprocess.Popen([*launcher, *argv_list], stdout=out_file, stderr=err_file, env=child_env, cwd=cwd)
        proc.wait()
        seconds_text, peak_text, code_text = report.read().split()
        out_file.seek(0)
        err_file.seek(0)
        out, err = out_file.read(), err_file.read()
    returncode = int(code_text)
    if check and returncode != 0:
        raise RuntimeError(f"contender {name!r} failed ({returncode}): {err.decode(errors='replace')[-2000:]}")
    answer = answer_from(out) if answer_from else None
    return Measurement(name, float(seconds_text), int(peak_text), answer)


_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _human_bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if abs(n) < 1000 or unit == "GB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1000
    return f"{n:.1f} GB"


@dataclass
class Table:
    """One case: contenders measured on the same input, ratios against ``reference``."""

    title: str
    reference: str = "secmon"
    bytes_processed: int | None = None
    items_processed: int | None = None
    item_unit: str = "items"
    rows: list[Measurement] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def add(self, measurement: Measurement) -> Measurement:
        self.rows.append(measurement)
        return measurement

    def assert_agree(self, key: Callable[[Any], Any] = lambda a: a) -> None:
        """Every contender's answer must equal the reference's."""
        ref = self._reference_row()
        for row in self.rows:
            if key(row.answer) != key(ref.answer):
                raise AssertionError(
                    f"{self.title}: {row.name} answered {summarize(row.answer)}, {ref.name} answered {summarize(ref.answer)}"
                )

    def _reference_row(self) -> Measurement:
        for row in self.rows:
            if row.name == self.reference:
                return row
        raise KeyError(f"{self.title}: no row named {self.reference!r}")

    def ratio(self, name: str) -> float:
        """How many times faster the reference is than ``name`` (> 1 means secmon wins)."""
        ref = self._reference_row()
        other = next(r for r in self.rows if r.name == name)
        return other.seconds / ref.seconds

    def markdown(self) -> str:
        ref = self._reference_row()
        head = ["contender", "time"]
        if self.bytes_processed:
            head.append("MB/s")
        if self.items_processed:
            head.append(f"{self.item_unit}/s")
        head += ["peak memory", f"{self.reference} speed-up"]
        lines = [f"**{self.title}**", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for row in self.rows:
            cells = [row.name, f"{row.seconds:.3f} s"]
            if self.bytes_processed:
                cells.append(f"{self.bytes_processed / row.seconds / 1e6:,.0f}")
            if self.items_processed:
                cells.append(f"{self.items_processed / row.seconds:,.0f}")
            cells.append(_human_bytes(row.peak_rss_bytes))
            cells.append("1.0x" if row is ref else f"{row.seconds / ref.seconds:.1f}x")
            lines.append("| " + " | ".join(cells) + " |")
        for note in self.notes:
            lines.append(f"\n{note}")
        return "\n".join(lines)

    def print(self) -> None:
        print(self.markdown(), end="\n\n", flush=True)


def summarize(answer: Any) -> str:
    text = repr(answer)
    return text if len(text) < 200 else text[:200] + "..."


def cpu_note() -> str:
    return f"{os.cpu_count()} cores"
