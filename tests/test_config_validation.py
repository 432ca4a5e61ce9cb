"""Each validation rule, with its exact message: file, key path, value and what is allowed.

The rules are exercised on the test-owned copy of the examples (tests/fixtures/config), so
edits to config/ never change what these tests expect.
"""

from __future__ import annotations

import copy
import datetime
import math
import tomllib
from pathlib import Path
from typing import Any

import pytest
from environments import FIXTURE_CONFIG_DIR

from ai_workflow import ConfigError
from ai_workflow_app.config import load_environment, load_environments, parse_environment

DEV = tomllib.loads((FIXTURE_CONFIG_DIR / "dev.toml").read_text())
ROUTE = {"template_uri": "https://europe-west4-kfp.pkg.dev/p/repo/train/latest"}


def problems(data: dict[str, Any], name: str = "dev") -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_environment(name, "config/dev.toml", data)
    return caught.value.problems


def with_changes(**top: Any) -> dict[str, Any]:
    data = copy.deepcopy(DEV)
    data.update(top)
    return data


def with_workflow(index: int = 0, **keys: Any) -> dict[str, Any]:
    data = copy.deepcopy(DEV)
    data["workflows"][index].update(keys)
    return data


def test_examples_are_valid() -> None:
    envs = load_environments([FIXTURE_CONFIG_DIR / "dev.toml", FIXTURE_CONFIG_DIR / "prod.toml"])
    assert [e.name for e in envs] == ["dev", "prod"]
    assert [w.name for w in envs[0].workflows] == ["ingest", "train", "batch-predict"]
    assert envs[0].workflow("train").max_instances == 3  # from [workflow_defaults]
    assert envs[0].workflow("train").ack_deadline_seconds == 20  # built-in default


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("ack_deadline_seconds", 5, "workflows[0].ack_deadline_seconds: got 5, allowed 10..600"),
        (
            "ack_deadline_seconds",
            601,
            "workflows[0].ack_deadline_seconds: got 601, allowed 10..600",
        ),
        (
            "ack_deadline_seconds",
            "20",
            "workflows[0].ack_deadline_seconds: got '20', allowed an integer 10..600",
        ),
        (
            "ack_deadline_seconds",
            True,
            "workflows[0].ack_deadline_seconds: got True, allowed an integer 10..600",
        ),
        ("max_delivery_attempts", 4, "workflows[0].max_delivery_attempts: got 4, allowed 5..100"),
        (
            "min_retry_backoff_seconds",
            -1,
            "workflows[0].min_retry_backoff_seconds: got -1, allowed 0..600",
        ),
        (
            "max_retry_backoff_seconds",
            700,
            "workflows[0].max_retry_backoff_seconds: got 700, allowed 0..600",
        ),
        (
            "message_retention_seconds",
            60,
            "workflows[0].message_retention_seconds: got 60, allowed 600..2678400",
        ),
        (
            "dead_letter_retention_seconds",
            700000,
            "workflows[0].dead_letter_retention_seconds: got 700000, allowed 600..604800",
        ),
        (
            "runtime",
            "python37",
            "workflows[0].runtime: got 'python37', allowed one of python312, python313",
        ),
        (
            "available_memory",
            "lots",
            "workflows[0].available_memory: got 'lots', allowed a size like 256Mi or 1Gi",
        ),
        ("max_instances", 0, "workflows[0].max_instances: got 0, allowed 1..1000"),
        ("timeout_seconds", 4000, "workflows[0].timeout_seconds: got 4000, allowed 1..3600"),
        (
            "vpc_egress",
            "SOME",
            "workflows[0].vpc_egress: got 'SOME', allowed one of PRIVATE_RANGES_ONLY, ALL_TRAFFIC",
        ),
        (
            "name",
            "Ingest",
            "workflows[0].name: got 'Ingest', allowed 2..24 lowercase letters, digits and hyphens, "
            "starting with a letter (it prefixes topic, function and service account names)",
        ),
        (
            "name",
            "a-very-long-workflow-name-x",
            "workflows[0].name: got 'a-very-long-workflow-name-x', allowed 2..24 lowercase",
        ),
        (
            "publishers",
            ["allUsers"],
            "workflows[0].publishers[0]: got 'allUsers', allowed a named principal "
            "(public publishers are never allowed)",
        ),
        (
            "publishers",
            ["someone@example.com"],
            "workflows[0].publishers[0]: got 'someone@example.com', allowed an IAM member",
        ),
        ("labels", {"Team": "x"}, "workflows[0].labels.Team: got 'Team', allowed lowercase"),
        ("subscription_filter", "x" * 257, "workflows[0].subscription_filter: got 'xxxx"),
    ],
)
def test_workflow_rules(key: str, value: Any, message: str) -> None:
    found = problems(with_workflow(**{key: value}))
    assert any(p.startswith(f"config/dev.toml: {message}") for p in found), found


