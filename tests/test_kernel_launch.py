"""kernel_launch: the direct jsii runtime, the token stack switches, and the start environment.

That the three together leave the synthesized JSON byte-identical is proven in
test_lazy_provider.py (default app against the stock runtime with
AI_WORKFLOW_EAGER_IMPORTS=1). These tests pin each part, including the shapes of the
third-party files they rely on (those of the framework in use: cdktf, or cdktn with
`make test-cdktn`), so an upgrade of jsii, cdktf or cdktn that changes them fails here.
"""

from __future__ import annotations

import base64
import importlib.resources
import io
import json
import os
import subprocess
import sys
import tarfile
from contextlib import redirect_stderr
from pathlib import Path

import pytest
from frameworks import on
from node_helpers import NODE, needs_node, run_with_preload

from ai_workflow import compat
from cdktf_fastsynth import kernel_launch, lazy_provider


def embedded_program() -> str:
    import jsii._embedded.jsii as embedded

    return importlib.resources.files(embedded).joinpath("lib__program.js").read_text("utf-8")


# --- the direct runtime (Python side) ------------------------------------------------------


def test_the_installed_jsii_kernel_program_can_be_rewired() -> None:
    source = embedded_program()
    rewired = kernel_launch.direct_program_source(source)
    assert rewired is not None
    assert "readFD:3,writeFD:3" not in rewired
    assert rewired.count("readFD:0,writeFD:1") == 1
    assert len(rewired) == len(source)


@pytest.mark.parametrize(
    "source", ["", "x=1", "a({readFD:3,writeFD:3}); b({readFD:3,writeFD:3})", "readFD:4"]
)
def test_an_unexpected_kernel_program_is_not_rewired(source: str) -> None:
    assert kernel_launch.direct_program_source(source) is None


def test_the_direct_program_is_written_with_its_worker(tmp_path: Path) -> None:
    program = kernel_launch._write_direct_program()
    assert program is not None
    assert program.name == "program.js" and program.parent.name == "lib"
    assert (program.parent / "runtime-index-worker.js").is_file()
    assert "readFD:0,writeFD:1" in program.read_text(encoding="utf-8")


