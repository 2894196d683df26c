"""The burst benchmark's helpers: what they count decides the published figures.

No timing here: speed targets live only in bench/ (``make bench``).
"""

from __future__ import annotations

import json
from pathlib import Path

from bench import burst
from tests.conftest import ROOT


def _answer(ticket: int, request_id: str | None, at: float, status: int = 202) -> burst.Answer:
    return burst.Answer(ticket=ticket, status=status, request_id=request_id, received_at=at)


def test_duplicates_count_only_answers_repeating_the_first_request_id() -> None:
    answers = [
        _answer(0, "r-0", 1.0),
        _answer(0, "r-0", 2.0),
        _answer(0, "r-0", 3.0),
        _answer(1, "r-1b", 2.5),  # received after its ticket's first answer: another id
        _answer(1, "r-1", 1.5),
        _answer(1, None, 4.0, status=503),  # refused: no id, not a faithful duplicate
    ]
    accepted, duplicates, distinct = burst.count_answers(answers)
    assert accepted == 5
    assert duplicates == 2
    assert distinct == 3


def test_completion_needs_the_terminal_work_note_of_a_wanted_ticket() -> None:
    wanted = {burst.sys_id(0), burst.sys_id(1)}
    first, other = burst.sys_id(0), burst.sys_id(7)

    def row(element_id: str, element: str, value: str, at: float) -> dict[str, object]:
        return {"element_id": element_id, "element": element, "value": value, "received_at": at}

    journal = [
        row(first, "work_notes", "started", 1),
        row(first, "comments", "finished successfully", 2),  # a comment is not the note
        row(first, "work_notes", "Provisioning finished successfully.", 3),
        row(first, "work_notes", "finished successfully again", 9),  # the first one counts
        row(other, "work_notes", "finished successfully", 4),  # not a benchmark ticket
    ]
    assert burst.completion_times(journal, wanted) == {first: 3.0}


def test_every_ticket_has_its_own_sys_id_and_number() -> None:
    bodies = [json.loads(body) for body in burst.delivery_bodies(3)]
    assert len({b["sys_id"] for b in bodies}) == len({b["number"] for b in bodies}) == 3
    assert all(len(b["sys_id"]) == 32 for b in bodies)  # what the ServiceNow writer expects
    assert bodies[2]["sys_id"] == burst.sys_id(2)


def test_the_staged_root_swaps_only_the_product_module(tmp_path: Path) -> None:
    staged = burst.staged_root(tmp_path / "root")
    module = staged / burst.PRODUCT_MODULE
    real = ROOT / burst.PRODUCT_MODULE
    assert sorted(p.name for p in module.glob("*.tf")) == sorted(
        {"variables.tf", *(p.name for p in burst.STANDIN.glob("*.tf"))}
    )
    assert (module / "variables.tf").read_text() == (real / "variables.tf").read_text()
    assert (module / "main.tf").read_text() == (burst.STANDIN / "main.tf").read_text()
    assert (staged / "template.yaml").read_text() == (ROOT / "template.yaml").read_text()
    other = "services/provisioner/products/aws-account/terraform/main.tf"
    assert (staged / other).read_text() == (ROOT / other).read_text()
