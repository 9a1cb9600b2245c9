"""The exceptions secmon raises for user errors.

Every domain error subclasses :class:`SecmonError`, so callers (and the CLI, which turns them into
a clear message and exit code 2) can catch one type. I/O problems stay the builtin ``OSError``
family (``FileNotFoundError``, ``PermissionError``).
"""

from __future__ import annotations


class SecmonError(Exception):
    """Base class of every secmon error meant for a user, not a developer."""


class QuerySyntaxError(SecmonError, ValueError):
    """A log-search query that does not parse; carries the position and what was expected."""

    def __init__(self, query: str, position: int, expected: str, found: str | None = None) -> None:
        self.query = query
        self.position = position
        self.expected = expected
        self.found = found
        got = "end of query" if found is None else repr(found)
        pointer = f"\n  {query}\n  {' ' * position}^"
        super().__init__(f"query syntax error at position {position}: expected {expected}, found {got}{pointer}")


class RuleError(SecmonError):
    """One problem in one rule: file, field path, bad value and what was expected."""

    def __init__(self, file: str, field: str, reason: str, value: object = None, line: int | None = None) -> None:
        self.file = file
        self.field = field
        self.reason = reason
        self.value = value
        self.line = line
        where = f"{file}:{line}" if line is not None else file
        shown = "" if value is None else f" (got {value!r})"
        super().__init__(f"{where}: {field}: {reason}{shown}")


class RuleSetError(SecmonError):
    """Every error of a rule set, collected in one pass (lint mode)."""

    def __init__(self, errors: list[RuleError]) -> None:
        self.errors = errors
        lines = "\n".join(f"  {e}" for e in errors)
        super().__init__(f"{len(errors)} rule error(s):\n{lines}")


class InputError(SecmonError):
    """An input that cannot be read at all (not a file, unknown format, ...)."""


class ParserConfigError(SecmonError):
    """A user-defined parser file that is invalid."""


class UnknownNameError(SecmonError, KeyError):
    """A name looked up in a registry (rule id, format, algorithm) that does not exist; lists the valid ones."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""
