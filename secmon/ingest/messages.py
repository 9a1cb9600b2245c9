"""Message parsers: the text a program logged, mapped onto Datadog's standard attributes.

They run once the program that logged the text is known (a syslog line's tag, a journal entry's
``SYSLOG_IDENTIFIER``): :func:`parse_program_message` names the ``source`` after the program and
adds attributes to the event in place, the way Datadog's integration pipelines do for
``source:sshd`` and PAM lines.

Mapping decisions (documented here because detection rules depend on them):

- ``Failed|Accepted <method> for [invalid user ]U from IP port P``: ``evt.name:authentication``,
  ``evt.outcome:failure|success``, ``usr.name``, ``network.client.ip``, ``network.client.port``,
  ``ssh.auth_method`` (``password``, ``publickey``, ``keyboard-interactive/pam``, ...).
- ``message repeated N times: [ <message> ]`` (syslog's de-duplication) stands for N identical
  events: the inner message is parsed and the event is emitted N times. The loghub ground truth
  (527 failed passwords in OpenSSH_2k.log) depends on it.
- ``Invalid user U from IP``: ``usr.name``, ``network.client.ip`` but **no** ``evt.outcome``. sshd
  logs the failed attempt itself separately (``Failed password for invalid user U``); counting
  this line as a failure too would count every attempt twice.
- PAM ``authentication failure; ... rhost=H user=U`` (both ``sshd(pam_unix)[pid]:`` and
  ``sshd[pid]: pam_unix(sshd:auth):``): ``evt.name:authentication``, ``evt.outcome:failure``,
  ``pam.rhost`` always, ``network.client.ip`` when ``rhost`` is an IP address and
  ``network.client.host`` when it is a host name, ``usr.name`` when ``user=`` is present,
  ``pam.module:pam_unix``, ``pam.service``. Old systems (Linux_2k.log) log failed SSH logins
  only through PAM; modern sshd logs both a PAM line and a ``Failed password`` line per attempt,
  so a rule counting attempts there should select ``@ssh.auth_method:*`` or ``-@pam.module:*``.
- ``reverse mapping checking getaddrinfo for H [IP] failed``: ``network.client.ip``,
  ``network.client.host``. ``Connection closed by IP``, ``Received disconnect from IP``,
  ``Did not receive identification string from IP``, ``Disconnected from IP``: ``network.client.ip``
  (and port when logged); the message and host/process are kept as they are.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from functools import lru_cache
from typing import Any

import orjson

from secmon.ingest.cef import parse_cef_message

Event = dict[str, Any]

_AUTH = re.compile(
    r"(Failed|Accepted) (\S+) for (invalid user )?(.*?) from (\S+) port (\d+)(?: (\S+?))?(?::.*)?"
)
_INVALID_USER = re.compile(r"[Ii]nvalid user (.*?) from (\S+?)(?: port (\d+))?")
_REPEATED = re.compile(r"message repeated (\d+) times: \[ ?(.*?)\]?")
_REVERSE = re.compile(r"reverse mapping checking getaddrinfo for (\S+) \[([^\]]+)\] failed.*")
# Lines that name the client (and maybe the account) but are no authentication verdict: scanners'
# probes, pre-auth disconnects, sessions ending. The address is checked to be an IP.
_FROM_IP = re.compile(
    r"(?:error: |fatal: )?"
    r"(?:Connection closed by|Received disconnect from|Did not receive identification string from|Disconnected from"
    r"|Connection reset by|Connection from|banner exchange: Connection from|Unable to negotiate with"
    r"|Timeout before authentication for|maximum authentication attempts exceeded for(?: invalid user)?)"
    # The account where the line names one: "by invalid user admin 1.2.3.4 port 22", "for root from 1.2.3.4".
    r"(?: (?:(?:invalid |authenticating )?user )?(\S+?)(?= \S+ port | from ))?"
    r"(?: from)? (\S+?)(?: port (\d+))?(?:[: ].*)?"
)
_PAM_PREFIX = re.compile(r"pam_unix\((\w[\w-]*):(\w+)\): (.*)")
_PAM_AUTH_FAILURE = re.compile(r"authentication failure; (.*)")
_PAM_SESSION = re.compile(r"session (opened|closed) for user ([^\s(]+)")  # "root(uid=0)" on newer PAM
_KEY_VALUE = re.compile(r"(\w+)=(\S*)")

# Mapped message parts stay small and flat; a nested dict is built per event only where needed.


_IPV4_OCTET = r"(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
_IPV4 = re.compile(rf"{_IPV4_OCTET}(?:\.{_IPV4_OCTET}){{3}}")


def is_ip(text: str) -> bool:
    """Whether ``text`` is an IPv4/IPv6 address. IPv4 (nearly all of them) by one regex: brute
    force spreads over so many addresses that a cache of ipaddress results mostly misses."""
    if _IPV4.fullmatch(text) is not None:
        return True
    return ":" in text and _is_ipv6(text)


@lru_cache(maxsize=4096)
def _is_ipv6(text: str) -> bool:
    try:
        ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return True


def _set_client(event: Event, ip: str, port: str | None = None) -> None:
    network = event.get("network")
    if network is None:  # the common case: build the nested dicts in one go
        event["network"] = {"client": {"ip": ip} if port is None else {"ip": ip, "port": int(port)}}
        return
    client = network.setdefault("client", {})
    client["ip"] = ip
    if port is not None:
        client["port"] = int(port)


def parse_sshd(event: Event, message: str) -> int:
    """Add sshd attributes to ``event``; returns how many events the line stands for (>= 1)."""
    first = message[:1]
    if first == "F" or first == "A":
        m = _AUTH.fullmatch(message)
        if m is not None:
            verdict, method, _invalid, user, ip, port, _proto = m.groups()
            event["evt"] = {"name": "authentication", "outcome": "failure" if verdict == "Failed" else "success"}
            event["usr"] = {"name": user}
            event["ssh"] = {"auth_method": method}
            _set_client(event, ip, port)
            return 1
    elif first == "m":
        m = _REPEATED.fullmatch(message)
        if m is not None:
            inner = m.group(2)
            parse_sshd(event, inner)
            event.setdefault("syslog", {})["repeated"] = int(m.group(1))
            return max(1, int(m.group(1)))
    elif first == "I" or first == "i":
        m = _INVALID_USER.fullmatch(message)
        if m is not None:
            user, ip, port = m.groups()
            event["usr"] = {"name": user}
            _set_client(event, ip, port)
            return 1
    elif first == "r":
        m = _REVERSE.fullmatch(message)
        if m is not None:
            _set_client(event, m.group(2))
            event["network"]["client"]["host"] = m.group(1)
            return 1
    elif first == "p":
        if message.startswith("pam_unix("):
            parse_pam(event, message)
            return 1
    m = _FROM_IP.fullmatch(message)
    if m is not None and is_ip(m.group(2)):
        _set_client(event, m.group(2), m.group(3))
        if m.group(1) is not None:
            event["usr"] = {"name": m.group(1)}
    return 1


def parse_pam(event: Event, message: str, service: str | None = None) -> int:
    """PAM lines, either ``pam_unix(sshd:auth): ...`` or a bare message from ``sshd(pam_unix)``."""
    module = "pam_unix"
    m = _PAM_PREFIX.fullmatch(message)
    if m is not None:
        service, _kind, message = m.groups()
    pam: dict[str, Any] = {"module": module}
    if service is not None:
        pam["service"] = service
    event["pam"] = pam
    failure = _PAM_AUTH_FAILURE.fullmatch(message)
    if failure is not None:
        fields = dict(_KEY_VALUE.findall(failure.group(1)))
        event["evt"] = {"name": "authentication", "outcome": "failure"}
        rhost = fields.get("rhost", "")
        if rhost:
            pam["rhost"] = rhost
            if is_ip(rhost):
                _set_client(event, rhost)
            else:
                network = event.setdefault("network", {})
                network.setdefault("client", {})["host"] = rhost
        user = fields.get("user")
        if user:
            event["usr"] = {"name": user}
        return 1
    session = _PAM_SESSION.match(message)
    if session is not None:
        event["usr"] = {"name": session.group(2)}
    return 1


_SUDO = re.compile(r"\s*(\S+) : (.*?)\bCOMMAND=(.*)", re.DOTALL)
_NEW_USER = re.compile(r"new user: (.*)")
_ADD_TO_GROUP = re.compile(r"add '([^']*)' to (?:shadow )?group '([^']*)'")
_ADDED_BY = re.compile(r"user (\S+) added by (\S+) to group (\S+)")
_COMMA_KEY_VALUE = re.compile(r"(\w+)=([^,]*)")


def parse_sudo(event: Event, message: str) -> int:
    """sudo's log of a command: ``alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ;
    COMMAND=/usr/bin/id``, a refusal naming its reason first (``3 incorrect password attempts``,
    ``user NOT in sudoers``, ``command not allowed``): ``evt.name:sudo``, ``evt.outcome``,
    ``usr.name`` (who ran sudo), ``sudo.user`` (as whom), ``sudo.command`` (the rest of the line: a
    command may hold " ; " itself), ``sudo.tty``, ``sudo.pwd``, ``sudo.reason`` (and any other
    ``KEY=value`` sudo logs, lower-cased: ``sudo.group``, ``sudo.env``). PAM lines as PAM's."""
    if message.startswith("pam_unix("):
        return parse_pam(event, message)
    m = _SUDO.fullmatch(message)
    if m is None:
        return 1
    user, head, command = m.groups()
    sudo: dict[str, Any] = {"command": command}
    reason = None
    for part in head.split(" ; "):
        key, sep, value = part.partition("=")
        if sep and key.isupper() and key.isalpha():  # TTY, PWD, USER, GROUP, ENV, TSID, CHROOT, ...
            sudo[key.lower()] = value
        elif part.strip() and reason is None:
            reason = part.strip()
    if reason is not None:
        sudo["reason"] = reason
    event["evt"] = {"name": "sudo", "outcome": "failure" if reason is not None else "success"}
    event["usr"] = {"name": user}
    event["sudo"] = sudo
    return 1


