"""The templates: SAM transforms them, and the platform's invariants hold in every one.

Invariants (each would otherwise fail in production, silently): every queue has a DLQ
and every DLQ an alarm; queue policies are conditioned on the rule's ARN; SQS-fed
functions report partial batch failures; functions run python3.12+ on arm64 with X-Ray;
no IAM statement allows a wildcard action; a function may only publish its own source;
the rules route each event type to exactly the consumers the catalog names.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from samtranslator.parser.parser import Parser
from samtranslator.translator.translator import Translator

from provisioner.adapters.ledger_dynamodb import (
    COMMITTED_COST_INDEX,
    COST_SCOPE,
    IN_FLIGHT_INDEX,
    IN_FLIGHT_PROJECTION,
    IN_FLIGHT_SINCE,
    IN_FLIGHT_STATE,
)
from selfservice.templates import Template, load_platform
from selfservice_contracts.events import EVENT_CATALOG, Service
from selfservice_runtime.observability import (
    METRIC_CATALOG,
    NAMESPACE,
    Metric,
    spec_for_metric,
)
from tests.wiring.sam_package import packaged

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = load_platform(ROOT / "template.yaml")
TEMPLATES = list(PLATFORM.walk())
SERVICE_TEMPLATES = {t.path.stem: t for t in TEMPLATES if t.path.parent.name == "sam"}
PSEUDO_PARAMETERS = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::Partition": "aws",
    "AWS::StackName": "selfservice",
    "AWS::StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/selfservice/1",
    "AWS::URLSuffix": "amazonaws.com",
    "AWS::NotificationARNs": [],
}


def _ids(template: Template) -> str:
    return str(template.path.relative_to(ROOT))


def _as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def test_the_root_template_nests_the_four_services() -> None:
    assert set(SERVICE_TEMPLATES) == {"intake", "provisioner", "notifier", "ops-api"}
    assert len(TEMPLATES) == 5


@pytest.mark.parametrize("template", TEMPLATES, ids=_ids)
def test_sam_translator_transforms_the_template(template: Template) -> None:
    parameters = {
        name: spec.get("Default", "selfservice-bus")
        for name, spec in template.body.get("Parameters", {}).items()
    }
    translated = Translator(None, Parser()).translate(
        packaged(template.body),
        parameter_values={**parameters, **PSEUDO_PARAMETERS},
        get_managed_policy_map=lambda: {},
    )
    types = {resource["Type"] for resource in translated["Resources"].values()}
    assert not {t for t in types if t.startswith("AWS::Serverless::")}, types
    expected = "AWS::CloudFormation::Stack" if template is PLATFORM else "AWS::Lambda::Function"
    assert expected in types


def test_nested_templates_receive_every_required_parameter() -> None:
    for logical_id, resource in PLATFORM.resources("AWS::Serverless::Application").items():
        child = next(
            t
            for t in PLATFORM.nested
            if t.path.name == Path(resource["Properties"]["Location"]).name
        )
        given = set(resource["Properties"].get("Parameters", {}))
        declared = child.body.get("Parameters", {})
        required = {name for name, spec in declared.items() if "Default" not in spec}
        assert required <= given, f"{logical_id} does not pass {sorted(required - given)}"
        assert given <= set(declared), (
            f"{logical_id} passes unknown {sorted(given - set(declared))}"
        )


def test_the_bus_is_archived() -> None:
    buses = PLATFORM.resources("AWS::Events::EventBus")
    archives = PLATFORM.resources("AWS::Events::Archive")
    assert len(buses) == 1
    (bus_id,) = buses
    assert [a["Properties"]["SourceArn"] for a in archives.values()] == [
        {"Fn::GetAtt": [bus_id, "Arn"]}
    ]


@pytest.mark.parametrize("template", SERVICE_TEMPLATES.values(), ids=_ids)
def test_functions_run_python_3_12_plus_on_arm64_with_tracing(template: Template) -> None:
    for fn in template.functions():
        runtime = fn.properties["Runtime"]
        match = re.fullmatch(r"python3\.(\d+)", runtime)
        assert match, f"{fn.describe()}: runtime {runtime}"
        assert int(match.group(1)) >= 12, f"{fn.describe()}: runtime {runtime}"
        assert fn.properties["Architectures"] == ["arm64"], fn.describe()
        assert fn.properties["Tracing"] == "Active", fn.describe()
        env = fn.environment
        assert env["POWERTOOLS_SERVICE_NAME"] == template.path.stem, fn.describe()
        assert {"POWERTOOLS_LOG_LEVEL", "POWERTOOLS_METRICS_NAMESPACE"} <= set(env)
        assert "LogGroup" in fn.properties.get("LoggingConfig", {}), (
            f"{fn.describe()}: log retention"
        )
        assert fn.layers, f"{fn.describe()}: the contracts layer is missing"


def _refs(value: Any) -> Iterator[str]:
    """Logical ids referenced anywhere inside a value (Ref and GetAtt)."""
    if isinstance(value, dict):
        if "Ref" in value:
            yield value["Ref"]
        if "Fn::GetAtt" in value:
            target = value["Fn::GetAtt"]
            yield target[0] if isinstance(target, list) else target.split(".")[0]
        for item in value.values():
            yield from _refs(item)
    elif isinstance(value, list):
        for item in value:
            yield from _refs(item)


@pytest.mark.parametrize("template", SERVICE_TEMPLATES.values(), ids=_ids)
def test_sqs_functions_report_partial_batch_failures(template: Template) -> None:
    for fn in template.functions():
        sqs_events = [e for e in fn.events.values() if e["Type"] == "SQS"]
        for event in sqs_events:
            assert "ReportBatchItemFailures" in event["Properties"].get(
                "FunctionResponseTypes", []
            ), (
                f"{fn.describe()}: an SQS event source without ReportBatchItemFailures retries "
                "whole batches"
            )
        if sqs_events:
            # A function-level DLQ does nothing for SQS-invoked functions.
            assert "DeadLetterQueue" not in fn.properties, fn.describe()


@pytest.mark.parametrize("template", SERVICE_TEMPLATES.values(), ids=_ids)
def test_every_queue_has_a_dlq_and_every_dlq_an_alarm(template: Template) -> None:
    queues = template.resources("AWS::SQS::Queue")
    dlqs: set[str] = set()
    for logical_id, queue in queues.items():
        redrive = queue["Properties"].get("RedrivePolicy")
        if redrive:
            (dlq,) = _refs(redrive["deadLetterTargetArn"])
            dlqs.add(dlq)
            assert redrive["maxReceiveCount"] >= 3, logical_id
    for rule in template.resources("AWS::Events::Rule").values():
        for target in rule["Properties"]["Targets"]:
            assert "DeadLetterConfig" in target, f"rule target {target['Id']} has no DLQ"
            dlqs.update(_refs(target["DeadLetterConfig"]))
    consumes = any(e["Type"] == "SQS" for fn in template.functions() for e in fn.events.values())
    assert bool(queues) == consumes, "queues exist exactly where a function consumes them"
    undefended = (
        set(queues) - dlqs - {q for q, v in queues.items() if "RedrivePolicy" in v["Properties"]}
    )
    assert not undefended, f"queues that are neither redriven nor a DLQ: {sorted(undefended)}"
    alarmed = {
        ref
        for alarm in template.resources("AWS::CloudWatch::Alarm").values()
        for dimension in alarm["Properties"].get("Dimensions", [])
        for ref in _refs(dimension["Value"])
    }
    assert dlqs <= alarmed, f"DLQs without an alarm: {sorted(dlqs - alarmed)}"


@pytest.mark.parametrize("template", SERVICE_TEMPLATES.values(), ids=_ids)
def test_queue_policies_admit_only_their_rules(template: Template) -> None:
    rules_by_queue: dict[str, set[str]] = {}
    for rule_id, rule in template.resources("AWS::Events::Rule").items():
        for target in rule["Properties"]["Targets"]:
            for queue in [*_refs(target["Arn"]), *_refs(target.get("DeadLetterConfig", {}))]:
                rules_by_queue.setdefault(queue, set()).add(rule_id)
    policies = template.resources("AWS::SQS::QueuePolicy").values()
    for queue, rules in rules_by_queue.items():
        statements = [
            statement
            for policy in policies
            if queue in set(_refs(policy["Properties"]["Queues"]))
            for statement in policy["Properties"]["PolicyDocument"]["Statement"]
        ]
        assert statements, f"{queue} is a rule target without a queue policy"
        for statement in statements:
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}
            source_arns = statement["Condition"]["ArnEquals"]["aws:SourceArn"]
            assert set(_refs(source_arns)) == rules, f"{queue}: policy not limited to {rules}"


def _allow_statements(template: Template) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in template.resources().items():
        properties = resource.get("Properties", {})
        documents = []
        for policy in properties.get("Policies", []):
            if isinstance(policy, dict) and "Statement" in policy:
                documents.append(policy)
            elif isinstance(policy, dict) and "PolicyDocument" in policy:
                documents.append(policy["PolicyDocument"])
        if resource["Type"] in {
            "AWS::IAM::Policy",
            "AWS::IAM::RolePolicy",
            "AWS::IAM::ManagedPolicy",
        }:
            document = properties["PolicyDocument"]
            if isinstance(document, dict) and "Fn::Sub" in document:
                document = json.loads(document["Fn::Sub"])
            documents.append(document)
        for document in documents:
            for statement in document["Statement"]:
                # A conditional statement ({"Fn::If": [cond, then, else]}) is checked in
                # both branches; AWS::NoValue stands for no statement.
                branches = statement["Fn::If"][1:] if "Fn::If" in statement else [statement]
                for branch in branches:
                    if isinstance(branch, dict) and branch.get("Effect") == "Allow":
                        yield logical_id, branch


@pytest.mark.parametrize("template", SERVICE_TEMPLATES.values(), ids=_ids)
def test_iam_is_least_privilege(template: Template) -> None:
    statements = list(_allow_statements(template))
    assert statements
    for logical_id, statement in statements:
        actions = _as_list(statement["Action"])
        assert not [a for a in actions if "*" in a], f"{logical_id}: wildcard action in {actions}"
        if statement.get("Resource") == "*":
            # Only actions that support no resource-level permissions may use "*".
            allowed = {
                "ssm:GetCommandInvocation",
                "ssm:ListCommandInvocations",
                "ec2:DescribeInstances",
                # An explicit execution role's tracing (Tracing: Active); X-Ray defines no
                # resource types for these (the Service Authorization Reference).
                "xray:PutTraceSegments",
                "xray:PutTelemetryRecords",
            }
            assert set(actions) <= allowed, f"{logical_id}: {actions} on *"


# Functions that publish no event, and so are granted no events:PutEvents.
NON_PUBLISHERS = {"StuckTicketsFunction"}


@pytest.mark.parametrize("template", SERVICE_TEMPLATES.values(), ids=_ids)
def test_functions_publish_only_their_own_source(template: Template) -> None:
    service = Service(template.path.stem)
    # An explicit execution role's statements are its function's.
    role_of = {
        fn.properties["Role"]["Fn::GetAtt"][0]: fn.logical_id
        for fn in template.functions()
        if isinstance(fn.properties.get("Role"), dict) and "Fn::GetAtt" in fn.properties["Role"]
    }
    publishers = []
    for logical_id, statement in _allow_statements(template):
        if "events:PutEvents" in _as_list(statement["Action"]):
            publishers.append(role_of.get(logical_id, logical_id))
            condition = statement.get("Condition", {}).get("StringEquals", {})
            assert condition.get("events:source") == service.source, logical_id
    functions = {fn.logical_id for fn in template.functions()}
    assert sorted(publishers) == sorted(functions - NON_PUBLISHERS)


def test_http_apis_are_throttled_and_ops_requires_iam() -> None:
    for template in SERVICE_TEMPLATES.values():
        for logical_id, api in template.resources("AWS::Serverless::HttpApi").items():
            settings = api["Properties"]["DefaultRouteSettings"]
            assert {"ThrottlingRateLimit", "ThrottlingBurstLimit"} <= set(settings), logical_id
            assert "AccessLogSettings" in api["Properties"], logical_id
    (ops_api,) = SERVICE_TEMPLATES["ops-api"].resources("AWS::Serverless::HttpApi").values()
    assert ops_api["Properties"]["Auth"]["DefaultAuthorizer"] == "AWS_IAM"


def test_rules_route_each_event_type_to_exactly_its_catalogued_consumers() -> None:
    routed: dict[str, set[Service]] = {}
    for name, template in SERVICE_TEMPLATES.items():
        for rule in template.resources("AWS::Events::Rule").values():
            for detail_type in rule["Properties"]["EventPattern"].get("detail-type", []):
                routed.setdefault(detail_type, set()).add(Service(name))
    for spec in EVENT_CATALOG:
        assert routed.pop(spec.type, set()) == set(spec.consumers), spec.type
    # Anything left is routed but not one of ours: only AWS's own events may be.
    assert set(routed) == {"CodeBuild Build State Change"}


def test_the_notifier_knows_its_queues_max_receive_count() -> None:
    template = SERVICE_TEMPLATES["notifier"]
    (function,) = template.functions()
    queue = template.resources("AWS::SQS::Queue")["WriteBackQueue"]
    assert (
        int(function.environment["MAX_RECEIVE_COUNT"])
        == queue["Properties"]["RedrivePolicy"]["maxReceiveCount"]
    )


def _bus_rules() -> Iterator[tuple[str, str, dict[str, Any]]]:
    """(template, logical id, rule) for every rule on the platform's bus (not AWS's)."""
    for template in TEMPLATES:
        for logical, rule in template.resources("AWS::Events::Rule").items():
            if rule["Properties"].get("EventBusName"):
                yield template.path.stem, logical, rule


def _without_replay(pattern: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in pattern.items() if k != "replay-name"}


def test_replays_reach_consumers_only_when_reprocessing_is_asked_for() -> None:
    """An audit replay provisions and writes back nothing; `--reprocess` reaches both."""
    live: dict[str, dict[str, Any]] = {}
    reprocess: dict[str, dict[str, Any]] = {}
    for stem, logical, rule in _bus_rules():
        pattern = rule["Properties"]["EventPattern"]
        replay = pattern.get("replay-name")
        assert replay in ([{"exists": False}], [{"prefix": "reprocess-"}]), (stem, logical)
        (live if replay == [{"exists": False}] else reprocess)[f"{stem}/{logical}"] = rule
    assert sorted(reprocess) == [
        "notifier/LifecycleReprocessRule",
        "provisioner/RequestReprocessRule",
    ]
    for key, rule in reprocess.items():
        twin = live[key.replace("ReprocessRule", "Rule")]["Properties"]
        props = rule["Properties"]
        assert _without_replay(props["EventPattern"]) == _without_replay(twin["EventPattern"])
        assert [t["Arn"] for t in props["Targets"]] == [t["Arn"] for t in twin["Targets"]], key
    assert "template/AuditTrailRule" in live


def test_the_ledgers_in_flight_index_is_the_one_the_stuck_check_queries() -> None:
    template = SERVICE_TEMPLATES["provisioner"]
    table = template.resources("AWS::DynamoDB::Table")["LedgerTable"]["Properties"]
    (index,) = [i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == IN_FLIGHT_INDEX]
    assert index["KeySchema"] == [
        {"AttributeName": IN_FLIGHT_STATE, "KeyType": "HASH"},
        {"AttributeName": IN_FLIGHT_SINCE, "KeyType": "RANGE"},
    ]
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert (types[IN_FLIGHT_STATE], types[IN_FLIGHT_SINCE]) == ("S", "N")
    assert index["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": list(IN_FLIGHT_PROJECTION),
    }
    (function,) = [f for f in template.functions() if f.logical_id == "StuckTicketsFunction"]
    (statement,) = [s for policy in function.properties["Policies"] for s in policy["Statement"]]
    assert statement["Action"] == "dynamodb:Query"  # reads the index, nothing else
    assert statement["Resource"] == {"Fn::Sub": f"${{LedgerTable.Arn}}/index/{IN_FLIGHT_INDEX}"}


def _statements(template: Any, role: str) -> list[dict[str, Any]]:
    properties = template.resources("AWS::IAM::Role")[role]["Properties"]
    return [s for policy in properties["Policies"] for s in policy["PolicyDocument"]["Statement"]]


def test_the_committed_cost_index_is_the_one_the_budget_queries_and_only_queried() -> None:
    template = SERVICE_TEMPLATES["provisioner"]
    table = template.resources("AWS::DynamoDB::Table")["LedgerTable"]["Properties"]
    (index,) = [
        i for i in table["GlobalSecondaryIndexes"] if i["IndexName"] == COMMITTED_COST_INDEX
    ]
    assert index["KeySchema"] == [{"AttributeName": COST_SCOPE, "KeyType": "HASH"}]
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    assert types[COST_SCOPE] == "S"
    assert index["Projection"] == {
        "ProjectionType": "INCLUDE",
        "NonKeyAttributes": ["monthly_cost"],
    }
    # Both functions that start builds sum it for the review input, with a Query on it alone.
    for role in ("RequestConsumerFunctionRole", "BuildEventsFunctionRole"):
        (statement,) = [s for s in _statements(template, role) if s["Sid"] == "CommittedCost"]
        assert statement["Action"] == "dynamodb:Query", role
        assert statement["Resource"] == {
            "Fn::Sub": f"${{LedgerTable.Arn}}/index/{COMMITTED_COST_INDEX}"
        }, role


def test_the_build_reads_plans_and_writes_reviews_and_build_events_read_them() -> None:
    template = SERVICE_TEMPLATES["provisioner"]

    def granted(role: str, action: str) -> set[str]:
        return {
            str(resource["Fn::Sub"]) if isinstance(resource, dict) else str(resource)
            for s in _statements(template, role)
            if action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])
            for resource in (
                [s["Resource"]] if not isinstance(s["Resource"], list) else s["Resource"]
            )
            if isinstance(resource, dict) and "Fn::Sub" in resource
        }

    build = "ProvisionProjectRole"
    assert "${ArtifactsBucket.Arn}/plans/*" in granted(build, "s3:GetObject")
    assert "${ArtifactsBucket.Arn}/tfvars/*" in granted(build, "s3:GetObject")
    assert "${ArtifactsBucket.Arn}/reviews/*" in granted(build, "s3:PutObject")
    assert "${ArtifactsBucket.Arn}/reviews/*" not in granted(build, "s3:GetObject")
    events = "BuildEventsFunctionRole"
    assert "${ArtifactsBucket.Arn}/reviews/*" in granted(events, "s3:GetObject")
    assert "${ArtifactsBucket.Arn}/reviews/*" not in granted(events, "s3:PutObject")


def test_a_ticket_is_stuck_only_after_codebuild_must_have_reported_its_build() -> None:
    template = SERVICE_TEMPLATES["provisioner"]
    project = template.resources("AWS::CodeBuild::Project")["ProvisionProject"]["Properties"]
    longest_build = project["TimeoutInMinutes"] + project["QueuedTimeoutInMinutes"]
    threshold = template.body["Parameters"]["StuckThresholdMinutes"]
    assert threshold["Default"] > longest_build
    (function,) = [f for f in template.functions() if f.logical_id == "StuckTicketsFunction"]
    assert function.environment["STUCK_AFTER_MINUTES"] == {"Ref": "StuckThresholdMinutes"}
    (schedule,) = function.events.values()
    assert schedule["Type"] == "ScheduleV2"
    assert schedule["Properties"]["ScheduleExpression"] == "rate(5 minutes)"
    # One check at a time (a run ends before the next starts), and a failed run is not
    # retried: the next run is.
    assert function.properties["Timeout"] < 5 * 60
    assert function.properties["EventInvokeConfig"]["MaximumRetryAttempts"] == 0


# -- alarms and the dashboard -----------------------------------------------------------

RUNBOOK = (ROOT / "docs/runbook.md").read_text()
NOTIFY_THE_TOPIC = {
    "Fn::If": ["HasAlarmTopic", [{"Ref": "AlarmTopicArn"}], {"Ref": "AWS::NoValue"}]
}


def _slug(heading: str) -> str:
    """GitHub's anchor for a Markdown heading."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


