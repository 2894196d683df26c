"""What the local platform seeds a fresh deployment with, and the data files it reads.

``notifier.yaml`` (the notifier's configuration document, the sandbox's URL added at
start), ``itsm.yaml`` (the ITSM sandbox's accounts — also the notifier's credential
secrets — and its Jira workflow) and ``organization.yaml`` (the landing zone's
organizational units). Intake's and the provisioner's documents are the repository's own
examples, ``config/intake.example.json`` and ``config/provisioner.example.json``. The
local operator is an IAM user created here too; a restart of the embedded AWS seeds it
all again and puts every secret's value back.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Any

import yaml

from selfservice.local.deploy import Deployment, StackDeployment
from selfservice.local.http_front import IamAuthorizer
from selfservice.local.intrinsics import ACCOUNT, REGION
from selfservice.local.sigv4 import Caller

__all__ = [
    "configure",
    "create_operator",
    "load",
    "placeholder_operator",
    "restore_secrets",
    "secret_values",
]

OPERATOR_USER = "local-operator"
NOTIFIER_CREDENTIAL_SECRETS = {
    "ServiceNowCredentialsSecret": "servicenow",
    "JiraCredentialsSecret": "jira",
}
"""The notifier's credential secrets (logical ids) → the sandbox account each holds."""
Client = Callable[[str], Any]
"""A boto3 client of the embedded AWS, by service, as the account root."""


@cache
def load(name: str) -> Any:
    """The seed file ``<name>.yaml``, parsed (cached: treat it as read-only)."""
    text = files(__name__).joinpath(f"{name}.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def configure(client: Client, deployment: Deployment, *, root: Path, sandbox_url: str) -> None:
    """Seed intake's, the provisioner's and the notifier's configuration, the notifier's
    ITSM credentials (the sandbox's accounts) and the landing zone's organizational units."""
    ssm = client("ssm")
    ssm.put_parameter(
        Name=_stack(deployment, "Intake").refs["IntakeConfig"],
        Type="String",
        Overwrite=True,
        Value=(root / "config/intake.example.json").read_text(),
    )
    ssm.put_parameter(
        Name=_stack(deployment, "Provisioner").refs["ProvisionerConfig"],
        Type="String",
        Overwrite=True,
        Value=(root / "config/provisioner.example.json").read_text(),
    )
    notifier = _stack(deployment, "Notifier")
    seeded = load("notifier")
    document = {
        **seeded,
        "servicenow": {"api_url": sandbox_url, **seeded["servicenow"]},
        "jira": {"api_url": sandbox_url, **seeded["jira"]},
    }
    ssm.put_parameter(
        Name=notifier.refs["NotifierConfig"],
        Type="String",
        Overwrite=True,
        Value=json.dumps(document),
    )
    accounts = load("itsm")["accounts"]
    secret_store = client("secretsmanager")
    for secret, system in NOTIFIER_CREDENTIAL_SECRETS.items():
        secret_store.put_secret_value(
            SecretId=notifier.refs[secret], SecretString=json.dumps(accounts[system])
        )
    organizations = client("organizations")
    organizations.create_organization(FeatureSet="ALL")
    root_id = organizations.list_roots()["Roots"][0]["Id"]
    for top, children in load("organization").items():
        parent = organizations.create_organizational_unit(ParentId=root_id, Name=top)
        for child in children:
            organizations.create_organizational_unit(
                ParentId=parent["OrganizationalUnit"]["Id"], Name=child
            )


def create_operator(client: Client, authorize: Callable[..., None]) -> IamAuthorizer:
    """The local operator: an IAM user of the embedded AWS with ``PowerUserAccess``
    (everything but IAM and Organizations: the ops API's ``execute-api:Invoke``, the
    AWS CLI on builds and associations, ``selfservice status``/``replay``/``dlq``),
    and a fresh access key each run. In AWS, grant operators ``execute-api:Invoke`` on
    the ops API (docs/ops-api.md) and what the operator tools read."""
    iam = client("iam")
    iam.create_user(UserName=OPERATOR_USER)
    iam.attach_user_policy(
        UserName=OPERATOR_USER, PolicyArn="arn:aws:iam::aws:policy/PowerUserAccess"
    )
    user = iam.get_user(UserName=OPERATOR_USER)["User"]
    key = iam.create_access_key(UserName=OPERATOR_USER)["AccessKey"]
    caller = Caller(
        access_key=key["AccessKeyId"],
        account_id=ACCOUNT,
        user_arn=user["Arn"],
        user_id=user["UserId"],
    )
    return IamAuthorizer(
        {key["AccessKeyId"]: (key["SecretAccessKey"], caller)},
        region=REGION,
        authorize=authorize,
    )


def placeholder_operator() -> IamAuthorizer:
    """Credentials nobody holds, standing for the operator until the platform starts."""
    return IamAuthorizer(
        {
            "AKIALOCALOPERATOR": (
                secrets.token_urlsafe(24),
                Caller(
                    access_key="AKIALOCALOPERATOR",
                    account_id=ACCOUNT,
                    user_arn=f"arn:aws:iam::{ACCOUNT}:user/{OPERATOR_USER}",
                    user_id="AIDALOCALOPERATOR",
                ),
            )
        }
    )


def secret_values(client: Client, deployment: Deployment) -> dict[tuple[str, str], str]:
    """Every secret's value, by (stack, logical id): what a restart restores."""
    store = client("secretsmanager")
    return {
        (stack.name, logical): store.get_secret_value(SecretId=stack.refs[logical])["SecretString"]
        for stack, logical in _secrets(deployment)
    }


def restore_secrets(
    client: Client, deployment: Deployment, values: dict[tuple[str, str], str]
) -> None:
    """Senders keep signing with the secrets they were given: put the same values back."""
    store = client("secretsmanager")
    for stack, logical in _secrets(deployment):
        value = values.get((stack.name, logical))
        if value is not None:
            store.put_secret_value(SecretId=stack.refs[logical], SecretString=value)


def _secrets(deployment: Deployment) -> list[tuple[StackDeployment, str]]:
    return [
        (stack, logical)
        for stack in deployment.stacks()
        for logical, resource in stack.template.resources().items()
        if resource.get("Type") == "AWS::SecretsManager::Secret" and logical in stack.refs
    ]


def _stack(deployment: Deployment, suffix: str) -> StackDeployment:
    return next(s for s in deployment.stacks() if s.name.endswith(suffix))
