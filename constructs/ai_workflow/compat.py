"""cdktf or CDK Terrain (cdktn): the one place that picks the framework and its Google provider.

    from ai_workflow import compat

    compat.NAME                 # "cdktf" or "cdktn"
    compat.PROVIDER_PACKAGE     # "cdktf_cdktf_provider_google" or "cdktn_provider_google"
    compat.cdk.TerraformStack   # from the core module: cdktf or cdktn
    compat.provider("pubsub_topic").PubsubTopic  # a submodule of the matching provider

The choice: AI_WORKFLOW_CDK=cdktf or AI_WORKFLOW_CDK=cdktn when set; otherwise cdktf when it
is installed, else cdktn. cdktn 0.24 keeps cdktf's class and submodule names, so code written
against either works on both; what differs is in the synthesized JSON (the provider's source
and version in required_providers, the framework version in "//" metadata) and the
manifest.json format (see ai_workflow_app.synth).

Importing this module imports neither framework: the choice is made, and the framework
imported, on the first use of NAME, PROVIDER_PACKAGE, cdk or provider(). A value of
AI_WORKFLOW_CDK other than cdktf or cdktn, or a framework that is not installed, raises
FrameworkError (a ConfigError) with one line saying what to do. `loaded_core()` never
imports anything, for code that must not start jsii (rules.is_token).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import sys
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import TYPE_CHECKING, Any

from .errors import ConfigError

ENV_VAR = "AI_WORKFLOW_CDK"
# Each framework's core package and its prebuilt Google provider (Python import names).
FRAMEWORKS = {"cdktf": "cdktf_cdktf_provider_google", "cdktn": "cdktn_provider_google"}
# Where each one's environment is installed by this project's Makefile.
_INSTALLED_BY = {"cdktf": "`make install` (.venv)", "cdktn": "`make test-cdktn` (.venv-cdktn)"}

if TYPE_CHECKING:
    # Type checkers see cdktf's API, which cdktn keeps name for name.
    import cdktf as cdk

    NAME: str
    PROVIDER_PACKAGE: str


class FrameworkError(ConfigError):
    """AI_WORKFLOW_CDK names no framework, or the one chosen is not installed (one line)."""

    def __init__(self, problem: str):
        super().__init__([problem])


def _installed(name: str) -> bool:
    """Whether top-level package `name` can be imported (finds it without importing it)."""
    return name in sys.modules or importlib.util.find_spec(name) is not None


def choose(
    environ: Mapping[str, str] = os.environ,
    installed: Callable[[str], bool] = _installed,
) -> str:
    """The framework to use: AI_WORKFLOW_CDK if set, else cdktf when installed, else cdktn."""
    wanted = environ.get(ENV_VAR, "").strip()
    if wanted:
        if wanted not in FRAMEWORKS:
            raise FrameworkError(f"{ENV_VAR}: got {wanted!r}, allowed cdktf or cdktn")
        if not installed(wanted):
            raise FrameworkError(
                f"{ENV_VAR}={wanted}: {wanted} is not installed for {sys.executable}; "
                f"{_INSTALLED_BY[wanted]} installs it"
            )
        return wanted
    for name in FRAMEWORKS:
        if installed(name):
            return name
    raise FrameworkError(
        f"neither cdktf nor cdktn is installed for {sys.executable}; "
        f"{_INSTALLED_BY['cdktf']} installs cdktf, {_INSTALLED_BY['cdktn']} cdktn"
    )


def provider(submodule: str) -> ModuleType:
    """A submodule of the chosen framework's Google provider, e.g. provider("pubsub_topic")."""
    return importlib.import_module(f"{_resolve('PROVIDER_PACKAGE')}.{submodule}")


def loaded_core() -> ModuleType | None:
    """The core module (cdktf or cdktn) if one is already imported, else None. Imports
    nothing and never raises: the chosen one first, once chosen."""
    chosen = globals().get("NAME")
    for name in (*([chosen] if chosen else []), *FRAMEWORKS):
        module = sys.modules.get(name)
        if module is not None:
            return module
    return None


def __getattr__(name: str) -> Any:
    """NAME, PROVIDER_PACKAGE and cdk, resolved on first use (PEP 562) and then kept."""
    if name not in {"NAME", "PROVIDER_PACKAGE", "cdk"}:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return _resolve(name)


def _resolve(name: str) -> Any:
    if name in globals():
        return globals()[name]
    framework = globals().get("NAME") or choose()
    values: dict[str, Any] = {"NAME": framework, "PROVIDER_PACKAGE": FRAMEWORKS[framework]}
    if name == "cdk":
        values["cdk"] = importlib.import_module(framework)
    globals().update(values)
    return values[name]


__all__ = [
    "ENV_VAR",
    "FRAMEWORKS",
    "NAME",
    "PROVIDER_PACKAGE",
    "FrameworkError",
    "cdk",
    "choose",
    "loaded_core",
    "provider",
]
