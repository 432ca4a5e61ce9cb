"""API-driven Terraform Cloud run of a stack (`make tfc-run ENV=dev`), the steps
hashicorp/tfc-workflows-github takes (upload-configuration, then create-run), on the stdlib:

1. GET  /api/v2/organizations/<org>/workspaces/<name>          (the workspace must exist)
2. POST /api/v2/workspaces/<id>/configuration-versions           (auto-queue-runs: false)
3. PUT  <upload-url>  the stack as a deterministic .tar.gz       (cdk.tf.json + assets/)
4. GET  /api/v2/configuration-versions/<id>                      until "uploaded"
5. POST /api/v2/runs   (workspace + configuration version, plan-only unless --apply, message)
6. print the run's URL; with --wait, GET /api/v2/runs/<id> until it ends.

    .venv/bin/python tools/tfc_run.py --env dev [--workspace NAME] [--organization ORG]
        [--apply] [--wait] [--message TEXT]

Where: TFC_ADDRESS (e.g. https://tfe.example.com) if set, else https:// + the stack's cloud
hostname, TF_CLOUD_HOSTNAME or app.terraform.io. Organization and workspace: the options,
else the stack's `cloud` block, else TF_CLOUD_ORGANIZATION / TF_WORKSPACE. Token: as
Terraform finds it for the address's host, or TERRAFORM_CLOUD_TOKEN (tfc_credentials.py).
The stack must be current (the preflight's check). Problems are one line each, exit 2; a
run that ends errored, canceled or discarded exits 1.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from preflight import OneLineParser, stack_problems
from stack_backend import CloudSettings, read_backend
from stack_files import STACK_FILE, tarball, workspace_files
from tfc_credentials import Token, find_token, token_variable

MEDIA_TYPE = "application/vnd.api+json"
# Run states after which nothing more happens by itself (the Runs API's "final" states).
SUCCEEDED = frozenset({"planned_and_finished", "planned_and_saved", "applied"})
FAILED = frozenset({"errored", "discarded", "canceled", "force_canceled", "policy_soft_failed"})


class TfcError(Exception):
    """One line for the user."""


class ApiError(TfcError):
    """An HTTP error answer, with its status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Target:
    """Where the run goes."""

    address: str
    organization: str
    workspace: str


def resolve_target(
    cloud: CloudSettings | None, environ: Mapping[str, str], organization: str, workspace: str
) -> Target:
    settings = cloud or CloudSettings()
    address = environ.get("TFC_ADDRESS") or f"https://{settings.resolved_hostname(environ)}"
    address = address.rstrip("/")
    organization = organization or settings.resolved_organization(environ)
    workspace = workspace or settings.resolved_workspace(environ)
    missing = []
    if not organization:
        missing.append(
            "no organization: set ORGANIZATION= (or TF_CLOUD_ORGANIZATION), "
            "or give the stack a cloud backend with an organization"
        )
    if not workspace:
        tags = f" (its cloud block selects workspaces by tags {list(settings.tags)})"
        missing.append(
            "no workspace: set WORKSPACE= (or TF_WORKSPACE)" + (tags if settings.tags else "")
        )
    if missing:
        raise TfcError("; ".join(missing))
    return Target(address, organization, workspace)


class Api:
    """JSON:API calls to one Terraform Cloud / Enterprise address with one token."""

    def __init__(self, address: str, token: Token) -> None:
        self.address = address
        self.token = token

    def call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        request = urllib.request.Request(
            self.address + path,
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {self.token.value}",
                "Content-Type": MEDIA_TYPE,
                "Accept": MEDIA_TYPE,
            },
        )
        text = self._send(request, f"{method} {path}")
        return json.loads(text) if text.strip() else None

    def upload(self, url: str, archive: bytes) -> None:
        """PUT the archive to the configuration version's upload URL (signed: no token)."""
        request = urllib.request.Request(
            url,
            method="PUT",
            data=archive,
            headers={"Content-Type": "application/octet-stream"},
        )
        self._send(request, "PUT upload-url")

    def _send(self, request: urllib.request.Request, what: str) -> str:
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return str(response.read().decode("utf-8"))
        except urllib.error.HTTPError as exc:
            raise ApiError(exc.code, self._http_problem(what, exc)) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise TfcError(f"cannot reach {self.address}: {reason}") from None

    def _http_problem(self, what: str, exc: urllib.error.HTTPError) -> str:
        if exc.code == 401:
            host = urllib.parse.urlsplit(self.address).hostname or self.address
            return (
                f"{what}: 401 Unauthorized: {self.address} refused the token from "
                f"{self.token.source}: run terraform login {host}, or set {token_variable(host)}"
            )
        detail = ""
        try:
            errors = json.loads(exc.read() or b"{}").get("errors") or []
            first = errors[0] if errors else {}
            detail = ": ".join(str(first[k]) for k in ("title", "detail") if first.get(k))
        except (ValueError, AttributeError, TypeError, KeyError):
            pass
        return f"{what}: {exc.code} {exc.reason}" + (f": {detail}" if detail else "")


def run_url(target: Target, run_id: str) -> str:
    return f"{target.address}/app/{target.organization}/workspaces/{target.workspace}/runs/{run_id}"