def test_backoff_order_and_instance_order() -> None:
    found = problems(
        with_workflow(
            min_retry_backoff_seconds=60,
            max_retry_backoff_seconds=30,
            min_instances=5,
            max_instances=2,
        )
    )
    assert (
        "config/dev.toml: workflows[0].min_retry_backoff_seconds: got 60, allowed at most "
        "max_retry_backoff_seconds (30)" in found
    )
    assert (
        "config/dev.toml: workflows[0].min_instances: got 5, allowed at most max_instances (2)"
        in found
    )


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"project_id": "Acme"}, "project_id: got 'Acme', allowed a project id"),
        (
            {"region": "europe-wset4"},
            "region: got 'europe-wset4', allowed a Cloud Run functions + Vertex AI region "
            "(did you mean 'europe-west4'?)",
        ),
        (
            {"region": "mars-north1"},
            "region: got 'mars-north1', allowed a Cloud Run functions + Vertex AI region "
            "(listed in constructs/ai_workflow/regions.py)",
        ),
        (
            {"region": "me-central1"},
            "region: got 'me-central1', allowed a Cloud Run functions + Vertex AI region "
            "(me-central1 is a Google Cloud region, but constructs/ai_workflow/regions.py does "
            "not list it as having both)",
        ),
        ({"kms_key_name": "my-key"}, "kms_key_name: got 'my-key', allowed projects/<p>/locations/"),
        ({"access_log_bucket": "Bad_Bucket"}, "access_log_bucket: got 'Bad_Bucket', allowed 3..63"),
        (
            {"access_log_bucket": "googlelogs"},
            "access_log_bucket: got 'googlelogs', allowed a name",
        ),
        (
            {"pipeline_root_retention_days": 0},
            "pipeline_root_retention_days: got 0, allowed 1..3650",
        ),
        ({"state_path": "/abs/state"}, "state_path: got '/abs/state', allowed a path relative"),
        ({"labels": {"team": "ML"}}, "labels.team: got 'ML', allowed lowercase"),
        ({"workflows": []}, "workflows: missing, allowed one or more [[workflows]] tables"),
        ({"workflows": {}}, "workflows: got {}, allowed one or more [[workflows]] tables"),
    ],
)
def test_environment_rules(changes: dict[str, Any], message: str) -> None:
    found = problems(with_changes(**changes))
    assert any(p.startswith(f"config/dev.toml: {message}") for p in found), found


@pytest.mark.parametrize("location", ["us-east1", "global", "europe"])
def test_the_key_must_be_in_the_stacks_region(location: str) -> None:
    key = f"projects/acme-security/locations/{location}/keyRings/ai/cryptoKeys/workflows"
    assert problems(with_changes(kms_key_name=key)) == [
        f"config/dev.toml: kms_key_name: got '{key}', allowed a key in europe-west4 (the region "
        "of the buckets, repository, function and Vertex AI jobs)"
    ]


def test_a_key_in_the_region_is_accepted() -> None:
    key = "projects/acme-security/locations/europe-west4/keyRings/ai/cryptoKeys/workflows"
    env = parse_environment("prod", "config/prod.toml", with_changes(kms_key_name=key))
    assert env.kms_key_name == key


