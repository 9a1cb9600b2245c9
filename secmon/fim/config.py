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

import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator

from secmon.fim.attributes import ATTRIBUTES, PRESETS, parse_attribute_set
from secmon.fim.errors import FimConfigError
from secmon.fim.globs import glob_to_regex, matches_whole_path
from secmon.fim.pywalk import HASH_ALGORITHMS

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


# The default watch list, in the spirit of AIDE's and Wazuh's defaults: credentials, privilege
# configuration, persistence points (cron, systemd, ssh keys, preload) and system binaries.
DEFAULT_CONFIG: dict[str, Any] = {
    "hash": "sha256",
    "paths": [
        "/etc/passwd",
        "/etc/shadow",
        "/etc/group",
        "/etc/gshadow",
        "/etc/sudoers",
        "/etc/sudoers.d",
        "/etc/ssh/sshd_config",
        "/etc/ssh/sshd_config.d",
        "/etc/pam.d",
        "/etc/hosts",
        "/etc/ld.so.preload",
        "/etc/ld.so.conf",
        "/etc/ld.so.conf.d",
        "/etc/crontab",
        "/etc/cron.d",
        "/etc/cron.hourly",
        "/etc/cron.daily",
        "/etc/cron.weekly",
        "/etc/cron.monthly",
        "/var/spool/cron",
        "/etc/systemd/system",
        "/lib/systemd/system",
        "/usr/lib/systemd",
        "/etc/init.d",
        "/root/.ssh",
        "/home/*/.ssh",
        "/usr/bin",
        "/usr/sbin",
        "/usr/local/bin",
        "/usr/local/sbin",
    ],
    "exclude": ["*.swp", "*~"],
    "default_attributes": "full",
    "rules": [
        {"match": "/usr/bin/**", "attributes": "binaries"},
        {"match": "/usr/sbin/**", "attributes": "binaries"},
        {"match": "/usr/local/bin/**", "attributes": "binaries"},
        {"match": "/usr/local/sbin/**", "attributes": "binaries"},
        {"match": "/usr/lib/systemd/**", "attributes": "binaries"},
        {"match": "/var/log/**", "attributes": "growing_log"},
        {"match": "/**", "types": ["dir"], "attributes": "directories"},
    ],
}


def default_config() -> FimConfig:
    return parse_config(DEFAULT_CONFIG, "<built-in default config>")


@dataclass(frozen=True)
class CompiledRule:
    pattern: str
    regex: str  # over the whole path (basename patterns become "any directory, then this name")
    types: frozenset[str] | None
    attributes: frozenset[str]
    growing: bool


def _rule_regex(pattern: str) -> str:
    anchored = glob_to_regex(pattern)
    if matches_whole_path(pattern):
        return anchored
    return "^(?:.*/)?" + anchored[1:]


@dataclass(frozen=True)
class AttributePolicy:
    """Which attributes are compared for which path: first matching rule, else the default."""

    rules: tuple[CompiledRule, ...]
    default_attributes: frozenset[str]
    default_growing: bool

    @classmethod
    def from_specs(cls, rules: Sequence[RuleSpec], default: str | list[str] = "full") -> AttributePolicy:
        compiled = []
        for rule in rules:
            attrs, growing = parse_attribute_set(rule.attributes)
            types = frozenset(rule.types) if rule.types else None
            compiled.append(CompiledRule(rule.match, _rule_regex(rule.match), types, attrs, growing))
        attrs, growing = parse_attribute_set(default)
        return cls(tuple(compiled), attrs, growing)

    @classmethod
    def everything(cls) -> AttributePolicy:
        return cls((), PRESETS["full"], False)

    def restricted_to(self, allowed: frozenset[str]) -> AttributePolicy:
        """The same selection, comparing only attributes both sides can know (e.g. an image)."""
        rules = tuple(
            CompiledRule(r.pattern, r.regex, r.types, r.attributes & allowed, r.growing) for r in self.rules
        )
        return AttributePolicy(rules, self.default_attributes & allowed, self.default_growing)

    def select(self, path: str, file_type: str | None) -> tuple[frozenset[str], bool]:
        """The attribute set and growing flag for one path (the slow, obvious lookup)."""
        for rule in self.rules:
            if rule.types is not None and file_type not in rule.types:
                continue
            if re.match(rule.regex, path, re.DOTALL):
                return rule.attributes, rule.growing
        return self.default_attributes, self.default_growing

    def to_json(self) -> dict[str, Any]:
        return {
            "rules": [
                {
                    "match": r.pattern,
                    "types": sorted(r.types) if r.types else None,
                    "attributes": [a for a in ATTRIBUTES if a in r.attributes],
                    "growing": r.growing,
                }
                for r in self.rules
            ],
            "default_attributes": [a for a in ATTRIBUTES if a in self.default_attributes],
            "default_growing": self.default_growing,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AttributePolicy:
        rules = tuple(
            CompiledRule(
                r["match"],
                _rule_regex(r["match"]),
                frozenset(r["types"]) if r["types"] else None,
                frozenset(r["attributes"]),
                bool(r["growing"]),
            )
            for r in data["rules"]
        )
        return cls(rules, frozenset(data["default_attributes"]), bool(data["default_growing"]))
