"""Command-line flag parsing, pinned against kube-bench's substring fault."""

from __future__ import annotations

import pytest

from secmon.compliance.conditions import coerce
from secmon.compliance.flags import parse_env_file, parse_flags, systemd_exec_start

CASES = [
    (["--a=1"], {"a": ("1",)}),
    (["--a", "1"], {"a": ("1",)}),
    (["--profiling", "false"], {"profiling": ("true",)}),  # pflag: a bool flag never takes the next word
    (["--profiling=false"], {"profiling": ("false",)}),
    (["--x", "--y=2"], {"x": ("true",), "y": ("2",)}),
    (["--a=1", "--a=2"], {"a": ("1", "2")}),
    (["-H", "tcp://0.0.0.0:2375", "--tlsverify"], {"H": ("tcp://0.0.0.0:2375",), "tlsverify": ("true",)}),
    (["pos", "--k=v=w"], {"k": ("v=w",)}),
    (["--a=1", "--", "--b=2"], {"a": ("1",)}),
]


@pytest.mark.parametrize(("argv", "expected"), CASES)
def test_parse_flags(argv: list[str], expected: dict) -> None:
    assert {k: tuple(v) for k, v in parse_flags(argv).items()} == expected


def test_list_flags_are_split_elementwise_not_substring_matched() -> None:
    # kube-bench's strings.Contains would accept "RBACX" for "has RBAC"; we compare elements.
    flags = parse_flags(["--authorization-mode=Node,RBACX"])
    modes = coerce(flags["authorization-mode"], "strlist")
    assert modes == ["Node", "RBACX"] and "RBAC" not in modes


def test_repeated_list_flags_accumulate_and_scalars_take_the_last() -> None:
    flags = parse_flags(["--enable-admission-plugins=A,B", "--enable-admission-plugins=C", "--audit-log-maxage=5", "--audit-log-maxage=40"])
    assert coerce(flags["enable-admission-plugins"], "strlist") == ["A", "B", "C"]
    assert coerce(flags["audit-log-maxage"], "num") == 40.0


def test_env_file_and_systemd_exec_start() -> None:
    env = parse_env_file('KUBELET_KUBEADM_ARGS="--anonymous-auth=false --read-only-port=10255"\n# c\nexport X=1\n')
    assert env == {"KUBELET_KUBEADM_ARGS": "--anonymous-auth=false --read-only-port=10255", "X": "1"}
    unit = "[Service]\nExecStart=/usr/bin/kubelet --old\nExecStart=\nExecStart=/usr/bin/kubelet $KUBELET_KUBEADM_ARGS \\\n  --x=1\n"
    assert systemd_exec_start(unit, env) == ["/usr/bin/kubelet", "--anonymous-auth=false", "--read-only-port=10255", "--x=1"]


def test_regression_kube_bench_substring_flag_match() -> None:
    # kube-bench searches "--enable-admission-plugins=...NodeRestriction..." with strings.Contains,
    # so a plugin named "NodeRestrictionX" satisfied "has NodeRestriction". Elements are compared.
    from secmon.compliance.checks import bundled_checks
    from secmon.compliance.engine import evaluate
    from secmon.compliance.k8s import process_resource

    check = next(c for c in bundled_checks("k8s") if c.id == "1.2.14")
    bad = process_resource("apiserver", ["--enable-admission-plugins=NodeRestrictionX,PodSecurity"], {}, "f", "bad", "")
    good = process_resource("apiserver", ["--enable-admission-plugins=PodSecurity,NodeRestriction"], {}, "f", "good", "")
    assert evaluate([check], [bad, good])["status"].to_list() == ["fail", "pass"]
