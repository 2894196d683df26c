"""Products are data: manifests, modules, schemas and deploy policies agree."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from provisioner.domain.products import PRODUCTS_DIR, load_product
from selfservice.local.terraform import cli_config
from selfservice_contracts.products import product_names, variable_schema
from tests.conftest import ROOT
from tests.provisioner.fakes import request

PRODUCTS = sorted(p.name for p in PRODUCTS_DIR.iterdir() if p.is_dir())
IDENTIFIERS = {"request_id", "ticket", "ticket_key", "requested_by", "ssm_run_allowed"}


def test_every_product_folder_has_a_variable_schema() -> None:
    assert PRODUCTS == ["aws-account", "ec2-app"]
    assert set(PRODUCTS) == set(product_names())


def _declared_variables(product: str) -> set[str]:
    text = "\n".join(p.read_text() for p in (PRODUCTS_DIR / product / "terraform").glob("*.tf"))
    return set(re.findall(r'^variable "([a-z_0-9]+)"', text, flags=re.MULTILINE))


@pytest.mark.parametrize("product", PRODUCTS)
def test_the_manifest_lists_what_the_module_declares(product: str) -> None:
    manifest = load_product(product)
    declared = _declared_variables(product)
    assert set(manifest.terraform_variables) <= declared
    # Every schema variable reaches Terraform; the rest are module settings with defaults.
    schema = set(variable_schema(manifest.schema)["properties"])
    assert schema <= set(manifest.terraform_variables)


@pytest.mark.parametrize("product", PRODUCTS)
def test_tfvars_hold_only_declared_variables(product: str) -> None:
    manifest = load_product(product)
    document = manifest.tfvars(request(product=product))
    assert set(document) <= set(manifest.terraform_variables)
    assert {"request_id", "ticket", "ticket_key"} <= set(document)


@pytest.mark.parametrize("product", PRODUCTS)
def test_deploy_policies_have_no_wildcard_on_everything(product: str) -> None:
    policy = json.loads((PRODUCTS_DIR / product / "deploy-policy.json").read_text())
    for statement in policy["Statement"]:
        actions = (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
        assert "*" not in actions
        assert not [a for a in actions if a.endswith(":*")], statement["Sid"]


TERRAFORM = shutil.which("terraform")


@pytest.mark.skipif(TERRAFORM is None, reason="terraform is not installed")
@pytest.mark.parametrize("product", PRODUCTS)
def test_terraform_fmt_and_validate(product: str, tmp_path: Path) -> None:
    module = PRODUCTS_DIR / product / "terraform"
    fmt = subprocess.run(
        [str(TERRAFORM), "fmt", "-check", "-diff", "-recursive", str(module)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert fmt.returncode == 0, fmt.stdout
    work = tmp_path / product
    shutil.copytree(module, work)
    env = {
        "TF_CLI_CONFIG_FILE": str(cli_config(tmp_path)),
        "PATH": "/usr/bin:/bin",
        "TF_IN_AUTOMATION": "1",
        "HOME": str(tmp_path),
    }
    for command in (
        ["init", "-backend=false", "-input=false", "-no-color"],
        ["validate", "-no-color"],
    ):
        completed = subprocess.run(
            [str(TERRAFORM), *command],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert completed.returncode == 0, completed.stdout + completed.stderr


def test_the_buildspec_passes_no_secrets_and_keeps_one_state_per_ticket() -> None:
    text = (ROOT / "services/provisioner/buildspec.yml").read_text()
    # Variables come only as a tfvars file, never on the command line.
    assert "-var " not in text
    assert "-var=" not in text
    assert "key=$STATE_KEY" in text
    assert "use_lockfile=true" in text
    other = request().ticket.model_copy(update={"key": "RITM0010043"})
    keys = {load_product("ec2-app").state_key(request(ticket=t)) for t in (request().ticket, other)}
    assert len(keys) == 2
