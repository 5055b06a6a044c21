"""Schemas as the vendors receive them: checked with `jsonschema`, drawn from at random.

The answers must be reproducible per seed, so instances are drawn with a `random.Random`
(hypothesis-jsonschema 0.23.1, its latest release, no longer runs on the hypothesis we lock:
`'many' object has no attribute 'more'`). `$ref`s are resolved with `referencing`, and every
draw is checked with `jsonschema` before it is sent, so a schema the walk does not follow
exactly is noticed, not answered wrongly.
"""

from __future__ import annotations

import math
import re
import string
from collections.abc import Callable, Mapping
from random import Random
from typing import Any, Final

from jsonschema import Draft202012Validator
from referencing import Registry
from referencing.jsonschema import DRAFT202012

JUDGEMENT_WINNERS: Final = ("Essay A", "Essay B")
JUSTIFICATION_MAX_CHARS: Final = 500
JUDGEMENT_SCHEMA: Final[dict[str, Any]] = {
    "type": "object",
    "properties": {
        "winner": {"type": "string", "enum": list(JUDGEMENT_WINNERS)},
        "justification": {"type": "string", "maxLength": JUSTIFICATION_MAX_CHARS},
        "confidence": {"type": "integer", "minimum": 1, "maximum": 5},
    },
    "required": ["winner", "justification", "confidence"],
    "additionalProperties": False,
}

_WORDS: Final = (
    "essay", "argument", "clearer", "structure", "evidence", "coherent", "thesis", "stronger",
    "paragraph", "analysis", "persuasive", "examples", "conclusion", "reasoning", "voice",
    "organised", "precise", "vocabulary", "insight", "develops", "original", "supports",
    "transitions", "counterargument", "concise", "engaging", "logical", "detail",
)  # fmt: skip
_NAMED_CHILDREN: Final = frozenset({"properties", "$defs", "definitions", "patternProperties"})
_ROOT: Final = "urn:fake-vendors:schema"
Lookup = Callable[[str], Any]
"""Finds what a `$ref` names (`referencing`'s `Resolver.lookup`)."""
_DRAWS: Final = 20  # draws before a schema is given up on as one the walk cannot satisfy


def camel_schema(schema: Any) -> Any:
    """The schema with snake_case keywords spelled in camelCase. google-genai sends
    `responseSchema` with snake_case keys inside (`max_length`, `property_ordering`,
    `any_of`), which the Gemini API accepts as it accepts camelCase; property names are
    left as they are."""
    return _rewrite(schema, lambda node: node)


def json_schema(schema: Any) -> Any:
    """A JSON Schema or a Gemini OpenAPI schema (snake_case keywords, "OBJECT" types,
    `nullable`) as JSON Schema 2020-12."""
    return _rewrite(schema, _standard_types)


def _rewrite(node: Any, finish: Callable[[dict[str, Any]], dict[str, Any]]) -> Any:
    """`node` with its keywords in camelCase and `finish` applied to every schema object in
    it, innermost first."""
    if isinstance(node, list):
        return [_rewrite(item, finish) for item in node]
    if not isinstance(node, Mapping):
        return node
    out: dict[str, Any] = {}
    for key, value in node.items():
        name = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key) if "_" in key else key
        if name in _NAMED_CHILDREN and isinstance(value, Mapping):
            out[name] = {child: _rewrite(sub, finish) for child, sub in value.items()}
        else:
            out[name] = _rewrite(value, finish)
    return finish(out)


def _standard_types(node: dict[str, Any]) -> dict[str, Any]:
    """Gemini's "OBJECT"-style and `nullable` types as JSON Schema's."""
    raw = node.pop("type", None)
    kinds = [str(k).lower() for k in (raw if isinstance(raw, list) else [raw] if raw else [])]
    kinds = [kind for kind in kinds if kind != "type_unspecified"]
    if node.pop("nullable", False) is True and kinds and "null" not in kinds:
        kinds.append("null")
    if kinds:
        node["type"] = kinds[0] if len(kinds) == 1 else kinds
    return node


def schema_errors(schema: Mapping[str, Any], instance: Any) -> list[str]:
    """What is wrong with `instance` under `schema` (JSON Schema or Gemini's OpenAPI
    spelling), one line per error; empty when it conforms."""
    validator = Draft202012Validator(json_schema(schema))
    return [f"{error.json_path}: {error.message}" for error in validator.iter_errors(instance)]


def resolver(root: Mapping[str, Any]) -> Lookup:
    """What looks up the `$ref`s inside `root` (`#/$defs/X`, `#/definitions/X`)."""
    resource = DRAFT202012.create_resource(root)
    lookup: Lookup = Registry().with_resource(_ROOT, resource).resolver(base_uri=_ROOT).lookup
    return lookup


def resolve(node: Any, refs: Lookup) -> dict[str, Any]:
    """`node` with its `$ref`s followed to the schema they name (siblings of the `$ref`
    kept)."""
    for _ in range(32):
        if not (isinstance(node, Mapping) and isinstance(node.get("$ref"), str)):
            break
        target = refs(node["$ref"]).contents
        node = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return dict(node) if isinstance(node, Mapping) else {}


def _kinds(node: Mapping[str, Any]) -> list[str]:
    raw = node.get("type")
    kinds = list(raw) if isinstance(raw, list) else [raw] if raw else []
    if not kinds:
        kinds = ["object"] if "properties" in node else ["array"] if "items" in node else []
    return [kind for kind in kinds if kind != "null"] or kinds or ["string"]


