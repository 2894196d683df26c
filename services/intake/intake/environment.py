"""The environment of the intake functions, validated: exactly what their template sets."""

from selfservice_runtime.config import FunctionConfig


class WebhookConfig(FunctionConfig):
    """Environment of ``WebhookFunction`` (sam/intake.yaml). Secret *ids*, never values."""

    event_bus_name: str
    """Bus the request events are published to."""
    idempotency_table_name: str
    """DynamoDB table that remembers deliveries already accepted (deduplication)."""
    intake_config_parameter: str
    """SSM parameter holding the intake configuration document (mappings, policies)."""
    servicenow_hmac_secret_id: str
    """Secret (Secrets Manager id/ARN or SSM SecureString name) of the ServiceNow HMAC key."""
    servicenow_basic_auth_secret_id: str
    """Secret of the ServiceNow basic-auth credentials (used when enabled)."""
    jira_webhook_secret_id: str
    """Secret of the Jira admin webhook (X-Hub-Signature)."""
    jira_automation_token_secret_id: str
    """Secret of the Jira Automation token header (used when enabled)."""
