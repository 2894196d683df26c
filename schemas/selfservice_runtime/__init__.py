"""selfservice runtime: what every function uses to move the contracts across AWS.

The sibling of :mod:`selfservice_contracts` (the shapes), shipped in the same Lambda
layer: the EventBridge publisher, deduplication on DynamoDB, the SQS batch processor,
the validated environment (:mod:`~selfservice_runtime.config`), the configuration
document loader, the strict JSON body parser and the metric catalog with its helpers.
"""

from selfservice_runtime.config import (
    ConfigurationError,
    FunctionConfig,
    env_var_names,
    load_config,
)
from selfservice_runtime.publisher import (
    EventBridgePublisher,
    EventPublisher,
    InMemoryPublisher,
    PublishError,
)

__all__ = [
    "ConfigurationError",
    "EventBridgePublisher",
    "EventPublisher",
    "FunctionConfig",
    "InMemoryPublisher",
    "PublishError",
    "env_var_names",
    "load_config",
]
