"""`selfservice ops`: signing region, credentials and usage errors (no server needed)."""

from __future__ import annotations

import pytest

from selfservice.cli import main
from selfservice.operator.ops_client import OpsClient, OpsClientError


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "example")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


@pytest.mark.usefixtures("credentials")
def test_the_signing_region_comes_from_the_url_then_the_option() -> None:
    deployed = "https://a1b2c3d4e5.execute-api.eu-west-2.amazonaws.com"
    assert OpsClient(deployed).region == "eu-west-2"
    assert OpsClient(deployed, region="us-east-2").region == "us-east-2"


def test_no_credentials_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    with pytest.raises(OpsClientError, match="no AWS credentials"):
        OpsClient("http://127.0.0.1:1")


@pytest.mark.usefixtures("credentials")
def test_usage_errors_exit_2(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("SELFSERVICE_OPS_URL", raising=False)
    assert main(["ops", "run-commands", "--instance-id", "i-0123456789abcdef0"]) == 2
    assert "SELFSERVICE_OPS_URL" in capsys.readouterr().err
    url = ["--url", "http://127.0.0.1:1"]
    assert main(["ops", "run-commands", *url]) == 2
    assert main(["ops", "run-commands", *url, "--instance-id", "i-1", "--tag", "a=b"]) == 2
    with pytest.raises(SystemExit, match="KEY=VALUE"):
        main(["ops", "run-commands", *url, "--tag", "novalue"])


@pytest.mark.usefixtures("credentials")
@pytest.mark.integration  # the CLI opens a socket to a closed loopback port
def test_an_unreachable_api_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["ops", "get-command", "--url", "http://127.0.0.1:1", "x"]) == 1
    assert "cannot reach http://127.0.0.1:1" in capsys.readouterr().err
