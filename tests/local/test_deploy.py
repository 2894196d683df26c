"""The platform deploys into the embedded AWS from the templates alone."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from selfservice.local.deploy import Deployment, DeploymentError, deploy_platform
from selfservice.local.moto_server import EmbeddedAws
from selfservice.templates import load_platform, load_template
from selfservice_contracts.envelope import to_eventbridge_entry
from selfservice_contracts.events import EVENT_CATALOG, Service
from selfservice_runtime.parsing import parse_eventbridge_event
from tests.aws import endpoint_client
from tests.conftest import ROOT

CONSUMER_QUEUES = {
    Service.PROVISIONER: ("selfservice-Provisioner", "RequestQueue"),
    Service.NOTIFIER: ("selfservice-Notifier", "WriteBackQueue"),
}


@pytest.fixture(scope="module")
def deployed() -> Iterator[tuple[EmbeddedAws, Deployment]]:
    with EmbeddedAws() as aws:
        yield aws, deploy_platform(load_platform(ROOT / "template.yaml"), endpoint_url=aws.endpoint)


def _stack(deployment: Deployment, name: str) -> Any:
    return next(s for s in deployment.stacks() if s.name == name)


def test_every_queue_table_and_rule_of_the_templates_exists(
    deployed: tuple[EmbeddedAws, Deployment],
) -> None:
    aws, deployment = deployed
    sqs, dynamodb, events = (
        endpoint_client("sqs", aws.endpoint),
        endpoint_client("dynamodb", aws.endpoint),
        endpoint_client("events", aws.endpoint),
    )
    queues = set(sqs.list_queues()["QueueUrls"])
    tables = set(dynamodb.list_tables()["TableNames"])
    expected_queues = expected_tables = 0
    for stack in deployment.stacks():
        for logical, resource in stack.template.resources().items():
            if resource["Type"] == "AWS::SQS::Queue":
                expected_queues += 1
                assert stack.refs[logical] in queues, logical
                redrive = resource["Properties"].get("RedrivePolicy")
                if redrive:
                    attributes = sqs.get_queue_attributes(
                        QueueUrl=stack.refs[logical], AttributeNames=["All"]
                    )["Attributes"]
                    assert (
                        json.loads(attributes["RedrivePolicy"])["maxReceiveCount"]
                        == redrive["maxReceiveCount"]
                    )
            if resource["Type"] == "AWS::DynamoDB::Table":
                expected_tables += 1
                assert stack.refs[logical] in tables, logical
            if resource["Type"] == "AWS::Events::Rule":
                # The root stack names its bus by Ref; the services by their parameter.
                bus = (
                    resource["Properties"].get("EventBusName")
                    and stack.parameters.get("EventBusName", stack.refs.get("EventBus"))
                ) or "default"
                targets = events.list_targets_by_rule(Rule=stack.refs[logical], EventBusName=bus)[
                    "Targets"
                ]
                assert len(targets) == len(resource["Properties"]["Targets"]), logical
    assert expected_queues >= 8
    assert expected_tables == 4
    notifier = _stack(deployment, "selfservice-Notifier")
    attributes = sqs.get_queue_attributes(
        QueueUrl=notifier.refs["WriteBackQueue"], AttributeNames=["All"]
    )["Attributes"]
    assert attributes["FifoQueue"] == "true"
    assert (
        endpoint_client("events", aws.endpoint)
        .describe_archive(ArchiveName=deployment.root.refs["EventArchive"])["EventSourceArn"]
        .endswith(":event-bus/selfservice-bus")
    )


def test_function_environments_name_real_resources(
    deployed: tuple[EmbeddedAws, Deployment],
) -> None:
    aws, deployment = deployed
    tables = set(endpoint_client("dynamodb", aws.endpoint).list_tables()["TableNames"])
    for stack in deployment.stacks():
        for spec in stack.functions:
            env = stack.environments[spec.logical_id]
            assert set(env) == set(spec.environment)
            assert not [v for v in env.values() if "{" in v or "Ref" in v], spec.logical_id
            assert env["EVENT_BUS_NAME"] == "selfservice-bus"
            for name, value in env.items():
                if name.endswith("_TABLE_NAME"):
                    assert value in tables, (spec.logical_id, name)
    secret_id = deployment.function("WebhookFunction")[1]["SERVICENOW_HMAC_SECRET_ID"]
    secret = json.loads(
        endpoint_client("secretsmanager", aws.endpoint).get_secret_value(SecretId=secret_id)[
            "SecretString"
        ]
    )
    assert len(secret["current"]) == 48  # generated as the template asks
    parameter = deployment.function("WebhookFunction")[1]["INTAKE_CONFIG_PARAMETER"]
    assert (
        endpoint_client("ssm", aws.endpoint).get_parameter(Name=parameter)["Parameter"]["Value"]
        == '{"version": 1}'
    )


def test_the_deployed_rules_route_each_event_to_its_catalogued_consumers(
    deployed: tuple[EmbeddedAws, Deployment],
) -> None:
    aws, deployment = deployed
    events, sqs = endpoint_client("events", aws.endpoint), endpoint_client("sqs", aws.endpoint)
    for spec in EVENT_CATALOG:
        event = parse_eventbridge_event((ROOT / "events/catalog" / spec.schema_file).read_text())
        entry = to_eventbridge_entry(event, event_bus_name="selfservice-bus")
        assert events.put_events(Entries=[entry])["FailedEntryCount"] == 0
        time.sleep(0.05)
        for service, (stack_name, queue) in CONSUMER_QUEUES.items():
            url = _stack(deployment, stack_name).refs[queue]
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            for message in messages:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
            received = [parse_eventbridge_event(m["Body"]).type for m in messages]
            expected = [spec.type] if service in spec.consumers else []
            assert received == expected, (spec.type, service)


def test_an_unknown_resource_type_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "template.yaml"
    path.write_text(
        "AWSTemplateFormatVersion: '2010-09-09'\n"
        "Resources:\n  Thing:\n    Type: AWS::Kinesis::Stream\n    Properties: {ShardCount: 1}\n"
    )
    with (
        EmbeddedAws() as aws,
        pytest.raises(DeploymentError, match="Thing: AWS::Kinesis::Stream cannot"),
    ):
        deploy_platform(load_template(path), endpoint_url=aws.endpoint)


def test_the_ledgers_in_flight_index_and_every_alarm_are_deployed(
    deployed: tuple[EmbeddedAws, Deployment],
) -> None:
    aws, deployment = deployed
    ledger = _stack(deployment, "selfservice-Provisioner").refs["LedgerTable"]
    table = endpoint_client("dynamodb", aws.endpoint).describe_table(TableName=ledger)["Table"]
    assert [i["IndexName"] for i in table["GlobalSecondaryIndexes"]] == [
        "InFlightByState",
        "CommittedCostByScope",
    ]
    cloudwatch = endpoint_client("cloudwatch", aws.endpoint)
    alarms = {
        alarm["AlarmName"]: alarm
        for page in cloudwatch.get_paginator("describe_alarms").paginate()
        for alarm in page["MetricAlarms"]
    }
    declared = 0
    for stack in deployment.stacks():
        for logical, resource in stack.template.resources("AWS::CloudWatch::Alarm").items():
            declared += 1
            alarm = alarms[stack.refs[logical]]
            properties = resource["Properties"]
            if "Metrics" in properties:  # metric math keeps its queries
                assert [m["Id"] for m in alarm["Metrics"]] == [
                    m["Id"] for m in properties["Metrics"]
                ], logical
            else:
                assert alarm["MetricName"] == properties["MetricName"], logical
    assert declared == len(alarms)


def test_the_dashboard_is_deployed_naming_every_deployed_alarm(
    deployed: tuple[EmbeddedAws, Deployment],
) -> None:
    aws, deployment = deployed
    cloudwatch = endpoint_client("cloudwatch", aws.endpoint)
    name = deployment.root.refs["Dashboard"]
    body = json.loads(cloudwatch.get_dashboard(DashboardName=name)["DashboardBody"])
    (widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    arns = {
        alarm["AlarmArn"]
        for page in cloudwatch.get_paginator("describe_alarms").paginate()
        for alarm in page["MetricAlarms"]
    }
    assert sorted(widget["properties"]["alarms"]) == sorted(arns)
    queues = {
        row[3]
        for w in body["widgets"]
        if w["type"] == "metric"
        for row in w["properties"]["metrics"]
        if row[0] == "AWS/SQS"
    }
    names = {
        url.rsplit("/", 1)[1]
        for url in endpoint_client("sqs", aws.endpoint).list_queues()["QueueUrls"]
    }
    assert queues <= names
    assert len(queues) == 6  # every DLQ of the platform


def test_the_alarm_topic_is_encrypted_with_its_own_rotated_key(
    deployed: tuple[EmbeddedAws, Deployment],
) -> None:
    aws, deployment = deployed
    kms, sns = endpoint_client("kms", aws.endpoint), endpoint_client("sns", aws.endpoint)
    key_id = deployment.root.refs["AlarmTopicKey"]
    topic = sns.get_topic_attributes(TopicArn=deployment.root.refs["AlarmTopic"])["Attributes"]
    assert topic["KmsMasterKeyId"] == key_id
    assert kms.get_key_rotation_status(KeyId=key_id)["KeyRotationEnabled"]
    policy = json.loads(kms.get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert any(
        s["Principal"].get("Service") == "cloudwatch.amazonaws.com" for s in policy["Statement"]
    )
    topic_policy = json.loads(topic["Policy"])
    assert [s["Principal"] for s in topic_policy["Statement"]] == [
        {"Service": "cloudwatch.amazonaws.com"}
    ]
    aliases = {a["AliasName"]: a.get("TargetKeyId") for a in kms.list_aliases()["Aliases"]}
    assert aliases["alias/selfservice-alarms"] == key_id


def test_only_the_root_stack_deploys_the_contracts_layer(
    deployed: tuple[EmbeddedAws, Deployment],
) -> None:
    _, deployment = deployed
    assert "ContractsLayer" in deployment.root.refs
    for stack in deployment.root.nested.values():
        assert stack.parameters["ContractsLayerArn"] == deployment.root.refs["ContractsLayer"]
        # Its condition is false when the parent passes a layer: not created, as in AWS.
        assert "ContractsLayer" not in stack.refs, stack.name


def test_the_embedded_aws_does_not_outlive_a_killed_parent(tmp_path: Path) -> None:
    """A parent killed outright (SIGKILL: no cleanup runs) takes its moto server along."""
    import signal  # noqa: PLC0415
    import subprocess  # noqa: PLC0415
    import sys  # noqa: PLC0415

    script = (
        "import sys, time\n"
        "from selfservice.local.moto_server import EmbeddedAws\n"
        "aws = EmbeddedAws().start()\n"
        "print(aws.port, flush=True)\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    port = int(parent.stdout.readline())
    url = f"http://127.0.0.1:{port}/moto-api/"
    import urllib.request  # noqa: PLC0415

    with urllib.request.urlopen(url, timeout=5):
        pass  # the server is up
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1):
                time.sleep(0.2)
        except OSError:
            return  # gone
    raise AssertionError("the moto server outlived its parent")