def parse_account_change(event: Event, message: str) -> int:
    """useradd, usermod and gpasswd: ``new user: name=bob, UID=1001, ...`` gives
    ``evt.name:user_created`` and ``target.user.*`` (``name``, ``uid``, ``gid``, ``home``,
    ``shell``); ``add 'bob' to group 'sudo'`` and gpasswd's ``user bob added by root to group
    sudo`` give ``evt.name:group_member_added``, ``target.user.name``, ``target.group.name`` (and
    ``usr.name``, who did it, where the line says)."""
    created = _NEW_USER.fullmatch(message)
    if created is not None:
        fields = {key.lower(): value.strip() for key, value in _COMMA_KEY_VALUE.findall(created.group(1))}
        user = {key: fields[key] for key in ("name", "uid", "gid", "home", "shell") if key in fields}
        event["evt"] = {"name": "user_created"}
        event["target"] = {"user": user}
        return 1
    added = _ADD_TO_GROUP.fullmatch(message)
    if added is not None:
        member, group = added.groups()
    else:
        added = _ADDED_BY.fullmatch(message)
        if added is None:
            return 1
        member, actor, group = added.groups()
        event["usr"] = {"name": actor}
    event["evt"] = {"name": "group_member_added"}
    event["target"] = {"user": {"name": member}, "group": {"name": group}}
    return 1


