"""The build's review step: judge the saved plan, or check an approved one, and say so.

    python3 review.py plan       # after `terraform show -json`: review plan.json
    python3 review.py approved   # fetch the approved tfplan, check its hash and the module's
    python3 review.py stale WHY  # Terraform refused the approved plan as stale
    python3 review.py applied    # the approved plan was applied

Run in the product's ``terraform/`` directory with the build's environment (REQUEST_ID,
ATTEMPT, PRODUCT, ARTIFACTS_BUCKET, PLAN_ONLY; APPROVED_PLAN_URI, APPROVED_PLAN_SHA256,
APPROVED_MODULE_SHA256 for an approved plan). Every command writes the attempt's build
record (``reviews/<request>/<attempt>.json``, SSE-KMS) for the build-events function;
the exit code tells the buildspec what to do next (``ExitCode``: 0 apply, 10 hold,
11 refuse, 12 stale; anything else fails the build). The documents and the review are
the provisioner's own (``provisioner.domain.plan.build_review``), shipped in the bundle.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

_BUNDLE = Path(__file__).resolve().parents[3]
# The bundle's provisioner and contracts packages, ahead of any installed copy.
sys.path[:0] = [str(_BUNDLE / "services/provisioner"), str(_BUNDLE / "schemas")]

import boto3  # noqa: E402

from provisioner.domain.plan.build_review import (  # noqa: E402
    ApplyRecord,
    ExitCode,
    ReviewInput,
    ReviewRecord,
    exit_code,
    module_sha256,
    review_build,
    review_input_key,
    review_record_key,
)
from provisioner.domain.plan.prices import load_prices  # noqa: E402
from provisioner.domain.products import load_product  # noqa: E402


def _env(name: str) -> str:
    value = os.environ.get(name, "")
    if not value:
        raise SystemExit(f"review: {name} is not set")
    return value


def _split(uri: str) -> tuple[str, str]:
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    return bucket, key


def _put(s3: object, key: str, record: ReviewRecord | ApplyRecord) -> None:
    s3.put_object(  # type: ignore[attr-defined]
        Bucket=_env("ARTIFACTS_BUCKET"),
        Key=key,
        Body=record.model_dump_json().encode(),
        ContentType="application/json",
        ServerSideEncryption="aws:kms",
    )


def review(s3: object) -> int:
    """Review ``plan.json`` against the attempt's review input; record the verdict."""
    request_id, attempt = _env("REQUEST_ID"), int(_env("ATTEMPT"))
    body = s3.get_object(  # type: ignore[attr-defined]
        Bucket=_env("ARTIFACTS_BUCKET"), Key=review_input_key(request_id, attempt)
    )["Body"].read()
    review_input = ReviewInput.model_validate_json(body)
    region = os.environ.get("AWS_REGION") or _env("AWS_DEFAULT_REGION")
    record = review_build(
        json.loads(Path("plan.json").read_text()),
        hashlib.sha256(Path("tfplan").read_bytes()).hexdigest(),
        module_sha256(Path.cwd()),
        load_product(_env("PRODUCT")).plan,
        load_prices(region),
        review_input,
        request_id=request_id,
        attempt=attempt,
        plan_only=os.environ.get("PLAN_ONLY", "false") == "true",
    )
    _put(s3, review_record_key(request_id, attempt), record)
    counts = record.summary.counts
    print(
        f"plan review: {record.verdict.value} (add {counts.add}, change {counts.change}, "
        f"replace {counts.replace}, destroy {counts.destroy}; "
        f"{record.cost.monthly_after} USD/month after, {record.cost.monthly_delta} more)"
    )
    for reason in record.reasons:
        print(f"  - {reason}")
    return int(exit_code(record))


def _apply_record(applied: bool, stale_because: str | None = None) -> ApplyRecord:
    return ApplyRecord(
        request_id=_env("REQUEST_ID"),
        attempt=int(_env("ATTEMPT")),
        plan_sha256=_env("APPROVED_PLAN_SHA256"),
        applied=applied,
        stale_because=stale_because,
    )


def stale(s3: object, because: str) -> int:
    """Record that the approved plan was not applied, and why."""
    record = _apply_record(applied=False, stale_because=because[:1000])
    _put(s3, review_record_key(record.request_id, record.attempt), record)
    print(f"approved plan not applied: {because}")
    return int(ExitCode.STALE)


def approved(s3: object) -> int:
    """Fetch the approved ``tfplan``; it applies only if it and the module are unchanged."""
    bucket, prefix = _split(_env("APPROVED_PLAN_URI"))
    s3.download_file(bucket, prefix.rstrip("/") + "/tfplan", "tfplan")  # type: ignore[attr-defined]
    expected = _env("APPROVED_PLAN_SHA256")
    found = hashlib.sha256(Path("tfplan").read_bytes()).hexdigest()
    if found != expected:
        return stale(s3, f"the saved plan's SHA-256 is {found}, not the approved {expected}")
    recorded = _env("APPROVED_MODULE_SHA256")
    module = module_sha256(Path.cwd())
    if module != recorded:
        return stale(
            s3,
            f"the {_env('PRODUCT')} module changed since the plan was made "
            f"(module SHA-256 {module}, planned with {recorded})",
        )
    print(f"approved plan {expected} checked: applying it")
    return int(ExitCode.APPLY)


def applied(s3: object) -> int:
    """Record that the approved plan was applied."""
    record = _apply_record(applied=True)
    _put(s3, review_record_key(record.request_id, record.attempt), record)
    return 0


def main(argv: list[str]) -> int:
    """Run one command (see the module's docstring)."""
    command, *rest = argv or ["?"]
    s3 = boto3.client("s3")
    if command == "plan":
        return review(s3)
    if command == "approved":
        return approved(s3)
    if command == "stale":
        return stale(s3, " ".join(rest) or "Terraform refused the saved plan as stale")
    if command == "applied":
        return applied(s3)
    raise SystemExit(f"review: unknown command {command!r} (plan, approved, stale, applied)")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
