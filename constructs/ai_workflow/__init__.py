"""cdktf constructs for event-driven AI workflows on Google Cloud.

Importing this package first installs the lazy provider loader (see lazy_provider), so
only the provider submodules the constructs use are loaded.
"""

from . import lazy_provider

lazy_provider.install()

from .config import (  # noqa: E402
    EnvironmentConfig,
    RouteConfig,
    WorkflowConfig,
    load_environment,
    load_environments,
)
from .errors import ConfigError  # noqa: E402

__all__ = [
    "ConfigError",
    "EnvironmentConfig",
    "RouteConfig",
    "WorkflowConfig",
    "load_environment",
    "load_environments",
]
