"""A Dockerfile parser that follows BuildKit's rules, and the facts checks read from it.

Handles parser directives (``# escape=``), line continuations with the escape character (comment
and blank lines inside a continuation are dropped, as BuildKit does), heredocs (``RUN <<EOF``,
``<<-EOF``, quoted delimiters, several per line), JSON (exec) and shell forms, ``--flags`` of
instructions, multi-stage builds with aliases, and ``$VAR``/``${VAR}``/``${VAR:-default}``
substitution from ARG and ENV where Docker applies it (FROM uses only the global ARGs).
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from typing import Any

from secmon.compliance.facts import PATH_KEY
from secmon.compliance.k8s import parse_image
from secmon.errors import InputError

INSTRUCTIONS = frozenset(
    {
        "ADD", "ARG", "CMD", "COPY", "ENTRYPOINT", "ENV", "EXPOSE", "FROM", "HEALTHCHECK", "LABEL",
        "MAINTAINER", "ONBUILD", "RUN", "SHELL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR",
    }
)
# Instructions whose arguments Docker expands variables in.
SUBSTITUTED = frozenset({"ADD", "COPY", "ENV", "EXPOSE", "FROM", "LABEL", "STOPSIGNAL", "USER", "VOLUME", "WORKDIR", "ONBUILD"})


class DockerfileError(InputError):
    """A Dockerfile Docker itself would refuse to build: file, line, reason."""

    def __init__(self, file: str, line: int, reason: str) -> None:
        self.file = file
        self.line = line
        super().__init__(f"{file}:{line}: {reason}")


@dataclass
class Instruction:
    cmd: str
    args: str
    line: int
    flags: dict[str, str] = field(default_factory=dict)
    words: list[str] = field(default_factory=list)
    json_form: bool = False
    heredocs: list[str] = field(default_factory=list)


_DIRECTIVE = re.compile(r"^#\s*([a-zA-Z][a-zA-Z0-9]*)\s*=\s*(.+?)\s*$")
_HEREDOC = re.compile(r"<<(-?)(['\"]?)([A-Za-z_][A-Za-z0-9_]*)\2")
_FLAG = re.compile(r"^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(\S*))?\s*")


def _directives(lines: list[str]) -> tuple[str, int]:
    """The escape character and the index of the first non-directive line."""
    escape = "\\"
    index = 0
    seen: set[str] = set()
    for index, raw in enumerate(lines):
        m = _DIRECTIVE.match(raw.strip())
        if not m or m.group(1).lower() in seen:
            return escape, index
        key = m.group(1).lower()
        seen.add(key)
        if key == "escape":
            if m.group(2) not in ("\\", "`"):
                raise DockerfileError("", index + 1, f"invalid escape directive {m.group(2)!r}; expected '\\' or '`'")
            escape = m.group(2)
    return escape, len(lines)


def parse_instructions(text: str, file: str = "Dockerfile") -> list[Instruction]:
    lines = text.replace("\r\n", "\n").split("\n")
    try:
        escape, start = _directives(lines)
    except DockerfileError as exc:
        raise DockerfileError(file, exc.line, str(exc).split(": ", 1)[-1]) from None
    out: list[Instruction] = []
    i = start
    while i < len(lines):
        raw = lines[i]
        stripped = raw.strip()
        if not stripped or stripped.startswith("#"):
            i += 1
            continue
        first_line = i + 1
        logical = ""
        line = raw
        while True:
            body = line.rstrip()
            if body.endswith(escape) and not body.endswith(escape * 2):
                logical += body[:-1]
                i += 1
                # Blank and comment lines inside a continuation are skipped.
                while i < len(lines) and (not lines[i].strip() or lines[i].lstrip().startswith("#")):
                    i += 1
                if i >= len(lines):
                    break
                line = lines[i]
                continue
            logical += line
            i += 1
            break
        parts = logical.strip().split(None, 1)
        cmd = parts[0].upper()
        args = parts[1] if len(parts) > 1 else ""
        if cmd not in INSTRUCTIONS:
            raise DockerfileError(file, first_line, f"unknown instruction {parts[0]!r}")
        inst = Instruction(cmd, args.strip(), first_line)
        # Heredocs: the body lines follow the instruction line.
        if cmd in ("RUN", "COPY", "ADD"):
            for m in _HEREDOC.finditer(args):
                strip_tabs, delimiter = m.group(1) == "-", m.group(3)
                body_lines: list[str] = []
                while i < len(lines) and (lines[i].lstrip("\t") if strip_tabs else lines[i]) != delimiter:
                    body_lines.append(lines[i].lstrip("\t") if strip_tabs else lines[i])
                    i += 1
                if i >= len(lines):
                    raise DockerfileError(file, first_line, f"heredoc <<{delimiter} is never terminated")
                i += 1
                inst.heredocs.append("\n".join(body_lines))
        _split_flags(inst)
        out.append(inst)
    return out


def _split_flags(inst: Instruction) -> None:
    rest = inst.args
    if inst.cmd in ("RUN", "COPY", "ADD", "FROM", "HEALTHCHECK"):
        while True:
            m = _FLAG.match(rest)
            if not m:
                break
            inst.flags[m.group(1).lower()] = m.group(2) if m.group(2) is not None else "true"
            rest = rest[m.end():]
    inst.args = rest.strip()
    if inst.args.startswith("["):
        try:
            words = json.loads(inst.args)
            if isinstance(words, list) and all(isinstance(w, str) for w in words):
                inst.words, inst.json_form = words, True
                return
        except json.JSONDecodeError:
            pass  # Docker treats a malformed JSON array as shell form
    try:
        inst.words = shlex.split(inst.args, comments=False, posix=True)
    except ValueError:
        inst.words = inst.args.split()


_VARIABLE = re.compile(r"\\\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-+])([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def substitute(text: str, variables: dict[str, str]) -> str:
    """Docker's variable expansion: ``$V``, ``${V}``, ``${V:-default}``, ``${V:+alt}``, ``\\$``."""

    def repl(m: re.Match[str]) -> str:
        if m.group(0) == "\\$":
            return "$"
        name = m.group(1) or m.group(4)
        value = variables.get(name)
        modifier = m.group(2)
        if modifier in (":-", "-"):
            return value if value not in (None, "") or (modifier == "-" and value is not None) else m.group(3)
        if modifier in (":+", "+"):
            return m.group(3) if value not in (None, "") or (modifier == "+" and value is not None) else ""
        return value or ""

    return _VARIABLE.sub(repl, text)


