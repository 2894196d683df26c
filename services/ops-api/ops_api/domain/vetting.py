"""What the API agrees to run: the allow-list over commands and associations (pure).

A command runs when the allow-list has an entry for it and it carries no shell
metacharacters its entry does not allow. An association runs with State Manager's own
rights, so whatever it would run is vetted the same way before it is started.
"""

from __future__ import annotations

from collections.abc import Sequence

from ops_api.domain.models import Association
from ops_api.settings import OpsSettings, shell_metacharacters

__all__ = ["DOCUMENTS", "refused_association", "refused_commands"]

DOCUMENTS = {"linux": "AWS-RunShellScript", "windows": "AWS-RunPowerShellScript"}
"""The only documents the API sends (the function's IAM policy allows no other)."""

_SHELL_DOCUMENT_PARAMETERS = frozenset({"commands", "executionTimeout", "workingDirectory"})
"""The parameters of AWS-RunShellScript and AWS-RunPowerShellScript."""


def refused_commands(settings: OpsSettings, commands: Sequence[str]) -> list[dict[str, str]]:
    """Each command the allow-list refuses, with why (empty when all are allowed)."""
    refused = []
    for command in commands:
        entry = settings.entry_for(command)
        if entry is None:
            refused.append({"command": command, "reason": "not on the allow-list"})
            continue
        found = shell_metacharacters(command)
        if found and not entry.shell:
            shown = ", ".join(repr(c) for c in found)
            refused.append({"command": command, "reason": f"shell metacharacters: {shown}"})
    return refused


def refused_association(settings: OpsSettings, association: Association) -> list[dict[str, str]]:
    """What in the association's document or parameters the API would not send itself."""
    association_id = association.association_id
    if association.document_name not in DOCUMENTS.values():
        allowed = ", ".join(DOCUMENTS.values())
        reason = f"document {association.document_name!r} is not one the API runs ({allowed})"
        return [{"association_id": association_id, "reason": reason}]
    refused = [
        {
            "association_id": association_id,
            "parameter": name,
            "reason": f"not a parameter of {association.document_name} the API vets",
        }
        for name in sorted(set(association.parameters) - _SHELL_DOCUMENT_PARAMETERS)
    ]
    for name, values in sorted(association.parameters.items()):
        if any("{{" in v for v in values):
            refused.append(
                {
                    "association_id": association_id,
                    "parameter": name,
                    "reason": "a parameter reference ({{…}}) is resolved when the association "
                    "runs and cannot be vetted",
                }
            )
    refused.extend(
        {"association_id": association_id, **entry}
        for entry in refused_commands(settings, association.parameters.get("commands", []))
    )
    for timeout in association.parameters.get("executionTimeout", []):
        limit = settings.execution_timeout_seconds
        if not timeout.isdigit() or int(timeout) > limit:
            refused.append(
                {
                    "association_id": association_id,
                    "parameter": "executionTimeout",
                    "reason": f"{timeout!r} is not a number of seconds up to {limit}",
                }
            )
    for directory in association.parameters.get("workingDirectory", []):
        if shell_metacharacters(directory):
            refused.append(
                {
                    "association_id": association_id,
                    "parameter": "workingDirectory",
                    "reason": "shell metacharacters",
                }
            )
    return refused
