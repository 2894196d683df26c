"""What a first deployment to AWS meets, checked on the templates before anyone deploys.

Each test here stands for a failure that only a real account would show: alarms that
never reach the on-call because CloudWatch cannot use the topic's key, four copies of
the contracts layer, a layer whose botocore shadows the Lambda runtime's.
"""

from __future__ import annotations

import copy
import os
import platform
import re
import shutil
import subprocess
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from selfservice.local.terraform import (
    TerraformUnavailableError,
    find_provider_mirror,
    terraform_binary,
)
from selfservice.templates import Template, load_platform, load_template

ROOT = Path(__file__).resolve().parents[2]
PLATFORM = load_platform(ROOT / "template.yaml")
SERVICE_TEMPLATES = [ROOT / "sam" / name for name in sorted(os.listdir(ROOT / "sam"))]

# ---------------------------------------------------------------- the alarm topic


def _statements(document: Any) -> list[dict[str, Any]]:
    statements = document.get("Statement", []) if isinstance(document, dict) else []
    return statements if isinstance(statements, list) else [statements]


def _as_set(value: Any) -> set[str]:
    return {str(item) for item in (value if isinstance(value, list) else [value])}


def _grants_cloudwatch(statement: dict[str, Any], actions: set[str]) -> bool:
    """An Allow to cloudwatch.amazonaws.com for ``actions``, only for this account's alarms."""
    principal = statement.get("Principal", {})
    condition = statement.get("Condition", {})
    keys = {key for test in condition.values() if isinstance(test, dict) for key in test}
    source_arn = next((t["aws:SourceArn"] for t in condition.values() if "aws:SourceArn" in t), "")
    return (
        statement.get("Effect") == "Allow"
        and isinstance(principal, dict)
        and _as_set(principal.get("Service")) == {"cloudwatch.amazonaws.com"}
        and actions <= _as_set(statement.get("Action"))
        and {"aws:SourceAccount", "aws:SourceArn"} <= keys
        and ":cloudwatch:" in str(source_arn)
        and ":alarm:" in str(source_arn)
    )


def alarm_topic_problems(body: dict[str, Any]) -> list[str]:
    """Why CloudWatch alarms could not publish to the root template's alarm topics."""
    resources = body.get("Resources", {})
    topics = {k: r for k, r in resources.items() if r.get("Type") == "AWS::SNS::Topic"}
    problems = []
    if not topics:
        return ["no alarm topic"]
    for logical_id, topic in topics.items():
        key_ref = topic.get("Properties", {}).get("KmsMasterKeyId")
        key_id = key_ref.get("Ref") if isinstance(key_ref, dict) else None
        key = resources.get(key_id or "", {})
        if key.get("Type") != "AWS::KMS::Key":
            problems.append(
                f"{logical_id}: KmsMasterKeyId {key_ref!r} is not a customer-managed key of this "
                "template (CloudWatch cannot use the AWS-managed alias/aws/sns key)"
            )
            continue
        properties = key.get("Properties", {})
        if properties.get("EnableKeyRotation") is not True:
            problems.append(f"{key_id}: key rotation is off")
        key_statements = _statements(properties.get("KeyPolicy"))
        if not any(
            _grants_cloudwatch(s, {"kms:Decrypt", "kms:GenerateDataKey*"}) for s in key_statements
        ):
            problems.append(
                f"{key_id}: the key policy does not let cloudwatch.amazonaws.com use the key "
                "(kms:Decrypt, kms:GenerateDataKey*) for this account's alarms"
            )
        if not any(
            s.get("Effect") == "Allow"
            and ":root" in str(s.get("Principal", {}).get("AWS", ""))
            and "kms:*" in _as_set(s.get("Action"))
            for s in key_statements
        ):
            problems.append(f"{key_id}: the account cannot administer its key")
        policies = [
            r
            for r in resources.values()
            if r.get("Type") == "AWS::SNS::TopicPolicy"
            and {"Ref": logical_id} in r.get("Properties", {}).get("Topics", [])
        ]
        if not any(
            _grants_cloudwatch(s, {"sns:Publish"})
            for policy in policies
            for s in _statements(policy["Properties"].get("PolicyDocument"))
        ):
            problems.append(f"{logical_id}: no topic policy lets this account's alarms publish")
    return problems


def test_cloudwatch_alarms_can_publish_to_the_alarm_topic() -> None:
    assert alarm_topic_problems(PLATFORM.body) == []