def test_with_a_bad_region_only_the_region_is_reported_not_the_keys_location() -> None:
    key = "projects/acme-security/locations/europe-west4/keyRings/ai/cryptoKeys/workflows"
    found = problems(with_changes(region="mars-north1", kms_key_name=key))
    assert len(found) == 1 and found[0].startswith("config/dev.toml: region: got 'mars-north1'")


def test_bucket_names_derived_from_a_long_project_id_are_checked() -> None:
    found = problems(with_changes(project_id="goog-ai-dev"))
    assert (
        "config/dev.toml: project_id (pipeline root bucket name): got 'goog-ai-dev-pipeline-root',"
        " allowed a name without 'goog' prefix or 'google'" in found
    )


def test_unknown_keys_are_typos() -> None:
    data = with_changes(regoin="x")
    data["workflows"][0]["ack_deadline"] = 20
    data["workflows"][0]["routes"]["data.ready"]["paramters"] = {}
    data["workflow_defaults"]["max_instance"] = 3
    found = problems(data)
    assert any(p.startswith("config/dev.toml: regoin: unknown key, allowed ") for p in found)
    assert any(
        p.startswith("config/dev.toml: workflows[0].ack_deadline: unknown key") for p in found
    )
    assert any(
        p.startswith("config/dev.toml: workflows[0].routes.data.ready.paramters: unknown key")
        for p in found
    )
    assert any(
        p.startswith("config/dev.toml: workflow_defaults.max_instance: unknown key") for p in found
    )


def test_routes_rules() -> None:
    found = problems(with_workflow(routes={}))
    assert (
        "config/dev.toml: workflows[0].routes: got {}, allowed at least one event type route"
        in found
    )
    found = problems(with_workflow(routes={"Train": ROUTE}))
    assert any(
        p.startswith("config/dev.toml: workflows[0].routes.Train: got 'Train'") for p in found
    )
    found = problems(with_workflow(routes={"model.train": {"template_uri": "gs://b/t.json"}}))
    assert any(
        p.startswith(
            "config/dev.toml: workflows[0].routes.model.train.template_uri: got "
            "'gs://b/t.json', allowed an Artifact Registry KFP template"
        )
        for p in found
    )
    typo = "https://europe-wset4-kfp.pkg.dev/p/r/t/v1"
    found = problems(
        with_workflow(
            routes={"data.ready": {"template_uri": typo, "result_event_type": "model.train"}}
        )
    )
    assert found == [
        "config/dev.toml: workflows[0].routes.data.ready.template_uri: got "
        "'https://europe-wset4-kfp.pkg.dev/p/r/t/v1', allowed an Artifact Registry location "
        "before -kfp.pkg.dev (did you mean 'europe-west4'?)"
    ]
    found = problems(with_workflow(routes={"model.train": {"parameters": {}}}))
    assert (
        "config/dev.toml: workflows[0].routes.model.train.template_uri: missing, required" in found
    )


def test_an_empty_file_names_only_what_is_missing(tmp_path: Path) -> None:
    empty = tmp_path / "qa.toml"
    empty.write_text("")
    with pytest.raises(ConfigError) as caught:
        load_environment(empty)
    shown = empty.as_posix()
    assert caught.value.problems == [
        f"{shown}: project_id: missing, required",
        f"{shown}: region: missing, required",
        f"{shown}: workflows: missing, allowed one or more [[workflows]] tables",
    ]


def test_missing_required_keys() -> None:
    data = copy.deepcopy(DEV)
    del data["project_id"]
    del data["workflows"][1]["routes"]
    found = problems(data)
    assert "config/dev.toml: project_id: missing, required" in found
    assert "config/dev.toml: workflows[1].routes: missing, required" in found


def test_references_to_missing_workflows_and_cycles() -> None:
    found = problems(with_workflow(1, trigger="ingset"))
    assert (
        "config/dev.toml: workflows[1].trigger: got 'ingset', allowed the name of another "
        "workflow in this file (batch-predict, ingest, train)" in found
    )


