"""The ``selfservice`` command: the local runtime, the ops client and contracts tooling."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from selfservice.develop import contracts_export, prices
from selfservice.operator import dlq, ops_client, replay, status

__all__ = ["main"]


def find_root(start: Path) -> Path:
    """The repository root: the nearest directory holding template.yaml and schemas/."""
    for candidate in (start, *start.parents):
        if (candidate / "template.yaml").is_file() and (candidate / "schemas").is_dir():
            return candidate
    raise SystemExit(
        f"selfservice: no template.yaml with a schemas/ folder at or above {start}; "
        "run from the repository or pass --root"
    )


def _demo(args: argparse.Namespace) -> int:
    from selfservice.develop.demo import run_demo  # noqa: PLC0415 - the local stack is heavy to import

    return run_demo(args.root or find_root(Path.cwd()))


def _up(args: argparse.Namespace) -> int:
    from selfservice.develop.up import run_up  # noqa: PLC0415 - the local stack is heavy to import

    root = args.root or find_root(Path.cwd())
    return run_up(
        root,
        workdir=args.workdir,
        instances=args.instances,
        ops_config=args.ops_config,
        as_json=args.json,
        build_concurrency=args.build_concurrency,
    )


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def _invoke(args: argparse.Namespace) -> int:
    from selfservice.develop.invoke import run_invoke  # noqa: PLC0415 - the local stack is heavy

    return run_invoke(args.root or find_root(Path.cwd()), args.function, args.event, args.workdir)


def _contracts_export(args: argparse.Namespace) -> int:
    root = args.root or find_root(Path.cwd())
    if args.check:
        drifted = contracts_export.check(root)
        for path in drifted:
            print(f"out of date: {path}", file=sys.stderr)
        if drifted:
            print("run `make schemas` and commit the result", file=sys.stderr)
        return 1 if drifted else 0
    changed = contracts_export.write(root)
    for path in changed:
        print(f"wrote {path}")
    if not changed:
        print("contracts export: everything already up to date")
    return 0


def _iam_report(args: argparse.Namespace) -> int:
    from selfservice.develop.iam_report import main as report  # noqa: PLC0415 - deploys a stack

    return report(args.root or find_root(Path.cwd()), list(args.usage), args.output)


def _bundle(args: argparse.Namespace) -> int:
    import zipfile  # noqa: PLC0415 - only this command needs it

    from selfservice.local.build_runner import BUNDLE_PATHS  # noqa: PLC0415

    root = args.root or find_root(Path.cwd())
    args.output.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with zipfile.ZipFile(args.output, "w", zipfile.ZIP_DEFLATED) as bundle:
        for relative in BUNDLE_PATHS:
            source = root / relative
            files = (
                [source]
                if source.is_file()
                else sorted(p for p in source.rglob("*") if p.is_file())
            )
            for path in files:
                if any(part in {".terraform", "__pycache__"} for part in path.parts):
                    continue
                bundle.write(path, path.relative_to(root).as_posix())
                count += 1
    print(
        f"wrote {args.output} ({count} files): upload it to the artifacts bucket as "
        "bundles/provisioner.zip (the ProvisionerBundleKey parameter)"
    )
    return 0


def build_parser() -> argparse.ArgumentParser:
    """The command-line grammar."""
    parser = argparse.ArgumentParser(
        prog="selfservice",
        description="ITSM tickets in, governed AWS infrastructure out.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = commands.add_parser("demo", help="run the main job on the embedded stack")
    demo.add_argument("--root", type=Path, default=None, help="repository root")
    demo.set_defaults(func=_demo)

    up = commands.add_parser("up", help="run the whole platform locally until Ctrl-C")
    up.add_argument("--root", type=Path, default=None, help="repository root")
    up.add_argument(
        "--workdir",
        type=Path,
        default=None,
        help="state directory, kept on stop (default: a temporary one, removed on stop)",
    )
    up.add_argument(
        "--instances",
        type=int,
        default=1,
        help="instances to start in the embedded EC2, tagged for the ops API (default 1)",
    )
    up.add_argument(
        "--ops-config",
        type=Path,
        default=None,
        help="ops API configuration document (default: the built-in diagnostic allow-list)",
    )
    up.add_argument(
        "--build-concurrency",
        type=_positive,
        default=None,
        metavar="N",
        help="builds the local CodeBuild runs at once (default: the project's"
        " ConcurrentBuildLimit, capped at the machine's cores, at least 2)",
    )
    up.add_argument(
        "--json", action="store_true", help="first line of stdout: one JSON object of it all"
    )
    up.set_defaults(func=_up)
    invoke = commands.add_parser(
        "invoke", help="invoke one function once locally (the Docker-free sam local invoke)"
    )
    invoke.add_argument("function", help="logical id, e.g. WebhookFunction")
    invoke.add_argument(
        "--event",
        type=Path,
        default=None,
        help="event JSON file, - for stdin (default: events/<FUNCTION>.json)",
    )
    invoke.add_argument("--root", type=Path, default=None, help="repository root")
    invoke.add_argument("--workdir", type=Path, default=None, help="state directory")
    invoke.set_defaults(func=_invoke)
    ops_client.add_parser(commands)
    replay.add_parser(commands)
    status.add_parser(commands)
    dlq.add_parser(commands)
    prices.add_parser(commands)

    contracts = commands.add_parser("contracts", help="event contracts tooling")
    contracts_commands = contracts.add_subparsers(dest="contracts_command", required=True)
    export = contracts_commands.add_parser(
        "export", help="write schemas/json/*.json and docs/events.md from the models"
    )
    export.add_argument("--check", action="store_true", help="only report drift (exit 1)")
    export.add_argument("--root", type=Path, default=None, help="repository root")
    export.set_defaults(func=_contracts_export)
    bundle = commands.add_parser(
        "bundle", help="zip the buildspec, build tools and products for the CodeBuild project"
    )
    bundle.add_argument("--output", type=Path, default=Path("build/provisioner.zip"))
    bundle.add_argument("--root", type=Path, default=None, help="repository root")
    bundle.set_defaults(func=_bundle)
    iam_report = commands.add_parser(
        "iam-report", help="per role: the permissions granted and those the usage logs show used"
    )
    iam_report.add_argument(
        "usage", type=Path, nargs="*", help="usage logs ($SELFSERVICE_IAM_USAGE_LOG files)"
    )
    iam_report.add_argument("--output", type=Path, default=None, help="default: stdout")
    iam_report.add_argument("--root", type=Path, default=None, help="repository root")
    iam_report.set_defaults(func=_iam_report)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``selfservice`` console script."""
    args = build_parser().parse_args(argv)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
