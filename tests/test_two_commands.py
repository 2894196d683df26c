"""The README's two commands exist, CI runs exactly the test one, and demo never pretends."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from selfservice.cli import main


def _quick_start_commands(root: Path) -> list[str]:
    readme = (root / "README.md").read_text()
    section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^(make \w+)\s*(?:#.*)?$", section, flags=re.MULTILINE)


def test_the_quick_start_is_two_commands(root: Path) -> None:
    assert _quick_start_commands(root) == ["make demo", "make test"]


def test_ci_runs_exactly_the_readme_test_command(root: Path) -> None:
    script = (root / ".ci/run").read_text().splitlines()
    commands = [line.strip() for line in script if line.strip() and not line.startswith("#")]
    commands = [c for c in commands if not c.startswith(("set ", "cd "))]
    assert commands == ["make test"]


@pytest.mark.e2e
def test_the_demo_runs_the_main_job_on_the_embedded_stack(root: Path, capsys: object) -> None:
    """Tickets in, infrastructure applied, write-back visible — the README's first command."""
    assert main(["demo", "--root", str(root)]) == 0
    out = capsys.readouterr().out  # type: ignore[attr-defined]
    assert "'status': 'received'" in out
    assert "'status': 'approval_required'" in out
    assert "jira:ITSM-42               → succeeded" in out
    assert "servicenow:RITM0010042     → succeeded" in out
    assert "[selfservice] Waiting for approval" in out
    assert "  - instance_ids: i-" in out  # the outputs written back to the ticket
    assert out.count("[selfservice] Done") == 2  # both outcomes reached their tickets
    assert out.count("jira:ITSM-42               → awaiting_approval") == 1  # said once
    assert "demo succeeded" in out


def test_the_console_script_is_installed() -> None:
    completed = subprocess.run(
        [Path(sys.executable).with_name("selfservice"), "contracts", "export", "--check"],
        capture_output=True,
        text=True,
        check=False,
        cwd=Path(__file__).resolve().parent.parent,
    )
    assert completed.returncode == 0, completed.stderr


def test_the_bundle_holds_what_the_buildspec_needs(root: Path, tmp_path: Path) -> None:
    output = tmp_path / "provisioner.zip"
    assert main(["bundle", "--output", str(output), "--root", str(root)]) == 0
    names = set(zipfile.ZipFile(output).namelist())
    assert "services/provisioner/buildspec.yml" in names
    assert "services/provisioner/buildtools/s3copy.py" in names
    assert "services/provisioner/products/ec2-app/terraform/main.tf" in names
    # The provider locks go along: CodeBuild's terraform init then installs the tested provider.
    assert "services/provisioner/products/ec2-app/terraform/.terraform.lock.hcl" in names
    assert "services/provisioner/products/aws-account/terraform/.terraform.lock.hcl" in names
    assert not [n for n in names if ".terraform/" in n or n.endswith(".tfstate")]


def test_invoke_refuses_an_unknown_function_by_naming_the_real_ones(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["invoke", "NoSuchFunction", "--root", str(root)]) == 2
    err = capsys.readouterr().err
    assert "no function NoSuchFunction" in err
    assert "WebhookFunction" in err


@pytest.mark.e2e
def test_invoke_runs_one_function_with_its_template_environment(
    root: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`selfservice invoke`: the function answers from the deployed, unconfigured stack."""
    event = tmp_path / "event.json"
    sample = json.loads((root / "events/OpsApiFunction.json").read_text())
    sample["body"] = json.dumps({"instance_id": "i-0123456789abcdef0", "commands": ["rm -rf /"]})
    event.write_text(json.dumps(sample))
    assert main(["invoke", "OpsApiFunction", "--event", str(event), "--root", str(root)]) == 0
    response = json.loads(capsys.readouterr().out)
    assert response["statusCode"] == 403
    assert json.loads(response["body"])["error"] == "CommandNotAllowed"


def test_up_refuses_a_build_concurrency_below_one(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["up", "--build-concurrency", "0"])
    assert exited.value.code == 2
    assert "--build-concurrency: must be at least 1, not 0" in capsys.readouterr().err