def test_a_bad_default_is_reported_once_where_it_is_set() -> None:
    data = copy.deepcopy(DEV)
    data["workflow_defaults"].update(max_instances=0, labels={"Team": "x"})
    assert problems(data) == [
        "config/dev.toml: workflow_defaults.max_instances: got 0, allowed 1..1000",
        "config/dev.toml: workflow_defaults.labels.Team: got 'Team', allowed lowercase letters, "
        "digits, _ and -, starting with a letter, at most 63 characters (label key)",
    ]
    # A workflow that sets the key itself is reported at its own key as well.
    data["workflows"][1]["max_instances"] = 0
    assert problems(data)[2:] == [
        "config/dev.toml: workflows[1].max_instances: got 0, allowed 1..1000",
    ]
    # A workflow's own value overrides a bad default: only the default is reported.
    data["workflows"][1]["max_instances"] = 4
    assert len(problems(data)) == 2


def test_a_combination_of_default_and_own_value_is_reported_at_the_workflow() -> None:
    data = copy.deepcopy(DEV)
    data["workflow_defaults"]["min_instances"] = 2
    data["workflows"][2]["max_instances"] = 1
    assert problems(data) == [
        "config/dev.toml: workflows[2].min_instances: got 2, allowed at most max_instances (1)"
    ]


def test_a_self_trigger_is_its_own_problem_and_blames_nobody_downstream() -> None:
    assert problems(with_workflow(0, trigger="ingest")) == [
        "config/dev.toml: workflows[0].trigger: got 'ingest', allowed another workflow's name "
        "(a workflow cannot trigger itself)"
    ]


def test_only_the_workflows_on_a_cycle_are_reported() -> None:
    # ingest <-> train; batch-predict hangs off train but is not on the cycle.
    assert problems(with_workflow(0, trigger="train")) == [
        "config/dev.toml: workflows[0].trigger: got 'train', allowed a chain without cycles "
        "(cycle: ingest -> train -> ingest)",
        "config/dev.toml: workflows[1].trigger: got 'ingest', allowed a chain without cycles "
        "(cycle: train -> ingest -> train)",
    ]
    assert problems(with_workflow(0, trigger="batch-predict")) == [
        "config/dev.toml: workflows[0].trigger: got 'batch-predict', allowed a chain without "
        "cycles (cycle: ingest -> train -> batch-predict -> ingest)",
        "config/dev.toml: workflows[1].trigger: got 'ingest', allowed a chain without cycles "
        "(cycle: train -> batch-predict -> ingest -> train)",
        "config/dev.toml: workflows[2].trigger: got 'train', allowed a chain without cycles "
        "(cycle: batch-predict -> ingest -> train -> batch-predict)",
    ]


def test_a_chained_workflow_routes_every_type_its_trigger_publishes() -> None:
    data = copy.deepcopy(DEV)
    del data["workflows"][1]["routes"]["model.train"]
    assert problems(data) == [
        "config/dev.toml: workflows[1].routes: missing 'model.train', required because trigger "
        "'ingest' publishes it (routes: model.retrain)"
    ]
    # One line per missing type; an on_success left at its default counts too.
    data = copy.deepcopy(DEV)
    routes = data["workflows"][0]["routes"]
    routes["data.late"] = {**routes["data.ready"], "on_success": "model.backfill"}
    routes["data.other"] = {"template_uri": routes["data.ready"]["template_uri"]}
    assert problems(data) == [
        "config/dev.toml: workflows[1].routes: missing 'model.backfill', required because "
        "trigger 'ingest' publishes it (routes: model.train, model.retrain)",
        "config/dev.toml: workflows[1].routes: missing 'workflow.succeeded', required because "
        "trigger 'ingest' publishes it (routes: model.train, model.retrain)",
    ]
    # What it publishes when a job fails or starts needs no route: the handler acknowledges it.
    data = copy.deepcopy(DEV)
    routes = data["workflows"][0]["routes"]
    routes["data.ready"].update(on_failure="data.failed", on_start="data.started")
    env = parse_environment("dev", "config/dev.toml", data)
    assert env.ignored_event_types("train") == ("data.failed", "data.started")


