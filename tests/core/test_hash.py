"""secmon.hash_bytes / hash_file against published vectors and their slow twins (hashlib, blake3, xxhash)."""

from __future__ import annotations

import hashlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path

import blake3
import pytest
import xxhash
from hypothesis import given, settings
from hypothesis import strategies as st

import secmon
from secmon import hash_bytes, hash_file

ALGOS = ["sha256", "blake3", "xxh3_128", "sha1", "md5"]
BUFFER_SIZE = 256 * 1024  # rust_core/src/hash.rs BUFFER_SIZE
BLAKE3_PARALLEL_MIN = 4 * 1024 * 1024  # rust_core/src/hash.rs BLAKE3_PARALLEL_MIN


def twin(algo: str, data: bytes) -> str:
    """The slow, obvious digest of ``data``."""
    if algo == "blake3":
        return blake3.blake3(data).hexdigest()
    if algo == "xxh3_128":
        return xxhash.xxh3_128_hexdigest(data)
    return hashlib.new(algo, data).hexdigest()


def blake3_input(n: int) -> bytes:
    """The input of BLAKE3's test_vectors.json: bytes 0, 1, ..., 250, 0, 1, ..."""
    return bytes(i % 251 for i in range(n))


# (algo, input, digest): NIST FIPS 180 examples, RFC 1321, BLAKE3's test_vectors.json, xxHash's
# empty-input XXH128.
VECTORS: list[tuple[str, bytes, str]] = [
    ("sha256", b"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"),
    ("sha256", b"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    (
        "sha256",
        b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1",
    ),
    ("sha256", b"a" * 1_000_000, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"),
    ("sha1", b"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"),
    ("sha1", b"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"),
    ("sha1", b"a" * 1_000_000, "34aa973cd4c4daa4f61eeb2bdbad27316534016f"),
    ("md5", b"abc", "900150983cd24fb0d6963f7d28e17f72"),
    ("md5", b"", "d41d8cd98f00b204e9800998ecf8427e"),
    ("md5", b"message digest", "f96b697d7cb7938d525a2f31aaf161d0"),
    ("blake3", blake3_input(0), "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
    ("blake3", blake3_input(1), "2d3adedff11b61f14c886e35afa036736dcd87a74d27b5c1510225d0f592e213"),
    ("blake3", blake3_input(1023), "10108970eeda3eb932baac1428c7a2163b0e924c9a9e25b35bba72b28f70bd11"),
    ("blake3", blake3_input(1024), "42214739f095a406f3fc83deb889744ac00df831c10daa55189b5d121c855af7"),
    ("blake3", blake3_input(1025), "d00278ae47eb27b34faecf67b4fe263f82d5412916c1ffd97c8cb7fb814b8444"),
    ("blake3", blake3_input(2048), "e776b6028c7cd22a4d0ba182a8bf62205d2ef576467e838ed6f2529b85fba24a"),
    ("xxh3_128", b"", "99aa06d3014798d86001c324468d497f"),
]


@pytest.mark.parametrize(("algo", "data", "want"), VECTORS, ids=[f"{a}-{len(d)}" for a, d, _ in VECTORS])
def test_published_vectors(algo: str, data: bytes, want: str, tmp_path: Path) -> None:
    assert hash_bytes(data, algo) == want
    path = tmp_path / "input"
    path.write_bytes(data)
    assert hash_file(path, algo) == want


@pytest.mark.parametrize("algo", ALGOS)
@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=5000))
def test_hash_bytes_equals_twin(algo: str, data: bytes) -> None:
    assert hash_bytes(data, algo) == twin(algo, data)


@pytest.mark.parametrize("algo", ALGOS)
@given(st.lists(st.binary(max_size=300), max_size=5), st.booleans())
def test_hash_bytes_of_parts_is_the_digest_of_their_concatenation(algo: str, parts: list[bytes], as_tuple: bool) -> None:
    joined = b"".join(parts)
    mixed = [memoryview(p) if i % 2 else bytearray(p) for i, p in enumerate(parts)]
    assert hash_bytes(tuple(mixed) if as_tuple else mixed, algo) == twin(algo, joined)


def test_hash_bytes_of_parts_detaches_on_large_input_and_refuses_non_buffers() -> None:
    big = [b"a" * 70_000, b"", b"b" * 3]
    assert hash_bytes(big, "sha256") == twin("sha256", b"".join(big))
    with pytest.raises(TypeError):
        hash_bytes([b"ok", 5], "sha256")  # type: ignore[list-item]


@pytest.mark.parametrize("algo", ALGOS)
@settings(max_examples=15, deadline=None)
@given(
    size=st.sampled_from([0, 1, 63, 64, 65, 1023, 1024, 1025, BUFFER_SIZE - 1, BUFFER_SIZE, BUFFER_SIZE + 1, 3 * BUFFER_SIZE + 7]),
    seed=st.integers(0, 255),
)
def test_hash_file_equals_twin_at_buffer_edges(algo: str, size: int, seed: int, tmp_path_factory: pytest.TempPathFactory) -> None:
    data = bytes((i * 131 + seed) % 256 for i in range(size))
    path = tmp_path_factory.mktemp("edges") / "f"
    path.write_bytes(data)
    assert hash_file(path, algo) == twin(algo, data)
    assert hash_file(str(path), algo) == hash_bytes(data, algo)


