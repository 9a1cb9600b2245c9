"""Evaluate checks over resources: Polars over all resources at once, and its plain Python twin.

:func:`evaluate` groups resources by kind, builds one typed fact frame per kind (plus child
frames for list scopes) and evaluates every check of that kind as a handful of column
operations over all resources together. :func:`evaluate_slow` walks each resource document
with the same condition semantics, one resource at a time; tests compare the two on random
and adversarial manifests, status and evidence alike.

One result row per (check, resource): ``status`` is ``pass``, ``fail``, ``not_applicable`` (the
check's ``when`` does not hold) or ``manual``; ``evidence`` shows the observed values.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from functools import reduce
from typing import Any

import polars as pl

from secmon.compliance.checks import Check
from secmon.compliance.conditions import (
    NEGATIVE_OPS,
    AllOf,
    AnyOf,
    Condition,
    Leaf,
    Not,
    Quantified,
    Schema,
    coerce,
    render,
)
from secmon.compliance.facts import POLARS_TYPES, Resource, ScopeFrame, build_scope, elements, lookup

RESULT_SCHEMA: dict[str, pl.DataType] = {
    "check_id": pl.String(),
    "title": pl.String(),
    "section": pl.String(),
    "severity": pl.String(),
    "status": pl.String(),
    "resource_kind": pl.String(),
    "resource": pl.String(),
    "file": pl.String(),
    "line": pl.Int64(),
    "location": pl.String(),
    "evidence": pl.String(),
}

STATUSES = ("pass", "fail", "not_applicable", "manual")
SEVERITY_ORDER = {"info": 0, "low": 1, "medium": 2, "high": 3, "critical": 4}
EVIDENCE_SEP = "; "


# ---------------------------------------------------------------------------------------------
# Fast path: Polars.


def _leaf_expr(leaf: Leaf) -> pl.Expr:
    x = pl.col(leaf.column)
    if leaf.default is not None:
        x = x.fill_null(pl.lit(leaf.default, dtype=POLARS_TYPES[leaf.dtype]))
    op, v = leaf.op, leaf.value
    if op == "eq":
        e = x == v
    elif op == "ne":
        e = x != v
    elif op == "in":
        e = x.is_in(list(v))
    elif op == "not_in":
        e = ~x.is_in(list(v))
    elif op == "lt":
        e = x < v
    elif op == "le":
        e = x <= v
    elif op == "gt":
        e = x > v
    elif op == "ge":
        e = x >= v
    elif op == "matches":
        e = x.str.contains(v)
    elif op == "not_matches":
        e = ~x.str.contains(v)
    elif op == "exists":
        e = x.is_not_null()
    elif op == "missing":
        e = x.is_null()
    elif op == "has":
        e = x.list.contains(pl.lit(v))
    elif op == "lacks":
        e = ~x.list.contains(pl.lit(v))
    elif op == "subset_of":
        e = x.list.eval(pl.element().is_in(list(v))).list.all()
    elif op == "intersects":
        e = x.list.eval(pl.element().is_in(list(v))).list.any()
    elif op == "disjoint":
        e = ~x.list.eval(pl.element().is_in(list(v))).list.any()
    elif op == "empty":
        e = x.list.len() == 0
    elif op == "nonempty":
        e = x.list.len() > 0
    elif op == "mode_within":
        e = (x & (0o7777 ^ v)) == 0
    else:  # pragma: no cover - the parser rejects unknown operators
        raise AssertionError(op)
    return e.fill_null(op in NEGATIVE_OPS)


def _render_expr(leaf: Leaf) -> pl.Expr:
    x = pl.col(leaf.column)
    if leaf.dtype == "bool":
        shown = pl.when(x).then(pl.lit("true")).otherwise(pl.lit("false"))
    elif leaf.dtype == "num":
        integral = (x == x.floor()) & (x.abs() < 2**53)
        shown = pl.when(integral).then(x.cast(pl.Int64, strict=False).cast(pl.String)).otherwise(x.cast(pl.String))
    elif leaf.dtype == "int":
        shown = x.cast(pl.String)
    elif leaf.dtype == "strlist":
        shown = pl.concat_str([pl.lit("["), x.list.join(", "), pl.lit("]")])
    else:
        shown = x
    shown = pl.when(x.is_null()).then(pl.lit("<absent>")).otherwise(shown)
    return pl.concat_str([pl.lit(f"{leaf.fact_text}="), shown])


def _join_where(oks: list[pl.Series], evs: list[pl.Series], keep: list[pl.Series]) -> pl.Series:
    """Per row, the evidence of the items whose ``keep`` flag is set, joined."""
    frame = pl.DataFrame(
        {f"k{i}": k for i, k in enumerate(keep)} | {f"e{i}": e for i, e in enumerate(evs)}
    )
    return frame.select(
        pl.concat_str(
            [pl.when(pl.col(f"k{i}")).then(pl.col(f"e{i}")) for i in range(len(evs))],
            separator=EVIDENCE_SEP,
            ignore_nulls=True,
        ).alias("evidence")
    ).to_series()


def eval_fast(cond: Condition, sf: ScopeFrame) -> tuple[pl.Series, pl.Series]:
    """(pass flags, evidence) for every row of ``sf``; neither has nulls."""
    if isinstance(cond, Leaf):
        out = sf.frame.select(_leaf_expr(cond).alias("ok"), _render_expr(cond).alias("ev"))
        return out["ok"], out["ev"]
    if isinstance(cond, Not):
        ok, ev = eval_fast(cond.item, sf)
        return ~ok, ev
    if isinstance(cond, AllOf | AnyOf):
        parts = [eval_fast(item, sf) for item in cond.items]
        oks = [p[0] for p in parts]
        evs = [p[1] for p in parts]
        if isinstance(cond, AllOf):
            result = reduce(lambda a, b: a & b, oks)
            keep = [~ok | result for ok in oks]  # failing items explain a failure; all explain a pass
        else:
            result = reduce(lambda a, b: a | b, oks)
            keep = [ok | ~result for ok in oks]
        return result, _join_where(oks, evs, keep)
    return _eval_quantified_fast(cond, sf)


def _eval_quantified_fast(cond: Quantified, sf: ScopeFrame) -> tuple[pl.Series, pl.Series]:
    child = sf.children[cond.scope]
    ok, ev = eval_fast(cond.where, child)
    items = pl.DataFrame(
        {
            "p": child.frame["__parent"],
            "ok": ok,
            "ev": child.frame["__path"] + ": " + ev,
        }
    )
    if cond.quantifier == "for_all":
        flag = ~pl.col("ok")
        verdict = pl.col("ok").all()
    elif cond.quantifier == "for_any":
        flag = pl.col("ok")
        verdict = pl.col("ok").any()
    else:
        flag = pl.col("ok")
        verdict = ~pl.col("ok").any()
    grouped = items.group_by("p", maintain_order=True).agg(
        verdict.alias("res"),
        pl.when(flag.any())
        .then(pl.col("ev").filter(flag).str.join(EVIDENCE_SEP))
        .otherwise(pl.col("ev").str.join(EVIDENCE_SEP))
        .alias("ev"),
    )
    rows = pl.DataFrame({"p": pl.int_range(sf.height, eager=True, dtype=pl.Int64)})
    joined = rows.join(grouped, on="p", how="left", maintain_order="left")
    empty_result = cond.quantifier != "for_any"
    res = joined["res"].fill_null(empty_result)
    evidence = joined["ev"].fill_null(f"{cond.scope_text}=[]")
    return res, evidence


def kind_schema(checks: Sequence[Check], kind: str) -> Schema:
    """Every fact and scope the checks of one resource kind read."""
    schema = Schema.empty()
    for check in checks:
        if check.resource == kind:
            for cond in (check.select, check.when, check.condition):
                if cond is not None:
                    schema.add(cond)
    return schema


def resource_meta(kind: str, names: list[str], files: list[str], lines: list[int | None], locations: list[str]) -> pl.DataFrame:
    """The descriptive columns of result rows, one row per resource."""
    return pl.DataFrame(
        {
            "resource_kind": pl.Series([kind] * len(names), dtype=pl.String),
            "resource": pl.Series(names, dtype=pl.String),
            "file": pl.Series(files, dtype=pl.String),
            "line": pl.Series(lines, dtype=pl.Int64),
            "location": pl.Series(locations, dtype=pl.String),
        }
    )


def evaluate(
    checks: Sequence[Check], resources: Sequence[Resource], prebuilt: Mapping[str, tuple[ScopeFrame, pl.DataFrame]] | None = None
) -> pl.DataFrame:
    """One row per (check, selected resource), ordered by check then resource.

    ``prebuilt`` holds kinds whose fact frames (built from ``kind_schema``) and result metadata
    were made elsewhere (the native manifest reader); ``resources`` must not repeat them.
    """
    by_kind: dict[str, list[Resource]] = {}
    for resource in resources:
        by_kind.setdefault(resource.kind, []).append(resource)
    frames: list[pl.DataFrame] = []
    scopes: dict[str, tuple[ScopeFrame, pl.DataFrame]] = dict(prebuilt or {})
    for kind, members in by_kind.items():
        if kind in scopes:
            raise ValueError(f"resources of kind {kind!r} given both prebuilt and as documents")
        sf = build_scope([r.doc for r in members], [""] * len(members), kind_schema(checks, kind))
        meta = resource_meta(kind, [r.name for r in members], [r.file for r in members], [r.line for r in members],
                             [r.location for r in members])
        scopes[kind] = (sf, meta)
    for check in checks:
        if check.resource not in scopes:
            continue
        sf, meta = scopes[check.resource]
        n = sf.height
        if check.condition is None:
            status = pl.Series("status", ["manual"] * n)
            evidence = pl.Series("evidence", [""] * n)
        else:
            ok, ev = eval_fast(check.condition, sf)
            status = pl.Series("status", ["fail"] * n).scatter(ok.arg_true(), "pass") if n else pl.Series("status", [], pl.String)
            evidence = ev
            if check.when is not None:
                applies, when_ev = eval_fast(check.when, sf)
                status = pl.select(pl.when(pl.lit(applies)).then(pl.lit(status)).otherwise(pl.lit("not_applicable"))).to_series()
                evidence = pl.select(pl.when(pl.lit(applies)).then(pl.lit(ev)).otherwise(pl.lit(when_ev))).to_series()
        frame = meta.with_columns(
            pl.lit(check.id).alias("check_id"),
            pl.lit(check.title).alias("title"),
            pl.lit(check.section).alias("section"),
            pl.lit(check.severity).alias("severity"),
            status.alias("status"),
            evidence.cast(pl.String).alias("evidence"),
        )
        if check.select is not None:
            selected, _ = eval_fast(check.select, sf)
            frame = frame.filter(selected)
        frames.append(frame.select(list(RESULT_SCHEMA)))
    if not frames:
        return pl.DataFrame(schema=RESULT_SCHEMA)
    return pl.concat(frames, how="vertical")


# ---------------------------------------------------------------------------------------------
# Slow twin: one resource at a time, plain Python.


def _leaf_slow(leaf: Leaf, doc: Any) -> tuple[bool, str]:
    observed = coerce(lookup(doc, leaf.fact), leaf.dtype)
    evidence = f"{leaf.fact_text}={render(observed, leaf.dtype)}"
    x = observed if observed is not None else leaf.default
    if x is None:
        return leaf.op in NEGATIVE_OPS, evidence
    op, v = leaf.op, leaf.value
    result: bool
    if op == "eq":
        result = x == v
    elif op == "ne":
        result = x != v
    elif op == "in":
        result = x in v
    elif op == "not_in":
        result = x not in v
    elif op == "lt":
        result = x < v
    elif op == "le":
        result = x <= v
    elif op == "gt":
        result = x > v
    elif op == "ge":
        result = x >= v
    elif op == "matches":
        result = re.search(v, x) is not None
    elif op == "not_matches":
        result = re.search(v, x) is None
    elif op == "exists":
        result = True
    elif op == "missing":
        result = False
    elif op == "has":
        result = v in x
    elif op == "lacks":
        result = v not in x
    elif op == "subset_of":
        result = all(item in v for item in x)
    elif op == "intersects":
        result = any(item in v for item in x)
    elif op == "disjoint":
        result = not any(item in v for item in x)
    elif op == "empty":
        result = len(x) == 0
    elif op == "nonempty":
        result = len(x) > 0
    elif op == "mode_within":
        result = (x & ~v & 0o7777) == 0
    else:  # pragma: no cover
        raise AssertionError(op)
    return result, evidence


def eval_slow(cond: Condition, doc: Any, path: str = "") -> tuple[bool, str]:
    """(passes, evidence) of one condition on one document: the reference semantics."""
    if isinstance(cond, Leaf):
        return _leaf_slow(cond, doc)
    if isinstance(cond, Not):
        ok, ev = eval_slow(cond.item, doc, path)
        return not ok, ev
    if isinstance(cond, AllOf | AnyOf):
        parts = [eval_slow(item, doc, path) for item in cond.items]
        if isinstance(cond, AllOf):
            result = all(ok for ok, _ in parts)
            shown = [ev for ok, ev in parts if not ok or result]
        else:
            result = any(ok for ok, _ in parts)
            shown = [ev for ok, ev in parts if ok or not result]
        return result, EVIDENCE_SEP.join(shown)
    items = [(ok, f"{item_path}: {ev}") for item, item_path in elements(doc, cond.scope, path)
             for ok, ev in [eval_slow(cond.where, item, item_path)]]
    if not items:
        return cond.quantifier != "for_any", f"{cond.scope_text}=[]"
    if cond.quantifier == "for_all":
        flagged = [ev for ok, ev in items if not ok]
        result = not flagged
    elif cond.quantifier == "for_any":
        flagged = [ev for ok, ev in items if ok]
        result = bool(flagged)
    else:
        flagged = [ev for ok, ev in items if ok]
        result = not flagged
    return result, EVIDENCE_SEP.join(flagged or [ev for _, ev in items])


def evaluate_slow(checks: Sequence[Check], resources: Sequence[Resource]) -> list[dict[str, Any]]:
    """The same rows as :func:`evaluate`, as dicts, computed one resource at a time."""
    rows: list[dict[str, Any]] = []
    for check in checks:
        for r in resources:
            if r.kind != check.resource:
                continue
            if check.select is not None and not eval_slow(check.select, r.doc)[0]:
                continue
            if check.condition is None:
                status, evidence = "manual", ""
            else:
                ok, evidence = eval_slow(check.condition, r.doc)
                status = "pass" if ok else "fail"
                if check.when is not None:
                    applies, when_ev = eval_slow(check.when, r.doc)
                    if not applies:
                        status, evidence = "not_applicable", when_ev
            rows.append(
                {
                    "check_id": check.id,
                    "title": check.title,
                    "section": check.section,
                    "severity": check.severity,
                    "status": status,
                    "resource_kind": r.kind,
                    "resource": r.name,
                    "file": r.file,
                    "line": r.line,
                    "location": r.location,
                    "evidence": evidence,
                }
            )
    return rows


def failing(results: pl.DataFrame, at_least: str) -> pl.DataFrame:
    """Failed rows at or above a severity (for ``--fail-on``)."""
    threshold = SEVERITY_ORDER[at_least]
    keep = [s for s, rank in SEVERITY_ORDER.items() if rank >= threshold]
    return results.filter((pl.col("status") == "fail") & pl.col("severity").is_in(keep))


def section_scores(results: pl.DataFrame) -> pl.DataFrame:
    """Per section: counts of each status and the score, passed / (passed + failed) in percent."""
    counts = results.group_by("section", maintain_order=True).agg(
        *[(pl.col("status") == s).sum().alias(s) for s in STATUSES]
    )
    return counts.with_columns(
        pl.when((pl.col("pass") + pl.col("fail")) > 0)
        .then((100.0 * pl.col("pass") / (pl.col("pass") + pl.col("fail"))).round(1))
        .otherwise(None)
        .alias("score")
    )