def test_a_subscription_filter_does_not_excuse_an_unrouted_type() -> None:
    data = with_workflow(1, subscription_filter='attributes.event_type = "model.retrain"')
    del data["workflows"][1]["routes"]["model.train"]
    assert problems(data) == [
        "config/dev.toml: workflows[1].routes: missing 'model.train', required because trigger "
        "'ingest' publishes it (routes: model.retrain)"
    ]


def test_a_duplicate_name_is_reported_alone() -> None:
    data = copy.deepcopy(DEV)
    data["workflows"][2]["name"] = "train"
    assert problems(data) == [
        "config/dev.toml: workflows[2].name: got 'train', allowed a name not already used by "
        "workflows[1]"
    ]


def test_a_workflow_that_does_not_parse_keeps_the_others_indices_and_name() -> None:
    data = copy.deepcopy(DEV)
    del data["workflows"][0]["routes"]
    data["workflows"][2]["trigger"] = "trian"
    assert problems(data) == [
        "config/dev.toml: workflows[0].routes: missing, required",
        "config/dev.toml: workflows[2].trigger: got 'trian', allowed the name of another "
        "workflow in this file (batch-predict, ingest, train)",
    ]


@pytest.mark.parametrize(
    ("keys", "lines"),
    [
        (
            {"max_instances": "3"},
            ["workflows[1].max_instances: got '3', allowed an integer 1..1000"],
        ),
        ({"labels": 5}, ["workflows[1].labels: got 5, allowed a table of label key = value"]),
        ({"routes": 3}, ["workflows[1].routes: got 3, allowed a table of event types"]),
        (
            {"publishers": [1]},
            [
                "workflows[1].publishers[0]: got 1, allowed an IAM member such as "
                "serviceAccount:producer@proj.iam.gserviceaccount.com"
            ],
        ),
        (
            {"secret_env": 5},
            [
                "workflows[1].secret_env: got 5, allowed a table of VAR = <secret> or "
                "{ secret = <secret>, version = <version> }"
            ],
        ),
        (
            {"secret_env": {"API_KEY": 5}},
            [
                "workflows[1].secret_env.API_KEY: got 5, allowed a secret id, or a table "
                "{ secret = <secret>, version = <version> }"
            ],
        ),
        (
            {"secret_env": {"API_KEY": {"secret": "api-key", "version": 3}}},
            [
                "workflows[1].secret_env.API_KEY.version: got 3, allowed 'latest' or a version "
                "number as a string, such as '3'"
            ],
        ),
        (
            # Only the name: batch-predict's trigger = "train" is not blamed as well.
            {"name": 7},
            [
                "workflows[1].name: got 7, allowed 2..24 lowercase letters, digits and hyphens, "
                "starting with a letter (it prefixes topic, function and service account names)"
            ],
        ),
        (
            {"trigger": 5},
            [
                "workflows[1].trigger: got 5, allowed the name of another workflow in this file "
                "(batch-predict, ingest, train)"
            ],
        ),
        ({"description": 7}, ["workflows[1].description: got 7, allowed text"]),
        (
            # A key with a newline is quoted: still one line, and no extra "at least one route".
            {"routes": {"model.train\nx": 1}},
            [
                'workflows[1].routes."model.train\\nx": got 1, allowed a table',
                "workflows[1].routes: missing 'model.train', required because trigger 'ingest' "
                'publishes it (routes: "model.train\\nx")',
            ],
        ),
    ],
)
def test_a_value_of_the_wrong_type_is_one_line(keys: dict[str, Any], lines: list[str]) -> None:
    assert problems(with_workflow(1, **keys)) == [f"config/dev.toml: {line}" for line in lines]


def test_pipeline_parameters_must_be_json_values() -> None:
    data = copy.deepcopy(DEV)
    route = data["workflows"][0]["routes"]["data.ready"]
    route["parameters"] = {"since": datetime.date(2026, 1, 2), "weights": [1.0, math.inf]}
    assert problems(data) == [
        "config/dev.toml: workflows[0].routes.data.ready.parameters.since: got 2026-01-02, "
        "allowed a JSON value: a string, number, boolean, array or table (quote a date or time "
        "as a string)",
        "config/dev.toml: workflows[0].routes.data.ready.parameters.weights[1]: got inf, "
        "allowed a finite number",
    ]
    route["parameters"] = 1
    assert problems(data) == [
        "config/dev.toml: workflows[0].routes.data.ready.parameters: got 1, allowed a table"
    ]


