"""Fixtures for the handler tests: local stand-ins for Pub/Sub and Vertex AI, and the real
Functions Framework server serving function_src/main.py against them (both session-scoped,
always stopped), reset before every test that uses them."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from handler_envelopes import make_envelope
from handler_fixtures import (
    DEAD_LETTER_TOPIC,
    FUNCTION_SOURCE,
    RESULTS_TOPIC,
    FunctionServer,
    handler_env,
)
from local_standins import (
    Published,
    PubSubStandIn,
    StandIns,
    VertexStandIn,
    start_stand_ins,
)

# The handler's own modules, for unit tests. Appended (not prepended) so that `main` still
# means the repository's cdktf app for the other test suites.
if str(FUNCTION_SOURCE.parent) not in sys.path:
    sys.path.append(str(FUNCTION_SOURCE.parent))

REQUEST_TIMEOUT = 15  # seconds; every request the tests make has one, so nothing can hang


@pytest.fixture(scope="session")
def stand_ins() -> Iterator[StandIns]:
    started = start_stand_ins()
    try:
        yield started
    finally:
        started.pubsub.stop()
        started.vertex.stop()


@pytest.fixture(scope="session")
def function_server(
    stand_ins: StandIns, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FunctionServer]:
    server = FunctionServer(
        env=handler_env(stand_ins.pubsub, stand_ins.vertex),
        log_path=tmp_path_factory.mktemp("functions-framework") / "server.log",
    )
    server.start()
    try:
        yield server
    finally:
        server.stop()


@dataclass
class Live:
    server: FunctionServer
    pubsub: PubSubStandIn
    vertex: VertexStandIn
    log_mark: int

    def post(self, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
        """POST an envelope (dict -> JSON) or raw bytes to the function."""
        if isinstance(body, bytes | str):
            return requests.post(
                self.server.url, data=body, headers=headers, timeout=REQUEST_TIMEOUT
            )
        return requests.post(self.server.url, json=body, headers=headers, timeout=REQUEST_TIMEOUT)

    def deliver(self, event: Any, **envelope_options: Any) -> requests.Response:
        return self.post(make_envelope(event, **envelope_options))

    def logs(self) -> list[dict[str, Any]]:
        return self.server.log_lines(self.log_mark)

    def results(self) -> list[Published]:
        return self.pubsub.messages(RESULTS_TOPIC)

    def dead_letters(self) -> list[Published]:
        return self.pubsub.messages(DEAD_LETTER_TOPIC)


@pytest.fixture
def live(function_server: FunctionServer, stand_ins: StandIns) -> Live:
    stand_ins.reset()
    return Live(function_server, stand_ins.pubsub, stand_ins.vertex, function_server.log_size())
