"""Command lines of control-plane binaries, the kubelet and dockerd, parsed the way pflag does.

``--flag=value``, ``--flag value`` and a bare boolean ``--flag`` (meaning "true") are all
accepted; a repeated flag keeps every occurrence (:class:`FlagValue`), so list flags accumulate
and scalar flags take the last one. Only flags known to be boolean refuse to swallow the next
word, exactly as pflag does: ``--profiling false`` leaves ``false`` as a positional argument.
List values are split on commas later, element by element: ``--authorization-mode=Node,RBAC``
is the list ``[Node, RBAC]``, never a string searched for a substring.
"""

from __future__ import annotations

from pathlib import Path

import re
import shlex
from collections.abc import Iterable, Sequence

from secmon.compliance.conditions import FlagValue

# Boolean flags of kube-apiserver, kube-controller-manager, kube-scheduler, etcd, the kubelet,
# kube-proxy and dockerd that checks look at (a bare flag means true; the next word is not its
# value).
BOOLEAN_FLAGS = frozenset(
    {
        "anonymous-auth", "profiling", "service-account-lookup", "use-service-account-credentials",
        "client-cert-auth", "auto-tls", "peer-client-cert-auth", "peer-auto-tls", "allow-privileged",
        "rotate-certificates", "make-iptables-util-chains", "protect-kernel-defaults", "seccomp-default",
        "service-account-extend-token-expiration", "enable-bootstrap-token-auth", "insecure-skip-tls-verify",
        "icc", "live-restore", "userland-proxy", "selinux-enabled", "no-new-privileges", "tls", "tlsverify",
        "experimental", "debug", "iptables", "ip-forward", "ip-masq", "disable-legacy-registry",
        "authentication-token-webhook", "enable-server", "read-only", "help", "version",
    }
)


def split_command(command: str | Sequence[str]) -> list[str]:
    """A command line as words; a string is split with shell quoting rules."""
    if isinstance(command, str):
        try:
            return shlex.split(command, comments=False)
        except ValueError:
            return command.split()
    return [str(word) for word in command]


def parse_flags(argv: Iterable[str], boolean_flags: frozenset[str] = BOOLEAN_FLAGS) -> dict[str, FlagValue]:
    """``["--a=1", "--b", "x", "--c", "--a", "2"]`` -> {"a": ("1", "2"), "b": ("x",), "c": ("true",)}.

    Single-dash short flags (``-H``) are kept under their letter; positional words are ignored.
    """
    words = list(argv)
    found: dict[str, list[str]] = {}
    i = 0
    while i < len(words):
        word = words[i]
        i += 1
        if word == "--":
            break
        if not word.startswith("-") or word == "-":
            continue
        name = word.lstrip("-")
        if "=" in name:
            name, value = name.split("=", 1)
        elif name in boolean_flags:
            value = "true"
        elif i < len(words) and not words[i].startswith("-"):
            value = words[i]
            i += 1
        else:
            value = "true"
        found.setdefault(name, []).append(value)
    return {name: FlagValue(values) for name, values in found.items()}


_ENV_ASSIGN = re.compile(r'^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=(.*)$')


def parse_env_file(text: str) -> dict[str, str]:
    """``KEY=value`` lines (systemd EnvironmentFile / /etc/default style), quotes removed."""
    env: dict[str, str] = {}
    for line in text.splitlines():
        if line.lstrip().startswith("#"):
            continue
        m = _ENV_ASSIGN.match(line)
        if m:
            value = m.group(2).strip()
            if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
                value = value[1:-1]
            env[m.group(1)] = value
    return env


_VAR = re.compile(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?")


def systemd_exec_start(unit_text: str, env: dict[str, str]) -> list[str]:
    """The last non-empty ``ExecStart=`` of a unit (drop-ins reset it with an empty one), with
    ``$VAR``/``${VAR}`` expanded from ``Environment=`` lines and ``env``."""
    merged = dict(env)
    exec_start = ""
    logical: list[str] = []
    buffer = ""
    for raw in unit_text.splitlines():
        if raw.rstrip().endswith("\\"):
            buffer += raw.rstrip()[:-1] + " "
            continue
        logical.append(buffer + raw)
        buffer = ""
    if buffer:
        logical.append(buffer)
    for line in logical:
        stripped = line.strip()
        if stripped.startswith("Environment="):
            for word in split_command(stripped[len("Environment="):]):
                if "=" in word:
                    key, value = word.split("=", 1)
                    merged[key] = value
        elif stripped.startswith("ExecStart="):
            exec_start = stripped[len("ExecStart="):].lstrip("-@+!:")
    expanded = _VAR.sub(lambda m: merged.get(m.group(1), ""), exec_start)
    return split_command(expanded)


def systemd_service_under(root: Path, service: str, env_files: tuple[str, ...]) -> tuple[dict[str, str], str, list[str]]:
    """What systemd would read for ``service`` in a root filesystem: the variables of its env files,
    the unit text (packaged units, then /etc, then drop-ins in order) and the files used."""
    env: dict[str, str] = {}
    for name in env_files:
        path = root / name
        if path.is_file():
            env.update(parse_env_file(path.read_text(errors="replace")))
    text = ""
    used: list[str] = []
    units = [root / f"{base}/{service}.service" for base in ("lib/systemd/system", "usr/lib/systemd/system", "etc/systemd/system")]
    dropins = root / f"etc/systemd/system/{service}.service.d"
    if dropins.is_dir():
        units += sorted(dropins.glob("*.conf"))
    for path in units:
        if path.is_file():
            text += path.read_text(errors="replace") + "\n"
            used.append(str(path))
    return env, text, used

