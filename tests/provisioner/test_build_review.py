"""The build's review step (``buildtools/review.py``) and the documents it shares with
the provisioner (``provisioner.domain.plan.build_review``), over recorded plans."""

from __future__ import annotations

import hashlib
import io
import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from provisioner.domain.plan import load_prices
from provisioner.domain.plan.build_review import (
    ApplyRecord,
    ExitCode,
    ReviewInput,
    ReviewRecord,
    exit_code,
    module_sha256,
    parse_build_record,
    plan_prefix,
    review_build,
    review_input_key,
    review_record_key,
)
from provisioner.domain.products import PRODUCTS_DIR, load_product
from selfservice_contracts.plan import PlanVerdict
from selfservice_contracts.request import Action
from tests.conftest import ROOT
from tests.module_loader import module_from_file
from tests.provisioner.fakes import EXAMPLE_GUARDRAILS

FIXTURES = ROOT / "tests/fixtures/plans"
GUARDRAILS = EXAMPLE_GUARDRAILS
REVIEW_TOOL = ROOT / "services/provisioner/buildtools/review.py"
TFPLAN = b"a saved plan"
SHA = hashlib.sha256(TFPLAN).hexdigest()


def _input(**changes: Any) -> ReviewInput:
    facts: dict[str, Any] = {
        "product": "ec2-app",
        "action": Action.CREATE,
        "environment": "staging",
        "cost_center": "CC-1042",
        "guardrails": GUARDRAILS,
        **changes,
    }
    return ReviewInput(**facts)


def _review(name: str, plan_only: bool = False, **changes: Any) -> ReviewRecord:
    product = "aws-account" if name.startswith("aws-account") else "ec2-app"
    return review_build(
        json.loads((FIXTURES / f"{name}.json").read_text()),
        SHA,
        "0" * 64,
        load_product(product).plan,
        load_prices("us-east-1"),
        _input(product=product, **changes),
        request_id="req-1",
        attempt=2,
        plan_only=plan_only,
    )


def test_the_keys_of_an_attempt() -> None:
    assert review_input_key("req-1", 2) == "tfvars/req-1/2.review-input.json"
    assert review_record_key("req-1", 2) == "reviews/req-1/2.json"
    assert plan_prefix("req-1", 2) == "plans/req-1/2/"


def test_a_plan_within_policy_and_budget_is_applied_in_the_same_build() -> None:
    record = _review("ec2-app-create")
    assert (record.verdict, record.applied, exit_code(record)) == (
        PlanVerdict.APPLY,
        True,
        ExitCode.APPLY,
    )
    assert record.plan_sha256 == record.summary.plan_sha256 == SHA
    assert record.cost.monthly_after == Decimal("86.70")


def test_a_plan_only_build_never_applies_even_a_plan_it_would_allow() -> None:
    record = _review("ec2-app-create", plan_only=True)
    assert (record.verdict, record.applied, exit_code(record)) == (
        PlanVerdict.APPLY,
        False,
        ExitCode.HOLD,
    )


def test_a_plan_waiting_for_approval_is_held_and_a_refused_one_is_refused() -> None:
    held = _review("ec2-app-create", approval_required=True)
    assert (held.verdict, exit_code(held)) == (PlanVerdict.HOLD, ExitCode.HOLD)
    assert held.reasons == ["staging requests need an approval of their plan"]
    over = _review("ec2-app-create", cost_center="CC-7", committed=Decimal("350"))
    assert (over.verdict, exit_code(over)) == (PlanVerdict.HOLD, ExitCode.HOLD)
    assert "350.00 running + 86.70 this request" in over.reasons[0]
    refused = _review("ec2-app-update")
    assert (refused.verdict, refused.applied, exit_code(refused)) == (
        PlanVerdict.REFUSE,
        False,
        ExitCode.REFUSE,
    )
    assert "m6i.large" in refused.reasons[0]


def test_records_round_trip_and_are_told_apart_by_kind() -> None:
    record = _review("ec2-app-create")
    assert parse_build_record(record.model_dump_json()) == record
    applied = ApplyRecord(request_id="req-1", attempt=3, plan_sha256=SHA, applied=True)
    assert parse_build_record(applied.model_dump_json()) == applied
    with pytest.raises(ValidationError):
        parse_build_record(json.dumps({"kind": "other", "request_id": "req-1"}))
    assert ReviewInput.model_validate_json(_input().model_dump_json()) == _input()
    with pytest.raises(ValidationError):
        ReviewInput.model_validate({**_input().model_dump(mode="json"), "surprise": 1})


def _module(tmp_path: Path) -> Path:
    module = tmp_path / "terraform"
    shutil.copytree(
        PRODUCTS_DIR / "ec2-app/terraform", module, ignore=shutil.ignore_patterns(".terraform")
    )
    return module


def test_the_module_hash_covers_the_module_and_nothing_a_build_leaves_beside_it(
    tmp_path: Path,
) -> None:
    module = _module(tmp_path)
    before = module_sha256(module)
    assert before == module_sha256(PRODUCTS_DIR / "ec2-app/terraform")
    for name in ("tfplan", "plan.json", "tfplan.sha256", "request.auto.tfvars.json"):
        (module / name).write_text("build output")
    (module / ".terraform/providers").mkdir(parents=True)
    (module / ".terraform/providers/x.tf").write_text("# a provider's own file")
    assert module_sha256(module) == before
    (module / "main.tf").write_text((module / "main.tf").read_text() + "\n# changed\n")
    changed = module_sha256(module)
    assert changed != before
    (module / "main.tf").rename(module / "other.tf")  # same content, another name
    assert module_sha256(module) not in {before, changed}


