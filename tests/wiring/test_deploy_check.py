"""The parts of `make deploy-check` that need no SAM CLI: the transform and cfn-lint on it.

`make test` runs the whole deploy check (SAM CLI from .venv-sam); these run it on the
templates as `sam package` leaves them, so a template whose transformed CloudFormation
would be refused fails the suite even where the SAM CLI is not installed.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from selfservice.develop.deploy_check import (
    LAMBDA_PYTHON_ENV,
    CheckFailedError,
    find_lambda_python,
    lint_transformed,
)
from selfservice.templates import load_platform
from tests.wiring.sam_package import packaged

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = load_platform(ROOT / "template.yaml")


def _templates() -> dict[str, dict[str, Any]]:
    return {t.path.stem: packaged(t.body) for t in PLATFORM.walk()}


def test_every_template_transforms_to_cloudformation_cfn_lint_accepts(tmp_path: Path) -> None:
    templates = _templates()
    assert len(templates) == 5
    assert lint_transformed(templates, tmp_path) == []


def test_a_template_that_would_not_deploy_is_reported(tmp_path: Path) -> None:
    templates = _templates()
    function = templates["intake"]["Resources"]["WebhookFunction"]["Properties"]
    function["Runtime"] = "python2.7"  # long refused by Lambda
    findings = lint_transformed({"intake": templates["intake"]}, tmp_path)
    assert findings
    assert any("python2.7" in finding for finding in findings), findings


def test_sam_build_needs_python_3_13_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(LAMBDA_PYTHON_ENV, raising=False)
    monkeypatch.setenv("PATH", str(Path(sys.executable).parent))  # a venv: no python3.13
    if sys.version_info[:2] != (3, 13):
        assert find_lambda_python() is None
    # Named explicitly, a wrong interpreter is an error, not a silent skip.
    monkeypatch.setenv(LAMBDA_PYTHON_ENV, sys.executable)
    if sys.version_info[:2] == (3, 13):
        assert find_lambda_python() == Path(sys.executable)
    else:
        with pytest.raises(CheckFailedError, match=r"not a working Python 3\.13"):
            find_lambda_python()
