"""Configuration: the one Settings object and process-wide logging set-up."""

from apex.config.settings import (
    Environment,
    InsecureConfiguration,
    LlmProvider,
    Settings,
    describe_validation_error,
    load_settings,
)

__all__ = [
    "Environment",
    "InsecureConfiguration",
    "LlmProvider",
    "Settings",
    "describe_validation_error",
    "load_settings",
]
