"""``selfservice invoke FUNCTION``: one invocation, the Docker-free ``sam local invoke``.

The platform is deployed into a fresh embedded AWS as for ``selfservice up`` (so the
function's environment is its template's, resolved against real resources), but no
event source runs: only the named function receives only the given event. Its answer
is printed as JSON; its log is in the state directory.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path

from selfservice.local.functions import InvocationError
from selfservice.local.platform import LocalPlatform
from selfservice.templates import load_platform

__all__ = ["run_invoke"]


def run_invoke(root: Path, function: str, event: Path | None, workdir: Path | None) -> int:
    """Invoke ``function`` once with the event (default: ``events/<function>.json``)."""
    names = sorted(
        spec.logical_id
        for template in load_platform(root / "template.yaml").walk()
        for spec in template.functions()
    )
    if function not in names:
        print(
            f"selfservice invoke: no function {function}; the templates have {', '.join(names)}",
            file=sys.stderr,
        )
        return 2
    source = event or root / "events" / f"{function}.json"
    try:
        payload = json.loads(sys.stdin.read() if str(source) == "-" else source.read_text())
    except (OSError, ValueError) as exc:
        print(f"selfservice invoke: cannot read the event {source}: {exc}", file=sys.stderr)
        return 2
    directory = workdir or Path(tempfile.mkdtemp(prefix="selfservice-invoke-"))
    say = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    with LocalPlatform(root, directory, say=say, serve=False) as platform:
        worker = platform.workers[function]
        try:
            response = worker.invoke(payload)
        except InvocationError as exc:
            print(f"{function} failed: {exc}", file=sys.stderr)
            print(f"log: {directory / (function + '.log')}", file=sys.stderr)
            return 1
    print(json.dumps(response, indent=2, default=str))
    print(f"log: {directory / (function + '.log')}", file=sys.stderr)
    return 0
