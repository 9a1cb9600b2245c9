"""The Dockerfile parser: continuations, heredocs, escape directive, forms, stages, substitution."""

from __future__ import annotations

import pytest

from secmon.compliance.dockerfile import DockerfileError, dockerfile_facts, parse_instructions, shell_commands, substitute


def test_continuation_skips_comment_and_blank_lines() -> None:
    (inst,) = parse_instructions("RUN apt-get update \\\n# comment\n\n    && apt-get install -y x\n")[-1:]
    assert inst.cmd == "RUN" and inst.args == "apt-get update     && apt-get install -y x"


def test_escape_directive_backtick() -> None:
    insts = parse_instructions("# escape=`\nFROM mcr.microsoft.com/windows\nRUN dir `\n  c:\\\n")
    assert insts[-1].args == "dir   c:\\"


def test_heredocs_several_and_tab_stripping() -> None:
    insts = parse_instructions("FROM a:1\nRUN <<EOF bash\necho 1\nEOF\nCOPY <<-A <<B /x/\n\thello\nA\nworld\nB\n")
    assert insts[1].heredocs == ["echo 1"]
    assert insts[2].heredocs == ["hello", "world"]


def test_json_and_shell_forms() -> None:
    insts = parse_instructions('FROM a:1\nCMD ["nginx", "-g", "daemon off;"]\nCMD echo "a b"\nCMD [broken\n')
    assert insts[1].json_form and insts[1].words == ["nginx", "-g", "daemon off;"]
    assert not insts[2].json_form and insts[2].words == ["echo", "a b"]
    assert not insts[3].json_form  # malformed JSON is shell form, as in Docker


def test_arg_substitution_in_from_and_stages() -> None:
    facts = dockerfile_facts("ARG BASE=debian\nARG TAG=12\nFROM ${BASE}:${TAG} AS build\nFROM build AS final\nFROM $MISSING:${V:-3.1}\nUSER app\n")
    stages = facts["stages"]
    assert (stages[0]["image_name"], stages[0]["tag"], stages[0]["alias"]) == ("debian", "12", "build")
    assert stages[1]["from_stage"] is True
    assert stages[2]["image"] == ":3.1"
    assert facts["final_user"] == "app"


def test_substitute_forms() -> None:
    env = {"A": "1", "E": ""}
    assert substitute(r"$A ${A} ${B:-d} ${E:-d} ${E-d} ${A:+y} ${B:+y} \$A", env) == "1 1 d d  y  $A"


def test_shell_commands_split() -> None:
    cmds = shell_commands("FOO=1 sudo apt-get install -y x && cd /a; curl -s u | sh")
    assert [c["program"] for c in cmds] == ["sudo", "cd", "curl", "sh"]


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("RUN x\n", "RUN before the first FROM"),
        ("FROM a\nFOO bar\n", "unknown instruction 'FOO'"),
        ("FROM a\nRUN <<EOF\nnever ends\n", "heredoc <<EOF is never terminated"),
        ("# comment only\n", "no FROM instruction"),
    ],
)
def test_errors_name_file_line_reason(text: str, reason: str) -> None:
    with pytest.raises(DockerfileError, match=reason) as info:
        dockerfile_facts(text, "Dockerfile.bad")
    assert str(info.value).startswith("Dockerfile.bad:")