def test_an_unexpected_program_keeps_the_relay_with_one_warning_line(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(kernel_launch, "direct_program_source", lambda source: None)
    stderr = io.StringIO()
    with redirect_stderr(stderr):
        changes = kernel_launch.kernel_environment({})
    lines = stderr.getvalue().splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: ") and "relay" in lines[0]
    assert "JSII_RUNTIME" not in changes
    assert "--preserve-symlinks" not in changes["NODE_OPTIONS"]
    # The Node hooks do not depend on the runtime script, so they stay.
    assert (
        kernel_launch.node_require_option(kernel_launch.TOKEN_STACK_HOOK)
        in (changes["NODE_OPTIONS"])
    )


def test_the_start_environment() -> None:
    changes = kernel_launch.kernel_environment({"NODE_OPTIONS": "--max-old-space-size=100"})
    assert changes["JSII_RUNTIME"] == str(kernel_launch.DIRECT_KERNEL)
    assert Path(changes[kernel_launch.PROGRAM_ENV_VAR]).is_file()
    options = changes["NODE_OPTIONS"]
    assert options.startswith("--max-old-space-size=100 --preserve-symlinks --require ")
    assert kernel_launch.node_require_option(lazy_provider.NODE_HOOK) in options
    assert kernel_launch.node_require_option(kernel_launch.TOKEN_STACK_HOOK) in options
    # cdktn's own switch for the same thing (cdktf ignores it).
    assert changes["CDKTN_DISABLE_CREATION_STACK"] == "1"
    # Nothing is added twice.
    again = kernel_launch.kernel_environment({"NODE_OPTIONS": options})
    assert "NODE_OPTIONS" not in again
    # A similar flag is not mistaken for the one needed.
    similar = kernel_launch.kernel_environment({"NODE_OPTIONS": "--preserve-symlinks-main"})
    assert similar["NODE_OPTIONS"].startswith("--preserve-symlinks-main --preserve-symlinks ")


@pytest.mark.parametrize(("value", "kept"), [("1", True), ("yes", True), ("", False), ("0", False)])
def test_token_stack_traces_can_be_kept_for_debugging(value: str, kept: bool) -> None:
    changes = kernel_launch.kernel_environment({kernel_launch.TOKEN_STACKS_ENV_VAR: value})
    hook = kernel_launch.node_require_option(kernel_launch.TOKEN_STACK_HOOK)
    assert (hook not in changes["NODE_OPTIONS"]) is kept
    assert ("CDKTN_DISABLE_CREATION_STACK" not in changes) is kept
    assert kernel_launch.node_require_option(lazy_provider.NODE_HOOK) in changes["NODE_OPTIONS"]


@pytest.mark.parametrize("value", ["0", "", "true"])
def test_a_cdktn_creation_stack_setting_of_the_users_own_is_kept(value: str) -> None:
    changes = kernel_launch.kernel_environment({"CDKTN_DISABLE_CREATION_STACK": value})
    assert "CDKTN_DISABLE_CREATION_STACK" not in changes


def test_a_runtime_chosen_by_the_user_is_kept() -> None:
    changes = kernel_launch.kernel_environment({"JSII_RUNTIME": "/opt/my-runtime.js"})
    assert "JSII_RUNTIME" not in changes
    assert kernel_launch.PROGRAM_ENV_VAR not in changes
    assert "--preserve-symlinks" not in changes["NODE_OPTIONS"]


def test_the_environment_is_put_back(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NODE_OPTIONS", "--max-old-space-size=100")
    monkeypatch.delenv("JSII_RUNTIME", raising=False)
    kernel_launch.set_environment({"NODE_OPTIONS": "changed", "JSII_RUNTIME": "x.js"})
    kernel_launch.set_environment({"NODE_OPTIONS": "changed twice"})
    assert (os.environ["NODE_OPTIONS"], os.environ["JSII_RUNTIME"]) == ("changed twice", "x.js")
    kernel_launch.restore_environment()
    assert os.environ["NODE_OPTIONS"] == "--max-old-space-size=100"
    assert "JSII_RUNTIME" not in os.environ
    kernel_launch.restore_environment()  # a no-op the second time
    assert os.environ["NODE_OPTIONS"] == "--max-old-space-size=100"


# --- the direct runtime (Node side) --------------------------------------------------------

# Stands in for jsii's program.js: answers one protocol line on fd 1, and prints the way
# library code does (console.log, process.stderr.write), which must not reach fd 1.
FAKE_PROGRAM = r"""
const fs = require("fs");
const buffer = Buffer.alloc(1024);
const request = buffer.toString("utf8", 0, fs.readSync(0, buffer)).trim();
console.log("noise from the kernel");
process.stderr.write("a warning\n");
const reply = {request, preserveSymlinks: process.execArgv.includes("--preserve-symlinks")};
fs.writeSync(1, JSON.stringify(reply) + "\n");
"""


def run_direct_kernel(
    tmp_path: Path, *, program: str | None, node_options: str
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in {"NODE_OPTIONS", "JSII_RUNTIME"}}
    env.pop(kernel_launch.PROGRAM_ENV_VAR, None)
    env["NODE_OPTIONS"] = node_options
    if program is not None:
        (tmp_path / "program.js").write_text(program)
        env[kernel_launch.PROGRAM_ENV_VAR] = str(tmp_path / "program.js")
    return subprocess.run(
        [str(NODE), str(kernel_launch.DIRECT_KERNEL)],
        input='{"hello":"kernel"}\n',
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def decode_console(stderr: str) -> list[tuple[str, str]]:
    lines = [json.loads(line) for line in stderr.splitlines()]
    return [(k, base64.b64decode(v).decode()) for line in lines for k, v in line.items()]


@needs_node
def test_the_direct_kernel_keeps_the_protocol_channel_clean(tmp_path: Path) -> None:
    result = run_direct_kernel(tmp_path, program=FAKE_PROGRAM, node_options="--preserve-symlinks")
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        json.dumps({"request": '{"hello":"kernel"}', "preserveSymlinks": True}).replace(" ", "")
    ]
    # What the kernel printed arrives as the relay's console lines, which jsii decodes.
    assert decode_console(result.stderr) == [
        ("stdout", "noise from the kernel\n"),
        ("stderr", "a warning\n"),
    ]


@needs_node
def test_the_direct_kernel_claims_preserve_symlinks_only_when_node_has_it(tmp_path: Path) -> None:
    result = run_direct_kernel(tmp_path, program=FAKE_PROGRAM, node_options="")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["preserveSymlinks"] is False


@needs_node
def test_the_direct_kernel_needs_its_program(tmp_path: Path) -> None:
    result = run_direct_kernel(tmp_path, program=None, node_options="")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["direct_kernel.js: AI_WORKFLOW_JSII_PROGRAM is not set"]


# --- token stacks: token_stack_hook.js (cdktf), CDKTN_DISABLE_CREATION_STACK (cdktn) ------


def stack_trace_source() -> str:
    """lib/tokens/private/stack-trace.js from the assembly of the framework in use."""
    assembly = importlib.import_module(f"{compat.NAME}._jsii")
    tarball = next(
        p for p in importlib.resources.files(assembly).iterdir() if p.name.endswith(".tgz")
    )
    with tarfile.open(fileobj=io.BytesIO(tarball.read_bytes())) as archive:
        member = archive.extractfile("package/lib/tokens/private/stack-trace.js")
        assert member is not None
        return member.read().decode()


STACK_PROBE = (
    "const m = require(process.argv[1]);"
    "const creation = m.captureCreationStack ? m.captureCreationStack().length : null;"
    "console.log(JSON.stringify({frames: m.captureStackTrace().length, creation}));"
)


def run_stack_probe(
    tmp_path: Path, source: str, framework: str = "cdktf", **environ: str
) -> subprocess.CompletedProcess[str]:
    module = tmp_path / "node_modules" / framework / "lib" / "tokens" / "private" / "stack-trace.js"
    module.parent.mkdir(parents=True)
    module.write_text(source)
    return run_with_preload(kernel_launch.TOKEN_STACK_HOOK, STACK_PROBE, module, **environ)


@needs_node
@pytest.mark.skipif(not on("cdktf"), reason="cdktf's stack-trace.js (cdktn's: the next test)")
def test_cdktf_token_stack_traces_are_not_recorded(tmp_path: Path) -> None:
    real = stack_trace_source()
    assert "exports.captureStackTrace = captureStackTrace;" in real
    unhooked = subprocess.run(
        [str(NODE), "-e", real + "\nconsole.log(captureStackTrace().length)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert int(unhooked.stdout) > 0  # without the hook cdktf records frames
    result = run_stack_probe(tmp_path, real)
    assert json.loads(result.stdout) == {"frames": 0, "creation": None}
    assert result.stderr == ""


@needs_node
@pytest.mark.skipif(not on("cdktn"), reason="cdktn's stack-trace.js (cdktf's: the test above)")
@pytest.mark.parametrize(("switch", "recorded"), [(None, True), ("1", False), ("true", False)])
def test_cdktn_token_stacks_follow_its_own_switch_and_the_hook_leaves_it_alone(
    tmp_path: Path, switch: str | None, recorded: bool
) -> None:
    """cdktn records a token's creation stack through captureCreationStack, which returns []
    when CDKTN_DISABLE_CREATION_STACK is 1 or true; the cdktf hook (preloaded here too, as in
    the kernel) does not touch cdktn's file, whose captureCreationStack it would drop."""
    real = stack_trace_source()
    assert "exports.captureCreationStack = captureCreationStack;" in real
    assert "process.env.CDKTN_DISABLE_CREATION_STACK" in real
    environ = {} if switch is None else {"CDKTN_DISABLE_CREATION_STACK": switch}
    result = run_stack_probe(tmp_path, real, "cdktn", **environ)
    report = json.loads(result.stdout)
    assert report["frames"] > 0  # untouched: the hook only replaces cdktf's file
    assert (report["creation"] > 0) is recorded
    assert result.stderr == ""


@needs_node
def test_an_unexpected_stack_trace_module_is_kept_with_one_warning_line(tmp_path: Path) -> None:
    source = '"use strict"; exports.captureStackTrace = () => ["frame"];\n'
    result = run_stack_probe(tmp_path, source)
    assert json.loads(result.stdout) == {"frames": 1, "creation": None}
    lines = result.stderr.splitlines()
    assert len(lines) == 1, lines
    assert lines[0].startswith("warning: ") and "unexpected layout" in lines[0]


# A token whose producer fails: the framework reports a "Resolution error" and, only when it
# recorded one, the token's creation stack.
RESOLUTION_ERROR = """
import sys, tempfile
import cdktf_fastsynth
cdktf_fastsynth.enable()
import jsii
from ai_workflow.compat import cdk

@jsii.implements(cdk.IStringProducer)
class Failing:
    def produce(self, context):
        raise ValueError("no value")

app = cdk.App(outdir=tempfile.mkdtemp())
cdk.TerraformOutput(
    cdk.TerraformStack(app, "s"), "o", value=cdk.Lazy.string_value(Failing())
)
try:
    app.synth()
except Exception as error:
    print(str(error))
"""


@needs_node
@pytest.mark.parametrize(("keep", "stack_shown"), [(None, False), ("1", True)])
def test_the_real_kernel_records_token_stacks_only_when_asked(
    keep: str | None, stack_shown: bool
) -> None:
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in {kernel_launch.TOKEN_STACKS_ENV_VAR, kernel_launch.CDKTN_CREATION_STACK_ENV_VAR}
    }
    env["JSII_NODE"] = str(NODE)
    if keep is not None:
        env[kernel_launch.TOKEN_STACKS_ENV_VAR] = keep
    result = subprocess.run(
        [sys.executable, "-c", RESOLUTION_ERROR],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert result.stdout.startswith("Resolution error: no value."), result.stdout
    assert ("Object creation stack:" in result.stdout) is stack_shown
    # What it would show is kernel frames, never the Python file that made the token.
    if stack_shown:
        assert f"{compat.NAME}/lib/tokens/lazy.js" in result.stdout
        assert "<string>" not in result.stdout