@pytest.mark.parametrize("algo", ALGOS)
def test_blake3_parallel_path_size_agrees(algo: str, tmp_path: Path) -> None:
    # Past BLAKE3_PARALLEL_MIN blake3 hashes chunk by chunk across threads; every algorithm gets the
    # same input so a mix-up between paths shows.
    data = os.urandom(BLAKE3_PARALLEL_MIN + 12345)
    path = tmp_path / "big"
    path.write_bytes(data)
    assert hash_file(path, algo) == twin(algo, data) == hash_bytes(data, algo)


def test_every_buffer_kind_is_accepted() -> None:
    data = b"secmon" * 1000
    want = hashlib.sha256(data).hexdigest()
    assert hash_bytes(bytearray(data), "sha256") == want
    assert hash_bytes(memoryview(data), "sha256") == want
    import array

    ints = array.array("I", range(100))
    assert hash_bytes(ints, "md5") == hashlib.md5(ints).hexdigest()


def test_non_contiguous_buffer_is_refused() -> None:
    view = memoryview(b"abcdef")[::2]
    with pytest.raises(BufferError, match="C-contiguous"):
        hash_bytes(view, "sha256")


def test_str_is_refused_like_hashlib() -> None:
    with pytest.raises(TypeError):
        hash_bytes("abc", "sha256")  # type: ignore[arg-type]


@pytest.mark.parametrize("call", [lambda a: hash_bytes(b"x", a), lambda a: hash_file(__file__, a)])
@pytest.mark.parametrize("bad", ["SHA256", "sha3_256", "", "md4"])
def test_unknown_algorithm_lists_valid_names(call: Callable[[str], str], bad: str) -> None:
    with pytest.raises(ValueError) as info:
        call(bad)
    message = str(info.value)
    assert repr(bad).replace("'", '"') in message
    for name in ALGOS:
        assert name in message


def test_missing_file_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "no-such-file"
    with pytest.raises(FileNotFoundError) as info:
        hash_file(missing, "sha256")
    assert info.value.filename == str(missing)


def test_directory_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError):
        hash_file(tmp_path, "sha256")


def test_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    started = time.perf_counter()
    with pytest.raises(OSError, match="fifo"):
        hash_file(fifo, "sha256")
    assert time.perf_counter() - started < 5


def test_non_utf8_path(tmp_path: Path) -> None:
    raw = os.fsencode(tmp_path) + b"/caf\xe9"
    with open(raw, "wb") as fh:
        fh.write(b"abc")
    assert hash_file(raw, "sha1") == "a9993e364706816aba3e25717850c26c9cd0d89d"


def test_unreadable_file_is_permission_error() -> None:
    # Root's DAC override reads any mode; run the call as nobody in a child process, in a
    # directory nobody can reach (pytest's tmp_path sits below a 0700 directory).
    import shutil
    import subprocess
    import sys
    import tempfile

    reachable = Path(tempfile.mkdtemp(prefix="secmon-hash-"))
    reachable.chmod(0o755)
    path = reachable / "secret"
    path.write_bytes(b"x")
    path.chmod(0o000)
    probe = reachable / "public"
    probe.write_bytes(b"abc")
    code = (
        "import os, sys\n"
        # Import before dropping privileges: the interpreter's own files may be root-only.
        "from secmon import hash_file\n"
        "if os.getuid() == 0: os.setgid(65534); os.setuid(65534)\n"
        "print(hash_file(sys.argv[2], 'md5'))\n"
        "try:\n"
        "    hash_file(sys.argv[1], 'sha256')\n"
        "except PermissionError as e:\n"
        "    print('PermissionError', e.filename)\n"
    )
    try:
        proc = subprocess.run([sys.executable, "-c", code, str(path), str(probe)], capture_output=True, text=True, timeout=60)
    finally:
        shutil.rmtree(reachable)
    # The readable file next to it proves the child could reach the directory at all.
    assert proc.stdout.split("\n")[:2] == ["900150983cd24fb0d6963f7d28e17f72", f"PermissionError {path}"], proc.stderr


def test_gil_is_released_while_hashing(tmp_path: Path) -> None:
    # A Python thread keeps counting while a large hash runs; with the GIL held it would stall.
    data = os.urandom(64 * 1024 * 1024)
    ticks = 0
    stop = threading.Event()

    def count() -> None:
        nonlocal ticks
        while not stop.is_set():
            ticks += 1
            time.sleep(0.001)

    thread = threading.Thread(target=count)
    thread.start()
    try:
        started = time.perf_counter()
        while time.perf_counter() - started < 0.5:
            hash_bytes(data, "sha1")
    finally:
        stop.set()
        thread.join()
    assert ticks > 25


def test_reexported_from_package() -> None:
    assert "hash_bytes" in secmon.__all__ and "hash_file" in secmon.__all__
    assert secmon.hash_bytes is secmon._core.hash_bytes


@pytest.mark.slow
@pytest.mark.parametrize("algo", ALGOS)
def test_sparse_file_of_300_mb(algo: str, tmp_path: Path) -> None:
    size = 300 * 1024 * 1024 + 5
    path = tmp_path / "sparse"
    with open(path, "wb") as fh:
        fh.truncate(size)
        fh.seek(size // 2)
        fh.write(b"middle")
    streamed = {"sha256": hashlib.sha256, "sha1": hashlib.sha1, "md5": hashlib.md5}
    if algo in streamed:
        with open(path, "rb") as fh:
            want = hashlib.file_digest(fh, streamed[algo]).hexdigest()
    elif algo == "blake3":
        want = blake3.blake3(path.read_bytes()).hexdigest()
    else:
        want = xxhash.xxh3_128_hexdigest(path.read_bytes())
    assert hash_file(path, algo) == want
