"""The fast path of :func:`secmon.compliance.scan_k8s`: workload manifests through the native core.

Measured on 10,000 generated workload manifests, the Python path spent ~1 s turning YAML into
Python objects, ~1 s normalizing them and ~2 s walking those dicts once per fact to fill Polars
columns. ``secmon._core.k8s_workload_facts`` reads and parses the files on all cores, applies the
same normalization (``k8s.normalize_workload``) to its own document tree and returns only the
facts the workload checks read, column by column; this module turns those into the same
:class:`ScopeFrame` that ``build_scope`` makes.

Every file the native reader does not fully understand (JSON, Helm templates, YAML that a YAML 1.1
reader could read differently, anything but workloads, odd values: see ``rust_core/src/compliance.rs``)
is handed back and goes through the Python path (:func:`scan.manifest_file_resources`) unchanged,
so bad input is reported exactly as before and the other files are still checked. Facts follow
YAML 1.1, as Kubernetes reads manifests: files whose plain scalars YAML 1.1 and 1.2 resolve
differently (``on``/``yes``, ``0644``, ``1e3``) are always read by the YAML 1.1 reader.

``scan_k8s(..., native=False)`` is the slow twin; ``tests/compliance/test_fast.py`` compares them.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import numpy as np
import polars as pl

from secmon.compliance.checks import Check
from secmon.compliance.conditions import Schema
from secmon.compliance.engine import kind_schema, resource_meta
from secmon.compliance.facts import POLARS_TYPES, Resource, ScopeFrame, build_scope, list_series_from_flat
from secmon.compliance.k8s import InputIssue

WORKLOAD = "workload"

# A native spec: ([(fact path, dtype)], [(scope path, spec)]) in Schema order.
NativeSpec = tuple[list[tuple[list[str], str]], list[tuple[list[str], Any]]]


def native_spec(schema: Schema) -> NativeSpec:
    return (
        [(list(path), dtype) for path, dtype in schema.fields.values()],
        [(list(scope), native_spec(child)) for scope, child in schema.scopes.items()],
    )


def _scope_frame(native: dict[str, Any], schema: Schema, top: bool) -> ScopeFrame:
    """The ScopeFrame ``build_scope`` would make, from the native reader's columns."""
    columns: dict[str, pl.Series] = {}
    if not top:
        columns["__parent"] = pl.Series("__parent", native["parents"], dtype=pl.Int64)
        columns["__path"] = pl.Series("__path", native["paths"], dtype=pl.String)
    for (name, (_, dtype)), values in zip(schema.fields.items(), native["columns"], strict=True):
        if dtype == "strlist":
            flat, lengths = values
            columns[name] = list_series_from_flat(name, flat, lengths)
        else:
            columns[name] = pl.Series(name, values, dtype=POLARS_TYPES[dtype])
    height = len(native["paths"])
    frame = pl.DataFrame(list(columns.values())) if columns else pl.DataFrame({"__dummy": [None] * height})
    children = {
        scope: _scope_frame(child, child_schema, top=False)
        for (scope, child_schema), child in zip(schema.scopes.items(), native["children"], strict=True)
    }
    return ScopeFrame(frame, children)


def _concat(first: ScopeFrame, second: ScopeFrame) -> ScopeFrame:
    """Rows of ``first`` then ``second``; child rows of ``second`` point past ``first``'s rows."""
    frame = pl.concat([first.frame, second.frame], how="vertical")
    children = {}
    for scope, child in first.children.items():
        other = second.children[scope]
        shifted = other.frame.with_columns(pl.col("__parent") + first.height)
        children[scope] = _concat(child, ScopeFrame(shifted, other.children))
    return ScopeFrame(frame, children)


def _reorder(sf: ScopeFrame, order: np.ndarray) -> ScopeFrame:
    """Top-level rows in ``order``; children stay where they are, their parent indexes follow.
    (Evaluation groups children by parent, keeping each parent's children in their order.)"""
    position = np.empty_like(order)
    position[order] = np.arange(len(order), dtype=order.dtype)
    remap = pl.Series("__parent", position, dtype=pl.Int64)
    children = {
        scope: ScopeFrame(child.frame.with_columns(remap.gather(child.frame["__parent"]).alias("__parent")), child.children)
        for scope, child in sf.children.items()
    }
    return ScopeFrame(sf.frame[pl.Series(order)], children)


def collect_k8s_fast(
    paths: Sequence[str], kubelet_config: str | None, node_root: str | None, checks: Sequence[Check]
) -> tuple[list[Resource], list[InputIssue], dict[str, int], dict[str, tuple[ScopeFrame, pl.DataFrame]]]:
    """What ``scan.collect_k8s`` collects, with the workloads of the files the native reader
    understood as a prebuilt (facts, metadata) pair for ``evaluate``."""
    from secmon import _core
    from secmon.compliance.scan import k8s_inputs, manifest_file_resources, node_resources

    files, issues, root = k8s_inputs(paths, node_root)
    schema = kind_schema(checks, WORKLOAD)
    batch = _core.k8s_workload_facts([os.fsencode(f) for f in files], native_spec(schema))
    resources: list[Resource] = []
    skipped: dict[str, int] = {}
    python_workloads: list[Resource] = []
    python_keys: list[int] = []
    for index in batch["fallback"]:
        found, file_issues, kinds_skipped = manifest_file_resources(files[index])
        for r in found:
            if r.kind == WORKLOAD:
                python_workloads.append(r)
                python_keys.append(index)
            else:
                resources.append(r)
        issues.extend(file_issues)
        for kind, n in kinds_skipped.items():
            skipped[kind] = skipped.get(kind, 0) + n
    node_resources(resources, issues, kubelet_config, root)

    native_rows = len(batch["names"])
    if native_rows == 0:
        resources[:0] = python_workloads  # nothing native: evaluate builds the frame as usual
        return resources, issues, skipped, {}
    names: list[str] = batch["names"]
    file_names = [str(files[i]) for i in batch["file_index"]]
    lines: list[int | None] = batch["lines"]
    locations: list[str] = batch["locations"]
    sf = _scope_frame(batch["facts"], schema, top=True)
    if python_workloads:
        docs = [r.doc for r in python_workloads]
        sf = _concat(sf, build_scope(docs, [""] * len(docs), schema))
        names = names + [r.name for r in python_workloads]
        file_names = file_names + [r.file for r in python_workloads]
        lines = lines + [r.line for r in python_workloads]
        locations = locations + [r.location for r in python_workloads]
        # File order, as the Python path produces them (a stable sort keeps objects in file order).
        order = np.argsort(np.asarray(batch["file_index"] + python_keys, dtype=np.int64), kind="stable")
        sf = _reorder(sf, order)
        pick = order.tolist()
        names, file_names = [names[i] for i in pick], [file_names[i] for i in pick]
        lines, locations = [lines[i] for i in pick], [locations[i] for i in pick]
    meta = resource_meta(WORKLOAD, names, file_names, lines, locations)
    return resources, issues, skipped, {WORKLOAD: (sf, meta)}


def native_file_count(paths: Sequence[str], checks: Sequence[Check]) -> tuple[int, int]:
    """(files the native reader took, files it handed back): for tests and benchmarks."""
    from secmon import _core
    from secmon.compliance.scan import k8s_inputs

    files, _, _ = k8s_inputs(paths, None)
    batch = _core.k8s_workload_facts([os.fsencode(f) for f in files], native_spec(kind_schema(checks, WORKLOAD)))
    handed_back = len(batch["fallback"])
    return len(files) - handed_back, handed_back


