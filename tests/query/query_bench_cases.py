"""Contenders for the query benchmark (run in fresh processes by ``benchmarks.harness.measure_python``).

Every contender generates the same seeded events and returns its answer with its own timings, so the
table can report the matching alone (the Polars contender's table build is reported beside it).
"""

from __future__ import annotations

import random
import time
from typing import Any

from secmon.query import attribute_paths, compile_polars, evaluate, parse

QUERIES = [
    "source:sshd @evt.name:authentication @evt.outcome:failure",
    "source:(cloudtrail OR aws) -@userIdentity.type:Root",
    "@http.status_code:[400 TO 499] -@http.url:*.png",
    "@http.url:\\/api\\/v1* @http.method:(POST OR PUT)",
    '"failed password" -@usr.name:root',
    "CIDR(@network.client.ip, 10.0.0.0/8, 192.168.0.0/16)",
    "@duration:>500000000 env:prod",
    "@usr.name:adm* OR @usr.name:*svc",
]

_USERS = ["root", "admin", "alice", "bob", "deploy-svc", "admin2", "carol"]
_URLS = ["/api/v1/users", "/api/v2/items", "/static/logo.png", "/login", "/api/v1/orders/7"]


def make_events(count: int, seed: int = 7) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for i in range(count):
        ip = rng.choice([f"10.{rng.randrange(256)}.{rng.randrange(256)}.1", f"203.0.113.{rng.randrange(256)}", "192.168.1.5", "2001:db8::1"])
        kind = i % 3
        if kind == 0:
            user = rng.choice(_USERS)
            outcome = rng.choice(["failure", "failure", "success"])
            events.append(
                {
                    "source": "sshd",
                    "message": f"{'Failed' if outcome == 'failure' else 'Accepted'} password for {user} from {ip} port {rng.randrange(1024, 65535)} ssh2",
                    "evt": {"name": "authentication", "outcome": outcome},
                    "usr": {"name": user},
                    "network": {"client": {"ip": ip}},
                    "tags": ["env:prod" if rng.random() < 0.7 else "env:dev"],
                }
            )
        elif kind == 1:
            events.append(
                {
                    "source": rng.choice(["cloudtrail", "aws"]),
                    "evt": {"name": rng.choice(["ConsoleLogin", "GetSecretValue", "AssumeRole"])},
                    "userIdentity": {"type": rng.choice(["IAMUser", "AssumedRole", "Root"])},
                    "network": {"client": {"ip": ip}},
                }
            )
        else:
            events.append(
                {
                    "source": "nginx",
                    "http": {"status_code": rng.choice([200, 201, 301, 404, 403, 500]), "url": rng.choice(_URLS), "method": rng.choice(["GET", "POST", "PUT"])},
                    "duration": rng.randrange(1_000_000, 2_000_000_000),
                    "network": {"client": {"ip": ip}},
                    "usr": {"name": rng.choice(_USERS)},
                    "tags": ["env:prod"],
                }
            )
    return events


def _paths() -> list[str]:
    return sorted(set().union(*(attribute_paths(parse(q)) for q in QUERIES)))


def polars_counts(count: int) -> tuple[list[int], float, float]:
    """Match counts, seconds to build the event table, seconds to parse, compile and match."""
    from query_strategies import to_frame

    events = make_events(count)
    started = time.perf_counter()
    frame = to_frame(events, _paths())
    built = time.perf_counter()
    expressions = [compile_polars(parse(q), frame.schema).alias(f"q{i}") for i, q in enumerate(QUERIES)]
    totals = frame.select([e.sum() for e in expressions]).row(0)
    matched = time.perf_counter()
    return [int(t) for t in totals], built - started, matched - built


def reference_counts(count: int) -> tuple[list[int], float, float]:
    """Match counts, no table (0 s), seconds to parse and evaluate every event."""
    events = make_events(count)
    started = time.perf_counter()
    queries = [parse(q) for q in QUERIES]
    counts = [sum(1 for event in events if evaluate(query, event)) for query in queries]
    return counts, 0.0, time.perf_counter() - started
