"""Wiring of ``OpsApiFunction``: the environment, one boto3 session, the adapters, the service.

Built once per execution environment (cold start) except the service, which is made
per call around the current configuration document (the loader caches it for 60 s, so
an edit applies within a minute without a new environment).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache

from aws_lambda_powertools.utilities.parameters import SSMProvider

from ops_api.adapters.aws import Ec2Instances, SsmCommands
from ops_api.adapters.settings_store import load_settings
from ops_api.domain.service import OpsService
from ops_api.environment import OpsApiConfig
from selfservice_contracts.events import OpsCommandExecuted
from selfservice_runtime.clients import REQUEST_RETRIES, ClientFactory
from selfservice_runtime.config import load_config
from selfservice_runtime.publisher import EventBridgePublisher

__all__ = ["Adapters", "adapters", "config", "service"]


@cache
def config() -> OpsApiConfig:
    """The validated environment, loaded once per execution environment (cold start)."""
    return load_config(OpsApiConfig)


@dataclass(frozen=True)
class Adapters:
    """Everything that talks to AWS, built once per execution environment."""

    ssm: SSMProvider
    instances: Ec2Instances
    commands: SsmCommands
    publisher: EventBridgePublisher


@cache
def adapters() -> Adapters:
    """The adapters, on one boto3 session and its clients (the request retry policy)."""
    environment = config()
    clients = ClientFactory(retries=REQUEST_RETRIES)  # a caller is waiting
    ssm = clients.ssm()  # Parameter Store and Run Command: one client
    return Adapters(
        ssm=SSMProvider(boto3_client=ssm),
        instances=Ec2Instances(clients.ec2()),
        commands=SsmCommands(ssm),
        # The audit event carries the X-Ray trace header (the publisher's default).
        publisher=EventBridgePublisher(clients.events(), environment.event_bus_name),
    )


def service(on_audit_failure: Callable[[OpsCommandExecuted, Exception], None]) -> OpsService:
    """The domain service around the current configuration document.

    ``on_audit_failure`` reports an audit event that could not be published (the
    handler counts it and logs the record).
    """
    environment = config()
    aws = adapters()
    return OpsService(
        settings=load_settings(aws.ssm, environment.ops_config_parameter),
        instances=aws.instances,
        commands=aws.commands,
        publisher=aws.publisher,
        allow_tag=(environment.allow_tag_key, environment.allow_tag_value),
        on_audit_failure=on_audit_failure,
    )
