"""tools/preflight.py, offline: every failure line exactly. A fake `terraform` on PATH for the
version checks, a temp HOME for the credential files, hand-made stack JSON for the gcs and
cloud backends (today's stacks are all local), and the stack-is-current check against a
real synth."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from environments import FIXTURE_CONFIG_DIR, ROOT, jsii_cache_environ
from terraform_check import REQUIRE_SWITCH

sys.path.insert(0, str(ROOT / "tools"))

import preflight
from stack_backend import Backend, CloudSettings, read_backend

from ai_workflow import ConfigError
from ai_workflow_app import load_environments

CONFIG = FIXTURE_CONFIG_DIR.relative_to(ROOT).as_posix()
SUPPORTED = "install Terraform >= 1.5 and < 2"
NO_GOOGLE = (
    "no Google credentials: run gcloud auth application-default login, "
    "or set GOOGLE_APPLICATION_CREDENTIALS"
)
LOCAL = {"terraform": {"backend": {"local": {"path": "../../../terraform.dev.tfstate"}}}}
GCS = {"terraform": {"backend": {"gcs": {"bucket": "acme-tfstate", "prefix": "ai/dev"}}}}
CLOUD = {"terraform": {"cloud": {"organization": "acme", "workspaces": {"name": "ai-dev"}}}}


def fake_terraform(bin_dir: Path, stdout: str, exit_code: int = 0) -> Path:
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "terraform"
    script.write_text(f"#!/bin/sh\nprintf '%s\\n' '{stdout}'\nexit {exit_code}\n")
    script.chmod(0o755)
    return script


def version_json(version: str) -> str:
    return json.dumps({"terraform_version": version, "platform": "linux_amd64"})


# --- terraform ------------------------------------------------------------------------------


def test_no_terraform_on_path(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    assert preflight.terraform_problems({"PATH": str(tmp_path / "empty")}) == (
        "",
        [f"terraform is not on PATH: {SUPPORTED}"],
    )


@pytest.mark.parametrize("version", ["1.4.7", "0.15.5", "2.0.0"])
def test_unsupported_terraform_versions(tmp_path: Path, version: str) -> None:
    fake_terraform(tmp_path, version_json(version))
    assert preflight.terraform_problems({"PATH": str(tmp_path)}) == (
        version,
        [f"terraform {version} is not supported: {SUPPORTED}"],
    )


@pytest.mark.parametrize("version", ["1.5.0", "1.6.0-beta1", "1.11.4", "1.99.0"])
def test_supported_terraform_versions(tmp_path: Path, version: str) -> None:
    fake_terraform(tmp_path, version_json(version))
    assert preflight.terraform_problems({"PATH": str(tmp_path)}) == (version, [])


def test_terraform_without_json_version(tmp_path: Path) -> None:
    """Terraform 0.12 prints text for `version -json`."""
    binary = fake_terraform(tmp_path, "Terraform v0.12.31")
    assert preflight.terraform_problems({"PATH": str(tmp_path)}) == (
        "",
        [f"{binary} version -json printed no version: 'Terraform v0.12.31': {SUPPORTED}"],
    )


def test_the_real_terraform_is_supported() -> None:
    if shutil.which("terraform") is None:
        if os.environ.get(REQUIRE_SWITCH) == "1":
            pytest.fail(f"terraform is not on PATH, and {REQUIRE_SWITCH}=1 requires it")
        pytest.skip("terraform is not on PATH")
    version, problems = preflight.terraform_problems(os.environ)
    assert problems == [] and version


# --- credentials ----------------------------------------------------------------------------


def adc_file(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "application_default_credentials.json"
    path.write_text('{"type": "authorized_user"}')
    return path


def test_no_google_credentials(tmp_path: Path) -> None:
    assert preflight.google_credentials({}, tmp_path) == ("", [NO_GOOGLE])


def test_gcloud_application_default_credentials_in_home(tmp_path: Path) -> None:
    adc = adc_file(tmp_path / ".config" / "gcloud")
    assert preflight.google_credentials({}, tmp_path) == (str(adc), [])


def test_cloudsdk_config_moves_the_gcloud_directory(tmp_path: Path) -> None:
    adc_file(tmp_path / ".config" / "gcloud")
    elsewhere = tmp_path / "gcloud-config"
    assert preflight.google_credentials({"CLOUDSDK_CONFIG": str(elsewhere)}, tmp_path) == (
        "",
        [NO_GOOGLE],
    )
    adc = adc_file(elsewhere)
    assert preflight.google_credentials({"CLOUDSDK_CONFIG": str(elsewhere)}, tmp_path) == (
        str(adc),
        [],
    )


def test_google_application_credentials_must_be_readable(tmp_path: Path) -> None:
    adc_file(tmp_path / ".config" / "gcloud")  # not used: the variable wins, as in Google's auth
    missing = str(tmp_path / "key.json")
    assert preflight.google_credentials({"GOOGLE_APPLICATION_CREDENTIALS": missing}, tmp_path) == (
        "",
        [
            f"GOOGLE_APPLICATION_CREDENTIALS: got {missing!r}, allowed a readable credentials "
            "file (or unset it to use gcloud's application default credentials)"
        ],
    )
    Path(missing).write_text("{}")
    assert preflight.google_credentials({"GOOGLE_APPLICATION_CREDENTIALS": missing}, tmp_path) == (
        "GOOGLE_APPLICATION_CREDENTIALS",
        [],
    )


@pytest.mark.parametrize(
    "variable", ["GOOGLE_CREDENTIALS", "GOOGLE_OAUTH_ACCESS_TOKEN", "GCE_METADATA_HOST"]
)
def test_other_google_credential_sources(tmp_path: Path, variable: str) -> None:
    source, problems = preflight.google_credentials({variable: "x"}, tmp_path)
    assert problems == [] and variable in source


@pytest.mark.parametrize(("stack", "kind"), [(LOCAL, "local"), (GCS, "gcs"), ({}, "local")])
def test_local_and_gcs_backends_need_google_credentials(
    tmp_path: Path, stack: dict[str, Any], kind: str
) -> None:
    assert preflight.credential_problems(stack, {}, tmp_path) == ("", [NO_GOOGLE])
    adc = adc_file(tmp_path / ".config" / "gcloud")
    assert preflight.credential_problems(stack, {}, tmp_path) == (
        f"{kind} backend, Google credentials from {adc}",
        [],
    )


def test_cloud_backend_needs_a_token_not_google_credentials(tmp_path: Path) -> None:
    assert preflight.credential_problems(CLOUD, {}, tmp_path) == (
        "",
        [
            "no Terraform Cloud token for app.terraform.io: run terraform login "
            "app.terraform.io, or set TF_TOKEN_app_terraform_io"
        ],
    )
    assert preflight.credential_problems(CLOUD, {"TF_TOKEN_app_terraform_io": "t"}, tmp_path) == (
        "cloud backend on app.terraform.io, token from TF_TOKEN_app_terraform_io",
        [],
    )


def test_terraform_does_not_read_terraform_cloud_token(tmp_path: Path) -> None:
    assert preflight.credential_problems(CLOUD, {"TERRAFORM_CLOUD_TOKEN": "t"}, tmp_path) == (
        "",
        [
            "no Terraform Cloud token for app.terraform.io: run terraform login "
            "app.terraform.io, or set TF_TOKEN_app_terraform_io (TERRAFORM_CLOUD_TOKEN is set, "
            "but terraform does not read it: "
            'export TF_TOKEN_app_terraform_io="$TERRAFORM_CLOUD_TOKEN")'
        ],
    )


def test_cloud_hostname_from_the_block_or_tf_cloud_hostname(tmp_path: Path) -> None:
    on_tfe = {
        "terraform": {"cloud": {**CLOUD["terraform"]["cloud"], "hostname": "tfe.acme-corp.io"}}
    }
    environ = {"TF_TOKEN_tfe_acme__corp_io": "t", "TF_TOKEN_app_terraform_io": "other"}
    assert preflight.credential_problems(on_tfe, environ, tmp_path) == (
        "cloud backend on tfe.acme-corp.io, token from TF_TOKEN_tfe_acme__corp_io",
        [],
    )
    _, problems = preflight.credential_problems(
        CLOUD, {"TF_CLOUD_HOSTNAME": "tfe.acme-corp.io"}, tmp_path
    )
    assert problems == [
        "no Terraform Cloud token for tfe.acme-corp.io: run terraform login tfe.acme-corp.io, "
        "or set TF_TOKEN_tfe_acme__corp_io"
    ]


def test_tokens_from_terraform_login_and_the_cli_config(tmp_path: Path) -> None:
    credentials = tmp_path / ".terraform.d" / "credentials.tfrc.json"
    credentials.parent.mkdir()
    credentials.write_text(json.dumps({"credentials": {"app.terraform.io": {"token": "t"}}}))
    assert preflight.credential_problems(CLOUD, {}, tmp_path) == (
        f"cloud backend on app.terraform.io, token from {credentials}",
        [],
    )
    credentials.unlink()
    rc = tmp_path / "custom.tfrc"
    rc.write_text('plugin_cache_dir = "/x"\ncredentials "app.terraform.io" {\n  token = "t"\n}\n')
    assert preflight.credential_problems(CLOUD, {"TF_CLI_CONFIG_FILE": str(rc)}, tmp_path) == (
        f"cloud backend on app.terraform.io, token from {rc}",
        [],
    )
    shutil.move(rc, tmp_path / ".terraformrc")
    assert preflight.credential_problems(CLOUD, {}, tmp_path)[1] == []


def test_a_cloud_block_needs_an_organization_and_a_workspace(tmp_path: Path) -> None:
    bare = {"terraform": {"cloud": {}}}
    token = {"TF_TOKEN_app_terraform_io": "t"}
    assert preflight.credential_problems(bare, token, tmp_path) == (
        "",
        [
            "the stack's cloud block names no organization: set one in its backend settings, "
            "or export TF_CLOUD_ORGANIZATION",
            "the stack's cloud block names no workspace (name or tags): set one in its "
            "backend settings, or export TF_WORKSPACE",
        ],
    )
    environ = {**token, "TF_CLOUD_ORGANIZATION": "acme", "TF_WORKSPACE": "ai-dev"}
    assert preflight.credential_problems(bare, environ, tmp_path)[1] == []
    tagged = {"terraform": {"cloud": {"organization": "acme", "workspaces": {"tags": ["ai"]}}}}
    assert preflight.credential_problems(tagged, token, tmp_path)[1] == []


def test_a_bad_argument_is_one_line() -> None:
    result = subprocess.run(
        [sys.executable, "tools/preflight.py"], cwd=ROOT, capture_output=True, text=True
    )
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (
        "preflight: the following arguments are required: --env (see --help)\n"
    )


def test_read_backend_shapes() -> None:
    assert read_backend(LOCAL) == Backend("local", {"path": "../../../terraform.dev.tfstate"})
    assert read_backend(GCS).kind == "gcs"
    tagged = {"terraform": {"cloud": {"organization": "acme", "workspaces": {"tags": ["ai"]}}}}
    assert read_backend(tagged).cloud == CloudSettings(organization="acme", tags=("ai",))
    assert read_backend(CLOUD).cloud == CloudSettings(organization="acme", workspace="ai-dev")


# --- the stack is current -------------------------------------------------------------------


@pytest.fixture
def outdir(tmp_path: Path, synth_outdir: Path) -> Path:
    out = tmp_path / "cdktf.out"
    shutil.copytree(synth_outdir / "stacks" / "dev", out / "stacks" / "dev")
    return out


def stack_problems(outdir: Path, env: str = "dev", config: str = CONFIG) -> list[str]:
    return preflight.stack_problems(env, Path(config), outdir, ROOT / "function_src")


def test_a_current_stack_passes_whatever_terraform_left_there(
    outdir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    stack = outdir / "stacks" / "dev"
    (stack / ".terraform").mkdir()
    (stack / ".terraform.lock.hcl").write_text("# lock\n")
    (stack / "plan.tfplan").write_bytes(b"plan")
    assert stack_problems(outdir) == []


def test_a_changed_stack_is_stale(outdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    stack = outdir / "stacks" / "dev"
    (stack / "cdk.tf.json").write_text((stack / "cdk.tf.json").read_text().replace("20", "21"))
    (stack / "assets" / "function-source-old.zip").write_bytes(b"old")
    assert stack_problems(outdir) == [
        f"{outdir.as_posix()}/stacks/dev is not what {CONFIG}/dev.toml and the code synthesize "
        "now (differs: assets/function-source-old.zip, cdk.tf.json): run make synth ENV=dev"
    ]


def test_a_missing_stack_or_environment(outdir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    assert stack_problems(outdir, "prod") == [
        f"{outdir.as_posix()}/stacks/prod/cdk.tf.json does not exist: run make synth ENV=prod"
    ]
    assert stack_problems(outdir, "qa") == [
        f"ENV: got 'qa', allowed one of dev, prod ({CONFIG}/<env>.toml)"
    ]


def test_bad_settings_are_the_config_lines(tmp_path: Path, outdir: Path) -> None:
    config = tmp_path / "config"
    config.mkdir()
    dev = (FIXTURE_CONFIG_DIR / "dev.toml").read_text()
    (config / "dev.toml").write_text(dev.replace('region = "europe-west4"', 'region = "mars"', 1))
    with pytest.raises(ConfigError) as caught:
        load_environments([config / "dev.toml"])
    assert stack_problems(outdir, config=str(config)) == caught.value.problems != []


# --- the command: every failure listed, exit 2; or one line, exit 0 --------------------------


def on_path(bin_dir: Path) -> str:
    """The fake terraform first, the machine's tools after it."""
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def run_preflight(outdir: Path, environ: dict[str, str]) -> subprocess.CompletedProcess[str]:
    keep = {k: v for k, v in os.environ.items() if k in ("JSII_NODE", "LANG", "SYSTEMROOT")}
    return subprocess.run(
        [
            sys.executable,
            "tools/preflight.py",
            "--env",
            "dev",
            "--config-dir",
            CONFIG,
            "--outdir",
            str(outdir),
        ],
        cwd=ROOT,
        env={**keep, **jsii_cache_environ(), **environ},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_every_failure_is_listed(tmp_path: Path, outdir: Path) -> None:
    fake_terraform(tmp_path / "bin", version_json("1.4.7"))
    home = tmp_path / "home"
    home.mkdir()
    stack = outdir / "stacks" / "dev" / "cdk.tf.json"
    stack.write_text(stack.read_text().replace('"europe-west4"', '"europe-west1"'))
    result = run_preflight(outdir, {"PATH": on_path(tmp_path / "bin"), "HOME": str(home)})
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.splitlines() == [
        f"preflight: terraform 1.4.7 is not supported: {SUPPORTED}",
        f"preflight: {outdir.as_posix()}/stacks/dev is not what {CONFIG}/dev.toml and the code "
        "synthesize now (differs: cdk.tf.json): run make synth ENV=dev",
        f"preflight: {NO_GOOGLE}",
    ]


def test_all_present_is_one_line(tmp_path: Path, outdir: Path) -> None:
    fake_terraform(tmp_path / "bin", version_json("1.11.4"))
    adc = adc_file(tmp_path / "home" / ".config" / "gcloud")
    result = run_preflight(
        outdir, {"PATH": on_path(tmp_path / "bin"), "HOME": str(tmp_path / "home")}
    )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == (
        f"preflight: dev ready: terraform 1.11.4, {outdir.as_posix()}/stacks/dev current, "
        f"local backend, Google credentials from {adc}\n"
    )


def test_the_readme_shows_what_the_preflight_prints(tmp_path: Path, synth_outdir: Path) -> None:
    """In a project laid out as the README's: config/ edited after the synth, Terraform 1.4,
    no credentials."""
    readme = (ROOT / "README.md").read_text()
    block = readme.split("credentials prints these lines and stops (exit 2):\n\n```\n")[1]
    shown = block.split("```")[0].splitlines()
    project = tmp_path / "project"
    shutil.copytree(FIXTURE_CONFIG_DIR, project / "config")
    shutil.copytree(synth_outdir / "stacks" / "dev", project / "cdktf.out" / "stacks" / "dev")
    (project / "function_src").symlink_to(ROOT / "function_src")
    dev = project / "config" / "dev.toml"
    dev.write_text(dev.read_text().replace('project_id = "', 'project_id = "x', 1))
    fake_terraform(tmp_path / "bin", version_json("1.4.7"))
    (tmp_path / "home").mkdir()
    keep = {k: v for k, v in os.environ.items() if k in ("JSII_NODE", "LANG")}
    result = subprocess.run(
        [sys.executable, str(ROOT / "tools" / "preflight.py"), "--env", "dev"],
        cwd=project,
        env={
            **keep,
            **jsii_cache_environ(),
            "PATH": on_path(tmp_path / "bin"),
            "HOME": str(tmp_path / "home"),
        },
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 2
    assert result.stderr.splitlines() == shown