def test_all_problems_are_reported_at_once() -> None:
    data = with_workflow(ack_deadline_seconds=1, max_instances=0)
    data["region"] = "x"
    assert len(problems(data)) == 3


def test_environment_name_comes_from_the_file_name() -> None:
    found = problems(copy.deepcopy(DEV), name="Dev")
    assert any(
        p.startswith("config/dev.toml: environment name (file name): got 'Dev'") for p in found
    )


def test_unreadable_and_invalid_toml(tmp_path: Path) -> None:
    bad = tmp_path / "qa.toml"
    bad.write_text("project_id = \n")
    with pytest.raises(ConfigError) as caught:
        load_environment(bad)
    (line,) = caught.value.problems
    assert line.startswith(f"{bad.as_posix()}: not valid TOML: ")
    with pytest.raises(ConfigError) as caught:
        load_environment(tmp_path / "missing.toml")
    assert caught.value.problems == [f"{(tmp_path / 'missing.toml').as_posix()}: file not found"]


def test_problems_of_several_files_are_collected(tmp_path: Path) -> None:
    for name in ("a", "b"):
        (tmp_path / f"{name}.toml").write_text('region = "x"\n')
    with pytest.raises(ConfigError) as caught:
        load_environments(sorted(tmp_path.glob("*.toml")))
    files = {p.split(":")[0] for p in caught.value.problems}
    assert files == {(tmp_path / "a.toml").as_posix(), (tmp_path / "b.toml").as_posix()}


def test_two_environments_may_not_share_a_project(tmp_path: Path) -> None:
    dev = (FIXTURE_CONFIG_DIR / "dev.toml").read_text()
    for name in ("dev", "qa", "staging"):
        (tmp_path / f"{name}.toml").write_text(dev)
    (tmp_path / "prod.toml").write_text((FIXTURE_CONFIG_DIR / "prod.toml").read_text())
    paths = [tmp_path / f"{n}.toml" for n in ("dev", "prod", "qa", "staging")]
    with pytest.raises(ConfigError) as caught:
        load_environments(paths)
    shown = {n: (tmp_path / f"{n}.toml").as_posix() for n in ("dev", "qa", "staging")}
    assert caught.value.problems == [
        f"{shown[n]}: project_id: got 'acme-ai-dev', allowed a project not used by another "
        f"environment ({shown['dev']} uses it; resource names would collide)"
        for n in ("qa", "staging")
    ]


def test_a_shared_project_is_found_even_when_a_file_has_other_problems(tmp_path: Path) -> None:
    dev = (FIXTURE_CONFIG_DIR / "dev.toml").read_text()
    (tmp_path / "dev.toml").write_text(dev.replace('"europe-west4"', '"europe-wset4"', 1))
    (tmp_path / "qa.toml").write_text(dev)
    with pytest.raises(ConfigError) as caught:
        load_environments([tmp_path / "dev.toml", tmp_path / "qa.toml"])
    dev_shown, qa_shown = (tmp_path / "dev.toml").as_posix(), (tmp_path / "qa.toml").as_posix()
    assert caught.value.problems == [
        f"{dev_shown}: region: got 'europe-wset4', allowed a Cloud Run functions + Vertex AI "
        "region (did you mean 'europe-west4'?)",
        f"{qa_shown}: project_id: got 'acme-ai-dev', allowed a project not used by another "
        f"environment ({dev_shown} uses it; resource names would collide)",
    ]


def test_a_byte_order_mark_is_named(tmp_path: Path) -> None:
    bom = tmp_path / "x.toml"
    bom.write_bytes(b"\xef\xbb\xbf" + (FIXTURE_CONFIG_DIR / "dev.toml").read_bytes())
    with pytest.raises(ConfigError) as caught:
        load_environment(bom)
    assert caught.value.problems == [
        f"{bom.as_posix()}: starts with a UTF-8 byte order mark, allowed plain UTF-8 "
        "(save without BOM)"
    ]


