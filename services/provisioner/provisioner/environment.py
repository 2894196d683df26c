"""The environment of the provisioner functions, validated: exactly what their template sets."""

from typing import Annotated

from pydantic import Field

from selfservice_runtime.config import FunctionConfig


class ProvisionerConfig(FunctionConfig):
    """Environment shared by the provisioner's functions (sam/provisioner.yaml Globals)."""

    event_bus_name: str
    """Bus the lifecycle events are published to."""
    ledger_table_name: str
    """DynamoDB request ledger (one item per ticket instance and product)."""
    idempotency_table_name: str
    """DynamoDB table keyed on CloudEvent source + id."""
    artifacts_bucket_name: str
    """S3 bucket for tfvars documents and Terraform outputs."""
    codebuild_project_name: str
    """CodeBuild project that runs the Terraform buildspec."""


class BuildDriverConfig(ProvisionerConfig):
    """Environment of the functions that start builds and read the configuration document."""

    provisioner_config_parameter: str
    """SSM parameter holding the provisioner's configuration document (plan guardrails)."""


class RequestConsumerConfig(BuildDriverConfig):
    """Environment of ``RequestConsumerFunction``."""


class BuildEventsConfig(BuildDriverConfig):
    """Environment of ``BuildEventsFunction`` (it starts the next waiting serial build)."""


class StuckTicketsConfig(ProvisionerConfig):
    """Environment of ``StuckTicketsFunction`` (it reads the ledger's in-flight index)."""

    stuck_after_minutes: Annotated[int, Field(ge=1, le=7 * 24 * 60)]
    """A request queued or building for longer than this is stuck (``StuckThresholdMinutes``)."""
