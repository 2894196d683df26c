"""Offline Terraform: find the AWS provider mirror shipped with the install, configure it.

Nothing here names a machine's path: the mirror is taken from
``SELFSERVICE_TF_PROVIDER_MIRROR`` when set, else detected by looking for an unpacked
``registry.terraform.io/hashicorp/aws`` provider for this platform in Terraform's
implied local mirror directories and below the usual install prefixes.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Mapping
from functools import cache
from pathlib import Path

__all__ = [
    "ROOT_CREDENTIALS",
    "TerraformUnavailableError",
    "cli_config",
    "find_provider_mirror",
    "terraform_binary",
    "terraform_environment",
]

MIRROR_ENV = "SELFSERVICE_TF_PROVIDER_MIRROR"
_PROVIDER = Path("registry.terraform.io/hashicorp/aws")
_MAX_DEPTH = 4
ROOT_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
"""The embedded AWS's root key, for Terraform run outside a build (fixtures, benchmarks)."""


class TerraformUnavailableError(RuntimeError):
    """Terraform or its AWS provider cannot be found on this machine."""


def _platform() -> str:
    machine = platform.machine().lower()
    arch = {"x86_64": "amd64", "amd64": "amd64", "aarch64": "arm64", "arm64": "arm64"}.get(
        machine, machine
    )
    return f"{platform.system().lower()}_{arch}"


def _has_provider(root: Path) -> bool:
    provider = root / _PROVIDER
    if not provider.is_dir():
        return False
    return any(
        (version / _platform()).is_dir()
        and any((version / _platform()).glob("terraform-provider-aws*"))
        for version in provider.iterdir()
    )


def _candidates() -> list[Path]:
    home = Path.home()
    data_home = Path(os.environ.get("XDG_DATA_HOME", home / ".local/share"))
    # Terraform's implied local mirror directories, then install prefixes to search.
    implied = [
        home / ".terraform.d/plugins",
        data_home / "terraform/plugins",
        Path("/usr/local/share/terraform/plugins"),
        Path("/usr/share/terraform/plugins"),
    ]
    binary = shutil.which("terraform")
    prefixes = [Path("/opt"), Path("/usr/local"), Path("/usr/share")]
    if binary:
        prefixes.insert(0, Path(binary).resolve().parent.parent)
    return implied + prefixes


def _search(root: Path, depth: int) -> Path | None:
    if _has_provider(root):
        return root
    if depth == 0:
        return None
    try:
        children = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    except OSError:
        return None
    for child in children:
        found = _search(child, depth - 1)
        if found is not None:
            return found
    return None


@cache
def find_provider_mirror() -> Path:
    """The directory to use as Terraform's ``filesystem_mirror``."""
    configured = os.environ.get(MIRROR_ENV)
    if configured:
        if not _has_provider(Path(configured)):
            raise TerraformUnavailableError(
                f"{MIRROR_ENV}={configured} holds no hashicorp/aws provider for {_platform()}"
            )
        return Path(configured)
    for candidate in _candidates():
        if candidate.is_dir():
            found = _search(candidate, 0 if "plugins" in candidate.parts else _MAX_DEPTH)
            if found is not None:
                return found
    raise TerraformUnavailableError(
        "no offline hashicorp/aws provider found; set "
        f"{MIRROR_ENV} to a directory holding registry.terraform.io/hashicorp/aws/"
    )


def terraform_binary() -> str:
    """The ``terraform`` on PATH."""
    binary = shutil.which("terraform")
    if binary is None:
        raise TerraformUnavailableError("terraform is not on PATH")
    return binary


def cli_config(directory: Path) -> Path:
    """Write a CLI configuration: providers from the mirror only, no calls home.

    ``disable_checkpoint`` stops Terraform's version and security-advisory requests to
    HashiCorp, which nothing on these machines may reach.
    """
    mirror = find_provider_mirror()
    path = directory / "terraform.tfrc"
    path.write_text(
        "disable_checkpoint = true\n"
        "provider_installation {\n"
        "  filesystem_mirror {\n"
        f'    path    = "{mirror}"\n'
        '    include = ["registry.terraform.io/hashicorp/*"]\n'
        "  }\n"
        "}\n"
    )
    return path


def terraform_environment(
    work: Path,
    endpoint_url: str,
    *,
    region: str = "us-east-1",
    credentials: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The whole environment of Terraform (or of a build running it) against the embedded
    AWS at ``endpoint_url``, offline, with ``work`` as its home.

    Providers come from the mirror (:func:`cli_config`, written into ``work``); the S3
    backend addresses buckets by path, as moto on 127.0.0.1 needs; ``TF_IN_AUTOMATION``,
    ``TF_INPUT`` and ``CHECKPOINT_DISABLE`` are the buildspec's own. This interpreter's
    scripts come first on ``PATH`` (the build's tools run with it). ``credentials``
    (``AWS_*`` names; none: a build's own are added per build) sign Terraform's calls.
    """
    return {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(work),
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": region,
        "AWS_DEFAULT_REGION": region,
        **(credentials or {}),
        "TF_CLI_CONFIG_FILE": str(cli_config(work)),
        "TF_S3_USE_PATH_STYLE": "true",
        "TF_IN_AUTOMATION": "1",
        "TF_INPUT": "0",
        "CHECKPOINT_DISABLE": "1",
    }
