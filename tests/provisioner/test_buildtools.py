"""The build's Terraform installer and CLI configuration never reach the internet."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from selfservice.local.terraform import TerraformUnavailableError, cli_config
from tests.conftest import ROOT
from tests.module_loader import module_from_file

INSTALLER = ROOT / "services/provisioner/buildtools/install-terraform.sh"


def _fake_terraform(directory: Path, version: str) -> Path:
    # Prints the version, then far more than a pipe holds: a reader that stops at the
    # first match leaves the writer to die of SIGPIPE.
    script = directory / "terraform"
    script.write_text(
        "#!/bin/sh\n"
        f'echo \'{{"terraform_version": "{version}",\'\n'
        "yes '\"padding\": true,' | head -c 2000000\n"
        "echo '}'\n"
    )
    script.chmod(0o755)
    return directory


def _install(path: Path, version: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(INSTALLER), version],
        env={"PATH": f"{path}:/usr/bin:/bin", "HOME": str(path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_a_present_terraform_is_recognised_whatever_its_output_size(tmp_path: Path) -> None:
    tools = _fake_terraform(tmp_path, "1.11.4")
    for _ in range(5):
        result = _install(tools, "1.11.4")
        assert (result.returncode, result.stdout.strip()) == (0, "terraform 1.11.4 present"), (
            result.stderr
        )


def test_another_version_is_not_taken_for_the_pinned_one(tmp_path: Path) -> None:
    tools = _fake_terraform(tmp_path, "1.9.0")
    empty = tmp_path / "no-network"
    empty.mkdir()
    (empty / "curl").write_text("#!/bin/sh\necho 'curl: offline in this test' >&2\nexit 6\n")
    (empty / "curl").chmod(0o755)
    result = subprocess.run(
        ["bash", str(INSTALLER), "1.11.4"],
        env={"PATH": f"{empty}:{tools}:/usr/bin:/bin", "HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "curl: offline in this test" in result.stderr


def test_the_local_cli_configuration_disables_calls_home(tmp_path: Path) -> None:
    try:
        config = cli_config(tmp_path).read_text()
    except TerraformUnavailableError as exc:  # pragma: no cover - machines without the mirror
        pytest.skip(str(exc))
    assert "disable_checkpoint = true" in config
    assert "filesystem_mirror" in config


def test_builds_disable_the_checkpoint_too() -> None:
    buildspec = (ROOT / "services/provisioner/buildspec.yml").read_text()
    assert 'CHECKPOINT_DISABLE: "1"' in buildspec


def _s3copy() -> Any:
    return module_from_file("s3copy", ROOT / "services/provisioner/buildtools/s3copy.py")


def test_s3copy_uploads_several_files_under_a_prefix_encrypted(tmp_path: Path) -> None:
    s3copy = _s3copy()
    for name, body in (("tfplan", b"PK plan"), ("plan.json", b"{}"), ("tfplan.sha256", b"ab\n")):
        (tmp_path / name).write_bytes(body)
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="artifacts")
        files = [str(tmp_path / n) for n in ("tfplan", "plan.json", "tfplan.sha256")]
        assert s3copy.main(*files, "s3://artifacts/plans/req-1/2/") == 0
        listed = s3.list_objects_v2(Bucket="artifacts", Prefix="plans/req-1/2/")["Contents"]
        assert sorted(o["Key"] for o in listed) == [
            "plans/req-1/2/plan.json",
            "plans/req-1/2/tfplan",
            "plans/req-1/2/tfplan.sha256",
        ]
        head = s3.head_object(Bucket="artifacts", Key="plans/req-1/2/tfplan")
        assert head["ServerSideEncryption"] == "aws:kms"
        with pytest.raises(SystemExit, match="not an s3://bucket/prefix/"):
            s3copy.main(*files, "s3://artifacts/plans/req-1/2")
