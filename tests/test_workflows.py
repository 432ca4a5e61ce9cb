"""The CI workflows (.github/workflows): actionlint passes them inside `make test`, and really
fails a broken one; every action is pinned by commit, every job is bounded and least-privileged;
deploys are ordered, approved and never overlap."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
from environments import ROOT

WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted(WORKFLOW_DIR.glob("*.yml"))
TEXT = {path.name: path.read_text() for path in WORKFLOWS}


def lint_workflows(*files: Path) -> subprocess.CompletedProcess[str]:
    """`make lint-workflows`, the target `make test` runs (on `files` when given)."""
    args = [f"WORKFLOWS={' '.join(str(f) for f in files)}"] if files else []
    return subprocess.run(
        ["make", "--no-print-directory", "lint-workflows", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_make_test_runs_actionlint_with_shellcheck_on_every_workflow() -> None:
    dry_run = subprocess.run(
        ["make", "--no-print-directory", "-n", "test"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    names = " ".join(f".github/workflows/{path.name}" for path in WORKFLOWS)
    assert (
        f".venv/bin/actionlint -no-color -shellcheck=.venv/bin/shellcheck -pyflakes= {names}\n"
    ) in dry_run
    assert {path.name for path in WORKFLOWS} == {
        "deploy.yml",
        "main.yml",
        "pull-request.yml",
        "test.yml",
    }


def test_the_pinned_linters_are_the_real_binaries() -> None:
    version = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "actionlint"), "-version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert version.startswith("actionlint.kjanat.dev 1.17.0\n"), version
    shellcheck = subprocess.run(
        [str(ROOT / ".venv" / "bin" / "shellcheck"), "--version"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "version: 0.11.0\n" in shellcheck


def test_the_workflows_pass_actionlint() -> None:
    result = lint_workflows()
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.fixture
def workflow_copy(tmp_path: Path) -> Path:
    """The workflows in a repository of their own (actionlint finds local reusable workflows
    from the repository root, the folder holding .git)."""
    (tmp_path / ".git").mkdir()
    shutil.copytree(WORKFLOW_DIR, tmp_path / ".github" / "workflows")
    return tmp_path / ".github" / "workflows"


def test_an_unchanged_copy_passes(workflow_copy: Path) -> None:
    result = lint_workflows(*sorted(workflow_copy.glob("*.yml")))
    assert result.returncode == 0, result.stdout + result.stderr


PLANTED = {
    "a misspelt job key": (
        "test.yml",
        "timeout-minutes: 45",
        "timeout_minutes: 45",
        'unexpected key "timeout_minutes" for "job" section',
    ),
    "an input the expression does not have": (
        "test.yml",
        "if: ${{ inputs.speculative-plan }}",
        "if: ${{ inputs.speculative_plan }}",
        'property "speculative_plan" is not defined in object type {speculative-plan: bool}',
    ),
    "a secret in a step condition": (
        "test.yml",
        "if: ${{ inputs.speculative-plan && steps.tfc.outputs.configured == 'true' }}",
        "if: ${{ inputs.speculative-plan && secrets.TF_API_TOKEN != '' }}",
        'context "secrets" is not allowed here',
    ),
    "an unquoted shell variable (shellcheck)": (
        "deploy.yml",
        'make deploy ENV="$DEPLOY_ENV"',
        "make deploy ENV=$DEPLOY_ENV",
        "SC2086:info:1:17: Double quote to prevent globbing and word splitting [shellcheck]",
    ),
    "an input the reusable workflow does not declare": (
        "pull-request.yml",
        "speculative-plan: true",
        "speculative_plan: true",
        'input "speculative_plan" is not defined in "./.github/workflows/test.yml" reusable '
        "workflow",
    ),
    "a job that needs a job that does not exist": (
        "main.yml",
        "needs: deploy-dev",
        "needs: deploy-staging",
        'job "deploy-prod" needs job "deploy-staging" which does not exist in this workflow',
    ),
}


@pytest.mark.parametrize("case", sorted(PLANTED))
def test_actionlint_fails_a_broken_workflow(workflow_copy: Path, case: str) -> None:
    name, good, bad, message = PLANTED[case]
    path = workflow_copy / name
    text = path.read_text()
    assert text.count(good) == 1, f"{name} no longer holds {good!r}: update the planted error"
    path.write_text(text.replace(good, bad))
    result = lint_workflows(path)
    assert result.returncode != 0
    assert message in result.stdout, result.stdout + result.stderr


# --- policy: pinned, bounded, least privilege -------------------------------------------------

USES = re.compile(r"^\s*(?:-\s+)?uses:\s*(\S+)(.*)$", re.M)


def test_every_action_is_pinned_by_commit_with_its_version() -> None:
    seen = set()
    for name, text in TEXT.items():
        for ref, rest in USES.findall(text):
            if ref.startswith("./.github/workflows/"):
                assert (WORKFLOW_DIR / ref.rsplit("/", 1)[1]).exists(), (name, ref)
                continue
            assert re.fullmatch(r"[\w.-]+/[\w.-]+@[0-9a-f]{40}", ref), (name, ref)
            assert re.fullmatch(r" # v\d+\.\d+\.\d+", rest), (name, ref, rest)
            seen.add(ref.split("@")[0])
    assert seen == {
        "actions/checkout",
        "actions/setup-python",
        "actions/upload-artifact",
        "google-github-actions/auth",
        "google-github-actions/setup-gcloud",
        "hashicorp/setup-terraform",
    }


def test_one_version_per_action() -> None:
    pins: dict[str, set[str]] = {}
    for text in TEXT.values():
        for ref, rest in USES.findall(text):
            action, _, sha = ref.partition("@")
            pins.setdefault(action, set()).add(sha + rest)
    assert {action: len(shas) for action, shas in pins.items() if len(shas) > 1} == {}


@pytest.mark.parametrize("name", sorted(TEXT))
def test_every_workflow_reads_only_by_default(name: str) -> None:
    assert re.search(r"^permissions:\n  contents: read\n\n", TEXT[name], re.M), name
    # Write scopes only where a job needs them: the OIDC token for the deploy.
    writes = re.findall(r"^\s+([\w-]+): write$", TEXT[name], re.M)
    assert set(writes) <= {"id-token"}, name
    if writes:
        assert name in {"main.yml", "deploy.yml"}


@pytest.mark.parametrize("name", sorted(TEXT))
def test_every_job_on_a_runner_has_a_timeout(name: str) -> None:
    text = TEXT[name]
    assert text.count("runs-on:") == len(re.findall(r"^    timeout-minutes: \d+$", text, re.M))


def test_pull_requests_test_like_ci_and_plan_only_with_a_token() -> None:
    test = TEXT["test.yml"]
    assert 'AI_WORKFLOW_REQUIRE_TERRAFORM: "1"' in test
    assert re.search(r"terraform_version: 1\.11\.\d+\n", test)
    assert (
        test.index("run: make synth")
        < test.index("run: make test")
        < test.index("uses: actions/upload-artifact@")
    )
    assert "path: cdktf.out/stacks/\n" in test
    # Secrets cannot appear in `if:`: a step maps the token to an env var and says whether it
    # is set; the plan is gated on that (forks' pull requests get no secrets, so no plan), and
    # only the plan step sees the token, never `make test`.
    gate = test[test.index("- name: Is a Terraform Cloud token configured?") :]
    assert gate.startswith(
        "- name: Is a Terraform Cloud token configured?\n"
        "        id: tfc\n"
        "        if: ${{ inputs.speculative-plan }}\n"
        "        env:\n"
        "          TF_API_TOKEN: ${{ secrets.TF_API_TOKEN }}\n"
        '        run: echo "configured=${TF_API_TOKEN:+true}" >> "$GITHUB_OUTPUT"\n'
    )
    plan = test[test.index("- name: Speculative plan in Terraform Cloud") :]
    assert "if: ${{ inputs.speculative-plan && steps.tfc.outputs.configured == 'true' }}" in plan
    assert 'make tfc-run ENV="$env_name" WORKSPACE="${TF_WORKSPACE_PREFIX}${env_name}"' in plan
    assert "APPLY=1" not in plan  # tfc-run's default: a speculative plan
    assert "TERRAFORM_CLOUD_TOKEN: ${{ secrets.TF_API_TOKEN }}" in plan
    assert test.count("TF_API_TOKEN: ${{ secrets.TF_API_TOKEN }}") == 1
    assert "secrets.TF_API_TOKEN" not in test[: test.index("- name: Upload the synthesized")]
    assert "on:\n  pull_request:\n" in TEXT["pull-request.yml"]
    assert "speculative-plan: true" in TEXT["pull-request.yml"]
    assert "speculative-plan" not in TEXT["main.yml"]


def test_main_deploys_dev_then_prod_one_at_a_time() -> None:
    main = TEXT["main.yml"]
    assert "on:\n  push:\n    branches: [main]\n" in main
    assert "concurrency:\n  group: deploy-main\n  cancel-in-progress: false\n" in main
    jobs = re.findall(r"^  ([\w-]+):\n((?:    .*\n|\n)*)", main[main.index("jobs:") :], re.M)
    needs = {job: re.findall(r"^    needs: (\S+)$", body, re.M) for job, body in jobs}
    assert needs == {"test": [], "deploy-dev": ["test"], "deploy-prod": ["deploy-dev"]}
    assert main.count("uses: ./.github/workflows/deploy.yml") == 2
    assert "environment: prod\n" in main and "environment: dev\n" in main
    deploy = TEXT["deploy.yml"]
    # The GitHub environment holds prod for its reviewers; one deploy per environment at once.
    assert "    environment: ${{ inputs.environment }}\n" in deploy
    assert "group: deploy-${{ inputs.environment }}\n      cancel-in-progress: false" in deploy
    assert (
        "if: ${{ steps.tfc.outputs.configured != 'true' }}\n"
        "        uses: google-github-actions/auth@"
    ) in deploy
    assert "workload_identity_provider: ${{ vars.GCP_WORKLOAD_IDENTITY_PROVIDER }}" in deploy
    assert 'run: make deploy ENV="$DEPLOY_ENV"' in deploy
    tfc_run = deploy[deploy.index("- name: make tfc-run (Terraform Cloud)") :]
    assert "if: ${{ steps.tfc.outputs.configured == 'true' }}" in tfc_run
    assert (
        'run: make tfc-run ENV="$DEPLOY_ENV" WORKSPACE="${TF_WORKSPACE_PREFIX}${DEPLOY_ENV}" '
        "APPLY=1 WAIT=1\n"
    ) in tfc_run
    assert "TERRAFORM_CLOUD_TOKEN: ${{ secrets.TF_API_TOKEN }}" in tfc_run
    assert "credentials_json" not in deploy


def test_the_readme_names_every_secret_and_variable_the_workflows_read() -> None:
    readme = (ROOT / "README.md").read_text()
    ci = readme[readme.index("## CI (GitHub Actions)") : readme.index("## How the code")]
    used = set()
    for text in TEXT.values():
        used |= set(re.findall(r"\$\{\{ (?:secrets|vars)\.(\w+) \}\}", text))
    assert used == {
        "GCP_DEPLOY_SERVICE_ACCOUNT",
        "GCP_WORKLOAD_IDENTITY_PROVIDER",
        "TF_API_TOKEN",
        "TF_CLOUD_ORGANIZATION",
        "TF_WORKSPACE_PREFIX",
    }
    for name in used:
        assert f"| `{name}` |" in ci, name
    for name in TEXT:
        assert f"`{name}`" in ci, name