RUNBOOK_ANCHORS = {_slug(h) for h in re.findall(r"^## (.+)$", RUNBOOK, flags=re.MULTILINE)}


def _alarm_metrics(alarm: dict[str, Any]) -> list[dict[str, Any]]:
    """The metrics an alarm reads, simple or metric math."""
    properties = alarm["Properties"]
    if "Metrics" in properties:
        return [q["MetricStat"]["Metric"] for q in properties["Metrics"] if "MetricStat" in q]
    return [
        {
            "Namespace": properties["Namespace"],
            "MetricName": properties["MetricName"],
            "Dimensions": properties.get("Dimensions", []),
        }
    ]


@pytest.mark.parametrize("template", TEMPLATES, ids=_ids)
def test_every_alarm_pages_the_topic_and_has_a_runbook_entry(template: Template) -> None:
    for logical_id, alarm in template.resources("AWS::CloudWatch::Alarm").items():
        properties = alarm["Properties"]
        if template is PLATFORM:
            assert properties["AlarmActions"] == [{"Ref": "AlarmTopic"}], logical_id
        else:
            assert properties["AlarmActions"] == NOTIFY_THE_TOPIC, logical_id
        description = properties["AlarmDescription"]
        assert "docs/runbook.md" in description, logical_id
        anchors = re.findall(r"docs/runbook\.md#([\w-]+)", description)
        assert set(anchors) <= RUNBOOK_ANCHORS, f"{logical_id}: no runbook section {anchors}"
        assert f"`{logical_id}`" in RUNBOOK, f"{logical_id} is not named in docs/runbook.md"


