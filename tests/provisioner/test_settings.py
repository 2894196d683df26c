"""The provisioner's configuration document (the plan guardrails): the example validates,
and the composition root reads a changed document once the shared loader's cache expires
(no embedded AWS: a stubbed SSM client, and Powertools' cache clock moved by hand)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from decimal import Decimal

import pytest
from aws_lambda_powertools import Logger

from provisioner.environment import BuildEventsConfig, RequestConsumerConfig
from provisioner.runtime import Runtime, build_runtime
from provisioner.settings import PlanGuardrails
from selfservice.templates import Template
from selfservice_contracts.plan import BudgetAction
from selfservice_runtime import settings_document
from selfservice_runtime.clients import RETRIES
from selfservice_runtime.observability import Metric
from tests.conftest import ROOT
from tests.settings_stub import START, Clock, stubbed_session
from tests.settings_stub import StubbedSession as Session

PARAMETER = "/selfservice/provisioner/config"
EXAMPLE = (ROOT / "config/provisioner.example.json").read_text()


def test_the_example_document_is_valid_and_says_what_it_means() -> None:
    guardrails = PlanGuardrails.model_validate_json(EXAMPLE)
    assert guardrails.policy("ec2-app", "prod").allowed_instance_types == [
        "t3.medium",
        "t3.large",
        "m6i.large",
        "m6i.xlarge",
    ]
    assert guardrails.policy("ec2-app", "prod").public_ingress_ports == [443]
    staging = guardrails.budget("staging", "CC-1042")
    assert staging is not None
    assert (staging.monthly_usd, staging.action) == (Decimal(600), BudgetAction.REQUIRE_APPROVAL)
    dev = guardrails.budget("dev", "CC-9999")  # any other cost center: the "*" rule
    assert dev is not None
    assert (dev.monthly_usd, dev.action) == (Decimal(150), BudgetAction.REJECT)


def test_the_templates_initial_document_is_valid() -> None:
    """What CloudFormation creates the parameter with, before the team pushes its own."""
    assert PlanGuardrails.model_validate_json('{"version": 1}') == PlanGuardrails()


@pytest.fixture
def session(monkeypatch: pytest.MonkeyPatch) -> Iterator[Session]:
    with stubbed_session(monkeypatch, PARAMETER) as stubbed:
        yield stubbed
    build_runtime.cache_clear()


def _runtime(platform: Template, session: Session) -> Runtime:
    environment = platform.function_environment(
        "RequestConsumerFunction", {"PROVISIONER_CONFIG_PARAMETER": PARAMETER}
    )

    def ignore(metric: Metric) -> None:
        return None

    return build_runtime(
        RequestConsumerConfig.model_validate(environment), Logger(), ignore, session=session
    )


def test_both_build_drivers_are_told_where_the_document_is(platform: Template) -> None:
    for function, model in (
        ("RequestConsumerFunction", RequestConsumerConfig),
        ("BuildEventsFunction", BuildEventsConfig),
    ):
        environment = platform.function_environment(function)
        assert environment["PROVISIONER_CONFIG_PARAMETER"] == "local-provisionerconfig"
        assert model.model_validate(environment).provisioner_config_parameter == (
            "local-provisionerconfig"
        )


def test_a_changed_document_is_used_once_the_loaders_cache_expires(
    platform: Template, session: Session
) -> None:
    runtime = _runtime(platform, session)
    assert session.configs["ssm"] is RETRIES  # the composition root's one retry policy
    session.serve(EXAMPLE)
    assert runtime.guardrails().policy("ec2-app", "prod").public_ingress_ports == [443]

    # The platform team edits the document: within the cache's minute, the old one holds
    # (no GetParameter: the stub would refuse an unexpected call) ...
    document = json.loads(EXAMPLE)
    document["plan_policies"]["ec2-app"]["environments"]["prod"]["public_ingress_ports"] = []
    Clock.current = START + timedelta(seconds=settings_document.CACHE_SECONDS - 1)
    assert runtime.guardrails().policy("ec2-app", "prod").public_ingress_ports == [443]

    # ... and after it, the next read returns the new one, with no new cold start.
    session.serve(json.dumps(document))
    Clock.current = START + timedelta(seconds=settings_document.CACHE_SECONDS + 1)
    assert runtime.guardrails().policy("ec2-app", "prod").public_ingress_ports == []


def test_an_invalid_document_is_refused_not_replaced_by_defaults(
    platform: Template, session: Session
) -> None:
    runtime = _runtime(platform, session)
    session.serve('{"version": 1, "budgets": {"dev": {"*": {"monthly_usd": -1}}}}')
    with pytest.raises(settings_document.SettingsDocumentError) as refused:
        runtime.guardrails()
    assert refused.value.reason == "invalid"