def test_the_aws_managed_sns_key_is_refused() -> None:
    """The setup before this check: the topic used alias/aws/sns."""
    body = copy.deepcopy(PLATFORM.body)
    body["Resources"]["AlarmTopic"]["Properties"]["KmsMasterKeyId"] = "alias/aws/sns"
    (problem,) = alarm_topic_problems(body)
    assert "AWS-managed alias/aws/sns" in problem


def test_a_key_cloudwatch_may_not_use_is_refused() -> None:
    body = copy.deepcopy(PLATFORM.body)
    policy = body["Resources"]["AlarmTopicKey"]["Properties"]["KeyPolicy"]
    policy["Statement"] = [s for s in policy["Statement"] if "Service" not in s["Principal"]]
    assert any("cloudwatch.amazonaws.com" in p for p in alarm_topic_problems(body))


def test_every_alarm_of_the_platform_pages_that_topic() -> None:
    topics = set(PLATFORM.resources("AWS::SNS::Topic"))
    for logical_id, application in PLATFORM.resources("AWS::Serverless::Application").items():
        passed = application["Properties"]["Parameters"]["AlarmTopicArn"]
        assert passed.get("Ref") in topics, logical_id


# ---------------------------------------------------------------- the contracts layer


def test_the_root_template_builds_the_one_contracts_layer() -> None:
    (layer,) = PLATFORM.layers().values()
    for logical_id, application in PLATFORM.resources("AWS::Serverless::Application").items():
        passed = application["Properties"]["Parameters"]
        assert passed.get("ContractsLayerArn") == {"Ref": layer.logical_id}, logical_id
    for template in PLATFORM.nested:
        # The service's own layer exists only when it is deployed alone.
        for logical_id, resource in template.resources("AWS::Serverless::LayerVersion").items():
            condition = resource.get("Condition")
            assert condition, f"{logical_id} ({template.path.name}) is built unconditionally"
            assert template.condition(condition) is False, template.path.name
        for function in template.functions():
            assert [(lay.logical_id, lay.template) for lay in function.layers] == [
                (layer.logical_id, PLATFORM.path)
            ], function.describe()


@pytest.mark.parametrize("path", SERVICE_TEMPLATES, ids=lambda p: p.name)
def test_a_service_deployed_alone_builds_its_own_layer(path: Path) -> None:
    template = load_template(path)
    for function in template.functions():
        assert [(lay.logical_id, lay.template) for lay in function.layers] == [
            ("ContractsLayer", template.path)
        ], function.describe()
        assert function.layers[0].content_uri == ROOT / "schemas"


def _layers(template: Template) -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"{logical_id} ({template.path.name})", resource)
        for logical_id, resource in template.resources("AWS::Serverless::LayerVersion").items()
    ]


def test_every_contracts_layer_is_built_by_the_schemas_makefile() -> None:
    makefile = (ROOT / "schemas/Makefile").read_text()
    layers = [layer for t in PLATFORM.walk() for layer in _layers(t)]
    assert len(layers) == 5
    for name, resource in layers:
        # BuildMethod python3.x would pip-install the requirements with every dependency,
        # botocore included; the Makefile removes what the runtime provides.
        assert resource["Metadata"]["BuildMethod"] == "makefile", name
        logical_id = name.split()[0]
        assert f"\nbuild-{logical_id}:" in makefile, name


FAKE_PIP = textwrap.dedent(
    """
    import pathlib, sys
    args = sys.argv[1:]
    assert args[0] == "install" and "--only-binary=:all:" in args, args
    assert args[args.index("--python-version") + 1] == "3.13", args
    target = pathlib.Path(args[args.index("--target") + 1])
    # What pip puts in the layer for schemas/requirements.txt: aws-xray-sdk (Powertools'
    # tracer) pulls botocore and its dependencies in.
    for name in [
        "aws_lambda_powertools", "pydantic", "pydantic_core", "cloudevents", "aws_xray_sdk",
        "dateutil", "boto3", "botocore", "s3transfer", "jmespath", "urllib3",
    ]:
        (target / name).mkdir(parents=True, exist_ok=True)
        (target / name / "__init__.py").write_text("")
        (target / f"{name}-1.0.dist-info").mkdir(exist_ok=True)
    (target / "jmespath-1.0.data").mkdir(exist_ok=True)
    (target / "bin").mkdir(exist_ok=True)
    (target / "bin" / "jp.py").write_text("")
    """
)


