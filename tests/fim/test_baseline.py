"""Baseline storage: round trip, and tampered/truncated/foreign files reported, never trusted."""

from __future__ import annotations

from pathlib import Path

import pytest

from secmon.fim import Baseline, BaselineIntegrityError, FimError, create_baseline, parse_config


@pytest.fixture()
def baseline(tmp_path: Path) -> Baseline:
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    (tree / "d" / "f").write_text("content")
    result, _ = create_baseline(parse_config({"paths": [str(tree)], "exclude": ["*.tmp"], "rules": [{"match": "**/d", "attributes": "permissions"}]}))
    return result


def test_round_trip_keeps_entries_and_settings(tmp_path: Path, baseline: Baseline) -> None:
    baseline.save(tmp_path / "db")
    loaded = Baseline.load(tmp_path / "db")
    assert loaded.frame.equals(baseline.frame)
    assert (loaded.algo, loaded.paths, loaded.excludes, loaded.policy) == (baseline.algo, baseline.paths, baseline.excludes, baseline.policy)


def test_hmac_round_trip_and_wrong_key(tmp_path: Path, baseline: Baseline) -> None:
    baseline.save(tmp_path / "db", key=b"secret")
    assert Baseline.load(tmp_path / "db", key=b"secret").frame.equals(baseline.frame)
    with pytest.raises(BaselineIntegrityError, match="HMAC mismatch"):
        Baseline.load(tmp_path / "db", key=b"other")
    with pytest.raises(BaselineIntegrityError, match="signed with HMAC-SHA256; pass the same --key-file"):
        Baseline.load(tmp_path / "db")


def test_key_given_for_unsigned_baseline_is_refused(tmp_path: Path, baseline: Baseline) -> None:
    baseline.save(tmp_path / "db")
    with pytest.raises(BaselineIntegrityError, match="carries no HMAC"):
        Baseline.load(tmp_path / "db", key=b"secret")


@pytest.mark.parametrize("offset", [60, 200, -10])
def test_flipped_byte_anywhere_fails_the_check(tmp_path: Path, baseline: Baseline, offset: int) -> None:
    db = tmp_path / "db"
    baseline.save(db)
    data = bytearray(db.read_bytes())
    data[offset] ^= 0x01
    db.write_bytes(bytes(data))
    with pytest.raises(BaselineIntegrityError, match=f"baseline {db} failed its integrity check: digest mismatch"):
        Baseline.load(db)


def test_truncated_baseline_says_truncated(tmp_path: Path, baseline: Baseline) -> None:
    db = tmp_path / "db"
    baseline.save(db)
    db.write_bytes(db.read_bytes()[:-50])
    with pytest.raises(BaselineIntegrityError, match="truncated: the header records"):
        Baseline.load(db)


def test_rewritten_header_is_caught(tmp_path: Path, baseline: Baseline) -> None:
    # Widening the excludes to hide a directory must not go unnoticed.
    db = tmp_path / "db"
    baseline.save(db)
    data = db.read_bytes().replace(b'"excludes": ["*.tmp"]', b'"excludes": ["*.tmX"]')
    db.write_bytes(data)
    with pytest.raises(BaselineIntegrityError, match="digest mismatch"):
        Baseline.load(db)


def test_foreign_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "other").write_bytes(b"SQLite format 3\x00...")
    with pytest.raises(BaselineIntegrityError, match="not a secmon FIM baseline"):
        Baseline.load(tmp_path / "other")
    with pytest.raises(FimError, match="does not exist; create it with"):
        Baseline.load(tmp_path / "absent")