# ---------------------------------------------------------------- the build tool


class FakeS3:
    """The three S3 calls review.py makes."""

    def __init__(self, objects: dict[str, bytes]) -> None:
        self.objects = dict(objects)
        self.puts: dict[str, dict[str, Any]] = {}

    def get_object(self, Bucket: str, Key: str) -> dict[str, Any]:  # noqa: N803 - boto3's names
        return {"Body": io.BytesIO(self.objects[f"{Bucket}/{Key}"])}

    def put_object(self, **kwargs: Any) -> None:
        self.puts[f"{kwargs['Bucket']}/{kwargs['Key']}"] = kwargs
        self.objects[f"{kwargs['Bucket']}/{kwargs['Key']}"] = kwargs["Body"]

    def download_file(self, bucket: str, key: str, filename: str) -> None:
        Path(filename).write_bytes(self.objects[f"{bucket}/{key}"])


@pytest.fixture
def tool(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    module = _module(tmp_path)
    monkeypatch.chdir(module)
    for name, value in {
        "REQUEST_ID": "req-1",
        "ATTEMPT": "2",
        "PRODUCT": "ec2-app",
        "ARTIFACTS_BUCKET": "artifacts",
        "AWS_REGION": "us-east-1",
        "PLAN_ONLY": "false",
    }.items():
        monkeypatch.setenv(name, value)
    return module_from_file("review_tool", REVIEW_TOOL)


def _planned(name: str) -> None:
    Path("plan.json").write_text((FIXTURES / f"{name}.json").read_text())
    Path("tfplan").write_bytes(TFPLAN)


@pytest.mark.parametrize(
    ("plan", "changes", "code", "verdict"),
    [
        ("ec2-app-create", {}, 0, "apply"),
        ("ec2-app-create", {"approval_required": True}, 10, "hold"),
        ("ec2-app-update", {}, 11, "refuse"),
    ],
)
def test_review_records_the_verdict_and_exits_with_its_code(
    tool: Any, plan: str, changes: dict[str, Any], code: int, verdict: str
) -> None:
    _planned(plan)
    s3 = FakeS3(
        {"artifacts/tfvars/req-1/2.review-input.json": _input(**changes).model_dump_json().encode()}
    )
    assert tool.review(s3) == code
    put = s3.puts["artifacts/reviews/req-1/2.json"]
    assert put["ServerSideEncryption"] == "aws:kms"
    record = parse_build_record(put["Body"])
    assert isinstance(record, ReviewRecord)
    assert (record.verdict.value, record.plan_sha256, record.attempt) == (verdict, SHA, 2)
    assert record.module_sha256 == module_sha256(PRODUCTS_DIR / "ec2-app/terraform")


def test_a_review_without_its_input_fails_the_build(tool: Any) -> None:
    _planned("ec2-app-create")
    with pytest.raises(KeyError):
        tool.review(FakeS3({}))


def _approved(monkeypatch: pytest.MonkeyPatch, sha: str, module: str) -> FakeS3:
    monkeypatch.setenv("APPROVED_PLAN_URI", "s3://artifacts/plans/req-1/1/")
    monkeypatch.setenv("APPROVED_PLAN_SHA256", sha)
    monkeypatch.setenv("APPROVED_MODULE_SHA256", module)
    return FakeS3({"artifacts/plans/req-1/1/tfplan": TFPLAN})


def test_an_approved_plan_that_checks_out_is_applied(
    tool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = _approved(monkeypatch, SHA, module_sha256(Path.cwd()))
    assert tool.approved(s3) == ExitCode.APPLY
    assert Path("tfplan").read_bytes() == TFPLAN
    assert s3.puts == {}
    assert tool.applied(s3) == 0
    record = parse_build_record(s3.puts["artifacts/reviews/req-1/2.json"]["Body"])
    assert record == ApplyRecord(request_id="req-1", attempt=2, plan_sha256=SHA, applied=True)


def test_another_plan_or_a_changed_module_is_not_applied_and_says_why(
    tool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = hashlib.sha256(b"another plan").hexdigest()
    s3 = _approved(monkeypatch, other, module_sha256(Path.cwd()))
    assert tool.approved(s3) == ExitCode.STALE
    record = parse_build_record(s3.puts["artifacts/reviews/req-1/2.json"]["Body"])
    assert isinstance(record, ApplyRecord)
    assert (record.applied, record.plan_sha256) == (False, other)
    assert f"is {SHA}, not the approved {other}" in str(record.stale_because)

    s3 = _approved(monkeypatch, SHA, "f" * 64)
    assert tool.approved(s3) == ExitCode.STALE
    record = parse_build_record(s3.puts["artifacts/reviews/req-1/2.json"]["Body"])
    assert isinstance(record, ApplyRecord)
    assert "the ec2-app module changed since the plan was made" in str(record.stale_because)


def test_a_plan_terraform_found_stale_is_recorded_as_not_applied(
    tool: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    s3 = _approved(monkeypatch, SHA, "0" * 64)
    assert tool.stale(s3, "the state changed") == ExitCode.STALE
    record = parse_build_record(s3.puts["artifacts/reviews/req-1/2.json"]["Body"])
    assert record == ApplyRecord(
        request_id="req-1",
        attempt=2,
        plan_sha256=SHA,
        applied=False,
        stale_because="the state changed",
    )
