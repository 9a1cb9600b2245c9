"""Path globs for FIM excludes and per-path rules.

One translation from glob to regular expression, used by the walker twin, the config rules and the
diff, so "what does this pattern match" has one answer:

- ``*`` matches within one path segment, ``**`` matches across segments (``/a/**`` matches every
  path under ``/a``), ``?`` one character, ``[...]`` a character class.
- A pattern without ``/`` matches the last path component (``*.swp`` excludes swap files anywhere);
  a pattern with ``/`` matches the whole path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from functools import lru_cache


_REGEX_META = frozenset("\\.^$*+?()[]{}|")


def _class_body(body: str) -> str:
    """A glob class body (``a-z0-9_``) as a regex class body: its ranges kept, every other
    character escaped where either regex dialect treats it specially inside a class (Rust: nested
    classes and the ``&& ~~ --`` set operators; Python warns on ``-- || && ~~``). A ``-`` that is
    not between two characters is a literal, as in ``fnmatch``."""
    out: list[str] = []
    k = 0
    while k < len(body):
        if k + 2 < len(body) and body[k + 1] == "-":
            out.append(_class_char(body[k]) + "-" + _class_char(body[k + 2]))
            k += 3
        else:
            out.append(_class_char(body[k]))
            k += 1
    return "".join(out)


def _class_char(ch: str) -> str:
    return "\\" + ch if ch in "\\[]&~^-|" else ch


def _escape(ch: str) -> str:
    # Escape only true metacharacters: the regex also runs in Polars (Rust regex), which rejects
    # some of the escapes Python's re.escape emits.
    return "\\" + ch if ch in _REGEX_META else ch


@lru_cache(maxsize=1024)
def glob_to_regex(pattern: str) -> str:
    """Translate one glob into an anchored regular expression over a whole path (or basename)."""
    if "/" not in pattern:
        # A basename has no "/" to cross: "**" there means what "*" means.
        pattern = re.sub(r"\*{2,}", "*", pattern)
    out: list[str] = []
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if pattern.startswith("**", i):
                i += 2
                if i < n and pattern[i] == "/":
                    # "/**/" also matches "/": a/**/b matches a/b.
                    out.append("(?:.*/)?")
                    i += 1
                else:
                    out.append(".*")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "[":
            end = pattern.find("]", i + 2 if pattern.startswith("[!", i) or pattern.startswith("[^", i) else i + 1)
            if end == -1 or end == i + 1:
                out.append(_escape(ch))  # no class here: a literal "["
            else:
                body = pattern[i + 1 : end]
                if body.startswith("!"):
                    body = "^" + body[1:]
                negate = body.startswith("^")
                if negate:
                    body = body[1:]
                body = _class_body(body)
                # A negated class never matches "/": like "*", it stays within one path segment.
                cls = "[^/" + body + "]" if negate else "[" + body + "]"
                try:
                    re.compile(cls)
                except re.error as exc:
                    raise ValueError(f"glob {pattern!r} has an invalid character class {pattern[i:end + 1]!r}: {exc.msg}") from None
                out.append(cls)
                i = end
        else:
            out.append(_escape(ch))
        i += 1
    return "^" + "".join(out) + "$"


def matches_whole_path(pattern: str) -> bool:
    return "/" in pattern


def glob_matches(pattern: str, path: str) -> bool:
    """Whether ``pattern`` matches ``path`` (basename patterns match the last component)."""
    subject = path if matches_whole_path(pattern) else path.rsplit("/", 1)[-1]
    return re.match(glob_to_regex(pattern), subject, re.DOTALL) is not None


class ExcludeMatcher:
    """A set of exclude globs compiled into two regexes (whole-path and basename)."""

    def __init__(self, patterns: Sequence[str]) -> None:
        self.patterns = list(patterns)
        whole = [glob_to_regex(p) for p in patterns if matches_whole_path(p)]
        base = [glob_to_regex(p) for p in patterns if not matches_whole_path(p)]
        self._whole = re.compile("|".join(f"(?:{r})" for r in whole), re.DOTALL) if whole else None
        self._base = re.compile("|".join(f"(?:{r})" for r in base), re.DOTALL) if base else None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def excluded(self, path: str | bytes) -> bool:
        text = os.fsdecode(path) if isinstance(path, bytes) else path
        if self._whole is not None and self._whole.match(text):
            return True
        if self._base is not None and self._base.match(text.rsplit("/", 1)[-1]):
            return True
        return False
