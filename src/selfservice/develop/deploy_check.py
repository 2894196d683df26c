"""``make deploy-check``: what a first ``sam deploy`` would meet, offline, in about a minute.

Steps, each reported with its duration; the first failure ends the run with exit 1:

1. ``sam validate --lint`` on ``template.yaml`` and every ``sam/*.yaml``;
2. ``sam build`` with the functions' runtime Python (python3.13) when it is on PATH (or
   named by ``SELFSERVICE_LAMBDA_PYTHON``), else skipped with a message naming
   ``sam build --use-container``; a built contracts layer must not carry the boto3 and
   botocore the Lambda runtime provides;
3. ``sam package`` into the embedded AWS's S3 (a moto server on 127.0.0.1, dummy
   credentials): every code, layer and nested template is uploaded and referenced by URL;
4. the SAM transform (samtranslator) over the packaged root and nested templates;
5. cfn-lint over the transformed CloudFormation.

The SAM CLI comes from its own pinned venv (``.venv-sam``, ``tools/sam-requirements.txt``);
the transform and cfn-lint are the project's own pins. Nothing leaves the machine except
``sam build``'s downloads from the package index.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from cfnlint.decode import cfn_yaml

__all__ = [
    "LAMBDA_PYTHON_ENV",
    "RUNTIME_PROVIDED",
    "CheckFailedError",
    "find_lambda_python",
    "lint_transformed",
    "main",
    "transform",
]

LAMBDA_PYTHON = "python3.13"
LAMBDA_PYTHON_ENV = "SELFSERVICE_LAMBDA_PYTHON"
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
REGION = "us-east-1"
# A value for the parameters without a default (the services' EventBusName).
_PLACEHOLDER = "selfservice-bus"


class CheckFailedError(RuntimeError):
    """A step found a template that would not deploy."""


@dataclass
class _Context:
    root: Path
    sam: Path
    work: Path
    templates: list[Path]


def _sam_environment(work: Path, extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """SAM CLI without telemetry or its weekly version check (a call to the index)."""
    app_dir = work / "sam-app"
    app_dir.mkdir(parents=True, exist_ok=True)
    (app_dir / "metadata.json").write_text(
        json.dumps({"telemetryEnabled": False, "lastVersionCheck": time.time()})
    )
    return {
        **os.environ,
        "SAM_CLI_TELEMETRY": "0",
        "__SAM_CLI_APP_DIR": str(app_dir),
        "AWS_DEFAULT_REGION": REGION,
        **(extra or {}),
    }


def _run(command: list[str], *, cwd: Path, env: Mapping[str, str]) -> str:
    result = subprocess.run(  # noqa: S603 - our own tools, no shell
        command, cwd=cwd, env=dict(env), capture_output=True, text=True, check=False
    )
    output = (result.stdout + result.stderr).strip()
    if result.returncode != 0:
        raise CheckFailedError(f"{' '.join(command[:3])} … exited {result.returncode}\n{output}")
    return output


def find_lambda_python() -> Path | None:
    """The functions' runtime Python: ``SELFSERVICE_LAMBDA_PYTHON`` or python3.13 on PATH.

    A pyenv shim of a version not selected is on PATH but does not run: it does not count.
    """
    named = os.environ.get(LAMBDA_PYTHON_ENV)
    candidate = named or shutil.which(LAMBDA_PYTHON)
    if not candidate:
        return None
    try:
        result = subprocess.run(  # noqa: S603 - an interpreter path, no shell
            [candidate, "-c", "import sys; print(sys.version_info[:2])"],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except OSError:
        return None
    if result.returncode != 0 or result.stdout.strip() != "(3, 13)":
        if named:
            raise CheckFailedError(f"{LAMBDA_PYTHON_ENV}={named} is not a working Python 3.13")
        return None
    return Path(candidate)


# ---------------------------------------------------------------- the steps


def _validate(context: _Context) -> str:
    env = _sam_environment(context.work, _dummy_credentials())
    # One template per `sam validate`; most of each run is the CLI starting, so two at once.
    with ThreadPoolExecutor(max_workers=2) as pool:
        runs = [
            pool.submit(
                _run,
                [str(context.sam), "validate", "--lint", "--template-file", str(template)],
                cwd=context.root,
                env=env,
            )
            for template in context.templates
        ]
        for run in runs:
            run.result()
    return f"{len(context.templates)} templates valid"


def _build(context: _Context) -> str:
    build_dir = context.work / "build"
    shutil.rmtree(build_dir, ignore_errors=True)  # never package a stale build
    python = find_lambda_python()
    if python is None:
        raise _SkippedError(
            f"{LAMBDA_PYTHON} is not on PATH (the functions' runtime; sam build needs it). "
            f"Install Python 3.13, or set {LAMBDA_PYTHON_ENV} to one, or build in Docker with "
            "`sam build --use-container`. Packaging the unbuilt templates instead."
        )
    env = _sam_environment(
        context.work,
        {"PATH": f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}"},
    )
    _run(
        [
            str(context.sam),
            "build",
            "--template-file",
            str(context.root / "template.yaml"),
            "--build-dir",
            str(build_dir),
            "--cache-dir",
            str(context.work / "cache"),
            "--cached",
            "--parallel",
        ],
        cwd=context.root,
        env=env,
    )
    layers = sorted(build_dir.rglob("ContractsLayer"))
    if not layers:
        raise CheckFailedError(f"sam build produced no ContractsLayer under {build_dir}")
    for layer in layers:
        shadowing = [name for name in RUNTIME_PROVIDED if (layer / "python" / name).exists()]
        if shadowing:
            raise CheckFailedError(
                f"{layer}: the layer carries {', '.join(shadowing)}, which would shadow the "
                "Lambda runtime's (schemas/Makefile removes them)"
            )
    return f"built with {python}; {len(layers)} contracts layer build(s) free of boto3/botocore"


def _dummy_credentials() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",  # the embedded AWS accepts any
        "AWS_SESSION_TOKEN": "testing",
        "AWS_REGION": REGION,
    }


def _package(context: _Context) -> str:
    import boto3  # noqa: PLC0415 - only this step talks to the embedded S3

    from selfservice.local.moto_server import EmbeddedAws  # noqa: PLC0415

    built = context.work / "build" / "template.yaml"
    template = built if built.is_file() else context.root / "template.yaml"
    packaged = context.work / "packaged.yaml"
    bucket = "selfservice-deploy-check"
    with EmbeddedAws(log_path=context.work / "moto.log") as aws:
        s3 = boto3.client(
            "s3",
            region_name=REGION,
            endpoint_url=aws.endpoint,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",  # noqa: S106 - the embedded AWS accepts any
        )
        s3.create_bucket(Bucket=bucket)
        env = _sam_environment(
            context.work,
            {
                **_dummy_credentials(),
                "AWS_ENDPOINT_URL": aws.endpoint,
                "AWS_ENDPOINT_URL_S3": aws.endpoint,
            },
        )
        _run(
            [
                str(context.sam),
                "package",
                "--template-file",
                str(template),
                "--s3-bucket",
                bucket,
                "--output-template-file",
                str(packaged),
            ],
            cwd=context.root,
            env=env,
        )
        keys = {item["Key"] for item in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
        nested = _fetch_nested(packaged, bucket, keys, s3.get_object, context.work)
    return f"{len(keys)} artifacts uploaded; {len(nested)} nested templates packaged"


def _fetch_nested(
    packaged: Path,
    bucket: str,
    keys: set[str],
    get_object: Callable[..., Any],
    work: Path,
) -> list[Path]:
    """Check every local path became an S3 reference; save the nested templates."""
    body = cfn_yaml.load(str(packaged))
    saved = []
    for logical_id, resource in body.get("Resources", {}).items():
        properties = resource.get("Properties", {})
        for key in ("CodeUri", "ContentUri"):
            if key in properties and not str(properties[key]).startswith("s3://"):
                raise CheckFailedError(f"{logical_id}: {key} {properties[key]} was not uploaded")
        if resource.get("Type") != "AWS::Serverless::Application":
            continue
        location = str(properties.get("Location", ""))
        path = urlparse(location).path.lstrip("/")
        key = path.removeprefix(f"{bucket}/")
        if key not in keys:
            raise CheckFailedError(f"{logical_id}: Location {location} is not in the bucket")
        target = work / "packaged" / f"{logical_id}.yaml"
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(get_object(Bucket=bucket, Key=key)["Body"].read())
        for nested_id, nested in cfn_yaml.load(str(target)).get("Resources", {}).items():
            for uri in ("CodeUri", "ContentUri"):
                value = nested.get("Properties", {}).get(uri)
                if value is not None and not str(value).startswith("s3://"):
                    raise CheckFailedError(f"{logical_id}/{nested_id}: {uri} {value} not uploaded")
        saved.append(target)
    return saved


def transform(body: Mapping[str, Any]) -> dict[str, Any]:
    """The SAM transform, as CloudFormation runs it, with each parameter's default.

    Only the Region and partition are known (as to CloudFormation's transform, which leaves
    the stack's name and account to the deployment); every other intrinsic stays one.
    """
    from selfservice import sam_transform  # noqa: PLC0415 - samtranslator is slow to import

    parameters = {
        name: spec.get("Default", _PLACEHOLDER) for name, spec in body.get("Parameters", {}).items()
    }
    return sam_transform.translate(json.loads(json.dumps(body)), parameters, region=REGION)


def lint_transformed(templates: Mapping[str, Mapping[str, Any]], work: Path) -> list[str]:
    """Transform each template (name → body) and run cfn-lint over the output; findings."""
    out = work / "transformed"
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for name, body in templates.items():
        path = out / f"{name}.json"
        path.write_text(json.dumps(transform(body), indent=1, default=str))
        files.append(str(path))
    result = subprocess.run(  # noqa: S603 - the project's cfn-lint, no shell
        [str(Path(sys.executable).parent / "cfn-lint"), "--format", "parseable", "--", *files],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode not in (0, 4, 8) and not result.stdout:  # crash, not findings
        raise CheckFailedError(f"cfn-lint failed to run:\n{result.stderr}")
    return [line for line in result.stdout.splitlines() if line.strip()]


def _transform_and_lint(context: _Context) -> str:
    root = cfn_yaml.load(str(context.work / "packaged.yaml"))
    for resource in root.get("Resources", {}).values():
        if resource.get("Type") == "AWS::Serverless::Application":
            # Uploaded to the embedded S3; in AWS the URL is S3's own.
            path = urlparse(str(resource["Properties"]["Location"])).path
            resource["Properties"]["Location"] = f"https://s3.{REGION}.amazonaws.com{path}"
    templates: dict[str, Any] = {"template": root}
    for nested in sorted((context.work / "packaged").glob("*.yaml")):
        templates[nested.stem] = cfn_yaml.load(str(nested))
    findings = lint_transformed(templates, context.work)
    if findings:
        raise CheckFailedError("cfn-lint on the transformed templates:\n" + "\n".join(findings))
    return f"{len(templates)} templates transformed; cfn-lint clean"


# ---------------------------------------------------------------- running


class _SkippedError(Exception):
    """A step that cannot run on this machine, said why."""


@contextmanager
def _workdir(requested: Path | None) -> Iterator[Path]:
    if requested is not None:
        if requested.exists():
            shutil.rmtree(requested / "packaged", ignore_errors=True)
        requested.mkdir(parents=True, exist_ok=True)
        yield requested
        return
    with tempfile.TemporaryDirectory(prefix="selfservice-deploy-check-") as scratch:
        yield Path(scratch)


def main(argv: list[str] | None = None) -> int:
    """Run every step; 0 when the templates would deploy, 1 otherwise."""
    parser = argparse.ArgumentParser(prog="python -m selfservice.develop.deploy_check")
    parser.add_argument("--root", type=Path, default=Path.cwd())
    parser.add_argument("--sam", type=Path, default=Path(".venv-sam/bin/sam"))
    parser.add_argument(
        "--work", type=Path, default=None, help="keep the build, packaged and transformed files"
    )
    args = parser.parse_args(argv)
    root = args.root.resolve()
    sam = args.sam if args.sam.is_absolute() else root / args.sam
    if not sam.is_file():
        print(f"deploy-check: no SAM CLI at {sam} (make deploy-check installs it)", file=sys.stderr)
        return 1
    steps: list[tuple[str, Callable[[_Context], str]]] = [
        ("sam validate --lint", _validate),
        ("sam build", _build),
        ("sam package (embedded S3)", _package),
        ("SAM transform + cfn-lint", _transform_and_lint),
    ]
    started = time.monotonic()
    with _workdir(args.work) as work:
        context = _Context(
            root=root,
            sam=sam,
            work=work,
            templates=[root / "template.yaml", *sorted((root / "sam").glob("*.yaml"))],
        )
        for number, (name, step) in enumerate(steps, start=1):
            print(f"deploy-check [{number}/{len(steps)}] {name} …", flush=True)
            step_started = time.monotonic()
            try:
                summary = step(context)
            except _SkippedError as skipped:
                print(f"  skipped: {skipped}", flush=True)
                continue
            except CheckFailedError as failure:
                print(f"  FAILED: {failure}", file=sys.stderr, flush=True)
                return 1
            print(f"  ok ({time.monotonic() - step_started:.1f} s): {summary}", flush=True)
    print(f"deploy-check passed in {time.monotonic() - started:.1f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
