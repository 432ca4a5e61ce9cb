"""Google's Pub/Sub emulator: finding it, starting and stopping it, and its REST API.

The emulator is the Debian package `google-cloud-cli-pubsub-emulator` (a launcher script in
the Cloud SDK's `platform/pubsub-emulator/bin/`, which execs Java: OpenJDK 17). It is started
directly, never through `gcloud beta emulators pubsub start` (which leaves its Java child
behind when killed), in a process group of its own that is stopped as a whole.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

EMULATOR_PACKAGE = "google-cloud-cli-pubsub-emulator"
JAVA_PACKAGE = "openjdk-17-jre-headless"
LAUNCHER = Path("platform") / "pubsub-emulator" / "bin" / "cloud-pubsub-emulator"
SDK_ROOTS = (
    "/usr/lib/google-cloud-sdk",
    "/usr/share/google-cloud-sdk",
    "/opt/google-cloud-sdk",
    "~/google-cloud-sdk",
)
LAUNCHER_ENV = "TWIN_PUBSUB_EMULATOR"
"""Overrides where the launcher is (a path to `cloud-pubsub-emulator`)."""
TIMEOUT = 10


class MissingPrerequisite(Exception):
    """The emulator or Java is not installed; the message is one line saying what to install."""


def find_launcher() -> Path | None:
    override = os.environ.get(LAUNCHER_ENV)
    if override is not None:
        path = Path(override)
        return path if path.is_file() and os.access(path, os.X_OK) else None
    roots = [os.environ.get("CLOUDSDK_ROOT_DIR", ""), *SDK_ROOTS]
    for root in roots:
        if root and (Path(root).expanduser() / LAUNCHER).is_file():
            return Path(root).expanduser() / LAUNCHER
    gcloud = shutil.which("gcloud")
    if gcloud:  # slow (gcloud is Python), so only when the usual places have nothing
        try:
            root = subprocess.run(
                [gcloud, "info", "--format=value(installation.sdk_root)"],
                capture_output=True,
                text=True,
                timeout=30,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            root = ""
        if root and (Path(root) / LAUNCHER).is_file():
            return Path(root) / LAUNCHER
    return None


def find_java() -> str | None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.access(Path(java_home) / "bin" / "java", os.X_OK):
        return str(Path(java_home) / "bin" / "java")
    return shutil.which("java")


def check_prerequisites() -> Path:
    """The emulator's launcher, or MissingPrerequisite naming every package to install."""
    launcher = find_launcher()
    java = find_java()
    missing = []
    if launcher is None:
        missing.append(f"Google's Pub/Sub emulator ({EMULATOR_PACKAGE})")
    if java is None:
        missing.append(f"Java, which the emulator runs on ({JAVA_PACKAGE})")
    if missing:
        wanted = ((EMULATOR_PACKAGE, launcher is None), (JAVA_PACKAGE, java is None))
        packages = " ".join(package for package, gone in wanted if gone)
        raise MissingPrerequisite(
            f"{' and '.join(missing)} not found: install it with "
            f"`sudo apt-get install {packages}`"
            + (f" (or set {LAUNCHER_ENV}=<path to cloud-pubsub-emulator>)" if not launcher else "")
        )
    assert launcher is not None
    return launcher


class Emulator:
    """One emulator process on 127.0.0.1:<port>, in its own process group."""

    def __init__(self, launcher: Path, port: int, log_path: Path) -> None:
        self.launcher = launcher
        self.port = port
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(self.launcher), "--host=127.0.0.1", f"--port={self.port}"],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                process_group=0,
            )

    def wait_ready(self, timeout: float = 60) -> None:
        """Until the emulator answers; RuntimeError if it exits or does not answer in time."""
        assert self.process is not None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"the Pub/Sub emulator exited with status {self.process.returncode} "
                    f"(see {self.log_path})"
                )
            try:
                if requests.get(f"http://{self.host}/", timeout=1).ok:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"the Pub/Sub emulator did not answer in {timeout:.0f} s")

    def stop(self, timeout: float = 10) -> None:
        if self.process is not None:
            stop_group(self.process, timeout)


def stop_group(process: subprocess.Popen[bytes], timeout: float = 10) -> None:
    """SIGTERM the process's group (it leads one), SIGKILL it if it does not go in time."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=timeout)
    # Whatever is left in the group (a child the leader started) goes too.
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


class PubSubAdmin:
    """The emulator's REST API (`http://host:port/v1/`), as the twin and its tests use it."""

    def __init__(self, host: str) -> None:
        self.base = f"http://{host}/v1"
        self.session = requests.Session()

    def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        url = f"{self.base}/{quote(path, safe='/:')}"
        response = self.session.request(method, url, json=body, timeout=TIMEOUT)
        if response.status_code >= 300:
            raise RuntimeError(
                f"{method} {path}: HTTP {response.status_code}: {response.text.strip()[:300]}"
            )
        return response.json() if response.content else {}

    def create_topic(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("PUT", path, body)

    def create_subscription(self, path: str, body: dict[str, Any]) -> Any:
        return self._call("PUT", path, body)

    def get(self, path: str) -> Any:
        return self._call("GET", path)

    def delete(self, path: str) -> Any:
        return self._call("DELETE", path)

    def publish(self, topic: str, data: bytes, attributes: dict[str, str] | None = None) -> str:
        message: dict[str, Any] = {"data": base64.b64encode(data).decode()}
        if attributes:
            message["attributes"] = attributes
        answer = self._call("POST", f"{topic}:publish", {"messages": [message]})
        return str(answer["messageIds"][0])

    def pull(self, subscription: str, max_messages: int = 100) -> list[dict[str, Any]]:
        """Up to `max_messages`, acknowledged; each `{"data": bytes, "attributes", "messageId",
        "publishTime"}`."""
        answer = self._call(
            "POST",
            f"{subscription}:pull",
            {"maxMessages": max_messages, "returnImmediately": True},
        )
        received = answer.get("receivedMessages", [])
        if received:
            self._call(
                "POST",
                f"{subscription}:acknowledge",
                {"ackIds": [r["ackId"] for r in received]},
            )
        messages = []
        for item in received:
            message = dict(item["message"])
            message["data"] = base64.b64decode(message.get("data", ""))
            message.setdefault("attributes", {})
            messages.append(message)
        return messages
