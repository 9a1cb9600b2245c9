"""scan_tree: hash a whole tree with secmon vs ``find | xargs -P2 sha256sum``, a Python loop, b3sum.

Full run: ``/usr`` (page cache warmed first by one untimed walk that reads every file). Smoke run:
a small generated tree. Every contender's answer is the map path -> digest of the regular files it
hashed; the case asserts that all maps are equal (a fast wrong walker fails) before it reports.
Paths that some contender could not read are excepted explicitly, by name, and counted in a note.
The re-scan row runs ``scan_tree(previous=...)`` with nothing changed, loading ``previous`` from a
Parquet file inside the timed call (as a FIM baseline would be).
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import stat
import tempfile
from pathlib import Path
from collections.abc import Callable
from typing import Any

import polars as pl

from benchmarks.harness import Measurement, Table, measure_command, measure_python
from benchmarks.harness import cpu_note as cores_note
from secmon import scan_tree

FULL_ROOT = "/usr"
MODULE = "benchmarks.bench_scan_tree"
# The full run keeps the best of this many runs per contender: the machine is shared, and one
# run can lose seconds to a neighbour's burst.
FULL_REPEATS = 2


# ---- contenders run in fresh interpreters (measure_python) ----


def secmon_scan(root: str, algo: str) -> Any:
    """The timed call returns the DataFrame; turning it into an answer happens outside the timer.
    (secmon and polars are imported with this module, before the timer starts, as hashlib is for
    the Python loop.)"""
    return scan_tree(root, algo=algo)


def secmon_rescan(root: str, algo: str, previous_parquet: str) -> Any:
    return scan_tree(root, algo=algo, previous=pl.read_parquet(previous_parquet))


def python_loop(root: str, algo: str) -> dict[bytes, str]:
    """The obvious Python: os.walk + lstat + hashlib, one file after another."""
    digests: dict[bytes, str] = {}
    for dirpath, _dirnames, filenames in os.walk(os.fsencode(root)):
        for name in filenames:
            path = os.path.join(dirpath, name)
            try:
                if not stat.S_ISREG(os.lstat(path).st_mode):
                    continue
                with open(path, "rb") as fh:
                    digests[path] = hashlib.file_digest(fh, algo).hexdigest()
            except OSError:
                continue  # reported by its absence; the agreement check names such paths
    return digests


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def with_cpu(target: Callable[..., Any], *args: Any) -> tuple[Any, float]:
    """(answer, CPU seconds of this process, all threads, user + system) of one call. On a
    machine shared with other jobs wall time swings with their load; CPU time much less."""
    started = _cpu_seconds()
    answer = target(*args)
    return answer, _cpu_seconds() - started


def secmon_scan_cpu(root: str, algo: str) -> tuple[Any, float]:
    return with_cpu(secmon_scan, root, algo)


def secmon_rescan_cpu(root: str, algo: str, previous_parquet: str) -> tuple[Any, float]:
    return with_cpu(secmon_rescan, root, algo, previous_parquet)


def python_loop_cpu(root: str, algo: str) -> tuple[dict[bytes, str], float]:
    return with_cpu(python_loop, root, algo)


def split_cpu(measurement: Measurement, cpu: dict[str, float]) -> Measurement:
    """Record the CPU seconds of a ``*_cpu`` contender and keep its plain answer."""
    answer, cpu[measurement.name] = measurement.answer
    return Measurement(measurement.name, measurement.seconds, measurement.peak_rss_bytes, answer)


def cpu_note(cpu: dict[str, float]) -> str:
    return "CPU time (user + system, all threads) of the timed call: " + ", ".join(f"{name} {seconds:.2f} s" for name, seconds in cpu.items()) + "."


# ---- answers ----


def frame_answer(frame: Any) -> dict[bytes, str]:
    files = frame.filter((frame["type"] == "file") & frame["digest"].is_not_null())
    return dict(zip(files["path_bytes"].to_list(), files["digest"].to_list()))


def frame_errors(frame: Any) -> set[bytes]:
    failed = frame.filter((frame["type"] == "file") & frame["error"].is_not_null())
    return set(failed["path_bytes"].to_list())


def parse_sum_output(out: bytes) -> dict[bytes, str]:
    """``DIGEST  PATH`` lines of sha256sum / b3sum (a leading backslash marks an escaped name)."""
    digests: dict[bytes, str] = {}
    for line in out.split(b"\n"):
        if not line:
            continue
        digest, _, path = line.partition(b"  ")
        if digest.startswith(b"\\"):
            digest = digest[1:]
            path = path.replace(b"\\n", b"\n").replace(b"\\\\", b"\\")
        digests[path] = digest.decode()
    return digests


def lossy(path: bytes) -> bytes:
    return path.decode("utf-8", "replace").encode()


def digest_of_digests(answer: dict[bytes, str], excepted: set[bytes]) -> tuple[int, str]:
    """(file count, sha256 over the sorted "digest  path" lines), the excepted paths left out."""
    h = hashlib.sha256()
    kept = sorted(p for p in answer if p not in excepted)
    for path in kept:
        h.update(answer[path].encode() + b"  " + path + b"\n")
    return len(kept), h.hexdigest()


def assert_same_files(table: Table, unreadable: set[bytes]) -> set[bytes]:
    """Agreement of every row's map; paths some contender did not hash must be listed unreadable
    by secmon (the only tool that says why), otherwise it is a disagreement."""
    maps: dict[str, dict[bytes, str]] = {row.name: row.answer for row in table.rows}
    every = set().union(*maps.values())
    missing_somewhere = {p for p in every if any(p not in m for m in maps.values())}
    unexplained = missing_somewhere - unreadable
    if unexplained:
        sample = sorted(unexplained)[:5]
        owners = {name: sum(p in m for p in unexplained) for name, m in maps.items()}
        raise AssertionError(f"{table.title}: {len(unexplained)} files hashed by some contenders only {owners}: {sample}")
    excepted = missing_somewhere | unreadable
    table.assert_agree(key=lambda answer: digest_of_digests(answer, excepted))
    return excepted


# ---- the case ----


def make_smoke_tree(base: Path) -> Path:
    """A few hundred files of varied sizes, nested, with symlinks, an empty file and odd names."""
    root = base / "tree"
    for i in range(400):
        d = root / f"d{i % 13}" / f"e{i % 5}"
        d.mkdir(parents=True, exist_ok=True)
        (d / f"f{i}.bin").write_bytes(hashlib.sha256(str(i).encode()).digest() * (i * 7 % 3000))
    (root / "empty").write_bytes(b"")
    (root / "big").write_bytes(os.urandom(6 * 1024 * 1024))
    (root / "link").symlink_to("big")
    os.link(root / "big", root / "d1" / "big-hard-link")  # read once by secmon, by name by the others
    (root / "d0" / "dangling").symlink_to("nowhere")
    with open(os.fsencode(root) + b"/caf\xe9", "wb") as fh:
        fh.write(b"latin-1 name")
    return root


def warm_page_cache(root: str) -> None:
    """One untimed pass that reads every file, so every contender starts from a warm cache."""
    measure_python("warm-up", f"{MODULE}:secmon_scan", root, "xxh3_128")


def run(smoke: bool) -> list[Table]:
    workdir = Path(tempfile.mkdtemp(prefix="secmon-bench-scan-"))
    try:
        root = str(make_smoke_tree(workdir)) if smoke else FULL_ROOT
        warm_page_cache(root)
        return [sha256_table(root, workdir, smoke), blake3_table(root, smoke)]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def best_of(repeats: int, measure: Callable[[], Measurement]) -> Measurement:
    return min((measure() for _ in range(repeats)), key=lambda m: m.seconds)


def load_note() -> str:
    one, five, _ = os.getloadavg()
    return f"load average {one:.1f} (1 min) / {five:.1f} (5 min) on {os.cpu_count()} cores when the table was made"


def _frame_row(table: Table, measurement: Measurement, unreadable: set[bytes]) -> Any:
    frame = measurement.answer
    unreadable |= frame_errors(frame)
    table.add(Measurement(measurement.name, measurement.seconds, measurement.peak_rss_bytes, frame_answer(frame)))
    return frame


def hard_link_names(files: Any) -> tuple[int, int]:
    """(count, bytes) of regular files whose (dev, inode) appeared before under another name."""
    repeats = files.filter(pl.struct("dev", "inode").is_duplicated() & ~pl.struct("dev", "inode").is_first_distinct())
    return repeats.height, int(repeats["size"].sum())


def sha256_table(root: str, workdir: Path, smoke: bool) -> Table:
    table = Table(f"scan_tree sha256 over {'a generated tree' if smoke else root}", item_unit="files")
    repeats = 1 if smoke else FULL_REPEATS
    unreadable: set[bytes] = set()
    cpu: dict[str, float] = {}
    first = _frame_row(
        table, split_cpu(best_of(repeats, lambda: measure_python("secmon", f"{MODULE}:secmon_scan_cpu", root, "sha256")), cpu), unreadable
    )
    files = first.filter(first["type"] == "file")
    table.items_processed = files.height
    table.bytes_processed = int(files["size"].sum())
    table.add(
        best_of(
            repeats,
            lambda: measure_command(
                "find + xargs -0 -P2 sha256sum",
                f"find {root} -type f -print0 | xargs -0 -P2 sha256sum",
                shell=True,
                answer_from=parse_sum_output,
            ),
        )
    )
    table.add(split_cpu(best_of(repeats, lambda: measure_python("python os.walk + hashlib", f"{MODULE}:python_loop_cpu", root, "sha256")), cpu))
    previous = workdir / "previous.parquet"
    first.write_parquet(previous)
    rescan_name = "secmon re-scan (previous, nothing changed)"
    rescan = best_of(repeats, lambda: measure_python(rescan_name, f"{MODULE}:secmon_rescan_cpu", root, "sha256", str(previous)))
    _frame_row(table, split_cpu(rescan, cpu), unreadable)
    excepted = assert_same_files(table, unreadable)
    linked = hard_link_names(files)
    table.notes.append(
        f"{linked[0]:,} files ({linked[1] / 1e9:.2f} GB) are further names of an inode already met (hard links): "
        "secmon reads each inode once, the other contenders read every name."
    )
    table.notes.append(cpu_note(cpu))
    table.notes.append(
        f"{cores_note()}, best of {repeats} run(s) each, {load_note()}; {table.items_processed:,} regular files, {table.bytes_processed / 1e9:.2f} GB; "
        f"{len(excepted)} files excepted from the agreement check (unreadable to a contender). "
        f"Targets: secmon >= 5x find|xargs ({table.ratio('find + xargs -0 -P2 sha256sum'):.1f}x), "
        f">= 5x the Python loop ({table.ratio('python os.walk + hashlib'):.1f}x), re-scan >= 10x the first scan "
        f"({1 / table.ratio('secmon re-scan (previous, nothing changed)'):.1f}x)."
    )
    return table


def blake3_table(root: str, smoke: bool) -> Table:
    table = Table(f"scan_tree blake3 over {'a generated tree' if smoke else root}", item_unit="files")
    repeats = 1 if smoke else FULL_REPEATS
    unreadable: set[bytes] = set()
    first = _frame_row(table, best_of(repeats, lambda: measure_python("secmon", f"{MODULE}:secmon_scan", root, "blake3")), unreadable)
    files = first.filter(first["type"] == "file")
    table.items_processed = files.height
    table.bytes_processed = int(files["size"].sum())
    if shutil.which("b3sum") is None:
        table.notes.append("b3sum is not installed (Debian package b3sum): its row is skipped.")
        return table
    table.add(
        best_of(
            repeats,
            lambda: measure_command(
                "find + xargs -0 -P2 b3sum",
                f"find {root} -type f -print0 | xargs -0 -P2 b3sum",
                shell=True,
                answer_from=parse_sum_output,
            ),
        )
    )
    # b3sum prints non-UTF-8 names lossily (no escape), so this table compares lossy paths.
    for i, row in enumerate(table.rows):
        table.rows[i] = Measurement(row.name, row.seconds, row.peak_rss_bytes, {lossy(p): d for p, d in row.answer.items()})
    assert_same_files(table, {lossy(p) for p in unreadable})
    table.notes.append(f"{cores_note()}, best of {repeats} run(s) each, {load_note()}.")
    table.notes.append(f"Target: secmon blake3 no slower than b3sum ({table.ratio('find + xargs -0 -P2 b3sum'):.1f}x).")
    return table
