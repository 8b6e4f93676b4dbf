"""Backward-compatibility check between two JSON Schemas of one event type (old = committed, new = generated).

The question is Confluent's BACKWARD rule: can a reader built on the *new* schema read every record
written with the *old* one? Kafka topics keep events forever and read models are rebuilt from the start,
so every old record will be read again by new code. The check is therefore "does ``new`` accept every
instance ``old`` accepts", decided structurally and conservatively: when unsure (a changed regular
expression, a keyword this module does not model) it reports an incompatibility, because a false alarm
costs a version bump and an upcaster while a missed one costs a consumer that can no longer replay.

Annotations (title, description, examples, default, ``x-*`` extensions) never matter; ``$ref`` is followed
into each schema's own ``$defs``. One rule is stricter than pure BACKWARD, on purpose: removing a property
is reported even when the new schema would ignore it, since it drops data old readers and projections use.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

__all__ = ["incompatibilities"]

# keywords that describe rather than constrain, plus containers that are only reached through ``$ref``
_IGNORED = frozenset(
    {
        "title",
        "description",
        "examples",
        "default",
        "$comment",
        "deprecated",
        "readOnly",
        "writeOnly",
        "$schema",
        "$id",
        "$anchor",
        "$defs",
        "definitions",
        # OpenAPI's discriminator (emitted by pydantic next to oneOf) is a hint; the arms are compared
        "discriminator",
    }
)
# keywords compared explicitly below; any other keyword that appears or changes is reported
_HANDLED = frozenset(
    {
        "type",
        "enum",
        "const",
        "anyOf",
        "oneOf",
        "allOf",
        "properties",
        "required",
        "additionalProperties",
        "items",
        "prefixItems",
        "minItems",
        "maxItems",
        "uniqueItems",
        "minLength",
        "maxLength",
        "pattern",
        "format",
        "minimum",
        "maximum",
        "exclusiveMinimum",
        "exclusiveMaximum",
        "multipleOf",
        "minProperties",
        "maxProperties",
    }
)
_MAX_REF_DEPTH = 64

Schema = dict[str, Any] | bool


def incompatibilities(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """Why data valid under ``old`` may be invalid under ``new``; empty when ``new`` reads all old data.

    Each reason starts with the JSON path of the data it concerns (``$`` is the payload), e.g.
    ``$.components[*].digitized: type changed from boolean to integer``.
    """
    checker = _Checker(old, new)
    reasons = checker.compare(old, new, "$")
    return list(dict.fromkeys(reasons))  # one reason per problem, in discovery order


class _Checker:
    def __init__(self, old_root: dict[str, Any], new_root: dict[str, Any]) -> None:
        self._old_root = old_root
        self._new_root = new_root
        # pairs of ($ref, $ref) being compared further up the stack: recursive schemas are assumed
        # compatible on the second visit (co-induction), which is what makes the recursion terminate
        self._active: set[tuple[str, str]] = set()

    def compare(self, old: Schema, new: Schema, path: str) -> list[str]:
        old_ref = old.get("$ref") if isinstance(old, dict) else None
        new_ref = new.get("$ref") if isinstance(new, dict) else None
        key = (old_ref, new_ref) if isinstance(old_ref, str) and isinstance(new_ref, str) else None
        if key is not None:
            if key in self._active:
                return []
            self._active.add(key)
        try:
            return self._compare_resolved(_resolve(old, self._old_root), _resolve(new, self._new_root), path)
        finally:
            if key is not None:
                self._active.discard(key)

    def _compare_resolved(self, old: Schema, new: Schema, path: str) -> list[str]:
        if new is True or (isinstance(new, dict) and not _strip(new)) or old is False:
            return []
        if not isinstance(new, dict):  # new is False
            return [f"{path}: no value is accepted any more"]
        if not isinstance(old, dict) or not _strip(old):  # old is True or {}
            return [f"{path}: any value was accepted, now only some are"]
        old_arms = list(self._arms(old, self._old_root))
        new_arms = list(self._arms(new, self._new_root))
        if len(old_arms) == 1 and len(new_arms) == 1:
            return self._compare_single(old_arms[0], new_arms[0], path)
        return self._compare_unions(old_arms, new_arms, path)

    def _arms(self, node: dict[str, Any], root: dict[str, Any], depth: int = 0) -> Iterator[dict[str, Any]]:
        """The alternatives of a schema: anyOf/oneOf arms (flattened) or list-valued ``type``s."""
        node = _merge_all_of(node, root)
        key = "anyOf" if "anyOf" in node else "oneOf" if "oneOf" in node else None
        if key is not None and depth < _MAX_REF_DEPTH:
            # constraints written next to the union apply to every arm
            siblings = {k: v for k, v in _strip(node).items() if k not in {"anyOf", "oneOf"}}
            for arm in node[key]:
                resolved = _resolve(arm, root)
                if isinstance(resolved, bool):
                    yield {} if resolved else {"not": {}}
                    continue
                yield from self._arms({**siblings, **resolved}, root, depth + 1)
            return
        types = node.get("type")
        if isinstance(types, list) and len(types) > 1:
            for single in types:
                yield {**node, "type": single}
            return
        yield node

    def _compare_unions(self, old_arms: list[dict[str, Any]], new_arms: list[dict[str, Any]], path: str) -> list[str]:
        reasons: list[str] = []
        for old_arm in old_arms:
            attempts = [(new_arm, self._compare_resolved(old_arm, new_arm, path)) for new_arm in new_arms]
            if any(not found for _, found in attempts):
                continue
            # explain with the one arm of the same JSON type, if there is exactly one; else say the arm went
            same_type = [
                found for new_arm, found in attempts if (_types(new_arm) or set()) & (_types(old_arm) or set())
            ]
            if len(same_type) == 1:
                reasons.extend(same_type[0])
            else:
                reasons.append(f"{path}: {_describe(old_arm)} is no longer accepted (union arm removed)")
        return reasons

    def _compare_single(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        old = _strip(old)
        new = _strip(new)
        reasons = _compare_values(old, new, path)
        old_types = _types(old)
        new_types = _types(new)
        if new_types is not None:
            if old_types is None:
                return [*reasons, f"{path}: any type was accepted, now only {_fmt(new_types)}"]
            lost = {t for t in old_types if not _covered(t, new_types)}
            if lost:
                # the deeper keywords of a retyped value are meaningless to compare
                return [*reasons, f"{path}: type changed from {_fmt(old_types)} to {_fmt(new_types)}"]
        kinds = old_types or {"object", "array"}
        if "object" in kinds:
            reasons.extend(self._compare_objects(old, new, path))
        if "array" in kinds:
            reasons.extend(self._compare_arrays(old, new, path))
        reasons.extend(_compare_bounds(old, new, path))
        reasons.extend(_compare_other_keywords(old, new, path))
        return reasons

    def _compare_objects(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        reasons: list[str] = []
        old_props: dict[str, Any] = old.get("properties", {})
        new_props: dict[str, Any] = new.get("properties", {})
        old_required = set(old.get("required", ()))
        new_required = set(new.get("required", ()))
        for name, old_schema in old_props.items():
            sub = _join(path, name)
            if name not in new_props:
                reasons.append(f"{sub}: property removed")
            else:
                reasons.extend(self.compare(old_schema, new_props[name], sub))
        for name in sorted(new_required - old_required):
            if name in old_props:
                reasons.append(f"{_join(path, name)}: became required (was optional)")
            else:
                reasons.append(f"{_join(path, name)}: new required property")
        old_extra = old.get("additionalProperties", True)
        new_extra = new.get("additionalProperties", True)
        if old_extra is not False:
            if new_extra is False:
                reasons.append(f"{path}: additionalProperties tightened (extra properties are now rejected)")
            elif isinstance(new_extra, dict):
                reasons.extend(self.compare(old_extra, new_extra, f"{path}.*"))
        return reasons

    def _compare_arrays(self, old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
        reasons: list[str] = []
        old_prefix: list[Any] = old.get("prefixItems", [])
        new_prefix: list[Any] = new.get("prefixItems", [])
        for index in range(max(len(old_prefix), len(new_prefix))):
            old_item = old_prefix[index] if index < len(old_prefix) else old.get("items", True)
            new_item = new_prefix[index] if index < len(new_prefix) else new.get("items", True)
            reasons.extend(self.compare(old_item, new_item, f"{path}[{index}]"))
        if "items" in old or "items" in new:
            reasons.extend(self.compare(old.get("items", True), new.get("items", True), f"{path}[*]"))
        if new.get("uniqueItems") is True and old.get("uniqueItems") is not True:
            reasons.append(f"{path}: items must now be unique")
        return reasons


def _resolve(node: Schema, root: dict[str, Any]) -> Schema:
    """Follow ``$ref`` (local JSON pointers) until a schema without one; its siblings are kept."""
    for _ in range(_MAX_REF_DEPTH):
        if not isinstance(node, dict) or "$ref" not in node:
            return node
        target = _lookup(root, node["$ref"])
        siblings = {k: v for k, v in node.items() if k != "$ref"}
        node = {**target, **siblings} if isinstance(target, dict) else target
    msg = "$ref chain too deep (a reference cycle without a schema in between?)"
    raise ValueError(msg)


def _lookup(root: dict[str, Any], ref: str) -> Schema:
    base, _, fragment = ref.partition("#")
    if base and base != root.get("$id"):
        msg = f"cannot resolve $ref {ref!r}: only references inside the schema are supported"
        raise ValueError(msg)
    node: Any = root
    for token in (t for t in fragment.split("/") if t):
        token = token.replace("~1", "/").replace("~0", "~")  # noqa: PLW2901 - JSON pointer unescaping
        try:
            node = node[int(token)] if isinstance(node, list) else node[token]
        except (KeyError, IndexError, ValueError, TypeError):
            msg = f"cannot resolve $ref {ref!r}"
            raise ValueError(msg) from None
    if not isinstance(node, dict | bool):
        msg = f"$ref {ref!r} does not point at a schema"
        raise ValueError(msg)
    return node


def _merge_all_of(node: dict[str, Any], root: dict[str, Any]) -> dict[str, Any]:
    """Fold ``allOf`` into one schema: enough for generated schemas, where it only wraps a ``$ref``."""
    if "allOf" not in node:
        return node
    merged = {k: v for k, v in node.items() if k != "allOf"}
    for part in node["allOf"]:
        resolved = _resolve(part, root)
        if not isinstance(resolved, dict):
            continue
        resolved = _merge_all_of(resolved, root)
        for key, value in resolved.items():
            if key == "properties":
                merged["properties"] = {**merged.get("properties", {}), **value}
            elif key == "required":
                merged["required"] = sorted({*merged.get("required", ()), *value})
            else:
                merged[key] = value
    return merged


def _strip(node: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k not in _IGNORED and not k.startswith("x-")}


def _values(node: dict[str, Any]) -> list[Any] | None:
    if "const" in node:
        return [node["const"]]
    if "enum" in node:
        return list(node["enum"])
    return None


def _same_value(a: Any, b: Any) -> bool:
    # JSON distinguishes true from 1, Python does not
    return type(a) is type(b) and a == b


def _compare_values(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    new_values = _values(new)
    if new_values is None:
        return []
    old_values = _values(old)
    if old_values is None:
        return [f"{path}: values are now restricted to {new_values!r}"]
    removed = [v for v in old_values if not any(_same_value(v, w) for w in new_values)]
    if not removed:
        return []
    if "const" in old and "const" in new:
        return [f"{path}: const changed from {old['const']!r} to {new['const']!r}"]
    return [f"{path}: enum value(s) removed: {', '.join(repr(v) for v in removed)}"]


_JSON_TYPES = {str: "string", bool: "boolean", int: "integer", float: "number", type(None): "null"}


def _types(node: dict[str, Any]) -> set[str] | None:
    """The JSON types a schema admits, or None when it does not restrict the type."""
    declared = node.get("type")
    if isinstance(declared, str):
        return {declared}
    if isinstance(declared, list):
        return set(declared)
    values = _values(node)
    if values is not None:
        return {_JSON_TYPES.get(type(v), "object" if isinstance(v, dict) else "array") for v in values}
    return None


def _covered(json_type: str, types: set[str]) -> bool:
    return json_type in types or (json_type == "integer" and "number" in types)


def _lower(node: dict[str, Any]) -> tuple[float, bool] | None:
    """The effective lower bound as (value, exclusive)."""
    bounds = []
    if isinstance(node.get("minimum"), int | float):
        bounds.append((float(node["minimum"]), False))
    if isinstance(node.get("exclusiveMinimum"), int | float):
        bounds.append((float(node["exclusiveMinimum"]), True))
    return max(bounds) if bounds else None


def _upper(node: dict[str, Any]) -> tuple[float, bool] | None:
    """The effective upper bound as (value, exclusive)."""
    bounds = []
    if isinstance(node.get("maximum"), int | float):
        bounds.append((float(node["maximum"]), False))
    if isinstance(node.get("exclusiveMaximum"), int | float):
        bounds.append((float(node["exclusiveMaximum"]), True))
    # the stricter upper bound is the smaller value, exclusive before inclusive at a tie
    return min(bounds, key=lambda b: (b[0], not b[1])) if bounds else None


def _compare_bounds(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    reasons: list[str] = []
    for key in ("minLength", "minItems", "minProperties"):
        if new.get(key, 0) > old.get(key, 0):
            reasons.append(f"{path}: {key} raised from {old.get(key, 0)} to {new[key]}")
    for key in ("maxLength", "maxItems", "maxProperties"):
        if new.get(key, math.inf) < old.get(key, math.inf):
            reasons.append(f"{path}: {key} lowered from {old.get(key, 'none')} to {new[key]}")
    old_low, new_low = _lower(old), _lower(new)
    if new_low is not None and (old_low is None or _stricter(new_low, old_low, upper=False)):
        reasons.append(f"{path}: lower bound raised from {_bound(old_low)} to {_bound(new_low)}")
    old_high, new_high = _upper(old), _upper(new)
    if new_high is not None and (old_high is None or _stricter(new_high, old_high, upper=True)):
        reasons.append(f"{path}: upper bound lowered from {_bound(old_high)} to {_bound(new_high)}")
    if "multipleOf" in new and (
        "multipleOf" not in old or not float(old["multipleOf"] / new["multipleOf"]).is_integer()
    ):
        reasons.append(f"{path}: multipleOf changed from {old.get('multipleOf')} to {new['multipleOf']}")
    # regular expressions cannot be compared for inclusion; any new or different one is a risk
    if "pattern" in new and new["pattern"] != old.get("pattern"):
        reasons.append(f"{path}: pattern changed from {old.get('pattern')!r} to {new['pattern']!r}")
    if "format" in new and new["format"] != old.get("format"):
        reasons.append(f"{path}: format changed from {old.get('format')!r} to {new['format']!r}")
    return reasons


def _compare_other_keywords(old: dict[str, Any], new: dict[str, Any], path: str) -> list[str]:
    # a keyword only the old schema had was a constraint and its removal loosens; anything else is unknown
    return [
        f"{path}: keyword {key!r} added or changed"
        for key in sorted(new.keys() - _HANDLED)
        if key != "$ref" and new[key] != old.get(key)
    ]


def _stricter(new: tuple[float, bool], old: tuple[float, bool], *, upper: bool) -> bool:
    """Whether bound ``new`` excludes a value bound ``old`` admits."""
    if new[0] != old[0]:
        return new[0] < old[0] if upper else new[0] > old[0]
    return new[1] and not old[1]


def _bound(bound: tuple[float, bool] | None) -> str:
    if bound is None:
        return "none"
    value, exclusive = bound
    return f"{value:g} (exclusive)" if exclusive else f"{value:g}"


def _describe(arm: dict[str, Any]) -> str:
    values = _values(arm)
    if values is not None:
        return f"value(s) {', '.join(repr(v) for v in values)}"
    types = _types(arm)
    name = f" {arm['title']!r}" if isinstance(arm.get("title"), str) else ""
    return f"{_fmt(types)}{name}" if types else f"schema{name}"


def _fmt(types: set[str]) -> str:
    return "|".join(sorted(types))


def _join(path: str, name: str) -> str:
    return f"{path}.{name}" if name.isidentifier() else f"{path}[{name!r}]"
