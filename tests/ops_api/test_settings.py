"""The ops configuration document: the shipped example is valid, unsafe entries are not."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from ops_api.settings import DEFAULT_ALLOWLIST, OpsSettings, shell_metacharacters
from tests.conftest import ROOT


def test_the_example_document_is_valid_and_stricter_than_nothing() -> None:
    settings = OpsSettings.model_validate_json((ROOT / "config/ops-api.example.json").read_text())
    assert settings.entry_for("uptime") is not None
    assert settings.entry_for("systemctl restart nginx") is not None
    assert settings.entry_for("systemctl restart sshd") is None


def test_an_empty_document_means_the_read_only_diagnostics() -> None:
    settings = OpsSettings.model_validate_json('{"version": 1}')
    assert settings.allowlist == DEFAULT_ALLOWLIST
    assert all(settings.entry_for(c) for c in settings.default_commands)
    assert not any(entry.shell for entry in settings.allowlist)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"allowlist": [{"pattern": "uptime"}]}, "must be anchored"),
        ({"allowlist": [{"pattern": "^uptime"}]}, "must be anchored"),
        ({"allowlist": [{"pattern": "^(unclosed$"}]}, "not a valid regex"),
        ({"allowlist": [{"command": "df -h | sort"}]}, "shell metacharacters"),
        ({"allowlist": [{"command": "uptime", "pattern": "^uptime$"}]}, "exactly one of"),
        ({"allowlist": [{}]}, "exactly one of"),
        ({"allowlist": [{"command": "uptime"}], "default_commands": ["hostname"]}, "not on the"),
        ({"max_targets": 51}, "less than or equal to 50"),
        ({"wait_seconds": 29}, "less than or equal to 25"),
        ({"surprise": True}, "Extra inputs are not permitted"),
    ],
)
def test_unsafe_or_malformed_documents_are_refused(document: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        OpsSettings.model_validate_json(json.dumps(document))


def test_metacharacters_are_reported_once_each_in_order() -> None:
    assert shell_metacharacters("a; b; c | d $(e)") == [";", "|", "$"]
    assert shell_metacharacters("systemctl status nginx.service") == []