MessageParser = Callable[[Event, str], int]

# Program (source) -> message parser. PAM lines are recognised by program suffix or prefix.
MESSAGE_PARSERS: dict[str, MessageParser] = {
    "cef": parse_cef_message,  # ArcSight CEF sent as syslog: the tag is "CEF"
    "sshd": parse_sshd,
    "sudo": parse_sudo,
    "useradd": parse_account_change,
    "usermod": parse_account_change,
    "gpasswd": parse_account_change,
}

_PROGRAM_SUFFIX = re.compile(r"\(.*\)$| [\d.]+$")

# Programs that log for another one. OpenSSH 9.8 moved the per-connection work, authentication
# included, out of ``sshd`` into ``sshd-session`` (and 10.0 the authentication on into
# ``sshd-auth``): their lines are sshd's, for ``source:sshd`` rules and sshd's message parser.
PROGRAM_ALIASES: dict[str, str] = {"sshd-session": "sshd", "sshd-auth": "sshd"}


def program_source(program: str, cache: dict[str, str] = {}) -> str:  # noqa: B006 (a deliberate cache)
    """``sshd`` -> sshd, ``sshd(pam_unix)`` -> sshd, ``sshd-session`` -> sshd, ``/usr/sbin/cron``
    -> cron, ``syslogd 1.4.1`` -> syslogd."""
    found = cache.get(program)
    if found is None:
        if len(cache) >= 4096:  # junk input can name endless "programs": keep the cache bounded
            cache.clear()
        name = _PROGRAM_SUFFIX.sub("", program.rsplit("/", 1)[-1]).lower() or program.lower()
        found = cache[program] = PROGRAM_ALIASES.get(name, name)
    return found


def parse_program_message(event: Event, program: str, message: str) -> Event | list[Event]:
    """Set ``source`` from the logging ``program`` and map its ``message`` onto attributes where
    secmon knows the program; a de-duplicated line (``message repeated N times``) gives N events."""
    source = event["source"] = program_source(program)
    if "(pam_unix)" in program:
        parse_pam(event, message, service=source)
        return event
    parse_message = MESSAGE_PARSERS.get(source)
    if parse_message is not None:
        copies = parse_message(event, message)
        if copies > 1:
            # Independent copies (callers may mutate events); orjson is ~10x faster than deepcopy.
            frozen = orjson.dumps(event)
            return [event] + [orjson.loads(frozen) for _ in range(copies - 1)]
    elif message.startswith("pam_unix("):
        parse_pam(event, message)
    return event
