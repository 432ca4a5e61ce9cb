"""Replay a workflow's dead letters: pull them from its dead-letter pull subscription and
republish each to its trigger topic, at least once.

    make replay-dead-letters ENV=dev WORKFLOW=ingest [LIMIT=10] [ERROR=vertex_rejected] [DRY_RUN=1]
    .venv/bin/python tools/replay_dead_letters.py --env dev --workflow ingest [--limit 10]
        [--error vertex_rejected] [--dry-run] [--project P --allow-other-project]

Each message is republished with its data and the producer's attributes: the ones the handler
adds when it dead-letters (`error`, `error_detail`, `source_message_id`, ... see
docs/handler.md) and Pub/Sub's `CloudPubSubDeadLetterSource*` are dropped. It is acknowledged
only after the publish succeeded, so a crash in between loses nothing: the message comes back
after the subscription's ack deadline and the next run publishes it again (a duplicate at
worst). `--error CODE` replays only the messages whose `error` is CODE (`max_delivery_attempts`:
the ones Pub/Sub itself moved after the last failed delivery); the others are released back
(modifyAckDeadline 0) and listed. `--limit N` replays at most N. `--dry-run` publishes and
acknowledges nothing: it lists what it would replay and releases everything.

Prints one line per message (its id, its error, the new message id) and a summary. Exit 0, 1
when a Pub/Sub call failed (what was not acknowledged stays on the subscription), 2 for bad
arguments or a project other than the environment's.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from operator_cli import FAILED, INTERRUPTED, USAGE, Parser, connect, fail
from pubsub_rest import PubSub, PubSubError
from stack_topics import WorkflowTopics

from workflow_handler import events

PROG = "replay_dead_letters.py"
PUBSUB_DEAD_LETTER_PREFIX = "CloudPubSubDeadLetterSource"
"""Attributes Pub/Sub adds when its dead-letter policy moves a message."""
MAX_DELIVERY_ATTEMPTS = "max_delivery_attempts"
"""The error of a message Pub/Sub moved (it has no `error` attribute of ours)."""
UNKNOWN = "unknown"
CRASH_HOOK = "REPLAY_DEAD_LETTERS_CRASH_AFTER_PUBLISH"
"""Test hook: exit (status 3) right after the N-th publish, before its acknowledgement."""
EMPTY_PULLS = 3
"""Pulls that return nothing before the subscription counts as drained."""
BATCH = 100


def error_of(attributes: dict[str, str]) -> str:
    """Why the message was dead-lettered."""
    if "error" in attributes:
        return attributes["error"]
    if any(key.startswith(PUBSUB_DEAD_LETTER_PREFIX) for key in attributes):
        return MAX_DELIVERY_ATTEMPTS
    return UNKNOWN


def producer_attributes(attributes: dict[str, str]) -> dict[str, str]:
    """The original attributes: without the handler's dead-letter attributes, Pub/Sub's
    dead-letter attributes, or keys Pub/Sub reserves (`goog...`)."""
    return {
        key: value
        for key, value in sorted(attributes.items())
        if key not in events.DEAD_LETTER_ATTRIBUTES
        and not key.startswith(PUBSUB_DEAD_LETTER_PREFIX)
        and not key.lower().startswith("goog")
    }


@dataclass
class Replay:
    pubsub: PubSub
    topics: WorkflowTopics
    limit: int | None
    error: str | None
    dry_run: bool
    replayed: int = 0
    skipped: int = 0
    held: dict[str, str] = field(default_factory=dict)
    """message id -> ack id of what is not replayed, released at the end."""
    done: set[str] = field(default_factory=set)
    crash_after: int | None = None

    @property
    def subscription(self) -> str:
        return self.topics.dead_letter_subscription

    def full(self) -> bool:
        return self.limit is not None and self.replayed >= self.limit

    def run(self) -> None:
        empty = 0
        try:
            while not self.full() and empty < EMPTY_PULLS:
                wanted = BATCH if self.limit is None else min(BATCH, self.limit - self.replayed)
                batch = self.pubsub.pull(self.subscription, wanted)
                if not batch:
                    empty += 1
                    time.sleep(0.3)
                    continue
                empty = 0
                for received in batch:
                    self.one(received)
        finally:
            self.release()

    def one(self, received: dict[str, Any]) -> None:
        message = received["message"]
        message_id = str(message.get("messageId", ""))
        ack_id = received["ackId"]
        if message_id in self.done:  # delivered again after we acknowledged it
            self.pubsub.acknowledge(self.subscription, [ack_id])
            return
        if message_id in self.held:
            self.held[message_id] = ack_id
            return
        attributes = dict(message["attributes"])
        error = error_of(attributes)
        shown = f"{message_id} (error {error})"
        if self.full():
            self.held[message_id] = ack_id
            return
        if self.error is not None and error != self.error:
            self.held[message_id] = ack_id
            self.skipped += 1
            print(f"skipped {shown}: not {self.error}, left on {self.subscription}")
            return
        note = ""
        if "pipeline_job" in attributes:
            note = f"; its job was started: {attributes['pipeline_job']}"
        if self.dry_run:
            self.held[message_id] = ack_id
            self.replayed += 1
            print(f"would replay {shown} to {self.topics.trigger_topic}{note}")
            return
        new_id = self.pubsub.publish(
            self.topics.trigger_topic, message["data"], producer_attributes(attributes)
        )
        if self.crash_after is not None and self.replayed + 1 >= self.crash_after:
            print(f"{PROG}: {CRASH_HOOK}: exiting after publishing {new_id}", flush=True)
            os._exit(3)
        self.pubsub.acknowledge(self.subscription, [ack_id])
        self.done.add(message_id)
        self.replayed += 1
        print(f"replayed {shown} to {self.topics.trigger_topic}: new message id {new_id}{note}")

    def release(self) -> None:
        """Everything not replayed goes back to the subscription at once."""
        held, self.held = list(self.held.values()), {}
        self.pubsub.modify_ack_deadline(self.subscription, held, 0)

    def summary(self) -> str:
        skipped = f", skipped {self.skipped} (left on {self.subscription})" if self.error else ""
        if self.dry_run:
            return (
                f"dry run: would replay {self.replayed}{skipped}; nothing published, nothing "
                "acknowledged"
            )
        return (
            f"replayed {self.replayed} from {self.subscription} to {self.topics.trigger_topic}"
            f"{skipped}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = Parser(PROG, __doc__.split("\n\n")[0])
    parser.add_argument("--workflow", required=True, help="the workflow whose dead letters")
    parser.add_argument("--limit", help="replay at most this many (default: all)")
    parser.add_argument("--error", help="replay only messages with this error")
    parser.add_argument("--dry-run", action="store_true", help="list, publish and ack nothing")
    args = parser.parse_args(argv)
    limit = None
    if args.limit is not None:
        if not args.limit.isdigit() or int(args.limit) < 1:
            fail(PROG, USAGE, f"--limit: got {args.limit!r}, allowed a whole number >= 1")
        limit = int(args.limit)
    codes = [*sorted(events.ERROR_CODES), MAX_DELIVERY_ATTEMPTS]
    if args.error is not None and args.error not in codes:
        fail(PROG, USAGE, f"--error: got {args.error!r}, allowed one of {', '.join(codes)}")
    crash_after = os.environ.get(CRASH_HOOK)
    target = connect(PROG, args, args.workflow)
    replay = Replay(
        target.pubsub,
        target.workflows[0],
        limit,
        args.error,
        args.dry_run,
        crash_after=int(crash_after) if crash_after else None,
    )
    try:
        replay.run()
    except KeyboardInterrupt:
        print(replay.summary())
        fail(
            PROG,
            INTERRUPTED,
            f"interrupted; what was not replayed is back on {replay.subscription}",
        )
    except PubSubError as exc:
        print(replay.summary())
        fail(PROG, FAILED, f"{exc} (what was not acknowledged stays on {replay.subscription})")
    print(replay.summary())
    return 0


if __name__ == "__main__":
    sys.exit(main())
