"""Opt-in synth speed-ups for Python cdktf (or CDK Terrain, cdktn) apps with big prebuilt
providers.

Nothing happens on import. An app's entry point calls `enable()` once, before it imports
cdktf or a provider (main.py, tools/watch.py and the benchmarks do; the construct library
never does):

- lazy_provider: the provider's Python package and its JS index load only the submodules
  in use, and jsii's type-check stubs get their type hints memoized;
- kernel_launch: jsii's kernel runs in one process instead of behind a relay, with cdktf's
  (or cdktn's) per-token stack traces turned off.

Both frameworks are handled without being told which one is in use: each hook matches only
the files of its own layout (cdktn's Python provider is lazy already and is left alone).

None of it changes a byte of the synthesized JSON. AI_WORKFLOW_EAGER_IMPORTS=1 turns it
all off; AI_WORKFLOW_TOKEN_STACK_TRACES=1 keeps the token stack traces. Where a file it
relies on has an unexpected shape, that part falls back to stock with a one-line warning.
"""

from __future__ import annotations

from . import kernel_launch, lazy_provider


def enable() -> bool:
    """Install the lazy provider loader and start the jsii kernel the fast way.

    Returns whether the speed-ups are active (False with AI_WORKFLOW_EAGER_IMPORTS=1, or
    when the provider was imported before this call, too late to change how it loads).
    """
    lazy = lazy_provider.install()
    kernel_launch.start_kernel()
    return lazy


__all__ = ["enable", "kernel_launch", "lazy_provider"]
