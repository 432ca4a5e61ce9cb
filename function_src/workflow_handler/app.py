"""What one Pub/Sub push request does, independent of Flask and of the real HTTP clients.

A trigger event (from the trigger subscription):

    parse envelope -> drop if stale -> decode and validate the event -> route
    -> create the Vertex AI PipelineJob (job id from the event's idempotency key, else from the
       message id; 409 = already started) -> publish the route's on_start event, if it has one
    -> 200

A pipeline job event (a Cloud Logging entry, from the pipeline-events subscription):

    parse envelope -> decode the log entry: which of this workflow's jobs
    -> GET the job (its state, labels and outputs are the authority, never the entry)
    -> terminal: publish the route's on_success or on_failure event -> 200

Permanent problems are forwarded to the dead-letter topic and acknowledged (200); transient
ones are answered 503 so Pub/Sub retries with backoff. See docs/handler.md for the table.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from . import contract, events, logs, wire
from .events import Event, PermanentError, PushMessage, Salvage
from .google_apis import ALREADY_EXISTS, OK, PERMANENT, TRANSIENT, UNSENDABLE, ApiResponse
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
        # A pipeline job event is known by the subscription that pushes it, or by its shape
        # (a LogEntry, whichever subscription it came through).
        peeked = events.peek_json(message)
        pipeline_job_event = (
            message.subscription == self.settings.pipeline_events_subscription
            or events.is_log_entry(peeked)
        )
        # A completion is processed whenever it arrives: dropping it as stale would end the
        # chain silently (the event it leads to is new, so the next workflow never drops it).
        age = self.clock() - message.publish_time.timestamp()
        if age > self.settings.max_event_age_seconds and not pipeline_job_event:
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
            obj = peeked if peeked is not None else events.decode_json(data)
            if pipeline_job_event:
                ctx.update(input="pipeline_job_event")
                return self._completed(events.parse_pipeline_job_event(obj), salvage, ctx)
            event = events.validate_event(obj)
            ctx.update(
                event_type=event.type,
                correlation_id=events.effective_correlation_id(event, message.message_id),
            )
            events.check_attributes_agree(event, message.attributes)
            if contract.is_reserved_event_type(event.type):
                return self._probe(message, event, salvage, ctx)
            route = self.settings.routes.get(event.type)
            if route is None and event.type in self.settings.ignored_event_types:
                return (
                    "INFO",
                    f"event type {event.type} is not routed here: acknowledged, no job",
                    Reply(ACK, {"outcome": "ignored"}),
                )
            if route is None:
                raise PermanentError(
                    events.UNKNOWN_EVENT_TYPE,
                    f"no route for event type {event.type!r}; routed types: "
                    f"{', '.join(sorted(self.settings.routes))}",
                )
            events.check_parameters_fit({**route.parameters, **event.payload})
        except PermanentError as exc:
            return self._dead_letter(exc, salvage, ctx)
        return self._start(message, event, route, salvage, ctx)

    def _probe(
        self, message: PushMessage, event: Event, salvage: Salvage, ctx: _Context
    ) -> tuple[str, str, Reply]:
        """The smoke probe: answer it on the results topic, start nothing. A probe result
        (an upstream workflow's answer, arriving on a chained trigger) is acknowledged."""
        if event.type == contract.PROBE_RESULT_EVENT_TYPE:
            return (
                "INFO",
                f"{event.type} of workflow {event.payload['workflow']}: a probe result, "
                "acknowledged, no job",
                Reply(ACK, {"outcome": "ignored"}),
            )
        correlation_id = events.effective_correlation_id(event, message.message_id)
        answer = events.probe_result(event, self.settings.workflow, correlation_id)
        attributes = events.event_attributes(answer, workflow=self.settings.workflow)
        published = self.apis.publish(
            self.settings.results_topic, events.encode_event(answer), attributes
        )
        if published.kind == UNSENDABLE:
            return self._unsendable("Pub/Sub", published.detail, salvage, ctx)
        if published.kind == TRANSIENT:
            return _retry(ctx, published.detail, "the probe answer failed to publish transiently")
        if published.kind != OK:
            return self._dead_letter(
                PermanentError(events.RESULTS_PUBLISH_REJECTED, published.detail), salvage, ctx
            )
        ctx.update(result_event_type=answer.type, results_message_id=_first_id(published))
        return (
            "INFO",
            f"probe answered: {answer.type} published",
            Reply(ACK, {"outcome": "probe_answered", "nonce": event.payload["nonce"]}),
        )

    def _start(
        self, message: PushMessage, event: Event, route: Route, salvage: Salvage, ctx: _Context
    ) -> tuple[str, str, Reply]:
        job_id = events.job_id_for(self.settings.workflow, message.message_id, event)
        ctx.update(pipeline_job_id=job_id, idempotency_key=event.idempotency_key)
        body = self.pipeline_job_body(message, event, route)
        created = self.apis.create_pipeline_job(job_id, body)
        duplicate = created.kind == ALREADY_EXISTS
        job = created
        if duplicate:
            # A redelivery (or a concurrent one): the job exists, so this delivery succeeds too.
            job = self.apis.get_pipeline_job(job_id)
            if job.kind != OK:
                return _retry(ctx, job.detail, "pipeline job exists but could not be read")
        elif created.kind == UNSENDABLE:
            return self._unsendable("Vertex AI", created.detail, salvage, ctx)
        elif created.kind == TRANSIENT:
            return _retry(ctx, created.detail, "transient error from Vertex AI")
        elif created.kind != OK:
            return self._dead_letter(
                PermanentError(events.VERTEX_REJECTED, created.detail), salvage, ctx
            )
        view = events.job_view(job.body)
        if view is None:
            return _retry_unexpected_job(job, ctx)
        ctx.update(pipeline_job=view.name, duplicate_delivery=duplicate)
        outcome = "already_started" if duplicate else "started"
        reply = Reply(ACK, {"outcome": outcome, "pipeline_job": view.name})
        if route.on_start is None:
            text = (
                "duplicate delivery: pipeline job already exists"
                if duplicate
                else "pipeline job started"
            )
            return "INFO", text, reply
        start = events.outcome_event(
            route.on_start,
            self.settings.workflow,
            view,
            events.STARTED,
            source_event_type=event.type,
            correlation_id=events.effective_correlation_id(event, message.message_id),
            source_idempotency_key=event.idempotency_key,
        )
        # A redelivery publishes the start event again (the first attempt may have failed to);
        # its idempotency key is the same every time.
        problem = self._publish(start, view.name, salvage, ctx)
        if problem is not None:
            return problem
        text = (
            "duplicate delivery: pipeline job already exists; start event published"
            if duplicate
            else "pipeline job started; start event published"
        )
        return "INFO", text, reply

    def _completed(
        self, signal: events.PipelineJobSignal, salvage: Salvage, ctx: _Context
    ) -> tuple[str, str, Reply]:
        """A pipeline job event: read the job, publish what its outcome calls for."""
        s = self.settings
        ctx.update(pipeline_job_id=signal.job_id, claimed_state=signal.claimed_state)
        foreign = (
            not events.is_own_pipeline_job(s.workflow, signal.job_id)
            or signal.location not in (None, s.location)
            or signal.project not in (None, s.project)
        )
        if foreign:
            raise PermanentError(
                events.UNKNOWN_PIPELINE_JOB,
                f"job {signal.job_id} in {signal.project}/{signal.location} is not one of "
                f"workflow {s.workflow}'s jobs in {s.project}/{s.location}",
            )
        got = self.apis.get_pipeline_job(signal.job_id)
        if got.kind == TRANSIENT:
            return _retry(ctx, got.detail, "transient error reading the pipeline job")
        if got.kind == PERMANENT and got.status == 404:
            raise PermanentError(events.UNKNOWN_PIPELINE_JOB, got.detail)
        if got.kind != OK:
            raise PermanentError(events.VERTEX_REJECTED, got.detail)
        view = events.job_view(got.body)
        if view is None:
            return _retry_unexpected_job(got, ctx)
        ctx.update(pipeline_job=view.name, state=view.state)
        if view.workflow_label != events.label_value(s.workflow):
            raise PermanentError(
                events.UNKNOWN_PIPELINE_JOB,
                f"job {view.name} is labelled workflow={view.workflow_label!r}, "
                f"not started by workflow {s.workflow}",
            )
        outcome = events.OUTCOMES.get(view.state or "")
        if outcome is None:
            if signal.claimed_state in contract.TERMINAL_STATES:
                ctx.update(error_detail=f"the entry says {signal.claimed_state}")
                return (
                    "WARNING",
                    f"the log entry reports an end but the job is {view.state}; asking Pub/Sub "
                    "to retry until Vertex AI agrees",
                    Reply(RETRY, {"outcome": "retry"}),
                )
            return (
                "INFO",
                f"pipeline job is {view.state}, not finished: nothing to publish",
                Reply(ACK, {"outcome": "not_finished", "pipeline_job": view.name}),
            )
        source_type = view.source_event_type
        route = s.routes.get(source_type) if source_type is not None else None
        if source_type is None or route is None:
            raise PermanentError(
                events.UNKNOWN_ROUTE,
                f"job {view.name} was started for event type {source_type!r}, which has no "
                f"route here now; routed types: {', '.join(sorted(s.routes))}",
            )
        event_type = route.on_success if outcome == "succeeded" else route.on_failure
        follow_up = events.outcome_event(
            event_type,
            s.workflow,
            view,
            outcome,
            source_event_type=source_type,
            correlation_id=view.correlation_id or signal.job_id,
            source_idempotency_key=view.idempotency_key,
        )
        ctx.update(event_type=source_type, correlation_id=follow_up.correlation_id)
        problem = self._publish(follow_up, view.name, salvage, ctx)
        if problem is not None:
            return problem
        return (
            "INFO",
            f"pipeline job {outcome}; {follow_up.type} published",
            Reply(
                ACK,
                {
                    "outcome": "published",
                    "pipeline_job": view.name,
                    "state": view.state,
                    "event_type": follow_up.type,
                },
            ),
        )

    def _publish(
        self, event: Event, job_name: str, salvage: Salvage, ctx: _Context
    ) -> tuple[str, str, Reply] | None:
        """Publish a follow-up event to the results topic; None when it went out."""
        attributes = events.event_attributes(event, workflow=self.settings.workflow)
        try:
            data = events.encode_event(event)
        except wire.UnsendableRequest as exc:
            return self._unsendable("Pub/Sub", f"the follow-up event: {exc}", salvage, ctx)
        published = self.apis.publish(self.settings.results_topic, data, attributes)
        if published.kind == UNSENDABLE:
            return self._unsendable("Pub/Sub", published.detail, salvage, ctx)
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
                "the follow-up publish failed transiently; asking Pub/Sub to retry "
                "(the retry finds the existing job and publishes the same event)",
                Reply(RETRY, {"outcome": "retry", "pipeline_job": job_name}),
            )
        ctx.update(
            result_event_type=event.type,
            result_idempotency_key=event.idempotency_key,
            results_message_id=_first_id(published),
        )
        return None

    # --- what we send ---------------------------------------------------------------------

    def pipeline_job_body(self, message: PushMessage, event: Event, route: Route) -> dict[str, Any]:
        s = self.settings
        correlation_id = events.effective_correlation_id(event, message.message_id)
        labels = {
            "workflow": events.label_value(s.workflow),
            **events.event_type_labels(event.type),
            **events.text_labels("correlation_id", correlation_id),
        }
        if event.idempotency_key is not None:
            labels.update(events.text_labels("idempotency_key", event.idempotency_key))
        body: dict[str, Any] = {
            "displayName": f"{s.workflow} {event.type} {message.message_id}"[
                : events.MAX_DISPLAY_NAME_LENGTH
            ],
            "templateUri": route.template_uri,
            "runtimeConfig": {
                "gcsOutputDirectory": s.pipeline_root,
                "parameterValues": {**route.parameters, **event.payload},
            },
            "serviceAccount": s.pipeline_service_account,
            "labels": labels,
        }
        if s.pipeline_kms_key is not None:
            # The job and what it writes are encrypted with the customer-managed key.
            body["encryptionSpec"] = {"kmsKeyName": s.pipeline_kms_key}
        return body

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
        data = wire.fit_publish_data(salvage.data, attributes)
        if len(data) < len(salvage.data):
            # Too large for one publish request (a body of any size can arrive): keep the head,
            # and say what the whole was, so that it can be told apart and matched.
            ours.update(wire.truncation_attributes(salvage.data))
            attributes, dropped = events.dead_letter_attributes(salvage.attributes, ours)
            data = wire.fit_publish_data(salvage.data, attributes)
            ctx.update(dead_letter_truncated_from=len(salvage.data), dead_letter_bytes=len(data))
        ctx.update(error=error.code, error_detail=error.detail, dropped_attributes=dropped or None)
        result = self.apis.publish(self.settings.dead_letter_topic, data, attributes)
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

    def _unsendable(
        self, api: str, detail: str, salvage: Salvage, ctx: _Context
    ) -> tuple[str, str, Reply]:
        """Our own request to `api` did not encode: a bug (validation lets no such value in),
        never an error from Google, and retrying cannot fix it. Dead-lettered, so nothing is
        lost, with its own code and an ERROR line."""
        severity, message, reply = self._dead_letter(
            PermanentError(events.REQUEST_NOT_SERIALIZABLE, detail), salvage, ctx
        )
        if reply.status != ACK:
            return severity, message, reply
        return (
            "ERROR",
            f"bug: the handler could not serialize its own request to {api}; message "
            f"dead-lettered: {events.REQUEST_NOT_SERIALIZABLE}",
            reply,
        )


def _retry(ctx: _Context, detail: str, what: str) -> tuple[str, str, Reply]:
    """A transient failure (`what` happened, `detail` from the API): logged with its
    detail, and Pub/Sub asked to deliver the message again."""
    ctx.update(error_detail=detail)
    return ("WARNING", f"{what}; asking Pub/Sub to retry", Reply(RETRY, {"outcome": "retry"}))


def _retry_unexpected_job(response: ApiResponse, ctx: _Context) -> tuple[str, str, Reply]:
    """A Vertex AI answer without a job name: logged, and Pub/Sub asked to retry."""
    return _retry(
        ctx, f"{response.detail}: no job name in the response", "unexpected response from Vertex AI"
    )


def _first_id(response: ApiResponse) -> str | None:
    ids = response.body.get("messageIds") if isinstance(response.body, dict) else None
    if isinstance(ids, list) and ids and isinstance(ids[0], str):
        return ids[0]
    return None
