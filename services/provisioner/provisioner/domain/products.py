"""Products are data: a folder each under ``services/provisioner/products/``.

Each folder holds ``product.json`` (the manifest: which variable schema it implements,
whether builds must run one at a time, where the SSM allow tag is set, which Terraform
variables the module declares, and under ``plan`` what a reviewer is shown of its plans
and which plan policies apply), the Terraform module in ``terraform/``, and
``deploy-policy.json``, the IAM policy of the role Terraform assumes for it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from provisioner.domain.plan.settings import ProductPlanSettings
from selfservice_contracts.request import ProvisioningRequest

__all__ = ["PRODUCTS_DIR", "InvalidProductError", "Product", "UnknownProductError", "load_product"]

PRODUCTS_DIR = Path(__file__).resolve().parents[2] / "products"


class UnknownProductError(KeyError):
    """No product folder exists for the name."""


class InvalidProductError(ValueError):
    """A product's manifest does not validate."""


@dataclass(frozen=True)
class Product:
    """One product's manifest."""

    name: str
    schema: str
    serial: bool
    terraform_variables: tuple[str, ...]
    ssm_run_allowed_environments: tuple[str, ...] = ()
    plan: ProductPlanSettings = field(default_factory=ProductPlanSettings)
    """What the plan summary shows and which plan policies apply."""

    @property
    def folder(self) -> Path:
        """The product's folder."""
        return PRODUCTS_DIR / self.name

    def state_key(self, request: ProvisioningRequest) -> str:
        """The Terraform state key: one state per product and ticket, never shared."""
        instance = request.instance or request.ticket
        return f"{self.name}/{instance.system.value}/{instance.key}.tfstate"

    def tfvars(self, request: ProvisioningRequest) -> dict[str, Any]:
        """The variables document of a build: identifiers, tags and the product variables.

        Only variables the module declares are passed; nothing secret is ever in it.
        """
        instance = request.instance or request.ticket
        candidates: dict[str, Any] = {
            **request.parameters,
            "request_id": request.request_id,
            "ticket": str(instance),
            "ticket_key": instance.key,
            "requested_by": request.requester.id,
            "ssm_run_allowed": request.environment in self.ssm_run_allowed_environments,
        }
        if request.environment is not None:
            candidates["environment"] = request.environment
        if request.cost_center is not None:
            candidates["cost_center"] = request.cost_center
        return {k: v for k, v in candidates.items() if k in self.terraform_variables}


@cache
def load_product(name: str) -> Product:
    """The product named ``name`` (manifests are read once)."""
    manifest_path = PRODUCTS_DIR / name / "product.json"
    if not manifest_path.is_file():
        raise UnknownProductError(name)
    manifest = json.loads(manifest_path.read_text())
    try:
        plan = ProductPlanSettings.model_validate(manifest.get("plan", {}))
    except ValidationError as exc:
        raise InvalidProductError(f"{manifest_path}: plan: {exc}") from None
    return Product(
        name=name,
        schema=manifest["schema"],
        serial=manifest.get("concurrency") == "serial",
        terraform_variables=tuple(manifest["terraform_variables"]),
        ssm_run_allowed_environments=tuple(manifest.get("ssm_run_allowed_environments", [])),
        plan=plan,
    )
