"""Alert policies per workflow: exactly three, their exact filters and aggregations, the
thresholds from the settings (and the derived default), the notification channels, and the
settings' rules with their exact messages."""

from __future__ import annotations

import copy
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from environments import FIXTURE_CONFIG_DIR, ROOT
from stack_helpers import resources

from ai_workflow import ConfigError
from ai_workflow.workflow_config import WorkflowSettings
from ai_workflow_app.config import parse_environment

WORKFLOWS = ("ingest", "train", "batch-predict")
KINDS = ("dead_letters", "oldest_unacked_age", "push_errors")
PROD_CHANNEL = "projects/acme-ai-prod/notificationChannels/4875230516814275671"
DEV = tomllib.loads((FIXTURE_CONFIG_DIR / "dev.toml").read_text())


def policies(stack: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return resources(stack, "google_monitoring_alert_policy")


def policy(stack: dict[str, Any], workflow: str, kind: str) -> dict[str, Any]:
    return policies(stack)[f"{workflow.replace('-', '_')}_{kind}_alert"]


def subscription_filter(subscription: str, metric: str) -> str:
    return (
        f'resource.type = "pubsub_subscription" AND resource.labels.subscription_id = '
        f'"{subscription}" AND metric.type = "pubsub.googleapis.com/subscription/{metric}"'
    )


def thresholds(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [c["condition_threshold"] for c in body["conditions"]]


# --- what is synthesized -------------------------------------------------------------------


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_each_workflow_has_exactly_its_three_policies(
    env: str, stacks: dict[str, dict[str, Any]]
) -> None:
    assert set(policies(stacks[env])) == {
        f"{w.replace('-', '_')}_{kind}_alert" for w in WORKFLOWS for kind in KINDS
    }


def test_dead_letters_alert_on_the_dead_letter_pull_subscriptions_backlog(dev: dict) -> None:
    body = policy(dev, "train", "dead_letters")
    assert body["display_name"] == "train: messages on the dead-letter topic"
    assert (body["combiner"], body["severity"]) == ("OR", "ERROR")
    assert body["conditions"] == [
        {
            "display_name": "train-dead-letter-pull has undelivered messages",
            "condition_threshold": {
                "filter": subscription_filter("train-dead-letter-pull", "num_undelivered_messages"),
                # GAUGE: the largest sample of each minute, above 0 at once.
                "aggregations": [{"alignment_period": "60s", "per_series_aligner": "ALIGN_MAX"}],
                "comparison": "COMPARISON_GT",
                "threshold_value": 0,
                "duration": "0s",
            },
        }
    ]


def test_oldest_unacked_age_alerts_on_both_push_subscriptions(dev: dict) -> None:
    body = policy(dev, "train", "oldest_unacked_age")
    assert body["display_name"] == "train: push backlog older than 3600 s"
    assert body["severity"] == "WARNING"
    assert body["conditions"] == [
        {
            "display_name": f"{sub} oldest unacked message older than 3600 s",
            "condition_threshold": {
                "filter": subscription_filter(sub, "oldest_unacked_message_age"),
                "aggregations": [{"alignment_period": "60s", "per_series_aligner": "ALIGN_MAX"}],
                "comparison": "COMPARISON_GT",
                "threshold_value": 3600,
                "duration": "0s",
            },
        }
        for sub in ("train-push", "train-pipeline-events-push")
    ]


def test_push_errors_are_a_ratio_of_unacknowledged_to_all_pushes(dev: dict) -> None:
    body = policy(dev, "ingest", "push_errors")
    assert body["display_name"] == "ingest: more than 5% of pushes fail"
    assert body["severity"] == "WARNING"
    # DELTA: counts per 5-minute window, summed over response class and code; numerator and
    # denominator aggregated alike, so the ratio is of matching series.
    aggregation = {
        "alignment_period": "300s",
        "per_series_aligner": "ALIGN_DELTA",
        "cross_series_reducer": "REDUCE_SUM",
        "group_by_fields": ["resource.labels.subscription_id"],
    }
    all_pushes = "push_request_count"
    assert body["conditions"] == [
        {
            "display_name": f"{sub} pushes not acknowledged above 5%",
            "condition_threshold": {
                "filter": subscription_filter(sub, all_pushes)
                + ' AND metric.labels.response_class != "ack"',
                "denominator_filter": subscription_filter(sub, all_pushes),
                "aggregations": [aggregation],
                "denominator_aggregations": [aggregation],
                "comparison": "COMPARISON_GT",
                "threshold_value": 0.05,
                "duration": "300s",
            },
        }
        for sub in ("ingest-push", "ingest-pipeline-events-push")
    ]


def test_every_policy_has_a_runbook_labels_auto_close_and_waits_for_the_api(dev: dict) -> None:
    for name, body in policies(dev).items():
        assert body["alert_strategy"] == {"auto_close": "1800s"}, name
        assert body["documentation"]["mime_type"] == "text/markdown", name
        assert body["documentation"]["subject"] == body["display_name"], name
        assert body["depends_on"] == ["google_project_service.api_monitoring"], name
        workflow = body["user_labels"]["workflow"]
        assert body["user_labels"] == {
            "team": "ml-platform",
            "cost-center": "ai-dev",
            "env": "dev",
            "managed-by": "cdktf",
            "workflow": workflow,
        }
        assert "notification_channels" not in body, name  # dev names none


def test_the_dead_letter_runbook_names_the_replay_command_and_the_pull(dev: dict) -> None:
    content = policy(dev, "batch-predict", "dead_letters")["documentation"]["content"]
    assert "`make replay-dead-letters ENV=dev WORKFLOW=batch-predict`" in content
    assert (
        "`gcloud pubsub subscriptions pull batch-predict-dead-letter-pull --project acme-ai-dev "
        "--limit 10`" in content
    )
    for kind, setting in (
        ("oldest_unacked_age", "alert_oldest_unacked_age_seconds"),
        ("push_errors", "alert_push_error_ratio"),
    ):
        assert f"`{setting}`" in policy(dev, "train", kind)["documentation"]["content"]


def test_prod_notifies_its_channel_with_thresholds_from_the_settings(prod: dict) -> None:
    for body in policies(prod).values():
        assert body["notification_channels"] == [PROD_CHANNEL]
    # batch-predict sets its own ratio; the others keep 5%.
    assert {
        c["threshold_value"] for c in thresholds(policy(prod, "batch-predict", "push_errors"))
    } == {0.1}
    assert policy(prod, "batch-predict", "push_errors")["display_name"] == (
        "batch-predict: more than 10% of pushes fail"
    )
    assert {c["threshold_value"] for c in thresholds(policy(prod, "train", "push_errors"))} == {
        0.05
    }
    # 10 delivery attempts of up to 20 s + 600 s retry for longer than an hour: 6200 s.
    for workflow in WORKFLOWS:
        ages = {
            c["threshold_value"] for c in thresholds(policy(prod, workflow, "oldest_unacked_age"))
        }
        assert ages == {6200}


# Cloud Monitoring's metric list: each metric's kind, and the aligners valid for a kind.
METRIC_KINDS = {
    "num_undelivered_messages": "GAUGE",
    "oldest_unacked_message_age": "GAUGE",
    "push_request_count": "DELTA",
}
ALIGNERS = {
    "GAUGE": {"ALIGN_MAX", "ALIGN_MIN", "ALIGN_MEAN", "ALIGN_NEXT_OLDER"},
    "DELTA": {"ALIGN_DELTA", "ALIGN_RATE", "ALIGN_SUM"},
}
FILTER = re.compile(
    r'^resource\.type = "pubsub_subscription" AND resource\.labels\.subscription_id = '
    r'"(?P<subscription>[a-z0-9-]+)" AND metric\.type = '
    r'"pubsub\.googleapis\.com/subscription/(?P<metric>[a-z_]+)"(?P<rest>.*)$'
)


def seconds(duration: str) -> int:
    assert re.fullmatch(r"[0-9]+s", duration), duration
    return int(duration[:-1])


@pytest.mark.parametrize("env", ["dev", "prod"])
def test_every_condition_is_valid_for_its_metrics_kind(
    env: str, stacks: dict[str, dict[str, Any]]
) -> None:
    stack = stacks[env]
    subscriptions = {b["name"] for b in resources(stack, "google_pubsub_subscription").values()}
    display_names = [body["display_name"] for body in policies(stack).values()]
    assert len(set(display_names)) == len(display_names)
    for name, body in policies(stack).items():
        assert seconds(body["alert_strategy"]["auto_close"]) >= 1800, name  # Monitoring's minimum
        for condition in thresholds(body):
            found = FILTER.fullmatch(condition["filter"])
            assert found, condition["filter"]
            assert found["subscription"] in subscriptions, name  # watches a real subscription
            kind = METRIC_KINDS[found["metric"]]
            # Pub/Sub samples once a minute: periods and durations in whole minutes.
            assert seconds(condition["duration"]) % 60 == 0, name
            for aggregation in condition["aggregations"]:
                assert aggregation["per_series_aligner"] in ALIGNERS[kind], name
                assert seconds(aggregation["alignment_period"]) % 60 == 0, name
            if "denominator_filter" in condition:
                # A ratio: the same series on both sides, the numerator a subset.
                assert condition["filter"] == condition["denominator_filter"] + found["rest"]
                assert condition["denominator_aggregations"] == condition["aggregations"]
                assert 0 < condition["threshold_value"] < 1
            else:
                assert found["rest"] == ""


def test_the_monitoring_api_is_enabled_only_when_a_workflow_alerts() -> None:
    from ai_workflow_app.stack import required_apis

    env = parse_environment("dev", "config/dev.toml", copy.deepcopy(DEV))
    assert "monitoring.googleapis.com" in required_apis(env)
    quiet = copy.deepcopy(DEV)
    quiet["workflow_defaults"]["alerts"] = False
    assert "monitoring.googleapis.com" not in required_apis(
        parse_environment("dev", "config/dev.toml", quiet)
    )


# --- the age threshold's default -----------------------------------------------------------


@pytest.mark.parametrize(
    ("settings", "threshold"),
    [
        ({}, 3600),  # 5 x (20 + 600) = 3100 s of retries: one hour is longer
        ({"max_delivery_attempts": 10}, 6200),  # retries take longer than an hour
        ({"max_delivery_attempts": 100}, 62_000),  # 100 x (20 + 600)
        # capped at half the retention: time to act before messages expire
        ({"max_delivery_attempts": 100, "message_retention_seconds": 86_400}, 43_200),
        ({"message_retention_seconds": 3600}, 1800),  # half the retention
        ({"message_retention_seconds": 31 * 86_400}, 3600),  # subscriptions keep 7 days at most
        ({"alert_oldest_unacked_age_seconds": 120}, 120),  # set: used as is
    ],
)
def test_the_age_threshold_is_derived_from_retries_and_retention(
    settings: dict[str, Any], threshold: int
) -> None:
    assert WorkflowSettings(**settings).oldest_unacked_age_alert_seconds == threshold


# --- the settings' rules -------------------------------------------------------------------


def problems(data: dict[str, Any]) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_environment("dev", "config/dev.toml", data)
    return caught.value.problems


def with_workflow(**keys: Any) -> dict[str, Any]:
    data = copy.deepcopy(DEV)
    data["workflows"][0].update(keys)
    return data


@pytest.mark.parametrize(
    ("keys", "line"),
    [
        ({"alerts": "no"}, "workflows[0].alerts: got 'no', allowed true or false"),
        (
            {"alert_push_error_ratio": 5},
            "workflows[0].alert_push_error_ratio: got 5, allowed a number greater than 0 and "
            "less than 1",
        ),
        (
            {"alert_push_error_ratio": 0.0},
            "workflows[0].alert_push_error_ratio: got 0.0, allowed a number greater than 0 and "
            "less than 1",
        ),
        (
            {"alert_push_error_ratio": float("nan")},
            "workflows[0].alert_push_error_ratio: got nan, allowed a number greater than 0 and "
            "less than 1",
        ),
        (
            {"alert_oldest_unacked_age_seconds": 30},
            "workflows[0].alert_oldest_unacked_age_seconds: got 30, allowed 60..604799 (less "
            "than the subscriptions' message retention, 604800 s)",
        ),
        (
            {"alert_oldest_unacked_age_seconds": 3600, "message_retention_seconds": 3600},
            "workflows[0].alert_oldest_unacked_age_seconds: got 3600, allowed 60..3599 (less "
            "than the subscriptions' message retention, 3600 s)",
        ),
        (
            {"alert_oldest_unacked_age_seconds": "1h"},
            "workflows[0].alert_oldest_unacked_age_seconds: got '1h', allowed an integer "
            "60..604799 (less than the subscriptions' message retention, 604800 s)",
        ),
    ],
)
def test_workflow_alert_settings(keys: dict[str, Any], line: str) -> None:
    assert problems(with_workflow(**keys)) == [f"config/dev.toml: {line}"]


def test_an_alert_default_is_reported_once_where_it_is_set() -> None:
    data = copy.deepcopy(DEV)
    data["workflow_defaults"]["alert_push_error_ratio"] = 1.5
    assert problems(data) == [
        "config/dev.toml: workflow_defaults.alert_push_error_ratio: got 1.5, allowed a number "
        "greater than 0 and less than 1"
    ]


@pytest.mark.parametrize(
    ("channels", "lines"),
    [
        (
            "projects/p/notificationChannels/1",
            [
                "alert_notification_channels: got 'projects/p/notificationChannels/1', allowed a "
                "list of projects/<project>/notificationChannels/<id>"
            ],
        ),
        (
            ["projects/p/notificationChannels/1", "projects/p/alertPolicies/2", 3],
            [
                "alert_notification_channels[1]: got 'projects/p/alertPolicies/2', allowed "
                "projects/<project>/notificationChannels/<id>",
                "alert_notification_channels[2]: got 3, allowed "
                "projects/<project>/notificationChannels/<id>",
            ],
        ),
        (
            ["projects/p/notificationChannels/1", "projects/p/notificationChannels/1"],
            [
                "alert_notification_channels[1]: got 'projects/p/notificationChannels/1', "
                "allowed each channel once (alert_notification_channels[0] already names it)"
            ],
        ),
    ],
)
def test_notification_channels(channels: Any, lines: list[str]) -> None:
    data = copy.deepcopy(DEV)
    data["alert_notification_channels"] = channels
    assert problems(data) == [f"config/dev.toml: {line}" for line in lines]


def test_alerts_can_be_switched_off_per_workflow() -> None:
    env = parse_environment("dev", "config/dev.toml", with_workflow(alerts=False))
    assert [w.alerts for w in env.workflows] == [False, True, True]
    assert env.alert_notification_channels == ()


def test_the_readme_alerts_example_is_valid_settings() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("\n## Alerts\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```toml\n(.*?)```", section, re.S)
    data = copy.deepcopy(DEV) | tomllib.loads(block)
    env = parse_environment("dev", "config/dev.toml", data)
    assert env.alert_notification_channels == (PROD_CHANNEL,)
    assert {w.alert_push_error_ratio for w in env.workflows} == {0.1}


def test_a_bad_alert_setting_is_one_line_exit_2_and_keeps_the_output(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    text = (FIXTURE_CONFIG_DIR / "dev.toml").read_text()
    text = text.replace("max_instances = 3", "max_instances = 3\nalert_push_error_ratio = 5")
    (config / "dev.toml").write_text('alert_notification_channels = ["ops@acme.com"]\n' + text)
    stack = tmp_path / "cdktf.out" / "stacks" / "dev" / "cdk.tf.json"
    stack.parent.mkdir(parents=True)
    stack.write_text('{"previous": true}')
    result = subprocess.run(
        [
            sys.executable,
            "main.py",
            "--config-dir",
            str(config),
            "--outdir",
            str(tmp_path / "cdktf.out"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    shown = (config / "dev.toml").as_posix()
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"error: {shown}: alert_notification_channels[0]: got 'ops@acme.com', allowed "
        "projects/<project>/notificationChannels/<id>",
        f"error: {shown}: workflow_defaults.alert_push_error_ratio: got 5, allowed a number "
        "greater than 0 and less than 1",
    ]
    assert stack.read_text() == '{"previous": true}'