def prose(rng: Random, min_length: int = 0, max_length: int | None = None) -> str:
    """A sentence of essay-marking words, `min_length` to `max_length` characters."""
    limit = JUSTIFICATION_MAX_CHARS if max_length is None else max_length
    sentence = " ".join(rng.choice(_WORDS) for _ in range(rng.randint(4, 24)))
    sentence = (sentence.capitalize() + ".")[:limit].rstrip()
    while len(sentence) < min_length:
        sentence += rng.choice(string.ascii_lowercase)
    return sentence


def _bounds(node: Mapping[str, Any]) -> tuple[float | None, float | None]:
    low, high = node.get("minimum"), node.get("maximum")
    if isinstance(node.get("exclusiveMinimum"), int | float):
        low = math.nextafter(node["exclusiveMinimum"], math.inf)
    if isinstance(node.get("exclusiveMaximum"), int | float):
        high = math.nextafter(node["exclusiveMaximum"], -math.inf)
    return low, high


class SchemaGenerator:
    """Draws random instances of a schema (JSON Schema or Gemini's spelling) from `rng`: the
    same seed gives the same instances, each draw another one. Every instance is checked
    with `jsonschema`; ValueError for a schema it cannot draw a valid instance of."""

    def __init__(self, rng: Random) -> None:
        self.rng = rng

    def instance(self, schema: Mapping[str, Any]) -> Any:
        root = json_schema(schema)
        refs, validator = resolver(root), Draft202012Validator(root)
        for _ in range(_DRAWS):
            drawn = self._draw(root, refs, 0)
            if validator.is_valid(drawn):
                return drawn
        raise ValueError(f"no valid instance drawn for {root!r}")

    def _draw(self, schema: Any, refs: Lookup, depth: int) -> Any:
        node, rng = resolve(schema, refs), self.rng
        if "const" in node:
            return node["const"]
        if node.get("enum"):
            return rng.choice(node["enum"])
        for key in ("anyOf", "oneOf"):
            options = [o for o in node.get(key) or [] if resolve(o, refs).get("type") != "null"]
            if options:
                return self._draw(rng.choice(options), refs, depth + 1)
        if node.get("allOf"):
            merged = {k: v for k, v in node.items() if k != "allOf"}
            for part in node["allOf"]:
                merged.update(resolve(part, refs))
            return self._draw(merged, refs, depth + 1)
        kind = rng.choice(_kinds(node))
        if kind == "object":
            properties: Mapping[str, Any] = node.get("properties") or {}
            required = node.get("required")
            return {
                name: self._draw(sub, refs, depth + 1)
                for name, sub in properties.items()
                if required is None or name in required or (depth < 4 and rng.random() < 0.5)
            }
        if kind == "array":
            low, high = node.get("minItems", 0), node.get("maxItems")
            count = rng.randint(max(low, 1 if depth < 4 else 0), high if high else low + 3)
            return [self._draw(node.get("items") or {}, refs, depth + 1) for _ in range(count)]
        return self._scalar(kind, node)

    def _scalar(self, kind: str, node: Mapping[str, Any]) -> Any:
        rng = self.rng
        if kind in ("integer", "number"):
            low, high = _bounds(node)
            low = low if low is not None else (high - 100 if high is not None else 0)
            high = high if high is not None else low + 100
            if kind == "integer":
                return rng.randint(math.ceil(low), max(math.ceil(low), math.floor(high)))
            return min(max(rng.uniform(low, high), low), high)
        if kind == "boolean":
            return rng.random() < 0.5
        if kind == "null":
            return None
        return prose(rng, node.get("minLength", 0), node.get("maxLength"))


def violate(schema: Mapping[str, Any], instance: Any, rng: Random) -> Any:
    """A copy of `instance` changed so that it breaks `schema`: an enum value that is not in
    the enum (winner "Essay C"), a number past its bound (confidence 9), a string past its
    maxLength, or a required property left out. Chosen at random among those that apply."""
    root = json_schema(schema)
    refs = resolver(root)
    node = resolve(root, refs)
    if not isinstance(instance, dict):
        return {"unexpected": instance}
    changes: list[tuple[str, Any]] = []
    for name, raw in (node.get("properties") or {}).items():
        broken_value = _out_of_range(resolve(raw, refs))
        if broken_value is not None:
            changes.append((name, broken_value))
    changes += [(name, _DROP) for name in node.get("required") or []]
    broken = dict(instance)
    if not changes:
        broken["unexpected"] = True
        return broken if node.get("additionalProperties") is False else ["not", "an", "object"]
    name, value = rng.choice(changes)
    if value is _DROP:
        broken.pop(name, None)
    else:
        broken[name] = value
    return broken


_DROP: Final = object()


def _out_of_range(prop: Mapping[str, Any]) -> Any:
    """A value just outside what `prop` allows, or None where it names no limit."""
    enum = [value for value in prop.get("enum") or [] if isinstance(value, str)]
    low, high = _bounds(prop)
    numeric = set(_kinds(prop)) & {"integer", "number"}
    if enum:
        top = max(enum)
        bumped = top[:-1] + chr(ord(top[-1]) + 1) if top else "?"
        return bumped if bumped not in enum else f"{top}?"
    if high is not None and numeric:
        return math.floor(high) + 4
    if low is not None and numeric:
        return math.ceil(low) - 4
    if prop.get("maxLength") is not None:
        return "x" * (int(prop["maxLength"]) + 10)
    return None


def random_judgement(rng: Random) -> dict[str, Any]:
    """What the fake answers when asked for JSON without a schema."""
    return {
        "winner": rng.choice(JUDGEMENT_WINNERS),
        "justification": prose(rng, 1, JUSTIFICATION_MAX_CHARS),
        "confidence": rng.randint(1, 5),
    }
