"""The handler under load (not a test; run it by hand or from `make bench`):

    .venv/bin/python tests/handler/bench_handler_load.py [-n 2000] [-c 16] [--json]

Starts the local stand-ins and the real Functions Framework server (as the tests do), warms it
up with one request, then sends N push deliveries from C concurrent senders: the shuffled mix
of handler_load.py (valid events, redeliveries, keyed copies, poison). Checks what
test_handler_load.py checks (exit 1, naming what failed, if anything does) and reports the
latency each sender saw (p50/p99, per kind of delivery), the throughput and the peak resident
set of the server's processes (gunicorn's arbiter and its worker, VmHWM).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests
from handler_envelopes import event_data, make_envelope
from handler_fixtures import FunctionServer, handler_env
from handler_load import (
    DUPLICATE,
    KEYED_COPY,
    KINDS,
    VALID,
    Outcome,
    deliver,
    latency_summary,
    outcome,
    peak_rss_mb,
    plan,
)
from local_standins import start_stand_ins


def problems(seen: Outcome) -> list[str]:
    """What test_handler_load.py asserts, as sentences (empty: all held)."""
    found = []
    for kind in (VALID, DUPLICATE, KEYED_COPY):
        bad = {status: n for status, n in seen.statuses[kind].items() if status != 200}
        if bad:
            found.append(f"{kind} deliveries answered {bad}")
    if seen.jobs != seen.expected_jobs:
        found.append(
            f"jobs: {len(seen.expected_jobs - seen.jobs)} missing, "
            f"{len(seen.jobs - seen.expected_jobs)} unexpected"
        )
    expected = {mid: [code] for mid, code in seen.poison_expected.items()}
    if seen.dead_lettered != expected:
        found.append("dead letters differ from one per poison message with its code")
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--deliveries", type=int, default=2000)
    parser.add_argument("-c", "--senders", type=int, default=16)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    stand_ins = start_stand_ins()
    with tempfile.TemporaryDirectory() as tmp:
        server = FunctionServer(
            env=handler_env(stand_ins.pubsub, stand_ins.vertex),
            log_path=Path(tmp) / "server.log",
        )
        server.start()
        try:
            warm = requests.post(server.url, json=make_envelope(event_data()), timeout=30)
            assert warm.status_code == 200, warm.text
            stand_ins.reset()
            deliveries = plan(args.deliveries)
            started = time.perf_counter()
            sent = deliver(server.url, deliveries, args.senders)
            wall = time.perf_counter() - started
            assert server.process is not None
            rss = peak_rss_mb(server.process.pid)
            seen = outcome(sent, stand_ins)
        finally:
            server.stop()
            stand_ins.pubsub.stop()
            stand_ins.vertex.stop()

    by_kind = {
        kind: latency_summary([s.seconds * 1000 for s in sent if s.delivery.kind == kind])
        for kind in KINDS
    }
    report: dict[str, Any] = {
        "metric": "handler_load",
        "deliveries": args.deliveries,
        "senders": args.senders,
        "kinds": {kind: sum(d.kind == kind for d in deliveries) for kind in KINDS},
        "jobs": len(seen.jobs),
        "dead_letters": sum(len(v) for v in seen.dead_lettered.values()),
        "wall_s": round(wall, 2),
        "per_second": round(args.deliveries / wall, 1),
        "latency": latency_summary(seen.latencies_ms),
        "latency_by_kind": by_kind,
        "server_peak_rss_mb": rss,
        "problems": problems(seen),
    }
    if args.json:
        print(json.dumps(report))
    else:
        latency = report["latency"]
        print(
            f"{args.deliveries} deliveries from {args.senders} senders in {report['wall_s']} s "
            f"({report['per_second']}/s): p50 {latency['p50_ms']} ms, p99 {latency['p99_ms']} ms; "
            f"server peak RSS {rss['total']} MB; {report['jobs']} jobs, "
            f"{report['dead_letters']} dead letters"
        )
        for kind, stats in by_kind.items():
            print(f"  {kind}: p50 {stats['p50_ms']} ms, p99 {stats['p99_ms']} ms")
    for problem in report["problems"]:
        print(f"bench_handler_load.py: error: {problem}", file=sys.stderr)
    return 1 if report["problems"] else 0


if __name__ == "__main__":
    sys.exit(main())
