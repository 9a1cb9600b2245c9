"""Compliance checks as data: the model and the loader of ``checks/*.yaml``.

A check file is a mapping ``{benchmark, resource_kinds?, checks: [...]}``; each check::

    id: "5.2.2"                      # CIS recommendation number (or secmon's own id)
    title: Containers do not run privileged     # our words
    section: "5.2"                   # scores are reported per section
    level: 1
    scored: true
    severity: high                   # info | low | medium | high | critical
    resource: workload               # the resource kind it inspects
    select: <condition>              # optional: which resources of that kind it concerns at all
    when: <condition>                # optional: false -> not_applicable
    condition: <condition>           # the pass condition; omitted for manual checks
    manual: true                     # a human decides; status ``manual``
    remediation: ...
    aliases: [AVD-KSV-0017, KSV017, CKV_K8S_16, C-0057]

Raw dicts do not travel past this module: checks become frozen :class:`Check` objects, and every
problem of a file is collected (file, line, check id, field, bad value, reason) before raising.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from secmon.compliance.conditions import Condition, ConditionError, parse_condition
from secmon.errors import RuleError, RuleSetError
from secmon.severity import Severity

CHECKS_DIR = Path(__file__).parent / "checks"
BENCHMARK_FILES = {"k8s": CHECKS_DIR / "k8s.yaml", "docker": CHECKS_DIR / "docker.yaml"}

# Resource kinds the collectors produce, and what each is.
RESOURCE_KINDS: dict[str, str] = {
    "workload": "a Pod or the pod template of a Deployment, StatefulSet, DaemonSet, ReplicaSet, Job, CronJob, ReplicationController",
    "role": "a Role or ClusterRole",
    "rolebinding": "a RoleBinding or ClusterRoleBinding",
    "serviceaccount": "a ServiceAccount",
    "networkpolicy": "a NetworkPolicy",
    "namespace": "a Namespace, with the NetworkPolicies that select it",
    "configmap": "a ConfigMap",
    "ingress": "an Ingress",
    "apiserver": "kube-apiserver command-line flags",
    "controller-manager": "kube-controller-manager command-line flags",
    "scheduler": "kube-scheduler command-line flags",
    "etcd": "etcd command-line flags and ETCD_* environment",
    "kubelet": "kubelet configuration file merged with its flags (flags win)",
    "kube-proxy": "kube-proxy configuration and flags",
    "cluster": "the cluster as a whole (manual checks)",
    "node-file": "a Kubernetes node file: mode, owner, group",
    "daemon": "the Docker daemon: daemon.json merged with dockerd flags",
    "container": "a container from docker inspect",
    "image": "an image from docker inspect",
    "dockerfile": "a parsed Dockerfile",
    "host-file": "a Docker host file: mode, owner, group",
    "audit": "the host's audit rules (watched paths)",
    "host": "the Docker host as a whole (manual checks)",
}



class _CheckSpec(BaseModel):
    """The shape of one check entry; conditions are compiled separately."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(min_length=1)
    title: str = Field(min_length=3)
    section: str = Field(min_length=1)
    level: int = Field(default=1, ge=1, le=2)
    scored: bool = True
    severity: Severity
    resource: str
    select: Any = None
    when: Any = None
    condition: Any = None
    manual: bool = False
    remediation: str = Field(min_length=3)
    aliases: list[str] = Field(default_factory=list)


@dataclass(frozen=True)
class Check:
    id: str
    title: str
    section: str
    level: int
    scored: bool
    severity: str
    resource: str
    select: Condition | None
    when: Condition | None
    condition: Condition | None  # None: a manual check
    remediation: str
    aliases: tuple[str, ...]
    benchmark: str
    file: str
    line: int | None

    @property
    def manual(self) -> bool:
        return self.condition is None


def _item_lines(text: str) -> list[int]:
    """1-based line of each entry of the top-level ``checks`` list (for error messages).

    A text scan, not a second YAML parse: entries are the ``- `` lines at the indentation of
    the first entry after ``checks:``."""
    lines = text.split("\n")
    out: list[int] = []
    indent: int | None = None
    inside = False
    for number, line in enumerate(lines, 1):
        if not inside:
            inside = line.rstrip() == "checks:"
            continue
        stripped = line.lstrip(" ")
        if not stripped or stripped.startswith("#"):
            continue
        level = len(line) - len(stripped)
        if indent is None and stripped.startswith("- "):
            indent = level
        if indent is not None and level == indent and stripped.startswith("- "):
            out.append(number)
        elif level == 0 and not stripped.startswith("- "):
            break
    return out