def test_the_layer_build_keeps_the_runtimes_sdk_out(tmp_path: Path) -> None:
    """Runs the real recipe, with pip replaced by a stand-in (no network in tests)."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("make is not installed")
    fake = tmp_path / "fake_pip.py"
    fake.write_text(FAKE_PIP)
    artifacts = tmp_path / "ContractsLayer"
    subprocess.run(
        [make, "-s", "-f", str(ROOT / "schemas/Makefile"), "build-ContractsLayer"],
        cwd=tmp_path,
        env={**os.environ, "ARTIFACTS_DIR": str(artifacts), "PIP": f"{sys.executable} {fake}"},
        check=True,
    )
    site = artifacts / "python"
    present = {path.name for path in site.iterdir()}
    for provided in ("boto3", "botocore", "s3transfer", "jmespath", "urllib3"):
        assert not {name for name in present if name.split("-")[0] == provided}, provided
    assert "bin" not in present
    assert {"aws_lambda_powertools", "pydantic", "aws_xray_sdk", "dateutil"} <= present
    contracts = site / "selfservice_contracts"
    assert (contracts / "__init__.py").is_file()
    assert (contracts / "products" / "ec2-app.json").is_file()
    assert not list(contracts.rglob("__pycache__"))


# ---------------------------------------------------------------- the build's own tools

BUILDSPEC = ROOT / "services/provisioner/buildspec.yml"


def _pyproject_pin(name: str) -> str:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"]:
        match = re.fullmatch(rf"{name}==(?P<version>\S+)", requirement)
        if match:
            return match["version"]
    raise AssertionError(f"pyproject.toml does not pin {name}")


def test_the_build_installs_the_boto3_the_project_pins() -> None:
    buildspec = yaml.safe_load(BUILDSPEC.read_text())
    variables = buildspec["env"]["variables"]
    assert variables["BOTO3_VERSION"] == _pyproject_pin("boto3")
    commands = [
        str(command)
        for phase in buildspec["phases"].values()
        for command in (phase or {}).get("commands", [])
    ]
    installs = [c for c in commands if "pip install" in c]
    assert installs, "the buildspec no longer installs boto3: update this test"
    for command in installs:
        requirements = re.findall(r"pip install (?:--?[\w-]+ )*(.+)$", command)
        for requirement in " ".join(requirements).split():
            # boto3 at its pin, or the review step's pinned requirements (checked below).
            assert requirement.strip("\"'") in {
                "boto3==$BOTO3_VERSION",
                "services/provisioner/buildtools/requirements.txt",
            }, command


def _constraints() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, _, version = line.strip().partition("==")
        if version:
            pins[name.lower().replace("_", "-")] = version
    return pins


def test_the_review_step_installs_exactly_what_constraints_pin() -> None:
    """review.py's packages (pydantic, the contracts' dependencies) at the project's pins,
    and every distribution they need among them: nothing is resolved afresh in a build."""
    from importlib import metadata  # noqa: PLC0415

    listed = {}
    for line in (
        (ROOT / "services/provisioner/buildtools/requirements.txt").read_text().splitlines()
    ):
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name, _, version = requirement.partition("==")
            listed[name.lower().replace("_", "-")] = version
    pins = _constraints()
    assert {name: pins.get(name) for name in listed} == listed
    needed = {"pydantic", "cloudevents"}
    closure: set[str] = set()
    while needed:
        name = needed.pop()
        closure.add(name)
        for requirement in metadata.requires(name) or []:
            if "extra ==" in requirement:
                continue
            dependency = re.split(r"[ <>=!;\[(~]", requirement, maxsplit=1)[0]
            dependency = dependency.lower().replace("_", "-")
            if dependency not in closure:
                needed.add(dependency)
    assert closure == set(listed)


# ---------------------------------------------------------------- terraform provider locks

PRODUCTS = sorted(p for p in (ROOT / "services/provisioner/products").iterdir() if p.is_dir())
_LOCK_BLOCK = re.compile(
    r'provider "(?P<source>[^"]+)" \{\s*version\s*=\s*"(?P<version>[^"]+)"'
    r".*?hashes = \[(?P<hashes>[^\]]*)\]",
    re.DOTALL,
)


def _lock(product: Path) -> dict[str, tuple[str, set[str]]]:
    text = (product / "terraform/.terraform.lock.hcl").read_text()
    return {
        m["source"]: (m["version"], set(re.findall(r'"([^"]+)"', m["hashes"])))
        for m in _LOCK_BLOCK.finditer(text)
    }


@pytest.mark.parametrize("product", PRODUCTS, ids=lambda p: p.name)
def test_each_product_locks_its_providers_for_codebuild(product: Path) -> None:
    """Without a lock, every build may pick a newer provider than the one tested."""
    versions = (product / "terraform/versions.tf").read_text()
    required = set(re.findall(r'source\s*=\s*"([^"]+)"', versions))
    lock = _lock(product)
    assert {source.removeprefix("registry.terraform.io/") for source in lock} == required
    version, hashes = lock["registry.terraform.io/hashicorp/aws"]
    (constraint,) = re.findall(
        r'source\s*=\s*"hashicorp/aws"\s*version\s*=\s*"~>\s*([^"]+)"', versions
    )
    # "~> 5.100": at least 5.100, below 6.
    locked, lowest = (tuple(int(n) for n in v.split(".")) for v in (version, constraint))
    assert locked >= lowest, (version, constraint)
    assert locked[0] == lowest[0], (version, constraint)
    # zh: hashes are the registry's release zips, every platform: CodeBuild (linux_arm64)
    # downloads the provider and checks it against them; h1: covers an unpacked mirror.
    assert len({h for h in hashes if h.startswith("zh:")}) >= 2, hashes
    assert any(h.startswith("h1:") for h in hashes), hashes


def _this_platform() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)
    return f"{platform.system().lower()}_{arch}"


@pytest.mark.e2e
@pytest.mark.parametrize("product", PRODUCTS, ids=lambda p: p.name)
def test_the_offline_mirror_satisfies_each_lock(product: Path, tmp_path: Path) -> None:
    """The local CodeBuild's `terraform init` accepts the mirror's provider (it checks it)."""
    try:
        mirror = find_provider_mirror()
        terraform = terraform_binary()
    except TerraformUnavailableError:
        pytest.skip("terraform and its offline AWS provider are needed")
    work = tmp_path / product.name
    shutil.copytree(product / "terraform", work, ignore=shutil.ignore_patterns(".terraform"))
    before = (work / ".terraform.lock.hcl").read_text()
    result = subprocess.run(
        [
            terraform,
            "providers",
            "lock",
            "-no-color",
            f"-fs-mirror={mirror}",
            f"-platform={_this_platform()}",
        ],
        cwd=work,
        env={**os.environ, "CHECKPOINT_DISABLE": "1", "TF_CLI_CONFIG_FILE": os.devnull},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (work / ".terraform.lock.hcl").read_text() == before, (
        "the lock lacks the offline mirror's hash: regenerate it (docs/provisioner.md)"
    )


# ---------------------------------------------------------------- quotas

_QUOTA_PROPERTIES = {
    "AWS::Serverless::Function": "ReservedConcurrentExecutions",
    "AWS::CodeBuild::Project": "ConcurrentBuildLimit",
}


def _quotas(template: Template) -> list[tuple[str, Any]]:
    return [
        (f"{logical_id} ({template.path.name})", resource["Properties"][key])
        for kind, key in _QUOTA_PROPERTIES.items()
        for logical_id, resource in template.resources(kind).items()
        if key in resource.get("Properties", {})
    ]


def test_quotas_are_parameters_that_reserve_nothing_by_default() -> None:
    """A new account's quotas (Lambda 10, CodeBuild 1) must not fail the first deploy."""
    quotas = [quota for template in PLATFORM.nested for quota in _quotas(template)]
    assert len(quotas) == 4, quotas
    for template in PLATFORM.nested:
        application = next(
            a
            for a in PLATFORM.resources("AWS::Serverless::Application").values()
            if Path(a["Properties"]["Location"]).name == template.path.name
        )
        for name, value in _quotas(template):
            # !If [Condition, !Ref Parameter, !Ref AWS::NoValue]
            condition, chosen, otherwise = value["Fn::If"]
            assert otherwise == {"Ref": "AWS::NoValue"}, name
            parameter = chosen["Ref"]
            # The root stack offers the parameter, with the same safe default.
            assert application["Properties"]["Parameters"][parameter] == {"Ref": parameter}
            root_default = PLATFORM.body["Parameters"][parameter]["Default"]
            assert root_default == template.body["Parameters"][parameter]["Default"] == 0
            alone = load_template(template.path)
            assert alone.condition(condition) is False, f"{name} reserves by default"