@pytest.mark.parametrize("template", SERVICE_TEMPLATES.values(), ids=_ids)
def test_every_function_has_an_errors_and_throttles_alarm(template: Template) -> None:
    for function in template.functions():
        watched = {
            metric["MetricName"]
            for alarm in template.resources("AWS::CloudWatch::Alarm").values()
            for metric in _alarm_metrics(alarm)
            if metric["Namespace"] == "AWS/Lambda"
            and metric["Dimensions"]
            == [{"Name": "FunctionName", "Value": {"Ref": function.logical_id}}]
        }
        assert {"Errors", "Throttles"} <= watched, function.describe()


@pytest.mark.parametrize("template", SERVICE_TEMPLATES.values(), ids=_ids)
def test_business_metric_alarms_watch_a_catalogued_metric_of_their_service(
    template: Template,
) -> None:
    service = template.path.stem
    for function in template.functions():
        assert function.environment["POWERTOOLS_METRICS_NAMESPACE"] == NAMESPACE
    names = {metric.value for metric in Metric}
    for logical_id, alarm in template.resources("AWS::CloudWatch::Alarm").items():
        for metric in _alarm_metrics(alarm):
            if metric["Namespace"] != NAMESPACE:
                continue
            # A renamed metric would leave the alarm watching nothing, forever OK.
            assert metric["MetricName"] in names, (logical_id, metric["MetricName"])
            assert spec_for_metric(metric["MetricName"]).service.value == service, logical_id
            assert metric["Dimensions"] == [{"Name": "service", "Value": service}], logical_id


