"""The app layer: settings files, stack assembly, synth with its all-or-nothing output.

Loading and validating settings (`load_environment`, `load_environments`) is plain Python
and starts no Node process; `stack` and `synth` use the construct library (`ai_workflow`).
"""

from ai_workflow.errors import ConfigError

from .config import EnvironmentConfig, WorkflowConfig, load_environment, load_environments

__all__ = [
    "ConfigError",
    "EnvironmentConfig",
    "WorkflowConfig",
    "load_environment",
    "load_environments",
]