def _assignments(words: list[str]) -> dict[str, str]:
    """``ENV a=1 b=2`` / legacy ``ENV a 1`` / ``ARG name[=default]``."""
    if len(words) >= 2 and "=" not in words[0]:
        return {words[0]: " ".join(words[1:])}
    out: dict[str, str] = {}
    for w in words:
        key, sep, value = w.partition("=")
        out[key] = value if sep else ""
    return out


_SEPARATORS = re.compile(r"\s*(?:&&|\|\||;|\||\n)\s*")


def shell_commands(text: str) -> list[dict[str, Any]]:
    """Simple commands of a shell snippet: ``a && b | c; d`` -> four commands (program, args)."""
    commands: list[dict[str, Any]] = []
    for part in _SEPARATORS.split(text):
        part = part.strip().strip("()").strip()
        if not part:
            continue
        try:
            words = shlex.split(part, comments=True)
        except ValueError:
            words = part.split()
        while words and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", words[0]):
            words = words[1:]  # leading VAR=value assignments
        if not words:
            continue
        commands.append({"program": words[0].rsplit("/", 1)[-1], "args": words[1:], "text": part})
    return commands


def dockerfile_facts(text: str, file: str = "Dockerfile") -> dict[str, Any]:
    """The normalized document of a Dockerfile that the ``dockerfile`` checks read."""
    instructions = parse_instructions(text, file)
    global_args: dict[str, str] = {}
    stages: list[dict[str, Any]] = []
    runs: list[dict[str, Any]] = []
    exposed: list[dict[str, Any]] = []
    copies: list[dict[str, Any]] = []
    workdirs: list[dict[str, Any]] = []
    env_keys: list[dict[str, Any]] = []
    variables: dict[str, str] = {}
    names: list[str] = []
    for inst in instructions:
        names.append(inst.cmd)
        path = f"line {inst.line}"
        if inst.cmd == "ARG" and not stages:
            global_args.update(_assignments(inst.words))
            continue
        if inst.cmd == "FROM":
            words = [substitute(w, global_args) for w in inst.words]
            image = words[0] if words else ""
            alias = words[2] if len(words) >= 3 and words[1].lower() == "as" else None
            earlier = {s["alias"] for s in stages if s["alias"]}
            ref = parse_image(image)
            stages.append(
                {
                    PATH_KEY: path,
                    "index": len(stages),
                    "image": image,
                    "image_name": ref.get("name"),
                    "tag": ref.get("tag"),
                    "digest": ref.get("digest"),
                    "alias": alias,
                    "alias_duplicated": alias is not None and alias.lower() in {a.lower() for a in earlier},
                    "from_stage": image.lower() in {a.lower() for a in earlier} or image.isdigit(),
                    "scratch": image.lower() == "scratch",
                    "platform": inst.flags.get("platform"),
                    "user": None,
                    "counts": {},
                }
            )
            variables = dict(global_args)
            continue
        if not stages:
            raise DockerfileError(file, inst.line, f"{inst.cmd} before the first FROM (only ARG may come first)")
        stage = stages[-1]
        stage["counts"][inst.cmd] = stage["counts"].get(inst.cmd, 0) + 1
        words = [substitute(w, variables) for w in inst.words] if inst.cmd in SUBSTITUTED else inst.words
        if inst.cmd in ("ARG", "ENV"):
            assigned = _assignments(words if inst.cmd == "ENV" else inst.words)
            for key, value in assigned.items():
                if inst.cmd == "ARG" and not value and key in global_args:
                    value = global_args[key]
                variables[key] = value
                env_keys.append({PATH_KEY: path, "instruction": inst.cmd, "key": key, "value": value, "stage": stage["index"]})
        elif inst.cmd == "USER":
            stage["user"] = words[0] if words else ""
        elif inst.cmd == "RUN":
            shell = " ".join(inst.words) if inst.json_form else inst.args
            shell = "\n".join([shell, *inst.heredocs])
            runs.append(
                {PATH_KEY: path, "text": shell, "commands": shell_commands(shell), "stage": stage["index"], "json_form": inst.json_form}
            )
        elif inst.cmd == "EXPOSE":
            for w in words:
                port, _, proto = w.partition("/")
                low, _, high = port.partition("-")
                for value in (low, high) if high else (low,):
                    exposed.append(
                        {PATH_KEY: path, "raw": w, "port": int(value) if value.isdigit() else None, "protocol": proto or "tcp"}
                    )
        elif inst.cmd in ("COPY", "ADD"):
            paths = words if not inst.heredocs else [*words]
            sources, dest = (paths[:-1], paths[-1]) if len(paths) >= 2 else (paths, "")
            from_stage = inst.flags.get("from")
            copies.append(
                {
                    PATH_KEY: path,
                    "instruction": inst.cmd,
                    "sources": sources,
                    "source_count": len(sources),
                    "dest": dest,
                    "from": from_stage,
                    "from_current_stage": from_stage is not None and bool(stage["alias"]) and from_stage.lower() == str(stage["alias"]).lower(),
                    "heredoc": bool(inst.heredocs),
                }
            )
        elif inst.cmd == "HEALTHCHECK":
            stage["healthcheck_none"] = bool(words) and words[0].upper() == "NONE"
        elif inst.cmd == "WORKDIR":
            workdirs.append({PATH_KEY: path, "path": " ".join(words), "raw": inst.args})
    if not stages:
        raise DockerfileError(file, 1, "no FROM instruction: not a Dockerfile")
    final = stages[-1]
    programs = sorted({c["program"] for r in runs for c in r["commands"]})
    return {
        "stages": stages,
        "final_stage": final,
        "final_user": final["user"],
        "any_user": next((s["user"] for s in reversed(stages) if s["user"] is not None), None),
        "runs": runs,
        "run_programs": programs,
        "exposed": exposed,
        "copies": copies,
        "workdirs": workdirs,
        "variables": env_keys,
        "instruction_names": sorted(set(names)),
        "healthcheck": final["counts"].get("HEALTHCHECK", 0) > 0 and not final.get("healthcheck_none", False),
    }
