"""Generate, and check, the committed JSON Schemas of every event type: ``python -m contracts.schemagen``.

The files under ``contracts/schemas/<event type>/v<N>.json`` are the published contract: non-Python
consumers validate against them, and the tests compare them with the code. Every version ever released
stays committed (old records live on Kafka forever), so the generator only ever writes the *current*
version of each type, and refuses to overwrite it with an incompatible schema: an incompatible change
needs a new version and an upcaster (see :mod:`contracts.registry`), not an edited v1.

Output is deterministic (sorted keys, 2-space indent, UTF-8, trailing newline) so a diff shows the change.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from contracts.base import EventPayload
from contracts.compat import incompatibilities
from contracts.registry import Registry, default_registry

__all__ = [
    "DEFAULT_DIRECTORY",
    "JSON_SCHEMA_DIALECT",
    "IncompatibleSchemaError",
    "check_drift",
    "main",
    "render",
    "schema_for",
    "schema_path",
    "write_schemas",
]

JSON_SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"
#: ``contracts/schemas`` next to this module
DEFAULT_DIRECTORY = Path(__file__).resolve().parent / "schemas"
_REGENERATE = "run `python -m contracts.schemagen` and commit the result"


class IncompatibleSchemaError(ValueError):
    """The code changed an event type incompatibly without bumping its ``schema_version``."""


def schema_for(cls: type[EventPayload]) -> dict[str, Any]:
    """The JSON Schema (draft 2020-12, validation mode) of a payload class, with chiso's metadata."""
    schema = cls.model_json_schema(mode="validation")
    schema["$schema"] = JSON_SCHEMA_DIALECT
    schema["$id"] = cls.schema_id()
    schema["title"] = cls.event_type
    schema["x-chiso"] = {
        "producer": cls.producer,
        "schema_version": cls.schema_version,
        "topic": cls.topic,
    }
    return schema


def render(schema: dict[str, Any]) -> str:
    """The canonical text of a schema file."""
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def schema_path(directory: Path, event_type: str, version: int) -> Path:
    """Where the schema of (type, version) lives under ``directory``."""
    return directory / event_type / f"v{version}.json"


def write_schemas(directory: Path, registry: Registry) -> list[Path]:
    """Write the current schema of every registered type; return the paths of the current-version files.

    A file is rewritten only when its content changes, and only when the change is backward compatible
    (e.g. a new optional field); otherwise :class:`IncompatibleSchemaError` is raised before anything
    is written, so a failed run leaves the directory as it was.
    """
    planned: list[tuple[Path, str]] = []
    refused: list[str] = []
    for cls in registry.types():
        path = schema_path(directory, cls.event_type, cls.schema_version)
        schema = schema_for(cls)
        text = render(schema)
        if path.exists():
            committed = path.read_text(encoding="utf-8")
            if committed == text:
                planned.append((path, ""))
                continue
            reasons = incompatibilities(json.loads(committed), schema)
            if reasons:
                refused.append(
                    f"{cls.event_type} v{cls.schema_version} ({cls.__name__}): "
                    + "; ".join(reasons)
                    + f" -- bump schema_version to {cls.schema_version + 1} and register an upcaster"
                )
                continue
        planned.append((path, text))
    if refused:
        raise IncompatibleSchemaError("incompatible changes to committed schemas:\n" + "\n".join(refused))
    for path, text in planned:
        if text:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text, encoding="utf-8")
    return [path for path, _ in planned]


def check_drift(directory: Path, registry: Registry) -> list[str]:
    """Problems between the committed schemas and the code; empty when they agree.

    Reports a missing or different file for the current version of each type, files of versions newer
    than the code, and schema folders of event types the code no longer knows (a type may never be
    removed while its events are on Kafka).
    """
    problems: list[str] = []
    known = {cls.event_type: cls for cls in registry.types()}
    for event_type, cls in known.items():
        path = schema_path(directory, event_type, cls.schema_version)
        if not path.exists():
            problems.append(f"{path}: missing; {_REGENERATE}")
        elif path.read_text(encoding="utf-8") != render(schema_for(cls)):
            problems.append(f"{path}: differs from {cls.__name__}; {_REGENERATE}")
        for version in _committed_versions(directory / event_type):
            if version > cls.schema_version:
                problems.append(
                    f"{schema_path(directory, event_type, version)}: newer than the code's v{cls.schema_version}"
                )
    if directory.is_dir():
        for folder in sorted(p for p in directory.iterdir() if p.is_dir()):
            if folder.name not in known:
                problems.append(f"{folder}: schemas of an event type the code no longer declares")
    return problems


def _committed_versions(folder: Path) -> list[int]:
    if not folder.is_dir():
        return []
    stems = (p.stem for p in folder.glob("v*.json"))
    return sorted(int(stem[1:]) for stem in stems if stem[1:].isdigit())


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: write the schemas, or with ``--check`` only report drift (exit status 1)."""
    parser = argparse.ArgumentParser(
        prog="python -m contracts.schemagen", description="Generate or check the JSON Schemas of chiso events."
    )
    parser.add_argument("--check", action="store_true", help="report drift instead of writing; exit 1 on drift")
    parser.add_argument("--directory", type=Path, default=DEFAULT_DIRECTORY, help="schema root directory")
    args = parser.parse_args(argv)
    registry = default_registry()
    if args.check:
        problems = check_drift(args.directory, registry)
        for problem in problems:
            sys.stderr.write(problem + "\n")
        return 1 if problems else 0
    try:
        paths = write_schemas(args.directory, registry)
    except IncompatibleSchemaError as exc:
        sys.stderr.write(f"{exc}\n")
        return 1
    sys.stdout.write(f"{len(paths)} schemas up to date in {args.directory}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