@pytest.mark.parametrize("template", SERVICE_TEMPLATES.values(), ids=_ids)
def test_metric_math_alarms_return_one_series_built_from_their_queries(
    template: Template,
) -> None:
    for logical_id, alarm in template.resources("AWS::CloudWatch::Alarm").items():
        queries = alarm["Properties"].get("Metrics")
        if not queries:
            continue
        ids = {q["Id"] for q in queries}
        assert [q.get("ReturnData", True) for q in queries].count(True) == 1, logical_id
        for query in queries:
            if "Expression" in query:
                used = set(re.findall(r"\b[a-z][a-z_]*\b", query["Expression"]))
                assert used <= ids, (logical_id, used - ids)
        for key in ("Namespace", "MetricName", "Statistic", "Dimensions"):
            assert key not in alarm["Properties"], logical_id


def _dashboard() -> tuple[dict[str, Any], set[str]]:
    """The root dashboard's body (references as "ref:<name>") and the names it references."""
    (dashboard,) = PLATFORM.resources("AWS::CloudWatch::Dashboard").values()
    text = dashboard["Properties"]["DashboardBody"]["Fn::Sub"]
    references = set(re.findall(r"\$\{([^}]+)\}", text))
    text = re.sub(r'"\$\{([^}]+)\}"', r'"ref:\1"', text)  # inside a string
    text = re.sub(r"\$\{([^}]+)\}", r'"ref:\1"', text)  # a bare list item
    body: dict[str, Any] = json.loads(text)
    return body, references


