"""selfservice contracts: the canonical request, event data, typed CloudEvents, envelopes.

This package is shared by every service (deployed in the contracts Lambda layer) and
by the CLI. It holds only shapes — pydantic models, the CloudEvents envelope, the names
a DLQ message's reason travels under — and imports neither boto3 nor Powertools
(``tests/contract/test_packages.py``), so any consumer can import it. What moves the
shapes across AWS at run time (the EventBridge publisher, deduplication, the SQS batch
processor, the environment and settings loaders, observability) is its sibling
:mod:`selfservice_runtime`, shipped in the same layer.
"""

from selfservice_contracts.envelope import (
    ContractError,
    build_event,
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
    "ContractError",
    "EventSpec",
    "ProvisioningRequest",
    "Requester",
    "Service",
    "TicketRef",
    "TicketSystem",
    "build_event",
    "derive_request_id",
    "event_adapter",
    "spec_for_data",
    "spec_for_type",
    "to_cloudevent",
    "to_eventbridge_entry",
    "to_structured_json",
]
