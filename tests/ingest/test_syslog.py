"""Syslog envelope, sshd and PAM message parsers, the year rollover, and the loghub facts."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from secmon.ingest import IngestStats, parse_events, parse_lines

UTC = dt.timezone.utc


def one(line: str, **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("year", 2015)
    events = parse_lines([line], format="syslog", **kwargs)
    assert len(events) == 1, events
    return events[0]


def ms(*args: int) -> int:
    return int(dt.datetime(*args, tzinfo=UTC).timestamp() * 1000)


# (line, attributes expected as dotted path -> value)
SSHD_CASES: list[tuple[str, dict[str, Any]]] = [
    (
        "Dec 10 06:55:48 LabSZ sshd[24200]: Failed password for invalid user webmaster from 173.234.31.186 port 38926 ssh2",
        {"evt.name": "authentication", "evt.outcome": "failure", "usr.name": "webmaster",
         "network.client.ip": "173.234.31.186", "network.client.port": 38926, "ssh.auth_method": "password",
         "source": "sshd", "service": "sshd", "host": "LabSZ", "syslog.pid": "24200"},
    ),
    (
        "Dec 10 09:32:20 LabSZ sshd[24680]: Accepted password for fztu from 119.137.62.142 port 49116 ssh2",
        {"evt.outcome": "success", "usr.name": "fztu", "network.client.ip": "119.137.62.142"},
    ),
    (
        "Mar  3 10:00:00 h sshd[1]: Accepted publickey for deploy from 2001:db8::1 port 50000 ssh2: RSA SHA256:abc",
        {"evt.outcome": "success", "ssh.auth_method": "publickey", "network.client.ip": "2001:db8::1"},
    ),
    (
        "Dec 10 08:24:40 LabSZ sshd[24363]: Failed none for invalid user 0 from 5.188.10.180 port 49811 ssh2",
        {"evt.outcome": "failure", "ssh.auth_method": "none", "usr.name": "0"},
    ),
    (
        "Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user webmaster from 173.234.31.186",
        {"usr.name": "webmaster", "network.client.ip": "173.234.31.186", "evt.outcome": None},
    ),
    (
        "Dec 10 06:55:46 LabSZ sshd[24200]: reverse mapping checking getaddrinfo for ns.marryaldkfaczcz.com "
        "[173.234.31.186] failed - POSSIBLE BREAK-IN ATTEMPT!",
        {"network.client.ip": "173.234.31.186", "network.client.host": "ns.marryaldkfaczcz.com", "evt.name": None},
    ),
    (
        "Dec 10 07:07:38 LabSZ sshd[24206]: Connection closed by 52.80.34.196 [preauth]",
        {"network.client.ip": "52.80.34.196", "message": "Connection closed by 52.80.34.196 [preauth]"},
    ),
    (
        "Dec 10 07:02:47 LabSZ sshd[24203]: Received disconnect from 52.80.34.196: 11: Bye Bye [preauth]",
        {"network.client.ip": "52.80.34.196", "evt.name": None},
    ),
    (
        "Dec 10 09:11:20 LabSZ sshd[24435]: error: Received disconnect from 103.99.0.122: 14: "
        "No more user authentication methods available. [preauth]",
        {"network.client.ip": "103.99.0.122"},
    ),
    (
        "Dec 10 06:55:46 LabSZ sshd[24200]: pam_unix(sshd:auth): authentication failure; logname= uid=0 euid=0 "
        "tty=ssh ruser= rhost=173.234.31.186  user=root",
        {"evt.name": "authentication", "evt.outcome": "failure", "network.client.ip": "173.234.31.186",
         "pam.rhost": "173.234.31.186", "usr.name": "root", "pam.module": "pam_unix", "pam.service": "sshd"},
    ),
    (
        "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 "
        "tty=NODEVssh ruser= rhost=n219076184117.netvigator.com  user=root",
        {"source": "sshd", "service": "sshd(pam_unix)", "evt.outcome": "failure", "network.client.ip": None,
         "network.client.host": "n219076184117.netvigator.com", "pam.rhost": "n219076184117.netvigator.com",
         "usr.name": "root"},
    ),
    (
        "Jun 15 02:04:59 combo sshd(pam_unix)[20882]: session opened for user test by (uid=509)",
        {"usr.name": "test", "evt.outcome": None},
    ),
    (
        "Jul 27 14:42:00 combo syslogd 1.4.1: restart.",
        {"source": "syslogd", "service": "syslogd 1.4.1", "message": "restart."},
    ),
    (
        "Jul 27 14:42:00 combo a message without a program tag",
        {"source": None, "host": "combo", "message": "a message without a program tag"},
    ),
    # Current OpenSSH's pre-auth lines: the client, and the account where the line names one.
    (
        "Nov 28 10:00:01 h1 sshd[101]: Connection closed by authenticating user root 203.0.113.9 port 50522 [preauth]",
        {"network.client.ip": "203.0.113.9", "network.client.port": 50522, "usr.name": "root", "evt.outcome": None},
    ),
    (
        "Nov 28 10:00:02 h1 sshd[102]: Disconnected from invalid user admin 203.0.113.9 port 50523 [preauth]",
        {"network.client.ip": "203.0.113.9", "usr.name": "admin", "evt.outcome": None},
    ),
    (
        "Nov 28 10:00:03 h1 sshd[103]: error: maximum authentication attempts exceeded for invalid user oracle "
        "from 203.0.113.12 port 50602 ssh2 [preauth]",
        {"network.client.ip": "203.0.113.12", "network.client.port": 50602, "usr.name": "oracle", "evt.outcome": None},
    ),
    (
        "Nov 28 10:00:04 h1 sshd[104]: banner exchange: Connection from 203.0.113.9 port 50528: invalid format",
        {"network.client.ip": "203.0.113.9", "usr.name": None},
    ),
    (
        "Nov 28 10:00:05 h1 sshd[105]: Unable to negotiate with 203.0.113.9 port 50529: no matching key exchange method found.",
        {"network.client.ip": "203.0.113.9", "network.client.port": 50529},
    ),
    (
        'Nov 28 10:00:06 h1 sshd[106]: Connection from 203.0.113.10 port 50600 on 10.0.0.5 port 22 rdomain ""',
        {"network.client.ip": "203.0.113.10", "network.client.port": 50600, "usr.name": None},
    ),
    (
        "Nov 28 10:00:07 h1 sshd[107]: fatal: Timeout before authentication for 203.0.113.13 port 50603",
        {"network.client.ip": "203.0.113.13"},
    ),
    (
        "Nov 28 10:00:08 h1 sshd[108]: Connection closed by authenticating user root host.example.com port 50605 [preauth]",
        {"network.client.ip": None, "usr.name": None},
    ),
    (
        "Dec 10 06:55:46 sshd[7]: error: Received disconnect from 1.2.3.4: 3: bye",
        {"host": None, "source": "sshd", "syslog.pid": "7", "network.client.ip": "1.2.3.4",
         "message": "error: Received disconnect from 1.2.3.4: 3: bye"},
    ),
    (
        # OpenSSH 9.8+ logs authentication from sshd-session (10.0+: sshd-auth): still sshd's lines.
        "Nov 28 10:00:01 deb13 sshd-session[4242]: Failed password for root from 203.0.113.9 port 22221 ssh2",
        {"source": "sshd", "service": "sshd-session", "syslog.appname": "sshd-session", "evt.outcome": "failure",
         "network.client.ip": "203.0.113.9", "usr.name": "root"},
    ),
    (
        "2026-11-28T10:00:02.123456+00:00 deb13 sshd-auth[4243]: pam_unix(sshd:auth): authentication failure; "
        "logname= uid=0 euid=0 tty=ssh ruser= rhost=203.0.113.9  user=root",
        {"source": "sshd", "service": "sshd-auth", "evt.outcome": "failure", "pam.module": "pam_unix",
         "network.client.ip": "203.0.113.9"},
    ),
    (
        "Nov 28 10:00:03 h /usr/sbin/CRON[77]: (root) CMD (true)",
        {"source": "cron", "service": "/usr/sbin/CRON"},
    ),
    (
        "<38>Dec 10 06:55:46 LabSZ sshd[24200]: Invalid user x from 1.2.3.4",
        {"status": "info", "syslog.facility": 4, "syslog.severity": 6, "usr.name": "x"},
    ),
]


def get(event: dict[str, Any], path: str) -> Any:
    node: Any = event
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


@pytest.mark.parametrize(("line", "expected"), SSHD_CASES, ids=[c[0][:60] for c in SSHD_CASES])
def test_sshd_and_pam_lines(line: str, expected: dict[str, Any]) -> None:
    event = one(line)
    for path, value in expected.items():
        assert get(event, path) == value, path


def test_message_repeated_counts_n_times() -> None:
    line = ("Dec 10 07:13:56 LabSZ sshd[24227]: message repeated 5 times: "
            "[ Failed password for root from 5.36.59.76 port 42393 ssh2]")
    events = parse_lines([line], format="syslog", year=2015)
    assert len(events) == 5
    assert all(get(e, "network.client.ip") == "5.36.59.76" and get(e, "evt.outcome") == "failure" for e in events)
    events[0]["usr"]["name"] = "changed"  # copies, not one dict five times
    assert events[1]["usr"]["name"] == "root"


def test_rfc3164_timestamp_uses_the_year_option() -> None:
    assert one("Dec 10 06:55:46 LabSZ sshd[1]: x")["timestamp"] == ms(2015, 12, 10, 6, 55, 46)


def test_december_to_january_rolls_the_year_over() -> None:
    lines = [
        "Dec 31 23:59:58 h sshd[1]: a",
        "Jan  1 00:00:01 h sshd[1]: b",
        "Dec 31 23:59:59 h sshd[1]: c (late, out of order)",
        "Jan  2 00:00:00 h sshd[1]: d",
    ]
    stamps = [e["timestamp"] for e in parse_lines(lines, format="syslog", year=2015)]
    assert stamps == [ms(2015, 12, 31, 23, 59, 58), ms(2016, 1, 1, 0, 0, 1), ms(2015, 12, 31, 23, 59, 59),
                      ms(2016, 1, 2)]


def test_default_year_is_never_in_the_future() -> None:
    now = dt.datetime.now(UTC)
    stamp = one("Dec 31 23:59:59 h sshd[1]: x", year=None)["timestamp"]
    assert stamp <= now.timestamp() * 1000 + 86_400_000
    assert dt.datetime.fromtimestamp(stamp / 1000, UTC).year in (now.year, now.year - 1)


def test_rfc5424_with_structured_data() -> None:
    line = ('<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 '
            '[exampleSDID@32473 iut="3" eventSource="Appli\\"cation" eventID="1011"][meta seq="1"] An application event')
    event = one(line)
    assert event["timestamp"] == ms(2003, 10, 11, 22, 14, 15) + 3
    assert event["host"] == "mymachine.example.com"
    assert event["service"] == "evntslog" and event["source"] == "evntslog"
    assert event["message"] == "An application event"
    assert event["syslog"]["msgid"] == "ID47"
    assert event["syslog"]["structured_data"] == {
        "exampleSDID@32473": {"iut": "3", "eventSource": 'Appli"cation', "eventID": "1011"},
        "meta": {"seq": "1"},
    }
    assert event["status"] == "notice"


def test_unparsable_lines_are_counted_with_file_and_line() -> None:
    stats = IngestStats()
    events = parse_lines(["Dec 10 06:55:46 h sshd[1]: ok", "garbage", "Nov 31 00:00:00 h x: y"], format="syslog",
                         year=2015, stats=stats, name="auth.log")
    assert len(events) == 1
    assert stats.rejected == Counter({"unparsed_line": 1, "bad_timestamp": 1})
    assert stats.examples["unparsed_line"] == ["auth.log:2: garbage"]
    assert stats.examples["bad_timestamp"][0].startswith("auth.log:3: no such day 2015-11-31")


# --- loghub ground truth -----------------------------------------------------------------------


def max_in_window(stamps: list[int], window_ms: int) -> int:
    stamps = sorted(stamps)
    best = start = 0
    for end in range(len(stamps)):
        while stamps[end] - stamps[start] > window_ms:
            start += 1
        best = max(best, end - start + 1)
    return best


def failures_by_ip(events: list[dict[str, Any]], keep: Callable[[dict[str, Any]], bool]) -> dict[str, list[int]]:
    by_ip: dict[str, list[int]] = defaultdict(list)
    for e in events:
        if get(e, "evt.outcome") == "failure" and keep(e):
            by_ip[get(e, "network.client.ip")].append(e["timestamp"])
    return by_ip


def test_openssh_2k_facts(dataset: Callable[[str], Path]) -> None:
    stats = IngestStats()
    events = parse_events(dataset("loghub/OpenSSH/OpenSSH_2k.log"), year=2015, stats=stats)
    assert stats.lines_read == 2000 and stats.rejected_total == 0
    assert len(events) == 2000 + 2 * 4  # two "message repeated 5 times" lines stand for 5 events each
    passwords = failures_by_ip(events, lambda e: get(e, "ssh.auth_method") == "password")
    assert sum(map(len, passwords.values())) == 528  # 527 in ground_truth.json + "invalid user  0101" (two spaces)
    assert len(passwords) == 23
    at_5 = sorted(ip for ip, s in passwords.items() if max_in_window(s, 300_000) >= 5)
    at_10 = sorted(ip for ip, s in passwords.items() if max_in_window(s, 300_000) >= 10)
    assert at_5 == ["103.99.0.122", "106.5.5.195", "112.95.230.3", "119.4.203.64", "123.235.32.19",
                    "183.62.140.253", "185.190.58.151", "187.141.143.180", "5.188.10.180", "5.36.59.76", "60.2.12.12"]
    assert at_10 == ["103.99.0.122", "112.95.230.3", "183.62.140.253", "185.190.58.151", "187.141.143.180",
                     "5.188.10.180"]
    assert max_in_window(passwords["183.62.140.253"], 300_000) == 147
    accepted = [e for e in events if get(e, "evt.outcome") == "success"]
    assert [(get(e, "usr.name"), get(e, "network.client.ip")) for e in accepted] == [("fztu", "119.137.62.142")]
    assert events[0]["timestamp"] == ms(2015, 12, 10, 6, 55, 46)
    # PAM lines are failures too (with pam.module), so rules that count attempts pick one layer.
    pam = failures_by_ip(events, lambda e: get(e, "pam.module") == "pam_unix")
    assert len(pam["183.62.140.253"]) == 287


def test_linux_2k_facts(dataset: Callable[[str], Path]) -> None:
    stats = IngestStats()
    events = parse_events(dataset("loghub/Linux/Linux_2k.log"), year=2005, stats=stats)
    assert stats.lines_read == 2000 and stats.rejected_total == 0 and len(events) == 2000
    failures = [e for e in events if get(e, "evt.name") == "authentication" and get(e, "evt.outcome") == "failure"]
    assert len(failures) == 490
    sshd = failures_by_ip([e for e in failures if e.get("source") == "sshd"], lambda e: True)
    assert max_in_window(sshd["150.183.249.110"], 300_000) == 80
    hosts = Counter(get(e, "network.client.host") for e in failures if get(e, "network.client.host"))
    assert hosts["n219076184117.netvigator.com"] == 23
    assert Counter(get(e, "usr.name") for e in failures)["root"] == 351


def test_rfc3339_dated_bsd_syslog() -> None:
    line = "2024-05-01T10:00:00.123456+02:00 web-1 sshd[811]: Failed password for root from 9.9.9.9 port 2 ssh2"
    event = one(line)
    assert event["timestamp"] == ms(2024, 5, 1, 8, 0, 0) + 123
    assert event["host"] == "web-1" and event["source"] == "sshd"
    assert get(event, "evt.outcome") == "failure" and get(event, "network.client.ip") == "9.9.9.9"
    from secmon.ingest import Source

    assert Source("t", data=(line + "\n").encode()).format.name == "syslog"


def test_is_ip_matches_ipaddress() -> None:
    import ipaddress

    from hypothesis import given
    from hypothesis import strategies as st

    from secmon.ingest.messages import is_ip

    def reference(text: str) -> bool:
        try:
            ipaddress.ip_address(text)
        except ValueError:
            return False
        return True

    octets = st.one_of(st.integers(0, 300).map(str), st.sampled_from(["01", "00", "256", "-1", "", "1a"]))
    candidates = st.one_of(
        st.lists(octets, min_size=3, max_size=5).map(".".join),
        st.ip_addresses().map(str),
        st.text(alphabet="0123456789abcdef:.", max_size=20),
    )

    @given(candidates)
    def check(text: str) -> None:
        assert is_ip(text) == reference(text), text

    check()


def test_default_ssh_rules_fire_on_openssh_9_8_session_lines(tmp_path: Path) -> None:
    from secmon import Engine, default_rules

    lines = [f"Nov 28 10:00:{i:02d} deb13 sshd-session[{100 + i}]: Failed password for root from 203.0.113.9 port {40000 + i} ssh2"
             for i in range(12)]
    lines.append("Nov 28 10:00:30 deb13 sshd-session[200]: Accepted password for root from 203.0.113.9 port 41000 ssh2")
    path = tmp_path / "auth.log"
    path.write_text("\n".join(lines) + "\n")
    for prefilter in (True, False):
        fired = {s.rule_id for s in Engine(default_rules(), year=2026, prefilter=prefilter).detect([path]).signals}
        assert {"ssh-brute-force", "ssh-brute-force-then-success"} <= fired, prefilter


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("   alice : TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/usr/bin/id",
         {"evt.outcome": "success", "usr.name": "alice", "sudo.user": "root", "sudo.command": "/usr/bin/id", "sudo.tty": "pts/0"}),
        ("alice : TTY=pts/0 ; PWD=/srv ; USER=postgres ; GROUP=db ; ENV=PGDATA=/x ; COMMAND=/bin/sh -c 'a ; b'",
         {"evt.outcome": "success", "sudo.group": "db", "sudo.env": "PGDATA=/x", "sudo.command": "/bin/sh -c 'a ; b'",
          "sudo.reason": None}),
        ("    bob : user NOT in sudoers ; TTY=pts/1 ; PWD=/home/bob ; USER=root ; COMMAND=/bin/bash",
         {"evt.name": "sudo", "evt.outcome": "failure", "sudo.reason": "user NOT in sudoers", "usr.name": "bob"}),
        ("alice : 3 incorrect password attempts ; TTY=pts/0 ; PWD=/home/alice ; USER=root ; COMMAND=/bin/bash",
         {"evt.outcome": "failure", "sudo.reason": "3 incorrect password attempts"}),
        ("unable to resolve host web-1: Name or service not known", {"evt.name": None, "usr.name": None}),
        ("pam_unix(sudo:session): session opened for user root(uid=0) by alice(uid=1000)",
         {"pam.service": "sudo", "usr.name": "root", "evt.name": None}),
    ],
)
def test_sudo_lines(message: str, expected: dict[str, Any]) -> None:
    event = one(f"Nov 28 10:00:00 web-1 sudo: {message}", year=2026)
    assert event["source"] == "sudo"
    for path, value in expected.items():
        assert get(event, path) == value, path


def test_account_changes() -> None:
    created = one("Nov 28 10:00:05 web-1 useradd[900]: new user: name=bob, UID=1001, GID=1001, home=/home/bob, shell=/bin/bash, from=/dev/pts/0")
    assert created["evt"] == {"name": "user_created"}
    assert created["target"] == {"user": {"name": "bob", "uid": "1001", "gid": "1001", "home": "/home/bob", "shell": "/bin/bash"}}
    added = one("Nov 28 10:00:06 web-1 usermod[901]: add 'bob' to shadow group 'wheel'")
    assert added["evt"] == {"name": "group_member_added"} and added["target"] == {"user": {"name": "bob"}, "group": {"name": "wheel"}}
    by = one("Nov 28 10:00:07 web-1 gpasswd[902]: user bob added by alice to group docker")
    assert by["usr"] == {"name": "alice"} and by["target"]["group"] == {"name": "docker"}
    assert "evt" not in one("Nov 28 10:00:08 web-1 useradd[903]: new group: name=bob, GID=1001")
