"""`selfservice status`: the latest plan of each instance, as its ticket was shown it."""

from __future__ import annotations

import copy
import json
from typing import Any

from selfservice.operator.status import Step, TicketStatus, _render, latest_plans, plan_lines
from tests.conftest import ROOT

SAMPLE = json.loads((ROOT / "events/catalog/selfservice.provisioning.planned.v1.json").read_text())
STARTED = json.loads((ROOT / "events/catalog/selfservice.provisioning.started.v1.json").read_text())


def _planned(attempt: int, sha: str, **data: Any) -> dict[str, Any]:
    event: dict[str, Any] = copy.deepcopy(SAMPLE)
    event["detail"]["data"].update(attempt=attempt, plan_sha256=sha, **data)
    event["detail"]["id"] = f"planned-{attempt}"
    return event


def test_the_latest_attempt_is_the_plan_shown_and_replays_are_not() -> None:
    first, second = _planned(1, "1" * 64), _planned(2, "2" * 64)
    replayed = {**_planned(3, "3" * 64), "replay-name": "audit-1"}
    plans = latest_plans([second, STARTED, first, replayed])
    assert list(plans) == [SAMPLE["detail"]["requestid"]]
    assert plans[SAMPLE["detail"]["requestid"]]["detail"]["data"]["plan_sha256"] == "2" * 64


def test_a_plan_is_shown_with_its_counts_cost_policy_budget_and_where_it_is() -> None:
    lines = plan_lines(_planned(1, "a" * 64))
    text = "\n".join(lines)
    assert lines[0] == f"plan {'a' * 64}, hold"
    data = SAMPLE["detail"]["data"]
    counts = data["summary"]["counts"]
    assert lines[4].split()[0] == str(counts["add"])  # the counts table's row
    assert data["cost"]["prices_as_of"] in text
    assert str(data["cost"]["monthly_after"]) in text
    assert "Plan policies: all" in text
    assert "CC-1042" in text  # the budget table
    assert "prod requests need an approval of their plan" in text  # why it is held
    assert data["artifacts"]["plan_json_s3_uri"] in text
    # Every resource the plan touches is a row of the resources table.
    for resource in data["summary"]["resources"]:
        assert f"  {resource['action']:8} {resource['address']}" in lines, resource["address"]
    assert f"Every resource in the plan ({len(data['summary']['resources'])}):" in lines


def test_the_terminal_view_and_json_carry_the_plan() -> None:
    event = _planned(1, "b" * 64)
    status = TicketStatus(
        "servicenow:RITM0010042",
        [],
        [
            Step(
                __import__("datetime").datetime(2026, 11, 20, tzinfo=__import__("datetime").UTC),
                "provisioner",
                "provisioning.planned",
            )
        ],
        latest_plans([event]),
    )
    rendered = _render(status)
    assert f"  plan {'b' * 64}, hold" in rendered.splitlines()
    assert "Estimated cost:" in rendered
    as_json = status.as_json()
    assert as_json["plans"][SAMPLE["detail"]["requestid"]]["plan_sha256"] == "b" * 64
