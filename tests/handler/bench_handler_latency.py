"""Handler request latency on the local server (not a test; run it by hand or from `make bench`):

    .venv/bin/python tests/handler/bench_handler_latency.py [-n 200] [--json]

Starts the local stand-ins and the real Functions Framework server (as the tests do), warms it
up with one request (which pays for the lazy imports and session set-up), then times N
sequential push deliveries end to end as Pub/Sub would see them: `started` (create the job +
publish the follow-up: two outbound calls) and `dead_lettered` (one outbound call).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import requests
from handler_envelopes import event_data, make_envelope
from handler_fixtures import FunctionServer, handler_env
from local_standins import start_stand_ins


def _percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("-n", "--requests", type=int, default=200)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    stand_ins = start_stand_ins()
    with tempfile.TemporaryDirectory() as tmp:
        server = FunctionServer(
            env=handler_env(stand_ins.pubsub, stand_ins.vertex),
            log_path=Path(tmp) / "server.log",
        )
        server.start()
        session = requests.Session()
        try:
            first_started = time.perf_counter()
            first = session.post(server.url, json=make_envelope(event_data()), timeout=30)
            first_ms = (time.perf_counter() - first_started) * 1000
            assert first.status_code == 200, first.text
            results: dict[str, list[float]] = {"started": [], "dead_lettered": []}
            for index in range(args.requests):
                for outcome, event in (
                    ("started", event_data("model.train", {"i": index})),
                    ("dead_lettered", event_data("model.unknown", {"i": index})),
                ):
                    envelope = make_envelope(event)
                    started = time.perf_counter()
                    response = session.post(server.url, json=envelope, timeout=30)
                    elapsed = (time.perf_counter() - started) * 1000
                    assert response.json()["outcome"] == outcome, response.text
                    results[outcome].append(elapsed)
        finally:
            server.stop()
            stand_ins.pubsub.stop()
            stand_ins.vertex.stop()

    report = {
        "metric": "handler_request_latency_ms",
        "requests_per_outcome": args.requests,
        "first_request_ms": round(first_ms, 1),
        **{
            outcome: {
                "median_ms": round(statistics.median(samples), 2),
                "p90_ms": round(_percentile(samples, 0.9), 2),
                "p99_ms": round(_percentile(samples, 0.99), 2),
            }
            for outcome, samples in results.items()
        },
    }
    if args.json:
        print(json.dumps(report))
    else:
        print(f"first request (lazy imports, sessions): {report['first_request_ms']} ms")
        for outcome in results:
            stats = report[outcome]
            assert isinstance(stats, dict)
            print(
                f"{outcome}: median {stats['median_ms']} ms, p90 {stats['p90_ms']} ms, "
                f"p99 {stats['p99_ms']} ms over {args.requests} requests"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
