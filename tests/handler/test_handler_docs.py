"""The handler's example commands do what the docs say: every `make run-function`,
`make publish` and `tools/publish.py` command in the code blocks of docs/handler.md and of the
README's "The handler" section is run as written (through the real Makefile), in order, and the
`# ...` line under it is checked, `...` matching anything.

- `make run-function ...` starts the server (on a free port instead of 8080); a
  `# [run-function] serving ...` line under it must appear in its output. It is stopped the way
  a terminal's Ctrl-C does (SIGINT to make's process group): one `stopped.` line, no traceback.
- A publish with PUSH= / --push-endpoint goes to the last server started above it; its
  `# message ... -> HTTP ...` line must match the tool's answer.
- A publish without it goes to a Pub/Sub stand-in as PUBSUB_EMULATOR_HOST (no credentials
  here); its `# published ...` line must match, and the stand-in must have the message.

`make -o .venv/.installed` only skips the venv's install step. Other commands (gcloud) are
not run.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from handler_fixtures import REPO
from local_standins import PubSubStandIn, free_port

DOC_URL = "http://127.0.0.1:8080/"
STARTUP_TIMEOUT = 60
# Output lines the docs show under a command.
EXPECTED_PREFIXES = ("[run-function] serving ", "message ", "published ")


@dataclass(frozen=True)
class Example:
    where: str  # file:line
    argv: tuple[str, ...]
    expected: str | None  # the `# ...` line under the command, without "# "

    @property
    def kind(self) -> str:
        if self.argv[:2] == ("make", "run-function"):
            return "run-function"
        if self.argv[:2] == ("make", "publish") or "tools/publish.py" in self.argv[:2]:
            return "publish"
        return "other"

    @property
    def push(self) -> bool:
        return any(a.startswith("PUSH=") for a in self.argv) or "--push-endpoint" in self.argv


def shell_blocks(markdown: str) -> list[tuple[int, str]]:
    """(first line number, text) of every ```sh block."""
    blocks = []
    for match in re.finditer(r"^```(?:sh|bash|shell)\n(.*?)^```", markdown, re.M | re.S):
        blocks.append((markdown.count("\n", 0, match.start(1)) + 1, match.group(1)))
    return blocks


def examples(path: Path, section: str | None = None) -> list[Example]:
    """The commands of `path`'s shell blocks (only in `## {section}` if given), each with the
    expected-output comment directly under it."""
    text = path.read_text(encoding="utf-8")
    offset = 0
    if section is not None:
        match = re.search(rf"^## {re.escape(section)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
        assert match is not None, f"{path.name}: no section '## {section}'"
        offset = text.count("\n", 0, match.start(1))
        text = match.group(1)
    found: list[Example] = []
    for first_line, block in shell_blocks(text):
        lines = block.splitlines()
        i = 0
        while i < len(lines):
            number = offset + first_line + i
            line = lines[i]
            while line.endswith("\\") and i + 1 < len(lines):
                i += 1
                line = line[:-1] + " " + lines[i].strip()
            i += 1
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            expected = None
            if i < len(lines) and lines[i].startswith("# "):
                shown = lines[i][2:]
                if shown.startswith(EXPECTED_PREFIXES):
                    expected = shown
            argv = tuple(shlex.split(line, comments=True))
            found.append(Example(f"{path.name}:{number}", argv, expected))
    return found


def pattern(shown: str, url: str) -> re.Pattern[str]:
    """The shown line as a regex: `...` matches anything, the docs' port is the test's."""
    parts = [re.escape(part.replace(DOC_URL, url)) for part in shown.split("...")]
    return re.compile(".*".join(parts))


def clean_env() -> dict[str, str]:
    """No make recursion flags, no Google credentials, no endpoints: what a newcomer has."""
    drop = ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "MAKEOVERRIDES", "PORT")
    return {
        k: v
        for k, v in os.environ.items()
        if k not in drop and not k.startswith(("GOOGLE_", "CLOUDSDK_", "PUBSUB_", "VERTEX_"))
    }


def make(argv: tuple[str, ...]) -> list[str]:
    assert argv[0] == "make"
    return ["make", "--no-print-directory", "-o", ".venv/.installed", *argv[1:]]


class Server:
    """`make run-function ...` in its own process group, as in a terminal."""

    def __init__(self, example: Example, log_path: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.log_path = log_path
        argv = [a for a in example.argv if not a.startswith("PORT=")]
        with log_path.open("wb") as log:
            self.process = subprocess.Popen(
                [*make(tuple(argv)), f"PORT={self.port}"],
                cwd=REPO,
                env=clean_env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while "[run-function] serving " not in self.log():
            assert self.process.poll() is None, f"{example.where}: exited:\n{self.log()}"
            assert time.monotonic() < deadline, f"{example.where}: not serving:\n{self.log()}"
            time.sleep(0.05)

    def log(self) -> str:
        return self.log_path.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> str:
        """Ctrl-C in the terminal: SIGINT to the foreground process group (make and the tool)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
                raise AssertionError(f"did not stop on SIGINT:\n{self.log()}") from None
        return self.log()


