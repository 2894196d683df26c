"""Products are data: each offered product has a JSON Schema of its variables here.

A product's schema is the contract between the ITSM form (through intake's field
mapping), the policy guardrails and the Terraform module of the product. Adding a
product is adding a file (and its module and policy); no code changes.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

__all__ = ["UnknownProductError", "product_names", "variable_schema"]


class UnknownProductError(KeyError):
    """No variable schema exists for the product name."""


@cache
def product_names() -> tuple[str, ...]:
    """Names of every product with a variable schema, sorted."""
    folder = resources.files(__name__)
    return tuple(
        sorted(
            entry.name.removesuffix(".json")
            for entry in folder.iterdir()
            if entry.name.endswith(".json")
        )
    )


@cache
def variable_schema(product: str) -> dict[str, Any]:
    """The JSON Schema (draft-07) of a product's variables."""
    if product not in product_names():
        raise UnknownProductError(product)
    text = resources.files(__name__).joinpath(f"{product}.json").read_text(encoding="utf-8")
    schema: dict[str, Any] = json.loads(text)
    return schema
