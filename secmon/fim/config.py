"""FIM configuration: which paths, what to skip, and which attributes matter where.

A config file is YAML::

    hash: sha256                 # sha256 | blake3 | xxh3_128 | sha1 | md5 | none
    paths: [/etc, /usr/bin, "/home/*/.ssh"]   # absolute; globs are expanded at scan time
    exclude: ["*.swp", "/etc/mtab"]
    default_attributes: full     # a preset name or a list of attribute names
    rules:                       # first match wins (AIDE-style selection lines)
      - match: "/var/log/**"
        attributes: growing_log
      - match: "/etc/**"
        types: [dir]
        attributes: directories

Validation errors name the file, the field path, the bad value and the reason.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from secmon.fim.attributes import HASH_ALGORITHMS, parse_attribute_set
from secmon.fim.errors import FimConfigError
from secmon.fim.globs import glob_to_regex
from secmon.fim.defaults import DEFAULT_CONFIG
from secmon.fim.policy import AttributePolicy, CompiledRule

FILE_TYPES: tuple[str, ...] = ("file", "dir", "symlink", "fifo", "socket", "char_device", "block_device", "unknown")


def _absolute_path(path: str) -> str:
    if not path.startswith("/"):
        raise ValueError("must be absolute (inside the root filesystem when --root is set)")
    return path


AbsolutePath = Annotated[str, AfterValidator(_absolute_path)]


def _valid_glob(pattern: str) -> str:
    glob_to_regex(pattern)  # raises ValueError naming the pattern and the problem
    return pattern


Glob = Annotated[str, AfterValidator(_valid_glob)]


class RuleSpec(BaseModel):
    """One selection rule: paths matching ``match`` (and of one of ``types``) use ``attributes``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    match: Glob = Field(min_length=1)
    attributes: str | list[str]
    types: list[Literal["file", "dir", "symlink", "fifo", "socket", "char_device", "block_device", "unknown"]] | None = None

    @field_validator("attributes")
    @classmethod
    def _known_attributes(cls, value: str | list[str]) -> str | list[str]:
        parse_attribute_set(value)
        return value


class FimConfig(BaseModel):
    """A validated FIM config (see the module docstring for the YAML shape)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    paths: list[AbsolutePath] = Field(default_factory=list)
    exclude: list[Glob] = Field(default_factory=list)
    hash: str | None = "sha256"
    rules: list[RuleSpec] = Field(default_factory=list)
    default_attributes: str | list[str] = "full"
    xattrs: bool = True
    follow_symlinks: bool = False
    one_file_system: bool = False

    @field_validator("hash", mode="before")
    @classmethod
    def _known_hash(cls, value: Any) -> Any:
        if value is None or value == "none":
            return None
        if value not in HASH_ALGORITHMS:
            raise ValueError(f"unknown hash algorithm {value!r}; valid: {', '.join(HASH_ALGORITHMS)}, none")
        return value

    @field_validator("default_attributes")
    @classmethod
    def _known_default(cls, value: str | list[str]) -> str | list[str]:
        parse_attribute_set(value)
        return value

    def policy(self) -> AttributePolicy:
        return AttributePolicy.from_specs(self.rules, self.default_attributes)


def _format_validation_error(file: str, exc: ValidationError, data: Any) -> FimConfigError:
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(top level)"
        reason = str(err["msg"]).removeprefix("Value error, ")
        problems.append((field, reason, err.get("input")))
    first = problems[0]
    error = FimConfigError(file, first[0], first[1], first[2])
    if len(problems) > 1:
        more = "; ".join(f"{f}: {r} (got {v!r})" for f, r, v in problems[1:])
        error = FimConfigError(file, first[0], f"{first[1]} (got {first[2]!r}); also {more}")
    return error


def parse_config(data: Any, file: str = "<config>") -> FimConfig:
    """Validate a parsed YAML/JSON mapping into a :class:`FimConfig`."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise FimConfigError(file, "(top level)", "a FIM config must be a mapping", type(data).__name__)
    try:
        return FimConfig.model_validate(data)
    except ValidationError as exc:
        raise _format_validation_error(file, exc, data) from None


def load_config(path: str | Path) -> FimConfig:
    """Read and validate a YAML config file."""
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise FimConfigError(file, "(file)", f"not UTF-8 text: {exc.reason} at byte {exc.start}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}" if mark else "(file)"
        raise FimConfigError(file, where, f"invalid YAML: {getattr(exc, 'problem', None) or exc}") from None
    return parse_config(data, file)


def default_config() -> FimConfig:
    return parse_config(DEFAULT_CONFIG, "<built-in default config>")


__all__ = ["DEFAULT_CONFIG", "FILE_TYPES", "AttributePolicy", "CompiledRule", "FimConfig", "RuleSpec", "default_config", "load_config", "parse_config"]
