"""Environment of the notifier functions: exactly the variables their template sets."""

from selfservice_runtime.config import FunctionConfig


class WriteBackConfig(FunctionConfig):
    """Environment of ``WriteBackFunction`` (sam/notifier.yaml). Secret *ids*, never values."""

    event_bus_name: str
    """Bus the ticket-updated / write-back-failed events are published to."""
    idempotency_table_name: str
    """DynamoDB table holding one marker per processed event."""
    notifier_config_parameter: str
    """SSM parameter holding the notifier configuration document."""
    servicenow_credentials_secret_id: str
    """Secret with {"username", "password"} (basic) or the OAuth client id and secret."""
    jira_credentials_secret_id: str
    """Secret with {"username": account e-mail, "password": API token}."""
    write_back_dlq_url: str
    """Where permanently refused write-backs are parked at once (for a later redrive)."""
    max_receive_count: int
    """The queue's maxReceiveCount: the receive on which a failure is declared final."""
