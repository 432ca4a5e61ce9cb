"""Start the jsii kernel (Node) the fast way: one process, lazy provider, no token stacks.

jsii's Python runtime starts its Node kernel on the first jsii call and copies os.environ
then. `start_kernel()` sets up that environment, starts the kernel (by importing the
`constructs` package, whose assembly load is the first jsii call) and puts the environment
back, so Node programs this process starts later (npx, tests) do not inherit any of it:

- JSII_RUNTIME=direct_kernel.js: jsii's own runtime script is a relay that spawns the
  real kernel (lib/program.js) and copies every message between two pairs of pipes. The
  direct runtime runs a copy of that program whose protocol descriptors are stdin and
  stdout (`direct_program_source`), in the one process. A 100-workflow synth makes ~9,300
  synchronous round trips; dropping the relay saves ~15% of its wall time. NODE_OPTIONS
  gets --preserve-symlinks, the flag the relay gave its child.
- NODE_OPTIONS --require lazy_provider_hook.js: the provider's JS index loads submodules
  on first use (see lazy_provider).
- NODE_OPTIONS --require token_stack_hook.js: cdktf stops recording a JavaScript stack
  trace for every token (~10% of a 100-workflow synth; see that file). CDK Terrain (cdktn)
  has a switch of its own for the same thing, CDKTN_DISABLE_CREATION_STACK=1, which is set
  instead of touching its files (the hook matches only cdktf's file, and cdktn's has a
  second function the hook's replacement would drop). Each framework ignores the other's
  means, so both are always set. Set AI_WORKFLOW_TOKEN_STACK_TRACES=1 to keep the traces,
  e.g. to see where a token that fails to resolve ("Resolution error") was created.

None of this changes the synthesized JSON (tests/test_lazy_provider.py compares it byte for
byte with the stock runtime). AI_WORKFLOW_EAGER_IMPORTS=1 turns all of it off. A JSII_RUNTIME
set by the user is kept. If jsii's embedded kernel program does not have the expected shape,
the stock relay is used, with a one-line warning.
"""

from __future__ import annotations

import atexit
import importlib
import importlib.resources
import os
import shutil
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from . import lazy_provider

HERE = Path(__file__).resolve().parent
DIRECT_KERNEL = HERE / "direct_kernel.js"
TOKEN_STACK_HOOK = HERE / "token_stack_hook.js"
PROGRAM_ENV_VAR = "AI_WORKFLOW_JSII_PROGRAM"
TOKEN_STACKS_ENV_VAR = "AI_WORKFLOW_TOKEN_STACK_TRACES"
# cdktn (CDK Terrain) records no token creation stacks when this is "1" or "true".
CDKTN_CREATION_STACK_ENV_VAR = "CDKTN_DISABLE_CREATION_STACK"

# How jsii's kernel program opens its protocol channel (fd 3, which the relay provides),
# and the same on stdin/stdout for the direct runtime.
_RELAY_DESCRIPTORS = "readFD:3,writeFD:3"
_DIRECT_DESCRIPTORS = "readFD:0,writeFD:1"
_PROGRAM = "lib/program.js"

_saved_environment: dict[str, str | None] = {}


def direct_program_source(source: str) -> str | None:
    """jsii's kernel program rewired to stdin/stdout, or None if its shape is unexpected."""
    if source.count(_RELAY_DESCRIPTORS) != 1:
        return None
    return source.replace(_RELAY_DESCRIPTORS, _DIRECT_DESCRIPTORS)


def token_stacks_requested(environ: Mapping[str, str]) -> bool:
    """True when the user asked to keep cdktf's (or cdktn's) token creation stack traces."""
    return lazy_provider.env_flag(TOKEN_STACKS_ENV_VAR, environ)


def node_require_option(script: Path) -> str:
    """A NODE_OPTIONS entry that preloads `script`."""
    return '--require "{}"'.format(str(script).replace("\\", "\\\\").replace('"', '\\"'))


def _write_direct_program() -> Path | None:
    """Copy jsii's kernel program (rewired) and its worker into a temporary lib/ folder.

    The folder lives until this process exits; jsii stops the kernel before that (its exit
    hook is registered later, so it runs first).
    """
    import jsii._embedded.jsii as embedded

    files = importlib.resources.files(embedded)
    resources = {
        target: resource
        for resource, target in embedded.EMBEDDED_FILES.items()
        if target.startswith("lib/") and target.endswith(".js")
    }
    program = None
    if _PROGRAM in resources:
        program = direct_program_source(files.joinpath(resources[_PROGRAM]).read_text("utf-8"))
    if program is None:
        print(
            f"warning: jsii's {_PROGRAM} is missing or has an unexpected layout; using jsii's "
            "relay kernel (slower, same output)",
            file=sys.stderr,
        )
        return None
    root = Path(tempfile.mkdtemp(prefix="ai-workflow-jsii-"))
    atexit.register(shutil.rmtree, root, ignore_errors=True)
    for target, resource in resources.items():
        path = root / target
        path.parent.mkdir(parents=True, exist_ok=True)
        if target == _PROGRAM:
            path.write_text(program, encoding="utf-8")
        else:
            path.write_bytes(files.joinpath(resource).read_bytes())
    return root / _PROGRAM


def kernel_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The variables to set (relative to `environ`) for a fast kernel start."""
    options = [node_require_option(lazy_provider.NODE_HOOK)]
    changes: dict[str, str] = {}
    if not token_stacks_requested(environ):
        options.append(node_require_option(TOKEN_STACK_HOOK))
        if CDKTN_CREATION_STACK_ENV_VAR not in environ:
            changes[CDKTN_CREATION_STACK_ENV_VAR] = "1"
    if "JSII_RUNTIME" not in environ:
        program = _write_direct_program()
        if program is not None:
            options.insert(0, "--preserve-symlinks")
            changes["JSII_RUNTIME"] = str(DIRECT_KERNEL)
            changes[PROGRAM_ENV_VAR] = str(program)
    current = environ.get("NODE_OPTIONS", "")
    missing = [option for option in options if not _has_option(current, option)]
    if missing:
        changes["NODE_OPTIONS"] = " ".join(filter(None, [current, *missing]))
    return changes


def _has_option(node_options: str, option: str) -> bool:
    """Whether `option` is already in NODE_OPTIONS (a bare flag must match a whole word)."""
    return option in node_options if " " in option else option in node_options.split()


def set_environment(changes: Mapping[str, str]) -> None:
    """Apply `changes` to os.environ, remembering what they replace."""
    for key, value in changes.items():
        _saved_environment.setdefault(key, os.environ.get(key))
        os.environ[key] = value


def restore_environment() -> None:
    """Undo set_environment (a no-op when it did nothing)."""
    while _saved_environment:
        key, value = _saved_environment.popitem()
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def start_kernel() -> None:
    """Start the jsii kernel now, the fast way unless AI_WORKFLOW_EAGER_IMPORTS=1."""
    if lazy_provider.eager_requested() or "constructs" in sys.modules:
        importlib.import_module("constructs")
        return
    set_environment(kernel_environment(os.environ))
    try:
        importlib.import_module("constructs")
    finally:
        restore_environment()
