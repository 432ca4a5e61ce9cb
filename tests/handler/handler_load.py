"""The handler under load: many push deliveries from concurrent senders to the real Functions
Framework server, against the local Pub/Sub and Vertex AI stand-ins.

A mix, shuffled with a fixed seed so that duplicates often arrive at the same time as their
original: valid events (each its own message), redeliveries of them (the same envelope again),
copies of keyed events published as new messages (new message id, same idempotency key), and
poison messages of every permanent kind, the ones that cannot travel included. `plan` builds
it, `deliver` sends it, `outcome` compares what the stand-ins saw with what must have happened.
Used by tests/handler/test_handler_load.py (a few hundred deliveries) and by
tests/handler/bench_handler_load.py (`make bench`: 2,000 from 16 senders).
"""

from __future__ import annotations

import json
import random
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from handler_envelopes import make_envelope
from handler_fixtures import DEAD_LETTER_TOPIC
from local_standins import StandIns

from workflow_handler import events

VALID, DUPLICATE, KEYED_COPY, POISON = "valid", "duplicate", "keyed_copy", "poison"
KINDS = (VALID, DUPLICATE, KEYED_COPY, POISON)
WORKFLOW = "train-model"

# Poison: (error code, message data). Raw JSON text where json.dumps cannot write the value.
POISON_DATA: list[tuple[str, bytes]] = [
    ("non_finite_number", b'{"type":"model.train","payload":{"lr":1e400}}'),
    ("non_finite_number", b'{"type":"model.train","payload":{"w":[1,NaN]}}'),
    ("unpaired_surrogate", b'{"type":"model.train","payload":{},"correlation_id":"o-\\ud800"}'),
    ("unpaired_surrogate", b'{"type":"model.train","payload":{"s":"\\udc00"}}'),
    ("bad_json", b'{"type":"model.train","payload":{}'),
    ("bad_utf8", b'{"type":"model.train","payload":{"s":"\xff"}}'),
    ("schema_violation", b'{"type":"model.train"}'),
    ("unknown_event_type", b'{"type":"model.eval","payload":{}}'),
]


@dataclass(frozen=True)
class Delivery:
    kind: str
    message_id: str
    body: bytes
    job_id: str | None = None  # the job a valid delivery starts or finds
    error: str | None = None  # the dead-letter error a poison delivery gets


@dataclass
class Sent:
    delivery: Delivery
    status: int
    outcome: str | None
    seconds: float


def plan(deliveries: int, seed: int = 7, prefix: int = 900_000_000) -> list[Delivery]:
    """`deliveries` deliveries: about 50% valid, 20% redeliveries, 10% keyed copies, 20% poison,
    shuffled. Message ids are `prefix` + a counter (all digits, as Pub/Sub's are)."""
    rng = random.Random(seed)
    counter = iter(range(prefix, prefix + 10 * deliveries + 10))
    originals: list[Delivery] = []
    keyed: list[tuple[str, Delivery]] = []
    result: list[Delivery] = []
    while len(result) < deliveries:
        roll = rng.random()
        message_id = str(next(counter))
        if roll < 0.5 or not originals:
            event: dict[str, Any] = {"type": "model.train", "payload": {"i": int(message_id)}}
            if rng.random() < 0.2:
                key = f"load-{message_id}"
                event["idempotency_key"] = key
                job_id = events.keyed_pipeline_job_id(WORKFLOW, "model.train", key)
            else:
                key = ""
                job_id = events.pipeline_job_id(WORKFLOW, message_id)
            body = _body(json.dumps(event).encode(), message_id)
            delivery = Delivery(VALID, message_id, body, job_id=job_id)
            originals.append(delivery)
            if key:
                keyed.append((key, delivery))
        elif roll < 0.7:
            again = rng.choice(originals)
            delivery = Delivery(DUPLICATE, again.message_id, again.body, job_id=again.job_id)
        elif roll < 0.8 and keyed:
            key, first = rng.choice(keyed)
            event = {"type": "model.train", "payload": {"copy": 1}, "idempotency_key": key}
            body = _body(json.dumps(event).encode(), message_id)
            delivery = Delivery(KEYED_COPY, message_id, body, job_id=first.job_id)
        else:
            error, data = rng.choice(POISON_DATA)
            delivery = Delivery(POISON, message_id, _body(data, message_id), error=error)
        result.append(delivery)
    rng.shuffle(result)
    return result


