"""The handler under load (handler_load.py): concurrent push deliveries from 16 senders to the
real Functions Framework server, a shuffled mix of valid events, redeliveries, keyed copies and
poison. What must hold whatever the interleaving: no 5xx for a valid event, exactly one job per
distinct message (or idempotency key), every poison message dead-lettered once with its code.
Latency and memory are measured by `make bench` (bench_handler_load.py), never asserted here."""

from __future__ import annotations

from conftest import Live
from handler_load import DUPLICATE, KEYED_COPY, POISON, VALID, deliver, outcome, plan

DELIVERIES = 400  # the benchmark sends 2,000; this many keep the test a few seconds on 2 cores
SENDERS = 16


def test_concurrent_mixed_deliveries_start_one_job_per_message_and_dead_letter_every_poison(
    live: Live,
) -> None:
    deliveries = plan(DELIVERIES)
    kinds = {d.kind for d in deliveries}
    assert kinds == {VALID, DUPLICATE, KEYED_COPY, POISON}  # the mix has every kind

    sent = deliver(live.server.url, deliveries, SENDERS)
    seen = outcome(sent, live)

    assert len(sent) == DELIVERIES
    for kind in (VALID, DUPLICATE, KEYED_COPY):
        assert dict(seen.statuses[kind]) == {200: sum(d.kind == kind for d in deliveries)}, kind
        assert set(seen.outcomes[kind]) <= {"started", "already_started"}, seen.outcomes[kind]
    assert seen.jobs == seen.expected_jobs  # none missing, none extra, none twice
    assert len(seen.jobs) == len({d.job_id for d in deliveries if d.job_id})
    assert dict(seen.statuses[POISON]) == {200: len(seen.poison_expected)}
    assert set(seen.outcomes[POISON]) == {"dead_lettered"}
    assert seen.dead_lettered == {mid: [code] for mid, code in seen.poison_expected.items()}
    lines = [line for line in live.logs() if "outcome" in line]
    assert len(lines) == DELIVERIES  # one line per delivery, none lost under concurrency
    assert not [line for line in lines if line["severity"] not in ("INFO", "WARNING")]
