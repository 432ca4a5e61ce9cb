"""tools/tfc_run.py (`make tfc-run`) end to end against a local Terraform Cloud API server
(tests/tfc_api_server.py): the calls, their bodies and headers, the uploaded archive's exact
files, the run URL, waiting, and the one-line errors (404 workspace, 401 token, no token,
unreachable, tags without a workspace)."""

from __future__ import annotations

import gzip
import io
import json
import os
import shutil
import socket
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from environments import FIXTURE_CONFIG_DIR, ROOT, jsii_cache_environ
from tfc_api_server import MEDIA_TYPE, TfcApiServer, TfcState

sys.path.insert(0, str(ROOT / "tools"))

import stack_files
import tfc_run
from stack_backend import CloudSettings

TOKEN = "test-token-1"
CONFIG = FIXTURE_CONFIG_DIR.relative_to(ROOT).as_posix()
# Variables from the machine that would change where the tool looks or connects.
_AMBIENT = ("TF_", "TFC_", "TERRAFORM_CLOUD_TOKEN", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy")


@pytest.fixture
def outdir(tmp_path: Path, synth_outdir: Path) -> Path:
    """A current dev stack, plus what Terraform leaves in a stack directory after a run."""
    out = tmp_path / "cdktf.out"
    shutil.copytree(synth_outdir / "stacks" / "dev", out / "stacks" / "dev")
    stack = out / "stacks" / "dev"
    (stack / ".terraform" / "providers").mkdir(parents=True)
    (stack / ".terraform" / "providers" / "google").symlink_to("/nonexistent/plugin")
    (stack / ".terraform.lock.hcl").write_text("# lock\n")
    (stack / "terraform.tfstate").write_text("{}\n")
    (stack / "plan.tfplan").write_bytes(b"plan")
    return out


@pytest.fixture
def environ(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    home = tmp_path / "home"
    home.mkdir()
    for name in list(os.environ):
        if name.startswith(_AMBIENT):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(ROOT)
    return {"HOME": str(home)}


def state(**overrides: Any) -> TfcState:
    return TfcState(token=TOKEN, organization="acme", workspaces={"dev": "ws-dev1"}, **overrides)


def run_main(outdir: Path, *args: str) -> int:
    common = ("--env", "dev", "--config-dir", CONFIG, "--outdir", str(outdir))
    return tfc_run.main([*common, "--poll-seconds", "0.01", *args])


def archive_members(archive: bytes) -> list[tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return tar.getmembers()


def archive_files(archive: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(archive), mode="r:gz") as tar:
        return {
            m.name: tar.extractfile(m).read()  # type: ignore[union-attr]
            for m in tar.getmembers()
            if m.isfile()
        }


def test_speculative_plan_end_to_end(
    outdir: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("TERRAFORM_CLOUD_TOKEN", TOKEN)
    with TfcApiServer(state()) as server:
        monkeypatch.setenv("TFC_ADDRESS", server.address)
        code = run_main(outdir, "--organization", "acme", "--workspace", "dev")
    out = capsys.readouterr()
    assert (code, out.err) == (0, "")
    run_id = "run-0000000000000001"
    assert out.out == (
        f"tfc-run: speculative plan {run_id} queued on acme/dev: "
        f"{server.address}/app/acme/workspaces/dev/runs/{run_id}\n"
    )
    calls = [(r.method, r.path) for r in server.state.requests]
    cv = "cv-0000000000000001"
    assert calls == [
        ("GET", "/api/v2/organizations/acme/workspaces/dev"),
        ("POST", "/api/v2/workspaces/ws-dev1/configuration-versions"),
        ("PUT", "/_archivist/v1/object/object-1"),
        ("GET", f"/api/v2/configuration-versions/{cv}"),  # still pending: polled again
        ("GET", f"/api/v2/configuration-versions/{cv}"),
        ("POST", "/api/v2/runs"),
    ]
    api_calls = [r for r in server.state.requests if r.path.startswith("/api/v2/")]
    assert {r.headers["Authorization"] for r in api_calls} == {f"Bearer {TOKEN}"}
    assert {r.headers["Content-Type"] for r in api_calls} == {MEDIA_TYPE}
    upload = server.state.requests[2]
    assert "Authorization" not in upload.headers  # the upload URL is signed: no token to it
    assert upload.headers["Content-Type"] == "application/octet-stream"
    assert json.loads(server.state.requests[1].body) == {
        "data": {
            "type": "configuration-versions",
            "attributes": {"auto-queue-runs": False, "speculative": True},
        }
    }
    assert json.loads(server.state.requests[5].body) == {
        "data": {
            "type": "runs",
            "attributes": {"message": "make tfc-run ENV=dev: speculative plan", "plan-only": True},
            "relationships": {
                "workspace": {"data": {"type": "workspaces", "id": "ws-dev1"}},
                "configuration-version": {"data": {"type": "configuration-versions", "id": cv}},
            },
        }
    }
    # The archive: exactly the stack's workspace files, no .terraform, state, lock or plan.
    archive = server.state.uploads[cv]
    stack = outdir / "stacks" / "dev"
    zip_name = next((stack / "assets").iterdir()).name
    members = archive_members(archive)
    assert [m.name for m in members] == ["assets", f"assets/{zip_name}", "cdk.tf.json"]
    assert archive_files(archive) == {
        "cdk.tf.json": (stack / "cdk.tf.json").read_bytes(),
        f"assets/{zip_name}": (stack / "assets" / zip_name).read_bytes(),
    }
    assert [(m.mode, m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members] == [
        (0o755, 0, 0, 0, "", ""),
        (0o644, 0, 0, 0, "", ""),
        (0o644, 0, 0, 0, "", ""),
    ]
    assert archive == stack_files.tarball(stack_files.workspace_files(stack))
    raw = gzip.decompress(archive)  # the zip inside is stored, so its paths would show too
    assert str(ROOT).encode() not in raw and str(outdir).encode() not in raw


def test_apply_run_waits_until_applied(
    outdir: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("TF_TOKEN_127_0_0_1", TOKEN)
    statuses = ("pending", "planning", "applying", "applied")
    with TfcApiServer(state(run_statuses=statuses, pending_polls=0)) as server:
        monkeypatch.setenv("TFC_ADDRESS", server.address)
        monkeypatch.setenv("TF_CLOUD_ORGANIZATION", "acme")
        monkeypatch.setenv("TF_WORKSPACE", "dev")
        code = run_main(outdir, "--apply", "--wait", "--message", "release 42")
    out = capsys.readouterr()
    assert (code, out.err) == (0, "")
    run_id = "run-0000000000000001"
    assert out.out.splitlines() == [
        f"tfc-run: run {run_id} queued on acme/dev: "
        f"{server.address}/app/acme/workspaces/dev/runs/{run_id}",
        *(f"tfc-run: {run_id}: {status}" for status in statuses),
    ]
    bodies = [json.loads(r.body) for r in server.state.requests if r.method == "POST"]
    assert bodies[0]["data"]["attributes"] == {"auto-queue-runs": False, "speculative": False}
    assert bodies[1]["data"]["attributes"] == {"message": "release 42", "plan-only": False}


def test_a_run_paused_for_confirmation_ends_the_wait(
    outdir: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("TERRAFORM_CLOUD_TOKEN", TOKEN)
    paused = state(run_statuses=("pending", "planned"), confirmable=frozenset({"planned"}))
    with TfcApiServer(paused) as server:
        monkeypatch.setenv("TFC_ADDRESS", server.address)
        code = run_main(outdir, "--organization", "acme", "--workspace", "dev", "--apply", "--wait")
    url = f"{server.address}/app/acme/workspaces/dev/runs/run-0000000000000001"
    assert code == 0
    assert capsys.readouterr().out.splitlines()[-1] == (
        f"tfc-run: run-0000000000000001 waits for confirmation (planned): {url}"
    )


def test_an_errored_run_exits_1(
    outdir: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("TERRAFORM_CLOUD_TOKEN", TOKEN)
    with TfcApiServer(state(run_statuses=("pending", "errored"))) as server:
        monkeypatch.setenv("TFC_ADDRESS", server.address)
        code = run_main(outdir, "--organization", "acme", "--workspace", "dev", "--wait")
    url = f"{server.address}/app/acme/workspaces/dev/runs/run-0000000000000001"
    assert code == 1
    assert capsys.readouterr().err == f"tfc-run: run-0000000000000001 ended errored: {url}\n"


def test_missing_workspace_is_one_line(
    outdir: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("TERRAFORM_CLOUD_TOKEN", TOKEN)
    with TfcApiServer(state()) as server:
        monkeypatch.setenv("TFC_ADDRESS", server.address)
        code = run_main(outdir, "--organization", "acme", "--workspace", "qa")
    assert code == 2
    assert capsys.readouterr().err == (
        f"tfc-run: workspace 'qa' not found in organization 'acme' on {server.address} "
        "(or the token from TERRAFORM_CLOUD_TOKEN may not read it): create it (API-driven "
        "workflow) or set WORKSPACE=\n"
    )
    assert [r.method for r in server.state.requests] == ["GET"]  # nothing created


def test_bad_token_is_one_line(
    outdir: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    credentials = Path(environ["HOME"]) / ".terraform.d" / "credentials.tfrc.json"
    credentials.parent.mkdir()
    credentials.write_text(json.dumps({"credentials": {"127.0.0.1": {"token": "expired"}}}))
    with TfcApiServer(state()) as server:
        monkeypatch.setenv("TFC_ADDRESS", server.address)
        code = run_main(outdir, "--organization", "acme", "--workspace", "dev")
    assert code == 2
    assert capsys.readouterr().err == (
        "tfc-run: GET /api/v2/organizations/acme/workspaces/dev: 401 Unauthorized: "
        f"{server.address} refused the token from {credentials}: run terraform login "
        "127.0.0.1, or set TF_TOKEN_127_0_0_1\n"
    )


def test_no_token_is_one_line(
    outdir: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    monkeypatch.setenv("TFC_ADDRESS", "https://tfe.example-corp.com")
    assert run_main(outdir, "--organization", "acme", "--workspace", "dev") == 2
    assert capsys.readouterr().err == (
        "tfc-run: no Terraform Cloud token for tfe.example-corp.com: run terraform login "
        "tfe.example-corp.com, or set TF_TOKEN_tfe_example__corp_com (or TERRAFORM_CLOUD_TOKEN)\n"
    )


def test_unreachable_address_is_one_line(
    outdir: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("TFC_ADDRESS", f"http://127.0.0.1:{port}")
    monkeypatch.setenv("TERRAFORM_CLOUD_TOKEN", TOKEN)
    assert run_main(outdir, "--organization", "acme", "--workspace", "dev") == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tfc-run: cannot reach http://127.0.0.1:{port}: ")
    assert err.count("\n") == 1


def test_a_stale_stack_is_not_uploaded(
    outdir: Path, environ: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    stack = outdir / "stacks" / "dev" / "cdk.tf.json"
    stack.write_text(stack.read_text().replace('"europe-west4"', '"europe-west1"'))
    monkeypatch.setenv("TFC_ADDRESS", "http://127.0.0.1:9")
    assert run_main(outdir, "--organization", "acme", "--workspace", "dev") == 2
    assert capsys.readouterr().err == (
        f"tfc-run: {outdir.as_posix()}/stacks/dev is not what {CONFIG}/dev.toml and the code "
        "synthesize now (differs: cdk.tf.json): run make synth ENV=dev\n"
    )


def test_the_command_line_runs_as_make_tfc_run_does(outdir: Path, environ: dict[str, str]) -> None:
    """One real process: the script's imports, argument parsing and exit status."""
    with TfcApiServer(state(pending_polls=0)) as server:
        env = {
            **os.environ,
            **jsii_cache_environ(),
            "TFC_ADDRESS": server.address,
            "TERRAFORM_CLOUD_TOKEN": TOKEN,
        }
        result = subprocess.run(
            [
                *(sys.executable, "tools/tfc_run.py", "--env", "dev", "--config-dir", CONFIG),
                *("--outdir", str(outdir), "--organization", "acme", "--workspace", "dev"),
                *("--poll-seconds", "0.01"),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("tfc-run: speculative plan run-0000000000000001 queued")
    assert len(server.state.uploads) == 1


# --- where the run goes, from the stack's cloud block and Terraform's variables --------------


def test_target_from_the_cloud_block() -> None:
    cloud = CloudSettings(organization="acme", hostname="tfe.acme.io", workspace="ai-prod")
    assert tfc_run.resolve_target(cloud, {}, "", "") == tfc_run.Target(
        "https://tfe.acme.io", "acme", "ai-prod"
    )
    # Options beat the block; TFC_ADDRESS beats the hostname.
    assert tfc_run.resolve_target(
        cloud, {"TFC_ADDRESS": "http://127.0.0.1:8080/"}, "other", "ws"
    ) == tfc_run.Target("http://127.0.0.1:8080", "other", "ws")


def test_target_from_terraform_variables_without_a_cloud_block() -> None:
    environ = {"TF_CLOUD_ORGANIZATION": "acme", "TF_WORKSPACE": "dev"}
    assert tfc_run.resolve_target(None, environ, "", "") == tfc_run.Target(
        "https://app.terraform.io", "acme", "dev"
    )


def test_tags_without_a_workspace_name_are_one_line() -> None:
    cloud = CloudSettings(organization="acme", tags=("ai", "dev"))
    with pytest.raises(tfc_run.TfcError) as caught:
        tfc_run.resolve_target(cloud, {}, "", "")
    assert str(caught.value) == (
        "no workspace: set WORKSPACE= (or TF_WORKSPACE) "
        "(its cloud block selects workspaces by tags ['ai', 'dev'])"
    )
    with pytest.raises(tfc_run.TfcError) as caught:
        tfc_run.resolve_target(None, {}, "", "")
    assert str(caught.value) == (
        "no organization: set ORGANIZATION= (or TF_CLOUD_ORGANIZATION), or give the stack a "
        "cloud backend with an organization; no workspace: set WORKSPACE= (or TF_WORKSPACE)"
    )


def test_tarball_is_deterministic_and_anonymous() -> None:
    files = {"cdk.tf.json": b"{}", "assets/a.zip": b"zip", "assets/sub/b.txt": b"b"}
    archive = stack_files.tarball(files)
    assert archive == stack_files.tarball(dict(reversed(list(files.items()))))
    assert archive[4:8] == b"\0\0\0\0"  # gzip header: no timestamp
    assert [m.name for m in archive_members(archive)] == [
        "assets",
        "assets/sub",
        "assets/a.zip",
        "assets/sub/b.txt",
        "cdk.tf.json",
    ]
