"""A typed reading of ``terraform show -json`` output: the resources before and after.

Only what the summary, the policies and the estimate need is read: each managed
resource's change (actions, before, after, what is known only after the apply, the
paths that force a replacement) and the configuration's references, which say which
launch template an Auto Scaling group uses while its id is still unknown.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from selfservice_contracts.plan import ChangeAction

__all__ = [
    "PlanFormatError",
    "PlannedResource",
    "TerraformPlan",
    "lookup",
    "plan_sha256",
]


class PlanFormatError(ValueError):
    """The document is not the JSON of a Terraform plan this code understands."""


def plan_sha256(plan_file: bytes) -> str:
    """SHA-256 (hex) of the binary plan file: what an approval approves."""
    return hashlib.sha256(plan_file).hexdigest()


def lookup(values: Any, path: str) -> list[Any]:
    """Every value at a dotted ``path``; lists (nested blocks, counts) are walked through.

    ``lookup({"ebs": [{"volume_size": 20}]}, "ebs.volume_size") == [20]``; a missing
    key yields nothing.
    """
    found = [values]
    for key in path.split("."):
        step: list[Any] = []
        for value in found:
            for item in value if isinstance(value, list) else [value]:
                if isinstance(item, dict) and key in item:
                    step.append(item[key])
        found = step
    flat: list[Any] = []
    for value in found:
        flat.extend(value if isinstance(value, list) else [value])
    return flat


def _action(actions: list[str]) -> ChangeAction | None:
    match sorted(actions):
        case ["create"]:
            return ChangeAction.CREATE
        case ["update"]:
            return ChangeAction.UPDATE
        case ["delete"]:
            return ChangeAction.DELETE
        case ["create", "delete"]:
            return ChangeAction.REPLACE
        case ["no-op"] | ["read"]:
            return None
    raise PlanFormatError(f"unknown action list {actions}")


@dataclass(frozen=True)
class PlannedResource:
    """One managed resource of the plan, with its values before and after the change."""

    address: str
    module: str
    """Module address (``""`` for the root module)."""
    type: str
    name: str
    action: ChangeAction | None
    """``None``: the plan leaves it as it is."""
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    after_unknown: dict[str, Any] = field(default_factory=dict)
    replace_paths: list[list[Any]] = field(default_factory=list)
    references: dict[str, list[str]] = field(default_factory=dict)
    """Configuration attribute path → the addresses its expression refers to."""

    def unknown(self, path: str) -> bool:
        """Whether the after-value at ``path`` is computed during the apply."""
        return any(value is True for value in lookup(self.after_unknown, path))

    def refers_to(self, path: str) -> list[str]:
        """Resource addresses the configuration of ``path`` refers to (module-qualified)."""
        prefix = f"{self.module}." if self.module else ""
        return [prefix + ref for ref in self.references.get(path, [])]

    @property
    def exists_before(self) -> bool:
        """Whether it exists before the apply."""
        return self.before is not None and self.action is not ChangeAction.CREATE

    @property
    def exists_after(self) -> bool:
        """Whether it exists after the apply."""
        return self.after is not None and self.action is not ChangeAction.DELETE


def _references(expressions: Any, prefix: str = "") -> Iterator[tuple[str, list[str]]]:
    """Configuration expressions flattened to (path, references) with block indices dropped."""
    if isinstance(expressions, list):
        for item in expressions:
            yield from _references(item, prefix)
        return
    if not isinstance(expressions, dict):
        return
    if "references" in expressions and isinstance(expressions["references"], list):
        yield prefix.rstrip("."), [r for r in expressions["references"] if isinstance(r, str)]
    for key, value in expressions.items():
        if key not in ("references", "constant_value") and isinstance(value, dict | list):
            yield from _references(value, f"{prefix}{key}.")


def _configuration_references(module: dict[str, Any], address: str = "") -> dict[str, Any]:
    """Resource configuration address (no index) → attribute path → references."""
    found: dict[str, Any] = {}
    for resource in module.get("resources", []):
        refs: dict[str, list[str]] = {}
        for path, targets in _references(resource.get("expressions", {})):
            refs.setdefault(path, []).extend(targets)
        qualified = f"{address}.{resource['address']}" if address else resource["address"]
        found[qualified] = refs
    for name, call in module.get("module_calls", {}).items():
        child = f"{address}.module.{name}" if address else f"module.{name}"
        found.update(_configuration_references(call.get("module", {}), child))
    return found


@dataclass(frozen=True)
class TerraformPlan:
    """The managed resources of one plan, in the plan's order."""

    terraform_version: str
    resources: list[PlannedResource]
    variables: dict[str, Any]

    @classmethod
    def from_json(cls, document: dict[str, Any]) -> TerraformPlan:
        """Read ``terraform show -json`` output."""
        if not isinstance(document.get("format_version"), str) or "resource_changes" not in (
            document
        ):
            raise PlanFormatError("not a Terraform plan (no format_version or resource_changes)")
        config = _configuration_references(document.get("configuration", {}).get("root_module", {}))
        resources = []
        for change in document["resource_changes"]:
            if change.get("mode") != "managed":
                continue
            body = change["change"]
            module = change.get("module_address", "")
            config_address = f"{module}.{change['type']}.{change['name']}".lstrip(".")
            resources.append(
                PlannedResource(
                    address=change["address"],
                    module=module,
                    type=change["type"],
                    name=change["name"],
                    action=_action(body["actions"]),
                    before=body.get("before"),
                    after=body.get("after"),
                    after_unknown=body.get("after_unknown") or {},
                    replace_paths=body.get("replace_paths") or [],
                    references=config.get(config_address, {}),
                )
            )
        variables = {k: v.get("value") for k, v in document.get("variables", {}).items()}
        return cls(document.get("terraform_version", "unknown"), resources, variables)

    def changed(self) -> list[PlannedResource]:
        """Resources the apply creates, updates, replaces or deletes."""
        return [r for r in self.resources if r.action is not None]

    def by_address(self, address: str) -> PlannedResource | None:
        """The resource (or the first instance of a counted one) at ``address``."""
        for resource in self.resources:
            if resource.address == address or resource.address.startswith(f"{address}["):
                return resource
        return None
