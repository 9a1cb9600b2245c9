"""``secmon compliance docker|k8s|checks``: CIS checks from the command line.

Exit codes: 0 ok; 1 when ``--fail-on SEVERITY`` finds a failure at or above it; 2 for usage or
input errors. Input problems of single files are printed (file, line, reason) and the other files
are still checked; the run then exits 2 unless ``--fail-on`` already asked for 1.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from secmon.compliance.checks import BENCHMARK_FILES, Check, bundled_checks, load_checks
from secmon.compliance.engine import SEVERITY_ORDER, failing
from secmon.compliance.report import FORMATS, render
from secmon.compliance.scan import ComplianceReport, scan_docker, scan_k8s
from secmon.errors import InputError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--format", choices=FORMATS, default="table", help="output format (default: table)")
    p.add_argument("-o", "--output", metavar="FILE", help="write the report here instead of stdout")
    p.add_argument("--fail-on", choices=list(SEVERITY_ORDER), metavar="SEVERITY",
                   help=f"exit 1 when a check at or above this severity fails ({', '.join(SEVERITY_ORDER)})")
    p.add_argument("--checks", action="append", default=[], metavar="FILE", help="use these check files instead of the bundled ones")
    p.add_argument("--store", metavar="DB", help="record findings in this SQLite state store (open/resolved across runs)")


def add_parser(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    parser = subparsers.add_parser("compliance", help="CIS Docker and Kubernetes checks", description=__doc__)
    sub = parser.add_subparsers(dest="compliance_command", metavar="BENCHMARK")
    parser.set_defaults(func=lambda args: (parser.print_help(sys.stderr), 2)[1])

    d = sub.add_parser("docker", help="CIS Docker Benchmark: daemon, host files, containers, images, Dockerfiles")
    d.add_argument("--daemon-config", metavar="FILE", help="daemon.json")
    d.add_argument("--inspect", action="append", default=[], metavar="FILE", help="docker inspect JSON of containers/images (repeatable)")
    d.add_argument("--dockerfile", action="append", default=[], metavar="FILE", help="a Dockerfile (repeatable)")
    d.add_argument("--root", metavar="DIR", help="host root to read files, units and audit rules from (e.g. / or a mounted image)")
    d.add_argument("--live", nargs="?", const="/var/run/docker.sock", metavar="SOCKET",
                   help="inspect running containers and images through the Docker socket")
    _common(d)
    d.set_defaults(func=run_docker)

    k = sub.add_parser("k8s", help="CIS Kubernetes Benchmark: manifests, control plane, kubelet, node files")
    k.add_argument("paths", nargs="*", metavar="PATH", help="manifest files or directories (YAML, JSON, lists)")
    k.add_argument("--kubelet-config", metavar="FILE", help="KubeletConfiguration file (flags from --node-root override it)")
    k.add_argument("--node-root", metavar="DIR", help="node root: static pod manifests, kubelet unit/flags, file modes")
    k.add_argument("--kubeconfig", metavar="FILE", help="best effort: read live objects with kubectl using this kubeconfig")
    _common(k)
    k.set_defaults(func=run_k8s)

    c = sub.add_parser("checks", help="list the bundled checks or validate a check file")
    c.add_argument("benchmark", choices=list(BENCHMARK_FILES), nargs="?", default=None)
    c.add_argument("--validate", metavar="FILE", help="validate a check file and print every problem")
    c.set_defaults(func=run_checks)


def _checks(args: argparse.Namespace) -> list[Check] | None:
    if not args.checks:
        return None
    out: list[Check] = []
    for name in args.checks:
        out.extend(load_checks(name))
    return out


def _finish(report: ComplianceReport, args: argparse.Namespace) -> int:
    text = render(report, args.format)
    if args.output:
        Path(args.output).write_text(text + "\n", encoding="utf-8")
    else:
        sys.stdout.write(text + "\n")
    for issue in report.issues:
        print(f"secmon: input error: {issue}", file=sys.stderr)
    if report.skipped_kinds and args.format != "table":
        kinds = ", ".join(f"{k} x{n}" for k, n in sorted(report.skipped_kinds.items()))
        print(f"secmon: note: objects of kinds without checks were not evaluated: {kinds}", file=sys.stderr)
    if args.store:
        from secmon.compliance.state import ComplianceStateStore

        with ComplianceStateStore(args.store) as store:
            t = store.record(report)
        print(
            f"secmon: store {args.store}: {len(t.opened)} opened, {len(t.reopened)} reopened, "
            f"{len(t.still_open)} still open, {len(t.resolved)} resolved",
            file=sys.stderr,
        )
    if args.fail_on and failing(report.results, args.fail_on).height:
        return 1
    return 2 if report.issues else 0


def run_docker(args: argparse.Namespace) -> int:
    if not (args.daemon_config or args.inspect or args.dockerfile or args.root or args.live):
        raise InputError("nothing to check: give --daemon-config, --inspect, --dockerfile, --root or --live")
    report = scan_docker(args.daemon_config, args.inspect, args.dockerfile, args.root, args.live, checks=_checks(args))
    return _finish(report, args)


KUBECTL_KINDS = "pods,deployments,statefulsets,daemonsets,replicasets,jobs,cronjobs,replicationcontrollers,roles,clusterroles,rolebindings,clusterrolebindings,serviceaccounts,networkpolicies,namespaces,configmaps,ingresses"


def run_k8s(args: argparse.Namespace) -> int:
    paths = list(args.paths)
    tmp: tempfile.TemporaryDirectory[str] | None = None
    if args.kubeconfig:
        kubectl = shutil.which("kubectl")
        if kubectl is None:
            raise InputError("--kubeconfig needs kubectl on PATH to read live objects")
        proc = subprocess.run([kubectl, "--kubeconfig", args.kubeconfig, "get", KUBECTL_KINDS, "--all-namespaces", "-o", "json"],
                              capture_output=True, text=True, timeout=300, check=False)
        if proc.returncode != 0:
            raise InputError(f"kubectl failed: {proc.stderr.strip()[:500]}")
        tmp = tempfile.TemporaryDirectory(prefix="secmon-k8s-")
        live = Path(tmp.name) / "live-cluster.json"
        live.write_text(proc.stdout)
        paths.append(str(live))
    if not (paths or args.kubelet_config or args.node_root):
        raise InputError("nothing to check: give manifest PATHs, --kubelet-config, --node-root or --kubeconfig")
    try:
        report = scan_k8s(paths, args.kubelet_config, args.node_root, checks=_checks(args))
        return _finish(report, args)
    finally:
        if tmp is not None:
            tmp.cleanup()


def run_checks(args: argparse.Namespace) -> int:
    if args.validate:
        checks = load_checks(args.validate)  # raises RuleSetError listing every problem
        print(f"{args.validate}: {len(checks)} checks OK ({sum(not c.manual for c in checks)} automated, {sum(c.manual for c in checks)} manual)")
        return 0
    benchmarks = [args.benchmark] if args.benchmark else list(BENCHMARK_FILES)
    rows = [
        {"benchmark": b, "id": c.id, "severity": c.severity, "resource": c.resource, "manual": c.manual, "title": c.title, "aliases": list(c.aliases)}
        for b in benchmarks
        for c in bundled_checks(b)
    ]
    for r in rows:
        kind = "manual" if r["manual"] else "auto"
        print(f"{r['benchmark']:<7} {r['id']:<15} {r['severity']:<9} {kind:<7} {r['resource']:<19} {r['title']}")
    print(json.dumps({b: sum(1 for r in rows if r["benchmark"] == b) for b in benchmarks}), file=sys.stderr)
    return 0
