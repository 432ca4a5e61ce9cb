"""The malformed-envelope corpus (handler_corpus.py) driven through the real server: every
entry gets its documented answer, quickly, and never a 5xx from an unhandled exception."""

from __future__ import annotations

import time

import pytest
from conftest import Live
from handler_corpus import CORPUS

NOT_PUBLISHED = {"dropped_stale", "empty_body"}


def test_corpus_is_large_and_names_are_unique() -> None:
    names = [name for name, *_ in CORPUS]
    assert len(names) >= 50
    assert len(set(names)) == len(names)
    assert len({body for _, body, *_ in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize(
    ("body", "status", "outcome"),
    [pytest.param(body, status, outcome, id=name) for name, body, status, outcome in CORPUS],
)
def test_malformed_request_gets_its_documented_answer(
    live: Live, body: bytes, status: int, outcome: str
) -> None:
    started = time.monotonic()
    response = live.post(body)
    elapsed = time.monotonic() - started

    assert response.status_code == status, response.text
    assert elapsed < 5, f"took {elapsed:.1f}s"
    assert live.vertex.requests == []  # nothing malformed ever starts a job
    line = [entry for entry in live.logs() if "outcome" in entry]
    assert len(line) == 1 and line[0]["severity"] == "WARNING", line
    assert "stack_trace" not in line[0]
    if outcome in NOT_PUBLISHED:
        assert response.json()["outcome"] == outcome
        assert live.pubsub.requests == []
        return
    assert response.json() == {"outcome": "dead_lettered", "error": outcome}
    assert len(live.dead_letters()) == 1
    dead = live.dead_letters()[0]
    assert dead.attributes["error"] == outcome
    assert dead.attributes["workflow"] == "train-model"
    assert live.results() == []
