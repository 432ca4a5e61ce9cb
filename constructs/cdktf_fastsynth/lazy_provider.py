"""Load only the Google provider submodules a stack actually uses.

`cdktf_cdktf_provider_google/__init__.py` ends with ~1,470 `from . import <submodule>`
lines, which costs ~10 s and ~400 MB before synth starts. `install()` adds an import hook
that runs that `__init__.py` without those lines and resolves submodules on first
attribute access (PEP 562), so `from cdktf_cdktf_provider_google.pubsub_topic import
PubsubTopic` keeps working and loads one submodule. The synthesized JSON is identical.

The jsii kernel (Node) has the same problem: loading the assembly requires the provider's
`lib/index.js`, which requires all ~1,470 JS submodules (~2.8 s, ~400 MB).
`lazy_provider_hook.js`, which kernel_launch preloads into the kernel, makes those requires
lazy in the same way.

Every jsii-generated method checks its arguments with
`typing.get_type_hints(_typecheckingstub__<hash>)` + typeguard, and get_type_hints
re-evaluates the stub's string annotations on every call (~40% of the Python time of a
100-workflow synth). `install()` memoizes get_type_hints for those generated stubs only;
the checks themselves still run.

On CDK Terrain (cdktn) the Python package `cdktn_provider_google` already loads its
submodules on first access, so nothing hooks it; its JS index (`@cdktn/provider-google`,
`exports.x = __importStar(require("./x/index"));` lines) is made lazy by the same Node hook,
and the type-hint memo covers cdktn's core too. Every part is framework-agnostic: each hook
matches only its own files, so `install()` needs no choice of framework.

Set AI_WORKFLOW_EAGER_IMPORTS=1 to turn all of this off (and kernel_launch's speed-ups too).
If the package's `__init__.py` (or the JS `lib/index.js`) does not have the expected shape,
that side falls back to the eager import with a one-line warning.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import os
import re
import sys
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

PROVIDER_PACKAGE = "cdktf_cdktf_provider_google"
# cdktn's Google provider: lazy by itself (PEP 562), so never hooked.
CDKTN_PROVIDER_PACKAGE = "cdktn_provider_google"
EAGER_ENV_VAR = "AI_WORKFLOW_EAGER_IMPORTS"

_SUBMODULE_IMPORT = re.compile(r"^from \. import ([a-z_][a-z0-9_]*)$")
_ANCHOR = "publication.publish()"
NODE_HOOK = Path(__file__).with_name("lazy_provider_hook.js")


def env_flag(name: str, environ: Mapping[str, str] = os.environ) -> bool:
    """Whether the on/off environment variable `name` is on (1, true or yes)."""
    return environ.get(name, "").strip().lower() in {"1", "true", "yes"}


def eager_requested() -> bool:
    """True when the user asked for plain eager imports."""
    return env_flag(EAGER_ENV_VAR)


def split_package_source(source: str) -> tuple[str, list[str]] | None:
    """Split the provider `__init__.py` into (head, submodule names).

    Returns None when the file does not end in exactly the block of submodule imports
    that follows `publication.publish()`; then the trick is unsafe.
    """
    head, sep, tail = source.rpartition(_ANCHOR)
    if not sep:
        return None
    names: list[str] = []
    for line in tail.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = _SUBMODULE_IMPORT.match(stripped)
        if match is None:
            return None
        names.append(match.group(1))
    if not names:
        return None
    return head + sep + "\n", names


class _LazyPackageLoader(importlib.abc.Loader):
    """Runs the package head, then defers each submodule to first access."""

    def __init__(self, real: importlib.machinery.SourceFileLoader, head: str, names: list[str]):
        self._real = real
        self._head = head
        self._names = frozenset(names)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType | None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        code = compile(self._head, self._real.get_filename(PROVIDER_PACKAGE), "exec")
        exec(code, module.__dict__)
        names = self._names

        def __getattr__(name: str) -> Any:
            if name in names:
                return importlib.import_module(f"{PROVIDER_PACKAGE}.{name}")
            raise AttributeError(f"module {PROVIDER_PACKAGE!r} has no attribute {name!r}")

        # `publication.publish()` in the head swaps in a new module object under this
        # name, so the hook goes on whichever object the import system now holds.
        published = sys.modules.get(PROVIDER_PACKAGE, module)
        for target in {id(module): module, id(published): published}.values():
            target.__getattr__ = __getattr__  # type: ignore[method-assign]


class _LazyProviderFinder(importlib.abc.MetaPathFinder):
    """Intercepts only the provider's top-level package import."""

    def find_spec(
        self, fullname: str, path: Any = None, target: types.ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        if fullname != PROVIDER_PACKAGE:
            return None
        spec = importlib.machinery.PathFinder.find_spec(fullname, path)
        if spec is None or not isinstance(spec.loader, importlib.machinery.SourceFileLoader):
            return spec
        source = spec.loader.get_source(fullname)
        split = split_package_source(source or "")
        if split is None:
            print(
                f"warning: {PROVIDER_PACKAGE}/__init__.py has an unexpected layout; "
                "falling back to eager provider imports (slower, same output)",
                file=sys.stderr,
            )
            return spec
        spec.loader = _LazyPackageLoader(spec.loader, *split)
        return spec


_FINDER = _LazyProviderFinder()


def install() -> bool:
    """Install the lazy hook once; returns whether lazy loading is active.

    A no-op when eager imports are requested or a provider (cdktf's or cdktn's) is already
    imported.
    """
    if eager_requested():
        return False
    if PROVIDER_PACKAGE in sys.modules or CDKTN_PROVIDER_PACKAGE in sys.modules:
        return _FINDER in sys.meta_path
    if _FINDER not in sys.meta_path:
        sys.meta_path.insert(0, _FINDER)
    _memoize_stub_type_hints()
    return True


_JSII_MODULES = frozenset(
    {PROVIDER_PACKAGE, CDKTN_PROVIDER_PACKAGE, "cdktf", "cdktn", "constructs"}
)
_STUB_PREFIX = "_typecheckingstub__"


def _memoize_stub_type_hints() -> None:
    """Cache typing.get_type_hints for jsii's generated `_typecheckingstub__*` functions.

    The stubs are module-level functions whose annotations never change, and the generated
    callers only read the returned dict. Any other call goes to the original unchanged.
    """
    original = typing.get_type_hints
    if getattr(original, "_ai_workflow_memoized", False):
        return
    cache: dict[Any, dict[str, Any]] = {}

    def get_type_hints(
        obj: Any, globalns: Any = None, localns: Any = None, include_extras: bool = False
    ) -> dict[str, Any]:
        if (
            globalns is None
            and localns is None
            and not include_extras
            and isinstance(obj, types.FunctionType)
            and obj.__name__.startswith(_STUB_PREFIX)
            and obj.__module__.partition(".")[0] in _JSII_MODULES
        ):
            hints = cache.get(obj)
            if hints is None:
                hints = cache[obj] = original(obj)
            return hints
        return original(obj, globalns, localns, include_extras)

    get_type_hints._ai_workflow_memoized = True  # type: ignore[attr-defined]
    get_type_hints.__wrapped__ = original  # type: ignore[attr-defined]
    typing.get_type_hints = get_type_hints