def _nested_templates() -> dict[str, Template]:
    """Nested application logical id → its template."""
    return {
        logical_id: next(
            t
            for t in PLATFORM.nested
            if t.path.name == Path(resource["Properties"]["Location"]).name
        )
        for logical_id, resource in PLATFORM.resources("AWS::Serverless::Application").items()
    }


def _output_target(reference: str) -> tuple[Template, Any]:
    """``Provisioner.Outputs.X`` → the provisioner template and output X's value."""
    stack, _, output = reference.split(".", 2)
    template = _nested_templates()[stack]
    return template, template.body["Outputs"][output]["Value"]


def test_the_dashboard_shows_every_metric_function_dlq_and_alarm() -> None:
    body, references = _dashboard()
    rows = [
        row
        for widget in body["widgets"]
        if widget["type"] == "metric"
        for row in widget["properties"]["metrics"]
    ]
    for row in rows:
        assert row[0] != ".", row  # spelled out: this test reads them
        assert len(row) >= 4, row
    shown = {(row[0], row[1], row[2], row[3]) for row in rows}
    for spec in METRIC_CATALOG:
        assert (NAMESPACE, spec.metric.value, "service", spec.service.value) in shown, spec
    for name, template in SERVICE_TEMPLATES.items():
        for function in template.functions():
            for metric in ("Errors", "Throttles"):
                matching = [
                    r
                    for r in shown
                    if r[:3] == ("AWS/Lambda", metric, "FunctionName")
                    and _output_target(r[3].removeprefix("ref:"))
                    == (template, {"Ref": function.logical_id})
                ]
                assert len(matching) == 1, (function.describe(), metric)
        dlq_rows = {
            _output_target(r[3].removeprefix("ref:"))[1]["Fn::GetAtt"][0]
            for r in shown
            if r[:2] == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
            and ".Outputs." in r[3]
            and _output_target(r[3].removeprefix("ref:"))[0] is template
        }
        alarmed_dlqs = {
            ref
            for alarm in template.resources("AWS::CloudWatch::Alarm").values()
            for dimension in alarm["Properties"].get("Dimensions", [])
            if dimension["Name"] == "QueueName"
            for ref in _refs(dimension["Value"])
        }
        assert dlq_rows == alarmed_dlqs, name
    root_dlqs = {
        r[3].removeprefix("ref:").removesuffix(".QueueName")
        for r in shown
        if r[:2] == ("AWS/SQS", "ApproximateNumberOfMessagesVisible")
        and r[3].endswith(".QueueName")
    }
    assert root_dlqs == {
        ref
        for alarm in PLATFORM.resources("AWS::CloudWatch::Alarm").values()
        for dimension in alarm["Properties"].get("Dimensions", [])
        for ref in _refs(dimension["Value"])
    }
    (alarm_widget,) = [w for w in body["widgets"] if w["type"] == "alarm"]
    listed = {a.removeprefix("ref:") for a in alarm_widget["properties"]["alarms"]}
    assert listed == {f"{stack}.Outputs.DashboardAlarms" for stack in _nested_templates()} | {
        f"{alarm}.Arn" for alarm in PLATFORM.resources("AWS::CloudWatch::Alarm")
    }
    for reference in listed - {r for r in listed if r.endswith(".Arn")}:
        template, value = _output_target(reference)
        arns = set(re.findall(r'"\$\{(\w+)\.Arn\}"', value["Fn::Sub"]))
        assert arns == set(template.resources("AWS::CloudWatch::Alarm")), template.path.name
    resources = set(PLATFORM.resources())
    assert {r.split(".")[0] for r in references} <= {
        *_nested_templates(),
        *resources,
        "AWS::Region",
    }


@pytest.mark.parametrize("template", SERVICE_TEMPLATES.values(), ids=_ids)
def test_a_function_with_its_own_role_carries_no_policies(template: Template) -> None:
    """SAM ignores ``Policies`` when ``Role`` is set: a statement there would never be granted."""
    for fn in template.functions():
        if "Role" in fn.properties:
            assert "Policies" not in fn.properties, fn.logical_id
            role = fn.properties["Role"]["Fn::GetAtt"][0]
            assert template.resources("AWS::IAM::Role")[role], fn.logical_id