def load_checks(path: Path | str, text: str | None = None) -> list[Check]:
    """Load and compile one check file; raises :class:`RuleSetError` with every problem found."""
    path = Path(path)
    name = str(path)
    if text is None:
        text = path.read_text(encoding="utf-8")
    try:
        raw = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line = mark.line + 1 if mark is not None else None
        raise RuleSetError([RuleError(name, "<document>", f"invalid YAML: {getattr(exc, 'problem', exc)}", line=line)]) from None
    if not isinstance(raw, dict) or not isinstance(raw.get("checks"), list):
        raise RuleSetError([RuleError(name, "checks", "a check file is a mapping with a 'checks' list")])
    benchmark = str(raw.get("benchmark", path.stem))
    lines = _item_lines(text)
    errors: list[RuleError] = []
    checks: list[Check] = []
    seen: dict[str, int] = {}
    for index, entry in enumerate(raw["checks"]):
        line = lines[index] if index < len(lines) else None
        label = f"checks[{index}]"
        if isinstance(entry, dict) and isinstance(entry.get("id"), str):
            label = f"checks[{index}] (id {entry['id']})"
        try:
            spec = _CheckSpec.model_validate(entry)
        except ValidationError as exc:
            for err in exc.errors():
                field = ".".join(str(p) for p in err["loc"]) or "<entry>"
                errors.append(RuleError(name, f"{label}.{field}", err["msg"], err.get("input"), line))
            continue
        if spec.resource not in RESOURCE_KINDS:
            errors.append(
                RuleError(name, f"{label}.resource", f"unknown resource kind; valid: {', '.join(RESOURCE_KINDS)}", spec.resource, line)
            )
            continue
        if spec.id in seen:
            errors.append(RuleError(name, f"{label}.id", f"duplicate check id (first at checks[{seen[spec.id]}])", spec.id, line))
            continue
        seen[spec.id] = index
        if spec.manual == (spec.condition is not None):
            errors.append(
                RuleError(name, f"{label}.condition", "a check has either a condition or 'manual: true', not both or neither", None, line)
            )
            continue
        try:
            compiled = {
                key: None if getattr(spec, key) is None else parse_condition(getattr(spec, key), f"{label}.{key}")
                for key in ("select", "when", "condition")
            }
        except ConditionError as exc:
            errors.append(RuleError(name, exc.where, exc.reason, exc.value, line))
            continue
        regex_error = _rust_regex_problem(compiled.values())
        if regex_error:
            errors.append(RuleError(name, label, regex_error, None, line))
            continue
        checks.append(
            Check(
                id=spec.id,
                title=spec.title,
                section=spec.section,
                level=spec.level,
                scored=spec.scored,
                severity=spec.severity,
                resource=spec.resource,
                select=compiled["select"],
                when=compiled["when"],
                condition=compiled["condition"],
                remediation=spec.remediation,
                aliases=tuple(spec.aliases),
                benchmark=benchmark,
                file=name,
                line=line,
            )
        )
    if errors:
        raise RuleSetError(errors)
    return checks


def _rust_regex_problem(conditions: Any) -> str | None:
    """Patterns must mean the same to Python's ``re`` and Polars' Rust regex engine."""
    import polars as pl

    from secmon.compliance.conditions import leaves

    for cond in conditions:
        if cond is None:
            continue
        for leaf in leaves(cond):
            if leaf.op in ("matches", "not_matches"):
                try:
                    pl.Series([""]).str.contains(leaf.value)
                except Exception as exc:  # noqa: BLE001 - polars raises ComputeError for a bad pattern
                    return f"regular expression {leaf.value!r} is not supported by the Polars engine: {exc}"
    return None


@cache
def bundled_checks(benchmark: str) -> tuple[Check, ...]:
    """The bundled checks of ``k8s`` or ``docker``."""
    if benchmark not in BENCHMARK_FILES:
        raise KeyError(f"unknown benchmark {benchmark!r}; valid: {', '.join(BENCHMARK_FILES)}")
    return tuple(load_checks(BENCHMARK_FILES[benchmark]))
