"""The committed artifacts (schemas, examples) agree with the code, and every released version stays readable."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from jsonschema import Draft202012Validator
from pydantic import Field

import contracts
from contracts.base import EventPayload
from contracts.compat import incompatibilities
from contracts.registry import Registry, Upcaster, default_registry
from contracts.schemagen import (
    DEFAULT_DIRECTORY,
    IncompatibleSchemaError,
    check_drift,
    main,
    render,
    schema_for,
    write_schemas,
)

ROOT = Path(contracts.__file__).parent
SCHEMAS = ROOT / "schemas"
EXAMPLES = ROOT / "examples"
REGISTRY = default_registry()


def committed_versions(schemas: Path) -> list[tuple[str, int]]:
    return sorted((path.parent.name, int(path.stem[1:])) for path in schemas.glob("*/v*.json"))


def check_committed_version(registry: Registry, schemas: Path, examples: Path, event_type: str, version: int) -> None:
    """The rule for one committed schema file: the current model still reads its data."""
    cls = registry.latest(event_type)
    committed = json.loads((schemas / event_type / f"v{version}.json").read_text(encoding="utf-8"))
    Draft202012Validator.check_schema(committed)
    example = json.loads((examples / event_type / f"v{version}.json").read_text(encoding="utf-8"))
    # the committed example is valid under its own committed schema: pydantic and JSON Schema agree
    Draft202012Validator(committed).validate(example)
    if version == cls.schema_version:
        reasons = incompatibilities(committed, schema_for(cls))
        assert not reasons, f"{event_type} v{version} changed incompatibly: {reasons}"
        assert cls.model_validate(example).model_dump(mode="json", exclude_unset=True) == example
        return
    assert version < cls.schema_version, f"{event_type} v{version} is newer than the code"
    missing = [v for v in range(version, cls.schema_version) if not registry.has_upcaster(event_type, v)]
    assert not missing, f"{event_type}: no upcaster from v{missing} (register it in contracts/catalog.py)"
    cls.model_validate(registry.upcast(event_type, version, example))


# --- the real artifacts --------------------------------------------------------------------------------


def test_committed_schemas_do_not_drift_from_the_code():
    problems = check_drift(SCHEMAS, REGISTRY)
    assert not problems, "the committed JSON Schemas differ from the code; run `python -m contracts.schemagen`:\n" + (
        "\n".join(problems)
    )


def test_the_generator_writes_where_the_tests_read():
    assert DEFAULT_DIRECTORY == SCHEMAS


@pytest.mark.parametrize(("event_type", "version"), committed_versions(SCHEMAS), ids=str)
def test_every_committed_schema_version_stays_readable(event_type: str, version: int):
    check_committed_version(REGISTRY, SCHEMAS, EXAMPLES, event_type, version)


def test_every_committed_schema_has_an_example():
    schemas = {(p.parent.name, p.name) for p in SCHEMAS.glob("*/v*.json")}
    examples = {(p.parent.name, p.name) for p in EXAMPLES.glob("*/v*.json")}
    assert schemas == examples


def test_committed_schema_files_are_canonical():
    for path in SCHEMAS.glob("*/v*.json"):
        text = path.read_text(encoding="utf-8")
        assert text == render(json.loads(text)), f"{path} is not in canonical form"
        schema = json.loads(text)
        assert schema["$id"] == f"urn:chiso:schema:{path.parent.name}:{path.stem}"
        assert schema["title"] == path.parent.name


# --- the mechanism on throwaway registries --------------------------------------------------------------

THING = "vn.cchc.test.thing_happened"


class ThingV1(EventPayload):
    """A thing happened."""

    event_type = THING
    schema_version = 1
    producer = "tests"
    topic = "vn.cchc.tests.events"

    amount: int = Field(description="amount")


class ThingV1WithNote(EventPayload):
    """A thing happened (additive change: same version)."""

    event_type = THING
    schema_version = 1
    producer = "tests"
    topic = "vn.cchc.tests.events"

    amount: int = Field(description="amount")
    note: str | None = Field(default=None, description="note")


class ThingV1Retyped(EventPayload):
    """A thing happened (incompatible change without a version bump)."""

    event_type = THING
    schema_version = 1
    producer = "tests"
    topic = "vn.cchc.tests.events"

    amount: str = Field(description="amount")


class ThingV2(EventPayload):
    """A thing happened (renamed field, hence v2)."""

    event_type = THING
    schema_version = 2
    producer = "tests"
    topic = "vn.cchc.tests.events"

    amount_vnd: int = Field(description="amount in VND")


def v1_to_v2(data: dict[str, Any]) -> dict[str, Any]:
    return {"amount_vnd": data["amount"]}


def test_drift_check_reports_a_changed_a_missing_and_an_unknown_file(tmp_path: Path):
    written = write_schemas(tmp_path, REGISTRY)
    assert len(written) == len(REGISTRY.types())
    assert check_drift(tmp_path, REGISTRY) == []

    changed = tmp_path / "vn.cchc.dossier.received" / "v1.json"
    schema = json.loads(changed.read_text(encoding="utf-8"))
    schema["properties"]["due_at"]["description"] = "edited by hand"
    changed.write_text(render(schema), encoding="utf-8")
    removed = tmp_path / "vn.cchc.plan.issued" / "v1.json"
    removed.unlink()
    (tmp_path / "vn.cchc.dossier.teleported").mkdir()

    problems = check_drift(tmp_path, REGISTRY)
    assert len(problems) == 3, problems
    assert any(str(changed) in p and "differs" in p and "python -m contracts.schemagen" in p for p in problems)
    assert any(str(removed) in p and "missing" in p for p in problems)
    assert any("vn.cchc.dossier.teleported" in p and "no longer declares" in p for p in problems)

    write_schemas(tmp_path, REGISTRY)  # the description edit is compatible, so it is simply regenerated
    assert len(check_drift(tmp_path, REGISTRY)) == 1  # only the unknown folder remains


def test_generation_is_deterministic(tmp_path: Path):
    first, second = tmp_path / "a", tmp_path / "b"
    write_schemas(first, REGISTRY)
    write_schemas(second, REGISTRY)
    for path in first.glob("*/v*.json"):
        text = path.read_text(encoding="utf-8")
        assert text.endswith("}\n")
        assert text == (second / path.relative_to(first)).read_text(encoding="utf-8")


def test_generator_overwrites_a_compatible_change_and_refuses_an_incompatible_one(tmp_path: Path):
    (path,) = write_schemas(tmp_path, Registry([ThingV1]))
    write_schemas(tmp_path, Registry([ThingV1WithNote]))
    assert "note" in json.loads(path.read_text(encoding="utf-8"))["properties"]

    before = path.read_text(encoding="utf-8")
    with pytest.raises(IncompatibleSchemaError, match=r"\$\.amount: type changed from integer to string"):
        write_schemas(tmp_path, Registry([ThingV1Retyped]))
    assert path.read_text(encoding="utf-8") == before


def test_a_version_bump_keeps_the_old_schema_and_needs_an_upcaster(tmp_path: Path):
    schemas, examples = tmp_path / "schemas", tmp_path / "examples"
    write_schemas(schemas, Registry([ThingV1]))
    write_schemas(schemas, Registry([ThingV2], {(THING, 1): v1_to_v2}))
    for version, data in ((1, {"amount": 5000}), (2, {"amount_vnd": 5000})):
        example = examples / THING / f"v{version}.json"
        example.parent.mkdir(parents=True, exist_ok=True)
        example.write_text(json.dumps(data), encoding="utf-8")

    upcasters: dict[tuple[str, int], Upcaster] = {(THING, 1): v1_to_v2}
    bumped = Registry([ThingV2], upcasters)
    assert committed_versions(schemas) == [(THING, 1), (THING, 2)]
    assert check_drift(schemas, bumped) == []
    for event_type, version in committed_versions(schemas):
        check_committed_version(bumped, schemas, examples, event_type, version)

    without_upcaster = Registry([ThingV2])
    with pytest.raises(AssertionError, match="no upcaster"):
        check_committed_version(without_upcaster, schemas, examples, THING, 1)


def test_command_line_check_fails_on_drift_and_passes_after_generation(tmp_path: Path, capsys):
    assert main(["--check", "--directory", str(tmp_path)]) == 1
    assert "python -m contracts.schemagen" in capsys.readouterr().err
    assert main(["--directory", str(tmp_path)]) == 0
    assert main(["--check", "--directory", str(tmp_path)]) == 0
