"""selfservice contracts: the canonical request, event data, typed CloudEvents, envelopes.

This package is shared by every service (deployed as the contracts Lambda layer) and
by the CLI. It holds no business logic: only the shapes services agree on and the
helpers that move them across EventBridge and SQS.
"""

from selfservice_contracts.config import (
    ConfigurationError,
    FunctionConfig,
    env_var_names,
    load_config,
)
from selfservice_contracts.envelope import (
    ContractError,
    build_event,
    parse_eventbridge_event,
    parse_sqs_body,
    to_cloudevent,
    to_eventbridge_entry,
    to_structured_json,
)
from selfservice_contracts.events import (
    EVENT_CATALOG,
    AnyEvent,
    EventSpec,
    Service,
    event_adapter,
    spec_for_data,
    spec_for_type,
)
from selfservice_contracts.publisher import (
    EventBridgePublisher,
    EventPublisher,
    InMemoryPublisher,
    PublishError,
)
from selfservice_contracts.request import (
    Action,
    ApprovalState,
    ProvisioningRequest,
    Requester,
    TicketRef,
    TicketSystem,
    derive_request_id,
)

__all__ = [
    "EVENT_CATALOG",
    "Action",
    "AnyEvent",
    "ApprovalState",
    "ConfigurationError",
    "ContractError",
    "EventBridgePublisher",
    "EventPublisher",
    "EventSpec",
    "FunctionConfig",
    "InMemoryPublisher",
    "ProvisioningRequest",
    "PublishError",
    "Requester",
    "Service",
    "TicketRef",
    "TicketSystem",
    "build_event",
    "derive_request_id",
    "env_var_names",
    "event_adapter",
    "load_config",
    "parse_eventbridge_event",
    "parse_sqs_body",
    "spec_for_data",
    "spec_for_type",
    "to_cloudevent",
    "to_eventbridge_entry",
    "to_structured_json",
]
