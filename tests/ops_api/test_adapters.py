"""The SSM adapter reads associations as DescribeAssociation answers (moto has no associations)."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from ops_api.adapters.aws import SsmCommands
from ops_api.domain.models import AssociationTarget
from ops_api.domain.ports import AssociationNotFoundError

ASSOCIATION = "0f2c8a0e-1b2c-4d5e-8f90-123456789abc"


def test_an_association_is_read_with_its_document_parameters_and_targets() -> None:
    client = boto3.client(
        "ssm", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="x"
    )
    with Stubber(client) as stub:
        stub.add_response(
            "describe_association",
            {
                "AssociationDescription": {
                    "AssociationId": ASSOCIATION,
                    "Name": "AWS-RunShellScript",
                    "Parameters": {"commands": ["uptime"]},
                    "Targets": [
                        {"Key": "tag:App", "Values": ["shop"]},
                        {"Key": "InstanceIds", "Values": ["i-0123456789abcdef0"]},
                    ],
                    "TargetLocations": [{"Accounts": ["210987654321"]}],
                }
            },
            {"AssociationId": ASSOCIATION},
        )
        stub.add_client_error("describe_association", service_error_code="AssociationDoesNotExist")
        association = SsmCommands(client).association(ASSOCIATION)
        with pytest.raises(AssociationNotFoundError):
            SsmCommands(client).association(ASSOCIATION)
    assert association.document_name == "AWS-RunShellScript"
    assert association.parameters == {"commands": ["uptime"]}
    assert association.targets == (
        AssociationTarget("tag:App", ("shop",)),
        AssociationTarget("InstanceIds", ("i-0123456789abcdef0",)),
    )
    assert association.elsewhere  # another account: the API refuses what it cannot check
