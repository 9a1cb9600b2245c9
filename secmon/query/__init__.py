"""Datadog's log search syntax: parse a query, compile it to Polars, derive prefilter literals.

Public API: :func:`parse`, :func:`to_query`, :func:`compile_polars`, :func:`attribute_paths`,
:func:`prefilter_literals`, :func:`evaluate` (the slow twin of ``compile_polars``) and the AST nodes.

Semantics (where Datadog leaves room, the choice made here):

* **Free text** (``hello``, ``"hello world"``, ``hel*o``) searches ``message`` only, case-insensitively
  (Unicode lower-casing of both sides). A bare word is a substring of the message (Datadog matches whole
  tokens; a substring is a superset). A quoted sequence is its words, in order, separated in the message
  by any run of separators (ASCII characters that are not letters or digits): ``"hello world"`` matches
  ``Hello, world`` and ``hello-world``, as Datadog documents. Wildcards in free text match anywhere in
  the message (``*`` and ``?`` also cross word boundaries and newlines).
* **Attributes** ``@a.b:value`` and the reserved ``host source service status message timestamp tags``
  (written without ``@``) match the whole value, case-sensitively. Any other ``key:value`` without ``@`` is
  a **tag** search: some tag equals ``key:value`` (with wildcards, the part after ``key:`` matches; ranges
  and comparisons read that part as a number; ``key:*`` means some tag starts with ``key:``).
* ``status:`` with a known status name matches every spelling of that status, case-insensitively
  (``status:warn`` finds ``warning``, ``WARN``): ingest normalises statuses as Datadog's status remapper
  does (``warn`` -> ``warning``), while queries are written with either name. Wildcards, ranges and
  unknown names compare the stored value as any attribute does.
* Values: ``*`` any run (possibly empty), ``?`` one character, both literal when escaped with ``\\`` or
  inside quotes. ``\\`` makes any next character literal (``@http.url:\\/api\\/v1*``). ``field:*`` is
  existence: the attribute is present and not null (an array needs one non-null item). Unescaped curly
  quotes are an error (Datadog silently ignores them, which changes a phrase into separate words).
* **Arrays** match when any item matches; ``-@a:x`` is true for ``["y"]`` and for a missing ``@a``.
* Numbers: ``[400 TO 499]`` (``{}`` exclusive, ``*`` open), ``>100 >=100 <100 <=100`` compare numerically;
  a value that is not written as a JSON number (``-?digits[.digits][e±digits]``) never matches them.
  ``@code:404`` is an exact string match on the stored text ``"404"``.
* ``CIDR(@network.client.ip, 10.0.0.0/8, ::1/128)``: the value parses as an IPv4/IPv6 address inside one
  of the networks (host bits of a network are ignored: ``10.0.0.1/8`` is ``10.0.0.0/8``); an IPv4-mapped
  IPv6 address is not in an IPv4 network.
* Operators are upper case: ``AND``/``&&``, ``OR``/``||``, ``NOT``, and ``-``/``!`` glued to a term;
  precedence NOT > AND > OR; juxtaposition is AND. ``field:(a OR b)`` applies the field to each value.
  The empty query and ``*`` match everything. Full-text ``*:term`` is not supported (syntax error).
  Parentheses and negations nest at most 64 deep.
"""

from secmon.query.ast import (
    And,
    Cidr,
    Compare,
    Exists,
    Field,
    MatchAll,
    Not,
    Or,
    Query,
    Range,
    Term,
    to_query,
)
from secmon.query.polars_expr import attribute_paths, compile_polars
from secmon.query.reference import evaluate
from secmon.query.literals import prefilter_literals
from secmon.query.parser import parse

__all__ = [
    "And",
    "Cidr",
    "Compare",
    "Exists",
    "Field",
    "MatchAll",
    "Not",
    "Or",
    "Query",
    "Range",
    "Term",
    "attribute_paths",
    "compile_polars",
    "evaluate",
    "parse",
    "prefilter_literals",
    "to_query",
]
