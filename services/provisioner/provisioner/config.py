"""Configuration of the provisioner functions: exactly the environment their template sets."""

from selfservice_contracts.config import FunctionConfig


class _ProvisionerConfig(FunctionConfig):
    event_bus_name: str
    """Bus the lifecycle events are published to."""
    ledger_table_name: str
    """DynamoDB request ledger (one item per ticket and product)."""
    idempotency_table_name: str
    """DynamoDB table keyed on CloudEvent source + id."""
    artifacts_bucket_name: str
    """S3 bucket for tfvars documents and Terraform outputs."""


class RequestConsumerConfig(_ProvisionerConfig):
    """Environment of ``RequestConsumerFunction`` (sam/provisioner.yaml)."""

    codebuild_project_name: str
    """CodeBuild project that runs the Terraform buildspec."""


class BuildEventsConfig(_ProvisionerConfig):
    """Environment of ``BuildEventsFunction`` (sam/provisioner.yaml)."""
