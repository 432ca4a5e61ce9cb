"""Cloud Monitoring alert policies for one workflow: what an operator must hear about.

Three policies (Terraform addresses `<wf>_<kind>_alert`), each with a runbook in its
documentation:

    dead_letters          "<wf>: messages on the dead-letter topic": the dead-letter pull
                          subscription's backlog (subscription/num_undelivered_messages) > 0
    oldest_unacked_age    "<wf>: push backlog older than N s": a push subscription's oldest
                          unacked message (subscription/oldest_unacked_message_age) > N s
    push_errors           "<wf>: more than N% of pushes fail": pushes not answered with an
                          ack (subscription/push_request_count, response_class != "ack") over
                          all pushes, above the ratio over 5 minutes, for 5 minutes

Why the dead-letter pull subscription's backlog and not `subscription/dead_letter_message_count`:
that metric counts only what Pub/Sub forwards after the last delivery attempt, on the source
subscription. The handler publishes permanent errors to the dead-letter topic itself, which
that metric never sees. Both paths end on the dead-letter topic, and its pull subscription
keeps them until someone replays or acknowledges them, so its backlog covers both and the
incident stays open while dead letters wait (a publish count on the topic would close after
its window with the messages still there).

Filters name the subscriptions literally (`resource.labels.subscription_id = "<name>"`), so a
policy reads as what it watches and creates no Terraform reference to the subscription.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from constructs import Construct

from . import rules
from .compat import cdk, provider
from .errors import ConfigError
from .naming import terraform_id

# cdktf or CDK Terrain, whichever ai_workflow.compat chose (type checkers see cdktf).
if TYPE_CHECKING:
    from cdktf import ITerraformDependable
    from cdktf_cdktf_provider_google.monitoring_alert_policy import (
        MonitoringAlertPolicy,
        MonitoringAlertPolicyAlertStrategy,
        MonitoringAlertPolicyConditions,
        MonitoringAlertPolicyConditionsConditionThreshold,
        MonitoringAlertPolicyConditionsConditionThresholdAggregations,
        MonitoringAlertPolicyConditionsConditionThresholdDenominatorAggregations,
        MonitoringAlertPolicyDocumentation,
    )
else:
    ITerraformDependable = cdk.ITerraformDependable
    _policy = provider("monitoring_alert_policy")
    MonitoringAlertPolicy = _policy.MonitoringAlertPolicy
    MonitoringAlertPolicyAlertStrategy = _policy.MonitoringAlertPolicyAlertStrategy
    MonitoringAlertPolicyConditions = _policy.MonitoringAlertPolicyConditions
    MonitoringAlertPolicyConditionsConditionThreshold = (
        _policy.MonitoringAlertPolicyConditionsConditionThreshold
    )
    MonitoringAlertPolicyConditionsConditionThresholdAggregations = (
        _policy.MonitoringAlertPolicyConditionsConditionThresholdAggregations
    )
    MonitoringAlertPolicyConditionsConditionThresholdDenominatorAggregations = (
        _policy.MonitoringAlertPolicyConditionsConditionThresholdDenominatorAggregations
    )
    MonitoringAlertPolicyDocumentation = _policy.MonitoringAlertPolicyDocumentation

METRIC_PREFIX = "pubsub.googleapis.com/subscription/"
SAMPLE_PERIOD = "60s"
"""Pub/Sub writes its subscription metrics once a minute."""
PUSH_ERROR_WINDOW = "300s"
"""The push error ratio is taken over 5 minutes and must hold for another 5."""
AUTO_CLOSE = "1800s"
"""An incident whose metric stops reporting (no pushes at all) closes after 30 minutes, the
shortest Cloud Monitoring allows."""


def subscription_filter(metric: str, subscription: str, *extra: str) -> str:
    """A Cloud Monitoring filter for one Pub/Sub subscription metric (`metric` without the
    `pubsub.googleapis.com/subscription/` prefix) of the subscription named `subscription`."""
    return " AND ".join(
        [
            'resource.type = "pubsub_subscription"',
            f'resource.labels.subscription_id = "{subscription}"',
            f'metric.type = "{METRIC_PREFIX}{metric}"',
            *extra,
        ]
    )


@dataclass(frozen=True, kw_only=True)
class WorkflowAlertsProps:
    name: str
    """Workflow name: in display names and addresses (`<name>_dead_letters_alert`)."""
    project_id: str
    """Project of the subscriptions (named in the runbooks' commands)."""
    push_subscriptions: Sequence[str]
    """Names of the subscriptions that push to the handler (the trigger's, the pipeline
    events'): their backlog age and push errors alert. At least one."""
    dead_letter_subscription: str
    """Name of the pull subscription on the dead-letter topic: a backlog alerts."""
    oldest_unacked_age_seconds: int = 3600
    """Alert when a push subscription's oldest unacked message is older, 60..604799.
    Default 1 hour."""
    push_error_ratio: float = 0.05
    """Alert when more than this share of pushes fail over 5 minutes, 0 < ratio < 1.
    Default 0.05 (5%)."""
    notification_channels: Sequence[str] = ()
    """`projects/<p>/notificationChannels/<id>` to notify. Default: none (incidents show in
    the console only)."""
    replay_command: str | None = None
    """The command that replays the dead letters, quoted in the dead-letter runbook. Default:
    none (the runbook says to publish them again by hand)."""
    labels: dict[str, str] = field(default_factory=dict)
    """User labels on each policy."""
    depends_on: Sequence[ITerraformDependable] = ()
    """What the policies must wait for (the Monitoring API). Default: nothing."""


def workflow_alerts_problems(props: WorkflowAlertsProps) -> list[str]:
    p = rules.matches(
        "name", props.name, rules.WORKFLOW_NAME, "2..24 lowercase letters, digits and hyphens"
    )
    if not props.push_subscriptions:
        p.append("push_subscriptions: got none, allowed at least one subscription name")
    for i, name in enumerate(props.push_subscriptions):
        p += rules.pubsub_name(f"push_subscriptions[{i}]", name)
    p += rules.pubsub_name("dead_letter_subscription", props.dead_letter_subscription)
    p += rules.integer_in_range(
        "oldest_unacked_age_seconds", props.oldest_unacked_age_seconds, 60, 604_799
    )
    p += rules.fraction("push_error_ratio", props.push_error_ratio)
    p += rules.notification_channels("notification_channels", props.notification_channels)
    p += rules.labels("labels", props.labels)
    return p


class WorkflowAlerts(Construct):
    """Dead letters waiting, an ageing push backlog, failing pushes: one policy each."""

    def __init__(self, scope: Construct, id: str, props: WorkflowAlertsProps):
        super().__init__(scope, id)
        problems = workflow_alerts_problems(props)
        if problems:
            raise ConfigError(problems)
        self._props = props
        dead_letters = props.dead_letter_subscription
        self.dead_letters = self._policy(
            "dead_letters",
            f"{props.name}: messages on the dead-letter topic",
            "ERROR",
            [
                self._gauge_condition(
                    f"{dead_letters} has undelivered messages",
                    subscription_filter("num_undelivered_messages", dead_letters),
                    0,
                )
            ],
            self._dead_letters_runbook(),
        )
        age = props.oldest_unacked_age_seconds
        self.oldest_unacked_age = self._policy(
            "oldest_unacked_age",
            f"{props.name}: push backlog older than {age} s",
            "WARNING",
            [
                self._gauge_condition(
                    f"{name} oldest unacked message older than {age} s",
                    subscription_filter("oldest_unacked_message_age", name),
                    age,
                )
                for name in props.push_subscriptions
            ],
            self._oldest_unacked_age_runbook(),
        )
        percent = f"{props.push_error_ratio:.2%}".replace(".00%", "%")
        self.push_errors = self._policy(
            "push_errors",
            f"{props.name}: more than {percent} of pushes fail",
            "WARNING",
            [self._push_error_condition(name, percent) for name in props.push_subscriptions],
            self._push_errors_runbook(percent),
        )

    def _policy(
        self,
        kind: str,
        display_name: str,
        severity: str,
        conditions: list[MonitoringAlertPolicyConditions],
        runbook: str,
    ) -> MonitoringAlertPolicy:
        props = self._props
        policy = MonitoringAlertPolicy(
            self,
            kind,
            display_name=display_name,
            combiner="OR",
            conditions=conditions,
            severity=severity,
            notification_channels=list(props.notification_channels) or None,
            alert_strategy=MonitoringAlertPolicyAlertStrategy(auto_close=AUTO_CLOSE),
            documentation=MonitoringAlertPolicyDocumentation(
                subject=display_name, content=runbook, mime_type="text/markdown"
            ),
            user_labels=props.labels or None,
            depends_on=list(props.depends_on) or None,
        )
        policy.override_logical_id(f"{terraform_id(props.name)}_{kind}_alert")
        return policy

    @staticmethod
    def _gauge_condition(
        display_name: str, metric_filter: str, threshold: int
    ) -> MonitoringAlertPolicyConditions:
        """A GAUGE metric above `threshold`: its largest sample in each minute, at once."""
        return MonitoringAlertPolicyConditions(
            display_name=display_name,
            condition_threshold=MonitoringAlertPolicyConditionsConditionThreshold(
                filter=metric_filter,
                comparison="COMPARISON_GT",
                threshold_value=threshold,
                duration="0s",
                aggregations=[
                    MonitoringAlertPolicyConditionsConditionThresholdAggregations(
                        alignment_period=SAMPLE_PERIOD, per_series_aligner="ALIGN_MAX"
                    )
                ],
            ),
        )

    def _push_error_condition(
        self, subscription: str, percent: str
    ) -> MonitoringAlertPolicyConditions:
        """Failed pushes over all pushes of `subscription` (a DELTA metric: counts per 5-minute
        window, summed over the response classes and codes), above the ratio for 5 minutes."""
        # Numerator and denominator aggregated alike, so the ratio is of matching series.
        window, aligner, reducer = PUSH_ERROR_WINDOW, "ALIGN_DELTA", "REDUCE_SUM"
        group_by = ["resource.labels.subscription_id"]
        return MonitoringAlertPolicyConditions(
            display_name=f"{subscription} pushes not acknowledged above {percent}",
            condition_threshold=MonitoringAlertPolicyConditionsConditionThreshold(
                filter=subscription_filter(
                    "push_request_count", subscription, 'metric.labels.response_class != "ack"'
                ),
                denominator_filter=subscription_filter("push_request_count", subscription),
                comparison="COMPARISON_GT",
                threshold_value=self._props.push_error_ratio,
                duration=PUSH_ERROR_WINDOW,
                aggregations=[
                    MonitoringAlertPolicyConditionsConditionThresholdAggregations(
                        alignment_period=window,
                        per_series_aligner=aligner,
                        cross_series_reducer=reducer,
                        group_by_fields=group_by,
                    )
                ],
                denominator_aggregations=[
                    MonitoringAlertPolicyConditionsConditionThresholdDenominatorAggregations(
                        alignment_period=window,
                        per_series_aligner=aligner,
                        cross_series_reducer=reducer,
                        group_by_fields=group_by,
                    )
                ],
            ),
        )

    # --- runbooks (the policies' documentation, markdown) ----------------------------------

    def _pull_command(self) -> str:
        props = self._props
        return (
            f"gcloud pubsub subscriptions pull {props.dead_letter_subscription} "
            f"--project {props.project_id} --limit 10"
        )

    def _dead_letters_runbook(self) -> str:
        props = self._props
        replay = (
            f"3. Once the cause is fixed, replay them: `{props.replay_command}`."
            if props.replay_command
            else "3. Once the cause is fixed, publish them again to the topic they came from "
            "and acknowledge them here."
        )
        return "\n".join(
            [
                f"Messages of workflow **{props.name}** are waiting on its dead-letter pull "
                f"subscription `{props.dead_letter_subscription}`: the handler rejected them "
                "as permanent errors, or Pub/Sub gave up after the last delivery attempt. "
                "What they asked for (a pipeline run, or a finished run's outcome event) has "
                "not happened; they wait here until replayed or the subscription's "
                "retention ends.",
                "",
                f"1. Look at them without acknowledging: `{self._pull_command()}`.",
                "2. The `error` attribute names the handler's reason (docs/handler.md, "
                "failure semantics); messages without it were forwarded by Pub/Sub after "
                "repeated 5xx answers or timeouts: read the handler's logs.",
                replay,
                "",
                "The incident closes when the subscription's backlog is empty.",
            ]
        )

    def _oldest_unacked_age_runbook(self) -> str:
        props = self._props
        names = ", ".join(f"`{name}`" for name in props.push_subscriptions)
        return "\n".join(
            [
                f"A message on a push subscription of workflow **{props.name}** ({names}) has "
                f"waited more than {props.oldest_unacked_age_seconds} s for the handler to "
                "acknowledge it: longer than its retries and dead-lettering should take, so "
                "delivery is stuck. Unacknowledged messages expire after the subscription's "
                "retention and are then lost.",
                "",
                "1. Check the handler (`<wf>-handler`): is it deployed, serving, not at its "
                "maximum instances? Read its logs for 5xx answers and timeouts.",
                "2. Check the push identity may still invoke it (roles/run.invoker) and the "
                "Pub/Sub service agent may still mint its tokens.",
                "3. If the handler is healthy but slow, raise `max_instances` or the ack "
                "deadline (`ack_deadline_seconds`).",
                "",
                "The threshold is the workflow setting `alert_oldest_unacked_age_seconds`.",
            ]
        )

    def _push_errors_runbook(self, percent: str) -> str:
        props = self._props
        return "\n".join(
            [
                f"More than {percent} of the pushes to workflow **{props.name}**'s handler "
                "were not acknowledged over 5 minutes, for 5 minutes. The metric's "
                "`response_class` tells why: `remote_server_5xx` (the handler answered 503 "
                "for a transient error, or failed), `remote_server_4xx` (refused, e.g. "
                "authentication), `deadline_exceeded` (slower than the ack deadline), "
                "`unreachable`, `invalid` or `internal`.",
                "",
                "Pub/Sub retries these with backoff and dead-letters what keeps failing, so "
                "nothing is lost yet.",
                "",
                "1. Read the handler's logs for the failing requests and their reason "
                "(Vertex AI unavailable, quota, a bug).",
                "2. 4xx: check the push identity's roles/run.invoker on the handler and the "
                "OIDC audience.",
                "3. `deadline_exceeded`: raise `ack_deadline_seconds` or `max_instances`.",
                "",
                "The threshold is the workflow setting `alert_push_error_ratio`.",
            ]
        )