def queue_run(
    api: Api,
    target: Target,
    archive: bytes,
    *,
    apply: bool,
    message: str,
    poll_seconds: float,
    timeout_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Steps 1-5; returns the run id."""
    path = (
        f"/api/v2/organizations/{urllib.parse.quote(target.organization)}"
        f"/workspaces/{urllib.parse.quote(target.workspace)}"
    )
    try:
        workspace = api.call("GET", path)
    except ApiError as exc:
        if exc.status != 404:
            raise
        raise TfcError(
            f"workspace {target.workspace!r} not found in organization "
            f"{target.organization!r} on {target.address} (or the token from "
            f"{api.token.source} may not read it): create it (API-driven workflow) "
            "or set WORKSPACE="
        ) from None
    workspace_id = workspace["data"]["id"]
    version = api.call(
        "POST",
        f"/api/v2/workspaces/{workspace_id}/configuration-versions",
        {
            "data": {
                "type": "configuration-versions",
                "attributes": {"auto-queue-runs": False, "speculative": not apply},
            }
        },
    )["data"]
    api.upload(version["attributes"]["upload-url"], archive)
    deadline = time.monotonic() + timeout_seconds
    status = version["attributes"].get("status")
    while status != "uploaded":
        if status == "errored":
            shown = version["attributes"].get("error-message") or "no message"
            raise TfcError(f"configuration version {version['id']} errored: {shown}")
        if time.monotonic() > deadline:
            raise TfcError(
                f"configuration version {version['id']} still {status!r} after "
                f"{timeout_seconds:g} s"
            )
        sleep(poll_seconds)
        version = api.call("GET", f"/api/v2/configuration-versions/{version['id']}")["data"]
        status = version["attributes"].get("status")
    run = api.call(
        "POST",
        "/api/v2/runs",
        {
            "data": {
                "type": "runs",
                "attributes": {"message": message, "plan-only": not apply},
                "relationships": {
                    "workspace": {"data": {"type": "workspaces", "id": workspace_id}},
                    "configuration-version": {
                        "data": {"type": "configuration-versions", "id": version["id"]}
                    },
                },
            }
        },
    )["data"]
    return str(run["id"])


def wait_for_run(
    api: Api,
    run_id: str,
    *,
    poll_seconds: float,
    timeout_seconds: float,
    report: Callable[[str], None],
    sleep: Callable[[float], None] = time.sleep,
) -> str:
    """Poll the run until it ends or waits for confirmation; returns its last status."""
    deadline = time.monotonic() + timeout_seconds
    shown = ""
    while True:
        attributes = api.call("GET", f"/api/v2/runs/{run_id}")["data"]["attributes"]
        status = str(attributes.get("status"))
        if status != shown:
            report(status)
            shown = status
        confirmable = (attributes.get("actions") or {}).get("is-confirmable")
        if status in SUCCEEDED or status in FAILED or confirmable:
            return status
        if time.monotonic() > deadline:
            raise TfcError(f"run {run_id} still {status!r} after {timeout_seconds:g} s")
        sleep(poll_seconds)


def main(argv: list[str] | None = None) -> int:
    parser = OneLineParser(prog="tfc-run", description=__doc__.splitlines()[0])
    parser.add_argument("--env", required=True)
    parser.add_argument("--workspace", default="")
    parser.add_argument("--organization", default="")
    parser.add_argument("--apply", action="store_true", help="a run that can apply")
    parser.add_argument("--wait", action="store_true", help="wait until the run ends")
    parser.add_argument("--message", default="")
    parser.add_argument("--poll-seconds", type=float, default=2.0)
    parser.add_argument("--timeout-seconds", type=float, default=1800.0)
    parser.add_argument("--config-dir", type=Path, default=Path("config"))
    parser.add_argument("--outdir", type=Path, default=Path("cdktf.out"))
    parser.add_argument("--source-dir", type=Path, default=Path("function_src"))
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    environ = os.environ
    try:
        return _run(args, environ)
    except TfcError as exc:
        print(f"tfc-run: {exc}", file=sys.stderr)
        return 2


def _run(args: argparse.Namespace, environ: Mapping[str, str]) -> int:
    problems = stack_problems(args.env, args.config_dir, args.outdir, args.source_dir)
    for problem in problems:
        print(f"tfc-run: {problem}", file=sys.stderr)
    if problems:
        return 2
    stack_dir = args.outdir / "stacks" / args.env
    stack = json.loads((stack_dir / STACK_FILE).read_text(encoding="utf-8"))
    target = resolve_target(read_backend(stack).cloud, environ, args.organization, args.workspace)
    host = urllib.parse.urlsplit(target.address).hostname or target.address
    home = Path(environ.get("HOME") or Path.home())
    token = find_token(host, environ, home, cdktf_variable=True)
    if token is None:
        raise TfcError(
            f"no Terraform Cloud token for {host}: run terraform login {host}, "
            f"or set {token_variable(host)} (or TERRAFORM_CLOUD_TOKEN)"
        )
    api = Api(target.address, token)
    kind = "run" if args.apply else "speculative plan"
    message = args.message or f"make tfc-run ENV={args.env}: {kind}"
    run_id = queue_run(
        api,
        target,
        tarball(workspace_files(stack_dir)),
        apply=args.apply,
        message=message,
        poll_seconds=args.poll_seconds,
        timeout_seconds=args.timeout_seconds,
    )
    url = run_url(target, run_id)
    print(f"tfc-run: {kind} {run_id} queued on {target.organization}/{target.workspace}: {url}")
    if not args.wait:
        return 0
    status = wait_for_run(
        api,
        run_id,
        poll_seconds=args.poll_seconds,
        timeout_seconds=args.timeout_seconds,
        report=lambda s: print(f"tfc-run: {run_id}: {s}", flush=True),
    )
    if status in FAILED:
        print(f"tfc-run: {run_id} ended {status}: {url}", file=sys.stderr)
        return 1
    if status not in SUCCEEDED:
        print(f"tfc-run: {run_id} waits for confirmation ({status}): {url}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
