"""The CFDR supercomputer logs (loghub's BGL and Thunderbird sets): detection, the epoch time,
the syslog records read as syslog, BGL's RAS records, the prefilter's promises."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from secmon.ingest import IngestStats, Source, parse_lines
from tests.ingest.conftest import count_rule, same_signals_with_and_without_prefilter
from tests.ingest.test_verbatim import assert_prefilter_promises_hold

# Lines as loghub publishes them (Thunderbird_2k.log, BGL_2k.log).
THUNDERBIRD = [
    "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond(pam_unix)[2915]: session closed for user root",
    "- 1131566461 2005.11.09 dn228 Nov 9 12:01:01 dn228/dn228 crond[2916]: (root) CMD (run-parts /etc/cron.hourly)",
    "- 1131566461 2005.11.09 tbird-admin1 Nov 9 12:01:01 local@tbird-admin1 /apps/x86_64/system/ganglia-3.0.1/sbin/gmetad[1682]: "
    "data_thread() got not answer from any [Thunderbird_A8] datasource",
    "- 1131566479 2005.11.09 #8# Nov 9 12:01:19 #8#/#8# sshd[19023]: Local disconnected: Connection closed.",
    "VAPI 1131566525 2005.11.09 tn231 Nov 9 12:02:05 tn231/tn231 kernel: [KERNEL_IB][ib_mad_dispatch][/mnt/src/ib_mad.c:451]",
]
BGL = [
    "- 1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.363779 R02-M1-N0-C:J12-U11 RAS KERNEL INFO "
    "instruction cache parity error corrected",
    "KERNDTLB 1118536327 2005.06.11 R30-M0-N9-C:J16-U01 2005-06-11-17.32.07.581048 R30-M0-N9-C:J16-U01 RAS KERNEL FATAL "
    "data TLB error interrupt",
]


def test_the_format_is_detected_from_the_lines() -> None:
    for lines in (THUNDERBIRD, BGL):
        source = Source("x.log", data=("\n".join(lines) + "\n").encode())
        assert source.format.name == "cfdr"


def test_thunderbird_records_are_syslog_records_at_the_epoch_time() -> None:
    events = parse_lines(THUNDERBIRD, format="cfdr")
    assert [e["timestamp"] for e in events] == [1131566461000] * 3 + [1131566479000, 1131566525000]
    pam, cron, gmetad, sshd, kernel = events
    assert pam["host"] == "dn228" and pam["source"] == "crond" and pam["usr"]["name"] == "root"
    assert pam["pam"]["module"] == "pam_unix" and pam["message"] == "session closed for user root"
    assert cron["syslog"] == {"appname": "crond", "pid": "2916"} and "cfdr" not in cron
    assert gmetad["source"] == "gmetad" and gmetad["host"] == "tbird-admin1"
    assert sshd["source"] == "sshd" and sshd["host"] == "#8#"
    assert kernel["cfdr"] == {"alert_category": "VAPI"} and kernel["source"] == "kernel"


def test_bgl_records_give_component_level_and_the_fraction_of_the_second() -> None:
    info, fatal = parse_lines(BGL, format="cfdr")
    assert info["timestamp"] == 1117838570363 and info["host"] == "R02-M1-N0-C:J12-U11"
    assert info["service"] == "KERNEL" and info["bgl"] == {"type": "RAS", "level": "INFO"} and info["status"] == "info"
    assert info["message"] == "instruction cache parity error corrected" and "cfdr" not in info
    assert fatal["status"] == "critical" and fatal["cfdr"] == {"alert_category": "KERNDTLB"}
    assert fatal["timestamp"] == 1118536327581


def test_a_record_secmon_does_not_know_keeps_its_text_and_bad_lines_are_counted() -> None:
    stats = IngestStats()
    events = parse_lines(["- 1131566461 2005.11.09 dn228 something else entirely",
                          "- 123456789 1973.11.29 dn228 Nov 29 21:33:09 dn228 crond[1]: too early",
                          "not a cfdr line"], format="cfdr", stats=stats)
    assert events == [{"timestamp": 1131566461000, "host": "dn228", "message": "something else entirely"}]
    assert stats.rejected == {"bad_timestamp": 1, "unparsed_line": 1}


def brute_force_lines(seed: int) -> list[str]:
    """Thunderbird-style sshd and PAM failures from a few addresses, among unrelated lines."""
    rnd = random.Random(seed)
    lines = []
    t = 1131566461
    for i in range(600):
        t += rnd.randrange(0, 3)
        clock = f"Nov {9 + (t - 1131566461) // 86400} {(12 + (t - 1131566461) // 3600) % 24:02d}:{(t // 60) % 60:02d}:{t % 60:02d}"
        node = rnd.choice(["tbird-admin1", "dn228", "#8#"])
        ip = f"10.100.4.{rnd.randrange(1, 4)}"
        body = rnd.choice([
            f"sshd[{i}]: Failed password for invalid user guest from {ip} port {40000 + i} ssh2",
            f"sshd[{i}]: Failed password for root from {ip} port {40000 + i} ssh2",
            f"sshd(pam_unix)[{i}]: authentication failure; logname= uid=0 euid=0 tty=NODEVssh ruser= rhost={ip}  user=root",
            f"sshd[{i}]: Accepted publickey for alice from {ip} port {40000 + i} ssh2",
            f"crond(pam_unix)[{i}]: session opened for user root by (uid=0)",
            f"ntpd[{i}]: synchronized to 10.100.20.250, stratum 3",
        ])
        alert = "-" if rnd.random() < 0.9 else "VAPI"
        lines.append(f"{alert} {t} 2005.11.09 {node} {clock} {node}/{node} {body}")
    return lines


@pytest.mark.parametrize("seed", [1, 2])
def test_attribute_promises_to_the_prefilter_hold(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "tbird.log"
    path.write_text("\n".join(brute_force_lines(seed) + BGL + THUNDERBIRD) + "\n")
    assert_prefilter_promises_hold(path)


@pytest.mark.parametrize("seed", [1, 2])
def test_an_sshd_rule_over_thunderbird_gives_the_same_signals_with_and_without_the_prefilter(tmp_path: Path, seed: int) -> None:
    path = tmp_path / "tbird.log"
    path.write_text("\n".join(brute_force_lines(seed)) + "\n")
    rule = count_rule("ssh-failures", "source:sshd @evt.outcome:failure", "@network.client.ip", 10)
    fast = same_signals_with_and_without_prefilter([rule], path)
    assert len({s.group_by["@network.client.ip"] for s in fast.signals}) == 3 and fast.skipped_lines > 0


# Lines as loghub publishes them (HPC_2k.log): \042 is how the dataset writes a double quote.
HPC = [
    "134681 node-246 unix.hw state_change.unavailable 1077804742 1 Component State Change: Component \\042alt0\\042 is in the unavailable state (HWID=1463)",
    "2385 node-153 action start 1074119817 1 clusterAddMember  (command 1902)",
    "460060 node-70 node status 1145564453 1 running",
]


def test_hpc_lines_are_detected_and_give_node_component_state_and_epoch_time() -> None:
    source = Source("HPC_2k.log", data=("\n".join(HPC) + "\n").encode())
    assert source.format.name == "hpc"
    hw, action, status = parse_lines(HPC, format="hpc")
    assert hw == {"timestamp": 1077804742000, "host": "node-246", "service": "unix.hw",
                  "message": "Component State Change: Component \\042alt0\\042 is in the unavailable state (HWID=1463)",
                  "hpc": {"log_id": "134681", "state": "state_change.unavailable", "flag": "1"}}
    assert action["service"] == "action" and action["hpc"]["state"] == "start" and action["timestamp"] == 1074119817000
    assert status["message"] == "running"
    stats = IngestStats()
    assert parse_lines(["1 node-1 a b 123 1 too early", "not an hpc line"], format="hpc", stats=stats) == []
    assert stats.rejected == {"unparsed_line": 2}


def test_hpc_attribute_promises_to_the_prefilter_hold(tmp_path: Path) -> None:
    rnd = random.Random(3)
    lines = [f"{i} node-{rnd.randrange(300)} {rnd.choice(['unix.hw', 'node', 'action'])} "
             f"{rnd.choice(['state_change.unavailable', 'status', 'start', 'halt'])} {1077804742 + i} 1 "
             f"{rnd.choice(['running', 'boot (command 1)', 'Component State Change'])}" for i in range(300)]
    path = tmp_path / "hpc.log"
    path.write_text("\n".join(lines + HPC) + "\n")
    assert_prefilter_promises_hold(path)