def test_a_publisher_listed_twice_is_one_line() -> None:
    data = copy.deepcopy(DEV)
    member = "serviceAccount:etl@acme-ai-dev.iam.gserviceaccount.com"
    data["workflows"][0]["publishers"] = [member, "group:ml@example.com", member]
    with pytest.raises(ConfigError) as caught:
        parse_environment("dev", "config/dev.toml", data)
    assert caught.value.problems == [
        f"config/dev.toml: workflows[0].publishers[2]: got '{member}', allowed each member "
        "once (publishers[0] already grants it)"
    ]


# --- what a route publishes: on_success, on_failure, on_start -----------------------------------


def test_route_events_default_to_workflow_succeeded_and_failed_and_no_start() -> None:
    env = parse_environment("dev", "config/dev.toml", copy.deepcopy(DEV))
    route = env.workflow("batch-predict").routes["predict.batch"]
    assert (route.on_success, route.on_failure, route.on_start) == (
        "workflow.succeeded",
        "workflow.failed",
        None,
    )
    # Each chained workflow acknowledges its upstream's failure events without a job.
    assert env.ignored_event_types("ingest") == ()
    assert env.ignored_event_types("train") == ("workflow.failed",)
    assert env.ignored_event_types("batch-predict") == ("workflow.failed",)


@pytest.mark.parametrize("key", ["on_success", "on_failure", "on_start"])
def test_route_events_must_be_event_types(key: str) -> None:
    data = copy.deepcopy(DEV)
    data["workflows"][2]["routes"]["predict.batch"][key] = "Predict Done"
    assert problems(data) == [
        f"config/dev.toml: workflows[2].routes.predict.batch.{key}: got 'Predict Done', allowed "
        "a dotted lowercase event type such as "
        + {
            "on_success": "workflow.succeeded",
            "on_failure": "workflow.failed",
            "on_start": "model.training_started",
        }[key]
    ]


def test_the_renamed_result_event_type_still_works_with_a_notice() -> None:
    data = copy.deepcopy(DEV)
    route = data["workflows"][0]["routes"]["data.ready"]
    route["result_event_type"] = route.pop("on_success")
    env = parse_environment("dev", "config/dev.toml", data)
    assert env.workflow("ingest").routes["data.ready"].on_success == "model.train"
    assert env.notices == (
        "config/dev.toml: workflows[0].routes.data.ready.result_event_type: renamed on_success; "
        "its event is now published when the job succeeds, not when it starts (rename the key "
        "to on_success)",
    )
    assert parse_environment("dev", "config/dev.toml", copy.deepcopy(DEV)).notices == ()


def test_the_renamed_key_beside_the_new_one_is_an_error() -> None:
    data = copy.deepcopy(DEV)
    data["workflows"][0]["routes"]["data.ready"]["result_event_type"] = "model.train"
    assert problems(data) == [
        "config/dev.toml: workflows[0].routes.data.ready.result_event_type: got 'model.train' "
        "beside on_success, allowed only on_success (result_event_type was renamed on_success)"
    ]


RESERVED = (
    "allowed an event type other than workflow.probe and workflow.probe.ok (reserved for the "
    "smoke probe, which every handler answers without a job)"
)


def test_the_smoke_probe_types_are_reserved() -> None:
    last = DEV["workflows"][2]  # batch-predict: nothing chains onto it
    probe = {**last["routes"], "workflow.probe": dict(ROUTE)}
    assert problems(with_workflow(2, routes=probe)) == [
        f"config/dev.toml: workflows[2].routes.workflow.probe: got 'workflow.probe', {RESERVED}"
    ]
    for key in ("on_success", "on_failure", "on_start"):
        route = {"predict.batch": {**last["routes"]["predict.batch"], key: "workflow.probe.ok"}}
        assert problems(with_workflow(2, routes=route)) == [
            f"config/dev.toml: workflows[2].routes.predict.batch.{key}: got "
            f"'workflow.probe.ok', {RESERVED}"
        ], key