def _body(data: bytes, message_id: str) -> bytes:
    return json.dumps(make_envelope(data=data, message_id=message_id, attributes={})).encode()


def deliver(url: str, deliveries: list[Delivery], senders: int) -> list[Sent]:
    """Send every delivery, `senders` at a time (one HTTP session per sender), timed."""
    queue = list(reversed(deliveries))
    lock = threading.Lock()
    sent: list[Sent] = []

    def sender() -> None:
        with requests.Session() as session:
            while True:
                with lock:
                    if not queue:
                        return
                    delivery = queue.pop()
                started = time.perf_counter()
                try:
                    response = session.post(
                        url,
                        data=delivery.body,
                        headers={"Content-Type": "application/json"},
                        timeout=60,
                    )
                    status, outcome = response.status_code, _outcome(response)
                except requests.RequestException:
                    status, outcome = 0, None
                elapsed = time.perf_counter() - started
                with lock:
                    sent.append(Sent(delivery, status, outcome, elapsed))

    threads = [threading.Thread(target=sender) for _ in range(senders)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sent


def _outcome(response: requests.Response) -> str | None:
    try:
        body = response.json()
    except ValueError:
        return None
    return body.get("outcome") if isinstance(body, dict) else None


@dataclass
class Outcome:
    """What happened, next to what must have happened."""

    statuses: dict[str, Counter[int]]
    """Per kind of delivery: how many got each HTTP status."""
    outcomes: dict[str, Counter[str | None]]
    expected_jobs: set[str]
    jobs: set[str]
    """The jobs the Vertex AI stand-in holds (it answers a second create of an id with 409)."""
    poison_expected: dict[str, str]  # message id -> error code
    dead_lettered: dict[str, list[str]]  # message id -> the error of each dead letter
    latencies_ms: list[float] = field(default_factory=list)


def outcome(sent: list[Sent], stand_ins: StandIns | Any) -> Outcome:
    """`stand_ins`: anything with the `pubsub` and `vertex` stand-ins (StandIns, conftest.Live)."""
    statuses: dict[str, Counter[int]] = {kind: Counter() for kind in KINDS}
    outcomes: dict[str, Counter[str | None]] = {kind: Counter() for kind in KINDS}
    for item in sent:
        statuses[item.delivery.kind][item.status] += 1
        outcomes[item.delivery.kind][item.outcome] += 1
    dead: dict[str, list[str]] = {}
    for message in stand_ins.pubsub.messages(DEAD_LETTER_TOPIC):
        dead.setdefault(message.attributes.get("source_message_id", ""), []).append(
            message.attributes.get("error", "")
        )
    with stand_ins.vertex.lock:
        jobs = set(stand_ins.vertex.jobs)
    return Outcome(
        statuses=statuses,
        outcomes=outcomes,
        expected_jobs={i.delivery.job_id for i in sent if i.delivery.job_id is not None},
        jobs=jobs,
        poison_expected={
            i.delivery.message_id: i.delivery.error or "" for i in sent if i.delivery.kind == POISON
        },
        dead_lettered=dead,
        latencies_ms=[i.seconds * 1000 for i in sent],
    )


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def latency_summary(samples_ms: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(samples_ms), 1),
        "p99_ms": round(percentile(samples_ms, 0.99), 1),
        "max_ms": round(max(samples_ms), 1),
    }


def peak_rss_mb(pid: int) -> dict[str, float]:
    """VmHWM (peak resident set) of a process and of its children, in MB (Linux /proc): the
    Functions Framework's gunicorn arbiter and its worker."""
    peaks = {"server": _vm_hwm_kb(pid) / 1024}
    for child in _children(pid):
        peaks["worker" if len(peaks) == 1 else f"worker-{child}"] = _vm_hwm_kb(child) / 1024
    peaks["total"] = sum(peaks.values())
    return {name: round(value, 1) for name, value in peaks.items()}


def _vm_hwm_kb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1])
    return 0.0


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found.extend(int(child) for child in text)
    return sorted(found)
