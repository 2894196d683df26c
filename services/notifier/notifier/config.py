"""Configuration of the notifier functions: exactly the environment their template sets."""

from selfservice_contracts.config import FunctionConfig


class WriteBackConfig(FunctionConfig):
    """Environment of ``WriteBackFunction`` (sam/notifier.yaml)."""

    event_bus_name: str
    """Bus the ticket-updated / write-back-failed events are published to."""
    idempotency_table_name: str
    """DynamoDB table holding one marker per written event (no duplicate comments)."""