def run_examples(found: list[Example], tmp_path: Path) -> None:
    runnable = [e for e in found if e.kind != "other"]
    assert runnable, "no example commands found"
    pubsub = PubSubStandIn().start()
    server: Server | None = None
    try:
        for n, example in enumerate(runnable):
            if example.kind == "run-function":
                if server is not None:
                    check_stopped(server)
                server = Server(example, tmp_path / f"server-{n}.log")
                if example.expected is not None:
                    assert pattern(example.expected, server.url).search(server.log()), (
                        f"{example.where}: shown {example.expected!r}, got:\n{server.log()}"
                    )
                continue
            check_publish(example, server, pubsub)
    finally:
        pubsub.stop()
        if server is not None:
            check_stopped(server)


def check_stopped(server: Server) -> None:
    output = server.stop()
    assert "Traceback" not in output, output
    assert output.rstrip().endswith("[run-function] stopped."), output


def check_publish(example: Example, server: Server | None, pubsub: PubSubStandIn) -> None:
    env = clean_env()
    argv = example.argv
    if example.push:
        assert server is not None, f"{example.where}: PUSH= with no `make run-function` above it"
        assert DOC_URL in " ".join(argv), f"{example.where}: push to {DOC_URL}, where it serves"
        argv = tuple(
            a.replace(DOC_URL, server.url) if a.startswith(("PUSH=", DOC_URL)) else a for a in argv
        )
        assert example.expected is not None, f"{example.where}: shows no answer (# message ...)"
    else:
        env["PUBSUB_EMULATOR_HOST"] = pubsub.host_port
    command = make(argv) if argv[0] == "make" else list(argv)
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    output = f"{example.where}: {shlex.join(example.argv)}\n{result.stdout}{result.stderr}"
    assert "Traceback" not in result.stderr, output
    last = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    if example.expected is not None:
        url = server.url if server is not None else DOC_URL
        assert pattern(example.expected, url).fullmatch(last), (
            f"shown: {example.expected}\n{output}"
        )
    if example.push:
        status = re.search(r"-> HTTP (\d+) ", last)
        assert status is not None, output
        acknowledged = int(status.group(1)) in {102, 200, 201, 202, 204}
        assert result.returncode == (0 if acknowledged else 1), output
    else:
        assert result.returncode == 0, output
        message_id = last.rsplit(" ", 1)[-1]
        topic = last.split(" to ", 1)[1].split(":", 1)[0]
        assert [m.message_id for m in pubsub.messages(topic)][-1:] == [message_id], output


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")


def test_examples_are_parsed_with_their_outcomes() -> None:
    """The parser finds what the docs show (so the tests below cannot pass vacuously)."""
    found = examples(REPO / "docs" / "handler.md")
    kinds = [e.kind for e in found if e.kind != "other"]
    assert kinds.count("run-function") >= 1 and kinds.count("publish") >= 4
    pushes = [e for e in found if e.push]
    assert len(pushes) >= 2 and all(e.expected for e in pushes)
    assert any("unknown_event_type" in (e.expected or "") for e in pushes)
    assert all(e.expected for e in found if e.kind == "publish")


@needs_make
@pytest.mark.skipif(sys.platform == "win32", reason="process groups")
def test_docs_handler_examples(tmp_path: Path) -> None:
    run_examples(examples(REPO / "docs" / "handler.md"), tmp_path)


@needs_make
@pytest.mark.skipif(sys.platform == "win32", reason="process groups")
def test_readme_handler_examples(tmp_path: Path) -> None:
    found = examples(REPO / "README.md", section="The handler")
    assert any(e.kind == "run-function" for e in found), found
    assert any(e.push and e.expected for e in found), (
        "README 'The handler': no `make publish ... PUSH=` example with its answer shown"
    )
    run_examples(found, tmp_path)
