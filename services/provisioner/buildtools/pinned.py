"""Exit 0 iff every ``name==version`` of a requirements file is what is installed.

    python3 pinned.py requirements.txt || python3 -m pip install -r requirements.txt

The build image's packages (if any) are whatever the image shipped; the build tools are
tested with these.
"""

import sys
from importlib import metadata


def main(path: str) -> int:
    """0 when every pin is installed at its version, 1 otherwise (named on stderr)."""
    missing = []
    for line in open(path, encoding="utf-8").read().splitlines():  # noqa: SIM115
        requirement = line.split("#", 1)[0].strip()
        if not requirement:
            continue
        name, _, version = requirement.partition("==")
        try:
            installed = metadata.version(name)
        except metadata.PackageNotFoundError:
            installed = None
        if installed != version:
            missing.append(f"{name}=={version} (installed: {installed})")
    for requirement in missing:
        print(f"pinned: needs {requirement}", file=sys.stderr)
    return 1 if missing else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
