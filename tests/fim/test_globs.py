"""Globs: the Polars (Rust regex) pruning against the plain Python matcher on random globs and paths."""

from __future__ import annotations

import polars as pl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from secmon.fim.config import parse_config
from secmon.fim.errors import FimConfigError
from secmon.fim.globs import ExcludeMatcher, glob_matches, glob_to_regex
from secmon.fim.scan import prune_excluded

SEGMENT = st.text(alphabet="ab.-_ é[]*?!^&~\\{}()+$|", min_size=1, max_size=4).filter(lambda s: s not in (".", ".."))
PATHS = st.lists(SEGMENT, min_size=1, max_size=4).map(lambda parts: "/" + "/".join(parts))
GLOB_PART = st.one_of(st.sampled_from(["*", "**", "?", "[ab]", "[!a]", "[", "]", "a", "b", ".", "é", "&&", "~~", "\\", "^", "$", "(", "+"]), SEGMENT)
GLOBS = st.one_of(
    st.lists(GLOB_PART, min_size=1, max_size=4).map("".join),  # basename patterns
    st.lists(st.lists(GLOB_PART, min_size=1, max_size=3).map("".join), min_size=1, max_size=3).map(lambda p: "/" + "/".join(p)),
)


def _valid(glob: str) -> bool:
    try:
        glob_to_regex(glob)
    except ValueError:
        return False
    return True


def test_invalid_class_is_a_clear_error() -> None:
    with pytest.raises(ValueError, match=r"glob '/\[z-a\]' has an invalid character class '\[z-a\]': bad character range z-a"):
        glob_to_regex("/[z-a]")
    with pytest.raises(FimConfigError, match=r"exclude.0: glob '\[z-a\]' has an invalid character class"):
        parse_config({"exclude": ["[z-a]"]}, "fim.yaml")


def _excluded_slow(path: str, matcher: ExcludeMatcher) -> bool:
    """An entry is excluded when it, or any directory above it, matches."""
    parts = path.split("/")
    return any(matcher.excluded("/".join(parts[:i]) or "/") for i in range(2, len(parts) + 1))


@settings(max_examples=300, deadline=None)
@given(globs=st.lists(GLOBS, min_size=1, max_size=3), paths=st.lists(PATHS, min_size=1, max_size=8, unique=True))
def test_polars_pruning_equals_python_matcher(globs: list[str], paths: list[str]) -> None:
    assume(all(_valid(g) for g in globs))
    frame = pl.DataFrame({"path": paths})
    kept = set(prune_excluded(frame, globs)["path"].to_list())
    matcher = ExcludeMatcher(globs)
    assert kept == {p for p in paths if not _excluded_slow(p, matcher)}


@settings(max_examples=300, deadline=None)
@given(glob=GLOBS, path=PATHS)
def test_glob_matches_equals_matcher(glob: str, path: str) -> None:
    assume(_valid(glob))
    assert glob_matches(glob, path) == ExcludeMatcher([glob]).excluded(path)


@pytest.mark.parametrize("pattern", ["[--]", "[---]", "[a-]", "[-a]", "[!-]", "[||]", "[&&]", "[~~]", "[a-c|]", "[\\]"])
def test_class_operators_are_literals_without_warnings(pattern: str) -> None:
    """Characters regex engines read as class set operators (``-- || && ~~``) are literals in a
    glob class; the translation matches what ``fnmatch`` matches and compiles without Python's
    FutureWarning or a Rust regex error."""
    import fnmatch
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        regex = glob_to_regex(pattern)
        names = list("-[a|&~bcx\\")
        assert [n for n in names if glob_matches(pattern, n)] == [n for n in names if fnmatch.fnmatchcase(n, pattern)]
    series = pl.Series(names)
    assert series.filter(series.str.contains(regex)).to_list() == [n for n in names if fnmatch.fnmatchcase(n, pattern)]
