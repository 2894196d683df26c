"""Every event type has a model, an exported JSON Schema, a sample and a catalog entry.

Samples are committed files: a model change that breaks an old sample fails here, so
consumers never meet an event shape they cannot parse.
"""

from __future__ import annotations

import json
import typing
from pathlib import Path

import pytest

from selfservice.develop.contracts_export import SAMPLES_DIR, check, rendered_files, sample_path
from selfservice_contracts.events import EVENT_CATALOG, AnyEvent, EventSpec
from selfservice_runtime.parsing import parse_eventbridge_event

SPECS = {spec.type: spec for spec in EVENT_CATALOG}


def test_the_catalog_covers_exactly_the_event_union() -> None:
    union, _discriminator = typing.get_args(AnyEvent)
    assert set(typing.get_args(union)) == {spec.event_model for spec in EVENT_CATALOG}
    assert len(SPECS) == len(EVENT_CATALOG) == 12


def test_every_issue_2_event_type_exists() -> None:
    assert set(SPECS) == {
        "selfservice.request.received.v1",
        "selfservice.request.rejected.v1",
        "selfservice.request.approval-required.v1",
        "selfservice.request.approved.v1",
        "selfservice.provisioning.started.v1",
        "selfservice.provisioning.planned.v1",
        "selfservice.provisioning.refused.v1",
        "selfservice.provisioning.succeeded.v1",
        "selfservice.provisioning.failed.v1",
        "selfservice.ticket.updated.v1",
        "selfservice.ticket.write-back-failed.v1",
        "selfservice.ops.command-executed.v1",
    }


@pytest.mark.parametrize("spec", EVENT_CATALOG, ids=lambda spec: spec.type)
def test_the_sample_parses_into_its_typed_event(spec: EventSpec, root: Path) -> None:
    sample = json.loads((root / sample_path(spec)).read_text())
    event = parse_eventbridge_event(sample)
    assert isinstance(event, spec.event_model)
    assert isinstance(event.data, spec.data_model)
    assert sample["detail-type"] == spec.type
    assert sample["source"] == spec.producer.source


@pytest.mark.parametrize("spec", EVENT_CATALOG, ids=lambda spec: spec.type)
def test_the_schema_and_catalog_entry_exist(spec: EventSpec, root: Path) -> None:
    schema = json.loads((root / "schemas/json" / spec.schema_file).read_text())
    assert schema["properties"]["type"]["const"] == spec.type
    assert f"\n## {spec.type}\n" in (root / "docs/events.md").read_text()


def test_there_are_no_orphan_samples(root: Path) -> None:
    samples = {path.name for path in (root / SAMPLES_DIR).glob("*.json")}
    assert samples == {sample_path(spec).name for spec in EVENT_CATALOG}


def test_exported_schemas_and_catalog_match_the_models(root: Path) -> None:
    drifted = check(root)
    assert not drifted, f"out of date (run `make schemas`): {[str(p) for p in drifted]}"


def test_drift_is_detected(root: Path, tmp_path: Path) -> None:
    # The drift check must be able to fail: copy the generated files, change one.
    for relative, content in rendered_files(root).items():
        (tmp_path / relative).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / relative).write_text(content)
    (tmp_path / SAMPLES_DIR).mkdir(parents=True)
    for spec in EVENT_CATALOG:
        (tmp_path / sample_path(spec)).write_text((root / sample_path(spec)).read_text())
    assert check(tmp_path) == []
    schema = tmp_path / "schemas/json/selfservice.request.rejected.v1.json"
    schema.write_text(schema.read_text().replace('"reasons"', '"reason"', 1))
    (tmp_path / "schemas/json/stale.json").write_text("{}")
    assert {str(p) for p in check(tmp_path)} == {
        "schemas/json/selfservice.request.rejected.v1.json",
        "schemas/json/stale.json",
    }
