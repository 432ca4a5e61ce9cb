"""What one Pub/Sub push request does, independent of Flask and of the real HTTP clients.

    parse envelope -> drop if stale -> decode and validate the event -> route
    -> create the Vertex AI PipelineJob (job id from the message id; 409 = already started)
    -> publish the follow-up event to the results topic -> 200

Permanent problems are forwarded to the dead-letter topic and acknowledged (200); transient
ones are answered 503 so Pub/Sub retries with backoff. See docs/handler.md for the table.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import contract, events, logs
from .events import Event, PermanentError, PushMessage, Salvage
from .google_apis import ALREADY_EXISTS, OK, TRANSIENT, ApiResponse
from .settings import Route, Settings

ACK = 200  # Pub/Sub acknowledges 102, 200, 201, 202 and 204; we always use 200.
RETRY = 503  # anything else is a nack: Pub/Sub redelivers with backoff, then dead-letters.
NOT_POST = 405
EMPTY_BODY = 400
CRASH = 500


class Apis(Protocol):
    def publish(self, topic: str, data: bytes, attributes: Mapping[str, str]) -> ApiResponse: ...

    def create_pipeline_job(self, job_id: str, body: Mapping[str, Any]) -> ApiResponse: ...

    def get_pipeline_job(self, job_id: str) -> ApiResponse: ...


@dataclass
class Reply:
    status: int
    body: dict[str, Any]


@dataclass
class _Context:
    """What is known so far about the request, for every log line."""

    fields: dict[str, Any] = field(default_factory=dict)

    def update(self, **values: Any) -> None:
        self.fields.update({k: v for k, v in values.items() if v is not None})


class WorkflowHandler:
    def __init__(
        self,
        settings: Settings,
        apis: Apis,
        clock: Callable[[], float] = time.time,
        log: Callable[..., None] = logs.log,
    ) -> None:
        self.settings = settings
        self.apis = apis
        self.clock = clock
        self._log = log

    def handle(self, method: str, body: bytes, headers: Mapping[str, str] | None = None) -> Reply:
        """Never raises: an unexpected exception is logged with its stack and answered 500."""
        started = time.monotonic()
        ctx = _Context()
        ctx.update(workflow=self.settings.workflow)
        trace = logs.trace_field(
            self.settings.project, (headers or {}).get("X-Cloud-Trace-Context")
        )
        if trace:
            ctx.fields[logs.TRACE_FIELD] = trace
        try:
            severity, message, reply = self._handle(method, body, ctx)
        except Exception as exc:  # last resort: a bug, not a message problem; let Pub/Sub retry
            severity = "ERROR"
            message = f"unexpected error, asking Pub/Sub to retry: {type(exc).__name__}: {exc}"
            ctx.update(stack_trace=traceback.format_exc())
            reply = Reply(CRASH, {"outcome": "crashed"})
        ctx.update(
            outcome=reply.body.get("outcome"),
            http_status=reply.status,
            duration_ms=round((time.monotonic() - started) * 1000, 1),
        )
        self._log(severity, message, **ctx.fields)
        return reply

    # --- the steps --------------------------------------------------------------------------

    def _handle(self, method: str, body: bytes, ctx: _Context) -> tuple[str, str, Reply]:
        if method != "POST":
            return (
                "WARNING",
                f"not a Pub/Sub push request: method {method}",
                Reply(NOT_POST, {"outcome": "method_not_allowed"}),
            )
        if not body:
            return (
                "WARNING",
                "not a Pub/Sub push request: empty body; nothing to dead-letter",
                Reply(EMPTY_BODY, {"outcome": "empty_body"}),
            )
        try:
            message = events.parse_push_envelope(body)
        except events.EnvelopeError as exc:
            salvage = exc.salvage
            ctx.update(message_id=salvage.message_id, delivery_attempt=salvage.delivery_attempt)
            return self._dead_letter(exc, salvage, ctx)
        ctx.update(
            message_id=message.message_id,
            delivery_attempt=message.delivery_attempt,
            subscription=message.subscription,
        )

        age = self.clock() - message.publish_time.timestamp()
        if age > self.settings.max_event_age_seconds:
            ctx.update(
                publish_time=message.publish_time.isoformat(),
                age_seconds=round(age, 3),
                max_event_age_seconds=self.settings.max_event_age_seconds,
            )
            return (
                "WARNING",
                f"stale event dropped: older than {contract.ENV_MAX_EVENT_AGE_SECONDS}",
                Reply(ACK, {"outcome": "dropped_stale"}),
            )

        try:
            data = events.decode_message_data(message)
        except PermanentError as exc:
            return self._dead_letter(exc, self._salvage(message, None, body), ctx)
        salvage = self._salvage(message, data, body)
        try:
            event = events.decode_event(data)
            ctx.update(
                event_type=event.type,
                correlation_id=events.effective_correlation_id(event, message.message_id),
            )
            events.check_attributes_agree(event, message.attributes)
            route = self.settings.routes.get(event.type)
            if route is None:
                raise PermanentError(
                    events.UNKNOWN_EVENT_TYPE,
                    f"no route for event type {event.type!r}; routed types: "
                    f"{', '.join(sorted(self.settings.routes))}",
                )
        except PermanentError as exc:
            return self._dead_letter(exc, salvage, ctx)
        return self._start(message, event, route, salvage, ctx)

    def _start(
        self, message: PushMessage, event: Event, route: Route, salvage: Salvage, ctx: _Context
    ) -> tuple[str, str, Reply]:
        job_id = events.pipeline_job_id(self.settings.workflow, message.message_id)
        ctx.update(pipeline_job_id=job_id)
        body = self.pipeline_job_body(message, event, route)
        created = self.apis.create_pipeline_job(job_id, body)
        duplicate = created.kind == ALREADY_EXISTS
        job = created
        if duplicate:
            # A redelivery (or a concurrent one): the job exists, so this delivery succeeds too.
            job = self.apis.get_pipeline_job(job_id)
            if job.kind != OK:
                ctx.update(error_detail=job.detail)
                return (
                    "WARNING",
                    "pipeline job exists but could not be read; asking Pub/Sub to retry",
                    Reply(RETRY, {"outcome": "retry"}),
                )
        elif created.kind == TRANSIENT:
            ctx.update(error_detail=created.detail)
            return (
                "WARNING",
                "transient error from Vertex AI; asking Pub/Sub to retry",
                Reply(RETRY, {"outcome": "retry"}),
            )
        elif created.kind != OK:
            return self._dead_letter(
                PermanentError(events.VERTEX_REJECTED, created.detail), salvage, ctx
            )
        job_name = job.body.get("name") if isinstance(job.body, dict) else None
        if not isinstance(job_name, str) or not job_name:
            ctx.update(error_detail=f"{job.detail}: no job name in the response")
            return (
                "WARNING",
                "unexpected response from Vertex AI; asking Pub/Sub to retry",
                Reply(RETRY, {"outcome": "retry"}),
            )
        ctx.update(pipeline_job=job_name, duplicate_delivery=duplicate)

        follow_up = self.follow_up_event(message, event, route, job_name)
        attributes = events.event_attributes(follow_up, workflow=self.settings.workflow)
        published = self.apis.publish(
            self.settings.results_topic, events.encode_event(follow_up), attributes
        )
        if published.kind != OK:
            ctx.update(error_detail=published.detail)
            if published.kind != TRANSIENT:
                salvage.extra_attributes = {"pipeline_job": job_name}
                return self._dead_letter(
                    PermanentError(events.RESULTS_PUBLISH_REJECTED, published.detail),
                    salvage,
                    ctx,
                )
            return (
                "WARNING",
                "pipeline job started but the follow-up publish failed transiently; "
                "asking Pub/Sub to retry (the retry finds the existing job)",
                Reply(RETRY, {"outcome": "retry", "pipeline_job": job_name}),
            )
        ctx.update(result_event_type=follow_up.type, results_message_id=_first_id(published))
        outcome = "already_started" if duplicate else "started"
        text = (
            "duplicate delivery: pipeline job already exists; follow-up event published"
            if duplicate
            else "pipeline job started; follow-up event published"
        )
        return "INFO", text, Reply(ACK, {"outcome": outcome, "pipeline_job": job_name})

    # --- what we send ---------------------------------------------------------------------

    def pipeline_job_body(self, message: PushMessage, event: Event, route: Route) -> dict[str, Any]:
        s = self.settings
        correlation_id = events.effective_correlation_id(event, message.message_id)
        return {
            "displayName": f"{s.workflow} {event.type} {message.message_id}"[
                : events.MAX_DISPLAY_NAME_LENGTH
            ],
            "templateUri": route.template_uri,
            "runtimeConfig": {
                "gcsOutputDirectory": s.pipeline_root,
                "parameterValues": {**route.parameters, **event.payload},
            },
            "serviceAccount": s.pipeline_service_account,
            "labels": {
                "workflow": events.label_value(s.workflow),
                "event_type": events.label_value(event.type),
                "correlation_id": events.label_value(correlation_id),
            },
        }

    def follow_up_event(
        self, message: PushMessage, event: Event, route: Route, job_name: str
    ) -> Event:
        return Event(
            type=route.result_event_type,
            payload={
                "pipeline_job": job_name,
                "source_event_type": event.type,
                "source_message_id": message.message_id,
            },
            correlation_id=events.effective_correlation_id(event, message.message_id),
        )

    # --- dead-lettering -------------------------------------------------------------------

    @staticmethod
    def _salvage(message: PushMessage, data: bytes | None, body: bytes) -> Salvage:
        """The decoded message data; if it does not decode, the whole request body."""
        return Salvage(
            data=data if data is not None else body,
            data_source="message_data" if data is not None else "request_body",
            attributes=message.attributes,
            message_id=message.message_id,
            subscription=message.subscription,
            delivery_attempt=message.delivery_attempt,
        )

    def _dead_letter(
        self, error: PermanentError, salvage: Salvage, ctx: _Context
    ) -> tuple[str, str, Reply]:
        ours = {
            "error": error.code,
            "error_detail": error.detail,
            "workflow": self.settings.workflow,
            "dead_letter_payload": salvage.data_source,
        }
        if salvage.message_id is not None:
            ours["source_message_id"] = salvage.message_id
        if salvage.subscription is not None:
            ours["source_subscription"] = salvage.subscription
        ours.update(salvage.extra_attributes)
        attributes, dropped = events.dead_letter_attributes(salvage.attributes, ours)
        ctx.update(error=error.code, error_detail=error.detail, dropped_attributes=dropped or None)
        result = self.apis.publish(self.settings.dead_letter_topic, salvage.data, attributes)
        if result.kind != OK:
            ctx.update(dead_letter_publish_error=result.detail)
            return (
                "ERROR",
                f"permanent error ({error.code}) but the dead-letter publish failed; "
                "asking Pub/Sub to retry",
                Reply(RETRY, {"outcome": "retry", "error": error.code}),
            )
        ctx.update(dead_letter_message_id=_first_id(result))
        return (
            "WARNING",
            f"message dead-lettered: {error.code}",
            Reply(ACK, {"outcome": "dead_lettered", "error": error.code}),
        )


def _first_id(response: ApiResponse) -> str | None:
    ids = response.body.get("messageIds") if isinstance(response.body, dict) else None
    if isinstance(ids, list) and ids and isinstance(ids[0], str):
        return ids[0]
    return None
