"""The built-in FIM config (plain data, no validation library), used when no paths are given.

It lives apart from :mod:`secmon.fim.config` so the fast command path can use it without importing
pydantic; :func:`secmon.fim.config.default_config` validates the same dict, and a test holds the
fast path's reading of it equal to the validated one.
"""

from __future__ import annotations

from typing import Any

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
