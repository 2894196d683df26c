"""The build's Terraform installer and CLI configuration never reach the internet."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from selfservice.local.terraform import TerraformUnavailableError, cli_config
from tests.conftest import ROOT

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
