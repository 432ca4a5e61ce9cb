"""cdktf constructs for event-driven AI workflows on Google Cloud.

Importing this package first installs the lazy provider loader (see lazy_provider), so
only the provider submodules the constructs use are loaded, and starts the jsii kernel
the fast way (see kernel_launch).
"""

from . import kernel_launch, lazy_provider

lazy_provider.install()
kernel_launch.start_kernel()

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
